//! Frames that carry a field block: HEADERS (RFC 9113 §6.2), PUSH_PROMISE (§6.6) and
//! the CONTINUATION frames (§6.10) that extend either.
//!
//! The decoder reassembles a block split over CONTINUATION frames (see
//! [`FrameDecoder`](super::FrameDecoder)), so [`Headers`] and [`PushPromise`] always hold
//! a complete block; the encoder splits a block that does not fit one frame.

use bytes::{BufMut, Bytes, BytesMut};

use super::priority::PRIORITY_SPEC_LEN;
use super::{
    EncodeError, ErrorCode, FrameError, FrameHeader, HEADER_LEN, MAX_MAX_FRAME_SIZE, PrioritySpec,
    StreamId, flags, kind, padding,
};

/// Length of the PUSH_PROMISE Promised Stream ID field.
const PROMISED_ID_LEN: usize = 4;

/// A HEADERS frame with its whole field block (the HPACK-encoded header or trailer
/// section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// The stream; never 0.
    pub stream_id: StreamId,
    /// The complete field block. Zero-copy from the input when it came in one frame.
    pub header_block: Bytes,
    /// END_STREAM: the sender's last frame on this stream.
    pub end_stream: bool,
    /// Deprecated RFC 7540 priority fields, if the PRIORITY flag was set.
    pub priority: Option<PrioritySpec>,
    /// Padding length of the HEADERS frame (CONTINUATION frames carry none).
    pub pad_len: Option<u8>,
}

impl Headers {
    /// A HEADERS frame without END_STREAM, priority or padding.
    pub fn new(stream_id: StreamId, header_block: Bytes) -> Headers {
        Headers {
            stream_id,
            header_block,
            end_stream: false,
            priority: None,
            pad_len: None,
        }
    }

    /// Rejects a stream that depends on itself: a stream PROTOCOL_ERROR (RFC 7540
    /// §5.3.1, kept by RFC 9113 §5.3.2 for interoperability).
    ///
    /// The decoder does not make this check: the field block must be HPACK-decoded even
    /// when the stream is then reset, or the decoder's dynamic table would fall out of
    /// step with the peer's (RFC 9113 §4.3). The connection calls this after HPACK.
    pub fn check_priority(&self) -> Result<(), FrameError> {
        match self.priority {
            Some(spec) if spec.dependency == self.stream_id => Err(FrameError::stream(
                self.stream_id,
                ErrorCode::ProtocolError,
                "HEADERS frame makes a stream depend on itself",
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        if self.stream_id.is_zero() {
            return Err(EncodeError::StreamIdZero {
                kind: kind::HEADERS,
            });
        }
        let mut frame_flags = 0;
        if self.end_stream {
            frame_flags |= flags::END_STREAM;
        }
        let spec;
        let fixed: &[u8] = match self.priority {
            Some(priority) => {
                frame_flags |= flags::PRIORITY;
                spec = priority.to_bytes();
                &spec
            }
            None => &[],
        };
        encode_field_block(
            dst,
            FieldBlockFrame {
                kind: kind::HEADERS,
                flags: frame_flags,
                stream_id: self.stream_id,
                fixed,
                pad_len: self.pad_len,
                block: &self.header_block,
            },
            max_frame_size,
        )
    }

    /// Parses one HEADERS frame; `header_block` is this frame's fragment only.
    pub(super) fn decode(head: &FrameHeader, mut payload: Bytes) -> Result<Headers, FrameError> {
        if head.stream_id.is_zero() {
            // §6.2: HEADERS frames MUST be associated with a stream.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "HEADERS frame on stream 0",
            ));
        }
        let fixed = if head.has(flags::PRIORITY) {
            PRIORITY_SPEC_LEN
        } else {
            0
        };
        // §4.2 / §6.2: short frames are connection FRAME_SIZE_ERRORs and excess padding
        // a connection PROTOCOL_ERROR; see `padding::strip`.
        let pad_len = padding::strip(head, &mut payload, fixed)?;
        let priority = match payload.split_first_chunk::<PRIORITY_SPEC_LEN>() {
            Some((fields, _)) if fixed > 0 => Some(PrioritySpec::parse(*fields)),
            _ => None,
        };
        Ok(Headers {
            stream_id: head.stream_id,
            header_block: payload.slice(fixed..),
            end_stream: head.has(flags::END_STREAM),
            priority,
            pad_len,
        })
    }
}

/// A PUSH_PROMISE frame with its whole field block (the promised request's header
/// section).
///
/// Whether `promised_id` is a legal new stream (§6.6, §5.1.1) depends on connection
/// state, so the connection checks it, not the decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushPromise {
    /// The stream the promise is associated with; never 0.
    pub stream_id: StreamId,
    /// The stream being reserved.
    pub promised_id: StreamId,
    /// The complete field block. Zero-copy from the input when it came in one frame.
    pub header_block: Bytes,
    /// Padding length of the PUSH_PROMISE frame (CONTINUATION frames carry none).
    pub pad_len: Option<u8>,
}

