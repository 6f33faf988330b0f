//! The streaming frame decoder: bytes in, validated [`Frame`]s out.

use bytes::{Buf, BytesMut};

use super::{
    DEFAULT_MAX_FRAME_SIZE, Data, ErrorCode, Frame, FrameError, FrameHeader, GoAway, HEADER_LEN,
    Headers, Ping, Priority, PushPromise, RstStream, Settings, StreamId, Unknown, WindowUpdate,
    flags, kind,
};

/// The header list size this stack is built to accept by default: 64 KiB.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: usize = 64 * 1024;

/// Room on top of [`DEFAULT_MAX_HEADER_LIST_SIZE`] in the default field block limit.
///
/// A field block is normally smaller than the header list it decodes to (the list size
/// counts 32 octets per field, more than any literal's length prefixes), but dynamic
/// table size updates and an encoder that Huffman-codes octets Huffman makes longer can
/// push it past. The slack keeps such a peer working without unbounding memory.
pub const HEADER_BLOCK_SLACK: usize = 4 * 1024;

/// Default [`DecoderConfig::max_header_block_size`]: 68 KiB.
pub const DEFAULT_MAX_HEADER_BLOCK_SIZE: usize = DEFAULT_MAX_HEADER_LIST_SIZE + HEADER_BLOCK_SLACK;

/// Default [`DecoderConfig::max_continuation_frames`].
///
/// An encoder that fills its frames needs 4 CONTINUATION frames for the default 68 KiB
/// block at the minimum 16 KiB frame size. 64 lets a peer that splits at 1 KiB still send
/// a 64 KiB block, while a flood of (possibly empty) CONTINUATION frames, which the size
/// limit alone would never stop, ends after 64 frame headers.
pub const DEFAULT_MAX_CONTINUATION_FRAMES: usize = 64;

/// Limits the decoder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest payload accepted: the SETTINGS_MAX_FRAME_SIZE this endpoint advertised
    /// and the peer acknowledged. RFC 9113 §4.2 requires at least
    /// [`DEFAULT_MAX_FRAME_SIZE`]; smaller values are accepted only for tests.
    pub max_frame_size: u32,
    /// Largest field block (HEADERS or PUSH_PROMISE plus CONTINUATION fragments, padding
    /// and priority fields excluded) accepted; also the most the decoder ever buffers.
    ///
    /// A larger block is a connection error ENHANCE_YOUR_CALM: exceeding it breaks no
    /// RFC rule (so not PROTOCOL_ERROR), it is the peer costing more than we allow
    /// (§10.5), and it cannot be a stream error because a block that is not
    /// HPACK-decoded leaves the compression state out of step (§4.3, §10.5.1).
    pub max_header_block_size: usize,
    /// Most CONTINUATION frames accepted in one field block; more is a connection error
    /// ENHANCE_YOUR_CALM, for the same reasons as the size limit.
    pub max_continuation_frames: usize,
}

impl Default for DecoderConfig {
    /// The RFC's initial max frame size, [`DEFAULT_MAX_HEADER_BLOCK_SIZE`] and
    /// [`DEFAULT_MAX_CONTINUATION_FRAMES`].
    fn default() -> DecoderConfig {
        DecoderConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_block_size: DEFAULT_MAX_HEADER_BLOCK_SIZE,
            max_continuation_frames: DEFAULT_MAX_CONTINUATION_FRAMES,
        }
    }
}

/// A field block whose END_HEADERS has not arrived yet.
#[derive(Debug)]
struct PendingBlock {
    /// The HEADERS or PUSH_PROMISE frame, its `header_block` left empty until the end.
    first: Frame,
    stream_id: StreamId,
    /// Fragments so far, concatenated.
    block: BytesMut,
    continuations: usize,
}

