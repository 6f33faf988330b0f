//! The server side: requests validated into calls, responses written lazily.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{CallError, CallId, Deadlines, MessageLimits, frame_message, withhold};
use crate::ErrorCode;
use crate::frame::StreamId;
use crate::grpc::compression::Encoding;
use crate::grpc::message::AssemblyPool;
use crate::grpc::metadata::Metadata;
use crate::grpc::server::{
    RequestHead, RequestReader, ResponseHeaders, ServerEvent, trailers, trailers_only,
};
use crate::grpc::status::Status;
use crate::h2::{CommandError, Config, Connection, Event, Role, Transmit};
use crate::id_map::IdMap;

/// What a [`ServerTransport`] tells its owner, from
/// [`poll_event`](ServerTransport::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerTransportEvent {
    /// The client's preface and SETTINGS arrived.
    Connected,
    /// A valid gRPC request arrived: dispatch it by `head.path`. Its messages follow
    /// through [`poll_call`](ServerTransport::poll_call). (Requests that are not valid
    /// gRPC are answered by the transport itself and never reported.)
    NewCall {
        /// The call.
        call: CallId,
        /// Its checked request headers.
        head: Box<RequestHead>,
    },
    /// The call has events to take with [`poll_call`](ServerTransport::poll_call).
    /// Reported again only after `poll_call` has returned `None`.
    CallReadable(CallId),
    /// The call's send buffer, full before, has room again.
    CallWritable(CallId),
    /// A PING sent with [`ping`](ServerTransport::ping) was answered.
    PingAck {
        /// Its payload.
        payload: [u8; 8],
        /// Round-trip time.
        rtt: Duration,
    },
    /// The connection is over; every call on it has ended.
    Closed(crate::h2::CloseReason),
}

/// One call's state.
#[derive(Debug)]
struct ServerCall {
    reader: RequestReader,
    content_subtype: Bytes,
    accept_encoding: Option<Bytes>,
    encoding: Encoding,
    headers_sent: bool,
    /// The stream is gone (reset either way, or the call timed out): nothing more is
    /// sent, `finish` only forgets the call.
    stream_gone: bool,
    deadline: Option<Instant>,
    unreleased: usize,
    /// Part of `unreleased`: freed by the reader while the handler was behind (see
    /// [`withhold`]).
    withheld: usize,
    notified: bool,
}

/// The server side of gRPC over one HTTP/2 connection (grpc-go's `http2Server`).
///
/// Each valid request becomes a [`ServerTransportEvent::NewCall`]; invalid ones are
/// answered here (an HTTP status, a Trailers-Only status, or a reset). The handler
/// reads request messages with [`poll_call`](Self::poll_call), answers with
/// [`send_message`](Self::send_message) (response headers go out lazily with the first
/// message, or explicitly with [`send_headers`](Self::send_headers)) and ends the call
/// with [`finish`](Self::finish) (trailers, or a Trailers-Only response when nothing was
/// sent). The request's `grpc-timeout` is enforced: at the deadline the client gets
/// `grpc-status: 4` (then RST_STREAM NO_ERROR if it was still sending) and the handler
/// reads [`ServerEvent::Failed`] DEADLINE_EXCEEDED. A call
/// lives until `finish` or [`forget`](Self::forget).
#[derive(Debug)]
pub struct ServerTransport {
    conn: Connection,
    calls: IdMap<u32, ServerCall>,
    deadlines: Deadlines,
    events: VecDeque<ServerTransportEvent>,
    limits: MessageLimits,
    /// Assembly buffers of finished calls, for the next ones.
    assembly: AssemblyPool,
    now: Instant,
}

impl ServerTransport {
    /// A server transport over a new connection (`config` is normally
    /// [`Config::server`]).
    pub fn new(config: Config, limits: MessageLimits, now: Instant) -> ServerTransport {
        ServerTransport {
            conn: Connection::new(Role::Server, config, now),
            calls: IdMap::default(),
            deadlines: Deadlines::default(),
            events: VecDeque::new(),
            limits,
            assembly: AssemblyPool::new(),
            now,
        }
    }

    /// The HTTP/2 connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Calls reported and not yet finished or forgotten.
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Whether to read from the socket now (see [`Connection::wants_read`]).
    pub fn wants_read(&self) -> bool {
        self.conn.wants_read()
    }

    /// Bytes read from the socket.
    pub fn recv(&mut self, data: BytesMut, now: Instant) {
        self.now = self.now.max(now);
        self.conn.recv(data, now);
        self.pump();
    }

