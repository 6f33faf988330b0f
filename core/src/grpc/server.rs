//! The server side of one call on one HTTP/2 stream (sans-IO): reading the request
//! HEADERS ([`RequestHead::parse`], or the [`Rejection`] to answer with), writing the
//! response headers and trailers ([`ResponseHeaders`], [`trailers`], [`trailers_only`]),
//! and turning the request's DATA into messages ([`RequestReader`]).
//!
//! Nothing here does I/O or reads a clock: the time is an [`Instant`] the caller passes
//! in. The rules follow grpc/grpc `doc/PROTOCOL-HTTP2.md` and grpc-go's
//! `internal/transport/http2_server.go` (`operateHeaders`) and `server.go`
//! (`handleStream`, the decompressor check in `processUnaryRPC`).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::code::Code;
use super::compression::{ACCEPT_ENCODING, Encoding, decode_payload};
use super::mapping::grpc_content_subtype;
use super::message::{AssemblyPool, DEFAULT_MAX_RECV_MESSAGE_SIZE, MessageDecoder};
use super::metadata::Metadata;
use super::release::ReleaseLedger;
use super::status::Status;
use super::timeout::decode_timeout;
use crate::ErrorCode;
use crate::ascii;
use crate::h2::Header;
use crate::hpack::Field;

/// HTTP/1 connection-specific fields: RFC 9113 §8.2.2 makes a request carrying any of
/// them malformed. grpc-go checks only `connection` (gRFC A41); the others are the same
/// rule.
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// A request's HEADERS, checked and parsed: what a server needs to dispatch the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The whole `:path`, `/service/method`.
    pub path: Bytes,
    /// The service part of the path (`package.Service`).
    pub service: String,
    /// The method part of the path.
    pub method: String,
    /// `:authority`, or `host` when `:authority` is absent (gRFC A41); `None` when
    /// neither was sent.
    pub authority: Option<Bytes>,
    /// `now + grpc-timeout`; `None` without a timeout, or when the timeout is too far
    /// away for an [`Instant`] (which is the same as no deadline).
    pub deadline: Option<Instant>,
    /// The request messages' `grpc-encoding`; `None` when absent or empty.
    pub encoding: Option<Encoding>,
    /// The client's `grpc-accept-encoding` (several fields joined with `,`); `None`
    /// when absent.
    pub accept_encoding: Option<Bytes>,
    /// `user-agent`, when sent.
    pub user_agent: Option<Bytes>,
    /// The custom metadata (reserved keys left out; `-bin` values decoded).
    pub metadata: Metadata,
    /// The content-subtype (`proto` for `application/grpc+proto`); empty for plain
    /// `application/grpc`.
    pub content_subtype: Bytes,
}

/// How to answer a request whose HEADERS [`RequestHead::parse`] refused. The header
/// list to send, with END_STREAM, is [`to_headers`](Rejection::to_headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not an acceptable HTTP request for gRPC: answer with this HTTP status. As
    /// grpc-go's `earlyAbortStream`, the response also carries `content-type:
    /// application/grpc`, `grpc-status` and `grpc-message`, so a gRPC client reads the
    /// precise reason while any HTTP client still sees the HTTP status.
    HttpStatus {
        /// The HTTP status: 400, 405 or 415.
        status: u16,
        /// The gRPC status carried alongside.
        grpc_status: Status,
    },
    /// A well-formed gRPC request the server cannot serve: a Trailers-Only response
    /// (`:status 200`) with this status.
    Grpc {
        /// The status to end the call with.
        status: Status,
        /// The request's content-subtype, echoed in `content-type`.
        content_subtype: Bytes,
        /// Also send `grpc-accept-encoding` (for an unsupported `grpc-encoding`, as
        /// grpc/grpc `doc/compression.md` asks).
        accept_encoding: bool,
    },
    /// A malformed HTTP/2 request (RFC 9113 §8.1.1): reset the stream with this code
    /// and send no headers (grpc-go resets with PROTOCOL_ERROR for `connection`).
    Reset(ErrorCode),
}

impl Rejection {
    /// The exact header list to send with END_STREAM; empty for
    /// [`Rejection::Reset`], which sends no headers.
    pub fn to_headers(&self) -> Vec<Header> {
        match self {
            Rejection::HttpStatus {
                status,
                grpc_status,
            } => {
                let mut out = vec![
                    Header::new(":status", status.to_string()),
                    Header::new("content-type", "application/grpc"),
                ];
                grpc_status.to_headers(&mut out);
                out
            }
            Rejection::Grpc {
                status,
                content_subtype,
                accept_encoding,
            } => {
                let mut out = vec![
                    Header::new(":status", "200"),
                    Header::new("content-type", content_type(content_subtype)),
                ];
                if *accept_encoding {
                    out.push(Header::new("grpc-accept-encoding", ACCEPT_ENCODING));
                }
                status.to_headers(&mut out);
                out
            }
            Rejection::Reset(_) => Vec::new(),
        }
    }

    /// The code to reset the stream with after sending [`to_headers`](Self::to_headers),
    /// given whether the request's HEADERS carried END_STREAM. A response that ends
    /// while the client may still send is followed by RST_STREAM NO_ERROR (RFC 9113
    /// §8.1, as grpc-go does with `earlyAbortStream.rst`), so the client stops sending.
    pub fn reset_code(&self, request_ended: bool) -> Option<ErrorCode> {
        match self {
            Rejection::Reset(code) => Some(*code),
            _ if request_ended => None,
            _ => Some(ErrorCode::NoError),
        }
    }
}

