//! Length-Prefixed-Message framing (grpc/grpc `doc/PROTOCOL-HTTP2.md`).
//!
//! Every gRPC message on a stream's DATA frames is a 5-byte prefix followed by the
//! message bytes:
//!
//! ```text
//! Compressed-Flag (1 byte: 0 or 1) | Message-Length (4 bytes, big-endian) | Message
//! ```
//!
//! [`MessageDecoder`] reassembles messages from DATA payloads chunked any way the peer
//! (or the network) likes. A message that lies wholly inside one pushed [`Bytes`] comes
//! out as a slice of it, with no copy and no allocation; only a message that spans
//! chunks is assembled, into one buffer of exactly its length. The receive limit is
//! checked on the prefix, before any of the body is buffered.
//!
//! [`encode_prefix`], [`encode_message`] and [`encode_message_into`] write the prefix
//! for sending, checking the send limit.
//!
//! The compressed flag is only carried here; [`super::compression`] decides what it
//! means together with the stream's `grpc-encoding`.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the prefix in front of every message: the flag byte and a 4-byte length.
pub const PREFIX_LEN: usize = 5;

/// The default limit on a received message's length: 4 MiB, as in grpc-go, grpc-java and
/// gRPC core.
pub const DEFAULT_MAX_RECV_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The flag byte of an uncompressed message.
const FLAG_UNCOMPRESSED: u8 = 0;
/// The flag byte of a compressed message.
const FLAG_COMPRESSED: u8 = 1;

/// One message taken off the wire, still as sent: compressed or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The Compressed-Flag: the bytes are encoded with the stream's `grpc-encoding`.
    pub compressed: bool,
    /// The message bytes (without the prefix).
    pub data: Bytes,
}

/// Why [`MessageDecoder`] rejected the stream.
///
/// Both are fatal for the call: the decoder is poisoned, drops whatever it held and
/// keeps returning the same error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// A prefix announced a message longer than the receive limit. The body was not
    /// buffered. gRPC status RESOURCE_EXHAUSTED.
    TooLarge {
        /// The length the prefix announced.
        len: usize,
        /// The receive limit.
        max: usize,
    },
    /// The Compressed-Flag byte was neither 0 nor 1. gRPC status INTERNAL.
    InvalidFlag(u8),
}

impl MessageError {
    /// The name of the gRPC status code this error ends the call with
    /// (`"RESOURCE_EXHAUSTED"` or `"INTERNAL"`), spelled as in `grpc::code`; the call
    /// layer maps the name to its code and uses [`Display`](fmt::Display) as the
    /// status message.
    pub const fn grpc_code_name(&self) -> &'static str {
        match self {
            MessageError::TooLarge { .. } => "RESOURCE_EXHAUSTED",
            MessageError::InvalidFlag(_) => "INTERNAL",
        }
    }
}

