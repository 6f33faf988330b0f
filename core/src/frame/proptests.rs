//! Property tests: encode/decode round trips over every frame type, and hostile input.
//!
//! Compiled only for tests: `frame/mod.rs` declares it `#[cfg(test)]`.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

fn any_stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![Just(0), 1..=5u32, 0..=StreamId::MAX.value()].prop_map(StreamId::new)
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![1..=5u32, 1..=StreamId::MAX.value()].prop_map(StreamId::new)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![0..=0xdu32, any::<u32>()].prop_map(ErrorCode::from)
}

fn priority_spec() -> impl Strategy<Value = PrioritySpec> {
    (any::<bool>(), any_stream_id(), any::<u8>()).prop_map(|(exclusive, dependency, weight)| {
        PrioritySpec {
            exclusive,
            dependency,
            weight,
        }
    })
}

/// Largest DATA payload generated: with 255 octets of padding it still fits
/// [`SMALL_MAX_FRAME_SIZE`].
const MAX_DATA: usize = 200;

/// A max frame size small enough that generated field blocks need CONTINUATION frames,
/// big enough for every other generated frame (DATA: 1 + 200 + 255).
const SMALL_MAX_FRAME_SIZE: u32 = 456;

/// Largest field block generated: several frames' worth at [`SMALL_MAX_FRAME_SIZE`].
const MAX_BLOCK: usize = 1500;

fn data() -> impl Strategy<Value = Data> {
    (
        stream_id(),
        bytes(MAX_DATA),
        any::<bool>(),
        any::<Option<u8>>(),
    )
        .prop_map(|(stream_id, payload, end_stream, pad_len)| Data {
            stream_id,
            payload,
            end_stream,
            pad_len,
        })
}

fn headers() -> impl Strategy<Value = Headers> {
    (
        stream_id(),
        bytes(MAX_BLOCK),
        any::<bool>(),
        proptest::option::of(priority_spec()),
        any::<Option<u8>>(),
    )
        .prop_map(
            |(stream_id, header_block, end_stream, priority, pad_len)| Headers {
                stream_id,
                header_block,
                end_stream,
                priority,
                pad_len,
            },
        )
}

fn push_promise() -> impl Strategy<Value = PushPromise> {
    (
        stream_id(),
        any_stream_id(),
        bytes(MAX_BLOCK),
        any::<Option<u8>>(),
    )
        .prop_map(
            |(stream_id, promised_id, header_block, pad_len)| PushPromise {
                stream_id,
                promised_id,
                header_block,
                pad_len,
            },
        )
}

fn settings() -> impl Strategy<Value = Settings> {
    let values = (
        any::<Option<u32>>(),
        any::<Option<bool>>(),
        any::<Option<u32>>(),
        proptest::option::of(0..=MAX_WINDOW_SIZE),
        proptest::option::of(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE),
        any::<Option<u32>>(),
    )
        .prop_map(|(a, b, c, d, e, f)| Settings {
            ack: false,
            header_table_size: a,
            enable_push: b,
            max_concurrent_streams: c,
            initial_window_size: d,
            max_frame_size: e,
            max_header_list_size: f,
        });
    prop_oneof![1 => Just(Settings::ack()), 4 => values]
}

fn priority() -> impl Strategy<Value = Priority> {
    // A self-dependent PRIORITY is a stream error, so it is not a valid frame.
    (stream_id(), priority_spec())
        .prop_filter("self-dependency", |(id, spec)| *id != spec.dependency)
        .prop_map(|(stream_id, spec)| Priority { stream_id, spec })
}

fn rst_stream() -> impl Strategy<Value = RstStream> {
    (stream_id(), error_code()).prop_map(|(id, code)| RstStream::new(id, code))
}

fn ping() -> impl Strategy<Value = Ping> {
    (any::<bool>(), any::<[u8; 8]>()).prop_map(|(ack, payload)| Ping { ack, payload })
}

fn goaway() -> impl Strategy<Value = GoAway> {
    (any_stream_id(), error_code(), bytes(100)).prop_map(
        |(last_stream_id, error_code, debug_data)| GoAway {
            last_stream_id,
            error_code,
            debug_data,
        },
    )
}

