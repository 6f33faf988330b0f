//! Message compression (grpc/grpc `doc/compression.md`): the `grpc-encoding` names we
//! know, gzip both ways, and the rules that decide what a received message's
//! Compressed-Flag means.
//!
//! Decompression is bounded: it stops as soon as the output would pass the receive
//! limit, so a small "gzip bomb" cannot make us hold more than about the limit.

use std::fmt;
use std::io::{self, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::message::Message;

/// A message encoding (`grpc-encoding` / `grpc-accept-encoding` value) this crate
/// implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `identity`: no compression.
    Identity,
    /// `gzip` (RFC 1952).
    Gzip,
}

/// The `grpc-accept-encoding` value we advertise: every [`Encoding`] we can decode.
pub const ACCEPT_ENCODING: &str = "identity,gzip";

impl Encoding {
    /// Every encoding this crate implements.
    pub const ALL: [Encoding; 2] = [Encoding::Identity, Encoding::Gzip];

    /// The name used in `grpc-encoding` and `grpc-accept-encoding`.
    pub const fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }

    /// The encoding a `grpc-encoding` value names, or `None` for one we do not
    /// implement. Names match exactly (they are lower case on the wire, and grpc-go
    /// and gRPC core compare them exactly too).
    pub fn from_header(value: &[u8]) -> Option<Encoding> {
        match value {
            b"identity" => Some(Encoding::Identity),
            b"gzip" => Some(Encoding::Gzip),
            _ => None,
        }
    }

    /// True if a peer's `grpc-accept-encoding` value (a comma-separated list) lists
    /// this encoding. Identity is always acceptable.
    pub fn accepted_by(self, grpc_accept_encoding: &[u8]) -> bool {
        self == Encoding::Identity
            || grpc_accept_encoding
                .split(|&b| b == b',')
                .any(|item| item.trim_ascii() == self.name().as_bytes())
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a message could not be compressed or decompressed, or why its Compressed-Flag
/// is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompressionError {
    /// The decompressed message would be longer than the receive limit; decompression
    /// stopped there. gRPC status RESOURCE_EXHAUSTED.
    TooLarge {
        /// The receive limit.
        max: usize,
    },
    /// The compressed bytes are not valid for the encoding (bad header, corrupt
    /// deflate data, CRC or length mismatch, truncated). gRPC status INTERNAL.
    Corrupt {
        /// The decompressor's complaint, for the status message.
        detail: String,
    },
    /// A message has the Compressed-Flag set but the stream's `grpc-encoding` is
    /// absent, empty or `identity`. gRPC status INTERNAL.
    CompressedWithoutEncoding,
    /// A message has the Compressed-Flag set and the stream's `grpc-encoding` is one we
    /// do not implement. gRPC status UNIMPLEMENTED (a server then lists what it
    /// accepts in `grpc-accept-encoding`).
    Unsupported {
        /// The `grpc-encoding` value (lossily decoded as UTF-8).
        encoding: String,
    },
    /// Compressing failed. Not expected to happen (the output is memory); kept as a
    /// value rather than a panic. gRPC status INTERNAL.
    CompressFailed {
        /// The compressor's complaint.
        detail: String,
    },
}

impl CompressionError {
    /// The name of the gRPC status code this error ends the call with
    /// (`"RESOURCE_EXHAUSTED"`, `"INTERNAL"` or `"UNIMPLEMENTED"`), spelled as in
    /// `grpc::code`; [`Display`](fmt::Display) gives the status message.
    pub const fn grpc_code_name(&self) -> &'static str {
        match self {
            CompressionError::TooLarge { .. } => "RESOURCE_EXHAUSTED",
            CompressionError::Corrupt { .. }
            | CompressionError::CompressedWithoutEncoding
            | CompressionError::CompressFailed { .. } => "INTERNAL",
            CompressionError::Unsupported { .. } => "UNIMPLEMENTED",
        }
    }
}

impl fmt::Display for CompressionError {
    /// grpc-go's wording.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionError::TooLarge { max } => write!(
                f,
                "grpc: received message after decompression larger than max {max}"
            ),
            CompressionError::Corrupt { detail } => {
                write!(
                    f,
                    "grpc: failed to decompress the received message: {detail}"
                )
            }
            CompressionError::CompressedWithoutEncoding => {
                f.write_str("grpc: compressed flag set with identity or empty encoding")
            }
            CompressionError::Unsupported { encoding } => write!(
                f,
                "grpc: Decompressor is not installed for grpc-encoding {encoding:?}"
            ),
            CompressionError::CompressFailed { detail } => {
                write!(f, "grpc: error while compressing: {detail}")
            }
        }
    }
}