impl fmt::Display for MessageError {
    /// grpc-go's wording, so statuses read the same whichever side produced them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge { len, max } => {
                write!(
                    f,
                    "grpc: received message larger than max ({len} vs. {max})"
                )
            }
            MessageError::InvalidFlag(flag) => {
                write!(f, "grpc: received unexpected payload format {flag}")
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// The message currently being received: its prefix has been read.
#[derive(Debug)]
struct Current {
    compressed: bool,
    len: usize,
    /// How many body bytes are gathered in the decoder's `assembly` (a body that
    /// spans chunks); 0 until its first piece is copied in.
    have: usize,
}

/// First allocation for a message body that spans chunks: large enough that typical
/// messages are assembled in one allocation, small enough that a peer's length claim
/// alone commits little memory.
const ASSEMBLY_START: usize = 64 * 1024;

/// Reassembles gRPC messages from a stream's DATA payloads (sans-IO).
///
/// Feed every DATA payload to [`push`](MessageDecoder::push) in order, then call
/// [`next`](MessageDecoder::next) until it returns `Ok(None)`. Chunk boundaries may fall
/// anywhere, including inside the 5-byte prefix.
///
/// Memory: once `next` has returned `Ok(None)`, the decoder holds fewer than
/// `max + 5` bytes ([`buffered_len`](MessageDecoder::buffered_len)): at most one partial
/// prefix, or one prefix and part of a body whose announced length passed the limit.
/// Pushed chunks are held by reference until `next` consumes them, so the caller bounds
/// the rest by draining after each push (HTTP/2 flow control bounds what arrives).
/// Besides, the two buffers spanning bodies were last copied into are kept for reuse:
/// at most twice the largest message assembled so far, never more than `2 × max`.
///
/// When the stream ends, [`is_mid_message`](MessageDecoder::is_mid_message) tells
/// whether it ended inside a message (gRPC status INTERNAL).
#[derive(Debug)]
pub struct MessageDecoder {
    max: usize,
    /// Pushed chunks not yet consumed, in order; none is empty.
    queue: Chunks,
    /// Bytes of a prefix split across chunks, gathered so far.
    prefix: [u8; PREFIX_LEN],
    /// How many of `prefix` are filled (`0..PREFIX_LEN`).
    prefix_have: usize,
    /// The message whose prefix has been read, if any.
    current: Option<Current>,
    /// Bytes pushed and not yet handed out in a message (prefixes included).
    held: usize,
    /// Set on the first error; the decoder is then dead.
    error: Option<MessageError>,
    /// Where a body spanning chunks is copied as its pieces arrive (copied, not held
    /// by reference: a piece would pin the whole read buffer it came in, and a peer
    /// spreading a message thinly over many reads could make us hold far more than
    /// the message). It grows with what has arrived, never past the message length
    /// (see [`ASSEMBLY_START`]). Empty between spanning bodies.
    assembly: BytesMut,
    /// Buffers earlier bodies were assembled in, at most [`KEPT`]. A message hands
    /// out its bytes as a slice of its buffer; once the application drops it, the
    /// allocation is reclaimed for a later body. So a stream of large messages costs
    /// no allocation, no regrowth copies and no fresh pages per message (a new buffer
    /// per message, grown by doubling, was half of a server-streaming client's CPU in
    /// copies and page faults). Several are kept because the decoder runs ahead of
    /// the application by up to the flow-control window: the messages it queued
    /// still hold theirs. (An array, not a `Vec`: a call costs no allocation for it.)
    kept: [Option<BytesMut>; KEPT],
}

/// How many assembly buffers a decoder, and a connection's [`AssemblyPool`], keep.
/// Each is no larger than the largest message assembled on its stream (never larger
/// than the receive limit).
const KEPT: usize = 4;

/// Assembly buffers a connection keeps between calls, so that each new call's
/// [`MessageDecoder`] starts with buffers already faulted in rather than fresh ones.
///
/// A decoder's kept buffers would otherwise be freed with its call; a sequence of
/// calls carrying large messages then paid for new pages, regrowth copies and the
/// allocator handing the memory back to the kernel on every call. The pool keeps at
/// most [`KEEP`](Self::KEEP) buffers, preferring those the application no longer
/// holds and then the largest; each is no larger than the largest message a decoder
/// of this connection assembled (never larger than the receive limit).
#[derive(Debug, Default)]
pub struct AssemblyPool {
    kept: Vec<BytesMut>,
}

impl AssemblyPool {
    /// How many buffers a pool keeps at most.
    pub const KEEP: usize = KEPT;

    /// An empty pool.
    pub fn new() -> AssemblyPool {
        AssemblyPool::default()
    }

    /// How many buffers are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// True when no buffer is kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The capacity of the kept buffers the application no longer holds, in bytes.
    pub fn idle_capacity(&mut self) -> usize {
        self.kept
            .iter_mut()
            .map(|b| if b.try_reclaim(1) { b.capacity() } else { 0 })
            .sum()
    }

    fn put(&mut self, mut buf: BytesMut) {
        // A message being assembled when its call ended is abandoned. A buffer still
        // shared with a message reports no capacity, so it goes first when full.
        buf.clear();
        let _ = buf.try_reclaim(1);
        self.kept.push(buf);
        if self.kept.len() > Self::KEEP
            && let Some((smallest, _)) = self
                .kept
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.capacity())
        {
            self.kept.swap_remove(smallest);
        }
    }
}

impl Default for MessageDecoder {
    fn default() -> MessageDecoder {
        MessageDecoder::new()
    }
}

impl MessageDecoder {
    /// A decoder with the default receive limit, [`DEFAULT_MAX_RECV_MESSAGE_SIZE`].
    pub fn new() -> MessageDecoder {
        MessageDecoder::with_max_message_size(DEFAULT_MAX_RECV_MESSAGE_SIZE)
    }

    /// A decoder that rejects messages longer than `max` bytes (the length in the
    /// prefix, i.e. before decompression).
    pub fn with_max_message_size(max: usize) -> MessageDecoder {
        MessageDecoder {
            max,
            queue: Chunks::default(),
            prefix: [0; PREFIX_LEN],
            prefix_have: 0,
            current: None,
            held: 0,
            error: None,
            assembly: BytesMut::new(),
            kept: Default::default(),
        }
    }

    /// Takes kept buffers from `pool` for this decoder's spanning bodies (call it
    /// when the call starts); see [`AssemblyPool`].
    pub fn draw_buffers(&mut self, pool: &mut AssemblyPool) {
        for slot in self.kept.iter_mut().filter(|slot| slot.is_none()) {
            *slot = pool.kept.pop();
        }
    }

    /// Gives this decoder's kept buffers to `pool` for a later call (call it when the
    /// call is gone); a message still being assembled is abandoned.
    pub fn return_buffers(&mut self, pool: &mut AssemblyPool) {
        if self.assembly.capacity() > 0 {
            pool.put(std::mem::take(&mut self.assembly));
        }
        for buf in self.kept.iter_mut().filter_map(Option::take) {
            pool.put(buf);
        }
    }