/// Decodes frames from a byte stream, validating them against RFC 9113 §4 and §6.
///
/// Sans-IO: append whatever bytes arrived to a `BytesMut` and call
/// [`decode`](FrameDecoder::decode) until it returns `Ok(None)`. Bytes may be split
/// anywhere. Incomplete frames are left in the caller's buffer (the decoder keeps no
/// copy); the only data the decoder holds is a field block waiting for its
/// CONTINUATION frames, bounded by [`DecoderConfig::max_header_block_size`].
///
/// Errors follow RFC 9113 §5.4: after a stream error the bad frame is consumed and
/// decoding can continue; after a connection error the decoder is poisoned and returns
/// that error forever.
#[derive(Debug)]
pub struct FrameDecoder {
    config: DecoderConfig,
    pending: Option<PendingBlock>,
    poisoned: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(DecoderConfig::default())
    }
}

impl FrameDecoder {
    /// A decoder enforcing `config`.
    pub fn new(config: DecoderConfig) -> FrameDecoder {
        FrameDecoder {
            config,
            pending: None,
            poisoned: None,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Changes the largest accepted payload: call it once the peer has acknowledged the
    /// SETTINGS frame that announced the new SETTINGS_MAX_FRAME_SIZE (§6.5.3).
    pub fn set_max_frame_size(&mut self, n: u32) {
        self.config.max_frame_size = n;
    }

    /// Octets of field block the decoder holds while waiting for CONTINUATION frames;
    /// never more than [`DecoderConfig::max_header_block_size`].
    pub fn buffered_len(&self) -> usize {
        self.pending
            .as_ref()
            .map_or(0, |pending| pending.block.len())
    }

    /// True once a connection error has been returned.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Takes at most one complete frame off the front of `src`. `Ok(None)` means more
    /// bytes are needed (the start of a field block may have been taken into the
    /// decoder's own buffer; see [`buffered_len`](FrameDecoder::buffered_len)).
    ///
    /// A field block split over CONTINUATION frames counts as one frame: the decoder
    /// absorbs the pieces and returns one [`Headers`] or [`PushPromise`] when the block
    /// ends, so one call may consume several wire frames. DATA payloads, single-frame
    /// field blocks and GOAWAY debug data are slices of `src`'s buffer, not copies.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(err) = self.poisoned {
            return Err(err);
        }
        let result = self.decode_frame(src);
        if let Err(err) = result
            && err.is_connection_error()
        {
            self.poisoned = Some(err);
            self.pending = None;
        }
        result
    }

    fn decode_frame(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        // Each pass consumes one wire frame. It repeats only while a field block is open,
        // which `check_head` ends after `max_continuation_frames` CONTINUATION frames.
        loop {
            let Some(head) = src.first_chunk::<HEADER_LEN>() else {
                return Ok(None);
            };
            let head = FrameHeader::parse(head);
            self.check_head(&head)?;
            // `check_head` bounded `len` by `max_frame_size`, so the wait is bounded too.
            let len = head.len as usize;
            if src.len() - HEADER_LEN < len {
                return Ok(None);
            }
            src.advance(HEADER_LEN);
            let payload = src.split_to(len).freeze();
            let frame = match head.kind {
                kind::DATA => Frame::Data(Data::decode(&head, payload)?),
                kind::HEADERS => {
                    let headers = Headers::decode(&head, payload)?;
                    match self.begin_block(&head, Frame::Headers(headers))? {
                        Some(frame) => frame,
                        None => continue,
                    }
                }
                kind::PRIORITY => Frame::Priority(Priority::decode(&head, &payload)?),
                kind::RST_STREAM => Frame::RstStream(RstStream::decode(&head, &payload)?),
                kind::SETTINGS => Frame::Settings(Settings::decode(&head, &payload)?),
                kind::PUSH_PROMISE => {
                    let promise = PushPromise::decode(&head, payload)?;
                    match self.begin_block(&head, Frame::PushPromise(promise))? {
                        Some(frame) => frame,
                        None => continue,
                    }
                }
                kind::PING => Frame::Ping(Ping::decode(&head, &payload)?),
                kind::GOAWAY => Frame::GoAway(GoAway::decode(&head, payload)?),
                kind::WINDOW_UPDATE => Frame::WindowUpdate(WindowUpdate::decode(&head, &payload)?),
                kind::CONTINUATION => match self.continue_block(&head, &payload)? {
                    Some(frame) => frame,
                    None => continue,
                },
                // §4.1, §5.5: unknown types are handed up for the caller to discard.
                _ => Frame::Unknown(Unknown {
                    kind: head.kind,
                    flags: head.flags,
                    stream_id: head.stream_id,
                    payload,
                }),
            };
            return Ok(Some(frame));
        }
    }

