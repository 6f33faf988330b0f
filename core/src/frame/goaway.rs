//! GOAWAY frames (RFC 9113 §6.8).

use bytes::{BufMut, Bytes, BytesMut};

use super::{EncodeError, ErrorCode, FrameError, FrameHeader, StreamId, kind};

/// Length of the fixed GOAWAY fields: Last-Stream-ID and Error Code.
const GOAWAY_FIXED_LEN: usize = 8;

/// A GOAWAY frame: the connection is shutting down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// Highest peer-initiated stream the sender may have acted on.
    pub last_stream_id: StreamId,
    /// Why.
    pub error_code: ErrorCode,
    /// Opaque diagnostic data; it may be sensitive (§6.8), so log with care.
    /// Decoded frames share the input buffer.
    pub debug_data: Bytes,
}

impl GoAway {
    /// A GOAWAY without debug data.
    pub fn new(last_stream_id: StreamId, error_code: ErrorCode) -> GoAway {
        GoAway {
            last_stream_id,
            error_code,
            debug_data: Bytes::new(),
        }
    }

    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        let len = GOAWAY_FIXED_LEN + self.debug_data.len();
        super::check_fits(kind::GOAWAY, len, max_frame_size)?;
        dst.reserve(super::HEADER_LEN + len);
        FrameHeader {
            len: len as u32,
            kind: kind::GOAWAY,
            flags: 0,
            stream_id: StreamId::ZERO,
        }
        .encode(dst);
        dst.put_u32(self.last_stream_id.value());
        dst.put_u32(self.error_code.code());
        dst.put_slice(&self.debug_data);
        Ok(())
    }

    pub(super) fn decode(head: &FrameHeader, payload: Bytes) -> Result<GoAway, FrameError> {
        if !head.stream_id.is_zero() {
            // §6.8: GOAWAY applies to the connection, not a specific stream.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "GOAWAY frame on a non-zero stream",
            ));
        }
        let Some((&[s0, s1, s2, s3, c0, c1, c2, c3], _)) = payload.split_first_chunk() else {
            // §4.2: too small to contain the mandatory fields; GOAWAY is on stream 0, so
            // this is a connection error.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "GOAWAY frame shorter than 8 octets",
            ));
        };
        Ok(GoAway {
            last_stream_id: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
            error_code: ErrorCode::from(u32::from_be_bytes([c0, c1, c2, c3])),
            debug_data: payload.slice(GOAWAY_FIXED_LEN..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_one, raw};
    use super::super::*;
    use bytes::Bytes;

    #[test]
    fn goaway_with_length_7_is_connection_frame_size_error() {
        assert_connection_error(&raw(kind::GOAWAY, 0, 0, &[0; 7]), ErrorCode::FrameSizeError);
    }

    #[test]
    fn goaway_on_stream_1_is_connection_protocol_error() {
        assert_connection_error(&raw(kind::GOAWAY, 0, 1, &[0; 8]), ErrorCode::ProtocolError);
    }

    #[test]
    fn goaway_masks_the_reserved_bit_and_keeps_debug_data() {
        let frame = decode_one(&raw(
            kind::GOAWAY,
            0,
            0,
            &[0x80, 0, 0, 7, 0, 0, 0, 0xb, b'c', b'a', b'l', b'm'],
        ))
        .unwrap();
        assert_eq!(
            frame,
            Frame::GoAway(GoAway {
                last_stream_id: StreamId::new(7),
                error_code: ErrorCode::EnhanceYourCalm,
                debug_data: Bytes::from_static(b"calm"),
            })
        );
    }
}
