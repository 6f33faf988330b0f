//! The static Huffman code of RFC 7541 Appendix B: one code list, typed in from the RFC,
//! and everything else derived from it at compile time.
//!
//! The decoder walks the code four bits at a time through a 256-state machine (one state
//! per internal node of the code tree), so decoding a string costs two table reads per
//! input byte and needs no setup at run time. The compile-time derivation asserts the
//! properties the decoder relies on (a complete prefix code, canonical as the RFC says,
//! at most one symbol per nibble), so a mistyped row fails the build instead of decoding
//! garbage.

use bytes::{BufMut, BytesMut};

use super::DecodeError;

/// The EOS symbol: never encoded inside a string; its prefix is the only valid padding.
const EOS: usize = 256;

/// Longest code in the table, in bits (several rows, EOS among them).
const MAX_CODE_BITS: u8 = 30;

/// Shortest code in the table, in bits: why one nibble completes at most one symbol, and
/// why a Huffman string of `n` bytes decodes to at most `n * 8 / 5` bytes.
const MIN_CODE_BITS: u8 = 5;

/// Padding longer than this is an error (RFC 7541 §5.2).
const MAX_PADDING_BITS: u8 = 7;

/// `CODES[symbol] = (code, length in bits)`, the code right-aligned, for symbols 0..=255
/// and EOS (256), exactly as in RFC 7541 Appendix B.
#[rustfmt::skip]
pub(super) const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),      (0x7fffd8, 23),    (0xfffffe2, 28),   (0xfffffe3, 28),   //   0-3
    (0xfffffe4, 28),   (0xfffffe5, 28),   (0xfffffe6, 28),   (0xfffffe7, 28),   //   4-7
    (0xfffffe8, 28),   (0xffffea, 24),    (0x3ffffffc, 30),  (0xfffffe9, 28),   //   8-11
    (0xfffffea, 28),   (0x3ffffffd, 30),  (0xfffffeb, 28),   (0xfffffec, 28),   //  12-15
    (0xfffffed, 28),   (0xfffffee, 28),   (0xfffffef, 28),   (0xffffff0, 28),   //  16-19
    (0xffffff1, 28),   (0xffffff2, 28),   (0x3ffffffe, 30),  (0xffffff3, 28),   //  20-23
    (0xffffff4, 28),   (0xffffff5, 28),   (0xffffff6, 28),   (0xffffff7, 28),   //  24-27
    (0xffffff8, 28),   (0xffffff9, 28),   (0xffffffa, 28),   (0xffffffb, 28),   //  28-31
    (0x14, 6),         (0x3f8, 10),       (0x3f9, 10),       (0xffa, 12),       //  ' ' ! " #
    (0x1ff9, 13),      (0x15, 6),         (0xf8, 8),         (0x7fa, 11),       //  $ % & '
    (0x3fa, 10),       (0x3fb, 10),       (0xf9, 8),         (0x7fb, 11),       //  ( ) * +
    (0xfa, 8),         (0x16, 6),         (0x17, 6),         (0x18, 6),         //  , - . /
    (0x0, 5),          (0x1, 5),          (0x2, 5),          (0x19, 6),         //  0 1 2 3
    (0x1a, 6),         (0x1b, 6),         (0x1c, 6),         (0x1d, 6),         //  4 5 6 7
    (0x1e, 6),         (0x1f, 6),         (0x5c, 7),         (0xfb, 8),         //  8 9 : ;
    (0x7ffc, 15),      (0x20, 6),         (0xffb, 12),       (0x3fc, 10),       //  < = > ?
    (0x1ffa, 13),      (0x21, 6),         (0x5d, 7),         (0x5e, 7),         //  @ A B C
    (0x5f, 7),         (0x60, 7),         (0x61, 7),         (0x62, 7),         //  D E F G
    (0x63, 7),         (0x64, 7),         (0x65, 7),         (0x66, 7),         //  H I J K
    (0x67, 7),         (0x68, 7),         (0x69, 7),         (0x6a, 7),         //  L M N O
    (0x6b, 7),         (0x6c, 7),         (0x6d, 7),         (0x6e, 7),         //  P Q R S
    (0x6f, 7),         (0x70, 7),         (0x71, 7),         (0x72, 7),         //  T U V W
    (0xfc, 8),         (0x73, 7),         (0xfd, 8),         (0x1ffb, 13),      //  X Y Z [
    (0x7fff0, 19),     (0x1ffc, 13),      (0x3ffc, 14),      (0x22, 6),         //  \ ] ^ _
    (0x7ffd, 15),      (0x3, 5),          (0x23, 6),         (0x4, 5),          //  ` a b c
    (0x24, 6),         (0x5, 5),          (0x25, 6),         (0x26, 6),         //  d e f g
    (0x27, 6),         (0x6, 5),          (0x74, 7),         (0x75, 7),         //  h i j k
    (0x28, 6),         (0x29, 6),         (0x2a, 6),         (0x7, 5),          //  l m n o
    (0x2b, 6),         (0x76, 7),         (0x2c, 6),         (0x8, 5),          //  p q r s
    (0x9, 5),          (0x2d, 6),         (0x77, 7),         (0x78, 7),         //  t u v w
    (0x79, 7),         (0x7a, 7),         (0x7b, 7),         (0x7ffe, 15),      //  x y z {
    (0x7fc, 11),       (0x3ffd, 14),      (0x1ffd, 13),      (0xffffffc, 28),   //  | } ~ 127
    (0xfffe6, 20),     (0x3fffd2, 22),    (0xfffe7, 20),     (0xfffe8, 20),     // 128-131
    (0x3fffd3, 22),    (0x3fffd4, 22),    (0x3fffd5, 22),    (0x7fffd9, 23),    // 132-135
    (0x3fffd6, 22),    (0x7fffda, 23),    (0x7fffdb, 23),    (0x7fffdc, 23),    // 136-139
    (0x7fffdd, 23),    (0x7fffde, 23),    (0xffffeb, 24),    (0x7fffdf, 23),    // 140-143
    (0xffffec, 24),    (0xffffed, 24),    (0x3fffd7, 22),    (0x7fffe0, 23),    // 144-147
    (0xffffee, 24),    (0x7fffe1, 23),    (0x7fffe2, 23),    (0x7fffe3, 23),    // 148-151
    (0x7fffe4, 23),    (0x1fffdc, 21),    (0x3fffd8, 22),    (0x7fffe5, 23),    // 152-155
    (0x3fffd9, 22),    (0x7fffe6, 23),    (0x7fffe7, 23),    (0xffffef, 24),    // 156-159
    (0x3fffda, 22),    (0x1fffdd, 21),    (0xfffe9, 20),     (0x3fffdb, 22),    // 160-163
    (0x3fffdc, 22),    (0x7fffe8, 23),    (0x7fffe9, 23),    (0x1fffde, 21),    // 164-167
    (0x7fffea, 23),    (0x3fffdd, 22),    (0x3fffde, 22),    (0xfffff0, 24),    // 168-171
    (0x1fffdf, 21),    (0x3fffdf, 22),    (0x7fffeb, 23),    (0x7fffec, 23),    // 172-175
    (0x1fffe0, 21),    (0x1fffe1, 21),    (0x3fffe0, 22),    (0x1fffe2, 21),    // 176-179
    (0x7fffed, 23),    (0x3fffe1, 22),    (0x7fffee, 23),    (0x7fffef, 23),    // 180-183
    (0xfffea, 20),     (0x3fffe2, 22),    (0x3fffe3, 22),    (0x3fffe4, 22),    // 184-187
    (0x7ffff0, 23),    (0x3fffe5, 22),    (0x3fffe6, 22),    (0x7ffff1, 23),    // 188-191
    (0x3ffffe0, 26),   (0x3ffffe1, 26),   (0xfffeb, 20),     (0x7fff1, 19),     // 192-195
    (0x3fffe7, 22),    (0x7ffff2, 23),    (0x3fffe8, 22),    (0x1ffffec, 25),   // 196-199
    (0x3ffffe2, 26),   (0x3ffffe3, 26),   (0x3ffffe4, 26),   (0x7ffffde, 27),   // 200-203
    (0x7ffffdf, 27),   (0x3ffffe5, 26),   (0xfffff1, 24),    (0x1ffffed, 25),   // 204-207
    (0x7fff2, 19),     (0x1fffe3, 21),    (0x3ffffe6, 26),   (0x7ffffe0, 27),   // 208-211
    (0x7ffffe1, 27),   (0x3ffffe7, 26),   (0x7ffffe2, 27),   (0xfffff2, 24),    // 212-215
    (0x1fffe4, 21),    (0x1fffe5, 21),    (0x3ffffe8, 26),   (0x3ffffe9, 26),   // 216-219
    (0xffffffd, 28),   (0x7ffffe3, 27),   (0x7ffffe4, 27),   (0x7ffffe5, 27),   // 220-223
    (0xfffec, 20),     (0xfffff3, 24),    (0xfffed, 20),     (0x1fffe6, 21),    // 224-227
    (0x3fffe9, 22),    (0x1fffe7, 21),    (0x1fffe8, 21),    (0x7ffff3, 23),    // 228-231
    (0x3fffea, 22),    (0x3fffeb, 22),    (0x1ffffee, 25),   (0x1ffffef, 25),   // 232-235
    (0xfffff4, 24),    (0xfffff5, 24),    (0x3ffffea, 26),   (0x7ffff4, 23),    // 236-239
    (0x3ffffeb, 26),   (0x7ffffe6, 27),   (0x3ffffec, 26),   (0x3ffffed, 26),   // 240-243
    (0x7ffffe7, 27),   (0x7ffffe8, 27),   (0x7ffffe9, 27),   (0x7ffffea, 27),   // 244-247
    (0x7ffffeb, 27),   (0xffffffe, 28),   (0x7ffffec, 27),   (0x7ffffed, 27),   // 248-251
    (0x7ffffee, 27),   (0x7ffffef, 27),   (0x7fffff0, 27),   (0x3ffffee, 26),   // 252-255
    (0x3fffffff, 30),                                                           // EOS
];