/// `application/grpc`, or `application/grpc+{subtype}` when the subtype is one a header
/// may carry back unchanged (visible ASCII without `;` or `,`); otherwise the default,
/// rather than echoing something that would change the value's meaning.
fn content_type(subtype: &[u8]) -> Bytes {
    let echo = !subtype.is_empty()
        && subtype
            .iter()
            .all(|&b| (0x21..=0x7E).contains(&b) && b != b';' && b != b',');
    if echo {
        let mut v = b"application/grpc+".to_vec();
        v.extend_from_slice(subtype);
        Bytes::from(v)
    } else {
        Bytes::from_static(b"application/grpc")
    }
}

/// A 400 with INTERNAL: what grpc-go answers for a header it cannot read.
fn bad_request(message: String) -> Rejection {
    Rejection::HttpStatus {
        status: 400,
        grpc_status: Status::internal(message),
    }
}

/// Every value of fields named `name`, in order.
fn values<'a>(fields: &'a [Field], name: &'a [u8]) -> impl Iterator<Item = &'a Bytes> + 'a {
    fields
        .iter()
        .filter(move |f| f.name == name)
        .map(|f| &f.value)
}

/// The value of the first field named `name`.
fn first<'a>(fields: &'a [Field], name: &[u8]) -> Option<&'a Bytes> {
    fields.iter().find(|f| f.name == name).map(|f| &f.value)
}

/// Splits `/service/method`: a leading `/`, exactly one more, both parts non-empty,
/// only visible ASCII. grpc-go is looser (the leading `/` is optional and it splits at
/// the last `/`), but a path it accepts and we do not names no registered method, so
/// both end UNIMPLEMENTED.
fn split_path(path: &[u8]) -> Option<(String, String)> {
    if !ascii::all(path, |b| (0x21..=0x7E).contains(&b)) {
        return None;
    }
    let rest = path.strip_prefix(b"/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (service, method) = (&rest[..slash], &rest[slash + 1..]);
    if service.is_empty() || method.is_empty() || method.contains(&b'/') {
        return None;
    }
    // Visible ASCII is UTF-8.
    let service = std::str::from_utf8(service).ok()?.to_owned();
    let method = std::str::from_utf8(method).ok()?.to_owned();
    Some((service, method))
}

impl RequestHead {
    /// Checks and parses a request's HEADERS. `now` is when they arrived; a
    /// `grpc-timeout` becomes the deadline `now + timeout`.
    ///
    /// The checks, in order (the first failing one answers), with grpc-go's answers:
    ///
    /// | request                                   | answer                                  |
    /// |-------------------------------------------|-----------------------------------------|
    /// | more than one `:authority` or `host`      | HTTP 400, INTERNAL (gRFC A41)           |
    /// | a connection-specific field               | RST_STREAM PROTOCOL_ERROR               |
    /// | `content-type` absent or not gRPC         | HTTP 415, INVALID_ARGUMENT              |
    /// | `grpc-timeout` malformed                  | HTTP 400, INTERNAL "malformed grpc-timeout" |
    /// | a `-bin` metadata value not base64        | HTTP 400, INTERNAL                      |
    /// | `te` other than `trailers`                | HTTP 400, INTERNAL (RFC 9113 §8.2.2)    |
    /// | `:method` not `POST` (or absent)          | HTTP 405, INTERNAL                      |
    /// | `:path` not `/service/method`             | Trailers-Only UNIMPLEMENTED "malformed method name" |
    /// | `grpc-encoding` not implemented           | Trailers-Only UNIMPLEMENTED + `grpc-accept-encoding` |
    ///
    /// Tolerated as grpc-go does: a missing `te` (the spec uses it only to detect
    /// proxies that drop trailers), a missing or any `:scheme`, a missing `:authority`.
    /// The `te` value check is RFC 9113's rule; grpc-go does not look at `te` at all.
    pub fn parse(fields: &[Field], now: Instant) -> Result<RequestHead, Rejection> {
        let authorities = values(fields, b":authority").count();
        let hosts = values(fields, b"host").count();
        if authorities > 1 || hosts > 1 {
            return Err(bad_request(format!(
                "num values of :authority: {authorities}, num values of host: {hosts}, \
                 both must only have 1 value as per HTTP/2 spec"
            )));
        }
        if fields
            .iter()
            .any(|f| CONNECTION_SPECIFIC.contains(&&f.name[..]))
        {
            return Err(Rejection::Reset(ErrorCode::ProtocolError));
        }

        let raw_content_type = first(fields, b"content-type");
        let Some(content_subtype) = raw_content_type.and_then(|ct| grpc_content_subtype(ct)) else {
            let sent = raw_content_type
                .map_or_else(String::new, |ct| String::from_utf8_lossy(ct).into_owned());
            return Err(Rejection::HttpStatus {
                status: 415,
                grpc_status: Status::invalid_argument(format!(
                    "invalid gRPC request content-type {sent:?}"
                )),
            });
        };
        let content_subtype = match raw_content_type {
            Some(ct) if !content_subtype.is_empty() => ct.slice_ref(content_subtype),
            _ => Bytes::new(),
        };

        let timeout = match first(fields, b"grpc-timeout") {
            None => None,
            Some(value) => match decode_timeout(value) {
                Ok(t) => Some(t),
                Err(e) => return Err(bad_request(format!("malformed grpc-timeout: {e}"))),
            },
        };
        let metadata = Metadata::from_fields(fields)
            .map_err(|e| bad_request(format!("malformed metadata: {e}")))?;
        if let Some(te) = first(fields, b"te")
            && te.as_ref() != b"trailers"
        {
            return Err(bad_request(format!(
                "te header {:?} must be \"trailers\"",
                String::from_utf8_lossy(te)
            )));
        }

        let method = first(fields, b":method");
        if method.map(|m| m.as_ref()) != Some(b"POST") {
            let sent = method.map_or_else(String::new, |m| String::from_utf8_lossy(m).into_owned());
            return Err(Rejection::HttpStatus {
                status: 405,
                grpc_status: Status::internal(format!(
                    "Received a HEADERS frame with :method {sent:?} which should be POST"
                )),
            });
        }

        // From here the request is gRPC: answer with a gRPC status (Trailers-Only).
        let grpc_reject = |status: Status, accept_encoding: bool| Rejection::Grpc {
            status,
            content_subtype: content_subtype.clone(),
            accept_encoding,
        };
        let path = first(fields, b":path").cloned().unwrap_or_default();
        let Some((service, method)) = split_path(&path) else {
            return Err(grpc_reject(
                Status::unimplemented(format!(
                    "malformed method name: {:?}",
                    String::from_utf8_lossy(&path)
                )),
                false,
            ));
        };

        let encoding = match first(fields, b"grpc-encoding") {
            None => None,
            Some(v) if v.is_empty() => None,
            Some(v) => match Encoding::from_header(v) {
                Some(e) => Some(e),
                None => {
                    return Err(grpc_reject(
                        Status::unimplemented(format!(
                            "grpc: Decompressor is not installed for grpc-encoding {:?}",
                            String::from_utf8_lossy(v)
                        )),
                        true,
                    ));
                }
            },
        };

        let accept: Vec<&Bytes> = values(fields, b"grpc-accept-encoding").collect();
        let accept_encoding = match accept.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => Some(Bytes::from(
                many.iter()
                    .map(|v| &v[..])
                    .collect::<Vec<_>>()
                    .join(&b","[..]),
            )),
        };

        Ok(RequestHead {
            path,
            service,
            method,
            authority: first(fields, b":authority")
                .or_else(|| first(fields, b"host"))
                .cloned(),
            // checked_add: a timeout past what Instant can hold is no deadline at all.
            deadline: timeout.and_then(|t| now.checked_add(t)),
            encoding,
            accept_encoding,
            user_agent: first(fields, b"user-agent").cloned(),
            metadata,
            content_subtype,
        })
    }

    /// True when the client listed `encoding` in `grpc-accept-encoding` (identity is
    /// always accepted): the response may be compressed with it.
    pub fn accepts(&self, encoding: Encoding) -> bool {
        encoding == Encoding::Identity
            || self
                .accept_encoding
                .as_ref()
                .is_some_and(|v| encoding.accepted_by(v))
    }
}

