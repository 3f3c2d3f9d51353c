//! Vietnamese licence plates: what a valid plate looks like, and how raw OCR text becomes one (or "unreadable").
//!
//! ```text
//!  OCR lines ("59-U1", "729.79") -> compact "59U172979" -> fit templates -> fix confusables -> Plate | Unreadable
//! ```
//!
//! A civilian plate is a two-digit province code, a series, and a 4- or 5-digit number:
//! - cars, one line: `30A-123.45`, older `30A-1234`, two-letter series `51LD-123.45`;
//! - motorbikes, two lines: `59-U1` over `729.79` (series letter + digit 1-9), older `54-T1` over `6084`,
//!   under-50 cc `29-AA` over `123.45`; two-line car and truck plates carry the car series on the top line.
//!
//! Series letters never include I, J, O, Q or W (they look like 1 and 0). Invariants: a confusable character
//! (`O`/`0`, `B`/`8`, ...) is corrected only where every template that fits says which kind the position must
//! be; a plate whose province code is not assigned, or that needs more than [`MAX_CORRECTIONS`] corrections,
//! or that fits two templates with different text, is [`Unreadable`] rather than guessed.
//! Electric motorbikes carry `MĐ` and a digit (`29-MĐ2` over `113.32`); Đ is written `D` in plain text.
//! Not handled (reported unreadable): military and police plates (letters first) and diplomatic `NG`/`NN`
//! plates with their own number layout.

mod province;

pub use province::province_of;

pub use te_types::PlateLayout;

use serde::{Deserialize, Serialize};

/// The most characters the grammar may correct in one read before it calls the read unreadable.
pub const MAX_CORRECTIONS: usize = 2;

/// Letters that appear in series. I, J, O, Q and W are never issued.
pub const SERIES_LETTERS: &str = "ABCDEFGHKLMNPRSTUVXYZ";

/// Every character a Vietnamese plate can carry (besides separators): what the OCR is allowed to output.
pub const PLATE_ALPHABET: &str = "0123456789ABCDEFGHKLMNPRSTUVXYZ";

/// A plate that fits the grammar. Fields hold only characters (no separators).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plate {
    /// Province code, e.g. 59.
    pub province: u8,
    /// Series: one or two letters, or a letter and a digit (motorbikes), e.g. `A`, `LD`, `U1`.
    pub series: String,
    /// Registration number: 4 or 5 digits.
    pub number: String,
    pub layout: PlateLayout,
}

impl Plate {
    /// Characters only, the form used for matching and search: `59U172979`.
    pub fn compact(&self) -> String {
        format!("{:02}{}{}", self.province, self.series, self.number)
    }

    /// The text as printed, rows joined by `/`: `30A-123.45`, `59-U1/729.79`, `30G/366.44`.
    pub fn display(&self) -> String {
        let number = if self.number.len() == 5 {
            format!("{}.{}", &self.number[..3], &self.number[3..])
        } else {
            self.number.clone()
        };
        match self.layout {
            PlateLayout::OneLine => format!("{:02}{}-{}", self.province, self.series, number),
            // Two-row car plates print "30G" on top; motorbike series (with a digit or two letters) "59-U1".
            PlateLayout::TwoLine if self.series.len() == 1 => format!("{:02}{}/{}", self.province, self.series, number),
            PlateLayout::TwoLine => format!("{:02}-{}/{}", self.province, self.series, number),
        }
    }

    /// The province that holds the registration (after the 2025 merger).
    pub fn province_name(&self) -> &'static str {
        // Plates are only built from assigned codes.
        province_of(self.province).unwrap_or("?")
    }
}

impl std::fmt::Display for Plate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Why a read is not a plate. Shown to reviewers next to the raw text, so it says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("no characters were read")]
    Empty,
    #[error("{0} characters fit no plate layout")]
    Shape(usize),
    #[error("province code {0:02} is not assigned")]
    Province(u8),
    #[error("needs {0} character corrections (at most {MAX_CORRECTIONS} allowed)")]
    TooManyCorrections(usize),
    #[error("fits more than one plate: {0} or {1}")]
    Ambiguous(String, String),
}

/// What one position of a template accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Digit,
    /// Series digit on motorbike plates: 1-9.
    SeriesDigit,
    Letter,
}

/// A plate shape: series slots and number length, and the layout it is printed in when the reader cannot tell.
struct Template {
    series: &'static [Slot],
    number_len: usize,
    default_layout: PlateLayout,
}

