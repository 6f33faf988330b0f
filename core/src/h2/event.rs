//! What a connection tells its owner, and the values its commands take and return.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::keepalive::KEEPALIVE_TIMEOUT_REASON;
use crate::ErrorCode;
use crate::frame::{Settings, StreamId};
use crate::hpack::Field;

/// A header field to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Lower-case field name (pseudo-headers first, starting with `:`).
    pub name: Bytes,
    /// Field value.
    pub value: Bytes,
    /// Never index this field in HPACK tables, here or in any intermediary (credentials).
    pub sensitive: bool,
}

impl Header {
    /// A field from static strings, for the common case of fixed names.
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// A field that must never be indexed (for example `authorization`).
    pub fn sensitive(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Header {
        Header {
            sensitive: true,
            ..Header::new(name, value)
        }
    }

    /// Its size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2).
    pub fn list_size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}

/// Who ended a stream or a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// We did (a command, or our reaction to the peer breaking a rule).
    Local,
    /// The peer did.
    Remote,
}

/// The [`StreamReset::reason`] of the resets a connection reports for its open streams
/// when it ends: the stream failed because the whole connection did, and
/// [`Connection::close_reason`](super::Connection::close_reason) says why.
pub const CONNECTION_CLOSED_REASON: &str = "connection closed";

/// Why a stream ended without completing normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamReset {
    /// The HTTP/2 error code carried or sent.
    pub code: ErrorCode,
    /// Who reset it.
    pub initiator: Initiator,
    /// True when the peer certainly did not process the stream (REFUSED_STREAM, or a
    /// stream above a GOAWAY's last-stream-id, or one never sent): safe to retry.
    pub unprocessed: bool,
    /// A short description for logs.
    pub reason: &'static str,
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// We closed it: a command, or an error of the peer's that we answered with GOAWAY.
    Local {
        /// The code in our GOAWAY.
        code: ErrorCode,
        /// Its debug text.
        reason: &'static str,
    },
    /// The peer sent GOAWAY and every stream it would still process has ended.
    GoAway {
        /// The code in its GOAWAY.
        code: ErrorCode,
        /// Its debug data.
        debug_data: Bytes,
    },
    /// The transport closed under us.
    TransportClosed,
    /// A keepalive PING went unanswered within its timeout (closed without GOAWAY).
    KeepaliveTimeout,
    /// The peer's bytes were not HTTP/2 (a bad preface): closed without a GOAWAY.
    BadPreface,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local { code, reason } => write!(f, "closed locally: {code}: {reason}"),
            CloseReason::GoAway { code, debug_data } if debug_data.is_empty() => {
                write!(f, "peer sent GOAWAY {code}")
            }
            CloseReason::GoAway { code, debug_data } => write!(
                f,
                "peer sent GOAWAY {code}: {}",
                String::from_utf8_lossy(debug_data)
            ),
            CloseReason::TransportClosed => f.write_str("transport closed"),
            CloseReason::KeepaliveTimeout => f.write_str(KEEPALIVE_TIMEOUT_REASON),
            CloseReason::BadPreface => f.write_str("peer did not send the HTTP/2 preface"),
        }
    }
}

/// Something the owner of a [`Connection`](super::Connection) must know about, from
/// [`poll_event`](super::Connection::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer's preface and first SETTINGS arrived: the connection is usable (the
    /// channel waits for this before calling a subchannel READY).
    Connected,
    /// The peer changed its settings (already applied).
    RemoteSettings(Settings),
    /// The first HEADERS of a stream: a request on a server, a response (or, with
    /// `end_stream`, a trailers-only response) on a client.
    Headers {
        /// The stream.
        stream_id: StreamId,
        /// The decoded header list.
        fields: Vec<Field>,
        /// The peer will send nothing more on this stream.
        end_stream: bool,
    },
    /// DATA arrived. Call [`release_data`](super::Connection::release_data) once the
    /// application has consumed it, to reopen the flow-control window.
    Data {
        /// The stream.
        stream_id: StreamId,
        /// The payload, a slice of the received bytes.
        data: Bytes,
        /// The peer will send nothing more on this stream.
        end_stream: bool,
    },
    /// The trailing HEADERS that end a stream.
    Trailers {
        /// The stream.
        stream_id: StreamId,
        /// The decoded header list.
        fields: Vec<Field>,
    },
    /// The stream ended abnormally; nothing more will come from it.
    StreamReset {
        /// The stream.
        stream_id: StreamId,
        /// Why.
        reset: StreamReset,
    },
    /// A stream whose send buffer was full has room again.
    StreamWritable {
        /// The stream.
        stream_id: StreamId,
    },
    /// The peer sent GOAWAY: open no more streams here (the channel should move on).
    GoAway {
        /// Streams above this were not processed and have been reset as unprocessed.
        last_stream_id: StreamId,
        /// The peer's code.
        code: ErrorCode,
        /// The peer's debug data.
        debug_data: Bytes,
    },
    /// A PING we sent with [`ping`](super::Connection::ping) was acknowledged.
    PingAck {
        /// Its payload.
        payload: [u8; 8],
        /// Time from writing it to reading the ACK.
        rtt: Duration,
    },
    /// Stream ids are used up: open a new connection for new streams.
    StreamIdsExhausted,
    /// The connection is over. Every stream still open got a `StreamReset` first.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a command was refused: the caller's mistake or a state that forbids it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandError {
    /// The connection is closed or closing.
    Closed,
    /// A GOAWAY was sent or received: no new streams.
    Draining,
    /// Stream ids are exhausted on this connection.
    StreamIdsExhausted,
    /// Only clients open streams.
    NotAClient,
    /// No such open stream (never opened, or already ended).
    UnknownStream,
    /// The stream's sending side is already finished.
    SendClosed,
    /// Headers were already sent and these lack END_STREAM (trailers must end a stream).
    HeadersAlreadySent,
    /// DATA before the stream's HEADERS (a server must send response headers first).
    HeadersNotSent,
    /// The header list is larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE.
    HeaderListTooLarge,
    /// Release of more bytes than were delivered.
    ReleaseTooLarge,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::Closed => "connection is closed",
            CommandError::Draining => "connection is draining (GOAWAY)",
            CommandError::StreamIdsExhausted => "stream ids exhausted",
            CommandError::NotAClient => "only a client opens streams",
            CommandError::UnknownStream => "no such open stream",
            CommandError::SendClosed => "stream's send side already finished",
            CommandError::HeadersAlreadySent => "headers already sent; trailers need end_stream",
            CommandError::HeadersNotSent => "DATA before the stream's HEADERS",
            CommandError::HeaderListTooLarge => {
                "header list larger than the peer's SETTINGS_MAX_HEADER_LIST_SIZE"
            }
            CommandError::ReleaseTooLarge => "released more bytes than were received",
        })
    }
}

impl std::error::Error for CommandError {}
