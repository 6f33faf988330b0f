//! The percent-encoding of `grpc-message` (PROTOCOL-HTTP2.md, "Status-Message").
//!
//! The message is UTF-8 text; on the wire every byte outside `0x20..=0x7E`, and `%`
//! itself, is written as `%XX`. Decoding never fails: the spec forbids throwing a status
//! message away, so a `%` not followed by two hex digits stays as it is and bytes that are
//! not UTF-8 after decoding become U+FFFD.

use std::borrow::Cow;

/// True for the bytes `grpc-message` carries as themselves: space and visible ASCII
/// except `%`.
const fn is_unreserved(b: u8) -> bool {
    matches!(b, 0x20..=0x7e) && b != b'%'
}

/// Encodes a status message for the `grpc-message` header.
///
/// Returns the input itself when no byte needs escaping (the common case of a plain ASCII
/// message), so sending such a status does not allocate here. Hex digits are upper case,
/// as the spec's grammar writes them.
pub fn encode_grpc_message(message: &str) -> Cow<'_, str> {
    let bytes = message.as_bytes();
    let Some(first) = bytes.iter().position(|&b| !is_unreserved(b)) else {
        return Cow::Borrowed(message);
    };
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let escapes = bytes[first..]
        .iter()
        .filter(|&&b| !is_unreserved(b))
        .count();
    let mut out = String::with_capacity(bytes.len() + 2 * escapes);
    out.push_str(&message[..first]);
    for &b in &bytes[first..] {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    Cow::Owned(out)
}

/// Decodes a received `grpc-message` value.
///
/// `%XX` with two hex digits (either case: being strict would only lose text) becomes
/// the byte; any other `%` is kept. The result is read as UTF-8, with U+FFFD for invalid
/// sequences. A value with no `%` that is valid UTF-8 is returned as is, without
/// allocating.
pub fn decode_grpc_message(value: &[u8]) -> Cow<'_, str> {
    if !value.contains(&b'%') {
        return String::from_utf8_lossy(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%'
            && let Some(&[hi, lo]) = value.get(i + 1..i + 3)
            && let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
    }
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_escapes_exactly_the_bytes_outside_the_unreserved_range() {
        let table = [
            ("", ""),
            ("plain text ~!", "plain text ~!"),
            ("100%", "100%25"),
            ("%", "%25"),
            ("a\nb", "a%0Ab"),
            ("\t\r\0", "%09%0D%00"),
            ("\x7f", "%7F"),
            ("\x1f \x20", "%1F  "),
            ("é", "%C3%A9"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
            ("\u{1F600}", "%F0%9F%98%80"),
        ];
        for (message, wire) in table {
            assert_eq!(encode_grpc_message(message), wire, "{message:?}");
            assert_eq!(decode_grpc_message(wire.as_bytes()), message, "{wire:?}");
        }
    }

    #[test]
    fn nothing_to_escape_or_unescape_borrows_the_input() {
        assert!(matches!(
            encode_grpc_message("no escapes"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            decode_grpc_message(b"no escapes"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(encode_grpc_message("50%"), Cow::Owned(_)));
    }

    #[test]
    fn invalid_percent_sequences_pass_through_unchanged() {
        let table: [(&[u8], &str); 10] = [
            (b"%", "%"),
            (b"%4", "%4"),
            (b"abc%", "abc%"),
            (b"%zz", "%zz"),
            (b"%4g", "%4g"),
            (b"%g4", "%g4"),
            (b"100% sure", "100% sure"),
            (b"%%41", "%A"),
            (b"%2541", "%41"),
            (b"%%", "%%"),
        ];
        for (wire, message) in table {
            assert_eq!(
                decode_grpc_message(wire),
                message,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn lower_case_hex_digits_are_accepted() {
        assert_eq!(decode_grpc_message(b"%c3%a9 %0a"), "é \n");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        assert_eq!(decode_grpc_message(b"%FF ok"), "\u{FFFD} ok");
        assert_eq!(decode_grpc_message(b"%C3"), "\u{FFFD}");
        assert_eq!(decode_grpc_message(b"raw \xff"), "raw \u{FFFD}");
        assert_eq!(decode_grpc_message(b"raw \xff %41"), "raw \u{FFFD} A");
    }

    proptest! {
        #[test]
        fn any_message_round_trips(message in any::<String>()) {
            let wire = encode_grpc_message(&message);
            prop_assert!(wire.bytes().all(|b| is_unreserved(b) || b == b'%'));
            prop_assert_eq!(decode_grpc_message(wire.as_bytes()), message.as_str());
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(wire in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_grpc_message(&wire);
        }

        #[test]
        fn percent_heavy_input_decodes_without_panicking(
            wire in proptest::collection::vec(prop_oneof![Just(b'%'), Just(b'4'), Just(b'f'), Just(b'x')], 0..16)
        ) {
            let _ = decode_grpc_message(&wire);
        }
    }
}