const TEMPLATES: &[Template] = &[
    Template { series: &[Slot::Letter], number_len: 5, default_layout: PlateLayout::OneLine },
    Template { series: &[Slot::Letter], number_len: 4, default_layout: PlateLayout::OneLine },
    Template { series: &[Slot::Letter, Slot::Letter], number_len: 5, default_layout: PlateLayout::OneLine },
    Template { series: &[Slot::Letter, Slot::Letter], number_len: 4, default_layout: PlateLayout::OneLine },
    Template { series: &[Slot::Letter, Slot::SeriesDigit], number_len: 5, default_layout: PlateLayout::TwoLine },
    Template { series: &[Slot::Letter, Slot::SeriesDigit], number_len: 4, default_layout: PlateLayout::TwoLine },
    // Electric motorbikes: `MĐ` and a digit (`29-MĐ2`); Đ is written D in plain text.
    Template {
        series: &[Slot::Letter, Slot::Letter, Slot::SeriesDigit],
        number_len: 5,
        default_layout: PlateLayout::TwoLine,
    },
    Template {
        series: &[Slot::Letter, Slot::Letter, Slot::SeriesDigit],
        number_len: 4,
        default_layout: PlateLayout::TwoLine,
    },
];

/// Characters an OCR confuses with a digit, and the digit they stand for.
fn as_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        'O' | 'D' | 'Q' | 'U' => Some('0'),
        'I' => Some('1'),
        'Z' => Some('2'),
        // The Vietnamese plate font's open 4 reads as L.
        'A' | 'L' => Some('4'),
        'S' => Some('5'),
        'G' => Some('6'),
        'T' => Some('7'),
        'B' => Some('8'),
        _ => None,
    }
}

/// Characters an OCR confuses with a series letter, and the letter they stand for.
fn as_letter(c: char) -> Option<char> {
    if SERIES_LETTERS.contains(c) {
        return Some(c);
    }
    match c {
        '0' | 'O' | 'Q' => Some('D'),
        '1' | '7' => Some('T'),
        '2' => Some('Z'),
        '4' => Some('A'),
        '5' => Some('S'),
        '6' => Some('G'),
        '8' => Some('B'),
        _ => None,
    }
}

fn fit_slot(slot: Slot, c: char) -> Option<char> {
    match slot {
        Slot::Digit => as_digit(c),
        Slot::SeriesDigit => as_digit(c).filter(|d| *d != '0'),
        Slot::Letter => as_letter(c),
    }
}

/// Turns OCR output into a plate. `lines` are the rows as read (one for a long plate, two for a square one);
/// separators and spaces are ignored, letters are upper-cased. When two rows are given, the top row must be the
/// province and series, which rules out templates that would split the characters elsewhere.
pub fn parse(lines: &[&str], layout: Option<PlateLayout>) -> Result<Plate, Unreadable> {
    let rows: Vec<Vec<char>> = lines
        .iter()
        .map(|l| l.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect())
        .filter(|r: &Vec<char>| !r.is_empty())
        .collect();
    let first = fit_templates(&rows, layout, 0, Fix::Confusables);
    // The dash of a square plate's top row ("59-X1") is sometimes read as a character ("598X1"): with five
    // characters on top, try again without the middle one, as one correction.
    if first.is_err() && rows.len() == 2 && rows[0].len() == 5 && matches!(rows[0][2], '8' | '1' | '7') {
        let mut without_dash = rows.clone();
        without_dash[0].remove(2);
        if let Ok(plate) = fit_templates(&without_dash, layout, 1, Fix::Confusables) {
            return Ok(plate);
        }
    }
    first
}

/// Whether characters may be corrected to fit a template: an OCR's confusables, or nothing (typed by a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fix {
    Confusables,
    Nothing,
}

/// A plate as a person typed it (a reviewer's correction): rows split by `/` or a line break, separators `-`,
/// `.` and spaces ignored, letters upper-cased, `Đ` written `D`. Nothing else is changed: a character that does
/// not fit its place, or any other character, makes it [`Unreadable`], so a typing slip can never be "corrected"
/// into another vehicle's plate (`51F-123.45a` is refused, not read as `51-F1/234.54`).
pub fn parse_typed(text: &str) -> Result<Plate, Unreadable> {
    let mut rows: Vec<Vec<char>> = Vec::new();
    for line in text.split(['/', '\n']) {
        let mut row = Vec::new();
        for c in line.trim().chars() {
            match c {
                '-' | '.' | ' ' | '\r' => {}
                'Đ' | 'đ' => row.push('D'),
                c if c.is_ascii_alphanumeric() => row.push(c.to_ascii_uppercase()),
                _ => return Err(Unreadable::Shape(text.chars().count())),
            }
        }
        if !row.is_empty() {
            rows.push(row);
        }
    }
    if rows.len() > 2 {
        return Err(Unreadable::Shape(rows.concat().len()));
    }
    let layout = (rows.len() == 2).then_some(PlateLayout::TwoLine);
    fit_templates(&rows, layout, 0, Fix::Nothing)
}

