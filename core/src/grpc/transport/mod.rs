//! gRPC calls over one HTTP/2 connection: grpc-go's `http2Client` / `http2Server`
//! stream handling as two sans-IO values, [`ClientTransport`] and [`ServerTransport`].
//!
//! Each owns an [`h2::Connection`](crate::h2::Connection) and turns its streams into
//! calls: request and response headers, length-prefixed messages (compressed when the
//! call says so), the final [`Status`], deadlines and cancellation. The owner feeds
//! bytes and time in (`recv`, `recv_eof`, `handle_timeout`), writes what
//! `poll_transmit` produces, and learns from `poll_event` which calls have something to
//! read; each call's messages are pulled with `poll_call`. A message holds its share of
//! the stream's flow-control window until it is pulled, so an application that stops
//! reading stops the peer instead of growing our buffers.

mod client;
mod server;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::code::Code;
use super::compression::{CompressionError, Encoding, compress};
use super::message::{EncodeError, PREFIX_LEN, encode_prefix};
use super::status::Status;
use crate::frame::StreamId;
use crate::h2::{CommandError, SMALL_PAYLOAD_COPY};

pub use client::{ClientTransport, ClientTransportEvent, StartCallError};
pub use server::{ServerTransport, ServerTransportEvent};

/// One call on a transport: its HTTP/2 stream, whose id is never reused on the
/// connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(StreamId);

impl CallId {
    /// The call's stream.
    pub fn stream_id(self) -> StreamId {
        self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call on stream {}", self.0.value())
    }
}

/// Limits a transport applies to every call's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// Largest message we send, after compression (grpc-go's default: 2^31-1).
    pub max_send: usize,
    /// Largest message we accept, before and after decompression (default 4 MiB).
    pub max_recv: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        MessageLimits {
            max_send: i32::MAX as usize,
            max_recv: super::message::DEFAULT_MAX_RECV_MESSAGE_SIZE,
        }
    }
}

/// Why a command on a call was refused. The call itself goes on unless the error says
/// otherwise; [`to_status`](CallError::to_status) gives the status a gRPC library
/// reports for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such call on this transport (never started, or already finished and
    /// forgotten).
    UnknownCall,
    /// The call's sending side is finished (half-closed, or the call has ended).
    SendClosed,
    /// Response headers were already sent (server), so they cannot change now.
    HeadersAlreadySent,
    /// The peer does not accept this compression (its `grpc-accept-encoding`).
    EncodingNotAccepted(Encoding),
    /// The message is larger than the send limit (RESOURCE_EXHAUSTED).
    TooLarge(EncodeError),
    /// Compressing the message failed (INTERNAL).
    Compression(CompressionError),
    /// The connection refused the command (it is closed or closing).
    Connection(CommandError),
}

impl CallError {
    /// The status a caller reports for this error.
    pub fn to_status(&self) -> Status {
        let code = match self {
            CallError::TooLarge(_) => Code::ResourceExhausted,
            CallError::Connection(_) => Code::Unavailable,
            CallError::UnknownCall
            | CallError::SendClosed
            | CallError::HeadersAlreadySent
            | CallError::EncodingNotAccepted(_)
            | CallError::Compression(_) => Code::Internal,
        };
        Status::new(code, self.to_string())
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::UnknownCall => f.write_str("no such call"),
            CallError::SendClosed => f.write_str("the call's sending side is already closed"),
            CallError::HeadersAlreadySent => f.write_str("response headers were already sent"),
            CallError::EncodingNotAccepted(e) => {
                write!(f, "the peer does not accept {e} compression")
            }
            CallError::TooLarge(e) => e.fmt(f),
            CallError::Compression(e) => e.fmt(f),
            CallError::Connection(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<CommandError> for CallError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::UnknownStream => CallError::UnknownCall,
            CommandError::SendClosed => CallError::SendClosed,
            CommandError::HeadersAlreadySent => CallError::HeadersAlreadySent,
            other => CallError::Connection(other),
        }
    }
}

/// The calls' deadlines in time order, for the transport's `poll_timeout`.
#[derive(Debug, Default)]
struct Deadlines {
    set: BTreeSet<(Instant, u32)>,
}

impl Deadlines {
    fn insert(&mut self, at: Instant, call: CallId) {
        self.set.insert((at, call.0.value()));
    }

    fn remove(&mut self, at: Instant, call: CallId) {
        self.set.remove(&(at, call.0.value()));
    }

    fn next(&self) -> Option<Instant> {
        self.set.first().map(|&(at, _)| at)
    }

    /// Removes and returns the calls whose deadline is at or before `now`.
    fn expired(&mut self, now: Instant) -> Vec<CallId> {
        let mut out = Vec::new();
        while let Some(&(at, id)) = self.set.first() {
            if at > now {
                break;
            }
            self.set.pop_first();
            out.push(CallId(StreamId::new(id)));
        }
        out
    }
}

