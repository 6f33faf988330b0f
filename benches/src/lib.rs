//! Inputs shared by the benches, built the same way for every codec they compare.

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::{Data, Frame, StreamId};

pub mod counting_alloc;
pub mod grpc_pair;
pub mod h2_pair;

/// Payload size of each DATA frame in the frame benches: the RFC's default max frame size.
pub const DATA_FRAME_PAYLOAD: usize = 16 * 1024;

/// Total payload carried by one frame-bench iteration.
pub const DATA_STREAM_BYTES: usize = 16 * 1024 * 1024;

/// One DATA payload of [`DATA_FRAME_PAYLOAD`] bytes.
pub fn data_payload() -> Bytes {
    Bytes::from(
        (0..DATA_FRAME_PAYLOAD)
            .map(|i| i as u8)
            .collect::<Vec<u8>>(),
    )
}

/// The wire bytes of [`DATA_STREAM_BYTES`] of payload in 16 KiB DATA frames on stream 1.
pub fn data_stream() -> BytesMut {
    let payload = data_payload();
    let frames = DATA_STREAM_BYTES / DATA_FRAME_PAYLOAD;
    let mut out = BytesMut::with_capacity(frames * (DATA_FRAME_PAYLOAD + 9));
    for _ in 0..frames {
        let frame = Frame::Data(Data {
            stream_id: StreamId::new(1),
            payload: payload.clone(),
            end_stream: false,
            pad_len: None,
        });
        // The frames are built within the default max frame size, so this cannot fail.
        frame
            .encode(&mut out, DATA_FRAME_PAYLOAD as u32)
            .expect("valid DATA frame");
    }
    out
}

/// A typical unary gRPC request header block, as (name, value) pairs.
pub const REQUEST_HEADERS: &[(&[u8], &[u8])] = &[
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":path", b"/grpc.testing.TestService/UnaryCall"),
    (b":authority", b"localhost:50051"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
    (b"grpc-timeout", b"1S"),
    (b"user-agent", b"grpc-rust-sansio/0.1.0"),
];

/// A successful call's trailer block.
pub const TRAILER_HEADERS: &[(&[u8], &[u8])] = &[(b"grpc-status", b"0")];
