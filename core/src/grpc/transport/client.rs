//! The client side: calls opened as streams, their responses read into statuses.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{CallError, CallId, Deadlines, MessageLimits, frame_message, withhold};
use crate::ErrorCode;
use crate::frame::StreamId;
use crate::grpc::client::{
    ClientEvent, EventQueue, RequestHeaders, RequestHeadersError, ResponseReader,
};
use crate::grpc::compression::Encoding;
use crate::grpc::message::AssemblyPool;
use crate::grpc::status::Status;
use crate::h2::{
    CONNECTION_CLOSED_REASON, CloseReason, CommandError, Config, Connection, Event, Initiator,
    Role, Transmit,
};
use crate::id_map::IdMap;
use crate::spares::Spares;

/// What a [`ClientTransport`] tells its owner, from
/// [`poll_event`](ClientTransport::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTransportEvent {
    /// The server's preface and SETTINGS arrived: the transport is ready for calls.
    Connected,
    /// The call has events to take with [`poll_call`](ClientTransport::poll_call).
    /// Reported again only after `poll_call` has returned `None`.
    CallReadable(CallId),
    /// The call's send buffer, full before, has room again.
    CallWritable(CallId),
    /// The server sent GOAWAY: start no more calls here. Calls above
    /// `last_stream_id` end UNAVAILABLE and may be retried elsewhere
    /// ([`transparent_retry_ok`](ClientTransport::transparent_retry_ok)).
    GoAway {
        /// The last stream the server will process.
        last_stream_id: StreamId,
        /// Its code.
        code: ErrorCode,
        /// Its debug data.
        debug_data: Bytes,
    },
    /// A PING sent with [`ping`](ClientTransport::ping) was answered.
    PingAck {
        /// Its payload.
        payload: [u8; 8],
        /// Round-trip time.
        rtt: Duration,
    },
    /// Stream ids are used up: open a new connection for new calls.
    StreamIdsExhausted,
    /// The connection is over; every call on it has ended.
    Closed(CloseReason),
}

/// Why a call could not start. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartCallError {
    /// The request headers are invalid (the caller's mistake).
    Headers(RequestHeadersError),
    /// The connection takes no new streams.
    Connection(CommandError),
}

impl StartCallError {
    /// True when the call may simply be started on another connection (this one is
    /// closing, closed or out of stream ids).
    pub fn is_unprocessed(&self) -> bool {
        matches!(self, StartCallError::Connection(_))
    }

    /// The status a caller reports: INTERNAL for bad headers, UNAVAILABLE for a
    /// connection that takes no new calls.
    pub fn to_status(&self) -> Status {
        match self {
            StartCallError::Headers(e) => Status::internal(e.to_string()),
            StartCallError::Connection(e) => Status::unavailable(format!("transport: {e}")),
        }
    }
}

