//! Prefix-coded integers (RFC 7541 §5.1).
//!
//! The decoder accepts at most [`MAX_CONTINUATION_BYTES`] bytes after the prefix, so every
//! value it returns is below `2^N - 1 + 2^28` for an N-bit prefix. Nothing in HPACK needs
//! more: string lengths are bounded by the header block, indices by the table, and table
//! sizes by our SETTINGS_HEADER_TABLE_SIZE. Longer encodings, whether they would overflow
//! or merely carry redundant zero groups, are rejected rather than summed, which is what
//! keeps `ff 80 80 80 …` from costing anything.

use bytes::{BufMut, BytesMut};

use super::DecodeError;

/// Continuation bytes accepted after a full prefix: 4 × 7 bits = 28 bits.
pub(super) const MAX_CONTINUATION_BYTES: usize = 4;

// The decoder sums up to 8 + 28 bits into a usize.
const _: () = assert!(usize::BITS >= 32);

/// Decodes the integer whose first byte is `buf[*pos]`, using its low `prefix_bits` bits,
/// and advances `pos` past it. The bits above the prefix are the caller's business.
#[inline]
pub(super) fn decode(buf: &[u8], pos: &mut usize, prefix_bits: u8) -> Result<usize, DecodeError> {
    debug_assert!((1..=8).contains(&prefix_bits));
    let max = (1usize << prefix_bits) - 1;
    let first = *buf.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0;
    for _ in 0..MAX_CONTINUATION_BYTES {
        let byte = *buf.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
    Err(DecodeError::IntegerTooLong)
}

/// Appends `value` with an N-bit prefix; `flags` fills the bits above the prefix.
pub(super) fn encode(dst: &mut BytesMut, flags: u8, prefix_bits: u8, value: usize) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(buf: &[u8], prefix: u8) -> Result<(usize, usize), DecodeError> {
        let mut pos = 0;
        decode(buf, &mut pos, prefix).map(|v| (v, pos))
    }

    fn enc(flags: u8, prefix: u8, value: usize) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(&mut dst, flags, prefix, value);
        dst.to_vec()
    }

    #[test]
    fn rfc_c1_examples() {
        // C.1.1: 10 with a 5-bit prefix.
        assert_eq!(enc(0, 5, 10), [0x0a]);
        assert_eq!(dec(&[0x0a], 5), Ok((10, 1)));
        // C.1.2: 1337 with a 5-bit prefix.
        assert_eq!(enc(0, 5, 1337), [0x1f, 0x9a, 0x0a]);
        assert_eq!(dec(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
        // C.1.3: 42 on an octet boundary.
        assert_eq!(enc(0, 8, 42), [0x2a]);
        assert_eq!(dec(&[0x2a], 8), Ok((42, 1)));
    }

    #[test]
    fn bits_above_the_prefix_are_ignored_and_kept() {
        assert_eq!(dec(&[0xff, 0x9a, 0x0a], 5), Ok((1337, 3)));
        assert_eq!(enc(0xe0, 5, 1337), [0xff, 0x9a, 0x0a]);
        assert_eq!(enc(0x80, 7, 2), [0x82]);
    }

    #[test]
    fn exactly_the_prefix_maximum_takes_a_zero_continuation() {
        assert_eq!(enc(0, 7, 127), [0x7f, 0x00]);
        assert_eq!(dec(&[0x7f, 0x00], 7), Ok((127, 2)));
    }

    #[test]
    fn truncation_is_an_error() {
        assert_eq!(dec(&[], 7), Err(DecodeError::Truncated));
        assert_eq!(dec(&[0x7f], 7), Err(DecodeError::Truncated));
        assert_eq!(dec(&[0x7f, 0xff, 0xff], 7), Err(DecodeError::Truncated));
    }

    #[test]
    fn the_largest_accepted_value_and_one_byte_too_many() {
        let largest = 127 + (1 << 28) - 1;
        assert_eq!(dec(&[0x7f, 0xff, 0xff, 0xff, 0x7f], 7), Ok((largest, 5)));
        assert_eq!(enc(0, 7, largest), [0x7f, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(
            dec(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0x00], 7),
            Err(DecodeError::IntegerTooLong)
        );
        // Redundant zero groups count against the bound too.
        assert_eq!(
            dec(&[0x7f, 0x80, 0x80, 0x80, 0x80, 0x00], 7),
            Err(DecodeError::IntegerTooLong)
        );
        assert_eq!(dec(&[0x7f, 0x80, 0x80, 0x80, 0x00], 7), Ok((127, 5)));
        // The hostile rows: 2^63-ish and ten 0xff.
        assert_eq!(
            dec(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                7
            ),
            Err(DecodeError::IntegerTooLong)
        );
    }

    proptest! {
        #[test]
        fn round_trip(value in 0usize..(1 << 28), prefix in 1u8..=8, flags in any::<u8>()) {
            let flags = if prefix == 8 { 0 } else { flags & !((1u8 << prefix) - 1) };
            let bytes = enc(flags, prefix, value);
            prop_assert_eq!(bytes[0] & !((1u16 << prefix) - 1) as u8, flags);
            prop_assert_eq!(dec(&bytes, prefix), Ok((value, bytes.len())));
        }
    }
}
