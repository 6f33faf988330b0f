//! Scenario: the first bytes of a client connection, through the public frame API only.

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::{
    Data, DecoderConfig, ErrorCode, Frame, FrameDecoder, FrameError, GoAway, Headers, PREFACE,
    PrefaceCheck, Settings, StreamId, WindowUpdate, check_preface, encode_continuation, flags,
    kind,
};

/// What a gRPC client sends first: preface, SETTINGS, a request whose header block needs
/// CONTINUATION frames at the 16 KiB default, a message, and a WINDOW_UPDATE.
fn client_bytes() -> (BytesMut, Vec<Frame>) {
    let frames = vec![
        Frame::Settings(Settings {
            enable_push: Some(false),
            initial_window_size: Some(1 << 20),
            max_header_list_size: Some(16 << 10),
            ..Settings::default()
        }),
        Frame::Headers(Headers {
            end_stream: false,
            ..Headers::new(StreamId::new(1), Bytes::from(vec![0x82; 40_000]))
        }),
        Frame::Data(Data {
            end_stream: true,
            ..Data::new(StreamId::new(1), Bytes::from_static(b"\0\0\0\0\x05hello"))
        }),
        Frame::WindowUpdate(WindowUpdate::new(StreamId::ZERO, 1 << 20)),
    ];
    let mut wire = BytesMut::from(&PREFACE[..]);
    for frame in &frames {
        frame.encode(&mut wire, 16_384).expect("valid frame");
    }
    (wire, frames)
}

#[test]
fn server_reads_a_client_start_delivered_one_octet_at_a_time() {
    let (wire, expected) = client_bytes();
    let mut decoder = FrameDecoder::new(DecoderConfig::default());
    let mut src = BytesMut::new();
    let mut preface_done = false;
    let mut frames = Vec::new();
    for &octet in &wire[..] {
        src.extend_from_slice(&[octet]);
        if !preface_done {
            match check_preface(&src) {
                PrefaceCheck::Complete => {
                    let _ = src.split_to(PREFACE.len());
                    preface_done = true;
                }
                PrefaceCheck::Partial => continue,
                PrefaceCheck::Invalid => panic!("valid preface refused"),
            }
        }
        while let Some(frame) = decoder.decode(&mut src).expect("valid input") {
            frames.push(frame);
        }
        assert!(decoder.buffered_len() <= DecoderConfig::default().max_header_block_size);
    }
    assert_eq!(frames, expected);
}

#[test]
fn server_goaway_for_an_interleaved_header_block() {
    // HEADERS without END_HEADERS, then a CONTINUATION for a different stream.
    let mut wire = BytesMut::new();
    let head = Frame::Headers(Headers::new(
        StreamId::new(1),
        Bytes::from(vec![0x82; 20_000]),
    ));
    head.encode(&mut wire, 16_384).expect("valid frame");
    let first_len = 9 + 16_384;
    let _ = wire.split_off(first_len);
    encode_continuation(StreamId::new(3), &[0x86], true, &mut wire);

    let mut decoder = FrameDecoder::default();
    let err = decoder.decode(&mut wire).expect_err("interleaved block");
    assert_eq!(
        err,
        FrameError::Connection {
            code: ErrorCode::ProtocolError,
            reason: err.reason()
        }
    );
    // The connection answers with GOAWAY naming the error.
    let mut out = BytesMut::new();
    Frame::GoAway(GoAway::new(StreamId::ZERO, err.code()))
        .encode(&mut out, 16_384)
        .expect("valid frame");
    assert_eq!(out[3], kind::GOAWAY);
    assert_eq!(out[4] & flags::ACK, 0);
    assert_eq!(&out[13..17], &1u32.to_be_bytes());
}