impl fmt::Display for StartCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartCallError::Headers(e) => e.fmt(f),
            StartCallError::Connection(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for StartCallError {}

/// One call's state.
#[derive(Debug)]
struct ClientCall {
    reader: ResponseReader,
    deadline: Option<Instant>,
    encoding: Encoding,
    /// This call's send limit.
    max_send: usize,
    /// Bytes received and not yet given back to flow control.
    unreleased: usize,
    /// Part of `unreleased`: bytes the reader freed (a message still being assembled)
    /// while the application had events it had not taken. See [`withhold`].
    withheld: usize,
    /// A `CallReadable` was reported and `poll_call` has not yet come up empty.
    notified: bool,
    /// The stream was reset by us (or needs no reset any more).
    reset_done: bool,
    /// We sent END_STREAM (or can send nothing more).
    send_closed: bool,
    /// We ended the call (cancel, deadline): its stream is reset with CANCEL.
    local_reset: bool,
}

/// The client side of gRPC over one HTTP/2 connection (grpc-go's `http2Client`).
///
/// Start a call with [`start_call`](Self::start_call), send its messages with
/// [`send_message`](Self::send_message) (the last one with `last = true`, or
/// [`close_send`](Self::close_send)), and take its response with
/// [`poll_call`](Self::poll_call) when [`ClientTransportEvent::CallReadable`] says so:
/// [`ClientEvent::Headers`], messages, then exactly one [`ClientEvent::Status`], after
/// which the call is gone. A call's deadline is enforced by
/// [`handle_timeout`](Self::handle_timeout): the stream is reset with CANCEL and the
/// status is DEADLINE_EXCEEDED. [`cancel`](Self::cancel) does the same with CANCELLED;
/// [`forget`](Self::forget) drops a call whose handle the application dropped.
#[derive(Debug)]
pub struct ClientTransport {
    conn: Connection,
    calls: IdMap<u32, ClientCall>,
    deadlines: Deadlines,
    events: VecDeque<ClientTransportEvent>,
    limits: MessageLimits,
    /// Assembly buffers of finished calls, for the next ones.
    assembly: AssemblyPool,
    /// Event queues of finished calls, for the next ones: enough for calls that end
    /// and start in the same turn, a few hundred bytes each.
    spare_queues: Spares<EventQueue>,
    now: Instant,
}

impl ClientTransport {
    /// A client transport over a new connection (`config` is normally
    /// [`Config::client`]); the preface and SETTINGS go out with the first
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn new(config: Config, limits: MessageLimits, now: Instant) -> ClientTransport {
        ClientTransport {
            conn: Connection::new(Role::Client, config, now),
            calls: IdMap::default(),
            deadlines: Deadlines::default(),
            events: VecDeque::new(),
            limits,
            assembly: AssemblyPool::new(),
            // One per call of a burst while calls are open (see `Spares`).
            spare_queues: Spares::with_idle(64, 4, 8),
            now,
        }
    }

    /// The HTTP/2 connection underneath (state, settings, counters).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Calls started and not yet finished or forgotten.
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

    /// The socket reached EOF or failed: every open call ends UNAVAILABLE.
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

    /// True when [`poll_transmit`](Self::poll_transmit) has something to write now.
    pub fn wants_transmit(&self) -> bool {
        self.conn.wants_transmit()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the connection's
    /// timers and the earliest call deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.conn.poll_timeout(), self.deadlines.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: connection timers, and calls past their deadline end
    /// DEADLINE_EXCEEDED (their streams reset with CANCEL).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        // The connection trims its reuse pools a while after its last stream closed;
        // the transport's pool goes with them.
        let trim = self.conn.spares_trim_at().is_some_and(|at| now >= at);
        self.conn.handle_timeout(now);
        if trim {
            self.spare_queues.trim();
        }
        self.pump();
        for id in self.deadlines.expired(self.now) {
            if let Some(call) = self.calls.get_mut(&id.0.value()) {
                call.deadline = None;
            }
            self.end_locally(id, Status::deadline_exceeded("deadline exceeded"));
        }
    }

    /// The next event; `None` when there is none.
    pub fn poll_event(&mut self) -> Option<ClientTransportEvent> {
        self.events.pop_front()
    }

    /// True when [`poll_event`](Self::poll_event) has something to return.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Sends a PING ([`ClientTransportEvent::PingAck`] reports the round trip).
    pub fn ping(&mut self, payload: [u8; 8]) -> Result<(), CommandError> {
        self.conn.ping(payload)
    }

    /// Graceful shutdown: no new calls; the open ones finish, then the connection
    /// closes.
    pub fn shutdown(&mut self) {
        self.conn.shutdown();
        self.pump();
    }

    /// Closes at once with GOAWAY `code`; every open call ends UNAVAILABLE.
    pub fn close(&mut self, code: ErrorCode, reason: &'static str) {
        self.conn.close(code, reason);
        self.pump();
    }

    /// Starts a call: its HEADERS are queued (sent once the server's concurrency limit
    /// allows). The headers' deadline, if any, is enforced from now on.
    pub fn start_call(
        &mut self,
        headers: &RequestHeaders,
        now: Instant,
    ) -> Result<CallId, StartCallError> {
        self.start_call_with_limits(headers, self.limits, now)
    }

    /// [`start_call`](Self::start_call) with this call's own message limits (a
    /// service config's `maxRequestMessageBytes` / `maxResponseMessageBytes`).
    pub fn start_call_with_limits(
        &mut self,
        headers: &RequestHeaders,
        limits: MessageLimits,
        now: Instant,
    ) -> Result<CallId, StartCallError> {
        self.now = self.now.max(now);
        let mut fields = self.conn.header_list();
        headers
            .build_into(now, &mut fields)
            .map_err(StartCallError::Headers)?;
        let stream = self
            .conn
            .open_stream(fields, false)
            .map_err(StartCallError::Connection)?;
        let id = CallId(stream);
        if let Some(at) = headers.deadline {
            self.deadlines.insert(at, id);
        }
        let mut reader = ResponseReader::with_max_message_size(limits.max_recv);
        reader.draw_buffers(&mut self.assembly);
        reader.use_queue(self.spare_queues.take());
        self.calls.insert(
            stream.value(),
            ClientCall {
                reader,
                max_send: limits.max_send,
                deadline: headers.deadline,
                encoding: headers.encoding,
                unreleased: 0,
                withheld: 0,
                notified: false,
                reset_done: false,
                send_closed: false,
                local_reset: false,
            },
        );
        self.pump();
        Ok(id)
    }

    /// Sends one request message (framed, and compressed with the call's encoding).
    /// `last` ends the request with it (a unary call's only message). The bytes are
    /// accepted whatever the send buffer holds; watch
    /// [`send_capacity`](Self::send_capacity) and [`ClientTransportEvent::CallWritable`]
    /// for back-pressure.
    pub fn send_message(
        &mut self,
        id: CallId,
        message: Bytes,
        last: bool,
    ) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(&id.0.value())
            .ok_or(CallError::UnknownCall)?;
        if call.send_closed || call.reader.is_done() {
            return Err(CallError::SendClosed);
        }
        let (head, body) = frame_message(message, call.encoding, call.max_send)?;
        match body {
            None => self.conn.send_data(id.0, head, last)?,
            Some(body) => {
                self.conn.send_data(id.0, head, false)?;
                self.conn.send_data(id.0, body, last)?;
            }
        }
        call.send_closed = last;
        Ok(())
    }

    /// Ends the request (END_STREAM) without another message.
    pub fn close_send(&mut self, id: CallId) -> Result<(), CallError> {
        let call = self
            .calls
            .get_mut(&id.0.value())
            .ok_or(CallError::UnknownCall)?;
        if call.send_closed || call.reader.is_done() {
            return Err(CallError::SendClosed);
        }
        self.conn.send_data(id.0, Bytes::new(), true)?;
        call.send_closed = true;
        Ok(())
    }

    /// True while the call can still send: started, not half-closed, no status yet.
    pub fn can_send(&self, id: CallId) -> bool {
        self.calls
            .get(&id.0.value())
            .is_some_and(|c| !c.send_closed && !c.reader.is_done())
    }

    /// Bytes the call may still queue before its send buffer is full.
    pub fn send_capacity(&self, id: CallId) -> usize {
        self.conn.send_capacity(id.0)
    }

    /// The application gives up on the call: the stream is reset with CANCEL and the
    /// call's status is CANCELLED (unless it already had one).
    pub fn cancel(&mut self, id: CallId) {
        self.end_locally(id, Status::cancelled("call cancelled by the application"));
    }

    /// The application dropped the call: it is cancelled if still running, and
    /// everything it held is released. Later events for it are dropped.
    pub fn forget(&mut self, id: CallId) {
        self.end_locally(id, Status::cancelled("call dropped by the application"));
        self.remove(id);
    }

    /// The next event of the call, in order: headers, messages, then exactly one
    /// status, after which the call is gone. Taking a message gives its bytes back to
    /// flow control.
    pub fn poll_call(&mut self, id: CallId) -> Option<ClientEvent> {
        let call = self.calls.get_mut(&id.0.value())?;
        let event = call.reader.poll_event();
        let mut released = call.reader.take_released();
        if event.is_none() {
            // Caught up: what was held back for a slow reader may flow again.
            released += std::mem::take(&mut call.withheld);
        }
        if released > 0 {
            call.unreleased -= released;
            let _ = self.conn.release_data(id.0, released);
        }
        match &event {
            None => call.notified = false,
            Some(ClientEvent::Status(..)) => self.remove(id),
            Some(_) => {}
        }
        event
    }

    /// True when the call ended UNAVAILABLE because the server never processed it
    /// (REFUSED_STREAM, above a GOAWAY's last-stream-id, or never sent): it may be
    /// started again elsewhere even if not idempotent. Ask before taking its status.
    pub fn transparent_retry_ok(&self, id: CallId) -> bool {
        self.calls
            .get(&id.0.value())
            .is_some_and(|c| c.reader.transparent_retry_ok())
    }

    /// Ends a running call from our side with `status`; its stream is reset with
    /// CANCEL.
    fn end_locally(&mut self, id: CallId, status: Status) {
        let Some(call) = self.calls.get_mut(&id.0.value()) else {
            return;
        };
        if !call.reader.is_done() {
            call.local_reset = true;
            call.reader.cancel(status);
        }
        self.after_input(id);
    }

    fn remove(&mut self, id: CallId) {
        if let Some(mut call) = self.calls.remove(&id.0.value()) {
            call.reader.return_buffers(&mut self.assembly);
            self.spare_queues.put(call.reader.take_queue());
            if let Some(at) = call.deadline {
                self.deadlines.remove(at, id);
            }
            if call.unreleased > 0 {
                let _ = self.conn.release_data(id.0, call.unreleased);
            }
        }
    }

    /// Routes the connection's events to the calls.
    fn pump(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Connected => self.events.push_back(ClientTransportEvent::Connected),
                Event::RemoteSettings(_) => {}
                Event::Headers {
                    stream_id,
                    fields,
                    end_stream,
                } => {
                    if let Some(call) = self.calls.get_mut(&stream_id.value()) {
                        call.reader.on_headers(&fields, end_stream);
                        self.after_input(CallId(stream_id));
                    }
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
                        // The stream is gone: nothing to reset or send any more.
                        call.reset_done = true;
                        call.send_closed = true;
                        let connection_lost = reset.initiator == Initiator::Local
                            && reset.reason == CONNECTION_CLOSED_REASON
                            && !reset.unprocessed;
                        if connection_lost {
                            let reason = self
                                .conn
                                .close_reason()
                                .cloned()
                                .unwrap_or(CloseReason::TransportClosed);
                            call.reader.on_connection_closed(&reason);
                        } else {
                            let passed = call.deadline.is_some_and(|d| d <= self.now);
                            call.reader.on_reset(&reset, passed);
                        }
                        self.after_input(CallId(stream_id));
                    }
                }
                Event::StreamWritable { stream_id } => {
                    if self.calls.contains_key(&stream_id.value()) {
                        self.events
                            .push_back(ClientTransportEvent::CallWritable(CallId(stream_id)));
                    }
                }
                Event::GoAway {
                    last_stream_id,
                    code,
                    debug_data,
                } => self.events.push_back(ClientTransportEvent::GoAway {
                    last_stream_id,
                    code,
                    debug_data,
                }),
                Event::PingAck { payload, rtt } => self
                    .events
                    .push_back(ClientTransportEvent::PingAck { payload, rtt }),
                Event::StreamIdsExhausted => {
                    self.events
                        .push_back(ClientTransportEvent::StreamIdsExhausted);
                }
                Event::Closed { reason } => {
                    self.events.push_back(ClientTransportEvent::Closed(reason));
                }
            }
        }
    }

    /// After the call's reader took input: reset the stream if the call ended while
    /// the stream is still open, and tell the owner there is something to read.
    fn after_input(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id.0.value()) else {
            return;
        };
        if call.reader.is_done() && !call.reset_done {
            call.reset_done = true;
            call.send_closed = true;
            // A call that ended while we may still send: the server finished early
            // (NO_ERROR, as grpc-go) or we gave up (CANCEL). A stream already closed
            // both ways is unknown to the connection, which is fine.
            let code = if call.local_reset {
                ErrorCode::Cancel
            } else {
                call.reader.must_reset().unwrap_or(ErrorCode::NoError)
            };
            let _ = self.conn.reset(id.0, code);
            if let Some(at) = call.deadline.take() {
                self.deadlines.remove(at, id);
            }
        }
        if !call.notified {
            call.notified = true;
            self.events
                .push_back(ClientTransportEvent::CallReadable(id));
        }
    }
}