    /// Checks that need only the 9-octet header, made before waiting for the payload so
    /// a frame that will be refused is never waited for.
    fn check_head(&self, head: &FrameHeader) -> Result<(), FrameError> {
        if head.len > self.config.max_frame_size {
            // §4.2: a frame over our SETTINGS_MAX_FRAME_SIZE. The RFC lets this be a
            // stream error for some frames, but always treating it as a connection error
            // lets the decoder stop at the header: a stream error would mean reading and
            // discarding up to 16 MiB the peer had no right to send (and a DATA frame's
            // length would still have to be charged to connection flow control).
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "frame larger than our SETTINGS_MAX_FRAME_SIZE",
            ));
        }
        match &self.pending {
            Some(pending) => {
                if head.kind != kind::CONTINUATION {
                    // §4.3, §5.5, §6.2, §6.6, §6.10: a field block must be a contiguous
                    // run of frames; any other frame, unknown types included, is a
                    // connection PROTOCOL_ERROR.
                    return Err(FrameError::connection(
                        ErrorCode::ProtocolError,
                        "frame other than CONTINUATION inside a field block",
                    ));
                }
                if head.stream_id != pending.stream_id {
                    // §6.10: CONTINUATION on a different stream is a connection
                    // PROTOCOL_ERROR.
                    return Err(FrameError::connection(
                        ErrorCode::ProtocolError,
                        "CONTINUATION frame for a different stream than its field block",
                    ));
                }
                if pending.continuations >= self.config.max_continuation_frames {
                    // §10.5: our own limit, not a protocol rule, so ENHANCE_YOUR_CALM
                    // rather than PROTOCOL_ERROR. It must be a connection error: the
                    // block cannot be HPACK-decoded without the rest, and dropping it
                    // would desynchronise the compression state (§4.3).
                    return Err(FrameError::connection(
                        ErrorCode::EnhanceYourCalm,
                        "too many CONTINUATION frames in one field block",
                    ));
                }
                if head.len as usize
                    > self
                        .config
                        .max_header_block_size
                        .saturating_sub(pending.block.len())
                {
                    // §10.5.1: a field block larger than we will hold. Connection-wide and
                    // ENHANCE_YOUR_CALM for the same reasons as the frame count.
                    return Err(FrameError::connection(
                        ErrorCode::EnhanceYourCalm,
                        "field block larger than the configured limit",
                    ));
                }
            }
            None if head.kind == kind::CONTINUATION => {
                return Err(if head.stream_id.is_zero() {
                    // §6.10: CONTINUATION frames MUST be associated with a stream.
                    FrameError::connection(
                        ErrorCode::ProtocolError,
                        "CONTINUATION frame on stream 0",
                    )
                } else {
                    // §6.10: CONTINUATION must follow HEADERS, PUSH_PROMISE or
                    // CONTINUATION without END_HEADERS.
                    FrameError::connection(
                        ErrorCode::ProtocolError,
                        "CONTINUATION frame without an open field block",
                    )
                });
            }
            None => {}
        }
        Ok(())
    }

    /// Returns a HEADERS or PUSH_PROMISE frame that ends its block, or holds on to one
    /// that does not.
    fn begin_block(
        &mut self,
        head: &FrameHeader,
        mut frame: Frame,
    ) -> Result<Option<Frame>, FrameError> {
        let fragment = match &mut frame {
            Frame::Headers(headers) => &mut headers.header_block,
            Frame::PushPromise(promise) => &mut promise.header_block,
            // Only called with the two field block frame types.
            _ => return Ok(Some(frame)),
        };
        if fragment.len() > self.config.max_header_block_size {
            // §10.5.1: see `check_head`; applied to single-frame blocks too so the limit
            // means the same thing however the peer splits its blocks.
            return Err(FrameError::connection(
                ErrorCode::EnhanceYourCalm,
                "field block larger than the configured limit",
            ));
        }
        if head.has(flags::END_HEADERS) {
            return Ok(Some(frame));
        }
        // Copy the first fragment out so the input buffer is not pinned while the block
        // is assembled; CONTINUATION fragments are appended after it.
        let block = BytesMut::from(&fragment[..]);
        *fragment = bytes::Bytes::new();
        self.pending = Some(PendingBlock {
            first: frame,
            stream_id: head.stream_id,
            block,
            continuations: 0,
        });
        Ok(None)
    }

    /// Appends a CONTINUATION fragment; returns the whole frame when the block ends.
    /// `check_head` has already matched the frame with the open block and its limits.
    fn continue_block(
        &mut self,
        head: &FrameHeader,
        payload: &[u8],
    ) -> Result<Option<Frame>, FrameError> {
        let Some(mut pending) = self.pending.take() else {
            // Unreachable after `check_head`; kept as an error rather than a panic.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "CONTINUATION frame without an open field block",
            ));
        };
        pending.continuations += 1;
        pending.block.extend_from_slice(payload);
        if !head.has(flags::END_HEADERS) {
            self.pending = Some(pending);
            return Ok(None);
        }
        let PendingBlock {
            mut first, block, ..
        } = pending;
        match &mut first {
            Frame::Headers(headers) => headers.header_block = block.freeze(),
            Frame::PushPromise(promise) => promise.header_block = block.freeze(),
            _ => {}
        }
        Ok(Some(first))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_all, raw};
    use super::super::*;
    use bytes::{Bytes, BytesMut};

    fn small_limits() -> DecoderConfig {
        DecoderConfig {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_block_size: 10,
            max_continuation_frames: 3,
        }
    }

    /// Feeds `wire` to a decoder with `config`; returns the frames then the first error.
    fn run(wire: &[u8], config: DecoderConfig) -> (Vec<Frame>, Option<FrameError>, FrameDecoder) {
        let mut decoder = FrameDecoder::new(config);
        let mut src = BytesMut::from(wire);
        let mut frames = Vec::new();
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return (frames, None, decoder),
                Err(err) => return (frames, Some(err), decoder),
            }
        }
    }

    #[test]
    fn frame_over_max_frame_size_is_connection_frame_size_error_as_soon_as_the_header_arrives() {
        for kind in 0..=0xffu8 {
            let head = FrameHeader {
                len: DEFAULT_MAX_FRAME_SIZE + 1,
                kind,
                flags: 0,
                stream_id: StreamId::new(1),
            };
            let mut src = BytesMut::new();
            head.encode(&mut src);
            let mut decoder = FrameDecoder::default();
            let err = decoder.decode(&mut src).unwrap_err();
            assert_eq!(
                err,
                FrameError::connection(ErrorCode::FrameSizeError, err.reason()),
                "type {kind}"
            );
        }
        // Exactly the limit is fine.
        let wire = raw(kind::DATA, 0, 1, &[7; DEFAULT_MAX_FRAME_SIZE as usize]);
        assert_eq!(run(&wire, DecoderConfig::default()).0.len(), 1);
    }

    #[test]
    fn header_claiming_16_mib_is_rejected_without_allocation() {
        let head = FrameHeader {
            len: MAX_MAX_FRAME_SIZE,
            kind: kind::DATA,
            flags: 0,
            stream_id: StreamId::new(1),
        };
        let mut src = BytesMut::with_capacity(64);
        head.encode(&mut src);
        let (ptr, capacity) = (src.as_ptr(), src.capacity());
        let mut decoder = FrameDecoder::default();
        assert_connection_error(&src, ErrorCode::FrameSizeError);
        let err = decoder.decode(&mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::FrameSizeError);
        assert_eq!(
            (src.as_ptr(), src.capacity(), src.len()),
            (ptr, capacity, HEADER_LEN),
            "input was touched"
        );
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn set_max_frame_size_raises_the_limit() {
        let wire = raw(kind::DATA, 0, 1, &[1; 20_000]);
        assert_eq!(
            run(&wire, DecoderConfig::default()).1.map(|e| e.code()),
            Some(ErrorCode::FrameSizeError)
        );
        let mut decoder = FrameDecoder::default();
        decoder.set_max_frame_size(20_000);
        assert_eq!(decoder.config().max_frame_size, 20_000);
        let frame = decoder
            .decode(&mut BytesMut::from(&wire[..]))
            .unwrap()
            .unwrap();
        assert_eq!(frame.stream_id(), StreamId::new(1));
    }

    #[test]
    fn incomplete_frames_wait_and_consume_nothing() {
        let wire = raw(kind::PING, 0, 0, b"abcdefgh");
        let mut decoder = FrameDecoder::default();
        for n in 0..wire.len() {
            let mut src = BytesMut::from(&wire[..n]);
            assert_eq!(decoder.decode(&mut src), Ok(None));
            assert_eq!(src.len(), n);
        }
    }

    #[test]
    fn unknown_flags_are_ignored_on_every_defined_type() {
        let ignored = !(flags::END_STREAM | flags::PADDED);
        let frame = run(&raw(kind::DATA, ignored, 1, b"x"), DecoderConfig::default()).0;
        assert_eq!(
            frame,
            vec![Frame::Data(Data::new(
                StreamId::new(1),
                Bytes::from_static(b"x")
            ))]
        );
        let frame = run(
            &raw(kind::RST_STREAM, 0xff, 1, &[0, 0, 0, 8]),
            DecoderConfig::default(),
        )
        .0;
        assert_eq!(
            frame,
            vec![Frame::RstStream(RstStream::new(
                StreamId::new(1),
                ErrorCode::Cancel
            ))]
        );
        let frame = run(&raw(kind::SETTINGS, 0xfe, 0, &[]), DecoderConfig::default()).0;
        assert_eq!(frame, vec![Frame::Settings(Settings::default())]);
    }

    #[test]
    fn continuation_without_an_open_block_is_connection_protocol_error() {
        let err = assert_connection_error(
            &raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"\x82"),
            ErrorCode::ProtocolError,
        );
        assert_eq!(
            err.reason(),
            "CONTINUATION frame without an open field block"
        );
    }

    #[test]
    fn continuation_after_a_complete_block_is_connection_protocol_error() {
        let mut wire = raw(kind::HEADERS, flags::END_HEADERS, 1, b"\x82");
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"\x86"));
        let (frames, err, _) = run(&wire, DecoderConfig::default());
        assert_eq!(frames.len(), 1);
        let err = err.unwrap();
        assert!(err.is_connection_error());
        assert_eq!(err.code(), ErrorCode::ProtocolError);
    }

    #[test]
    fn continuation_on_stream_0_is_connection_protocol_error() {
        let err = assert_connection_error(
            &raw(kind::CONTINUATION, flags::END_HEADERS, 0, b"\x82"),
            ErrorCode::ProtocolError,
        );
        assert_eq!(err.reason(), "CONTINUATION frame on stream 0");
    }

    #[test]
    fn continuation_for_another_stream_inside_a_block_is_connection_protocol_error() {
        let mut wire = raw(kind::HEADERS, 0, 1, b"\x82");
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 3, b"\x86"));
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn any_other_frame_inside_a_block_is_connection_protocol_error() {
        let intruders = [
            raw(kind::DATA, 0, 1, b"x"),
            raw(kind::HEADERS, flags::END_HEADERS, 1, b"\x82"),
            raw(kind::PRIORITY, 0, 1, &[0, 0, 0, 0, 16]),
            raw(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8]),
            raw(kind::SETTINGS, 0, 0, &[]),
            raw(kind::PUSH_PROMISE, flags::END_HEADERS, 1, &[0, 0, 0, 2]),
            raw(kind::PING, 0, 0, &[0; 8]),
            raw(kind::GOAWAY, 0, 0, &[0; 8]),
            raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 1]),
            // §5.5: extension frames in the middle of a field block are not permitted.
            raw(0xfa, 0, 1, b"ext"),
        ];
        for opener in [
            raw(kind::HEADERS, 0, 1, b"\x82"),
            raw(kind::PUSH_PROMISE, 0, 1, &[0, 0, 0, 2, 0x82]),
        ] {
            for intruder in &intruders {
                let mut wire = opener.clone();
                wire.extend_from_slice(intruder);
                let err = assert_connection_error(&wire, ErrorCode::ProtocolError);
                assert_eq!(
                    err.reason(),
                    "frame other than CONTINUATION inside a field block"
                );
            }
        }
    }

    #[test]
    fn headers_and_continuations_reassemble_into_one_frame() {
        let mut wire = raw(
            kind::HEADERS,
            flags::END_STREAM | flags::PADDED,
            1,
            &[2, b'a', b'b', 0, 0],
        );
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_STREAM, 1, b"cd"));
        wire.extend_from_slice(&raw(kind::CONTINUATION, 0, 1, b""));
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"e"));
        wire.extend_from_slice(&raw(kind::PUSH_PROMISE, 0, 1, &[0, 0, 0, 2, b'f']));
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"g"));
        let frames = decode_all(&mut wire, DecoderConfig::default()).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Headers(Headers {
                    stream_id: StreamId::new(1),
                    header_block: Bytes::from_static(b"abcde"),
                    end_stream: true,
                    priority: None,
                    pad_len: Some(2),
                }),
                Frame::PushPromise(PushPromise {
                    stream_id: StreamId::new(1),
                    promised_id: StreamId::new(2),
                    header_block: Bytes::from_static(b"fg"),
                    pad_len: None,
                }),
            ]
        );
    }

    #[test]
    fn buffered_len_counts_the_open_block_and_returns_to_zero() {
        let mut decoder = FrameDecoder::default();
        let mut src = raw(kind::HEADERS, 0, 1, b"abc");
        assert_eq!(decoder.decode(&mut src), Ok(None));
        assert_eq!(decoder.buffered_len(), 3);
        src.extend_from_slice(&raw(kind::CONTINUATION, 0, 1, b"de"));
        assert_eq!(decoder.decode(&mut src), Ok(None));
        assert_eq!(decoder.buffered_len(), 5);
        src.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"f"));
        let frame = decoder.decode(&mut src).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::Headers(Headers::new(
                StreamId::new(1),
                Bytes::from_static(b"abcdef")
            ))
        );
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn block_over_max_header_block_size_in_continuations_is_connection_enhance_your_calm() {
        let mut wire = raw(kind::HEADERS, 0, 1, b"123456");
        wire.extend_from_slice(&raw(kind::CONTINUATION, 0, 1, b"7890"));
        // The 11th octet: refused on its header, before the payload arrives.
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"x")[..HEADER_LEN]);
        let (frames, err, decoder) = run(&wire, small_limits());
        assert!(frames.is_empty());
        let err = err.unwrap();
        assert_eq!(
            err,
            FrameError::connection(ErrorCode::EnhanceYourCalm, err.reason())
        );
        assert_eq!(
            decoder.buffered_len(),
            0,
            "a poisoned decoder drops the block"
        );
        // Exactly at the limit is fine.
        let mut ok = raw(kind::HEADERS, 0, 1, b"123456");
        ok.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b"7890"));
        assert_eq!(decode_all(&mut ok, small_limits()).unwrap().len(), 1);
    }

    #[test]
    fn single_frame_block_over_max_header_block_size_is_connection_enhance_your_calm() {
        let wire = raw(kind::HEADERS, flags::END_HEADERS, 1, b"12345678901");
        let (_, err, _) = run(&wire, small_limits());
        let err = err.unwrap();
        assert_eq!(
            err,
            FrameError::connection(ErrorCode::EnhanceYourCalm, err.reason())
        );
        // Padding and priority fields do not count.
        let wire = raw(
            kind::PUSH_PROMISE,
            flags::END_HEADERS | flags::PADDED,
            1,
            &[5, 0, 0, 0, 2, b'a', 0, 0, 0, 0, 0],
        );
        assert_eq!(run(&wire, small_limits()).0.len(), 1);
    }

    #[test]
    fn more_than_max_continuation_frames_is_connection_enhance_your_calm() {
        // A flood of empty CONTINUATION frames never grows the block; the count stops it.
        let mut wire = raw(kind::HEADERS, 0, 1, b"");
        for _ in 0..3 {
            wire.extend_from_slice(&raw(kind::CONTINUATION, 0, 1, b""));
        }
        let (_, err, _) = run(&wire, small_limits());
        assert_eq!(err, None, "3 CONTINUATION frames are allowed");
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, b""));
        let (_, err, _) = run(&wire, small_limits());
        let err = err.unwrap();
        assert_eq!(
            err,
            FrameError::connection(ErrorCode::EnhanceYourCalm, err.reason())
        );
    }

    #[test]
    fn stream_error_consumes_the_frame_and_decoding_continues() {
        let mut wire = raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0]);
        wire.extend_from_slice(&raw(kind::PRIORITY, 0, 3, &[0, 0]));
        wire.extend_from_slice(&raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 9]));
        let mut decoder = FrameDecoder::default();
        let mut src = wire;
        assert_eq!(
            decoder.decode(&mut src).unwrap_err().stream_id(),
            Some(StreamId::new(1))
        );
        assert_eq!(
            decoder.decode(&mut src).unwrap_err().stream_id(),
            Some(StreamId::new(3))
        );
        assert_eq!(
            decoder.decode(&mut src),
            Ok(Some(Frame::WindowUpdate(WindowUpdate::new(
                StreamId::new(1),
                9
            ))))
        );
        assert_eq!(decoder.decode(&mut src), Ok(None));
    }

    #[test]
    fn connection_error_poisons_the_decoder_even_for_valid_input() {
        let mut decoder = FrameDecoder::default();
        let err = decoder
            .decode(&mut raw(kind::PING, 0, 1, &[0; 8]))
            .unwrap_err();
        for _ in 0..3 {
            assert_eq!(
                decoder.decode(&mut raw(kind::PING, 0, 0, &[0; 8])),
                Err(err)
            );
            assert_eq!(decoder.decode(&mut BytesMut::new()), Err(err));
        }
    }

    #[test]
    fn one_octet_at_a_time_gives_the_same_frames() {
        let mut wire = raw(kind::SETTINGS, 0, 0, &[0, 4, 0, 1, 0, 0]);
        wire.extend_from_slice(&raw(
            kind::HEADERS,
            flags::PRIORITY,
            1,
            &[0, 0, 0, 0, 16, 0x82],
        ));
        wire.extend_from_slice(&raw(kind::CONTINUATION, flags::END_HEADERS, 1, &[0x86]));
        wire.extend_from_slice(&raw(
            kind::DATA,
            flags::PADDED | flags::END_STREAM,
            1,
            &[1, b'x', 0],
        ));
        wire.extend_from_slice(&raw(0x20, 0, 0, b""));
        let whole = decode_all(&mut wire.clone(), DecoderConfig::default()).unwrap();
        assert_eq!(whole.len(), 4);
        let mut decoder = FrameDecoder::default();
        let mut src = BytesMut::new();
        let mut trickled = Vec::new();
        for &octet in &wire[..] {
            src.extend_from_slice(&[octet]);
            while let Some(frame) = decoder.decode(&mut src).unwrap() {
                trickled.push(frame);
            }
        }
        assert_eq!(trickled, whole);
    }
}