    /// The receive limit.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// Changes the receive limit. It applies to prefixes read from now on; a message
    /// whose prefix was already accepted is still delivered.
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max = max;
    }

    /// Takes the next DATA payload of the stream. Nothing is copied here; call
    /// [`next`](MessageDecoder::next) to get the messages out. Ignored once the
    /// decoder has failed.
    pub fn push(&mut self, data: Bytes) {
        if data.is_empty() || self.error.is_some() {
            return;
        }
        self.held += data.len();
        self.queue.push_back(data);
    }

    /// The next complete message, `Ok(None)` if more data is needed, or the error that
    /// ended the stream (returned again on every later call).
    #[expect(
        clippy::should_implement_trait,
        reason = "fallible and resumable (None is not the end): not an Iterator"
    )]
    pub fn next(&mut self) -> Result<Option<Message>, MessageError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        loop {
            let Some(current) = &mut self.current else {
                // Between messages: read a prefix.
                let Some(front) = self.queue.front_mut() else {
                    return Ok(None);
                };
                if self.prefix_have == 0 && front.len() >= PREFIX_LEN {
                    // Fast path: the prefix, and maybe the whole message, in one chunk.
                    let flag = front[0];
                    let len = u32::from_be_bytes([front[1], front[2], front[3], front[4]]);
                    let (compressed, len) = self.check_prefix(flag, len)?;
                    // `check_prefix` borrowed `self`; take the chunk again.
                    let Some(front) = self.queue.front_mut() else {
                        return Ok(None);
                    };
                    if front.len() - PREFIX_LEN >= len {
                        front.advance(PREFIX_LEN);
                        let data = front.split_to(len);
                        if front.is_empty() {
                            self.queue.pop_front();
                        }
                        self.held -= PREFIX_LEN + len;
                        return Ok(Some(Message { compressed, data }));
                    }
                    front.advance(PREFIX_LEN);
                    if front.is_empty() {
                        self.queue.pop_front();
                    }
                    self.current = Some(Current {
                        compressed,
                        len,
                        have: 0,
                    });
                    continue;
                }
                // A prefix split across chunks: gather it byte by byte.
                let take = (PREFIX_LEN - self.prefix_have).min(front.len());
                self.prefix[self.prefix_have..self.prefix_have + take]
                    .copy_from_slice(&front[..take]);
                front.advance(take);
                if front.is_empty() {
                    self.queue.pop_front();
                }
                self.prefix_have += take;
                if self.prefix_have == PREFIX_LEN {
                    self.prefix_have = 0;
                    let [flag, a, b, c, d] = self.prefix;
                    let (compressed, len) =
                        self.check_prefix(flag, u32::from_be_bytes([a, b, c, d]))?;
                    self.current = Some(Current {
                        compressed,
                        len,
                        have: 0,
                    });
                }
                continue;
            };

            // Inside a message: gather its body.
            let need = current.len - current.have;
            if need == 0 {
                // Only an empty message gets here without data; a spanning body is
                // returned as soon as its last piece is copied.
                let compressed = current.compressed;
                self.current = None;
                self.held -= PREFIX_LEN;
                return Ok(Some(Message {
                    compressed,
                    data: Bytes::new(),
                }));
            }
            let Some(front) = self.queue.front_mut() else {
                return Ok(None);
            };
            if current.have == 0 && front.len() >= need {
                // The whole body is in this chunk (the prefix was split, or ended the
                // previous chunk): still a slice, no copy.
                let data = front.split_to(need);
                if front.is_empty() {
                    self.queue.pop_front();
                }
                let compressed = current.compressed;
                self.current = None;
                self.held -= PREFIX_LEN + need;
                return Ok(Some(Message { compressed, data }));
            }
            // The body spans chunks: copy it into one buffer that ends at exactly its
            // length. It grows with what has arrived (doubling, from ASSEMBLY_START) rather
            // than reserving the claimed length at once: six bytes of prefix must not make
            // us commit megabytes per stream.
            let take = need.min(front.len());
            let want = current
                .have
                .max(ASSEMBLY_START)
                .max(take)
                .min(current.len - current.have);
            if current.have == 0 {
                // A kept buffer whose last message the application has dropped.
                for slot in &mut self.kept {
                    if slot.as_mut().is_some_and(|b| b.try_reclaim(want))
                        && let Some(free) = slot.take()
                    {
                        self.assembly = free;
                        break;
                    }
                }
            }
            if self.assembly.capacity() - self.assembly.len() < take {
                // Exactly `want` more (`BytesMut::reserve` would round up to double).
                let mut grown = BytesMut::with_capacity(self.assembly.len() + want);
                grown.extend_from_slice(&self.assembly);
                self.assembly = grown;
            }
            self.assembly.extend_from_slice(&front[..take]);
            current.have += take;
            front.advance(take);
            if front.is_empty() {
                self.queue.pop_front();
            }
            if take == need {
                let Some(done) = self.current.take() else {
                    return Ok(None);
                };
                self.held -= PREFIX_LEN + done.len;
                let data = self.assembly.split_to(done.len).freeze();
                // The buffer stays shared with the message until the application drops
                // it; keep it for a later body unless enough are kept already.
                let buf = std::mem::take(&mut self.assembly);
                if let Some(slot) = self.kept.iter_mut().find(|slot| slot.is_none()) {
                    *slot = Some(buf);
                }
                return Ok(Some(Message {
                    compressed: done.compressed,
                    data,
                }));
            }
        }
    }

    /// Checks a prefix; on failure poisons the decoder and drops what it held.
    fn check_prefix(&mut self, flag: u8, len: u32) -> Result<(bool, usize), MessageError> {
        // Length first, as grpc-go does.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let error = if len > self.max {
            MessageError::TooLarge { len, max: self.max }
        } else {
            match flag {
                FLAG_UNCOMPRESSED => return Ok((false, len)),
                FLAG_COMPRESSED => return Ok((true, len)),
                other => MessageError::InvalidFlag(other),
            }
        };
        self.error = Some(error);
        self.queue = Chunks::default();
        self.current = None;
        self.prefix_have = 0;
        self.held = 0;
        Err(error)
    }

    /// Bytes pushed and not yet handed out in a message, prefixes included. Once
    /// [`next`](MessageDecoder::next) has returned `Ok(None)` this is below
    /// `max + 5`. Zero after an error.
    pub fn buffered_len(&self) -> usize {
        self.held
    }

    /// True if bytes of a message not yet complete are held (after draining with
    /// [`next`](MessageDecoder::next)): a stream ending now ended mid-message, which
    /// the call layer reports as INTERNAL. False after an error.
    pub fn is_mid_message(&self) -> bool {
        self.held > 0
    }
}

