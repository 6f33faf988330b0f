//! The static table (RFC 7541 Appendix A): 61 fixed entries, indices 1 to 61.

/// Entries in the static table; dynamic indices start right after.
pub(super) const LEN: usize = 61;

/// Entry `i` of the static table is `ENTRIES[i - 1]`.
const ENTRIES: [(&[u8], &[u8]); LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The entry at `index` (1-based), if it is a static index.
#[inline]
pub(super) fn get(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    ENTRIES.get(index.checked_sub(1)?).copied()
}

/// The best static entry for a field, if its name is in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Match {
    /// The lowest index with this name.
    pub(super) name: usize,
    /// The index holding this exact name and value, if any.
    pub(super) full: Option<usize>,
}

/// Looks a field up in the static table without scanning it: the compiler turns the
/// match into a length switch and a few comparisons.
pub(super) fn find(name: &[u8], value: &[u8]) -> Option<Match> {
    // Each name's entries are consecutive; list its first index and its values in order.
    let (first, values): (usize, &[&[u8]]) = match name {
        b":authority" => (1, &[b""]),
        b":method" => (2, &[b"GET", b"POST"]),
        b":path" => (4, &[b"/", b"/index.html"]),
        b":scheme" => (6, &[b"http", b"https"]),
        b":status" => (8, &[b"200", b"204", b"206", b"304", b"400", b"404", b"500"]),
        b"accept-charset" => (15, &[b""]),
        b"accept-encoding" => (16, &[b"gzip, deflate"]),
        b"accept-language" => (17, &[b""]),
        b"accept-ranges" => (18, &[b""]),
        b"accept" => (19, &[b""]),
        b"access-control-allow-origin" => (20, &[b""]),
        b"age" => (21, &[b""]),
        b"allow" => (22, &[b""]),
        b"authorization" => (23, &[b""]),
        b"cache-control" => (24, &[b""]),
        b"content-disposition" => (25, &[b""]),
        b"content-encoding" => (26, &[b""]),
        b"content-language" => (27, &[b""]),
        b"content-length" => (28, &[b""]),
        b"content-location" => (29, &[b""]),
        b"content-range" => (30, &[b""]),
        b"content-type" => (31, &[b""]),
        b"cookie" => (32, &[b""]),
        b"date" => (33, &[b""]),
        b"etag" => (34, &[b""]),
        b"expect" => (35, &[b""]),
        b"expires" => (36, &[b""]),
        b"from" => (37, &[b""]),
        b"host" => (38, &[b""]),
        b"if-match" => (39, &[b""]),
        b"if-modified-since" => (40, &[b""]),
        b"if-none-match" => (41, &[b""]),
        b"if-range" => (42, &[b""]),
        b"if-unmodified-since" => (43, &[b""]),
        b"last-modified" => (44, &[b""]),
        b"link" => (45, &[b""]),
        b"location" => (46, &[b""]),
        b"max-forwards" => (47, &[b""]),
        b"proxy-authenticate" => (48, &[b""]),
        b"proxy-authorization" => (49, &[b""]),
        b"range" => (50, &[b""]),
        b"referer" => (51, &[b""]),
        b"refresh" => (52, &[b""]),
        b"retry-after" => (53, &[b""]),
        b"server" => (54, &[b""]),
        b"set-cookie" => (55, &[b""]),
        b"strict-transport-security" => (56, &[b""]),
        b"transfer-encoding" => (57, &[b""]),
        b"user-agent" => (58, &[b""]),
        b"vary" => (59, &[b""]),
        b"via" => (60, &[b""]),
        b"www-authenticate" => (61, &[b""]),
        _ => return None,
    };
    let full = values.iter().position(|v| *v == value).map(|i| first + i);
    Some(Match { name: first, full })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find` must agree with a plain scan of the table for every entry.
    #[test]
    fn find_agrees_with_the_table() {
        for index in 1..=LEN {
            let (name, value) = get(index).unwrap();
            let lowest = (1..=LEN).find(|&i| get(i).unwrap().0 == name).unwrap();
            assert_eq!(
                find(name, value),
                Some(Match {
                    name: lowest,
                    full: Some(index)
                }),
                "{index}"
            );
            assert_eq!(
                find(name, b"\x00other").map(|m| (m.name, m.full)),
                Some((lowest, None))
            );
        }
    }

    #[test]
    fn unknown_names_and_bounds() {
        assert_eq!(find(b"grpc-timeout", b"1S"), None);
        assert_eq!(find(b":Method", b"GET"), None);
        assert_eq!(get(0), None);
        assert_eq!(get(LEN + 1), None);
        assert_eq!(get(1), Some((&b":authority"[..], &b""[..])));
        assert_eq!(get(LEN), Some((&b"www-authenticate"[..], &b""[..])));
    }
}