fn window_update() -> impl Strategy<Value = WindowUpdate> {
    (any_stream_id(), 1..=MAX_WINDOW_SIZE).prop_map(|(id, n)| WindowUpdate::new(id, n))
}

fn unknown() -> impl Strategy<Value = Unknown> {
    (10..=255u8, any::<u8>(), any_stream_id(), bytes(100)).prop_map(
        |(kind, flags, stream_id, payload)| Unknown {
            kind,
            flags,
            stream_id,
            payload,
        },
    )
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        4 => data().prop_map(Frame::Data),
        4 => headers().prop_map(Frame::Headers),
        1 => priority().prop_map(Frame::Priority),
        1 => rst_stream().prop_map(Frame::RstStream),
        1 => settings().prop_map(Frame::Settings),
        2 => push_promise().prop_map(Frame::PushPromise),
        1 => ping().prop_map(Frame::Ping),
        1 => goaway().prop_map(Frame::GoAway),
        1 => window_update().prop_map(Frame::WindowUpdate),
        1 => unknown().prop_map(Frame::Unknown),
    ]
}

/// A decoder config that accepts whatever was encoded for `max_frame_size`.
fn roomy(max_frame_size: u32) -> DecoderConfig {
    DecoderConfig {
        max_frame_size,
        max_header_block_size: MAX_BLOCK,
        max_continuation_frames: usize::MAX,
    }
}

/// Decodes `wire` fed in pieces ending at `cuts`, draining the decoder after each piece.
fn decode_pieces(
    wire: &[u8],
    cuts: &[usize],
    config: DecoderConfig,
) -> Result<Vec<Frame>, FrameError> {
    let mut decoder = FrameDecoder::new(config);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([wire.len()].iter()) {
        let end = end.clamp(start, wire.len());
        src.extend_from_slice(&wire[start..end]);
        start = end;
        while let Some(frame) = decoder.decode(&mut src)? {
            frames.push(frame);
        }
        assert!(decoder.buffered_len() <= config.max_header_block_size);
    }
    assert!(src.is_empty(), "{} octets left over", src.len());
    assert_eq!(decoder.buffered_len(), 0);
    Ok(frames)
}

proptest! {
    #[test]
    fn every_frame_type_round_trips_whole_split_and_one_octet_at_a_time(
        frames in vec(frame(), 0..12),
        max_frame_size in prop_oneof![Just(SMALL_MAX_FRAME_SIZE), Just(DEFAULT_MAX_FRAME_SIZE)],
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut wire, max_frame_size).unwrap();
        }
        let config = roomy(max_frame_size);
        prop_assert_eq!(&decode_pieces(&wire, &[], config).unwrap(), &frames);

        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(&decode_pieces(&wire, &cuts, config).unwrap(), &frames);

        let every: Vec<usize> = (1..wire.len()).collect();
        prop_assert_eq!(&decode_pieces(&wire, &every, config).unwrap(), &frames);
    }

    #[test]
    fn field_blocks_split_into_many_continuations_round_trip(
        block in bytes(600),
        push in any::<bool>(),
        extra in 0..32u32,
    ) {
        // The smallest frame that can carry anything after the fixed fields.
        let (frame, overhead) = if push {
            let promise = PushPromise { stream_id: StreamId::new(1), promised_id: StreamId::new(2), header_block: block, pad_len: Some(1) };
            (Frame::PushPromise(promise), 6)
        } else {
            let headers = Headers { end_stream: true, ..Headers::new(StreamId::new(3), block) };
            (Frame::Headers(headers), 0)
        };
        let max_frame_size = overhead + 1 + extra;
        let mut wire = BytesMut::new();
        frame.encode(&mut wire, max_frame_size).unwrap();
        let frames = decode_pieces(&wire, &[], roomy(max_frame_size)).unwrap();
        prop_assert_eq!(frames, vec![frame]);
    }

    #[test]
    fn random_bytes_never_panic_and_stay_within_the_buffer_limit(
        input in vec(any::<u8>(), 0..3000),
        chunk in 1..64usize,
        small in any::<bool>(),
    ) {
        check_hostile(&input, chunk, small);
    }

    #[test]
    fn random_frame_shaped_bytes_never_panic_and_stay_within_the_buffer_limit(
        pieces in vec(
            (
                prop_oneof![4 => Just(kind::HEADERS), 4 => Just(kind::CONTINUATION), 8 => 0..=11u8],
                prop_oneof![Just(0u8), Just(flags::END_HEADERS), any::<u8>()],
                0..4u32,
                vec(any::<u8>(), 0..80),
                prop_oneof![8 => Just(None), 1 => any::<u32>().prop_map(Some)],
            ),
            1..40,
        ),
        chunk in 1..64usize,
        small in any::<bool>(),
    ) {
        let mut wire = BytesMut::new();
        for (kind, flags, stream, payload, claimed) in pieces {
            let len = claimed.map_or(payload.len() as u32, |n| n & MAX_MAX_FRAME_SIZE);
            let header = FrameHeader { len, kind, flags, stream_id: StreamId::new(stream) };
            encode_raw(&header, &payload, &mut wire);
        }
        check_hostile(&wire, chunk, small);
    }

    #[test]
    fn any_header_over_max_frame_size_is_refused_before_its_payload(
        len in (DEFAULT_MAX_FRAME_SIZE + 1)..=MAX_MAX_FRAME_SIZE,
        kind in any::<u8>(),
        flags in any::<u8>(),
        stream in any::<u32>(),
    ) {
        let mut src = BytesMut::with_capacity(HEADER_LEN);
        encode_raw(&FrameHeader { len, kind, flags, stream_id: StreamId::new(stream) }, &[], &mut src);
        let capacity = src.capacity();
        let mut decoder = FrameDecoder::default();
        let err = decoder.decode(&mut src).unwrap_err();
        prop_assert!(err.is_connection_error());
        prop_assert_eq!(err.code(), ErrorCode::FrameSizeError);
        prop_assert_eq!(src.capacity(), capacity);
        prop_assert_eq!(decoder.buffered_len(), 0);
    }
}