/// Builds the response HEADERS (PROTOCOL-HTTP2.md "Responses"): `:status 200`,
/// `content-type`, `grpc-encoding` when messages are compressed,
/// `grpc-accept-encoding`, then the custom metadata.
#[derive(Clone, Debug, Default)]
pub struct ResponseHeaders {
    content_subtype: Bytes,
    encoding: Option<Encoding>,
    metadata: Metadata,
}

impl ResponseHeaders {
    /// Plain `application/grpc`, uncompressed, no metadata.
    pub fn new() -> Self {
        ResponseHeaders::default()
    }

    /// Headers answering `head`: the request's content-subtype echoed (grpc-go does).
    pub fn for_request(head: &RequestHead) -> Self {
        ResponseHeaders::new().content_subtype(head.content_subtype.clone())
    }

    /// `content-type: application/grpc+{subtype}`; empty for plain `application/grpc`.
    pub fn content_subtype(mut self, subtype: impl Into<Bytes>) -> Self {
        self.content_subtype = subtype.into();
        self
    }

    /// The encoding the response messages are compressed with; anything but identity
    /// is announced in `grpc-encoding`.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// The custom metadata, sent after the gRPC headers.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The header list for the response's first HEADERS frame.
    pub fn build(&self) -> Vec<Header> {
        let mut out = Vec::with_capacity(4 + self.metadata.len());
        out.push(Header::new(":status", "200"));
        out.push(Header::new(
            "content-type",
            content_type(&self.content_subtype),
        ));
        if let Some(e) = self.encoding.filter(|&e| e != Encoding::Identity) {
            out.push(Header::new("grpc-encoding", e.name()));
        }
        out.push(Header::new("grpc-accept-encoding", ACCEPT_ENCODING));
        self.metadata.to_headers(&mut out);
        out
    }
}

/// The trailers that end a call after response headers: `grpc-status`, `grpc-message`
/// (percent-encoded) when the message is not empty, `grpc-status-details-bin` (base64)
/// when there are details, then the custom metadata.
pub fn trailers(status: &Status, metadata: &Metadata) -> Vec<Header> {
    let mut out = Vec::with_capacity(3 + metadata.len());
    status.to_headers(&mut out);
    metadata.to_headers(&mut out);
    out
}

/// A Trailers-Only response (PROTOCOL-HTTP2.md): `:status 200`, `content-type` (with
/// `content_subtype` when not empty), then the [`trailers`] fields, in one HEADERS
/// frame sent with END_STREAM. For a call that fails before any response headers.
pub fn trailers_only(status: &Status, metadata: &Metadata, content_subtype: &[u8]) -> Vec<Header> {
    let mut out = Vec::with_capacity(5 + metadata.len());
    out.push(Header::new(":status", "200"));
    out.push(Header::new("content-type", content_type(content_subtype)));
    status.to_headers(&mut out);
    metadata.to_headers(&mut out);
    out
}

