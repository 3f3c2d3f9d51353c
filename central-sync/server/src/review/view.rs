//! What the review pages show of a case, worked out once and handed to the templates (`templates/queue.html`,
//! `case.html`, `audit.html`, `macros.html`) as plain values: the templates only lay them out and escape them.

use super::{owner_deadline, AuditEntry, ReviewError};
use crate::store::{QueueEntry, ReviewStatus};
use crate::web::{local_time, Lang};
use central_protocol::{ClockCheck, EvidenceRecord};
use te_types::{EventKind, ViolationKind};

/// The offence and what the box measured; `None` for a plain vehicle pass.
pub struct KindView<'a> {
    pub offence: Option<Offence<'a>>,
    /// The record's kind by name: an offence whose details did not come is still named, never called a pass.
    pub name: &'static str,
    pub is_offence: bool,
    /// Set when the box's clock was unchecked or off: the time is not objective until a reviewer looks.
    pub clock_warning: Option<String>,
}

pub struct Offence<'a> {
    pub name: &'a str,
    pub rule: &'a str,
    /// What was measured, in the page's language; empty when the record holds no figure to say.
    pub summary: String,
}

/// The plate to fine, and the box's reading when an officer corrected it.
pub struct PlateView<'a> {
    pub shown: Option<&'a str>,
    pub corrected_from: Option<&'a str>,
}

/// The owner-identification deadline (Circular 73/2024/TT-BCA).
pub struct DeadlineView {
    pub date: String,
    /// Days left; negative: overdue.
    pub left: i64,
    pub class: &'static str,
}

/// One queue row.
pub struct QueueRow<'a> {
    pub id: String,
    pub kind: KindView<'a>,
    pub camera: &'a str,
    pub location: &'a str,
    pub time: String,
    pub plate: PlateView<'a>,
    pub status: ReviewStatus,
    /// `None` for a rejected case: nothing is owed.
    pub deadline: Option<DeadlineView>,
}

/// One audit entry as the table shows it.
pub struct AuditRow<'a> {
    pub seq: i64,
    pub at: String,
    pub actor: &'a str,
    /// The action as officers read it.
    pub action: &'a str,
    /// The detail as officers read it ...
    pub detail: String,
    /// ... and exactly as chained (what the entry's hash covers).
    pub raw: String,
    pub sha_prefix: &'a str,
}

pub fn kind(lang: Lang, r: &EvidenceRecord) -> KindView<'_> {
    KindView {
        offence: r.violation.as_ref().map(|v| Offence {
            name: lang.t(v.kind.vietnamese(), v.kind.english()),
            rule: &v.rule,
            summary: measurement(lang, v),
        }),
        name: kind_name(lang, r.kind),
        is_offence: r.kind.is_violation(),
        clock_warning: clock_warning(lang, r.clock.as_ref()),
    }
}

fn clock_warning(lang: Lang, clock: Option<&ClockCheck>) -> Option<String> {
    match clock {
        Some(c) if c.trusted => None,
        Some(c) => Some(format!(
            "{} {:+.1} s ({})",
            lang.t("Đồng hồ lệch", "Clock off by"),
            c.offset_ms as f64 / 1000.0,
            c.source
        )),
        None => Some(lang.t("Đồng hồ chưa kiểm chứng", "Clock unchecked").to_string()),
    }
}

pub fn plate(entry: &QueueEntry) -> PlateView<'_> {
    let read = entry.record.plate.as_ref().and_then(|p| p.text.as_deref());
    match entry.corrected_plate.as_deref() {
        Some(corrected) => PlateView { shown: Some(corrected), corrected_from: read.filter(|r| *r != corrected) },
        None => PlateView { shown: read, corrected_from: None },
    }
}

/// The owner-identification deadline and how many days are left (negative: overdue), counted in Vietnam
/// calendar days, so every page says the same on the same day (truncating exact durations made the queue say
/// 10 and the case 9 a few seconds apart).
pub fn deadline_left(entry: &QueueEntry) -> (chrono::DateTime<chrono::Utc>, i64) {
    let due = owner_deadline(entry.record.captured_at);
    (due, calendar_days_between(chrono::Utc::now(), due))
}

