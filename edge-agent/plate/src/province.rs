//! Province codes on Vietnamese civilian plates (Circular 79/2024/TT-BCA, appendix of registration codes),
//! and the province each code belongs to since the merger of 1 July 2025 (34 provincial units).
//!
//! Plates are not re-issued when provinces merge, so every code that was valid before the merger stays valid;
//! the map only tells which province's police now hold the registration. Codes never assigned (10, 13, 42, 44,
//! 45, 46, 87, 91, 96) make a plate impossible.

/// The province (after the 2025 merger) that holds registrations with this code, or `None` for a code that is
/// not assigned to civilian plates.
pub fn province_of(code: u8) -> Option<&'static str> {
    Some(match code {
        11 => "Cao Bằng",
        12 => "Lạng Sơn",
        14 => "Quảng Ninh",
        15 | 16 | 34 => "Hải Phòng",
        17 | 89 => "Hưng Yên",
        18 | 35 | 90 => "Ninh Bình",
        19 | 28 | 88 => "Phú Thọ",
        20 | 97 => "Thái Nguyên",
        21 | 24 => "Lào Cai",
        22 | 23 => "Tuyên Quang",
        25 => "Lai Châu",
        26 => "Sơn La",
        27 => "Điện Biên",
        29..=33 | 40 => "Hà Nội",
        36 => "Thanh Hóa",
        37 => "Nghệ An",
        38 => "Hà Tĩnh",
        39 | 60 | 93 => "Đồng Nai",
        41 | 50..=59 | 61 | 72 => "TP. Hồ Chí Minh",
        43 | 92 => "Đà Nẵng",
        47 | 78 => "Đắk Lắk",
        48 | 49 | 86 => "Lâm Đồng",
        62 | 70 => "Tây Ninh",
        63 | 66 => "Đồng Tháp",
        64 | 71 | 84 => "Vĩnh Long",
        65 | 83 | 95 => "Cần Thơ",
        67 | 68 => "An Giang",
        69 | 94 => "Cà Mau",
        73 | 74 => "Quảng Trị",
        75 => "Huế",
        76 | 82 => "Quảng Ngãi",
        77 | 81 => "Gia Lai",
        79 | 85 => "Khánh Hòa",
        80 => "Cục Cảnh sát giao thông (cơ quan trung ương)",
        98 | 99 => "Bắc Ninh",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_one_of_the_34_provinces_has_a_code() {
        let names: std::collections::BTreeSet<_> = (0..=99u8).filter_map(province_of).collect();
        // 34 provinces plus the central agencies' code 80.
        assert_eq!(names.len(), 35, "{names:?}");
    }

    #[test]
    fn unassigned_codes_are_refused() {
        for code in [0, 10, 13, 42, 44, 45, 46, 87, 91, 96] {
            assert_eq!(province_of(code), None, "{code}");
        }
        assert_eq!(province_of(59), Some("TP. Hồ Chí Minh"));
        assert_eq!(province_of(34), Some("Hải Phòng"));
    }
}
