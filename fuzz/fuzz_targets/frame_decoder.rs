//! Hostile bytes into the frame decoder, delivered in chunks whose sizes the input picks.
//!
//! Checks: no panic; the decoder never holds more than its header-block limit; every frame
//! it returns survives encode → decode unchanged; a connection error poisons the decoder.
#![no_main]

use bytes::BytesMut;
use grpc_sansio::frame::{DecoderConfig, Frame, FrameDecoder, MAX_MAX_FRAME_SIZE};
use libfuzzer_sys::fuzz_target;

const BLOCK_LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    // Low bits pick the chunk size (1..=16 bytes, or everything at once), the high bit a
    // small max frame size so oversized frames are exercised too.
    let chunk = match ctl & 0x1f {
        0 => rest.len().max(1),
        n => usize::from(n & 0x0f) + 1,
    };
    let config = DecoderConfig {
        max_frame_size: if ctl & 0x80 != 0 {
            16_384
        } else {
            MAX_MAX_FRAME_SIZE
        },
        max_header_block_size: BLOCK_LIMIT,
        max_continuation_frames: 8,
    };
    let mut decoder = FrameDecoder::new(config);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    'feed: for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) if e.is_connection_error() => {
                    assert_eq!(
                        decoder.decode(&mut buf).unwrap_err(),
                        e,
                        "decoder must stay poisoned"
                    );
                    break 'feed;
                }
                Err(_) => {}
            }
            assert!(decoder.buffered_len() <= BLOCK_LIMIT);
        }
        assert!(decoder.buffered_len() <= BLOCK_LIMIT);
    }

    // Whatever came out must re-encode to bytes that decode to the same frames.
    let mut encoded = BytesMut::new();
    for frame in &frames {
        frame
            .encode(&mut encoded, MAX_MAX_FRAME_SIZE)
            .expect("a decoded frame must encode");
    }
    let mut again = FrameDecoder::new(DecoderConfig {
        max_frame_size: MAX_MAX_FRAME_SIZE,
        max_header_block_size: usize::MAX,
        max_continuation_frames: usize::MAX,
    });
    let mut redecoded: Vec<Frame> = Vec::new();
    while let Some(frame) = again
        .decode(&mut encoded)
        .expect("re-encoded frames must decode")
    {
        redecoded.push(frame);
    }
    assert!(encoded.is_empty());
    assert_eq!(frames, redecoded);
});