/// What a [`RequestReader`] hands the application, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// One request message, decompressed and within the receive limit.
    Message(Bytes),
    /// The client finished sending (END_STREAM after whole messages). The call goes on:
    /// the server still sends its response.
    HalfClosed,
    /// The call failed on the request side: answer with this status (in trailers)
    /// unless the stream was reset. Always the last event.
    Failed(Status),
}

/// Where the request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The client may still send.
    Open,
    /// The client ended its side cleanly.
    HalfClosed,
    /// A failure was reported; every later input is ignored.
    Failed,
}

/// The server side of one call's incoming messages (sans-IO).
///
/// Feed it the stream's DATA ([`on_data`](Self::on_data)), request trailers if any
/// ([`on_trailers`](Self::on_trailers)) and a reset ([`on_reset`](Self::on_reset)); take
/// what it produced with [`poll_event`](Self::poll_event). It yields messages, then
/// either [`ServerEvent::HalfClosed`] or one [`ServerEvent::Failed`] (a failure may also
/// follow `HalfClosed`, when the client resets the stream while the server answers).
#[derive(Debug)]
pub struct RequestReader {
    phase: Phase,
    decoder: MessageDecoder,
    encoding: Option<Encoding>,
    /// Pending events, each message with the window bytes it holds.
    events: VecDeque<(ServerEvent, usize)>,
    /// Flow-control window held by undelivered messages.
    ledger: ReleaseLedger,
    reset: Option<ErrorCode>,
    /// The failure the request caused, if that is how the call ended.
    request_error: Option<Status>,
}

impl RequestReader {
    /// A reader for a call whose messages use `encoding` ([`RequestHead::encoding`]),
    /// with the default receive limit [`DEFAULT_MAX_RECV_MESSAGE_SIZE`].
    pub fn new(encoding: Option<Encoding>) -> Self {
        RequestReader::with_max_message_size(encoding, DEFAULT_MAX_RECV_MESSAGE_SIZE)
    }

    /// A reader that fails the call with RESOURCE_EXHAUSTED on a message longer than
    /// `max` bytes, on the wire or after decompression.
    pub fn with_max_message_size(encoding: Option<Encoding>, max: usize) -> Self {
        RequestReader {
            phase: Phase::Open,
            decoder: MessageDecoder::with_max_message_size(max),
            encoding,
            events: VecDeque::new(),
            ledger: ReleaseLedger::default(),
            reset: None,
            request_error: None,
        }
    }

    /// The next event, in order; `None` when nothing is pending.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
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

    /// True once the client's side is over: half-closed or failed.
    pub fn is_done(&self) -> bool {
        self.phase != Phase::Open
    }

    /// `Some(code)` when the reader failed the call while the client may still send:
    /// after sending the trailers with the failure's status, reset the stream with this
    /// code. NO_ERROR, as grpc-go does when it finishes a stream whose client side is
    /// still open (RFC 9113 §8.1: the response is complete, stop sending).
    pub fn must_reset(&self) -> Option<ErrorCode> {
        self.reset
    }

    /// A DATA payload. Complete messages become [`ServerEvent::Message`]s; a framing or
    /// decompression error fails the call with that error's code. With `end_stream` the
    /// client is done: [`ServerEvent::HalfClosed`], or INTERNAL if it stopped inside a
    /// message.
    ///
    /// Returns how many bytes to give back to the connection with `release_data` now:
    /// all of `data` except what complete messages waiting in
    /// [`poll_event`](Self::poll_event) hold; those are freed as the messages are taken
    /// ([`take_released`](Self::take_released)), as
    /// [`ResponseReader`](super::client::ResponseReader) does.
    pub fn on_data(&mut self, data: Bytes, end_stream: bool) -> usize {
        let len = data.len();
        if self.phase != Phase::Open {
            return len;
        }
        self.ledger.start_chunk(self.decoder.buffered_len());
        self.decoder.push(data);
        let held = self.drain(!end_stream);
        if end_stream {
            self.end_of_request();
        }
        len - held
    }

    /// Request trailers (HTTP/2 allows them; gRPC clients do not send them): they end
    /// the client's side like END_STREAM. Their fields are not used.
    pub fn on_trailers(&mut self, _fields: &[Field]) {
        if self.phase == Phase::Open {
            self.end_of_request();
        }
    }

    /// The client reset the stream: the call is cancelled, whatever the code (grpc-go
    /// cancels the handler's context on any RST_STREAM).
    pub fn on_reset(&mut self, code: ErrorCode) {
        if self.phase == Phase::Failed {
            return;
        }
        // The stream is gone: nothing left to reset.
        self.reset = None;
        self.fail(Status::cancelled(format!(
            "stream reset by the client with {code}"
        )));
    }

    /// Ends the request side with `status` from our side: the call's deadline passed,
    /// or the connection closed. No effect once a failure was reported.
    pub fn cancel(&mut self, status: Status) {
        if self.phase == Phase::Failed {
            return;
        }
        self.reset = None;
        self.fail(status);
    }

    /// The status of a failure the request itself caused (a message the reader
    /// refused, a stream ended inside a message), which the server should answer with;
    /// `None` without one, or when the call ended by a reset or [`cancel`](Self::cancel).
    pub fn request_error(&self) -> Option<&Status> {
        self.request_error.as_ref()
    }

