//! Hostile bytes into the gRPC message decoder, delivered in chunks whose sizes the input
//! picks; every message it yields then goes through `decode_payload` under each encoding.
//!
//! Checks: no panic; the decoder never holds more than max + 5 bytes after a drain; every
//! message is within the limit, and the messages re-encode to a prefix of the input (all
//! of it when no error was seen and nothing is left buffered); payload decoding respects
//! the limit and passes uncompressed messages through unchanged.
#![no_main]

use bytes::{Bytes, BytesMut};
use grpc_sansio::grpc::compression::{
    CompressionError, Encoding, decode_payload, decode_payload_with_header,
};
use grpc_sansio::grpc::message::{MessageDecoder, PREFIX_LEN, encode_message_into};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    // Low 5 bits: fixed chunk size (1..=31) or, for 0, everything at once. Bit 5: vary
    // the chunk sizes from a little generator seeded by the input. Bits 6-7: the limit.
    let fixed = match ctl & 0x1f {
        0 => rest.len().max(1),
        n => usize::from(n),
    };
    let max = match ctl >> 6 {
        0 => MAX,
        1 => 16,
        2 => 0,
        _ => 1024,
    };
    let mut seed = u32::from(ctl) | 1;
    let mut decoder = MessageDecoder::with_max_message_size(max);
    let mut messages = Vec::new();
    let mut failed = false;
    let mut at = 0;
    while at < rest.len() {
        let size = if ctl & 0x20 != 0 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as usize % 200 + 1
        } else {
            fixed
        };
        let end = rest.len().min(at + size);
        decoder.push(Bytes::copy_from_slice(&rest[at..end]));
        at = end;
        loop {
            match decoder.next() {
                Ok(Some(message)) => {
                    assert!(message.data.len() <= max);
                    messages.push(message);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.next(), Err(e), "decoder must stay poisoned");
                    assert_eq!(decoder.buffered_len(), 0);
                    failed = true;
                    break;
                }
            }
        }
        assert!(decoder.buffered_len() <= max + PREFIX_LEN);
        if failed {
            break;
        }
    }

    let mut reencoded = BytesMut::new();
    for message in &messages {
        encode_message_into(&message.data, message.compressed, max, &mut reencoded)
            .expect("a decoded message must re-encode under the same limit");
    }
    assert!(rest.starts_with(&reencoded));
    if !failed {
        assert_eq!(reencoded.len() + decoder.buffered_len(), rest.len());
    }

    for message in &messages {
        for encoding in [None, Some(Encoding::Identity), Some(Encoding::Gzip)] {
            match decode_payload(message, encoding, max) {
                Ok(out) => {
                    assert!(out.len() <= max);
                    if !message.compressed {
                        assert_eq!(out, message.data);
                    }
                }
                Err(e) => {
                    assert!(message.compressed);
                    if encoding != Some(Encoding::Gzip) {
                        assert_eq!(e, CompressionError::CompressedWithoutEncoding);
                    }
                }
            }
        }
        if let Err(e) = decode_payload_with_header(message, Some(b"snappy"), max) {
            assert!(message.compressed);
            assert_eq!(e.grpc_code_name(), "UNIMPLEMENTED");
        }
    }
});
