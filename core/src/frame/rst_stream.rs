//! RST_STREAM frames (RFC 9113 §6.4).

use bytes::{BufMut, Bytes, BytesMut};

use super::{EncodeError, ErrorCode, FrameError, FrameHeader, StreamId, kind};

/// Payload length of every RST_STREAM frame: one error code.
const RST_STREAM_LEN: usize = 4;

/// A RST_STREAM frame: ends one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStream {
    /// The stream to end; never 0.
    pub stream_id: StreamId,
    /// Why.
    pub error_code: ErrorCode,
}

impl RstStream {
    /// A RST_STREAM frame.
    pub fn new(stream_id: StreamId, error_code: ErrorCode) -> RstStream {
        RstStream {
            stream_id,
            error_code,
        }
    }

    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        if self.stream_id.is_zero() {
            return Err(EncodeError::StreamIdZero {
                kind: kind::RST_STREAM,
            });
        }
        super::check_fits(kind::RST_STREAM, RST_STREAM_LEN, max_frame_size)?;
        FrameHeader {
            len: RST_STREAM_LEN as u32,
            kind: kind::RST_STREAM,
            flags: 0,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.put_u32(self.error_code.code());
        Ok(())
    }

    pub(super) fn decode(head: &FrameHeader, payload: &Bytes) -> Result<RstStream, FrameError> {
        if head.stream_id.is_zero() {
            // §6.4: RST_STREAM frames MUST be associated with a stream.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "RST_STREAM frame on stream 0",
            ));
        }
        let Ok(code) = <[u8; RST_STREAM_LEN]>::try_from(&payload[..]) else {
            // §6.4: a length other than 4 is a connection FRAME_SIZE_ERROR.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "RST_STREAM frame length is not 4",
            ));
        };
        Ok(RstStream {
            stream_id: head.stream_id,
            error_code: ErrorCode::from(u32::from_be_bytes(code)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_one, raw};
    use super::super::*;

    #[test]
    fn rst_stream_on_stream_0_is_connection_protocol_error() {
        assert_connection_error(
            &raw(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8]),
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn rst_stream_with_length_3_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::RST_STREAM, 0, 1, &[0, 0, 8]),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn rst_stream_with_length_5_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8, 0]),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn rst_stream_keeps_unknown_error_codes() {
        let frame = decode_one(&raw(kind::RST_STREAM, 0, 1, &[0xde, 0xad, 0xbe, 0xef])).unwrap();
        assert_eq!(
            frame,
            Frame::RstStream(RstStream::new(
                StreamId::new(1),
                ErrorCode::Unknown(0xdead_beef)
            ))
        );
    }
}