    /// The socket reached EOF or failed.
    pub fn recv_eof(&mut self) {
        self.conn.recv_eof();
        self.pump();
    }

    /// Appends what to write next to `out`; returns the bytes added (0 when idle).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Transmit) -> usize {
        self.now = self.now.max(now);
        let n = self.conn.poll_transmit(now, out);
        self.pump();
        n
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conn.poll_timeout(), self.deadlines.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: connection timers, and calls past their `grpc-timeout` end: the
    /// client gets DEADLINE_EXCEEDED in trailers, the stream is then reset with CANCEL,
    /// and the handler reads `Failed(DEADLINE_EXCEEDED)`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.conn.handle_timeout(now);
        self.pump();
        for id in self.deadlines.expired(self.now) {
            let Some(call) = self.calls.get_mut(&id.0.value()) else {
                continue;
            };
            call.deadline = None;
            let status = Status::deadline_exceeded("deadline exceeded");
            if !call.stream_gone {
                call.stream_gone = true;
                // The client learns why (grpc-status 4, as grpc-go and C-core servers
                // answer). The response is then complete, so the reset that stops the
                // client's sending is NO_ERROR (RFC 9113 §8.1, as grpc-go's server
                // does): a CANCEL racing the trailers made C-core report CANCELLED.
                let fields = if call.headers_sent {
                    trailers(&status, &Metadata::new())
                } else {
                    trailers_only(&status, &Metadata::new(), &call.content_subtype)
                };
                if self.conn.send_headers(id.0, fields, true).is_ok() {
                    let _ = self.conn.reset_after_end(id.0, ErrorCode::NoError);
                } else {
                    let _ = self.conn.reset(id.0, ErrorCode::Cancel);
                }
            }
            call.reader.cancel(status);
            self.notify(id);
        }
    }

    /// The next event; `None` when there is none.
    pub fn poll_event(&mut self) -> Option<ServerTransportEvent> {
        self.events.pop_front()
    }

    /// Sends a PING.
    pub fn ping(&mut self, payload: [u8; 8]) -> Result<(), CommandError> {
        self.conn.ping(payload)
    }

    /// Graceful shutdown (two-phase GOAWAY): calls already started finish, new ones
    /// are refused, then the connection closes.
    pub fn shutdown(&mut self) {
        self.conn.shutdown();
        self.pump();
    }

    /// Closes at once with GOAWAY `code`.
    pub fn close(&mut self, code: ErrorCode, reason: &'static str) {
        self.conn.close(code, reason);
        self.pump();
    }

    /// The next event of the call's request: messages, then
    /// [`ServerEvent::HalfClosed`] or one [`ServerEvent::Failed`]. Taking a message
    /// gives its bytes back to flow control.
    pub fn poll_call(&mut self, id: CallId) -> Option<ServerEvent> {
        let call = self.calls.get_mut(&id.0.value())?;
        let event = call.reader.poll_event();
        let mut released = call.reader.take_released();
        if event.is_none() {
            // Caught up: what was held back for a slow handler may flow again.
            released += std::mem::take(&mut call.withheld);
        }
        if released > 0 {
            call.unreleased -= released;
            let _ = self.conn.release_data(id.0, released);
        }
        if event.is_none() {
            call.notified = false;
        }
        event
    }

    /// Compresses the response messages with `encoding`; only before the response
    /// headers, and only with an encoding the client accepts.
    pub fn set_compression(&mut self, id: CallId, encoding: Encoding) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(&id.0.value())
            .ok_or(CallError::UnknownCall)?;
        if call.headers_sent {
            return Err(CallError::HeadersAlreadySent);
        }
        let accepted = encoding == Encoding::Identity
            || call
                .accept_encoding
                .as_ref()
                .is_some_and(|v| encoding.accepted_by(v));
        if !accepted {
            return Err(CallError::EncodingNotAccepted(encoding));
        }
        call.encoding = encoding;
        Ok(())
    }

    /// Sends the response headers now, with `metadata`. Optional: the first message
    /// sends them without metadata otherwise.
    pub fn send_headers(&mut self, id: CallId, metadata: Metadata) -> Result<(), CallError> {
        let call = self.live_call(id)?;
        if call.headers_sent {
            return Err(CallError::HeadersAlreadySent);
        }
        let headers = ResponseHeaders::new()
            .content_subtype(call.content_subtype.clone())
            .encoding(call.encoding)
            .metadata(metadata)
            .build();
        self.conn.send_headers(id.0, headers, false)?;
        if let Some(call) = self.calls.get_mut(&id.0.value()) {
            call.headers_sent = true;
        }
        Ok(())
    }

    /// Sends one response message (framed, compressed per
    /// [`set_compression`](Self::set_compression)), after the response headers.
    pub fn send_message(&mut self, id: CallId, message: Bytes) -> Result<(), CallError> {
        let call = self.live_call(id)?;
        let (head, body) = frame_message(message, call.encoding, self.limits.max_send)?;
        if !call.headers_sent {
            self.send_headers(id, Metadata::new())?;
        }
        self.conn.send_data(id.0, head, false)?;
        if let Some(body) = body {
            self.conn.send_data(id.0, body, false)?;
        }
        Ok(())
    }

    /// True while the call can still carry responses (not finished, stream not gone).
    pub fn can_send(&self, id: CallId) -> bool {
        self.calls
            .get(&id.0.value())
            .is_some_and(|c| !c.stream_gone)
    }

    /// Bytes the call may still queue before its send buffer is full.
    pub fn send_capacity(&self, id: CallId) -> usize {
        self.conn.send_capacity(id.0)
    }

    /// Ends the call with `status` and trailing `metadata`: trailers after a response,
    /// or a Trailers-Only response when no headers were sent. If the client is still
    /// sending, its stream is then reset with NO_ERROR (RFC 9113 §8.1). The call is
    /// gone afterwards. On a call whose stream is already gone this only forgets it.
    pub fn finish(
        &mut self,
        id: CallId,
        status: &Status,
        metadata: &Metadata,
    ) -> Result<(), CallError> {
        let call = self
            .calls
            .get(&id.0.value())
            .ok_or(CallError::UnknownCall)?;
        if call.stream_gone {
            self.remove(id);
            return Ok(());
        }
        let fields = if call.headers_sent {
            trailers(status, metadata)
        } else {
            trailers_only(status, metadata, &call.content_subtype)
        };
        let client_done = call.reader.is_done();
        let result = self.conn.send_headers(id.0, fields, true);
        if result.is_ok() && !client_done {
            let _ = self.conn.reset_after_end(id.0, ErrorCode::NoError);
        }
        self.remove(id);
        self.pump();
        result.map_err(CallError::from)
    }

    /// The handler is gone: a call not yet finished is reset with CANCEL, and
    /// everything it held is released.
    pub fn forget(&mut self, id: CallId) {
        if let Some(call) = self.calls.get(&id.0.value()) {
            if !call.stream_gone {
                let _ = self.conn.reset(id.0, ErrorCode::Cancel);
            }
            self.remove(id);
            self.pump();
        }
    }

    /// A call whose stream can still carry a response.
    fn live_call(&self, id: CallId) -> Result<&ServerCall, CallError> {
        let call = self
            .calls
            .get(&id.0.value())
            .ok_or(CallError::UnknownCall)?;
        if call.stream_gone {
            return Err(CallError::SendClosed);
        }
        Ok(call)
    }

    fn remove(&mut self, id: CallId) {
        if let Some(mut call) = self.calls.remove(&id.0.value()) {
            call.reader.return_buffers(&mut self.assembly);
            if let Some(at) = call.deadline {
                self.deadlines.remove(at, id);
            }
            if call.unreleased > 0 {
                let _ = self.conn.release_data(id.0, call.unreleased);
            }
        }
    }

    fn notify(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id.0.value())
            && !call.notified
        {
            call.notified = true;
            self.events
                .push_back(ServerTransportEvent::CallReadable(id));
        }
    }

    /// Routes the connection's events to the calls.
    fn pump(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Connected => self.events.push_back(ServerTransportEvent::Connected),
                Event::Headers {
                    stream_id,
                    fields,
                    end_stream,
                } => {
                    self.on_request(stream_id, &fields, end_stream);
                    self.conn.recycle_fields(fields);
                }
                Event::Data {
                    stream_id,
                    data,
                    end_stream,
                } => {
                    let n = data.len();
                    let free_now = match self.calls.get_mut(&stream_id.value()) {
                        Some(call) => {
                            let free = call.reader.on_data(data, end_stream);
                            withhold(
                                free,
                                n,
                                call.notified,
                                &mut call.unreleased,
                                &mut call.withheld,
                            )
                        }
                        None => n,
                    };
                    if free_now > 0 {
                        let _ = self.conn.release_data(stream_id, free_now);
                    }
                    self.after_input(CallId(stream_id));
                }
                Event::Trailers { stream_id, fields } => {
                    if let Some(call) = self.calls.get_mut(&stream_id.value()) {
                        call.reader.on_trailers(&fields);
                        self.after_input(CallId(stream_id));
                    }
                    self.conn.recycle_fields(fields);
                }
                Event::StreamReset { stream_id, reset } => {
                    if let Some(call) = self.calls.get_mut(&stream_id.value()) {
                        call.stream_gone = true;
                        if reset.reason == crate::h2::CONNECTION_CLOSED_REASON {
                            let reason = self
                                .conn
                                .close_reason()
                                .map_or_else(|| "transport closed".to_owned(), |r| r.to_string());
                            call.reader
                                .cancel(Status::cancelled(format!("connection closed: {reason}")));
                        } else {
                            call.reader.on_reset(reset.code);
                        }
                        self.notify(CallId(stream_id));
                    }
                }
                Event::StreamWritable { stream_id } => {
                    if self.calls.contains_key(&stream_id.value()) {
                        self.events
                            .push_back(ServerTransportEvent::CallWritable(CallId(stream_id)));
                    }
                }
                Event::PingAck { payload, rtt } => self
                    .events
                    .push_back(ServerTransportEvent::PingAck { payload, rtt }),
                Event::Closed { reason } => {
                    self.events.push_back(ServerTransportEvent::Closed(reason));
                }
                // A server opens no streams and gets no GOAWAY worth acting on beyond
                // what the connection does (it drains and closes by itself).
                Event::RemoteSettings(_) | Event::GoAway { .. } | Event::StreamIdsExhausted => {}
            }
        }
    }

    /// A request's HEADERS: a new call, or an answer to a request that is not gRPC.
    fn on_request(
        &mut self,
        stream_id: StreamId,
        fields: &[crate::hpack::Field],
        end_stream: bool,
    ) {
        let head = match RequestHead::parse(fields, self.now) {
            Ok(head) => head,
            Err(rejection) => {
                let headers = rejection.to_headers();
                if !headers.is_empty() {
                    let _ = self.conn.send_headers(stream_id, headers, true);
                }
                match rejection.reset_code(end_stream) {
                    Some(code) if rejection.to_headers().is_empty() => {
                        let _ = self.conn.reset(stream_id, code);
                    }
                    Some(code) => {
                        let _ = self.conn.reset_after_end(stream_id, code);
                    }
                    None => {}
                }
                return;
            }
        };
        let id = CallId(stream_id);
        let mut reader = RequestReader::with_max_message_size(head.encoding, self.limits.max_recv);
        reader.draw_buffers(&mut self.assembly);
        if end_stream {
            reader.on_data(Bytes::new(), true);
        }
        if let Some(at) = head.deadline {
            self.deadlines.insert(at, id);
        }
        self.calls.insert(
            stream_id.value(),
            ServerCall {
                reader,
                content_subtype: head.content_subtype.clone(),
                accept_encoding: head.accept_encoding.clone(),
                encoding: Encoding::Identity,
                headers_sent: false,
                stream_gone: false,
                deadline: head.deadline,
                unreleased: 0,
                withheld: 0,
                notified: false,
            },
        );
        self.events.push_back(ServerTransportEvent::NewCall {
            call: id,
            head: Box::new(head),
        });
        if end_stream {
            self.notify(id);
        }
    }

    /// After the call's reader took input: a request the reader refused is answered
    /// with its status at once (the handler also reads the failure), and the owner is
    /// told there is something to read.
    fn after_input(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id.0.value()) else {
            return;
        };
        if let Some(status) = call.reader.request_error().cloned()
            && !call.stream_gone
        {
            let _ = self.finish_keep(id, &status);
        }
        self.notify(id);
    }

    /// Sends the final status for a call the request itself failed, keeping the call
    /// so the handler still reads the failure.
    fn finish_keep(&mut self, id: CallId, status: &Status) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(&id.0.value())
            .ok_or(CallError::UnknownCall)?;
        call.stream_gone = true;
        let fields = if call.headers_sent {
            trailers(status, &Metadata::new())
        } else {
            trailers_only(status, &Metadata::new(), &call.content_subtype)
        };
        let reset = call.reader.must_reset();
        self.conn.send_headers(id.0, fields, true)?;
        if let Some(code) = reset {
            let _ = self.conn.reset_after_end(id.0, code);
        }
        Ok(())
    }
}
