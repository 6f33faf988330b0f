//! PING frames (RFC 9113 §6.7).

use bytes::{BufMut, Bytes, BytesMut};

use super::{EncodeError, ErrorCode, FrameError, FrameHeader, StreamId, flags, kind};

/// Payload length of every PING frame: the opaque data.
const PING_LEN: usize = 8;

/// A PING frame, or the acknowledgement of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ping {
    /// ACK: this frame answers a PING.
    pub ack: bool,
    /// Opaque data, echoed back in the answer.
    pub payload: [u8; PING_LEN],
}

impl Ping {
    /// A PING asking for an answer.
    pub fn new(payload: [u8; PING_LEN]) -> Ping {
        Ping {
            ack: false,
            payload,
        }
    }

    /// The answer to a PING that carried `payload` (§6.7).
    pub fn ack(payload: [u8; PING_LEN]) -> Ping {
        Ping { ack: true, payload }
    }

    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        super::check_fits(kind::PING, PING_LEN, max_frame_size)?;
        FrameHeader {
            len: PING_LEN as u32,
            kind: kind::PING,
            flags: if self.ack { flags::ACK } else { 0 },
            stream_id: StreamId::ZERO,
        }
        .encode(dst);
        dst.put_slice(&self.payload);
        Ok(())
    }

    pub(super) fn decode(head: &FrameHeader, payload: &Bytes) -> Result<Ping, FrameError> {
        if !head.stream_id.is_zero() {
            // §6.7: PING frames are not associated with any individual stream.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "PING frame on a non-zero stream",
            ));
        }
        let Ok(data) = <[u8; PING_LEN]>::try_from(&payload[..]) else {
            // §6.7: a length other than 8 is a connection FRAME_SIZE_ERROR.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "PING frame length is not 8",
            ));
        };
        Ok(Ping {
            ack: head.has(flags::ACK),
            payload: data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_one, raw};
    use super::super::*;

    #[test]
    fn ping_with_length_7_is_connection_frame_size_error() {
        assert_connection_error(&raw(kind::PING, 0, 0, &[0; 7]), ErrorCode::FrameSizeError);
    }

    #[test]
    fn ping_with_length_9_is_connection_frame_size_error() {
        assert_connection_error(&raw(kind::PING, 0, 0, &[0; 9]), ErrorCode::FrameSizeError);
    }

    #[test]
    fn ping_on_stream_1_is_connection_protocol_error() {
        assert_connection_error(&raw(kind::PING, 0, 1, &[0; 8]), ErrorCode::ProtocolError);
    }

    #[test]
    fn ping_ignores_unknown_flags() {
        let frame = decode_one(&raw(kind::PING, flags::ACK | 0xfe, 0, b"12345678")).unwrap();
        assert_eq!(frame, Frame::Ping(Ping::ack(*b"12345678")));
        let frame = decode_one(&raw(kind::PING, 0xfe, 0, b"12345678")).unwrap();
        assert_eq!(frame, Frame::Ping(Ping::new(*b"12345678")));
    }
}