/// Vietnam calendar days from the day of `from` to the day of `to`.
pub fn calendar_days_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> i64 {
    // Checked: a stored time near the end of chrono's range must not panic a page.
    let day = |t: chrono::DateTime<chrono::Utc>| {
        let local =
            t.naive_utc().checked_add_signed(chrono::TimeDelta::seconds(i64::from(crate::store::VIETNAM_OFFSET_S)));
        local.unwrap_or(t.naive_utc()).date()
    };
    (day(to) - day(from)).num_days()
}

/// The deadline an offence awaiting or past approval has; none for a rejected case or a plain vehicle pass.
pub fn deadline(entry: &QueueEntry) -> Option<DeadlineView> {
    if entry.review_status == ReviewStatus::Rejected || !entry.record.kind.is_violation() {
        return None;
    }
    let (due, left) = deadline_left(entry);
    let class = match left {
        l if l < 0 => "overdue",
        l if l <= 2 => "alarm",
        _ => "",
    };
    Some(DeadlineView { date: local_time(due).get(..10).unwrap_or_default().to_string(), left, class })
}

pub fn queue_row(lang: Lang, entry: &QueueEntry) -> QueueRow<'_> {
    let r = &entry.record;
    QueueRow {
        id: r.evidence_id.to_string(),
        kind: kind(lang, r),
        camera: r.camera_id.as_str(),
        location: &r.location,
        time: local_time(r.captured_at),
        plate: plate(entry),
        status: entry.review_status,
        deadline: deadline(entry),
    }
}

pub fn audit_rows(lang: Lang, entries: &[AuditEntry]) -> Vec<AuditRow<'_>> {
    entries
        .iter()
        .map(|e| AuditRow {
            seq: e.seq,
            at: local_time(e.at),
            actor: &e.actor,
            action: action_name(lang, &e.action),
            detail: detail_text(lang, &e.detail),
            raw: e.detail.to_string(),
            sha_prefix: e.entry_sha256.get(..16).unwrap_or(&e.entry_sha256),
        })
        .collect()
}

/// The plate picture to show for a record: the heaviest read of the winning plate that has a picture, as
/// (its SHA-256, its frame number).
pub fn best_plate_crop(r: &EvidenceRecord) -> Option<(&str, u64)> {
    let winner = r.plate.as_ref().and_then(|p| p.text.as_deref())?;
    r.plate
        .iter()
        .flat_map(|p| p.votes.iter())
        .filter(|v| v.text.as_deref() == Some(winner))
        .filter_map(|v| v.crop_sha256.as_deref().map(|sha| (v.weight, (sha, v.frame_number))))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, best)| best)
}

/// What the box measured, in the page's language. The box's own summary line is English: it is the English
/// view's text; the Vietnamese is made from the violation's figures (none: empty, the rule names the offence).
pub fn measurement(lang: Lang, v: &te_types::Violation) -> String {
    if lang == Lang::En {
        return v.summary.clone();
    }
    let figure = |x: Option<f32>| x.filter(|x| x.is_finite() && *x >= 0.0);
    let mut parts = Vec::new();
    if let Some(red) = figure(v.red_for_s) {
        parts.push(format!("đèn đỏ đã bật {red:.1} giây"));
    }
    if let Some(speed) = figure(v.speed_kmh) {
        parts.push(match figure(v.limit_kmh) {
            Some(limit) => format!("tốc độ trung bình {speed:.0} km/h (giới hạn {limit:.0} km/h)"),
            None => format!("tốc độ trung bình {speed:.0} km/h"),
        });
    }
    if let Some(dwell) = figure(v.dwell_s) {
        parts.push(format!("dừng {dwell:.0} giây trong vùng cấm dừng"));
    }
    if !v.certified {
        parts.push("phép đo chưa được kiểm định: cần cán bộ xem xét".into());
    }
    parts.join("; ")
}