impl PushPromise {
    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        if self.stream_id.is_zero() {
            return Err(EncodeError::StreamIdZero {
                kind: kind::PUSH_PROMISE,
            });
        }
        encode_field_block(
            dst,
            FieldBlockFrame {
                kind: kind::PUSH_PROMISE,
                flags: 0,
                stream_id: self.stream_id,
                fixed: &self.promised_id.value().to_be_bytes(),
                pad_len: self.pad_len,
                block: &self.header_block,
            },
            max_frame_size,
        )
    }

    /// Parses one PUSH_PROMISE frame; `header_block` is this frame's fragment only.
    pub(super) fn decode(
        head: &FrameHeader,
        mut payload: Bytes,
    ) -> Result<PushPromise, FrameError> {
        if head.stream_id.is_zero() {
            // §6.6: a PUSH_PROMISE on stream 0 is a connection PROTOCOL_ERROR.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "PUSH_PROMISE frame on stream 0",
            ));
        }
        // §4.2 / §6.6: short frames are connection FRAME_SIZE_ERRORs and excess padding
        // a connection PROTOCOL_ERROR; see `padding::strip`.
        let pad_len = padding::strip(head, &mut payload, PROMISED_ID_LEN)?;
        let Some((promised, _)) = payload.split_first_chunk::<PROMISED_ID_LEN>() else {
            // `strip` guaranteed the field is present; kept as an error, never a panic.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "PUSH_PROMISE frame too short for its promised stream id",
            ));
        };
        Ok(PushPromise {
            stream_id: head.stream_id,
            promised_id: StreamId::new(u32::from_be_bytes(*promised)),
            header_block: payload.slice(PROMISED_ID_LEN..),
            pad_len,
        })
    }
}

/// Appends one CONTINUATION frame carrying `fragment`, without any checks: for building
/// hostile sequences in tests. [`Frame::encode`](super::Frame::encode) emits
/// CONTINUATION frames itself when a block needs them.
pub fn encode_continuation(
    stream_id: StreamId,
    fragment: &[u8],
    end_headers: bool,
    dst: &mut BytesMut,
) {
    FrameHeader {
        len: u32::try_from(fragment.len()).unwrap_or(u32::MAX),
        kind: kind::CONTINUATION,
        flags: if end_headers { flags::END_HEADERS } else { 0 },
        stream_id,
    }
    .encode(dst);
    dst.put_slice(fragment);
}

/// The parts of a HEADERS or PUSH_PROMISE frame the shared encoder needs.
struct FieldBlockFrame<'a> {
    kind: u8,
    /// Flags other than PADDED and END_HEADERS, which the encoder decides.
    flags: u8,
    stream_id: StreamId,
    /// Fields between the Pad Length octet and the fragment.
    fixed: &'a [u8],
    pad_len: Option<u8>,
    block: &'a [u8],
}

