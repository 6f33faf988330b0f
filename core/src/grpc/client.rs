//! The client side of one call on one HTTP/2 stream (sans-IO): the request HEADERS
//! ([`RequestHeaders`]) and the reader that turns the stream's response events into
//! gRPC events ([`ResponseReader`]).
//!
//! Nothing here does I/O or reads a clock: the time is an [`Instant`] the caller passes
//! in, and the caller moves bytes between these values and [`crate::h2::Connection`].
//! The rules follow grpc/grpc `doc/PROTOCOL-HTTP2.md` and grpc-go's
//! `http2_client.go` (`operateHeaders`, `handleData`, `handleRSTStream`).

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;

use super::code::Code;
use super::compression::{ACCEPT_ENCODING, Encoding, decode_payload_with_header};
use super::mapping::{parse_http_status, status_from_non_grpc_response, status_from_rst_stream};
use super::message::{AssemblyPool, DEFAULT_MAX_RECV_MESSAGE_SIZE, MessageDecoder};
use super::metadata::Metadata;
use super::release::ReleaseLedger;
use super::status::Status;
use super::timeout::encode_timeout;
use crate::ErrorCode;
use crate::ascii;
use crate::h2::{CloseReason, Header, StreamReset};
use crate::hpack::Field;

/// The `user-agent` product this crate sends, after any application prefix.
pub const USER_AGENT: &str = concat!("grpc-rust-sansio/", env!("CARGO_PKG_VERSION"));

/// `http` or `https`, for `:scheme`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plaintext (h2c).
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// The `:scheme` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Why [`RequestHeaders::build`] refused to write the request headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestHeadersError {
    /// `:path` is not `/service/method`: it must start with `/`, contain exactly one
    /// more `/`, have a non-empty service and method, and only visible ASCII.
    InvalidPath {
        /// The path as given (lossily decoded).
        path: String,
    },
    /// `:authority` is empty or holds a byte outside visible ASCII.
    InvalidAuthority {
        /// The authority as given (lossily decoded).
        authority: String,
    },
    /// The content-subtype is empty or holds a byte outside `a-z 0-9 . _ -`.
    InvalidContentSubtype {
        /// The subtype as given.
        subtype: String,
    },
    /// The user-agent prefix holds a byte outside printable ASCII (`0x20..=0x7E`).
    InvalidUserAgent {
        /// The prefix as given.
        prefix: String,
    },
}

impl fmt::Display for RequestHeadersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestHeadersError::InvalidPath { path } => write!(
                f,
                "invalid gRPC :path {path:?}: expected \"/package.Service/Method\""
            ),
            RequestHeadersError::InvalidAuthority { authority } => {
                write!(f, "invalid :authority {authority:?}")
            }
            RequestHeadersError::InvalidContentSubtype { subtype } => {
                write!(f, "invalid content-subtype {subtype:?}")
            }
            RequestHeadersError::InvalidUserAgent { prefix } => {
                write!(f, "invalid user-agent prefix {prefix:?}")
            }
        }
    }
}

impl std::error::Error for RequestHeadersError {}

/// Builds the HEADERS that open a call (PROTOCOL-HTTP2.md "Requests").
///
/// [`build`](RequestHeaders::build) writes, in this order: `:method POST`, `:scheme`,
/// `:path`, `:authority` (pseudo-headers first, as RFC 9113 §8.3 requires), `te:
/// trailers`, `grpc-timeout` (with a deadline), `content-type`, `grpc-encoding` (when
/// messages are compressed), `grpc-accept-encoding`, `user-agent`, then the custom
/// metadata. That is the spec's order of `Request-Headers`.
#[derive(Clone, Debug)]
pub struct RequestHeaders {
    scheme: Scheme,
    authority: Bytes,
    path: Bytes,
    content_subtype: Option<String>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) encoding: Encoding,
    user_agent_prefix: Option<String>,
    metadata: Metadata,
}

impl RequestHeaders {
    /// A request for `path` (`/package.Service/Method`) on `authority` (`host:port`).
    /// Both are checked by [`build`](RequestHeaders::build).
    pub fn new(scheme: Scheme, authority: impl Into<Bytes>, path: impl Into<Bytes>) -> Self {
        RequestHeaders {
            scheme,
            authority: authority.into(),
            path: path.into(),
            content_subtype: None,
            deadline: None,
            encoding: Encoding::Identity,
            user_agent_prefix: None,
            metadata: Metadata::new(),
        }
    }

    /// Sends `content-type: application/grpc+{subtype}` (e.g. `proto`, `json`) instead
    /// of plain `application/grpc`.
    pub fn content_subtype(mut self, subtype: impl Into<String>) -> Self {
        self.content_subtype = Some(subtype.into());
        self
    }