/// A message as DATA payload: the 5-byte prefix and the (compressed) bytes, as one
/// chunk for small messages (one frame, one copy of a few bytes) or as the prefix and
/// the application's own `Bytes` for large ones (no copy of the payload).
fn frame_message(
    payload: Bytes,
    encoding: Encoding,
    max_send: usize,
) -> Result<(Bytes, Option<Bytes>), CallError> {
    if encoding != Encoding::Identity {
        let mut out = BytesMut::with_capacity(PREFIX_LEN + payload.len() / 2 + 32);
        out.resize(PREFIX_LEN, 0);
        compress(encoding, &payload, &mut out).map_err(CallError::Compression)?;
        let prefix =
            encode_prefix(true, out.len() - PREFIX_LEN, max_send).map_err(CallError::TooLarge)?;
        out[..PREFIX_LEN].copy_from_slice(&prefix);
        return Ok((out.freeze(), None));
    }
    let prefix = encode_prefix(false, payload.len(), max_send).map_err(CallError::TooLarge)?;
    if payload.len() < SMALL_PAYLOAD_COPY {
        let mut out = BytesMut::with_capacity(PREFIX_LEN + payload.len());
        out.extend_from_slice(&prefix);
        out.extend_from_slice(&payload);
        Ok((out.freeze(), None))
    } else {
        Ok((Bytes::copy_from_slice(&prefix), Some(payload)))
    }
}

/// Accounts `n` bytes of a call's DATA of which its reader says `free` may go back to
/// flow control now (bytes of a message still being assembled); returns how many to
/// release now.
///
/// A complete message holds back only the bytes of the chunk that completed it: the
/// rest was freed while it was being assembled. So while the application does not take
/// its messages, each new message costs the peer only its final chunk's worth of
/// window, and a peer whose messages end in small frames could fill our memory with
/// complete messages far beyond the window. Freed bytes are therefore held back
/// (`withheld`) while the application has events it has not taken (`behind`), and given
/// back once it has taken them all: a reader that stops reading stops the sender
/// within the window (plus the one message that was being assembled when it stopped),
/// and a reader that keeps up still gets messages larger than the window.
fn withhold(
    free: usize,
    n: usize,
    behind: bool,
    unreleased: &mut usize,
    withheld: &mut usize,
) -> usize {
    if behind {
        *withheld += free;
        *unreleased += n;
        0
    } else {
        *unreleased += n - free;
        free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::message::MessageDecoder;

    fn decode(chunks: &[Bytes]) -> (bool, Bytes) {
        let mut d = MessageDecoder::new();
        for c in chunks {
            d.push(c.clone());
        }
        let m = d.next().unwrap().unwrap();
        (m.compressed, m.data)
    }

    #[test]
    fn small_messages_are_one_chunk_and_large_ones_keep_their_bytes() {
        let (one, none) =
            frame_message(Bytes::from_static(b"hi"), Encoding::Identity, 100).expect("fits");
        assert!(none.is_none());
        assert_eq!(decode(&[one]), (false, Bytes::from_static(b"hi")));

        let big = Bytes::from(vec![7u8; SMALL_PAYLOAD_COPY]);
        let (prefix, body) = frame_message(big.clone(), Encoding::Identity, usize::MAX).unwrap();
        let body = body.expect("large payloads are not copied");
        assert_eq!(body.as_ptr(), big.as_ptr());
        assert_eq!(prefix.len(), PREFIX_LEN);
        assert_eq!(decode(&[prefix, body]), (false, big));
    }

    #[test]
    fn gzip_messages_are_flagged_and_limits_apply_after_compression() {
        let text = Bytes::from(vec![b'a'; 10_000]);
        let (one, none) = frame_message(text.clone(), Encoding::Gzip, 1000).expect("compresses");
        assert!(none.is_none());
        let (compressed, data) = decode(&[one]);
        assert!(compressed && data.len() < 1000);
        // Uncompressed, the same message is over the limit.
        assert!(matches!(
            frame_message(text, Encoding::Identity, 1000),
            Err(CallError::TooLarge(EncodeError::TooLarge {
                len: 10_000,
                max: 1000
            }))
        ));
    }

    #[test]
    fn deadlines_expire_in_time_order() {
        let t0 = crate::test_clock::t0();
        let mut d = Deadlines::default();
        let id = |n| CallId(StreamId::new(n));
        d.insert(t0 + std::time::Duration::from_secs(2), id(1));
        d.insert(t0 + std::time::Duration::from_secs(1), id(3));
        d.insert(t0 + std::time::Duration::from_secs(3), id(5));
        d.remove(t0 + std::time::Duration::from_secs(3), id(5));
        assert_eq!(d.next(), Some(t0 + std::time::Duration::from_secs(1)));
        assert_eq!(
            d.expired(t0 + std::time::Duration::from_secs(2)),
            [id(3), id(1)]
        );
        assert_eq!(d.next(), None);
    }
}
