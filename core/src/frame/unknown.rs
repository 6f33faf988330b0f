//! Frames of types RFC 9113 does not define (§4.1, §5.5).

use bytes::{BufMut, Bytes, BytesMut};

use super::{EncodeError, FrameHeader, StreamId, kind};

/// A frame of an extension type. RFC 9113 says to ignore and discard these (§4.1), but
/// the decoder hands them up so the caller decides (and can log or count them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    /// Frame type, above [`kind::CONTINUATION`].
    pub kind: u8,
    /// Flags, uninterpreted.
    pub flags: u8,
    /// Stream, unchecked: the type's rules are unknown.
    pub stream_id: StreamId,
    /// Payload; decoded frames share the input buffer.
    pub payload: Bytes,
}

impl Unknown {
    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        if kind::is_known(self.kind) {
            return Err(EncodeError::KnownKindAsUnknown(self.kind));
        }
        super::check_fits(self.kind, self.payload.len(), max_frame_size)?;
        dst.reserve(super::HEADER_LEN + self.payload.len());
        FrameHeader {
            len: self.payload.len() as u32,
            kind: self.kind,
            flags: self.flags,
            stream_id: self.stream_id,
        }
        .encode(dst);
        dst.put_slice(&self.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{decode_all, raw};
    use super::super::*;
    use bytes::{Bytes, BytesMut};

    #[test]
    fn unknown_frame_types_are_returned_not_rejected() {
        let mut wire = raw(0xfa, 0xff, 0, b"ext");
        wire.extend_from_slice(&raw(0x0a, 0, 7, b""));
        let frames = decode_all(&mut wire, DecoderConfig::default()).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Unknown(Unknown {
                    kind: 0xfa,
                    flags: 0xff,
                    stream_id: StreamId::ZERO,
                    payload: Bytes::from_static(b"ext")
                }),
                Frame::Unknown(Unknown {
                    kind: 0x0a,
                    flags: 0,
                    stream_id: StreamId::new(7),
                    payload: Bytes::new()
                }),
            ]
        );
    }

    #[test]
    fn unknown_with_a_defined_type_does_not_encode() {
        let frame = Frame::Unknown(Unknown {
            kind: kind::PING,
            flags: 0,
            stream_id: StreamId::ZERO,
            payload: Bytes::new(),
        });
        let mut dst = BytesMut::new();
        assert_eq!(
            frame.encode(&mut dst, DEFAULT_MAX_FRAME_SIZE),
            Err(EncodeError::KnownKindAsUnknown(kind::PING))
        );
        assert!(dst.is_empty());
    }
}
