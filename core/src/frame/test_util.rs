//! Helpers for the frame codec's unit tests.
//!
//! Compiled only for tests: `frame/mod.rs` declares it `#[cfg(test)]`.

use bytes::BytesMut;

use super::*;

/// A frame with the given header fields and a Length matching `payload`.
pub(super) fn raw(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    let header = FrameHeader {
        len: payload.len() as u32,
        kind,
        flags,
        stream_id: StreamId::new(stream_id),
    };
    encode_raw(&header, payload, &mut out);
    out
}

/// Decodes every frame in `src`, failing on the first error; panics if bytes are left.
pub(super) fn decode_all(
    src: &mut BytesMut,
    config: DecoderConfig,
) -> Result<Vec<Frame>, FrameError> {
    let mut decoder = FrameDecoder::new(config);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(src)? {
        frames.push(frame);
    }
    assert!(src.is_empty(), "{} undecoded bytes left", src.len());
    assert_eq!(decoder.buffered_len(), 0, "a field block was left open");
    Ok(frames)
}

/// Decodes exactly one frame from `wire` with the default config.
pub(super) fn decode_one(wire: &[u8]) -> Result<Frame, FrameError> {
    let mut src = BytesMut::from(wire);
    let mut decoder = FrameDecoder::default();
    let frame = decoder.decode(&mut src)?.expect("a complete frame");
    assert!(src.is_empty(), "{} bytes left after one frame", src.len());
    Ok(frame)
}

/// A PING frame to follow a bad frame, proving whether decoding can go on.
fn canary() -> BytesMut {
    raw(kind::PING, 0, 0, b"canary!!")
}

/// Asserts that `wire` yields a connection error with `code`, whether fed whole or one
/// octet at a time, and that the decoder then stays poisoned.
pub(super) fn assert_connection_error(wire: &[u8], code: ErrorCode) -> FrameError {
    let mut src = BytesMut::from(wire);
    src.extend_from_slice(&canary());
    let mut decoder = FrameDecoder::default();
    let err = decoder.decode(&mut src).expect_err("a connection error");
    assert!(
        err.is_connection_error(),
        "expected a connection error, got {err:?}"
    );
    assert_eq!(err.code(), code, "wrong code: {err:?}");
    assert!(decoder.is_poisoned());
    assert_eq!(
        decoder.decode(&mut src),
        Err(err),
        "the decoder must stay poisoned"
    );
    assert_eq!(decoder.decode(&mut BytesMut::from(&canary()[..])), Err(err));
    assert_eq!(decoder.buffered_len(), 0);

    let mut trickle = FrameDecoder::default();
    let mut src = BytesMut::new();
    let mut got = None;
    for &octet in wire {
        src.extend_from_slice(&[octet]);
        match trickle.decode(&mut src) {
            Ok(None) => {}
            Ok(Some(frame)) => panic!("decoded {frame:?} before the error"),
            Err(e) => {
                got = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        got,
        Some(err),
        "one octet at a time gave a different result"
    );
    err
}

/// Asserts that `wire` yields a stream error with `code` on `stream_id`, that the bad
/// frame is consumed, and that the next frame still decodes.
pub(super) fn assert_stream_error(wire: &[u8], stream_id: u32, code: ErrorCode) -> FrameError {
    let mut src = BytesMut::from(wire);
    src.extend_from_slice(&canary());
    let mut decoder = FrameDecoder::default();
    let err = decoder.decode(&mut src).expect_err("a stream error");
    assert_eq!(
        err,
        FrameError::stream(StreamId::new(stream_id), code, err.reason())
    );
    assert!(!decoder.is_poisoned());
    assert_eq!(
        src.len(),
        canary().len(),
        "the bad frame must be consumed whole"
    );
    assert_eq!(
        decoder.decode(&mut src),
        Ok(Some(Frame::Ping(Ping::new(*b"canary!!"))))
    );
    assert!(src.is_empty());
    err
}