    /// The call's deadline; `grpc-timeout` is the time left at `build`'s `now`.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The encoding the call's messages are compressed with; anything but identity is
    /// announced in `grpc-encoding`.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Puts the application's product before ours: `user-agent: {prefix}
    /// grpc-rust-sansio/x.y.z` (grpc-go's `WithUserAgent` does the same).
    pub fn user_agent_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.user_agent_prefix = Some(prefix.into());
        self
    }

    /// The custom metadata, sent after the gRPC headers (`-bin` values as base64).
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The header list for the call's first HEADERS frame. `now` is only read with a
    /// deadline: the time left is rounded up by [`encode_timeout`], and a deadline
    /// already passed is sent as `0n` (the server then fails the call at once, which is
    /// what the spec's deadline semantics want rather than us refusing to send).
    pub fn build(&self, now: Instant) -> Result<Vec<Header>, RequestHeadersError> {
        let mut out = Vec::new();
        self.build_into(now, &mut out)?;
        Ok(out)
    }

    /// [`build`](Self::build) into `out`, emptied first: a list from
    /// [`Connection::header_list`](crate::h2::Connection::header_list), say, to reuse
    /// its memory.
    pub fn build_into(
        &self,
        now: Instant,
        out: &mut Vec<Header>,
    ) -> Result<(), RequestHeadersError> {
        check_path(&self.path)?;
        if self.authority.is_empty() || !ascii::all(&self.authority, is_visible_ascii) {
            return Err(RequestHeadersError::InvalidAuthority {
                authority: String::from_utf8_lossy(&self.authority).into_owned(),
            });
        }
        let content_type = match &self.content_subtype {
            None => Bytes::from_static(b"application/grpc"),
            Some(subtype) => {
                let ok = !subtype.is_empty()
                    && subtype.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    });
                if !ok {
                    return Err(RequestHeadersError::InvalidContentSubtype {
                        subtype: subtype.clone(),
                    });
                }
                Bytes::from(format!("application/grpc+{subtype}"))
            }
        };
        let user_agent = match &self.user_agent_prefix {
            None => Bytes::from_static(USER_AGENT.as_bytes()),
            Some(prefix) => {
                if !prefix.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
                    return Err(RequestHeadersError::InvalidUserAgent {
                        prefix: prefix.clone(),
                    });
                }
                Bytes::from(format!("{prefix} {USER_AGENT}"))
            }
        };

        out.clear();
        out.reserve(11 + self.metadata.len());
        out.push(Header::new(":method", "POST"));
        out.push(Header::new(":scheme", self.scheme.as_str()));
        out.push(Header::new(":path", self.path.clone()));
        out.push(Header::new(":authority", self.authority.clone()));
        out.push(Header::new("te", "trailers"));
        if let Some(deadline) = self.deadline {
            // saturating: a deadline in the past is zero time left, sent as "0n".
            let left = deadline.saturating_duration_since(now);
            out.push(Header::new("grpc-timeout", encode_timeout(left)));
        }
        out.push(Header::new("content-type", content_type));
        if self.encoding != Encoding::Identity {
            out.push(Header::new("grpc-encoding", self.encoding.name()));
        }
        out.push(Header::new("grpc-accept-encoding", ACCEPT_ENCODING));
        out.push(Header::new("user-agent", user_agent));
        self.metadata.to_headers(out);
        Ok(())
    }
}

/// Printable ASCII without space: what a path or authority may hold.
fn is_visible_ascii(b: u8) -> bool {
    (0x21..=0x7E).contains(&b)
}

/// `/service/method`: a leading `/`, exactly one more, both parts non-empty.
fn check_path(path: &[u8]) -> Result<(), RequestHeadersError> {
    // Two slashes, one first, neither next to the other nor last: both parts are
    // non-empty. (Whole-slice passes, not a split: this runs for every call.)
    let ok = path.first() == Some(&b'/')
        && path.get(1).is_some_and(|&b| b != b'/')
        && path.last() != Some(&b'/')
        && ascii::count(path, b'/') == 2
        && ascii::all(path, is_visible_ascii);
    if ok {
        Ok(())
    } else {
        Err(RequestHeadersError::InvalidPath {
            path: String::from_utf8_lossy(path).into_owned(),
        })
    }
}

/// What a [`ResponseReader`] hands the application, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The response headers' custom metadata. Not sent for a Trailers-Only response
    /// (its metadata comes with the status) nor for a non-gRPC response.
    Headers(Metadata),
    /// One response message, decompressed and within the receive limit.
    Message(Bytes),
    /// The call's outcome and the trailers' custom metadata: always the last event, and
    /// always exactly one.
    Status(Status, Metadata),
}

/// Where the response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No final response headers yet.
    AwaitingHeaders,
    /// Response headers read; messages may follow.
    Body,
    /// The final status has been produced; every later input is ignored.
    Done,
}

/// A call's pending events, each message with the window bytes it holds.
pub(crate) type EventQueue = VecDeque<(ClientEvent, usize)>;

/// The client side of one call's response (sans-IO).
///
/// Feed it the connection's events for the call's stream — [`Event::Headers`] to
/// [`on_headers`](Self::on_headers), [`Event::Data`] to [`on_data`](Self::on_data),
/// [`Event::Trailers`] to [`on_trailers`](Self::on_trailers), [`Event::StreamReset`] to
/// [`on_reset`](Self::on_reset), [`Event::Closed`] to
/// [`on_connection_closed`](Self::on_connection_closed) — and take what it produced with
/// [`poll_event`](Self::poll_event). It produces exactly one [`ClientEvent::Status`],
/// last; inputs after it are ignored.
///
/// When the reader itself ends the call (a non-gRPC response, malformed metadata, a
/// framing or decompression error) while the server may still send,
/// [`must_reset`](Self::must_reset) gives the code to reset the stream with.
///
/// [`Event::Headers`]: crate::h2::Event::Headers
/// [`Event::Data`]: crate::h2::Event::Data
/// [`Event::Trailers`]: crate::h2::Event::Trailers
/// [`Event::StreamReset`]: crate::h2::Event::StreamReset
/// [`Event::Closed`]: crate::h2::Event::Closed
#[derive(Debug)]
pub struct ResponseReader {
    phase: Phase,
    decoder: MessageDecoder,
    /// The response's `grpc-encoding`, `None` when absent.
    encoding: Option<Bytes>,
    /// Pending events, each message with the window bytes it holds.
    events: EventQueue,
    /// Flow-control window held by undelivered messages.
    ledger: ReleaseLedger,
    /// The code to reset the stream with, when the reader failed the call.
    reset: Option<ErrorCode>,
    /// The stream was never processed by the server: safe to retry transparently.
    transparent_retry: bool,
    /// Anything (headers or data) came back from the server.
    received_any: bool,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader::new()
    }
}

impl ResponseReader {
    /// A reader with the default receive limit,
    /// [`DEFAULT_MAX_RECV_MESSAGE_SIZE`].
    pub fn new() -> Self {
        ResponseReader::with_max_message_size(DEFAULT_MAX_RECV_MESSAGE_SIZE)
    }

