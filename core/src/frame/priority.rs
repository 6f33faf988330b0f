//! PRIORITY frames (RFC 9113 §6.3) and the priority fields HEADERS can carry (§6.2).
//!
//! The RFC 7540 priority scheme is deprecated (§5.3.2), but the fields must still be
//! parsed so the rest of the frame is read correctly, and a stream depending on itself
//! is still a stream error (RFC 7540 §5.3.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::{EncodeError, ErrorCode, FrameError, FrameHeader, StreamId, kind};
use crate::frame::stream_id::RESERVED_BIT;

/// Length of the Exclusive + Stream Dependency + Weight fields.
pub(super) const PRIORITY_SPEC_LEN: usize = 5;

/// The RFC 7540 priority fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PrioritySpec {
    /// The Exclusive bit.
    pub exclusive: bool,
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// Weight as sent on the wire, 0..=255; the RFC 7540 weight is this plus one.
    pub weight: u8,
}

impl PrioritySpec {
    /// Parses the 5 field octets.
    pub(super) fn parse(fields: [u8; PRIORITY_SPEC_LEN]) -> PrioritySpec {
        let [d0, d1, d2, d3, weight] = fields;
        let dependency = u32::from_be_bytes([d0, d1, d2, d3]);
        PrioritySpec {
            exclusive: dependency & RESERVED_BIT != 0,
            dependency: StreamId::new(dependency),
            weight,
        }
    }

    /// Appends the 5 field octets.
    pub(super) fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.to_bytes());
    }

    /// The 5 field octets.
    pub(super) fn to_bytes(self) -> [u8; PRIORITY_SPEC_LEN] {
        let exclusive = if self.exclusive { RESERVED_BIT } else { 0 };
        let [d0, d1, d2, d3] = (self.dependency.value() | exclusive).to_be_bytes();
        [d0, d1, d2, d3, self.weight]
    }
}

/// A PRIORITY frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The stream being prioritised; never 0.
    pub stream_id: StreamId,
    /// Its priority.
    pub spec: PrioritySpec,
}

impl Priority {
    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        if self.stream_id.is_zero() {
            return Err(EncodeError::StreamIdZero {
                kind: kind::PRIORITY,
            });
        }
        super::check_fits(kind::PRIORITY, PRIORITY_SPEC_LEN, max_frame_size)?;
        FrameHeader {
            len: PRIORITY_SPEC_LEN as u32,
            kind: kind::PRIORITY,
            flags: 0,
            stream_id: self.stream_id,
        }
        .encode(dst);
        self.spec.encode(dst);
        Ok(())
    }

    pub(super) fn decode(head: &FrameHeader, payload: &Bytes) -> Result<Priority, FrameError> {
        if head.stream_id.is_zero() {
            // §6.3: a PRIORITY frame always identifies a stream.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "PRIORITY frame on stream 0",
            ));
        }
        let Ok(fields) = <[u8; PRIORITY_SPEC_LEN]>::try_from(&payload[..]) else {
            // §6.3: a length other than 5 is a *stream* error: PRIORITY changes no
            // connection state, so the frame is dropped and decoding goes on.
            return Err(FrameError::stream(
                head.stream_id,
                ErrorCode::FrameSizeError,
                "PRIORITY frame length is not 5",
            ));
        };
        let spec = PrioritySpec::parse(fields);
        if spec.dependency == head.stream_id {
            // RFC 7540 §5.3.1 (kept by RFC 9113 §5.3.2 for interoperability): a stream
            // cannot depend on itself. Unlike HEADERS there is no field block to keep in
            // sync, so the decoder can drop the frame here.
            return Err(FrameError::stream(
                head.stream_id,
                ErrorCode::ProtocolError,
                "PRIORITY frame makes a stream depend on itself",
            ));
        }
        Ok(Priority {
            stream_id: head.stream_id,
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, assert_stream_error, decode_one, raw};
    use super::super::*;
    use bytes::BytesMut;

    #[test]
    fn priority_on_stream_0_is_connection_protocol_error() {
        assert_connection_error(
            &raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]),
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn priority_with_length_4_is_stream_frame_size_error() {
        assert_stream_error(
            &raw(kind::PRIORITY, 0, 3, &[0, 0, 0, 1]),
            3,
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn priority_with_length_6_is_stream_frame_size_error() {
        assert_stream_error(
            &raw(kind::PRIORITY, 0, 3, &[0, 0, 0, 1, 16, 0]),
            3,
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn priority_depending_on_its_own_stream_is_stream_protocol_error() {
        assert_stream_error(
            &raw(kind::PRIORITY, 0, 5, &[0x80, 0, 0, 5, 16]),
            5,
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn priority_fields_parse_exclusive_dependency_and_weight() {
        let frame = decode_one(&raw(kind::PRIORITY, 0xff, 5, &[0x80, 0, 0, 3, 255])).unwrap();
        let expected = Priority {
            stream_id: StreamId::new(5),
            spec: PrioritySpec {
                exclusive: true,
                dependency: StreamId::new(3),
                weight: 255,
            },
        };
        assert_eq!(frame, Frame::Priority(expected));
        let mut out = BytesMut::new();
        Frame::Priority(expected)
            .encode(&mut out, DEFAULT_MAX_FRAME_SIZE)
            .unwrap();
        assert_eq!(
            &out[..],
            &raw(kind::PRIORITY, 0, 5, &[0x80, 0, 0, 3, 255])[..]
        );
    }
}