/// A FIFO of chunks that keeps the first one inline: most streams hold one chunk at a
/// time (a unary message in one DATA frame), and then no queue is ever allocated.
#[derive(Debug, Default)]
struct Chunks {
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Chunks {
    fn front_mut(&mut self) -> Option<&mut Bytes> {
        self.first.as_mut()
    }

    fn pop_front(&mut self) {
        self.first = self.rest.pop_front();
    }

    fn push_back(&mut self, chunk: Bytes) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            self.rest.push_back(chunk);
        }
    }
}

/// Why a message could not be framed for sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The message (as it goes on the wire, i.e. after compression) is longer than the
    /// send limit, or than the 4-byte length can say. gRPC status RESOURCE_EXHAUSTED.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit it was checked against (the send limit, at most `u32::MAX`).
        max: usize,
    },
}

impl EncodeError {
    /// The name of the gRPC status code for this error (`"RESOURCE_EXHAUSTED"`), as for
    /// [`MessageError::grpc_code_name`].
    pub const fn grpc_code_name(&self) -> &'static str {
        match self {
            EncodeError::TooLarge { .. } => "RESOURCE_EXHAUSTED",
        }
    }
}

impl fmt::Display for EncodeError {
    /// grpc-go's wording.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { len, max } => {
                write!(
                    f,
                    "trying to send message larger than max ({len} vs. {max})"
                )
            }
        }
    }
}

impl std::error::Error for EncodeError {}

/// The 5-byte prefix for a message of `len` bytes, after checking `len` against
/// `max_send` (and the 4-byte length field).
pub fn encode_prefix(
    compressed: bool,
    len: usize,
    max_send: usize,
) -> Result<[u8; PREFIX_LEN], EncodeError> {
    let max = max_send.min(u32::MAX as usize);
    let Some(wire_len) = u32::try_from(len).ok().filter(|_| len <= max) else {
        return Err(EncodeError::TooLarge { len, max });
    };
    let [a, b, c, d] = wire_len.to_be_bytes();
    let flag = if compressed {
        FLAG_COMPRESSED
    } else {
        FLAG_UNCOMPRESSED
    };
    Ok([flag, a, b, c, d])
}

/// Frames `data` without copying it: the prefix and the payload, to be sent as two
/// chunks in this order. `compressed` says whether `data` is already compressed with the
/// stream's `grpc-encoding`.
pub fn encode_message(
    data: Bytes,
    compressed: bool,
    max_send: usize,
) -> Result<([u8; PREFIX_LEN], Bytes), EncodeError> {
    let prefix = encode_prefix(compressed, data.len(), max_send)?;
    Ok((prefix, data))
}