    /// A reader that fails the call with RESOURCE_EXHAUSTED on a message longer than
    /// `max` bytes, on the wire or after decompression.
    pub fn with_max_message_size(max: usize) -> Self {
        ResponseReader {
            phase: Phase::AwaitingHeaders,
            decoder: MessageDecoder::with_max_message_size(max),
            encoding: None,
            events: VecDeque::new(),
            ledger: ReleaseLedger::default(),
            reset: None,
            transparent_retry: false,
            received_any: false,
        }
    }

    /// The next event, in order; `None` when nothing is pending.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        let (event, hold) = self.events.pop_front()?;
        self.ledger.on_delivered(hold);
        Some(event)
    }

    /// Bytes of DATA that delivered messages (taken with
    /// [`poll_event`](Self::poll_event)) held, to give back now with `release_data`.
    pub fn take_released(&mut self) -> usize {
        self.ledger.take_released()
    }

    /// Takes kept assembly buffers from the connection's `pool` (see
    /// [`AssemblyPool`]); call it when the call starts.
    pub fn draw_buffers(&mut self, pool: &mut AssemblyPool) {
        self.decoder.draw_buffers(pool);
    }

    /// Gives the assembly buffers back to the connection's `pool` once the call is
    /// gone.
    pub fn return_buffers(&mut self, pool: &mut AssemblyPool) {
        self.decoder.return_buffers(pool);
    }

    /// Queues events in `queue` (emptied, from a call that ended) rather than in a
    /// new allocation.
    pub(crate) fn use_queue(&mut self, mut queue: EventQueue) {
        if self.events.capacity() == 0 {
            queue.clear();
            self.events = queue;
        }
    }

    /// Its event queue, for the next call to [`use_queue`](Self::use_queue).
    pub(crate) fn take_queue(&mut self) -> EventQueue {
        std::mem::take(&mut self.events)
    }

    /// True once the final status has been produced (it may still be waiting in
    /// [`poll_event`](Self::poll_event)).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// `Some(code)` when the reader ended the call while the server's side of the stream
    /// was still open: reset the stream with this code. PROTOCOL_ERROR for a malformed
    /// response head (as grpc-go), CANCEL for a message the reader refused (grpc-go
    /// cancels the stream when a receive fails).
    pub fn must_reset(&self) -> Option<ErrorCode> {
        self.reset
    }

    /// True when the call failed with UNAVAILABLE because the server never processed
    /// the stream (REFUSED_STREAM, or above a GOAWAY's last-stream-id) and nothing came
    /// back: it may be retried transparently, even if not idempotent.
    pub fn transparent_retry_ok(&self) -> bool {
        self.transparent_retry
    }

    /// The stream's first HEADERS (response headers, or with `end_stream` a
    /// Trailers-Only response).
    ///
    /// - An informational `1xx` without `end_stream` is skipped (not final).
    /// - `:status` not 200, or a `content-type` missing or not gRPC: the status from
    ///   [`status_from_non_grpc_response`] (any `grpc-status` is ignored, as grpc-go).
    /// - `end_stream`: the status from `grpc-status`, `grpc-message` and
    ///   `grpc-status-details-bin` ([`Status::from_header_values`]; no `grpc-status` is
    ///   UNKNOWN).
    /// - otherwise [`ClientEvent::Headers`]; the `grpc-encoding` is kept for messages.
    pub fn on_headers(&mut self, fields: &[Field], end_stream: bool) {
        if self.phase != Phase::AwaitingHeaders {
            // The connection only delivers a second HEADERS as trailers; ignore rather
            // than trust a misrouted event.
            return;
        }
        self.received_any = true;
        let http_status = first(fields, b":status");
        let content_type = first(fields, b"content-type");
        let parsed = http_status.and_then(parse_http_status);
        if matches!(parsed, Some(100..=199)) && !end_stream {
            return;
        }
        let is_grpc = content_type.is_some_and(super::mapping::content_type_is_grpc);
        if parsed != Some(200) || !is_grpc {
            let status = status_from_non_grpc_response(http_status, content_type);
            return self.fail(status, !end_stream, ErrorCode::ProtocolError);
        }
        if end_stream {
            return self.finish_with_trailers(fields);
        }
        match Metadata::from_fields(fields) {
            Ok(md) => {
                self.encoding = first(fields, b"grpc-encoding").map(Bytes::copy_from_slice);
                self.phase = Phase::Body;
                self.events.push_back((ClientEvent::Headers(md), 0));
            }
            Err(e) => self.fail(
                Status::internal(format!("malformed response headers: {e}")),
                true,
                ErrorCode::ProtocolError,
            ),
        }
    }

    /// A DATA payload. Complete messages become [`ClientEvent::Message`]s; a framing or
    /// decompression error ends the call with that error's code and asks for a reset
    /// ([`must_reset`](Self::must_reset)). With `end_stream` and no trailers the call
    /// ends INTERNAL ("server closed the stream without sending trailers").
    ///
    /// Returns how many bytes to give back to the connection with `release_data` now:
    /// all of `data` except what complete messages waiting in
    /// [`poll_event`](Self::poll_event) hold. Those bytes are freed as the messages are
    /// taken ([`take_released`](Self::take_released)), so a slow reader back-pressures
    /// the server. Bytes of a message still being assembled are released at once
    /// (holding them could stall a message larger than the window; the receive limit
    /// bounds them).
    pub fn on_data(&mut self, data: Bytes, end_stream: bool) -> usize {
        let len = data.len();
        match self.phase {
            Phase::Done => return len,
            Phase::AwaitingHeaders => {
                // The connection does not allow this; still never accept a body
                // without knowing the response is gRPC.
                self.received_any = true;
                self.fail(
                    Status::internal("received DATA before the response headers"),
                    !end_stream,
                    ErrorCode::ProtocolError,
                );
                return len;
            }
            Phase::Body => {}
        }
        self.ledger.start_chunk(self.decoder.buffered_len());
        self.decoder.push(data);
        let held = self.drain(!end_stream);
        if end_stream && self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.events.push_back((
                ClientEvent::Status(
                    Status::internal("server closed the stream without sending trailers"),
                    Metadata::new(),
                ),
                0,
            ));
        }
        len - held
    }

    /// The trailers that end the stream: the status from `grpc-status`, `grpc-message`
    /// and `grpc-status-details-bin`, and the trailers' metadata. If the stream ends
    /// inside a message, an OK status becomes INTERNAL (a non-OK status from the server
    /// says more and is kept).
    pub fn on_trailers(&mut self, fields: &[Field]) {
        match self.phase {
            Phase::Done => {}
            // Trailers with no response headers before them: only after a skipped 1xx.
            Phase::AwaitingHeaders => self.on_headers(fields, true),
            Phase::Body => self.finish_with_trailers(fields),
        }
    }

    /// The stream was reset (by the server, or locally by the connection). Pass
    /// `deadline_passed` when the call's deadline has passed: CANCEL then reads as
    /// DEADLINE_EXCEEDED. A stream the server never processed (`reset.unprocessed`, or
    /// REFUSED_STREAM) before any response is UNAVAILABLE and
    /// [`transparent_retry_ok`](Self::transparent_retry_ok); otherwise the status is
    /// [`status_from_rst_stream`].
    pub fn on_reset(&mut self, reset: &StreamReset, deadline_passed: bool) {
        if self.phase == Phase::Done {
            return;
        }
        let unprocessed =
            (reset.unprocessed || reset.code == ErrorCode::RefusedStream) && !self.received_any;
        let status = if unprocessed {
            self.transparent_retry = true;
            Status::unavailable(format!(
                "stream not processed by the server: {} ({})",
                reset.reason, reset.code
            ))
        } else {
            status_from_rst_stream(reset.code, deadline_passed)
        };
        self.finish(status, Metadata::new());
    }

    /// Ends the call from our side with `status`: the application cancelled it
    /// (CANCELLED) or its deadline passed (DEADLINE_EXCEEDED). The caller resets the
    /// stream with CANCEL. No effect once the status was produced.
    pub fn cancel(&mut self, status: Status) {
        self.finish(status, Metadata::new());
    }

    /// The connection ended with the call still open: UNAVAILABLE, with the cause.
    /// (The connection normally resets each open stream first; this is for a caller that
    /// only watches the connection.)
    pub fn on_connection_closed(&mut self, reason: &CloseReason) {
        if self.phase == Phase::Done {
            return;
        }
        self.finish(
            Status::unavailable(format!("connection closed: {reason}")),
            Metadata::new(),
        );
    }

    /// Takes every complete message out of the decoder. `open` says the server may
    /// still send, so an error asks for a reset.
    ///
    /// Returns the bytes of the current chunk that the queued messages hold.
    fn drain(&mut self, open: bool) -> usize {
        let max = self.decoder.max_message_size();
        let mut held = 0;
        loop {
            let msg = match self.decoder.next() {
                Ok(Some(msg)) => msg,
                Ok(None) => return held,
                Err(e) => {
                    let status = Status::new(code_named(e.grpc_code_name()), e.to_string());
                    self.fail(status, open, ErrorCode::Cancel);
                    return held;
                }
            };
            match decode_payload_with_header(&msg, self.encoding.as_deref(), max) {
                Ok(payload) => {
                    let hold = self.ledger.on_message(msg.data.len());
                    held += hold;
                    self.events.push_back((ClientEvent::Message(payload), hold));
                }
                Err(e) => {
                    let status = Status::new(code_named(e.grpc_code_name()), e.to_string());
                    self.fail(status, open, ErrorCode::Cancel);
                    return held;
                }
            }
        }
    }

    /// Ends the call from trailer fields (or a Trailers-Only response).
    fn finish_with_trailers(&mut self, fields: &[Field]) {
        let mut status = Status::from_header_values(
            first(fields, b"grpc-status"),
            first(fields, b"grpc-message"),
            first(fields, b"grpc-status-details-bin"),
        );
        if status.is_ok() && self.decoder.is_mid_message() {
            status = Status::internal(format!(
                "server closed the stream in the middle of a message ({} bytes buffered)",
                self.decoder.buffered_len()
            ));
        }
        match Metadata::from_fields(fields) {
            Ok(md) => self.finish(status, md),
            // grpc-go fails the call INTERNAL on trailers it cannot decode.
            Err(e) => self.finish(
                Status::internal(format!("malformed trailers: {e}")),
                Metadata::new(),
            ),
        }
    }

    /// Ends the call because of something the reader refused; `open` says the server's
    /// side is still open, so the stream must be reset with `code`.
    fn fail(&mut self, status: Status, open: bool, code: ErrorCode) {
        if open {
            self.reset = Some(code);
        }
        self.finish(status, Metadata::new());
    }

    /// Queues the one final status.
    fn finish(&mut self, status: Status, trailers: Metadata) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.events
            .push_back((ClientEvent::Status(status, trailers), 0));
    }
}

