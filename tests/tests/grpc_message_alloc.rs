//! Allocation accounting for the gRPC message decoder and bounded decompression.
//!
//! The tracking allocator (`grpc_sansio_tests::alloc`, installed for this binary) counts, per thread, allocations and the
//! peak of live bytes, so "no allocation before the length check", "no per-message
//! allocation on the fast path", "one exact allocation for a spanning message" and
//! "decompression holds about max bytes" are asserted rather than assumed.

use bytes::{Bytes, BytesMut};
use grpc_sansio::grpc::compression::{CompressionError, Encoding, compress, decompress};
use grpc_sansio::grpc::message::{
    DEFAULT_MAX_RECV_MESSAGE_SIZE, MessageDecoder, MessageError, PREFIX_LEN, encode_message_into,
};
use grpc_sansio_tests::alloc::{Tracking, measure};

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

fn frame(compressed: bool, data: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_message_into(data, compressed, usize::MAX, &mut out).unwrap();
    out
}

#[test]
fn an_oversized_prefix_allocates_nothing_of_its_size() {
    let mut decoder = MessageDecoder::new();
    // Split prefix, then a body that would follow.
    let head = Bytes::from_static(&[0, 0xff]);
    let tail = Bytes::from_static(&[0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8]);
    let (result, cost) = measure(|| {
        decoder.push(head);
        assert_eq!(decoder.next(), Ok(None));
        assert!(decoder.buffered_len() <= PREFIX_LEN);
        decoder.push(tail);
        decoder.next()
    });
    assert_eq!(
        result,
        Err(MessageError::TooLarge {
            len: 0xffff_ffff,
            max: DEFAULT_MAX_RECV_MESSAGE_SIZE
        })
    );
    assert!(cost.largest < 1024, "{cost:?}");
    assert!(cost.peak < 1024, "{cost:?}");
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn whole_messages_in_one_chunk_allocate_nothing_per_message() {
    let mut wire = BytesMut::new();
    for i in 0..1000u32 {
        wire.extend_from_slice(&frame(i % 2 == 0, &i.to_be_bytes()[..(i % 5) as usize]));
    }
    let wire = wire.freeze();
    let mut decoder = MessageDecoder::new();
    decoder.push(wire.clone());
    let (n, cost) = measure(|| {
        let mut n = 0;
        while let Some(message) = decoder.next().unwrap() {
            assert!(message.data.is_empty() || message.data.as_ptr() >= wire.as_ptr());
            n += 1;
        }
        n
    });
    assert_eq!(n, 1000);
    assert_eq!(cost.count, 0, "{cost:?}");
}

#[test]
fn a_spanning_message_grows_to_exactly_its_length() {
    const LEN: usize = 100_000;
    let wire = frame(false, &[0xab; LEN]).freeze();
    let pieces: Vec<Bytes> = (0..wire.len())
        .step_by(16_384)
        .map(|at| wire.slice(at..wire.len().min(at + 16_384)))
        .collect();
    let mut decoder = MessageDecoder::new();
    let (message, cost) = measure(|| {
        let mut out = None;
        for piece in pieces {
            decoder.push(piece);
            if let Some(message) = decoder.next().unwrap() {
                out = Some(message);
            }
        }
        out
    });
    let message = message.unwrap();
    assert_eq!(message.data.len(), LEN);
    assert!(message.data.iter().all(|&b| b == 0xab));
    // The assembly buffer starts at 64 KiB and grows once, ending at exactly LEN (so
    // the largest allocation is LEN); the peak is the moment of that growth.
    assert_eq!(cost.largest, LEN, "{cost:?}");
    assert!(cost.count <= 5, "{cost:?}");
    assert!(cost.peak < LEN + 64 * 1024 + 1024, "{cost:?}");
}

#[test]
fn a_gzip_bomb_never_holds_much_more_than_the_limit() {
    const MIB: usize = 1024 * 1024;
    let mut bomb = BytesMut::new();
    compress(Encoding::Gzip, &vec![0u8; 10 * MIB], &mut bomb).unwrap();
    assert!(bomb.len() < 64 * 1024);
    let (result, cost) = measure(|| decompress(Encoding::Gzip, &bomb, 4 * MIB));
    assert_eq!(result, Err(CompressionError::TooLarge { max: 4 * MIB }));
    // The output (at most max + 1 bytes) and the inflater's fixed state.
    assert!(cost.largest <= 4 * MIB + 1, "{cost:?}");
    assert!(cost.peak <= 4 * MIB + 256 * 1024, "{cost:?}");
}

#[test]
fn a_length_claim_alone_commits_little_memory() {
    // A 4 MiB claim followed by a few bytes: the buffer follows what arrived.
    let mut decoder = MessageDecoder::new();
    let (_, cost) = measure(|| {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&[0, 0, 0x40, 0, 0]);
        decoder.push(wire.freeze());
        decoder.push(Bytes::from_static(b"abc"));
        decoder.push(Bytes::from_static(b"def"));
        assert_eq!(decoder.next().unwrap(), None);
    });
    assert!(cost.peak <= 64 * 1024 + 1024, "{cost:?}");
}