/// Appends the prefix and `data` to `out`. On error `out` is left unchanged.
pub fn encode_message_into(
    data: &[u8],
    compressed: bool,
    max_send: usize,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let prefix = encode_prefix(compressed, data.len(), max_send)?;
    out.reserve(PREFIX_LEN + data.len());
    out.put_slice(&prefix);
    out.put_slice(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// True if `inner` points into `outer`'s memory (a slice of it, not a copy).
    fn is_slice_of(inner: &Bytes, outer: &Bytes) -> bool {
        let (i, o) = (inner.as_ptr_range(), outer.as_ptr_range());
        o.start <= i.start && i.end <= o.end
    }

    fn frame(compressed: bool, data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_message_into(data, compressed, usize::MAX, &mut out).unwrap();
        out.to_vec()
    }

    fn drain(decoder: &mut MessageDecoder) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(message) = decoder.next().unwrap() {
            out.push(message);
        }
        out
    }

    #[test]
    fn a_message_inside_one_chunk_is_a_slice_of_it() {
        let mut wire = frame(false, b"hello");
        wire.extend(frame(true, b"world!"));
        let chunk = Bytes::from(wire);
        let mut decoder = MessageDecoder::new();
        decoder.push(chunk.clone());
        let messages = drain(&mut decoder);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0],
            Message {
                compressed: false,
                data: Bytes::from_static(b"hello")
            }
        );
        assert_eq!(
            messages[1],
            Message {
                compressed: true,
                data: Bytes::from_static(b"world!")
            }
        );
        for m in &messages {
            assert!(is_slice_of(&m.data, &chunk));
        }
        // The exact byte ranges: right after each prefix.
        assert_eq!(messages[0].data.as_ptr(), chunk[5..].as_ptr());
        assert_eq!(messages[1].data.as_ptr(), chunk[15..].as_ptr());
        assert_eq!(decoder.buffered_len(), 0);
        assert!(!decoder.is_mid_message());
    }

    #[test]
    fn a_body_inside_one_chunk_after_a_split_prefix_is_a_slice() {
        let wire = frame(false, b"payload");
        let head = Bytes::copy_from_slice(&wire[..3]);
        let rest = Bytes::copy_from_slice(&wire[3..]);
        let mut decoder = MessageDecoder::new();
        decoder.push(head);
        assert_eq!(decoder.next(), Ok(None));
        assert_eq!(decoder.buffered_len(), 3);
        decoder.push(rest.clone());
        let m = decoder.next().unwrap().unwrap();
        assert_eq!(&m.data[..], b"payload");
        assert!(is_slice_of(&m.data, &rest));
    }

    #[test]
    fn a_body_starting_in_the_next_chunk_is_a_slice() {
        let wire = frame(false, b"payload");
        let mut decoder = MessageDecoder::new();
        decoder.push(Bytes::copy_from_slice(&wire[..5]));
        assert_eq!(decoder.next(), Ok(None));
        assert!(decoder.is_mid_message());
        let body = Bytes::copy_from_slice(&wire[5..]);
        decoder.push(body.clone());
        let m = decoder.next().unwrap().unwrap();
        assert!(is_slice_of(&m.data, &body));
    }

    #[test]
    fn a_spanning_message_is_assembled_into_one_exact_buffer() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let wire = frame(true, &payload);
        let a = Bytes::copy_from_slice(&wire[..400]);
        let b = Bytes::copy_from_slice(&wire[400..700]);
        let c = Bytes::copy_from_slice(&wire[700..]);
        let mut decoder = MessageDecoder::new();
        for chunk in [&a, &b] {
            decoder.push(chunk.clone());
            assert_eq!(decoder.next(), Ok(None));
        }
        assert_eq!(decoder.buffered_len(), 700);
        decoder.push(c.clone());
        let m = decoder.next().unwrap().unwrap();
        assert!(m.compressed);
        assert_eq!(&m.data[..], &payload[..]);
        assert!(![&a, &b, &c].iter().any(|chunk| is_slice_of(&m.data, chunk)));
        assert_eq!(decoder.next(), Ok(None));
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn the_assembly_buffer_has_exactly_the_message_length() {
        let wire = frame(false, &[7; 300]);
        let mut decoder = MessageDecoder::new();
        decoder.push(Bytes::copy_from_slice(&wire[..100]));
        assert_eq!(decoder.next(), Ok(None));
        let current = decoder.current.as_ref().unwrap();
        assert_eq!(current.have, 95);
        // Room for this message only, not the 64 KiB a larger one would start with.
        assert_eq!(decoder.assembly.capacity(), 300);
        decoder.push(Bytes::copy_from_slice(&wire[100..]));
        let m = decoder.next().unwrap().unwrap();
        assert_eq!(m.data.len(), 300);
        assert_eq!(decoder.assembly.capacity(), 0, "nothing past its end");
    }

    #[test]
    fn the_assembly_buffer_is_reused_once_the_previous_message_is_dropped() {
        let wire = frame(false, &[9; 200_000]);
        let mut decoder = MessageDecoder::new();
        let push_in_pieces = |decoder: &mut MessageDecoder| {
            for piece in wire.chunks(16_384) {
                decoder.push(Bytes::copy_from_slice(piece));
            }
            decoder.next().unwrap().unwrap()
        };
        let first = push_in_pieces(&mut decoder);
        assert_eq!(first.data.len(), 200_000);
        let at = first.data.as_ptr();
        drop(first);
        let second = push_in_pieces(&mut decoder);
        assert_eq!(&second.data[..], &[9; 200_000][..]);
        assert_eq!(
            second.data.as_ptr(),
            at,
            "the first message's buffer, reused"
        );
        // Still held by the application: the next one goes to the other kept buffer,
        // and the one after that back to the first once it is free.
        let third = push_in_pieces(&mut decoder);
        assert_ne!(third.data.as_ptr(), second.data.as_ptr());
        assert_eq!(&second.data[..], &[9; 200_000][..]);
        drop(second);
        let fourth = push_in_pieces(&mut decoder);
        assert_eq!(
            fourth.data.as_ptr(),
            at,
            "reclaimed while the third is held"
        );
        drop((third, fourth));
    }

    /// Pushes one 200,000-byte message in 16 KiB pieces and takes it.
    fn spanning(decoder: &mut MessageDecoder, fill: u8) -> Message {
        let wire = frame(false, &[fill; 200_000]);
        for piece in wire.chunks(16_384) {
            decoder.push(Bytes::copy_from_slice(piece));
        }
        let m = decoder.next().unwrap().unwrap();
        assert_eq!(&m.data[..], &[fill; 200_000][..]);
        m
    }

    #[test]
    fn a_decoder_running_ahead_keeps_four_buffers_and_reuses_whichever_is_freed() {
        let mut decoder = MessageDecoder::new();
        // Four messages queued, none taken yet: four buffers.
        let mut held: Vec<Message> = (1..=4).map(|i| spanning(&mut decoder, i)).collect();
        let at: Vec<*const u8> = held.iter().map(|m| m.data.as_ptr()).collect();
        assert!(
            (1..4).all(|i| !at[..i].contains(&at[i])),
            "distinct buffers"
        );
        // The second is taken and dropped: the next body goes into its buffer.
        held.remove(1);
        let fifth = spanning(&mut decoder, 5);
        assert_eq!(fifth.data.as_ptr(), at[1]);
        held.push(fifth);
        // All four held: a fifth buffer, not kept (so not reused) once dropped.
        let extra = spanning(&mut decoder, 6);
        assert!(!at.contains(&extra.data.as_ptr()));
        drop(extra);
        held.remove(0);
        let seventh = spanning(&mut decoder, 7);
        assert_eq!(seventh.data.as_ptr(), at[0], "the first buffer, freed last");
    }

    #[test]
    fn a_later_decoder_on_the_connection_reuses_what_an_earlier_one_returned() {
        let mut pool = AssemblyPool::new();
        let mut first = MessageDecoder::new();
        first.draw_buffers(&mut pool);
        let m = spanning(&mut first, 1);
        let at = m.data.as_ptr();
        first.return_buffers(&mut pool);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.idle_capacity(), 0, "its message is still held");
        drop(m);
        assert_eq!(pool.idle_capacity(), 200_000);
        let mut second = MessageDecoder::new();
        second.draw_buffers(&mut pool);
        assert!(pool.is_empty());
        assert_eq!(spanning(&mut second, 2).data.as_ptr(), at);
    }

    #[test]
    fn the_pool_keeps_four_buffers_preferring_free_ones_then_large_ones() {
        let mut pool = AssemblyPool::new();
        // A decoder's buffer abandoned mid-message: kept, emptied.
        let mut decoder = MessageDecoder::new();
        let wire = frame(false, &[3; 100_000]);
        decoder.push(Bytes::copy_from_slice(&wire[..70_000]));
        assert_eq!(decoder.next(), Ok(None));
        decoder.return_buffers(&mut pool);
        // (Grown to what had arrived: 69,995 body bytes.)
        assert_eq!(pool.idle_capacity(), 69_995);
        // Five held messages' buffers and two free ones offered.
        let mut held = Vec::new();
        for i in 0..5 {
            let mut d = MessageDecoder::new();
            held.push(spanning(&mut d, i));
            d.return_buffers(&mut pool);
        }
        let mut d = MessageDecoder::new();
        drop(spanning(&mut d, 9));
        d.return_buffers(&mut pool);
        assert_eq!(pool.len(), AssemblyPool::KEEP);
        assert_eq!(pool.idle_capacity(), 269_995, "both free buffers kept");
        let mut drawn = MessageDecoder::new();
        drawn.draw_buffers(&mut pool);
        // The abandoned bytes are gone: a new message comes out whole.
        let wire = frame(false, &[4; 100_000]);
        drawn.push(Bytes::copy_from_slice(&wire[..50_000]));
        drawn.push(Bytes::copy_from_slice(&wire[50_000..]));
        assert_eq!(&drawn.next().unwrap().unwrap().data[..], &[4; 100_000][..]);
    }

    #[test]
    fn a_spanning_body_does_not_hold_the_buffers_it_arrived_in() {
        // Each piece is a slice of its own large read buffer: keeping pieces by
        // reference would pin every buffer until the message completes.
        let wire = frame(false, &[5; 64]);
        let mut decoder = MessageDecoder::new();
        let mut buffers = Vec::new();
        for piece in wire.chunks(8) {
            let mut big = BytesMut::zeroed(64 * 1024);
            big[..piece.len()].copy_from_slice(piece);
            let big = big.freeze();
            decoder.push(big.slice(..piece.len()));
            let m = decoder.next().unwrap();
            buffers.push(big);
            // Mid-message too, nothing it arrived in is still referenced.
            assert!(
                buffers.iter_mut().all(|b| b.is_unique()),
                "a read buffer is held by the decoder"
            );
            if let Some(m) = m {
                assert_eq!(&m.data[..], &[5; 64][..]);
            }
        }
    }

    #[test]
    fn one_byte_chunks() {
        let mut wire = frame(false, b"");
        wire.extend(frame(true, b"abc"));
        wire.extend(frame(false, &[9; 70]));
        let mut decoder = MessageDecoder::new();
        let mut messages = Vec::new();
        for &byte in &wire {
            decoder.push(Bytes::copy_from_slice(&[byte]));
            messages.extend(drain(&mut decoder));
            assert!(decoder.buffered_len() < PREFIX_LEN + 70);
        }
        assert_eq!(messages.len(), 3);
        assert_eq!(&messages[0].data[..], b"");
        assert!(!messages[0].compressed);
        assert_eq!(&messages[1].data[..], b"abc");
        assert!(messages[1].compressed);
        assert_eq!(&messages[2].data[..], &[9; 70][..]);
        assert!(!decoder.is_mid_message());
    }

    #[test]
    fn empty_messages_and_empty_pushes() {
        let mut decoder = MessageDecoder::new();
        decoder.push(Bytes::new());
        assert_eq!(decoder.next(), Ok(None));
        let mut wire = frame(false, b"");
        wire.extend(frame(true, b""));
        decoder.push(Bytes::from(wire));
        let messages = drain(&mut decoder);
        assert_eq!(messages.len(), 2);
        assert!(messages.iter().all(|m| m.data.is_empty()));
        assert!(messages[1].compressed);
        // An empty message whose prefix ends the chunk comes out without more data.
        decoder.push(Bytes::from(frame(false, b"")));
        assert_eq!(decoder.next().unwrap().unwrap().data.len(), 0);
        decoder.push(Bytes::copy_from_slice(&frame(false, b"")[..4]));
        assert_eq!(decoder.next(), Ok(None));
        decoder.push(Bytes::from_static(&[0]));
        assert_eq!(decoder.next().unwrap().unwrap().data.len(), 0);
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn an_oversized_prefix_is_rejected_before_its_body() {
        let mut decoder = MessageDecoder::new();
        decoder.push(Bytes::from_static(&[0, 0xff, 0xff]));
        assert_eq!(decoder.next(), Ok(None));
        assert!(decoder.buffered_len() <= PREFIX_LEN);
        decoder.push(Bytes::from_static(&[0xff, 0xff, 1, 2, 3]));
        let error = MessageError::TooLarge {
            len: 0xffff_ffff,
            max: DEFAULT_MAX_RECV_MESSAGE_SIZE,
        };
        assert_eq!(decoder.next(), Err(error));
        // Nothing of the body (nor any buffer of its size) was kept.
        assert!(decoder.current.is_none());
        assert_eq!(decoder.buffered_len(), 0);
        assert!(!decoder.is_mid_message());
        // Poisoned: the same error again, later data ignored.
        decoder.push(Bytes::from(frame(false, b"ok")));
        assert_eq!(decoder.buffered_len(), 0);
        assert_eq!(decoder.next(), Err(error));
        assert_eq!(error.grpc_code_name(), "RESOURCE_EXHAUSTED");
        assert_eq!(
            error.to_string(),
            "grpc: received message larger than max (4294967295 vs. 4194304)"
        );
    }

    #[test]
    fn the_limit_is_inclusive() {
        let mut decoder = MessageDecoder::with_max_message_size(10);
        assert_eq!(decoder.max_message_size(), 10);
        decoder.push(Bytes::from(frame(false, &[1; 10])));
        assert_eq!(decoder.next().unwrap().unwrap().data.len(), 10);
        decoder.push(Bytes::from(frame(false, &[1; 11])));
        assert_eq!(
            decoder.next(),
            Err(MessageError::TooLarge { len: 11, max: 10 })
        );

        let mut decoder = MessageDecoder::with_max_message_size(0);
        decoder.push(Bytes::from(frame(true, b"")));
        assert_eq!(decoder.next().unwrap().unwrap().data.len(), 0);
        decoder.set_max_message_size(1);
        decoder.push(Bytes::from(frame(true, b"x")));
        assert_eq!(&decoder.next().unwrap().unwrap().data[..], b"x");
    }

    #[test]
    fn an_oversized_prefix_after_good_messages_in_the_same_chunk() {
        let mut wire = frame(false, b"first");
        wire.extend([0, 0, 1, 0, 0]); // 65536 bytes announced
        wire.extend([0; 100]);
        let mut decoder = MessageDecoder::with_max_message_size(1024);
        decoder.push(Bytes::from(wire));
        assert_eq!(&decoder.next().unwrap().unwrap().data[..], b"first");
        assert_eq!(
            decoder.next(),
            Err(MessageError::TooLarge {
                len: 65536,
                max: 1024
            })
        );
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn a_flag_other_than_0_or_1_is_internal() {
        for flag in [2u8, 0x80, 0xff] {
            let mut decoder = MessageDecoder::new();
            decoder.push(Bytes::from(vec![flag, 0, 0, 0, 1, 42]));
            let error = decoder.next().unwrap_err();
            assert_eq!(error, MessageError::InvalidFlag(flag));
            assert_eq!(error.grpc_code_name(), "INTERNAL");
            assert_eq!(
                error.to_string(),
                format!("grpc: received unexpected payload format {flag}")
            );
            assert_eq!(decoder.buffered_len(), 0);
        }
        // Split prefix: checked when its fifth byte arrives.
        let mut decoder = MessageDecoder::new();
        decoder.push(Bytes::from_static(&[7, 0]));
        assert_eq!(decoder.next(), Ok(None));
        decoder.push(Bytes::from_static(&[0, 0, 0]));
        assert_eq!(decoder.next(), Err(MessageError::InvalidFlag(7)));
    }

    #[test]
    fn mid_message_tracking() {
        let wire = frame(false, b"abcdef");
        let mut decoder = MessageDecoder::new();
        assert!(!decoder.is_mid_message());
        for (i, &byte) in wire.iter().enumerate() {
            decoder.push(Bytes::copy_from_slice(&[byte]));
            let out = drain(&mut decoder);
            if i + 1 < wire.len() {
                assert!(out.is_empty());
                assert!(decoder.is_mid_message());
                assert_eq!(decoder.buffered_len(), i + 1);
            } else {
                assert_eq!(out.len(), 1);
                assert!(!decoder.is_mid_message());
            }
        }
    }

    #[test]
    fn several_pushes_before_draining() {
        let mut wire = frame(false, b"one");
        wire.extend(frame(false, b"two"));
        let mut decoder = MessageDecoder::new();
        for piece in wire.chunks(4) {
            decoder.push(Bytes::copy_from_slice(piece));
        }
        assert_eq!(decoder.buffered_len(), wire.len());
        let messages = drain(&mut decoder);
        assert_eq!(&messages[0].data[..], b"one");
        assert_eq!(&messages[1].data[..], b"two");
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn encoding_the_prefix() {
        assert_eq!(encode_prefix(false, 0, 0), Ok([0, 0, 0, 0, 0]));
        assert_eq!(
            encode_prefix(true, 0x0102_0304, usize::MAX),
            Ok([1, 1, 2, 3, 4])
        );
        assert_eq!(
            encode_prefix(false, 11, 10),
            Err(EncodeError::TooLarge { len: 11, max: 10 })
        );
        // The 4-byte length caps any send limit.
        let too_long = u32::MAX as usize + 1;
        assert_eq!(
            encode_prefix(false, too_long, usize::MAX),
            Err(EncodeError::TooLarge {
                len: too_long,
                max: u32::MAX as usize
            })
        );
        assert_eq!(
            encode_prefix(false, u32::MAX as usize, usize::MAX),
            Ok([0, 0xff, 0xff, 0xff, 0xff])
        );
        let error = EncodeError::TooLarge { len: 11, max: 10 };
        assert_eq!(error.grpc_code_name(), "RESOURCE_EXHAUSTED");
        assert_eq!(
            error.to_string(),
            "trying to send message larger than max (11 vs. 10)"
        );
    }

    #[test]
    fn the_two_encoders_agree_and_the_zero_copy_one_copies_nothing() {
        let payload = Bytes::from(vec![5u8; 64]);
        let (prefix, body) = encode_message(payload.clone(), true, 64).unwrap();
        assert_eq!(body.as_ptr(), payload.as_ptr());
        let mut joined = prefix.to_vec();
        joined.extend_from_slice(&body);
        let mut out = BytesMut::from(&b"xx"[..]);
        encode_message_into(&payload, true, 64, &mut out).unwrap();
        assert_eq!(&out[2..], &joined[..]);
        assert_eq!(
            encode_message(payload.clone(), true, 63),
            Err(EncodeError::TooLarge { len: 64, max: 63 })
        );
        assert_eq!(
            encode_message_into(&payload, false, 63, &mut out),
            Err(EncodeError::TooLarge { len: 64, max: 63 })
        );
        assert_eq!(out.len(), 2 + joined.len());
    }

    /// Up to 200 KiB, mostly small so a stream holds several messages.
    fn message_strategy() -> impl Strategy<Value = (bool, usize, u8)> {
        let len = prop_oneof![3 => 0usize..64, 1 => 0usize..=200 * 1024];
        (any::<bool>(), len, any::<u8>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Messages back to back, the stream cut anywhere: the same messages come out in
        /// order, every one whose body lies in one chunk as a slice of it, and the
        /// decoder holds less than max + 5 after each drain.
        #[test]
        fn any_chunking_yields_the_same_messages(
            specs in prop::collection::vec(message_strategy(), 0..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            drain_each in any::<bool>(),
        ) {
            let messages: Vec<Message> = specs
                .iter()
                .map(|&(compressed, len, seed)| Message {
                    compressed,
                    data: (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect(),
                })
                .collect();
            let mut wire = BytesMut::new();
            let mut body_ranges = Vec::new();
            for m in &messages {
                encode_message_into(&m.data, m.compressed, usize::MAX, &mut wire).unwrap();
                body_ranges.push(wire.len() - m.data.len()..wire.len());
            }
            let wire = wire.freeze();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            cuts.push(0);
            cuts.push(wire.len());
            cuts.sort_unstable();
            cuts.dedup();

            let max = 200 * 1024;
            let mut decoder = MessageDecoder::with_max_message_size(max);
            let mut chunks = Vec::new();
            let mut out = Vec::new();
            for pair in cuts.windows(2) {
                // Copies, so each chunk is its own allocation.
                let chunk = Bytes::copy_from_slice(&wire[pair[0]..pair[1]]);
                chunks.push((pair[0]..pair[1], chunk.clone()));
                decoder.push(chunk);
                if drain_each {
                    out.extend(drain(&mut decoder));
                    prop_assert!(decoder.buffered_len() < max + PREFIX_LEN);
                }
            }
            out.extend(drain(&mut decoder));
            prop_assert_eq!(&out, &messages);
            prop_assert_eq!(decoder.buffered_len(), 0);
            prop_assert!(!decoder.is_mid_message());

            for (got, body) in out.iter().zip(&body_ranges) {
                if body.is_empty() {
                    continue;
                }
                let home = chunks
                    .iter()
                    .find(|(range, _)| range.start <= body.start && body.end <= range.end);
                match home {
                    Some((range, chunk)) => {
                        prop_assert!(is_slice_of(&got.data, chunk));
                        prop_assert_eq!(
                            got.data.as_ptr(),
                            chunk[body.start - range.start..].as_ptr()
                        );
                    }
                    None => {
                        prop_assert!(!chunks.iter().any(|(_, c)| is_slice_of(&got.data, c)));
                    }
                }
            }
        }

        /// Any bytes at all, any chunking: no panic, the memory bound holds, and what
        /// comes out re-encodes to a prefix of the input.
        #[test]
        fn arbitrary_bytes_never_panic(
            wire in prop::collection::vec(any::<u8>(), 0..512),
            chunk in 1usize..64,
            max in 0usize..300,
        ) {
            let mut decoder = MessageDecoder::with_max_message_size(max);
            let mut reencoded = BytesMut::new();
            'feed: for piece in wire.chunks(chunk) {
                decoder.push(Bytes::copy_from_slice(piece));
                loop {
                    match decoder.next() {
                        Ok(Some(m)) => {
                            prop_assert!(m.data.len() <= max);
                            encode_message_into(&m.data, m.compressed, max, &mut reencoded)
                                .unwrap();
                        }
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
                prop_assert!(decoder.buffered_len() < max + PREFIX_LEN);
            }
            prop_assert!(wire.starts_with(&reencoded));
        }
    }
}