    /// The client ended its side: half-closed, or INTERNAL when inside a message.
    fn end_of_request(&mut self) {
        if self.phase != Phase::Open {
            return;
        }
        if self.decoder.is_mid_message() {
            let status = Status::internal(format!(
                "client closed the stream in the middle of a message ({} bytes buffered)",
                self.decoder.buffered_len()
            ));
            self.request_error = Some(status.clone());
            self.fail(status);
        } else {
            self.phase = Phase::HalfClosed;
            self.events.push_back((ServerEvent::HalfClosed, 0));
        }
    }

    /// Takes every complete message out of the decoder. `open` says the client may
    /// still send, so a failure asks for a reset.
    ///
    /// Returns the bytes of the current chunk that the queued messages hold.
    fn drain(&mut self, open: bool) -> usize {
        let max = self.decoder.max_message_size();
        let mut held = 0;
        loop {
            let result = match self.decoder.next() {
                Ok(Some(msg)) => decode_payload(&msg, self.encoding, max)
                    .map(|payload| (payload, msg.data.len()))
                    .map_err(|e| Status::new(code_named(e.grpc_code_name()), e.to_string())),
                Ok(None) => return held,
                Err(e) => Err(Status::new(code_named(e.grpc_code_name()), e.to_string())),
            };
            match result {
                Ok((payload, wire_len)) => {
                    let hold = self.ledger.on_message(wire_len);
                    held += hold;
                    self.events.push_back((ServerEvent::Message(payload), hold));
                }
                Err(status) => {
                    if open {
                        self.reset = Some(ErrorCode::NoError);
                    }
                    self.request_error = Some(status.clone());
                    self.fail(status);
                    return held;
                }
            }
        }
    }

    /// Reports the one failure.
    fn fail(&mut self, status: Status) {
        if self.phase == Phase::Failed {
            return;
        }
        self.phase = Phase::Failed;
        self.events.push_back((ServerEvent::Failed(status), 0));
    }
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

    fn field(name: &str, value: &str) -> Field {
        Field {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            never_indexed: false,
        }
    }

    fn good_fields() -> Vec<Field> {
        vec![
            field(":method", "POST"),
            field(":scheme", "http"),
            field(":path", "/pkg.Svc/Do"),
            field(":authority", "example.com:50051"),
            field("te", "trailers"),
            field("content-type", "application/grpc"),
        ]
    }

    /// `good_fields` with `name` removed (when `value` is `None`) or set to `value`.
    fn with(name: &str, value: Option<&str>) -> Vec<Field> {
        let mut f: Vec<Field> = good_fields()
            .into_iter()
            .filter(|f| f.name != name.as_bytes())
            .collect();
        if let Some(v) = value {
            f.push(field(name, v));
        }
        f
    }

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

