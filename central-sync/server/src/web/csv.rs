//! CSV answers that a spreadsheet opens safely.

use axum::response::{IntoResponse, Response};

/// The UTF-8 byte order mark: without it Excel opens a CSV as the local code page and garbles "Vượt đèn đỏ".
const BOM: &[u8] = "\u{feff}".as_bytes();

/// A CSV answer: UTF-8 with a byte order mark, a header row, then `rows`. Cells a spreadsheet would run as a
/// formula are written as text (a box's `location` or an officer's note of `=HYPERLINK(...)` must not run on
/// the fines clerk's PC).
pub fn csv_response(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Response {
    let mut writer = csv::Writer::from_writer(BOM.to_vec());
    let written = std::iter::once(writer.write_record(header))
        .chain(rows.into_iter().map(|row| writer.write_record(row.iter().map(|cell| as_text(cell).into_owned()))))
        .collect::<Result<Vec<()>, _>>();
    match written.map_err(|e| e.to_string()).and_then(|_| writer.into_inner().map_err(|e| e.to_string())) {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response(),
        Err(e) => super::layout::storage_failure("csv", e),
    }
}

/// A cell as a spreadsheet will show it: one that starts like a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return) and is not a plain number gets a leading `'` (OWASP's advice for CSV injection).
fn as_text(cell: &str) -> std::borrow::Cow<'_, str> {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && cell.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_csv_answer_starts_with_the_utf8_byte_order_mark_so_excel_reads_vietnamese() {
        let response = super::csv_response(&["violation_vi"], [vec!["Vượt đèn đỏ".to_string()]]);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        assert_eq!(&body[..3], [0xEF, 0xBB, 0xBF]);
        assert_eq!(std::str::from_utf8(&body[3..]).expect("utf-8"), "violation_vi\nVượt đèn đỏ\n");
    }

    #[test]
    fn a_csv_cell_that_a_spreadsheet_would_run_as_a_formula_is_written_as_text() {
        use super::as_text;
        assert_eq!(as_text("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(as_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(as_text("+84 90"), "'+84 90");
        assert_eq!(as_text("-2+3"), "'-2+3");
        assert_eq!(as_text("\t=1"), "'\t=1");
        assert_eq!(as_text("-12.5"), "-12.5", "a negative number stays a number");
        assert_eq!(as_text("59-U1/729.79"), "59-U1/729.79");
        assert_eq!(as_text("Vượt đèn đỏ"), "Vượt đèn đỏ");
    }
}
