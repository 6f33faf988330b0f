//! DATA frames (RFC 9113 §6.1).

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    EncodeError, ErrorCode, FrameError, FrameHeader, MAX_MAX_FRAME_SIZE, StreamId, flags, kind,
    padding,
};

/// A DATA frame: message content on a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// The stream; never 0.
    pub stream_id: StreamId,
    /// The content, padding removed. Decoded frames share the input buffer (no copy).
    pub payload: Bytes,
    /// END_STREAM: the sender's last frame on this stream.
    pub end_stream: bool,
    /// Padding length when the frame is (or is to be) PADDED.
    pub pad_len: Option<u8>,
}

impl Data {
    /// An unpadded DATA frame without END_STREAM.
    pub fn new(stream_id: StreamId, payload: Bytes) -> Data {
        Data {
            stream_id,
            payload,
            end_stream: false,
            pad_len: None,
        }
    }

    /// The frame's whole payload length: content plus, when padded, the Pad Length
    /// octet and the padding. This is what counts against flow-control windows
    /// (§6.1, §6.9.1), and the frame's Length field. Saturates at `u32::MAX`, which no
    /// encodable frame reaches.
    pub fn flow_controlled_len(&self) -> u32 {
        let content = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        match self.pad_len {
            None => content,
            Some(pad) => content.saturating_add(1 + u32::from(pad)),
        }
    }

    /// Checks that the frame can be sent under the peer's `max_frame_size`.
    /// [`encode_head`](Data::encode_head) assumes this passed.
    pub fn check_encode(&self, max_frame_size: u32) -> Result<(), EncodeError> {
        if self.stream_id.is_zero() {
            return Err(EncodeError::StreamIdZero { kind: kind::DATA });
        }
        let len = self.flow_controlled_len();
        let max = max_frame_size.min(MAX_MAX_FRAME_SIZE);
        if len > max {
            return Err(EncodeError::PayloadTooLarge {
                kind: kind::DATA,
                len: self.payload.len() + self.pad_len.map_or(0, |p| 1 + usize::from(p)),
                max_frame_size,
            });
        }
        Ok(())
    }

    /// Appends the 9-octet header and, when padded, the Pad Length octet: everything
    /// that precedes the content. The caller sends `payload` next (a vectored write
    /// avoids copying it), then [`encode_padding`](Data::encode_padding).
    ///
    /// The frame must pass [`check_encode`](Data::check_encode) for the peer's max
    /// frame size; this method does not check it.
    pub fn encode_head(&self, dst: &mut BytesMut) {
        let mut frame_flags = 0;
        if self.end_stream {
            frame_flags |= flags::END_STREAM;
        }
        if self.pad_len.is_some() {
            frame_flags |= flags::PADDED;
        }
        FrameHeader {
            len: self.flow_controlled_len(),
            kind: kind::DATA,
            flags: frame_flags,
            stream_id: self.stream_id,
        }
        .encode(dst);
        if let Some(pad) = self.pad_len {
            dst.put_u8(pad);
        }
    }

    /// Appends the padding octets (zero, §6.1), if any: what follows the content.
    pub fn encode_padding(&self, dst: &mut BytesMut) {
        if let Some(pad) = self.pad_len {
            dst.put_bytes(0, usize::from(pad));
        }
    }