    fn assert_headers(h: &[Header], want: &[(&str, &str)]) {
        let got = names_values(h);
        let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn good_request_parses_every_field() {
        let now = crate::test_clock::t0();
        let mut fields = good_fields();
        fields.retain(|f| f.name != "content-type".as_bytes());
        fields.extend([
            field("content-type", "application/grpc+proto"),
            field("grpc-timeout", "1500m"),
            field("grpc-encoding", "gzip"),
            field("grpc-accept-encoding", "gzip"),
            field("grpc-accept-encoding", "identity"),
            field("user-agent", "grpc-go/1.70.0"),
            field("x-id", "7"),
            field("trace-bin", "/wAB"),
        ]);
        let head = RequestHead::parse(&fields, now).unwrap();
        assert_eq!(head.path, "/pkg.Svc/Do");
        assert_eq!(head.service, "pkg.Svc");
        assert_eq!(head.method, "Do");
        assert_eq!(head.authority.as_deref(), Some(&b"example.com:50051"[..]));
        assert_eq!(head.deadline, Some(now + Duration::from_millis(1500)));
        assert_eq!(head.encoding, Some(Encoding::Gzip));
        assert_eq!(head.accept_encoding.as_deref(), Some(&b"gzip,identity"[..]));
        assert!(head.accepts(Encoding::Gzip));
        assert_eq!(head.user_agent.as_deref(), Some(&b"grpc-go/1.70.0"[..]));
        assert_eq!(head.content_subtype, "proto");
        assert_eq!(head.metadata.len(), 2);
        assert_eq!(head.metadata.get_str("x-id"), Some("7"));
        assert_eq!(head.metadata.get("trace-bin").unwrap()[..], [0xff, 0, 1]);
        // Reserved fields never leak into metadata.
        assert!(!head.metadata.contains_key("user-agent"));
        assert!(!head.metadata.contains_key("te"));
    }

    #[test]
    fn minimal_request_defaults() {
        let now = crate::test_clock::t0();
        // No te, no :scheme, no :authority but a host: all tolerated, as grpc-go.
        let fields = vec![
            field(":method", "POST"),
            field(":path", "/a/b"),
            field("host", "h:1"),
            field("content-type", "application/grpc;charset=utf-8"),
            field("grpc-encoding", ""),
        ];
        let head = RequestHead::parse(&fields, now).unwrap();
        assert_eq!((&head.service[..], &head.method[..]), ("a", "b"));
        assert_eq!(head.authority.as_deref(), Some(&b"h:1"[..]));
        assert_eq!(head.deadline, None);
        assert_eq!(head.encoding, None);
        assert_eq!(head.accept_encoding, None);
        assert_eq!(head.user_agent, None);
        assert_eq!(head.content_subtype, "");
        assert!(head.metadata.is_empty());
        assert!(head.accepts(Encoding::Identity));
        assert!(!head.accepts(Encoding::Gzip));
        // A zero timeout is a deadline of now; the largest one is far but representable
        // or no deadline, never a panic.
        let head = RequestHead::parse(&with("grpc-timeout", Some("0n")), now).unwrap();
        assert_eq!(head.deadline, Some(now));
        let head = RequestHead::parse(&with("grpc-timeout", Some("99999999H")), now).unwrap();
        if let Some(d) = head.deadline {
            assert!(d > now);
        }
    }

    #[test]
    fn http_status_rejection_rows() {
        // (fields, HTTP status, gRPC code, message fragment)
        let mut dup_authority = good_fields();
        dup_authority.push(field(":authority", "other"));
        let mut dup_host = good_fields();
        dup_host.push(field("host", "a"));
        dup_host.push(field("host", "b"));
        let mut bad_bin = good_fields();
        bad_bin.push(field("foobar-bin", "X()3e@#$-"));
        let table: Vec<(Vec<Field>, u16, Code, &str)> = vec![
            (
                dup_authority,
                400,
                Code::Internal,
                "num values of :authority: 2",
            ),
            (dup_host, 400, Code::Internal, "num values of host: 2"),
            (
                with("content-type", None),
                415,
                Code::InvalidArgument,
                "invalid gRPC request content-type \"\"",
            ),
            (
                with("content-type", Some("application/json")),
                415,
                Code::InvalidArgument,
                "invalid gRPC request content-type \"application/json\"",
            ),
            (
                with("content-type", Some("application/grpcx")),
                415,
                Code::InvalidArgument,
                "application/grpcx",
            ),
            (
                with("content-type", Some("text/plain")),
                415,
                Code::InvalidArgument,
                "text/plain",
            ),
            (
                with("grpc-timeout", Some("18f6n")),
                400,
                Code::Internal,
                "malformed grpc-timeout",
            ),
            (
                with("grpc-timeout", Some("123456789S")),
                400,
                Code::Internal,
                "malformed grpc-timeout",
            ),
            (
                with("grpc-timeout", Some("")),
                400,
                Code::Internal,
                "malformed grpc-timeout",
            ),
            (bad_bin, 400, Code::Internal, "malformed metadata"),
            (
                with("te", Some("gzip")),
                400,
                Code::Internal,
                "must be \"trailers\"",
            ),
            (
                with(":method", Some("GET")),
                405,
                Code::Internal,
                "Received a HEADERS frame with :method \"GET\" which should be POST",
            ),
            (
                with(":method", Some("post")),
                405,
                Code::Internal,
                "which should be POST",
            ),
            (with(":method", None), 405, Code::Internal, ":method \"\""),
        ];
        for (fields, http, code, text) in table {
            let Err(rej) = RequestHead::parse(&fields, crate::test_clock::t0()) else {
                panic!("accepted {fields:?}");
            };
            let Rejection::HttpStatus {
                status,
                grpc_status,
            } = &rej
            else {
                panic!("{rej:?}");
            };
            assert_eq!(*status, http, "{text}");
            assert_eq!(grpc_status.code, code, "{text}");
            assert!(
                grpc_status.message.contains(text),
                "{}",
                grpc_status.message
            );
            assert_eq!(rej.reset_code(true), None);
            assert_eq!(rej.reset_code(false), Some(ErrorCode::NoError));
        }
    }

    #[test]
    fn http_status_rejection_headers() {
        let rej =
            RequestHead::parse(&with(":method", Some("GET")), crate::test_clock::t0()).unwrap_err();
        assert_headers(
            &rej.to_headers(),
            &[
                (":status", "405"),
                ("content-type", "application/grpc"),
                ("grpc-status", "13"),
                (
                    "grpc-message",
                    "Received a HEADERS frame with :method \"GET\" which should be POST",
                ),
            ],
        );
    }

    #[test]
    fn connection_specific_fields_reset() {
        for name in CONNECTION_SPECIFIC {
            let name = std::str::from_utf8(name).unwrap();
            let rej =
                RequestHead::parse(&with(name, Some("x")), crate::test_clock::t0()).unwrap_err();
            assert_eq!(rej, Rejection::Reset(ErrorCode::ProtocolError), "{name}");
            assert!(rej.to_headers().is_empty());
            assert_eq!(rej.reset_code(true), Some(ErrorCode::ProtocolError));
        }
    }

    #[test]
    fn path_rejection_rows() {
        let bad = [
            "",
            "/",
            "//",
            "foo",
            "pkg.Svc/Do",
            "/pkg.Svc",
            "/pkg.Svc/",
            "//Do",
            "/a/b/c",
            "/a b/c",
            "/a/ü",
        ];
        for path in bad {
            let rej = RequestHead::parse(&with(":path", Some(path)), crate::test_clock::t0())
                .unwrap_err();
            let Rejection::Grpc {
                status,
                accept_encoding,
                ..
            } = &rej
            else {
                panic!("{path:?}: {rej:?}");
            };
            assert_eq!(status.code, Code::Unimplemented, "{path:?}");
            assert!(
                status.message.starts_with("malformed method name"),
                "{}",
                status.message
            );
            assert!(!accept_encoding);
        }
        // A missing :path too.
        let rej = RequestHead::parse(&with(":path", None), crate::test_clock::t0()).unwrap_err();
        assert_headers(
            &rej.to_headers(),
            &[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "12"),
                ("grpc-message", "malformed method name: \"\""),
            ],
        );
    }

