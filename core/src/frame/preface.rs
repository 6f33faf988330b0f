//! The client connection preface (RFC 9113 §3.4).

/// The 24 octets a client sends first, before its SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the start of a connection's bytes says about the client preface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefaceCheck {
    /// The buffer starts with the whole preface; frames follow it.
    Complete,
    /// The buffer is a proper prefix of the preface (possibly empty): wait for more.
    Partial,
    /// Not the preface: a connection PROTOCOL_ERROR (§3.4), for which a GOAWAY may be
    /// skipped since the peer is not speaking HTTP/2.
    Invalid,
}

/// Checks the start of what a client sent against [`PREFACE`]. Answers `Invalid` as
/// soon as one octet differs, so a non-HTTP/2 peer is not waited on.
pub fn check_preface(buf: &[u8]) -> PrefaceCheck {
    if buf.starts_with(PREFACE) {
        PrefaceCheck::Complete
    } else if PREFACE.starts_with(buf) {
        PrefaceCheck::Partial
    } else {
        PrefaceCheck::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_is_the_rfc_octets() {
        let hex = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a";
        let expected: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(&PREFACE[..], &expected[..]);
    }

    #[test]
    fn check_preface_classifies_complete_partial_and_invalid() {
        assert_eq!(check_preface(b""), PrefaceCheck::Partial);
        for n in 1..PREFACE.len() {
            assert_eq!(
                check_preface(&PREFACE[..n]),
                PrefaceCheck::Partial,
                "prefix of {n}"
            );
        }
        assert_eq!(check_preface(PREFACE), PrefaceCheck::Complete);
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(check_preface(&more), PrefaceCheck::Complete);
        assert_eq!(check_preface(b"GET / HTTP/1.1\r\n"), PrefaceCheck::Invalid);
        assert_eq!(check_preface(b"PRI * HTTP/1.1"), PrefaceCheck::Invalid);
        assert_eq!(check_preface(b"X"), PrefaceCheck::Invalid);
        let mut wrong_tail = *PREFACE;
        wrong_tail[23] = b'x';
        assert_eq!(check_preface(&wrong_tail), PrefaceCheck::Invalid);
    }
}