/// The code tree has one internal node per state: 257 leaves need 256 internal nodes.
const STATES: usize = 256;

/// Transition flag: this nibble completed a symbol, found in `sym`.
const EMIT: u8 = 1;
/// Transition flag: this nibble completed EOS, which must not appear inside a string.
const FAIL: u8 = 2;

/// Where a string may end, by the state the decoder is in after its last byte.
const END_OK: u8 = 0;
const END_PADDING_TOO_LONG: u8 = 1;
const END_PADDING_NOT_EOS: u8 = 2;

/// One step of the nibble machine.
#[derive(Clone, Copy)]
struct Transition {
    next: u8,
    sym: u8,
    flags: u8,
}

struct Machine {
    transitions: [[Transition; 16]; STATES],
    end: [u8; STATES],
}

/// Built once by the compiler; read-only at run time.
static MACHINE: Machine = build_machine();

/// A child slot holding a leaf stores `LEAF | symbol`; an empty slot holds 0 (the root is
/// never anyone's child, so 0 cannot name a real child).
const LEAF: u16 = 0x8000;

const fn build_machine() -> Machine {
    check_canonical();

    // Grow the tree one code at a time; nodes are numbered in creation order, root 0.
    let mut children = [[0u16; 2]; STATES];
    let mut depth = [0u8; STATES];
    let mut all_ones = [false; STATES];
    all_ones[0] = true;
    let mut nodes = 1usize;
    let mut sym = 0usize;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        assert!(
            len >= MIN_CODE_BITS && len <= MAX_CODE_BITS,
            "code length out of range"
        );
        let mut node = 0usize;
        let mut bit_pos = len;
        while bit_pos > 1 {
            bit_pos -= 1;
            let bit = ((code >> bit_pos) & 1) as usize;
            let child = children[node][bit];
            if child == 0 {
                assert!(
                    nodes < STATES,
                    "more internal nodes than a 257-leaf tree has"
                );
                children[node][bit] = nodes as u16;
                depth[nodes] = depth[node] + 1;
                all_ones[nodes] = all_ones[node] && bit == 1;
                node = nodes;
                nodes += 1;
            } else {
                assert!(child & LEAF == 0, "a code is a prefix of another");
                node = child as usize;
            }
        }
        let bit = (code & 1) as usize;
        assert!(children[node][bit] == 0, "a code is a prefix of another");
        children[node][bit] = LEAF | sym as u16;
        sym += 1;
    }
    assert!(nodes == STATES, "the code is not complete");

    let mut end = [END_OK; STATES];
    let mut node = 0;
    while node < STATES {
        assert!(
            children[node][0] != 0 && children[node][1] != 0,
            "the code is not complete"
        );
        end[node] = if !all_ones[node] {
            END_PADDING_NOT_EOS
        } else if depth[node] > MAX_PADDING_BITS {
            END_PADDING_TOO_LONG
        } else {
            END_OK
        };
        node += 1;
    }

    let mut transitions = [[Transition {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; STATES];
    let mut state = 0;
    while state < STATES {
        let mut nibble = 0usize;
        while nibble < 16 {
            let mut node = state;
            let mut step = Transition {
                next: 0,
                sym: 0,
                flags: 0,
            };
            let mut k = 4;
            while k > 0 {
                k -= 1;
                let child = children[node][(nibble >> k) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                    continue;
                }
                let leaf = (child & !LEAF) as usize;
                if leaf == EOS {
                    step.flags |= FAIL;
                } else {
                    assert!(step.flags & EMIT == 0, "two symbols in one nibble");
                    step.flags |= EMIT;
                    step.sym = leaf as u8;
                }
                node = 0;
            }
            step.next = node as u8;
            transitions[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    Machine { transitions, end }
}

/// RFC 7541 calls the code canonical: given the lengths, the codes follow. Recomputing
/// them catches a mistyped code or length in [`CODES`].
const fn check_canonical() {
    let mut next: u32 = 0;
    let mut len = MIN_CODE_BITS;
    while len <= MAX_CODE_BITS {
        let mut sym = 0;
        while sym < CODES.len() {
            if CODES[sym].1 == len {
                assert!(CODES[sym].0 == next, "code differs from the canonical code");
                next += 1;
            }
            sym += 1;
        }
        next <<= 1;
        len += 1;
    }
    // After the longest codes the code space is exactly used up.
    assert!(next == 1 << (MAX_CODE_BITS + 1), "the code is not complete");
}

/// Length in bytes of `src` once Huffman-coded, padding included.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: u64 = src
        .iter()
        .map(|&b| u64::from(CODES[usize::from(b)].1))
        .sum();
    // At most 30 bits per input byte, so this fits whenever `src` does.
    bits.div_ceil(8) as usize
}

/// Appends the Huffman coding of `src` to `dst`, padded with the EOS prefix.
pub(super) fn encode(src: &[u8], dst: &mut BytesMut) {
    dst.reserve(encoded_len(src));
    // Up to 31 pending bits plus one 30-bit code fit in 64.
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &b in src {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        if pending >= 32 {
            pending -= 32;
            dst.put_u32((acc >> pending) as u32);
        }
    }
    while pending >= 8 {
        pending -= 8;
        dst.put_u8((acc >> pending) as u8);
    }
    if pending > 0 {
        let shift = 8 - pending;
        dst.put_u8(((acc << shift) as u8) | (0xff >> pending));
    }
}

/// Runs the machine over `src`, handing each decoded byte to `emit`.
#[inline(always)]
fn run(src: &[u8], mut emit: impl FnMut(u8)) -> Result<(), DecodeError> {
    let mut state = 0u8;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = MACHINE.transitions[usize::from(state)][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(DecodeError::HuffmanEos);
            }
            if step.flags & EMIT != 0 {
                emit(step.sym);
            }
            state = step.next;
        }
    }
    match MACHINE.end[usize::from(state)] {
        END_OK => Ok(()),
        END_PADDING_TOO_LONG => Err(DecodeError::HuffmanPaddingTooLong),
        _ => Err(DecodeError::HuffmanPaddingNotEos),
    }
}

/// Appends the decoding of the Huffman string `src` to `dst`.
///
/// Reserves for the worst case (`src.len() * 8 / 5` bytes) up front: bounded by the bytes
/// present, never by a length the peer claimed.
pub(super) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    dst.reserve(src.len().saturating_mul(8) / usize::from(MIN_CODE_BITS));
    run(src, |b| dst.push(b))
}