    #[test]
    fn unsupported_encoding_rejection() {
        let mut fields = with("content-type", Some("application/grpc+proto"));
        fields.push(field("grpc-encoding", "br"));
        let rej = RequestHead::parse(&fields, crate::test_clock::t0()).unwrap_err();
        assert_headers(
            &rej.to_headers(),
            &[
                (":status", "200"),
                ("content-type", "application/grpc+proto"),
                ("grpc-accept-encoding", "identity,gzip"),
                ("grpc-status", "12"),
                (
                    "grpc-message",
                    "grpc: Decompressor is not installed for grpc-encoding \"br\"",
                ),
            ],
        );
        assert_eq!(rej.reset_code(false), Some(ErrorCode::NoError));
        // Identity and gzip are fine.
        for (value, want) in [("identity", Encoding::Identity), ("gzip", Encoding::Gzip)] {
            let head =
                RequestHead::parse(&with("grpc-encoding", Some(value)), crate::test_clock::t0())
                    .unwrap();
            assert_eq!(head.encoding, Some(want));
        }
    }

    #[test]
    fn check_order_follows_grpc_go() {
        // A bad content-type wins over a bad method and path; a bad method over a path.
        let mut f = with(":method", Some("GET"));
        f.retain(|f| f.name != "content-type".as_bytes() && f.name != ":path".as_bytes());
        let rej = RequestHead::parse(&f, crate::test_clock::t0()).unwrap_err();
        assert!(matches!(rej, Rejection::HttpStatus { status: 415, .. }));
        let mut f = with(":method", Some("GET"));
        f.retain(|f| f.name != ":path".as_bytes());
        let rej = RequestHead::parse(&f, crate::test_clock::t0()).unwrap_err();
        assert!(matches!(rej, Rejection::HttpStatus { status: 405, .. }));
    }