/// Limits for the hostile tests: small enough for random input to hit them.
const HOSTILE_BLOCK_LIMIT: usize = 256;

/// Feeds `input` in `chunk`-sized pieces; checks the decoder's safety properties and
/// that every frame it returns re-encodes to bytes that decode to the same frame.
fn check_hostile(input: &[u8], chunk: usize, small: bool) {
    let config = DecoderConfig {
        max_frame_size: if small { 64 } else { DEFAULT_MAX_FRAME_SIZE },
        max_header_block_size: HOSTILE_BLOCK_LIMIT,
        max_continuation_frames: 4,
    };
    let mut decoder = FrameDecoder::new(config);
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    'feed: for piece in input.chunks(chunk) {
        src.extend_from_slice(piece);
        // Every call either returns a frame, consumes a frame into an error, or stops,
        // so it cannot take more calls than there are octets.
        for _ in 0..=input.len() {
            let before = src.len();
            match decoder.decode(&mut src) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => {
                    // Pieces of an open field block may have been taken, but asking
                    // again without new input must change nothing.
                    let after = src.len();
                    assert!(after <= before);
                    assert_eq!(decoder.decode(&mut src), Ok(None));
                    assert_eq!(src.len(), after, "a second Ok(None) consumed input");
                    break;
                }
                Err(err) if err.is_connection_error() => {
                    assert_eq!(
                        decoder.decode(&mut src),
                        Err(err),
                        "the decoder must stay poisoned"
                    );
                    assert_eq!(decoder.buffered_len(), 0);
                    break 'feed;
                }
                Err(err) => assert!(src.len() < before, "stream error {err:?} consumed nothing"),
            }
            assert!(decoder.buffered_len() <= HOSTILE_BLOCK_LIMIT);
        }
        assert!(decoder.buffered_len() <= HOSTILE_BLOCK_LIMIT);
    }

    let mut wire = BytesMut::new();
    for frame in &frames {
        frame
            .encode(&mut wire, MAX_MAX_FRAME_SIZE)
            .expect("a decoded frame must encode");
    }
    let roomy = DecoderConfig {
        max_frame_size: MAX_MAX_FRAME_SIZE,
        max_header_block_size: usize::MAX,
        max_continuation_frames: usize::MAX,
    };
    assert_eq!(
        decode_pieces(&wire, &[], roomy).expect("re-encoded frames must decode"),
        frames
    );
}
