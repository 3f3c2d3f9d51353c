//! Text on pages: URL encoding, local times (escaping is the templates' own).

/// What a query value keeps as it is: RFC 3986's unreserved characters, and `/` so that a path given as
/// `next=` stays readable.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Times on pages are Vietnam's (UTC+7), as officers and the fines system read them.
pub fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&crate::store::vietnam()).format("%d/%m/%Y %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_query_value_is_percent_encoded() {
        assert_eq!(super::url_encode("/evidence/01H?x=1&y=ă"), "/evidence/01H%3Fx%3D1%26y%3D%C4%83");
    }
}