fn fit_templates(
    rows: &[Vec<char>],
    layout: Option<PlateLayout>,
    corrected: usize,
    fix: Fix,
) -> Result<Plate, Unreadable> {
    let chars: Vec<char> = rows.concat();
    if chars.is_empty() {
        return Err(Unreadable::Empty);
    }
    let head_len = (rows.len() == 2).then(|| rows[0].len());

    // (corrections, plate) for every template that fits.
    let mut fits: Vec<(usize, Plate)> = Vec::new();
    let mut province_refused = None;
    for t in TEMPLATES {
        let series_end = 2 + t.series.len();
        if chars.len() != series_end + t.number_len || head_len.is_some_and(|h| h != series_end) {
            continue;
        }
        let slots =
            [Slot::Digit, Slot::Digit].iter().chain(t.series).chain(std::iter::repeat_n(&Slot::Digit, t.number_len));
        let mut fixed = String::with_capacity(chars.len());
        let mut corrections = corrected;
        let mut fits_all = true;
        for (&slot, &c) in slots.zip(&chars) {
            match fit_slot(slot, c).filter(|f| fix == Fix::Confusables || *f == c) {
                Some(f) => {
                    corrections += usize::from(f != c);
                    fixed.push(f);
                }
                None => {
                    fits_all = false;
                    break;
                }
            }
        }
        if !fits_all {
            continue;
        }
        let province: u8 = fixed[..2].parse().unwrap_or(0);
        if province_of(province).is_none() {
            province_refused = Some(province);
            continue;
        }
        if t.series.len() == 3 && !fixed[2..].starts_with("MD") {
            continue; // the only three-character series is MĐ + digit
        }
        if layout == Some(PlateLayout::OneLine) && t.series.contains(&Slot::SeriesDigit) {
            continue; // a series with a digit is a motorbike's, and motorbike plates have two rows
        }
        let layout = layout.unwrap_or(t.default_layout);
        let plate = Plate {
            province,
            series: fixed[2..series_end].to_string(),
            number: fixed[series_end..].to_string(),
            layout,
        };
        fits.push((corrections, plate));
    }

    let Some(best) = fits.iter().map(|(corrections, _)| *corrections).min() else {
        return Err(match province_refused {
            Some(p) => Unreadable::Province(p),
            None => Unreadable::Shape(chars.len()),
        });
    };
    if best > MAX_CORRECTIONS {
        return Err(Unreadable::TooManyCorrections(best));
    }
    let mut best_fits = fits.into_iter().filter(|(corrections, _)| *corrections == best).map(|(_, p)| p);
    let first = best_fits.next().ok_or(Unreadable::Shape(chars.len()))?;
    // Two templates may give the same characters (30A12345 as car 30A-123.45 or motorbike 30-A1/2345): that is
    // one plate. Different characters mean the grammar cannot decide.
    if let Some(other) = best_fits.find(|p| p.compact() != first.compact()) {
        return Err(Unreadable::Ambiguous(first.display(), other.display()));
    }
    Ok(first)
}

