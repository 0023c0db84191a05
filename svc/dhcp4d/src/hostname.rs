//! Client hostnames (options 12 and 81) made into valid DNS labels, because
//! dnsd publishes them as `<name>.lan` (RFC 1035 §2.3.1, RFC 1123 §2.1).
//!
//! Only the first label counts (a client sending `laptop.example.com` is
//! `laptop`). Letters are lower-cased, digits kept, spaces, underscores and
//! hyphens become one hyphen, everything else (dots after the first label,
//! punctuation, non-ASCII bytes) is dropped; leading and trailing hyphens go,
//! and the result is cut to 63 bytes. What is left empty is no name at all.

/// The longest DNS label.
pub const MAX_LABEL: usize = 63;

/// The sanitised first label of `raw`, or `None` when nothing usable is left.
#[must_use]
pub fn sanitize(raw: &[u8]) -> Option<String> {
    let first = raw.split(|b| *b == b'.').next().unwrap_or_default();
    let mut out = String::with_capacity(first.len().min(MAX_LABEL));
    for &b in first {
        let c = match b {
            b'a'..=b'z' | b'0'..=b'9' => b as char,
            b'A'..=b'Z' => b.to_ascii_lowercase() as char,
            b' ' | b'_' | b'-' => '-',
            _ => continue,
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
        if out.len() == MAX_LABEL {
            break;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `name` is already a valid label as [`sanitize`] would produce it.
#[must_use]
pub fn is_valid_label(name: &str) -> bool {
    sanitize(name.as_bytes()).as_deref() == Some(name)
}

/// Names no client may take: the router's own (case-insensitively, as dnsd
/// answers it) and `localhost`.
#[must_use]
pub fn is_reserved(name: &str, router_hostname: Option<&str>) -> bool {
    name == "localhost" || router_hostname.is_some_and(|r| r.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_valid_labels() {
        let cases: [(&[u8], Option<&str>); 14] = [
            (b"xps", Some("xps")),
            (b"Johns-iPhone", Some("johns-iphone")),
            (b"John's iPhone", Some("johns-iphone")),
            (b"android_1234abcd", Some("android-1234abcd")),
            (b"laptop.example.com", Some("laptop")),
            (b"--x--y--", Some("x-y")),
            (b"  spaced  out  ", Some("spaced-out")),
            (b"caf\xc3\xa9", Some("caf")),
            (b"\xff\xfe", None),
            (b"", None),
            (b"---", None),
            (b".lan", None),
            (b"!!!", None),
            (b"UPPER", Some("upper")),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize(raw).as_deref(), want, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn cuts_to_63_bytes_without_a_trailing_hyphen() {
        let long = "a".repeat(100);
        assert_eq!(sanitize(long.as_bytes()).map(|s| s.len()), Some(63));
        let hyphen_at_cut = format!("{}-{}", "b".repeat(62), "c".repeat(10));
        let got = sanitize(hyphen_at_cut.as_bytes()).unwrap();
        assert_eq!(got, "b".repeat(62));
        assert!(is_valid_label(&got));
    }

    #[test]
    fn the_router_name_and_localhost_are_reserved() {
        assert!(is_reserved("router7", Some("router7")));
        assert!(is_reserved("router7", Some("Router7")));
        assert!(is_reserved("localhost", None));
        assert!(!is_reserved("router8", Some("router7")));
        assert!(!is_reserved("xps", None));
    }

    #[test]
    fn valid_labels_are_exactly_what_sanitize_keeps() {
        assert!(is_valid_label("nas-1"));
        for bad in ["Nas", "nas_1", "-nas", "nas-", "", "a.b", "n a s"] {
            assert!(!is_valid_label(bad), "{bad}");
        }
    }
}