impl std::error::Error for CompressionError {}

/// Appends `data` encoded with `encoding` to `out` (identity appends it unchanged). On
/// error `out` is left as it was.
pub fn compress(
    encoding: Encoding,
    data: &[u8],
    out: &mut BytesMut,
) -> Result<(), CompressionError> {
    match encoding {
        Encoding::Identity => {
            out.extend_from_slice(data);
            Ok(())
        }
        Encoding::Gzip => {
            let start = out.len();
            let mut encoder = GzEncoder::new(out.writer(), Compression::default());
            let result = encoder.write_all(data).and_then(|()| encoder.finish());
            match result {
                Ok(_) => Ok(()),
                Err(e) => {
                    out.truncate(start);
                    Err(CompressionError::CompressFailed {
                        detail: e.to_string(),
                    })
                }
            }
        }
    }
}

/// Decodes `data` encoded with `encoding`, failing with
/// [`TooLarge`](CompressionError::TooLarge) as soon as the output would pass `max_len`
/// bytes. Never holds more than `max_len + 1` bytes of output (plus the decompressor's
/// fixed-size state), whatever the input claims.
pub fn decompress(
    encoding: Encoding,
    data: &[u8],
    max_len: usize,
) -> Result<Bytes, CompressionError> {
    match encoding {
        Encoding::Identity => {
            if data.len() > max_len {
                return Err(CompressionError::TooLarge { max: max_len });
            }
            Ok(Bytes::copy_from_slice(data))
        }
        Encoding::Gzip => gunzip_bounded(data, max_len),
    }
}

/// The first output buffer, and the smallest growth step.
const MIN_CHUNK: usize = 8 * 1024;

fn gunzip_bounded(data: &[u8], max_len: usize) -> Result<Bytes, CompressionError> {
    if data.is_empty() {
        // Not even a gzip header; flate2 would report end of file, say it plainly.
        return Err(CompressionError::Corrupt {
            detail: "empty gzip stream".to_owned(),
        });
    }
    // Reading one byte past the limit is how "over the limit" is seen.
    let limit = max_len.saturating_add(1);
    // Concatenated gzip members are one stream, as Go's gzip reader (grpc-go) reads them.
    let mut decoder = MultiGzDecoder::new(data);
    let first = data.len().saturating_mul(4).max(MIN_CHUNK).min(limit);
    let mut out = vec![0u8; first];
    let mut filled = 0;
    loop {
        if filled == out.len() {
            // Only reached below the limit: at the limit `filled > max_len` returned.
            let grown = out.len().saturating_mul(2).max(MIN_CHUNK).min(limit);
            out.reserve_exact(grown - out.len());
            out.resize(grown, 0);
        }
        match decoder.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled > max_len {
                    return Err(CompressionError::TooLarge { max: max_len });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(CompressionError::Corrupt {
                    detail: e.to_string(),
                });
            }
        }
    }
    out.truncate(filled);
    if out.capacity() - filled > filled / 4 + MIN_CHUNK {
        // Do not pin a mostly empty buffer for the message's lifetime.
        out.shrink_to_fit();
    }
    Ok(Bytes::from(out))
}

/// The message's bytes as the application sees them, by the Compressed-Flag and the
/// stream's `grpc-encoding` (`None` when the header is absent):
///
/// | flag | `grpc-encoding`       | result                                              |
/// |------|-----------------------|-----------------------------------------------------|
/// | 0    | anything              | the bytes as they are (no copy)                     |
/// | 1    | absent or `identity`  | [`CompressedWithoutEncoding`] (INTERNAL)            |
/// | 1    | `gzip`                | gunzipped, bounded by `max` ([`TooLarge`] / [`Corrupt`]) |
///
/// A `grpc-encoding` we do not implement cannot be an [`Encoding`]; see
/// [`decode_payload_with_header`] for the row that makes it UNIMPLEMENTED. An
/// uncompressed message longer than `max` is [`TooLarge`] too (the decoder's limit
/// normally caught it already).
///
/// [`CompressedWithoutEncoding`]: CompressionError::CompressedWithoutEncoding
/// [`TooLarge`]: CompressionError::TooLarge
/// [`Corrupt`]: CompressionError::Corrupt
pub fn decode_payload(
    msg: &Message,
    encoding: Option<Encoding>,
    max: usize,
) -> Result<Bytes, CompressionError> {
    if !msg.compressed {
        if msg.data.len() > max {
            return Err(CompressionError::TooLarge { max });
        }
        return Ok(msg.data.clone());
    }
    match encoding {
        None | Some(Encoding::Identity) => Err(CompressionError::CompressedWithoutEncoding),
        Some(encoding) => decompress(encoding, &msg.data, max),
    }
}

