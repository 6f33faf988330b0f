//! Byte-class checks over whole header values.

/// True when every byte of `bytes` satisfies `pred`.
///
/// Unlike `Iterator::all` it does not stop at the first failure: a branch-free pass
/// the compiler vectorises. The paths, authorities and metadata values checked on
/// every call are valid nearly always, so stopping early saves nothing, and a
/// byte-at-a-time loop was most of the cost of building a call's request headers.
pub(crate) fn all(bytes: &[u8], pred: impl Fn(u8) -> bool) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & pred(b))
}

/// How many bytes of `bytes` equal `byte` (a vectorised count, as in [`all`]).
pub(crate) fn count(bytes: &[u8], byte: u8) -> usize {
    bytes.iter().filter(|&&b| b == byte).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_sees_a_failure_anywhere() {
        let visible = |b: u8| (0x21..=0x7E).contains(&b);
        let mut s = vec![b'a'; 70];
        assert!(all(&s, visible));
        assert!(all(&[], visible));
        for at in [0, 31, 32, 69] {
            s[at] = b' ';
            assert!(!all(&s, visible), "{at}");
            s[at] = b'a';
        }
    }

    #[test]
    fn count_counts_every_occurrence() {
        assert_eq!(count(b"/svc.a/M", b'/'), 2);
        assert_eq!(count(b"", b'/'), 0);
        assert_eq!(count(&[b'/'; 100], b'/'), 100);
    }
}