    /// Appends the whole frame, copying the content.
    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        self.check_encode(max_frame_size)?;
        dst.reserve(super::HEADER_LEN + self.flow_controlled_len() as usize);
        self.encode_head(dst);
        dst.put_slice(&self.payload);
        self.encode_padding(dst);
        Ok(())
    }

    /// Parses a DATA payload. `payload` is already a slice of the input buffer, so the
    /// content stays zero-copy.
    #[inline]
    pub(super) fn decode(head: &FrameHeader, mut payload: Bytes) -> Result<Data, FrameError> {
        if head.stream_id.is_zero() {
            // §6.1: DATA frames MUST be associated with a stream.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "DATA frame on stream 0",
            ));
        }
        let pad_len = padding::strip(head, &mut payload, 0)?;
        Ok(Data {
            stream_id: head.stream_id,
            payload,
            end_stream: head.has(flags::END_STREAM),
            pad_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_all, decode_one, raw};
    use super::super::*;
    use bytes::{Bytes, BytesMut};

    #[test]
    fn data_on_stream_0_is_connection_protocol_error() {
        assert_connection_error(&raw(kind::DATA, 0, 0, b"hi"), ErrorCode::ProtocolError);
    }

    #[test]
    fn data_padded_with_empty_payload_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::DATA, flags::PADDED, 1, b""),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn data_pad_length_equal_to_payload_length_is_connection_protocol_error() {
        // Payload of 5: Pad Length 5 means the padding would be the whole payload (§6.1).
        let wire = raw(kind::DATA, flags::PADDED, 1, &[5, 0, 0, 0, 0]);
        assert_connection_error(&wire, ErrorCode::ProtocolError);
        // Longer still.
        let wire = raw(kind::DATA, flags::PADDED, 1, &[200, 1, 2]);
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn data_padding_that_fills_the_rest_of_the_payload_is_legal() {
        let frame = decode_one(&raw(kind::DATA, flags::PADDED, 1, &[4, 0, 0, 0, 0])).unwrap();
        let Frame::Data(data) = frame else {
            panic!("not DATA: {frame:?}")
        };
        assert!(data.payload.is_empty());
        assert_eq!(data.pad_len, Some(4));
        assert_eq!(data.flow_controlled_len(), 5);
    }

    #[test]
    fn data_strips_padding_and_reports_the_flow_controlled_length() {
        let frame = decode_one(&raw(
            kind::DATA,
            flags::PADDED | flags::END_STREAM | 0x40,
            3,
            &[2, b'a', b'b', b'c', 0, 0],
        ))
        .unwrap();
        let expected = Data {
            stream_id: StreamId::new(3),
            payload: Bytes::from_static(b"abc"),
            end_stream: true,
            pad_len: Some(2),
        };
        assert_eq!(frame, Frame::Data(expected.clone()));
        assert_eq!(expected.flow_controlled_len(), 6);
    }

    #[test]
    fn data_payload_is_a_slice_of_the_input_buffer() {
        let mut wire = BytesMut::new();
        for i in 0..3u8 {
            let data = Data {
                stream_id: StreamId::new(1),
                payload: Bytes::from(vec![i; 1000]),
                end_stream: false,
                pad_len: if i == 1 { Some(7) } else { None },
            };
            Frame::Data(data)
                .encode(&mut wire, DEFAULT_MAX_FRAME_SIZE)
                .unwrap();
        }
        let start = wire.as_ptr() as usize;
        let end = start + wire.len();
        let frames = decode_all(&mut wire, DecoderConfig::default()).unwrap();
        assert_eq!(frames.len(), 3);
        for frame in frames {
            let Frame::Data(data) = frame else {
                panic!("not DATA")
            };
            let p = data.payload.as_ptr() as usize;
            assert!(
                p >= start && p + data.payload.len() <= end,
                "payload was copied"
            );
        }
    }

    #[test]
    fn encode_head_and_padding_surround_the_payload() {
        let data = Data {
            stream_id: StreamId::new(5),
            payload: Bytes::from_static(b"xyz"),
            end_stream: true,
            pad_len: Some(3),
        };
        let mut split = BytesMut::new();
        data.encode_head(&mut split);
        assert_eq!(split.len(), 10);
        split.extend_from_slice(&data.payload);
        data.encode_padding(&mut split);
        let mut whole = BytesMut::new();
        Frame::Data(data)
            .encode(&mut whole, DEFAULT_MAX_FRAME_SIZE)
            .unwrap();
        assert_eq!(split, whole);
        assert_eq!(
            &whole[..],
            &[0, 0, 7, 0, 0x9, 0, 0, 0, 5, 3, b'x', b'y', b'z', 0, 0, 0]
        );
    }

    #[test]
    fn data_over_max_frame_size_or_on_stream_0_does_not_encode() {
        let mut dst = BytesMut::new();
        let big = Data::new(StreamId::new(1), Bytes::from(vec![0; 101]));
        assert_eq!(
            Frame::Data(big.clone()).encode(&mut dst, 100),
            Err(EncodeError::PayloadTooLarge {
                kind: kind::DATA,
                len: 101,
                max_frame_size: 100
            })
        );
        let padded = Data {
            pad_len: Some(0),
            ..Data::new(StreamId::new(1), Bytes::from(vec![0; 100]))
        };
        assert!(Frame::Data(padded).encode(&mut dst, 100).is_err());
        let zero = Data::new(StreamId::ZERO, Bytes::new());
        assert_eq!(
            Frame::Data(zero).encode(&mut dst, 100),
            Err(EncodeError::StreamIdZero { kind: kind::DATA })
        );
        assert!(dst.is_empty(), "a failed encode must not write");
        assert!(Frame::Data(big).encode(&mut dst, 101).is_ok());
    }
}