/// [`decode_payload`] from the raw `grpc-encoding` header value (`None` when absent).
/// Adds the rows for values that are not an [`Encoding`]:
///
/// | flag | `grpc-encoding`   | result                                   |
/// |------|-------------------|------------------------------------------|
/// | 0    | anything          | the bytes as they are                    |
/// | 1    | empty             | [`CompressedWithoutEncoding`] (INTERNAL) |
/// | 1    | not implemented   | [`Unsupported`] (UNIMPLEMENTED)          |
///
/// [`CompressedWithoutEncoding`]: CompressionError::CompressedWithoutEncoding
/// [`Unsupported`]: CompressionError::Unsupported
pub fn decode_payload_with_header(
    msg: &Message,
    grpc_encoding: Option<&[u8]>,
    max: usize,
) -> Result<Bytes, CompressionError> {
    let encoding = match grpc_encoding {
        None | Some(b"") => None,
        Some(value) => match Encoding::from_header(value) {
            Some(encoding) => Some(encoding),
            None if msg.compressed => {
                return Err(CompressionError::Unsupported {
                    encoding: String::from_utf8_lossy(value).into_owned(),
                });
            }
            // Uncompressed: the encoding does not matter.
            None => None,
        },
    };
    decode_payload(msg, encoding, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(Encoding::Gzip, data, &mut out).unwrap();
        out.to_vec()
    }

    fn message(compressed: bool, data: &[u8]) -> Message {
        Message {
            compressed,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn names_and_headers() {
        for encoding in Encoding::ALL {
            assert_eq!(
                Encoding::from_header(encoding.name().as_bytes()),
                Some(encoding)
            );
            assert_eq!(encoding.to_string(), encoding.name());
            assert!(encoding.accepted_by(ACCEPT_ENCODING.as_bytes()));
        }
        assert_eq!(Encoding::from_header(b"gzip"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(b"identity"), Some(Encoding::Identity));
        for other in [
            &b""[..],
            b"deflate",
            b"snappy",
            b"GZIP",
            b" gzip",
            b"gzip,identity",
        ] {
            assert_eq!(Encoding::from_header(other), None);
        }
        assert_eq!(ACCEPT_ENCODING, "identity,gzip");
    }

    #[test]
    fn accept_encoding_lists() {
        assert!(Encoding::Gzip.accepted_by(b"gzip"));
        assert!(Encoding::Gzip.accepted_by(b"identity, deflate, gzip"));
        assert!(Encoding::Gzip.accepted_by(b"deflate ,gzip ,snappy"));
        assert!(!Encoding::Gzip.accepted_by(b"deflate"));
        assert!(!Encoding::Gzip.accepted_by(b"gzipx, xgzip"));
        assert!(!Encoding::Gzip.accepted_by(b""));
        assert!(Encoding::Identity.accepted_by(b""));
        assert!(Encoding::Identity.accepted_by(b"snappy"));
    }

    #[test]
    fn identity_round_trip_and_limit() {
        let mut out = BytesMut::from(&b"pre"[..]);
        compress(Encoding::Identity, b"abc", &mut out).unwrap();
        assert_eq!(&out[..], b"preabc");
        assert_eq!(
            &decompress(Encoding::Identity, b"abc", 3).unwrap()[..],
            b"abc"
        );
        assert_eq!(
            decompress(Encoding::Identity, b"abc", 2),
            Err(CompressionError::TooLarge { max: 2 })
        );
    }

    #[test]
    fn gzip_round_trip_of_edge_sizes() {
        for len in [
            0usize,
            1,
            100,
            MIN_CHUNK - 1,
            MIN_CHUNK,
            MIN_CHUNK + 1,
            100_000,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let packed = gzip(&data);
            assert_eq!(&packed[..2], &[0x1f, 0x8b], "gzip magic");
            assert_eq!(
                &decompress(Encoding::Gzip, &packed, len).unwrap()[..],
                &data[..]
            );
            if len > 0 {
                assert_eq!(
                    decompress(Encoding::Gzip, &packed, len - 1),
                    Err(CompressionError::TooLarge { max: len - 1 })
                );
            }
        }
    }

    #[test]
    fn compress_appends_after_existing_bytes() {
        let mut out = BytesMut::from(&b"head"[..]);
        compress(Encoding::Gzip, b"hello", &mut out).unwrap();
        assert_eq!(&out[..4], b"head");
        assert_eq!(
            &decompress(Encoding::Gzip, &out[4..], 5).unwrap()[..],
            b"hello"
        );
    }

    const MIB: usize = 1024 * 1024;

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 * MIB];
        let bomb = gzip(&zeros);
        assert!(
            bomb.len() < 64 * 1024,
            "10 MiB of zeros packs small: {}",
            bomb.len()
        );
        let error = decompress(Encoding::Gzip, &bomb, 4 * MIB).unwrap_err();
        assert_eq!(error, CompressionError::TooLarge { max: 4 * MIB });
        assert_eq!(error.grpc_code_name(), "RESOURCE_EXHAUSTED");
        assert_eq!(
            error.to_string(),
            "grpc: received message after decompression larger than max 4194304"
        );
        // A limit of exactly the output is fine.
        let out = decompress(Encoding::Gzip, &bomb, 10 * MIB).unwrap();
        assert_eq!(out.len(), 10 * MIB);
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(
            decompress(Encoding::Gzip, &bomb, 10 * MIB - 1),
            Err(CompressionError::TooLarge { max: 10 * MIB - 1 })
        );
    }

    #[test]
    fn the_output_buffer_never_passes_the_limit() {
        // White-box: the growth steps are capped at max + 1, so the largest buffer the
        // bomb can make us allocate is max + 1 bytes.
        let bomb = gzip(&vec![0u8; 3 * MIB]);
        for max in [0, 1, MIN_CHUNK, MIB + 7, 2 * MIB] {
            assert_eq!(
                decompress(Encoding::Gzip, &bomb, max),
                Err(CompressionError::TooLarge { max })
            );
        }
        assert_eq!(
            decompress(Encoding::Gzip, &bomb, usize::MAX).unwrap().len(),
            3 * MIB
        );
    }

    #[test]
    fn concatenated_members_are_one_stream() {
        let mut packed = gzip(b"hello, ");
        packed.extend(gzip(b"world"));
        assert_eq!(
            &decompress(Encoding::Gzip, &packed, 100).unwrap()[..],
            b"hello, world"
        );
        assert_eq!(
            decompress(Encoding::Gzip, &packed, 11),
            Err(CompressionError::TooLarge { max: 11 })
        );
    }

    fn assert_corrupt(result: Result<Bytes, CompressionError>) {
        match result {
            Err(e @ CompressionError::Corrupt { .. }) => {
                assert_eq!(e.grpc_code_name(), "INTERNAL");
                assert!(
                    e.to_string()
                        .starts_with("grpc: failed to decompress the received message: ")
                );
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn truncated_and_corrupt_gzip_is_an_error() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 13) as u8).collect();
        let packed = gzip(&data);
        assert_corrupt(decompress(Encoding::Gzip, &[], 100));
        // Every truncation.
        for end in 1..packed.len() {
            assert_corrupt(decompress(Encoding::Gzip, &packed[..end], 10_000));
        }
        // Wrong magic, bad CRC, bad length, garbage after the member.
        let mut bad = packed.clone();
        bad[0] = 0;
        assert_corrupt(decompress(Encoding::Gzip, &bad, 10_000));
        let n = packed.len();
        let mut bad = packed.clone();
        bad[n - 8] ^= 1;
        assert_corrupt(decompress(Encoding::Gzip, &bad, 10_000));
        let mut bad = packed.clone();
        bad[n - 1] ^= 1;
        assert_corrupt(decompress(Encoding::Gzip, &bad, 10_000));
        let mut bad = packed.clone();
        bad.extend_from_slice(b"trailing garbage");
        assert_corrupt(decompress(Encoding::Gzip, &bad, 10_000));
        assert_corrupt(decompress(Encoding::Gzip, b"not gzip at all", 10_000));
    }

    #[test]
    fn the_decision_table() {
        let max = 1000;
        let plain = message(false, b"plain bytes");
        let packed = message(true, &gzip(b"packed bytes"));
        let all = [None, Some(Encoding::Identity), Some(Encoding::Gzip)];

        // Flag 0: as is, whatever the encoding, and no copy.
        for encoding in all {
            let out = decode_payload(&plain, encoding, max).unwrap();
            assert_eq!(out, plain.data);
            assert_eq!(out.as_ptr(), plain.data.as_ptr());
        }
        // Flag 1 without an encoding, or with identity: INTERNAL.
        for encoding in [None, Some(Encoding::Identity)] {
            let error = decode_payload(&packed, encoding, max).unwrap_err();
            assert_eq!(error, CompressionError::CompressedWithoutEncoding);
            assert_eq!(error.grpc_code_name(), "INTERNAL");
            assert_eq!(
                error.to_string(),
                "grpc: compressed flag set with identity or empty encoding"
            );
        }
        // Flag 1 with gzip: decompressed.
        assert_eq!(
            &decode_payload(&packed, Some(Encoding::Gzip), max).unwrap()[..],
            b"packed bytes"
        );
        // ... bounded by max, and corrupt data is INTERNAL.
        assert_eq!(
            decode_payload(&packed, Some(Encoding::Gzip), 5),
            Err(CompressionError::TooLarge { max: 5 })
        );
        assert_corrupt(decode_payload(
            &message(true, b"junk"),
            Some(Encoding::Gzip),
            max,
        ));
        // An uncompressed message over max.
        assert_eq!(
            decode_payload(&plain, None, 3),
            Err(CompressionError::TooLarge { max: 3 })
        );
    }

    #[test]
    fn the_decision_table_from_the_header() {
        let max = 1000;
        let plain = message(false, b"plain bytes");
        let packed = message(true, &gzip(b"packed bytes"));
        let headers = [
            None,
            Some(&b""[..]),
            Some(b"identity"),
            Some(b"gzip"),
            Some(b"snappy"),
        ];
        for header in headers {
            assert_eq!(
                decode_payload_with_header(&plain, header, max).unwrap(),
                plain.data
            );
        }
        for header in [None, Some(&b""[..]), Some(b"identity")] {
            assert_eq!(
                decode_payload_with_header(&packed, header, max),
                Err(CompressionError::CompressedWithoutEncoding)
            );
        }
        assert_eq!(
            &decode_payload_with_header(&packed, Some(b"gzip"), max).unwrap()[..],
            b"packed bytes"
        );
        let error = decode_payload_with_header(&packed, Some(b"snappy"), max).unwrap_err();
        assert_eq!(
            error,
            CompressionError::Unsupported {
                encoding: "snappy".to_owned()
            }
        );
        assert_eq!(error.grpc_code_name(), "UNIMPLEMENTED");
        assert_eq!(
            error.to_string(),
            "grpc: Decompressor is not installed for grpc-encoding \"snappy\""
        );
    }

    proptest! {
        #[test]
        fn gzip_round_trips(
            data in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..20_000),
                // Compressible: few distinct bytes, long runs.
                prop::collection::vec(0u8..4, 0..60_000),
            ],
        ) {
            let mut out = BytesMut::new();
            compress(Encoding::Gzip, &data, &mut out).unwrap();
            let back = decompress(Encoding::Gzip, &out, data.len()).unwrap();
            prop_assert_eq!(&back[..], &data[..]);
            let msg = Message { compressed: true, data: out.freeze() };
            let back = decode_payload(&msg, Some(Encoding::Gzip), data.len()).unwrap();
            prop_assert_eq!(&back[..], &data[..]);
            if !data.is_empty() {
                prop_assert_eq!(
                    decompress(Encoding::Gzip, &msg.data, data.len() - 1),
                    Err(CompressionError::TooLarge { max: data.len() - 1 })
                );
            }
        }

        /// Corrupted gzip (random flips in a valid stream, or random bytes): an error
        /// or some output within the limit, never a panic.
        #[test]
        fn mangled_gzip_never_panics(
            data in prop::collection::vec(any::<u8>(), 0..2_000),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
            raw in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut packed = gzip(&data);
            for (at, mask) in &flips {
                let i = at.index(packed.len());
                packed[i] ^= mask;
            }
            if let Ok(out) = decompress(Encoding::Gzip, &packed, 4096) {
                prop_assert!(out.len() <= 4096);
            }
            let mut prefixed = vec![0x1f, 0x8b, 8, 0];
            prefixed.extend(&raw);
            for input in [&raw, &prefixed] {
                if let Ok(out) = decompress(Encoding::Gzip, input, 4096) {
                    prop_assert!(out.len() <= 4096);
                }
            }
        }
    }
}