/// Upper-case characters only: the form labels and reads are compared in.
pub fn compact(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<String, Unreadable> {
        parse(&[text], None).map(|p| p.display())
    }

    #[test]
    fn a_typed_plate_is_validated_never_corrected_into_another_vehicle() {
        let typed = |t: &str| parse_typed(t).map(|p| p.display());
        assert_eq!(typed("51F-123.45"), Ok("51F-123.45".into()));
        assert_eq!(typed("51f12345"), Ok("51F-123.45".into()));
        assert_eq!(typed("59-U1/729.79"), Ok("59-U1/729.79".into()));
        assert_eq!(typed("29-MĐ2\n113.32"), Ok("29-MD2/113.32".into()));
        // Issue 20: a trailing slip used to become another vehicle through the OCR confusion fixes.
        assert!(typed("51F-123.45a").is_err());
        assert!(typed("59-UI/729.79").is_err(), "I is not 1 when a person types it");
        assert!(typed("5lF-123.45").is_err());
        assert!(typed("51F-123.45;").is_err());
        assert!(typed("").is_err());
        assert!(typed("59/U1/729.79").is_err());
    }

    #[test]
    fn a_long_one_row_plate_never_takes_a_motorbike_series() {
        // A long plate cut at its edge and read with an extra digit: as a motorbike series it would be 51-F3/988.31.
        assert!(parse(&["51F398831"], Some(PlateLayout::OneLine)).is_err());
        assert_eq!(parse(&["51F398831"], Some(PlateLayout::TwoLine)).map(|p| p.display()), Ok("51-F3/988.31".into()));
        assert_eq!(parse(&["30A12345"], Some(PlateLayout::OneLine)).map(|p| p.display()), Ok("30A-123.45".into()));
    }

    #[test]
    fn car_plates_parse_in_both_number_lengths_and_with_two_letter_series() {
        assert_eq!(one("30A-123.45"), Ok("30A-123.45".into()));
        assert_eq!(one("30A-1234"), Ok("30A-1234".into()));
        assert_eq!(one("51LD 123.45"), Ok("51LD-123.45".into()));
    }

    #[test]
    fn motorbike_plates_parse_from_two_rows() {
        let p = parse(&["59-U1", "729.79"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!((p.display(), p.compact()), ("59-U1/729.79".into(), "59U172979".into()));
        assert_eq!(p.province_name(), "TP. Hồ Chí Minh");
        let old = parse(&["54-T1", "6084"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(old.display(), "54-T1/6084");
    }

    #[test]
    fn confusables_are_fixed_where_the_position_decides() {
        // O in the number is a zero; 8 in the series is a B; 7 where a series letter must be is a T.
        assert_eq!(one("30A-12O.45"), Ok("30A-120.45".into()));
        assert_eq!(one("518-617.12"), Ok("51B-617.12".into()));
        let p = parse(&["54-71", "6084"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(p.display(), "54-T1/6084");
    }

    #[test]
    fn impossible_plates_are_unreadable_not_guessed() {
        assert_eq!(one(""), Err(Unreadable::Empty));
        assert_eq!(one("13A-123.45"), Err(Unreadable::Province(13)));
        assert_eq!(one("30A-12"), Err(Unreadable::Shape(5)));
        assert_eq!(one("ZG8894AB"), Err(Unreadable::TooManyCorrections(5)));
        // Three corrections: province "S9" and number "OO" are too much guessing.
        assert_eq!(one("S9A-123.OO"), Err(Unreadable::TooManyCorrections(3)));
    }

    #[test]
    fn a_series_digit_is_never_zero() {
        // On one row the characters make a car plate with a 5-digit number.
        assert_eq!(one("59X01234"), Ok("59X-012.34".into()));
        // On two rows "X0" cannot be a motorbike series, so the 0 must be the letter D.
        let p = parse(&["59-X0", "1234"], None).expect("valid");
        assert_eq!(p.compact(), "59XD1234");
    }

    #[test]
    fn a_series_that_reads_as_valid_letters_is_kept_as_read() {
        // "55PL" may be the font's 4 read as L (55-P4), but two letters are a valid series too: without the
        // reader's confidence the grammar does not guess, it keeps what was read.
        let p = parse(&["55PL", "8426"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(p.display(), "55-PL/8426");
        // In the number, where only digits may stand, the L is a 4.
        let p = parse(&["51L3", "L827"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(p.display(), "51-L3/4827");
    }

    #[test]
    fn a_dash_read_as_a_character_on_the_top_row_is_dropped() {
        let p = parse(&["598X1", "49573"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(p.display(), "59-X1/495.73");
    }

    #[test]
    fn two_row_car_plates_print_without_a_dash() {
        let p = parse(&["30G", "366.44"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(p.display(), "30G/366.44");
    }

    #[test]
    fn electric_motorbike_series_have_two_letters_and_a_digit() {
        let p = parse(&["29-MD2", "113.32"], Some(PlateLayout::TwoLine)).expect("valid");
        assert_eq!(p.display(), "29-MD2/113.32");
    }

    #[test]
    fn the_row_split_rules_out_templates() {
        // "29AB" over "12345" is a two-letter series; the same characters on one row would be too.
        let p = parse(&["29-AB", "123.45"], None).expect("valid");
        assert_eq!(p.series, "AB");
        // A top row of 5 characters fits nothing.
        assert_eq!(parse(&["29ABC", "1234"], None), Err(Unreadable::Shape(9)));
    }

    #[test]
    fn the_alphabet_has_no_letters_that_are_never_issued() {
        for banned in ['I', 'J', 'O', 'Q', 'W'] {
            assert!(!PLATE_ALPHABET.contains(banned));
        }
        assert_eq!(compact("59-U1/729.79"), "59U172979");
    }
}