/// The seal check's finding in the page's language; a finding this build does not know is shown as stored.
pub fn seal_detail(lang: Lang, detail: &str) -> String {
    if lang == Lang::En {
        return detail.to_string();
    }
    let known = [
        ("Ed25519 signature valid", "chữ ký Ed25519 đúng"),
        ("no seal stored", "không có niêm phong"),
        ("sealed by a key that is not the device's", "niêm phong bằng khoá không phải của thiết bị"),
        (
            "the signature does not verify with the seal's public key",
            "chữ ký không khớp với khoá công khai của niêm phong",
        ),
    ];
    if let Some((_, vi)) = known.iter().find(|(en, _)| *en == detail) {
        return vi.to_string();
    }
    if detail.contains("altered after sealing") {
        return "bản ghi đã bị sửa sau khi niêm phong (mã băm không khớp)".into();
    }
    detail.to_string()
}

/// Why a decision was refused, in the page's language. A storage failure says only that nothing was saved
/// (its cause is in the service's log, not for the page).
pub fn refusal(lang: Lang, e: &ReviewError) -> String {
    let doing = |action: &str| match action {
        "approve" => lang.t("duyệt", "approve"),
        "reject" => lang.t("loại bỏ", "reject"),
        "correct_plate" => lang.t("sửa biển số", "correct the plate"),
        "reopen" => lang.t("mở lại", "reopen"),
        _ => lang.t("làm việc này", "do this"),
    };
    match (lang, e) {
        (_, ReviewError::Store(_)) => lang
            .t("Lỗi lưu trữ: quyết định chưa được lưu, hãy thử lại.", "Storage failure: nothing was saved, try again.")
            .into(),
        (Lang::En, e) => e.to_string(),
        (Lang::Vi, ReviewError::NotFound(id)) => format!("Không có chứng cứ {id}."),
        (Lang::Vi, ReviewError::Forbidden { role, action }) => format!("Vai trò {role} không được {}.", doing(action)),
        (Lang::Vi, ReviewError::WrongState { status, action, .. }) => {
            format!("Trường hợp đang ở trạng thái «{}»: không thể {}.", status.vietnamese(), doing(action))
        }
        (Lang::Vi, ReviewError::BadPlate(text)) => {
            format!("«{text}» không phải biển số Việt Nam (ví dụ 51F-123.45, 59X1-234.56).")
        }
        (Lang::Vi, ReviewError::ReasonRequired) => "Cần ghi lý do.".into(),
        (Lang::Vi, ReviewError::NoPlate) => "Chưa có biển số để xử phạt: hãy sửa biển số trước.".into(),
        (Lang::Vi, ReviewError::NotAnOffence) => {
            "Phương tiện đi qua không phải vi phạm, không bao giờ chuyển xử phạt; \
                                                  nếu cần quyết định, hãy loại bỏ."
                .into()
        }
    }
}

/// An audit action in the page's language; an action this build does not know is shown as stored.
fn action_name(lang: Lang, action: &str) -> &str {
    let (vi, en) = match action {
        "approve" => ("Duyệt", "Approved"),
        "reject" => ("Loại bỏ", "Rejected"),
        "correct_plate" => ("Sửa biển số", "Plate corrected"),
        "reopen" => ("Mở lại", "Reopened"),
        "login" => ("Đăng nhập", "Logged in"),
        "logout" => ("Đăng xuất", "Logged out"),
        "login_failed" => ("Đăng nhập sai", "Login failed"),
        "login_throttled" => ("Đăng nhập bị tạm khoá", "Login throttled"),
        "login_rate_limited" => ("Quá nhiều lần đăng nhập", "Logins rate-limited"),
        "user_added" => ("Thêm tài khoản", "Account added"),
        "user_disabled" => ("Khoá tài khoản", "Account disabled"),
        "user_enabled" => ("Mở khoá tài khoản", "Account enabled"),
        "password_reset" => ("Đặt lại mật khẩu", "Password reset"),
        "token_created" => ("Tạo mã truy cập", "API token created"),
        "device_registered" => ("Đăng ký thiết bị", "Device registered"),
        "device_key_replaced" => ("Thay khoá thiết bị", "Device key replaced"),
        other => return other,
    };
    lang.t(vi, en)
}