/// Writes a HEADERS or PUSH_PROMISE frame, followed by as many CONTINUATION frames as
/// the block needs under `max_frame_size`. Checks everything before writing, so `dst` is
/// untouched on error.
fn encode_field_block(
    dst: &mut BytesMut,
    frame: FieldBlockFrame<'_>,
    max_frame_size: u32,
) -> Result<(), EncodeError> {
    let max = max_frame_size.min(MAX_MAX_FRAME_SIZE) as usize;
    let pad = frame.pad_len.map_or(0, usize::from);
    let overhead = frame.pad_len.map_or(0, |_| 1) + frame.fixed.len() + pad;
    if overhead > max {
        return Err(EncodeError::PayloadTooLarge {
            kind: frame.kind,
            len: overhead + frame.block.len(),
            max_frame_size,
        });
    }
    let (first, mut rest) = frame.block.split_at(frame.block.len().min(max - overhead));
    if !rest.is_empty() && max == 0 {
        // No CONTINUATION frame could carry anything: splitting would never end.
        return Err(EncodeError::PayloadTooLarge {
            kind: kind::CONTINUATION,
            len: rest.len(),
            max_frame_size,
        });
    }
    let continuations = rest.len().div_ceil(max.max(1));
    dst.reserve(HEADER_LEN * (1 + continuations) + overhead + frame.block.len());

    let mut frame_flags = frame.flags;
    if frame.pad_len.is_some() {
        frame_flags |= flags::PADDED;
    }
    if rest.is_empty() {
        frame_flags |= flags::END_HEADERS;
    }
    FrameHeader {
        len: (overhead + first.len()) as u32,
        kind: frame.kind,
        flags: frame_flags,
        stream_id: frame.stream_id,
    }
    .encode(dst);
    if let Some(pad_len) = frame.pad_len {
        dst.put_u8(pad_len);
    }
    dst.put_slice(frame.fixed);
    dst.put_slice(first);
    dst.put_bytes(0, pad);

    while !rest.is_empty() {
        let (fragment, tail) = rest.split_at(rest.len().min(max));
        encode_continuation(frame.stream_id, fragment, tail.is_empty(), dst);
        rest = tail;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_all, decode_one, raw};
    use super::super::*;
    use bytes::{Bytes, BytesMut};

    #[test]
    fn headers_on_stream_0_is_connection_protocol_error() {
        assert_connection_error(
            &raw(kind::HEADERS, flags::END_HEADERS, 0, b"\x82"),
            ErrorCode::ProtocolError,
        );
    }

    #[test]
    fn push_promise_on_stream_0_is_connection_protocol_error() {
        let wire = raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS,
            0,
            &[0, 0, 0, 2, 0x82],
        );
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn headers_padded_with_empty_payload_is_connection_frame_size_error() {
        let wire = raw(kind::HEADERS, flags::END_HEADERS | flags::PADDED, 1, &[]);
        assert_connection_error(&wire, ErrorCode::FrameSizeError);
    }

    #[test]
    fn headers_priority_flag_with_4_octets_is_connection_frame_size_error() {
        let wire = raw(
            kind::HEADERS,
            flags::END_HEADERS | flags::PRIORITY,
            1,
            &[0, 0, 0, 3],
        );
        assert_connection_error(&wire, ErrorCode::FrameSizeError);
    }

    #[test]
    fn headers_padded_and_priority_without_room_for_priority_is_connection_frame_size_error() {
        let flags = flags::END_HEADERS | flags::PADDED | flags::PRIORITY;
        assert_connection_error(
            &raw(kind::HEADERS, flags, 1, &[0, 0, 0, 0, 3]),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn headers_pad_length_over_the_fragment_is_connection_protocol_error() {
        // Pad Length, 5 priority octets, 2 more octets: padding of 3 does not fit.
        let flags = flags::END_HEADERS | flags::PADDED | flags::PRIORITY;
        let wire = raw(kind::HEADERS, flags, 1, &[3, 0, 0, 0, 3, 16, 0, 0]);
        assert_connection_error(&wire, ErrorCode::ProtocolError);
        // Padding of 2 does: an empty fragment.
        let frame = decode_one(&raw(kind::HEADERS, flags, 1, &[2, 0, 0, 0, 3, 16, 0, 0])).unwrap();
        let Frame::Headers(headers) = frame else {
            panic!("not HEADERS")
        };
        assert!(headers.header_block.is_empty());
        assert_eq!(headers.pad_len, Some(2));
    }

    #[test]
    fn push_promise_padded_with_empty_payload_is_connection_frame_size_error() {
        let wire = raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS | flags::PADDED,
            1,
            &[],
        );
        assert_connection_error(&wire, ErrorCode::FrameSizeError);
    }

    #[test]
    fn push_promise_without_room_for_promised_id_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::PUSH_PROMISE, flags::END_HEADERS, 1, &[0, 0, 2]),
            ErrorCode::FrameSizeError,
        );
        let wire = raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS | flags::PADDED,
            1,
            &[0, 0, 0, 2],
        );
        assert_connection_error(&wire, ErrorCode::FrameSizeError);
    }

    #[test]
    fn push_promise_pad_length_over_the_fragment_is_connection_protocol_error() {
        let wire = raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS | flags::PADDED,
            1,
            &[2, 0, 0, 0, 2, 0x82],
        );
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn headers_fields_parse_and_the_block_is_a_slice_of_the_input() {
        let flags = flags::END_HEADERS | flags::END_STREAM | flags::PADDED | flags::PRIORITY | 0x10;
        let wire = raw(
            kind::HEADERS,
            flags,
            3,
            &[1, 0x80, 0, 0, 1, 7, 0x82, 0x86, 0],
        );
        let mut src = wire.clone();
        let start_src = src.as_ptr() as usize;
        let frames = decode_all(&mut src, DecoderConfig::default()).unwrap();
        let expected = Headers {
            stream_id: StreamId::new(3),
            header_block: Bytes::from_static(&[0x82, 0x86]),
            end_stream: true,
            priority: Some(PrioritySpec {
                exclusive: true,
                dependency: StreamId::new(1),
                weight: 7,
            }),
            pad_len: Some(1),
        };
        assert_eq!(frames, vec![Frame::Headers(expected)]);
        let Frame::Headers(headers) = &frames[0] else {
            unreachable!()
        };
        let p = headers.header_block.as_ptr() as usize;
        assert!(
            p >= start_src && p + 2 <= start_src + wire.len(),
            "single-frame block was copied"
        );
    }

    #[test]
    fn push_promise_fields_parse() {
        let frame = decode_one(&raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS,
            1,
            &[0x80, 0, 0, 2, 0x82],
        ))
        .unwrap();
        assert_eq!(
            frame,
            Frame::PushPromise(PushPromise {
                stream_id: StreamId::new(1),
                promised_id: StreamId::new(2),
                header_block: Bytes::from_static(&[0x82]),
                pad_len: None,
            })
        );
    }

    #[test]
    fn check_priority_rejects_self_dependency_as_stream_protocol_error() {
        let mut headers = Headers::new(StreamId::new(5), Bytes::from_static(b"\x82"));
        assert_eq!(headers.check_priority(), Ok(()));
        headers.priority = Some(PrioritySpec {
            exclusive: false,
            dependency: StreamId::new(5),
            weight: 0,
        });
        let err = headers.check_priority().unwrap_err();
        assert_eq!(err.stream_id(), Some(StreamId::new(5)));
        assert_eq!(err.code(), ErrorCode::ProtocolError);
    }

    #[test]
    fn self_dependent_headers_are_still_returned_by_the_decoder_for_hpack() {
        let wire = raw(
            kind::HEADERS,
            flags::END_HEADERS | flags::PRIORITY,
            5,
            &[0, 0, 0, 5, 16, 0x82],
        );
        let Frame::Headers(headers) = decode_one(&wire).unwrap() else {
            panic!("not HEADERS")
        };
        assert_eq!(&headers.header_block[..], &[0x82]);
        assert!(headers.check_priority().is_err());
    }

    #[test]
    fn big_blocks_are_split_into_continuation_frames() {
        let block: Vec<u8> = (0..=255u8).cycle().take(100).collect();
        let headers = Headers {
            stream_id: StreamId::new(1),
            header_block: Bytes::from(block.clone()),
            end_stream: true,
            priority: Some(PrioritySpec {
                exclusive: false,
                dependency: StreamId::ZERO,
                weight: 15,
            }),
            pad_len: Some(3),
        };
        let mut wire = BytesMut::new();
        Frame::Headers(headers.clone())
            .encode(&mut wire, 40)
            .unwrap();
        // HEADERS: 1 + 5 + 31 + 3 = 40; then CONTINUATION 40 + 29.
        let mut expected = raw(
            kind::HEADERS,
            flags::END_STREAM | flags::PADDED | flags::PRIORITY,
            1,
            &{
                let mut p = vec![3, 0, 0, 0, 0, 15];
                p.extend_from_slice(&block[..31]);
                p.extend_from_slice(&[0, 0, 0]);
                p
            },
        );
        expected.extend_from_slice(&raw(kind::CONTINUATION, 0, 1, &block[31..71]));
        expected.extend_from_slice(&raw(
            kind::CONTINUATION,
            flags::END_HEADERS,
            1,
            &block[71..],
        ));
        assert_eq!(wire, expected);
        assert_eq!(
            decode_all(&mut wire, DecoderConfig::default()).unwrap(),
            vec![Frame::Headers(headers)]
        );
    }

    #[test]
    fn headers_that_cannot_fit_do_not_encode() {
        let mut dst = BytesMut::new();
        let headers = Headers {
            pad_len: Some(255),
            ..Headers::new(StreamId::new(1), Bytes::from_static(b"x"))
        };
        assert!(matches!(
            Frame::Headers(headers).encode(&mut dst, 100),
            Err(EncodeError::PayloadTooLarge {
                kind: kind::HEADERS,
                ..
            })
        ));
        let headers = Headers::new(StreamId::new(1), Bytes::from_static(b"x"));
        assert!(matches!(
            Frame::Headers(headers.clone()).encode(&mut dst, 0),
            Err(EncodeError::PayloadTooLarge {
                kind: kind::CONTINUATION,
                ..
            })
        ));
        let zero = Headers::new(StreamId::ZERO, Bytes::new());
        assert_eq!(
            Frame::Headers(zero).encode(&mut dst, 100),
            Err(EncodeError::StreamIdZero {
                kind: kind::HEADERS
            })
        );
        assert!(dst.is_empty());
        // An empty block fits even a zero max frame size.
        Frame::Headers(Headers::new(StreamId::new(1), Bytes::new()))
            .encode(&mut dst, 0)
            .unwrap();
        assert_eq!(
            &dst[..],
            &raw(kind::HEADERS, flags::END_HEADERS, 1, &[])[..]
        );
    }
}
