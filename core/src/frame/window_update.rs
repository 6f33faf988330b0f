//! WINDOW_UPDATE frames (RFC 9113 §6.9).

use bytes::{BufMut, Bytes, BytesMut};

use super::{EncodeError, ErrorCode, FrameError, FrameHeader, MAX_WINDOW_SIZE, StreamId, kind};

/// Payload length of every WINDOW_UPDATE frame: one increment.
const WINDOW_UPDATE_LEN: usize = 4;

/// A WINDOW_UPDATE frame: flow-control credit for a stream, or for the connection on
/// stream 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// The stream, or 0 for the connection window.
    pub stream_id: StreamId,
    /// Octets of credit, 1..=2^31-1.
    pub increment: u32,
}

impl WindowUpdate {
    /// A WINDOW_UPDATE frame.
    pub fn new(stream_id: StreamId, increment: u32) -> WindowUpdate {
        WindowUpdate {
            stream_id,
            increment,
        }
    }

    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        if self.increment == 0 || self.increment > MAX_WINDOW_SIZE {
            return Err(EncodeError::InvalidWindowIncrement(self.increment));
        }
        super::check_fits(kind::WINDOW_UPDATE, WINDOW_UPDATE_LEN, max_frame_size)?;
        FrameHeader {
            len: WINDOW_UPDATE_LEN as u32,
            kind: kind::WINDOW_UPDATE,
            flags: 0,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.put_u32(self.increment);
        Ok(())
    }

    pub(super) fn decode(head: &FrameHeader, payload: &Bytes) -> Result<WindowUpdate, FrameError> {
        let Ok(field) = <[u8; WINDOW_UPDATE_LEN]>::try_from(&payload[..]) else {
            // §6.9: a length other than 4 is a connection FRAME_SIZE_ERROR.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "WINDOW_UPDATE frame length is not 4",
            ));
        };
        // §6.9: the top bit is reserved and ignored.
        let increment = u32::from_be_bytes(field) & MAX_WINDOW_SIZE;
        if increment == 0 {
            // §6.9: a zero increment is a stream error on a stream; on stream 0 it is an
            // error on the connection window, hence a connection error.
            return Err(if head.stream_id.is_zero() {
                FrameError::connection(
                    ErrorCode::ProtocolError,
                    "WINDOW_UPDATE with a zero increment on the connection",
                )
            } else {
                FrameError::stream(
                    head.stream_id,
                    ErrorCode::ProtocolError,
                    "WINDOW_UPDATE with a zero increment",
                )
            });
        }
        Ok(WindowUpdate {
            stream_id: head.stream_id,
            increment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, assert_stream_error, decode_one, raw};
    use super::super::*;

    #[test]
    fn window_update_with_length_3_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 1]),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn window_update_with_length_5_on_a_stream_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1, 0]),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn window_update_zero_increment_on_a_stream_is_stream_protocol_error() {
        assert_stream_error(
            &raw(kind::WINDOW_UPDATE, 0, 3, &[0, 0, 0, 0]),
            3,
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn window_update_zero_increment_on_stream_0_is_connection_protocol_error() {
        assert_connection_error(
            &raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]),
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn window_update_reserved_bit_is_ignored() {
        let frame = decode_one(&raw(kind::WINDOW_UPDATE, 0, 0, &[0xff, 0xff, 0xff, 0xff])).unwrap();
        assert_eq!(
            frame,
            Frame::WindowUpdate(WindowUpdate::new(StreamId::ZERO, MAX_WINDOW_SIZE))
        );
        // Only the reserved bit set: the increment is zero.
        assert_stream_error(
            &raw(kind::WINDOW_UPDATE, 0, 1, &[0x80, 0, 0, 0]),
            1,
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn window_update_increment_out_of_range_does_not_encode() {
        let mut dst = bytes::BytesMut::new();
        for n in [0, MAX_WINDOW_SIZE + 1] {
            let frame = Frame::WindowUpdate(WindowUpdate::new(StreamId::new(1), n));
            assert_eq!(
                frame.encode(&mut dst, DEFAULT_MAX_FRAME_SIZE),
                Err(EncodeError::InvalidWindowIncrement(n))
            );
        }
        assert!(dst.is_empty());
    }
}