/// The value of the first field named `name`.
fn first<'a>(fields: &'a [Field], name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_ref())
}

/// The code an error's `grpc_code_name()` names; INTERNAL for a name we do not know
/// (cannot happen with this crate's errors, but a wrong name must not panic).
fn code_named(name: &str) -> Code {
    Code::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap_or(Code::Internal)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;

    use super::*;
    use crate::grpc::compression::compress;
    use crate::grpc::message::encode_message_into;
    use crate::h2::Initiator;

    fn field(name: &'static str, value: &'static str) -> Field {
        Field {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
            never_indexed: false,
        }
    }

    fn ok_headers() -> Vec<Field> {
        vec![
            field(":status", "200"),
            field("content-type", "application/grpc"),
        ]
    }

    fn frame(data: &[u8], compressed: bool) -> Bytes {
        let mut out = BytesMut::new();
        encode_message_into(data, compressed, usize::MAX, &mut out).unwrap();
        out.freeze()
    }

    fn events(r: &mut ResponseReader) -> Vec<ClientEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    /// The one final status among the events (asserting there is exactly one, last).
    fn final_status(evs: &[ClientEvent]) -> Status {
        let statuses: Vec<_> = evs
            .iter()
            .filter(|e| matches!(e, ClientEvent::Status(..)))
            .collect();
        assert_eq!(statuses.len(), 1, "{evs:?}");
        match evs.last() {
            Some(ClientEvent::Status(s, _)) => s.clone(),
            other => panic!("last event is not a status: {other:?}"),
        }
    }

    fn started() -> ResponseReader {
        let mut r = ResponseReader::new();
        r.on_headers(&ok_headers(), false);
        assert!(matches!(r.poll_event(), Some(ClientEvent::Headers(_))));
        r
    }

    // ---- request headers ----

    fn names_values(h: &[Header]) -> Vec<(String, String)> {
        h.iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(&h.name).into_owned(),
                    String::from_utf8_lossy(&h.value).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn request_headers_order_and_values() {
        let now = crate::test_clock::t0();
        let mut md = Metadata::new();
        md.append("x-id", "7").unwrap();
        md.append("trace-bin", Bytes::from_static(&[0xff, 0x00, 0x01]))
            .unwrap();
        let h = RequestHeaders::new(Scheme::Https, "example.com:443", "/pkg.Svc/Do")
            .content_subtype("proto")
            .deadline(now + Duration::from_millis(1500))
            .encoding(Encoding::Gzip)
            .user_agent_prefix("app/1.0")
            .metadata(md)
            .build(now)
            .unwrap();
        let ua = format!("app/1.0 grpc-rust-sansio/{}", env!("CARGO_PKG_VERSION"));
        let expected: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":scheme", "https"),
            (":path", "/pkg.Svc/Do"),
            (":authority", "example.com:443"),
            ("te", "trailers"),
            ("grpc-timeout", "1500000u"),
            ("content-type", "application/grpc+proto"),
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "identity,gzip"),
            ("user-agent", &ua),
            ("x-id", "7"),
            ("trace-bin", "/wAB"),
        ];
        let got = names_values(&h);
        let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn request_headers_defaults() {
        let h = RequestHeaders::new(Scheme::Http, "localhost", "/a/b")
            .build(crate::test_clock::t0())
            .unwrap();
        let got = names_values(&h);
        let names: Vec<&str> = got.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(
            names,
            [
                ":method",
                ":scheme",
                ":path",
                ":authority",
                "te",
                "content-type",
                "grpc-accept-encoding",
                "user-agent"
            ]
        );
        assert_eq!(got[1].1, "http");
        assert_eq!(got[5].1, "application/grpc");
        assert_eq!(got[7].1, USER_AGENT);
        // Identity is not announced.
        let h = RequestHeaders::new(Scheme::Http, "localhost", "/a/b")
            .encoding(Encoding::Identity)
            .build(crate::test_clock::t0())
            .unwrap();
        assert!(!h.iter().any(|h| h.name == "grpc-encoding"));
    }

    #[test]
    fn request_timeout_rounding() {
        let now = crate::test_clock::t0();
        let table: [(Option<Duration>, &str); 5] = [
            (Some(Duration::from_nanos(1)), "1n"),
            (Some(Duration::from_secs(1)), "1000000u"),
            (Some(Duration::from_nanos(100_000_001)), "100001u"),
            (Some(Duration::from_secs(100_000_000)), "1666667M"),
            (None, "0n"),
        ];
        for (left, want) in table {
            let deadline = match left {
                Some(d) => now + d,
                // A deadline already passed: "0n".
                None => now,
            };
            let later = if left.is_none() {
                now + Duration::from_secs(5)
            } else {
                now
            };
            let h = RequestHeaders::new(Scheme::Http, "h", "/s/m")
                .deadline(deadline)
                .build(later)
                .unwrap();
            let t = h.iter().find(|h| h.name == "grpc-timeout").unwrap();
            assert_eq!(t.value, want.as_bytes(), "{left:?}");
        }
    }

    #[test]
    fn request_invalid_path_and_values() {
        for path in [
            "",
            "pkg.Svc/Do",
            "/",
            "/pkg.Svc",
            "/pkg.Svc/",
            "//Do",
            "/a/b/c",
            "/a b/c",
            "/a/b\n",
            "/a//b",
            "/a.long.package.name.Service/AMethodNameLongerThanOneVector\x7f",
        ] {
            let err = RequestHeaders::new(Scheme::Http, "h", path)
                .build(crate::test_clock::t0())
                .unwrap_err();
            assert_eq!(
                err,
                RequestHeadersError::InvalidPath {
                    path: path.to_owned()
                }
            );
            assert!(err.to_string().contains("/package.Service/Method"));
        }
        let err = RequestHeaders::new(Scheme::Http, "", "/a/b")
            .build(crate::test_clock::t0())
            .unwrap_err();
        assert!(matches!(err, RequestHeadersError::InvalidAuthority { .. }));
        let err = RequestHeaders::new(Scheme::Http, "h", "/a/b")
            .content_subtype("Pro to")
            .build(crate::test_clock::t0())
            .unwrap_err();
        assert!(matches!(
            err,
            RequestHeadersError::InvalidContentSubtype { .. }
        ));
        let err = RequestHeaders::new(Scheme::Http, "h", "/a/b")
            .user_agent_prefix("bad\r\n")
            .build(crate::test_clock::t0())
            .unwrap_err();
        assert!(matches!(err, RequestHeadersError::InvalidUserAgent { .. }));
    }

    // ---- response reader ----

    #[test]
    fn normal_call() {
        let mut r = ResponseReader::new();
        r.on_headers(
            &[
                field(":status", "200"),
                field("content-type", "application/grpc+proto"),
                field("x-h", "v"),
            ],
            false,
        );
        let mut two = BytesMut::new();
        two.extend_from_slice(&frame(b"hello", false));
        two.extend_from_slice(&frame(b"", false));
        let two = two.freeze();
        // Split inside the first prefix.
        // The partial prefix is released at once; the two complete messages hold
        // their bytes (the 3 already released excepted) until they are taken.
        assert_eq!(r.on_data(two.slice(..3), false), 3);
        assert_eq!(r.on_data(two.slice(3..), false), 0);
        assert_eq!(r.take_released(), 0);
        r.on_trailers(&[field("grpc-status", "0"), field("x-t", "w")]);
        let evs = events(&mut r);
        assert_eq!(r.take_released(), two.len() - 3);
        let mut h = Metadata::new();
        h.append("x-h", "v").unwrap();
        let mut t = Metadata::new();
        t.append("x-t", "w").unwrap();
        assert_eq!(
            evs,
            vec![
                ClientEvent::Headers(h),
                ClientEvent::Message(Bytes::from_static(b"hello")),
                ClientEvent::Message(Bytes::new()),
                ClientEvent::Status(Status::ok(), t),
            ]
        );
        assert!(r.is_done());
        assert_eq!(r.must_reset(), None);
        assert!(!r.transparent_retry_ok());
    }

    #[test]
    fn http_status_rows() {
        let table: [(&'static str, Code, &str); 12] = [
            ("400", Code::Internal, "400 (Bad Request)"),
            ("401", Code::Unauthenticated, "401 (Unauthorized)"),
            ("403", Code::PermissionDenied, "403 (Forbidden)"),
            ("404", Code::Unimplemented, "404 (Not Found)"),
            ("429", Code::Unavailable, "429 (Too Many Requests)"),
            ("431", Code::Internal, "431"),
            ("500", Code::Unknown, "500 (Internal Server Error)"),
            ("502", Code::Unavailable, "502 (Bad Gateway)"),
            ("503", Code::Unavailable, "503 (Service Unavailable)"),
            ("504", Code::Unavailable, "504 (Gateway Timeout)"),
            ("302", Code::Unknown, "302 (Found)"),
            ("abc", Code::Internal, "malformed http-status"),
        ];
        for (status, code, text) in table {
            for end_stream in [false, true] {
                let mut r = ResponseReader::new();
                // Even with a grpc-status: a non-200 response is not gRPC (grpc-go).
                r.on_headers(
                    &[
                        field(":status", status),
                        field("content-type", "application/grpc"),
                        field("grpc-status", "0"),
                    ],
                    end_stream,
                );
                let evs = events(&mut r);
                assert_eq!(evs.len(), 1, "{evs:?}");
                let s = final_status(&evs);
                assert_eq!(s.code, code, "{status}");
                assert!(s.message.contains(text), "{status}: {}", s.message);
                let want_reset = (!end_stream).then_some(ErrorCode::ProtocolError);
                assert_eq!(r.must_reset(), want_reset);
            }
        }
    }

    #[test]
    fn content_type_rows() {
        let table: [(Option<&'static str>, Option<Code>, &str); 7] = [
            (Some("application/grpc"), None, ""),
            (Some("application/grpc+json"), None, ""),
            (Some("application/grpc;charset=utf-8"), None, ""),
            (Some("APPLICATION/GRPC"), None, ""),
            (None, Some(Code::Unknown), "missing HTTP content-type"),
            (
                Some("text/html"),
                Some(Code::Unknown),
                "unexpected content-type \"text/html\"",
            ),
            (
                Some("application/grpcx"),
                Some(Code::Unknown),
                "unexpected content-type",
            ),
        ];
        for (ct, code, text) in table {
            let mut fields = vec![field(":status", "200")];
            if let Some(ct) = ct {
                fields.push(field("content-type", ct));
            }
            let mut r = ResponseReader::new();
            r.on_headers(&fields, false);
            let evs = events(&mut r);
            match code {
                None => assert!(matches!(evs[..], [ClientEvent::Headers(_)]), "{ct:?}"),
                Some(code) => {
                    let s = final_status(&evs);
                    assert_eq!(s.code, code, "{ct:?}");
                    assert!(s.message.contains(text), "{}", s.message);
                    assert_eq!(r.must_reset(), Some(ErrorCode::ProtocolError));
                }
            }
        }
        // No :status at all: INTERNAL.
        let mut r = ResponseReader::new();
        r.on_headers(&[field("content-type", "application/grpc")], true);
        let s = final_status(&events(&mut r));
        assert_eq!(s.code, Code::Internal);
        assert!(s.message.contains("missing HTTP status"));
    }

    #[test]
    fn trailers_only_rows() {
        let table: [(Vec<Field>, Code, &str, &[u8]); 5] = [
            (vec![field("grpc-status", "0")], Code::Ok, "", b""),
            (
                vec![
                    field("grpc-status", "5"),
                    field("grpc-message", "no%20such"),
                ],
                Code::NotFound,
                "no such",
                b"",
            ),
            (
                vec![
                    field("grpc-status", "3"),
                    field("grpc-status-details-bin", "AQI"),
                ],
                Code::InvalidArgument,
                "",
                &[1, 2],
            ),
            (vec![], Code::Unknown, "missing grpc-status", b""),
            (
                vec![field("grpc-message", "boom")],
                Code::Unknown,
                "boom",
                b"",
            ),
        ];
        for (extra, code, message, details) in table {
            let mut fields = ok_headers();
            fields.extend(extra);
            fields.push(field("x-md", "1"));
            let mut r = ResponseReader::new();
            r.on_headers(&fields, true);
            let evs = events(&mut r);
            assert_eq!(evs.len(), 1, "no Headers event for Trailers-Only: {evs:?}");
            let ClientEvent::Status(s, md) = &evs[0] else {
                panic!("{evs:?}")
            };
            assert_eq!(s.code, code);
            assert_eq!(s.message, message);
            assert_eq!(&s.details[..], details);
            assert_eq!(md.get_str("x-md"), Some("1"));
            assert_eq!(r.must_reset(), None);
        }
    }

    #[test]
    fn informational_headers_are_skipped() {
        let mut r = ResponseReader::new();
        r.on_headers(&[field(":status", "100")], false);
        assert_eq!(r.poll_event(), None);
        assert!(!r.is_done());
        // The final response then arrives as the stream's last HEADERS.
        let mut fields = ok_headers();
        fields.push(field("grpc-status", "7"));
        r.on_trailers(&fields);
        assert_eq!(final_status(&events(&mut r)).code, Code::PermissionDenied);
    }

    #[test]
    fn data_end_stream_without_trailers() {
        let mut r = started();
        assert_eq!(r.on_data(frame(b"m", false), true), 0);
        let evs = events(&mut r);
        assert_eq!(r.take_released(), 6);
        assert_eq!(evs[0], ClientEvent::Message(Bytes::from_static(b"m")));
        let s = final_status(&evs);
        assert_eq!(s.code, Code::Internal);
        assert_eq!(
            s.message,
            "server closed the stream without sending trailers"
        );
        assert_eq!(r.must_reset(), None);
        // Empty DATA with END_STREAM too.
        let mut r = started();
        assert_eq!(r.on_data(Bytes::new(), true), 0);
        assert_eq!(final_status(&events(&mut r)).code, Code::Internal);
    }

    #[test]
    fn stream_ends_mid_message() {
        let whole = frame(b"abcdef", false);
        // Cut inside the prefix and inside the body; by DATA END_STREAM and by trailers.
        for cut in [2, 8] {
            let mut r = started();
            r.on_data(whole.slice(..cut), true);
            let s = final_status(&events(&mut r));
            assert_eq!(s.code, Code::Internal);

            let mut r = started();
            r.on_data(whole.slice(..cut), false);
            r.on_trailers(&[field("grpc-status", "0")]);
            let evs = events(&mut r);
            assert_eq!(evs.len(), 1, "{evs:?}");
            let s = final_status(&evs);
            assert_eq!(s.code, Code::Internal);
            assert!(s.message.contains("middle of a message"), "{}", s.message);
        }
        // A server error in the trailers is kept: it says more.
        let mut r = started();
        r.on_data(whole.slice(..8), false);
        r.on_trailers(&[field("grpc-status", "14")]);
        assert_eq!(final_status(&events(&mut r)).code, Code::Unavailable);
    }

    #[test]
    fn rst_stream_rows() {
        let table: [(ErrorCode, Code, Code); 15] = [
            (ErrorCode::NoError, Code::Internal, Code::Internal),
            (ErrorCode::ProtocolError, Code::Internal, Code::Internal),
            (ErrorCode::InternalError, Code::Internal, Code::Internal),
            (
                ErrorCode::FlowControlError,
                Code::ResourceExhausted,
                Code::ResourceExhausted,
            ),
            (ErrorCode::SettingsTimeout, Code::Internal, Code::Internal),
            (ErrorCode::StreamClosed, Code::Internal, Code::Internal),
            (ErrorCode::FrameSizeError, Code::Internal, Code::Internal),
            (
                ErrorCode::RefusedStream,
                Code::Unavailable,
                Code::Unavailable,
            ),
            (ErrorCode::Cancel, Code::Cancelled, Code::DeadlineExceeded),
            (ErrorCode::CompressionError, Code::Internal, Code::Internal),
            (ErrorCode::ConnectError, Code::Internal, Code::Internal),
            (
                ErrorCode::EnhanceYourCalm,
                Code::ResourceExhausted,
                Code::ResourceExhausted,
            ),
            (
                ErrorCode::InadequateSecurity,
                Code::PermissionDenied,
                Code::PermissionDenied,
            ),
            (ErrorCode::Http11Required, Code::Internal, Code::Internal),
            (ErrorCode::Unknown(0x2a), Code::Unknown, Code::Unknown),
        ];
        for (h2, without, with) in table {
            for (deadline_passed, want) in [(false, without), (true, with)] {
                // After the response headers: the server processed the stream.
                let mut r = started();
                let reset = StreamReset {
                    code: h2,
                    initiator: Initiator::Remote,
                    unprocessed: h2 == ErrorCode::RefusedStream,
                    reason: "peer reset",
                };
                r.on_reset(&reset, deadline_passed);
                let s = final_status(&events(&mut r));
                assert_eq!(s.code, want, "{h2:?} deadline_passed={deadline_passed}");
                assert!(s.message.contains("RST_STREAM"), "{}", s.message);
                assert!(!r.transparent_retry_ok());
                assert_eq!(r.must_reset(), None);
            }
        }
    }

    #[test]
    fn unprocessed_streams_allow_transparent_retry() {
        let rows = [
            (ErrorCode::RefusedStream, false, "peer refused"),
            (
                ErrorCode::NoError,
                true,
                "stream above the peer's GOAWAY last-stream-id",
            ),
            (ErrorCode::Cancel, true, "connection closed"),
        ];
        for (code, unprocessed, reason) in rows {
            let mut r = ResponseReader::new();
            r.on_reset(
                &StreamReset {
                    code,
                    initiator: Initiator::Remote,
                    unprocessed,
                    reason,
                },
                true,
            );
            let s = final_status(&events(&mut r));
            assert_eq!(s.code, Code::Unavailable, "{code:?}");
            assert!(s.message.contains(reason), "{}", s.message);
            assert!(r.transparent_retry_ok());
        }
        // A processed stream reset with a non-refusal code: no retry.
        let mut r = ResponseReader::new();
        r.on_reset(
            &StreamReset {
                code: ErrorCode::Cancel,
                initiator: Initiator::Remote,
                unprocessed: false,
                reason: "x",
            },
            false,
        );
        assert_eq!(final_status(&events(&mut r)).code, Code::Cancelled);
        assert!(!r.transparent_retry_ok());
    }

    #[test]
    fn connection_loss_rows() {
        let table = [
            (
                CloseReason::GoAway {
                    code: ErrorCode::EnhanceYourCalm,
                    debug_data: Bytes::from_static(b"too_many_pings"),
                },
                "too_many_pings",
            ),
            (CloseReason::TransportClosed, "transport closed"),
            (CloseReason::KeepaliveTimeout, "keepalive"),
            (
                CloseReason::Local {
                    code: ErrorCode::ProtocolError,
                    reason: "bad frame",
                },
                "bad frame",
            ),
            (CloseReason::BadPreface, "preface"),
        ];
        for (reason, text) in table {
            for head_first in [false, true] {
                let mut r = if head_first {
                    started()
                } else {
                    ResponseReader::new()
                };
                r.on_connection_closed(&reason);
                let s = final_status(&events(&mut r));
                assert_eq!(s.code, Code::Unavailable);
                assert!(s.message.contains(text), "{}", s.message);
                assert!(!r.transparent_retry_ok());
            }
        }
    }

    #[test]
    fn gzip_message() {
        let mut r = ResponseReader::new();
        r.on_headers(
            &[
                field(":status", "200"),
                field("content-type", "application/grpc"),
                field("grpc-encoding", "gzip"),
            ],
            false,
        );
        let mut z = BytesMut::new();
        compress(Encoding::Gzip, b"compressed hello", &mut z).unwrap();
        r.on_data(frame(&z, true), false);
        // An uncompressed message on a gzip stream is fine too.
        r.on_data(frame(b"plain", false), false);
        r.on_trailers(&[field("grpc-status", "0")]);
        let evs = events(&mut r);
        assert_eq!(
            evs[1..3],
            [
                ClientEvent::Message(Bytes::from_static(b"compressed hello")),
                ClientEvent::Message(Bytes::from_static(b"plain")),
            ]
        );
        assert!(final_status(&evs).is_ok());
    }

    #[test]
    fn message_error_rows() {
        let mut big_gzip = BytesMut::new();
        compress(Encoding::Gzip, &[0u8; 100], &mut big_gzip).unwrap();
        let big_gzip = frame(&big_gzip, true);
        let mut bad_flag = frame(b"x", false).to_vec();
        bad_flag[0] = 2;
        let table: [(Option<&'static str>, Bytes, Code, &str); 6] = [
            (
                None,
                frame(&[0u8; 65], false),
                Code::ResourceExhausted,
                "larger than max (65 vs. 64)",
            ),
            (
                Some("gzip"),
                big_gzip,
                Code::ResourceExhausted,
                "after decompression larger than max 64",
            ),
            (None, frame(b"x", true), Code::Internal, ""),
            (Some("identity"), frame(b"x", true), Code::Internal, ""),
            (Some("br"), frame(b"x", true), Code::Unimplemented, "br"),
            (
                None,
                Bytes::from(bad_flag),
                Code::Internal,
                "payload format 2",
            ),
        ];
        for (encoding, data, code, text) in table {
            for end_stream in [false, true] {
                let mut r = ResponseReader::with_max_message_size(64);
                let mut fields = ok_headers();
                if let Some(e) = encoding {
                    fields.push(field("grpc-encoding", e));
                }
                r.on_headers(&fields, false);
                assert_eq!(r.on_data(data.clone(), end_stream), data.len());
                // Ignored after the status: no second status, still released.
                assert_eq!(r.on_data(frame(b"late", false), false), 9);
                r.on_trailers(&[field("grpc-status", "0")]);
                let evs = events(&mut r);
                assert_eq!(evs.len(), 2, "{evs:?}");
                let s = final_status(&evs);
                assert_eq!(s.code, code, "{encoding:?}");
                assert!(s.message.contains(text), "{}", s.message);
                let want = (!end_stream).then_some(ErrorCode::Cancel);
                assert_eq!(r.must_reset(), want);
            }
        }
    }

    #[test]
    fn malformed_metadata_fails_internal() {
        let mut fields = ok_headers();
        fields.push(field("x-bin", "!!!"));
        let mut r = ResponseReader::new();
        r.on_headers(&fields, false);
        let s = final_status(&events(&mut r));
        assert_eq!(s.code, Code::Internal);
        assert_eq!(r.must_reset(), Some(ErrorCode::ProtocolError));

        let mut r = started();
        r.on_trailers(&[field("grpc-status", "0"), field("x-bin", "!!!")]);
        let s = final_status(&events(&mut r));
        assert_eq!(s.code, Code::Internal);
        assert!(s.message.contains("malformed trailers"));
    }

    #[test]
    fn binary_trailer_metadata_is_decoded() {
        let mut r = started();
        r.on_trailers(&[field("grpc-status", "0"), field("x-bin", "AQI,Aw==")]);
        let evs = events(&mut r);
        let ClientEvent::Status(_, md) = &evs[0] else {
            panic!("{evs:?}")
        };
        let values: Vec<_> = md.get_all("x-bin").cloned().collect();
        assert_eq!(
            values,
            [Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])]
        );
    }

    #[test]
    fn data_before_headers_fails() {
        let mut r = ResponseReader::new();
        assert_eq!(r.on_data(frame(b"x", false), false), 6);
        assert_eq!(final_status(&events(&mut r)).code, Code::Internal);
        assert_eq!(r.must_reset(), Some(ErrorCode::ProtocolError));
    }

    #[test]
    fn inputs_after_final_status_are_ignored() {
        let mut r = started();
        r.on_trailers(&[field("grpc-status", "0")]);
        r.on_headers(&ok_headers(), false);
        r.on_trailers(&[field("grpc-status", "13")]);
        assert_eq!(r.on_data(frame(b"x", false), true), 6);
        r.on_reset(
            &StreamReset {
                code: ErrorCode::Cancel,
                initiator: Initiator::Remote,
                unprocessed: false,
                reason: "x",
            },
            false,
        );
        r.on_connection_closed(&CloseReason::TransportClosed);
        let evs = events(&mut r);
        assert_eq!(
            evs,
            vec![ClientEvent::Status(Status::ok(), Metadata::new())]
        );
        assert_eq!(r.poll_event(), None);
    }

    #[test]
    fn code_names_map_back() {
        for code in Code::ALL {
            assert_eq!(code_named(code.name()), code);
        }
        assert_eq!(code_named("NOPE"), Code::Internal);
    }
}