/// An audit entry's detail as `label: value` pairs in the page's language (keys this build does not know keep
/// their name); strings without quotes.
fn detail_text(lang: Lang, detail: &serde_json::Value) -> String {
    let Some(fields) = detail.as_object() else { return detail.to_string() };
    fields
        .iter()
        .map(|(key, value)| {
            let label = match key.as_str() {
                "plate" => lang.t("biển số duyệt", "approved plate"),
                "box_plate" => lang.t("biển số thiết bị đọc", "read by the box"),
                "reason" => lang.t("lý do", "reason"),
                "from" => lang.t("từ", "from"),
                "to" => lang.t("thành", "to"),
                "was" => lang.t("trạng thái trước", "was"),
                "username" => lang.t("tài khoản", "account"),
                "role" => lang.t("vai trò", "role"),
                "name" => lang.t("tên", "name"),
                other => other,
            };
            let value = match value {
                serde_json::Value::String(s) => match (key.as_str(), ReviewStatus::parse(s)) {
                    ("was", Some(status)) => lang.t(status.vietnamese(), status.english()).to_string(),
                    _ => s.clone(),
                },
                serde_json::Value::Null => "—".to_string(),
                other => other.to_string(),
            };
            format!("{label}: {value}")
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// An event kind as officers read it.
pub fn kind_name(lang: Lang, kind: EventKind) -> &'static str {
    match ViolationKind::ALL.into_iter().find(|v| EventKind::from(*v) == kind) {
        Some(v) => lang.t(v.vietnamese(), v.english()),
        None => lang.t("Phương tiện đi qua", "Vehicle passed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measurement_reads_in_vietnamese_from_the_figures_and_hostile_figures_are_left_out() {
        let v = te_types::Violation {
            kind: te_types::ViolationKind::RedLight,
            track: te_types::TrackId(7),
            rule: "Vạch dừng hướng Bắc".into(),
            at: chrono::Utc::now(),
            moments: Vec::new(),
            signal: None,
            red_for_s: Some(17.46),
            speed_kmh: Some(f32::INFINITY),
            limit_kmh: None,
            dwell_s: Some(-3.0),
            certified: true,
            summary: "crossed \"Vạch dừng hướng Bắc\" 17.5 s after the light turned red".into(),
        };
        assert_eq!(measurement(Lang::Vi, &v), "đèn đỏ đã bật 17.5 giây");
        assert_eq!(measurement(Lang::En, &v), v.summary);
        let speeding = te_types::Violation {
            red_for_s: None,
            speed_kmh: Some(71.6),
            limit_kmh: Some(60.0),
            certified: false,
            ..v
        };
        assert_eq!(
            measurement(Lang::Vi, &speeding),
            "tốc độ trung bình 72 km/h (giới hạn 60 km/h); phép đo chưa được kiểm định: cần cán bộ xem xét"
        );
    }

    /// #24: the audit log showed actions as code words and details as raw JSON.
    #[test]
    fn audit_entries_read_as_words_in_the_pages_language_and_keep_their_raw_form() {
        let detail = serde_json::json!({ "plate": "51F-123.45", "box_plate": null });
        assert_eq!(action_name(Lang::Vi, "approve"), "Duyệt");
        assert_eq!(action_name(Lang::En, "approve"), "Approved");
        assert_eq!(action_name(Lang::Vi, "a_future_action"), "a_future_action");
        assert_eq!(detail_text(Lang::Vi, &detail), "biển số thiết bị đọc: — · biển số duyệt: 51F-123.45");
        let reopened = serde_json::json!({ "was": "approved", "reason": "Biển số sai" });
        assert_eq!(detail_text(Lang::Vi, &reopened), "lý do: Biển số sai · trạng thái trước: Đã duyệt");
    }

    /// #24: "10 ngày còn lại" in the queue was "9 ngày còn lại" on the case page: days are calendar days in
    /// Vietnam, whatever the hour.
    #[test]
    fn days_left_are_vietnam_calendar_days() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("time").to_utc();
        // 23:59 and 00:01 the next day in Vietnam (UTC+7) are one day apart.
        assert_eq!(calendar_days_between(at("2026-12-03T16:59:00Z"), at("2026-12-03T17:01:00Z")), 1);
        // Ten days minus a few seconds is still ten calendar days.
        assert_eq!(calendar_days_between(at("2026-12-03T03:00:05Z"), at("2026-12-13T03:00:00Z")), 10);
        assert_eq!(calendar_days_between(at("2026-12-14T03:00:00Z"), at("2026-12-13T03:00:00Z")), -1);
    }
}