/// Checks that `src` is a valid Huffman string and returns its decoded length, writing
/// nothing: for fields that are decoded only to keep the connection state right.
pub(super) fn decoded_len(src: &[u8]) -> Result<usize, DecodeError> {
    let mut n = 0usize;
    run(src, |_| n += 1)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn enc(src: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(src, &mut dst);
        assert_eq!(dst.len(), encoded_len(src));
        dst.to_vec()
    }

    fn dec(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        decode(src, &mut out)?;
        assert_eq!(decoded_len(src), Ok(out.len()));
        Ok(out)
    }

    /// The strings RFC 7541 Appendix C.4 and C.6 Huffman-code.
    const RFC_STRINGS: &[(&str, &str)] = &[
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("307", "640e ff"),
        ("private", "aec3 771a 4b"),
        (
            "Mon, 21 Oct 2013 20:13:21 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
        ),
        (
            "Mon, 21 Oct 2013 20:13:22 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff",
        ),
        (
            "https://www.example.com",
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
        ),
        ("gzip", "9bd9 ab"),
        (
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 \
             3160 65c0 03ed 4ee5 b106 3d50 07",
        ),
    ];

    #[test]
    fn rfc_strings_encode_and_decode() {
        for &(plain, coded) in RFC_STRINGS {
            assert_eq!(enc(plain.as_bytes()), hex(coded), "encoding {plain:?}");
            assert_eq!(
                dec(&hex(coded)).unwrap(),
                plain.as_bytes(),
                "decoding {plain:?}"
            );
        }
    }

    #[test]
    fn every_byte_round_trips_alone_and_together() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(dec(&enc(&all)).unwrap(), all);
        for b in 0..=255u8 {
            assert_eq!(dec(&enc(&[b])).unwrap(), [b]);
            assert_eq!(dec(&enc(&[b, b, b])).unwrap(), [b, b, b]);
        }
    }

    #[test]
    fn empty_string_is_valid() {
        assert_eq!(enc(b""), b"");
        assert_eq!(dec(b"").unwrap(), b"");
    }

    #[test]
    fn padding_longer_than_seven_bits_is_rejected() {
        // 'a' (00011) then 11 one-bits.
        assert_eq!(dec(&[0x1f, 0xff]), Err(DecodeError::HuffmanPaddingTooLong));
        // A lone all-ones byte is 8 bits of padding.
        assert_eq!(dec(&[0xff]), Err(DecodeError::HuffmanPaddingTooLong));
    }

    #[test]
    fn padding_that_is_not_ones_is_rejected() {
        // 'a' (00011) then 000.
        assert_eq!(dec(&[0x18]), Err(DecodeError::HuffmanPaddingNotEos));
        // 'a' then 110.
        assert_eq!(dec(&[0x1e]), Err(DecodeError::HuffmanPaddingNotEos));
    }

    #[test]
    fn eos_inside_a_string_is_rejected() {
        // 30 one-bits (EOS), then two zero bits.
        assert_eq!(dec(&[0xff, 0xff, 0xff, 0xfc]), Err(DecodeError::HuffmanEos));
        assert_eq!(dec(&[0xff; 4]), Err(DecodeError::HuffmanEos));
        assert_eq!(dec(&[0xff; 40]), Err(DecodeError::HuffmanEos));
        // A valid symbol first does not help.
        assert_eq!(
            dec(&[0x1f, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::HuffmanEos)
        );
    }

    #[test]
    fn longest_codes_round_trip() {
        // Symbols with 30-bit codes sit next to EOS in the tree.
        for sym in [10u8, 13, 22] {
            assert_eq!(CODES[usize::from(sym)].1, 30);
            assert_eq!(dec(&enc(&[sym, b'a', sym])).unwrap(), [sym, b'a', sym]);
        }
    }

    proptest! {
        #[test]
        fn random_bytes_round_trip(src in proptest::collection::vec(any::<u8>(), 0..200)) {
            let coded = enc(&src);
            prop_assert_eq!(dec(&coded).unwrap(), src);
        }

        #[test]
        fn random_input_never_panics(src in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut out = Vec::new();
            let full = decode(&src, &mut out);
            prop_assert!(out.len() <= src.len() * 8 / 5);
            prop_assert_eq!(full.map(|()| out.len()), decoded_len(&src));
        }
    }
}