    #[test]
    fn response_headers_order_and_values() {
        let mut md = Metadata::new();
        md.append("x-id", "7").unwrap();
        md.append("trace-bin", Bytes::from_static(&[0xff, 0x00, 0x01]))
            .unwrap();
        let h = ResponseHeaders::new()
            .content_subtype("proto")
            .encoding(Encoding::Gzip)
            .metadata(md)
            .build();
        assert_headers(
            &h,
            &[
                (":status", "200"),
                ("content-type", "application/grpc+proto"),
                ("grpc-encoding", "gzip"),
                ("grpc-accept-encoding", "identity,gzip"),
                ("x-id", "7"),
                ("trace-bin", "/wAB"),
            ],
        );
        // Defaults; identity is not announced; a subtype that cannot be echoed safely
        // falls back to the default.
        let expect = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-accept-encoding", "identity,gzip"),
        ];
        assert_headers(&ResponseHeaders::new().build(), &expect);
        let h = ResponseHeaders::new().encoding(Encoding::Identity).build();
        assert_headers(&h, &expect);
        let h = ResponseHeaders::new().content_subtype("a;b").build();
        assert_headers(&h, &expect);
        // for_request echoes the request's subtype.
        let head = RequestHead::parse(
            &with("content-type", Some("application/grpc+json")),
            crate::test_clock::t0(),
        )
        .unwrap();
        let h = ResponseHeaders::for_request(&head).build();
        assert_eq!(h[1].value, "application/grpc+json");
    }

    #[test]
    fn trailers_and_trailers_only_exact() {
        let mut md = Metadata::new();
        md.append("x-t", "v").unwrap();
        let status = Status::with_details(Code::NotFound, "ключ 100%", &[1u8, 2, 3][..]);
        let want_status = [
            ("grpc-status", "5"),
            ("grpc-message", "%D0%BA%D0%BB%D1%8E%D1%87 100%25"),
            ("grpc-status-details-bin", "AQID"),
        ];
        let mut want: Vec<(&str, &str)> = want_status.to_vec();
        want.push(("x-t", "v"));
        assert_headers(&trailers(&status, &md), &want);

        let mut want_only = vec![
            (":status", "200"),
            ("content-type", "application/grpc+proto"),
        ];
        want_only.extend(want.iter().copied());
        assert_headers(&trailers_only(&status, &md, b"proto"), &want_only);

        // OK: no grpc-message, no details.
        assert_headers(
            &trailers(&Status::ok(), &Metadata::new()),
            &[("grpc-status", "0")],
        );
        assert_headers(
            &trailers_only(&Status::ok(), &Metadata::new(), b""),
            &[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "0"),
            ],
        );
    }

    // ---- request reader ----

    fn frame(data: &[u8], compressed: bool) -> Bytes {
        let mut out = BytesMut::new();
        encode_message_into(data, compressed, usize::MAX, &mut out).unwrap();
        out.freeze()
    }

    fn events(r: &mut RequestReader) -> Vec<ServerEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    fn msg(b: &'static [u8]) -> ServerEvent {
        ServerEvent::Message(Bytes::from_static(b))
    }

    #[test]
    fn messages_across_chunks() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&frame(b"hello", false));
        wire.extend_from_slice(&frame(b"", false));
        wire.extend_from_slice(&frame(b"world!", false));
        let wire = wire.freeze();
        // Every split point, including inside prefixes.
        for cut in 0..=wire.len() {
            let mut r = RequestReader::new(None);
            let now = r.on_data(wire.slice(..cut), false) + r.on_data(wire.slice(cut..), true);
            // Complete messages hold their bytes until taken; every byte comes back.
            assert!(now < wire.len(), "cut {cut}");
            assert_eq!(r.take_released(), 0);
            assert!(r.is_done());
            assert_eq!(
                events(&mut r),
                [
                    msg(b"hello"),
                    msg(b""),
                    msg(b"world!"),
                    ServerEvent::HalfClosed
                ],
                "cut {cut}"
            );
            assert_eq!(now + r.take_released(), wire.len(), "cut {cut}");
            assert_eq!(r.must_reset(), None);
        }
        // END_STREAM on an empty DATA frame after the messages.
        let mut r = RequestReader::new(None);
        r.on_data(frame(b"x", false), false);
        r.on_data(Bytes::new(), true);
        assert_eq!(events(&mut r), [msg(b"x"), ServerEvent::HalfClosed]);
        // Request trailers end the request the same way.
        let mut r = RequestReader::new(None);
        r.on_data(frame(b"x", false), false);
        r.on_trailers(&[field("x-t", "1")]);
        assert_eq!(events(&mut r), [msg(b"x"), ServerEvent::HalfClosed]);
    }

    #[test]
    fn gzip_messages() {
        let mut z = BytesMut::new();
        compress(Encoding::Gzip, b"compressed hello", &mut z).unwrap();
        let mut r = RequestReader::new(Some(Encoding::Gzip));
        r.on_data(frame(&z, true), false);
        // An uncompressed message on a gzip call is fine too.
        r.on_data(frame(b"plain", false), true);
        assert_eq!(
            events(&mut r),
            [
                msg(b"compressed hello"),
                msg(b"plain"),
                ServerEvent::HalfClosed
            ]
        );
    }

    #[test]
    fn message_error_rows() {
        let mut big_gzip = BytesMut::new();
        compress(Encoding::Gzip, &[0u8; 100], &mut big_gzip).unwrap();
        let mut bad_flag = frame(b"x", false).to_vec();
        bad_flag[0] = 2;
        let table: [(Option<Encoding>, Bytes, Code, &str); 6] = [
            (
                None,
                frame(&[0u8; 65], false),
                Code::ResourceExhausted,
                "larger than max (65 vs. 64)",
            ),
            (
                Some(Encoding::Gzip),
                frame(&big_gzip, true),
                Code::ResourceExhausted,
                "after decompression larger than max 64",
            ),
            (None, frame(b"x", true), Code::Internal, ""),
            (
                Some(Encoding::Identity),
                frame(b"x", true),
                Code::Internal,
                "",
            ),
            (
                Some(Encoding::Gzip),
                frame(b"not gzip", true),
                Code::Internal,
                "decompress",
            ),
            (
                None,
                Bytes::from(bad_flag),
                Code::Internal,
                "payload format 2",
            ),
        ];
        for (encoding, data, code, text) in table {
            for end_stream in [false, true] {
                let mut r = RequestReader::with_max_message_size(encoding, 64);
                assert_eq!(r.on_data(data.clone(), end_stream), data.len());
                // Ignored after the failure, still released.
                assert_eq!(r.on_data(frame(b"late", false), true), 9);
                r.on_reset(ErrorCode::Cancel);
                let evs = events(&mut r);
                assert_eq!(evs.len(), 1, "{evs:?}");
                let ServerEvent::Failed(s) = &evs[0] else {
                    panic!("{evs:?}")
                };
                assert_eq!(s.code, code, "{encoding:?}");
                assert!(s.message.contains(text), "{}", s.message);
                let want = (!end_stream).then_some(ErrorCode::NoError);
                assert_eq!(r.must_reset(), want);
                assert!(r.is_done());
            }
        }
    }

    #[test]
    fn stream_ends_mid_message() {
        let whole = frame(b"abcdef", false);
        for cut in [1, 4, 5, 8] {
            let mut r = RequestReader::new(None);
            r.on_data(whole.slice(..cut), true);
            let evs = events(&mut r);
            let [ServerEvent::Failed(s)] = &evs[..] else {
                panic!("{evs:?}")
            };
            assert_eq!(s.code, Code::Internal);
            assert!(s.message.contains("middle of a message"), "{}", s.message);
            // The client's side is closed: nothing to reset.
            assert_eq!(r.must_reset(), None);
        }
    }

    #[test]
    fn reset_rows() {
        for code in [
            ErrorCode::Cancel,
            ErrorCode::NoError,
            ErrorCode::InternalError,
        ] {
            // Before, during and after the request.
            for stage in 0..3 {
                let mut r = RequestReader::new(None);
                let mut want = Vec::new();
                if stage >= 1 {
                    r.on_data(frame(b"m", false), false);
                    want.push(msg(b"m"));
                }
                if stage == 2 {
                    r.on_data(Bytes::new(), true);
                    want.push(ServerEvent::HalfClosed);
                }
                r.on_reset(code);
                r.on_reset(code);
                let evs = events(&mut r);
                assert_eq!(evs[..want.len()], want[..]);
                let [ServerEvent::Failed(s)] = &evs[want.len()..] else {
                    panic!("{evs:?}")
                };
                assert_eq!(s.code, Code::Cancelled);
                assert!(s.message.contains(&code.to_string()), "{}", s.message);
                assert_eq!(r.must_reset(), None);
            }
        }
    }

    #[test]
    fn code_names_map_back() {
        for code in Code::ALL {
            assert_eq!(code_named(code.name()), code);
        }
        assert_eq!(code_named("NOPE"), Code::Internal);
    }
}
