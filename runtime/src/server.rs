//! The server: [`Server`] serves registered handlers over TCP (or any stream), one
//! core [`ServerTransport`] per connection with a reader, a writer and a timer task,
//! and one task per call.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{Either, select};
use futures_util::io::AsyncWriteExt;
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::compression::Encoding;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::{RequestHead, ServerEvent};
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{
    CallError, CallId, MessageLimits, ServerTransport, ServerTransportEvent,
};
use grpc_sansio::h2::{Config, EnforcementPolicy, ServerKeepaliveConfig, Transmit};

use crate::codec::Codec;
use crate::driver::write_chunks;
use crate::read_region::ReadRegion;
use crate::rt::{
    AbortOnDrop, BoxFuture, Io, Runtime, Signal, Task, Watch, WriteSide, timeout, yield_now,
};

/// A request of a unary handler.
#[derive(Debug)]
pub struct Request<T> {
    /// The request headers, checked.
    pub head: RequestHead,
    /// The request message.
    pub message: T,
}

/// A unary handler's answer: the message and metadata for headers and trailers.
#[derive(Debug)]
pub struct Reply<T> {
    /// The response message.
    pub message: T,
    /// Response header metadata.
    pub metadata: Metadata,
    /// Trailer metadata.
    pub trailers: Metadata,
    /// Compress the response (only if the client accepts the encoding; otherwise it
    /// goes uncompressed).
    pub compression: Option<Encoding>,
}

impl<T> Reply<T> {
    /// A reply with no metadata, uncompressed.
    pub fn new(message: T) -> Reply<T> {
        Reply {
            message,
            metadata: Metadata::new(),
            trailers: Metadata::new(),
            compression: None,
        }
    }
}

type Handler<R> = Arc<dyn Fn(CallHandle<R>) -> BoxFuture<()> + Send + Sync>;

/// Builds a [`Server`].
pub struct ServerBuilder<R: Runtime> {
    rt: Option<R>,
    handlers: HashMap<String, Handler<R>>,
    config: Config,
    limits: MessageLimits,
}

impl<R: Runtime> std::fmt::Debug for ServerBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("methods", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> Default for ServerBuilder<R> {
    fn default() -> Self {
        ServerBuilder {
            rt: None,
            handlers: HashMap::new(),
            config: Config::server(),
            limits: MessageLimits::default(),
        }
    }
}

impl<R: Runtime> ServerBuilder<R> {
    /// Serves `path` (`/package.Service/Method`) with a unary handler.
    pub fn unary<C, F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        C: Codec + Default,
        F: Fn(Request<C::Decode>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply<C::Encode>, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Handler<R> = Arc::new(move |call: CallHandle<R>| {
            let handler = handler.clone();
            Box::pin(async move {
                let (mut incoming, mut outgoing) = split::<C, R>(call);
                let result = async {
                    let message = match incoming.message().await? {
                        Some(m) => m,
                        None => {
                            return Err(Status::internal(
                                "grpc: the client sent no request message",
                            ));
                        }
                    };
                    if incoming.message().await?.is_some() {
                        return Err(Status::internal(
                            "grpc: the client sent more than one request message",
                        ));
                    }
                    let reply = handler(Request {
                        head: incoming.head.clone(),
                        message,
                    })
                    .await?;
                    if let Some(encoding) = reply.compression {
                        // A client that does not accept it gets the reply uncompressed.
                        let _ = outgoing.set_compression(encoding);
                    }
                    outgoing.send_headers(reply.metadata)?;
                    outgoing.send(reply.message).await?;
                    outgoing.set_trailers(reply.trailers);
                    Ok(())
                }
                .await;
                outgoing.finish(result);
            })
        });
        self.handlers.insert(path.to_owned(), wrapped);
        self
    }

    /// Serves `path` with a streaming handler (server, client or bidi streaming):
    /// it reads requests from [`Incoming`], writes responses to [`Outgoing`] and
    /// returns the status (`Ok` for OK).
    pub fn streaming<C, F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        C: Codec + Default,
        F: Fn(Incoming<C, R>, Outgoing<C, R>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Handler<R> = Arc::new(move |call: CallHandle<R>| {
            let handler = handler.clone();
            Box::pin(async move {
                let (incoming, outgoing) = split::<C, R>(call);
                let finisher = outgoing.finisher();
                let result = handler(incoming, outgoing).await;
                finisher.finish(result);
            })
        });
        self.handlers.insert(path.to_owned(), wrapped);
        self
    }

    /// Message size limits.
    pub fn message_limits(mut self, max_send: usize, max_recv: usize) -> Self {
        self.limits = MessageLimits { max_send, max_recv };
        self
    }

    /// Keepalive pings, idle and age limits of connections (gRFC A9).
    pub fn keepalive(mut self, keepalive: ServerKeepaliveConfig) -> Self {
        self.config.server_keepalive = keepalive;
        self
    }

    /// How often clients may ping (grpc-go's `EnforcementPolicy`).
    pub fn keepalive_enforcement(mut self, policy: EnforcementPolicy) -> Self {
        self.config.ping_policy = policy;
        self
    }

    /// Full control over the HTTP/2 configuration.
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// The runtime the server's tasks run on (by default the one it first serves a
    /// connection in).
    pub fn runtime(mut self, rt: R) -> Self {
        self.rt = Some(rt);
        self
    }

    /// The server.
    pub fn build(self) -> Server<R> {
        let rt = OnceLock::new();
        if let Some(r) = self.rt {
            let _ = rt.set(r);
        }
        Server {
            inner: Arc::new(ServerInner {
                rt,
                handlers: self.handlers,
                config: self.config,
                limits: self.limits,
                shutdown: Watch::new(false),
                connections: Mutex::new(Vec::new()),
            }),
        }
    }
}

struct ServerInner<R: Runtime> {
    rt: OnceLock<R>,
    handlers: HashMap<String, Handler<R>>,
    config: Config,
    limits: MessageLimits,
    shutdown: Watch<bool>,
    connections: Mutex<Vec<Weak<Conn<R>>>>,
}

impl<R: Runtime> ServerInner<R> {
    fn rt(&self) -> &R {
        self.rt.get_or_init(R::current)
    }
}

/// A gRPC server. Cheap to clone; clones serve the same handlers.
pub struct Server<R: Runtime> {
    inner: Arc<ServerInner<R>>,
}

impl<R: Runtime> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl<R: Runtime> Server<R> {
    /// A builder.
    pub fn builder() -> ServerBuilder<R> {
        ServerBuilder::default()
    }

    /// Accepts connections on `listener` until [`shutdown`](Self::shutdown). One
    /// connection's accept error (reset, aborted) does not end it.
    pub async fn serve(&self, listener: R::Listener) -> std::io::Result<()> {
        self.accept_loop(listener, |server, io, _| server.serve_connection(io))
            .await
    }

    /// Accepts TLS connections on `listener` until [`shutdown`](Self::shutdown); each
    /// handshake runs in its own task with the acceptor's time limit, so a slow client
    /// never holds up accepting. Failed handshakes are logged at debug level.
    #[cfg(feature = "tls")]
    pub async fn serve_tls(
        &self,
        listener: R::Listener,
        acceptor: crate::tls::TlsAcceptor,
    ) -> std::io::Result<()> {
        self.accept_loop(listener, move |server, io, peer| {
            let acceptor = acceptor.clone();
            let rt = server.inner.rt().clone();
            let server = server.clone();
            rt.clone().spawn(async move {
                let limit = acceptor.handshake_timeout_value();
                match timeout(&rt, limit, acceptor.accept(io)).await {
                    Some(Ok(io)) => server.serve_connection(io),
                    Some(Err(e)) => {
                        tracing::debug!(target: "grpc_sansio::server", %peer, "{e}")
                    }
                    None => tracing::debug!(
                        target: "grpc_sansio::server",
                        %peer,
                        "TLS handshake: timed out"
                    ),
                }
            });
        })
        .await
    }

    async fn accept_loop(
        &self,
        listener: R::Listener,
        mut on_accept: impl FnMut(&Self, Box<dyn Io>, std::net::SocketAddr),
    ) -> std::io::Result<()> {
        let rt = self.inner.rt().clone();
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            let accept = std::pin::pin!(rt.accept(&listener));
            let stopped = std::pin::pin!(stop.wait_for(|s| *s));
            match select(accept, stopped).await {
                Either::Left((Ok((io, peer)), _)) => on_accept(self, io, peer),
                // One connection's trouble must not end the listener.
                Either::Left((Err(e), _))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Either::Left((Err(e), _)) => return Err(e),
                Either::Right(((), _)) => return Ok(()),
            }
        }
    }

    /// Serves one already-accepted connection (TLS-wrapped, unix, in-memory…) in the
    /// background.
    pub fn serve_connection(&self, io: Box<dyn Io>) {
        let conn = Conn::new(self.inner.clone());
        if let Ok(mut list) = self.inner.connections.lock() {
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(&conn));
        }
        if self.inner.shutdown.get() {
            conn.with(|st| st.transport.shutdown());
        }
        let rt = self.inner.rt().clone();
        rt.spawn(run_connection(conn, io));
    }

    /// Graceful shutdown: stops accepting, sends the two-phase GOAWAY on every
    /// connection; calls in flight finish.
    pub fn shutdown(&self) {
        self.inner.shutdown.set(true);
        self.drain_connections();
    }

    /// Sends the two-phase GOAWAY on every current connection while the listener keeps
    /// accepting: clients finish their calls there and reconnect (connection rotation,
    /// as max connection age does on a timer).
    pub fn drain_connections(&self) {
        let conns: Vec<Arc<Conn<R>>> = self
            .inner
            .connections
            .lock()
            .map(|l| l.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for conn in conns {
            conn.with(|st| st.transport.shutdown());
        }
    }

    /// Connections still open.
    pub fn connection_count(&self) -> usize {
        self.inner
            .connections
            .lock()
            .map(|l| l.iter().filter(|w| w.strong_count() > 0).count())
            .unwrap_or(0)
    }
}

/// Which task touches the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Reader,
    Writer,
    Timer,
    Other,
}

/// One connection's state behind its lock.
struct ConnState {
    transport: ServerTransport,
    readers: HashMap<CallId, Waker>,
    writers: HashMap<CallId, Waker>,
    /// Trailers a streaming handler set, by call.
    trailers: HashMap<CallId, Metadata>,
    /// The handler task of each call still running, so a closed connection can stop
    /// them (a handler that never looks at its call would otherwise outlive it and
    /// keep the connection's memory).
    handlers: HashMap<CallId, Task>,
}

struct Conn<R: Runtime> {
    state: Mutex<ConnState>,
    flush: Signal,
    resume: Signal,
    timer: Signal,
    server: Arc<ServerInner<R>>,
    rt: R,
    weak: Weak<Conn<R>>,
}

impl<R: Runtime> Conn<R> {
    fn new(server: Arc<ServerInner<R>>) -> Arc<Conn<R>> {
        let rt = server.rt().clone();
        let now = rt.now();
        Arc::new_cyclic(|weak| Conn {
            state: Mutex::new(ConnState {
                transport: ServerTransport::new(server.config.clone(), server.limits, now),
                readers: HashMap::new(),
                writers: HashMap::new(),
                trailers: HashMap::new(),
                handlers: HashMap::new(),
            }),
            flush: Signal::new(),
            resume: Signal::new(),
            timer: Signal::new(),
            server,
            rt,
            weak: weak.clone(),
        })
    }

    fn now(&self) -> Instant {
        self.rt.now()
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the connection, then dispatches what the transport reported and
    /// wakes the writer, reader and timer tasks to look again.
    fn with<T>(&self, f: impl FnOnce(&mut ConnState) -> T) -> T {
        self.with_from(Origin::Other, f)
    }

    /// [`with`](Self::with) from one of the connection's own tasks, which does not wake
    /// itself (it looks again anyway; a self-wake would spin).
    fn with_from<T>(&self, origin: Origin, f: impl FnOnce(&mut ConnState) -> T) -> T {
        let mut st = self.lock();
        let r = f(&mut st);
        while let Some(event) = st.transport.poll_event() {
            match event {
                ServerTransportEvent::NewCall { call, head } => self.dispatch(&mut st, call, *head),
                ServerTransportEvent::CallReadable(id) | ServerTransportEvent::CallWritable(id) => {
                    if let Some(w) = st.readers.remove(&id) {
                        w.wake();
                    }
                    if let Some(w) = st.writers.remove(&id) {
                        w.wake();
                    }
                }
                ServerTransportEvent::Closed(_) => {
                    for (_, task) in st.handlers.drain() {
                        task.abort();
                    }
                    for (_, w) in st.readers.drain() {
                        w.wake();
                    }
                    for (_, w) in st.writers.drain() {
                        w.wake();
                    }
                }
                ServerTransportEvent::Connected | ServerTransportEvent::PingAck { .. } => {}
            }
        }
        if origin != Origin::Writer {
            self.flush.notify();
        }
        if origin != Origin::Reader {
            self.resume.notify();
        }
        if origin != Origin::Timer {
            self.timer.notify();
        }
        r
    }

    fn dispatch(&self, st: &mut ConnState, call: CallId, head: RequestHead) {
        let Some(me) = self.weak.upgrade() else {
            return;
        };
        let handler = std::str::from_utf8(&head.path)
            .ok()
            .and_then(|p| self.server.handlers.get(p));
        match handler {
            Some(handler) => {
                let handle = CallHandle {
                    conn: me,
                    id: call,
                    head,
                };
                let task = Task::spawn(&self.rt, handler(handle));
                st.handlers.insert(call, task);
            }
            None => {
                let status = Status::new(
                    Code::Unimplemented,
                    format!(
                        "unknown method {} for service {}",
                        head.method, head.service
                    ),
                );
                let _ = st.transport.finish(call, &status, &Metadata::new());
            }
        }
    }
}

/// A call's identity for its handler.
struct CallHandle<R: Runtime> {
    conn: Arc<Conn<R>>,
    id: CallId,
    head: RequestHead,
}

fn split<C: Codec + Default, R: Runtime>(call: CallHandle<R>) -> (Incoming<C, R>, Outgoing<C, R>) {
    (
        Incoming {
            conn: call.conn.clone(),
            id: call.id,
            head: call.head,
            codec: C::default(),
            ended: false,
        },
        Outgoing {
            conn: call.conn,
            id: call.id,
            codec: C::default(),
        },
    )
}

/// The requests of a call.
pub struct Incoming<C: Codec, R: Runtime> {
    conn: Arc<Conn<R>>,
    id: CallId,
    /// The checked request headers: path, metadata, deadline, encoding.
    pub head: RequestHead,
    codec: C,
    ended: bool,
}

impl<C: Codec, R: Runtime> std::fmt::Debug for Incoming<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl<C: Codec, R: Runtime> Incoming<C, R> {
    /// The next request; `Ok(None)` once the client finished sending, `Err` if the call
    /// failed (cancelled, deadline, bad message).
    pub async fn message(&mut self) -> Result<Option<C::Decode>, Status> {
        if self.ended {
            return Ok(None);
        }
        let id = self.id;
        let event = poll_fn(|cx| {
            self.conn.with(|st| match st.transport.poll_call(id) {
                Some(e) => Poll::Ready(Some(e)),
                None if st.transport.is_closed() => Poll::Ready(None),
                None => {
                    st.readers.insert(id, cx.waker().clone());
                    Poll::Pending
                }
            })
        })
        .await;
        match event {
            Some(ServerEvent::Message(bytes)) => self.codec.decode(bytes).map(Some),
            Some(ServerEvent::HalfClosed) => {
                self.ended = true;
                Ok(None)
            }
            Some(ServerEvent::Failed(status)) => {
                self.ended = true;
                Err(status)
            }
            None => {
                self.ended = true;
                Err(Status::cancelled("connection closed"))
            }
        }
    }

    /// The deadline from the client's `grpc-timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.head.deadline
    }
}

/// The responses of a call.
pub struct Outgoing<C: Codec, R: Runtime> {
    conn: Arc<Conn<R>>,
    id: CallId,
    codec: C,
}

impl<C: Codec, R: Runtime> std::fmt::Debug for Outgoing<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").finish_non_exhaustive()
    }
}

/// Ends a call once its handler returns.
struct Finisher<R: Runtime> {
    conn: Arc<Conn<R>>,
    id: CallId,
}

impl<R: Runtime> Finisher<R> {
    fn finish(self, result: Result<(), Status>) {
        let status = match result {
            Ok(()) => Status::ok(),
            Err(status) => status,
        };
        let id = self.id;
        self.conn.with(|st| {
            let trailers = st.trailers.remove(&id).unwrap_or_default();
            st.handlers.remove(&id);
            st.readers.remove(&id);
            st.writers.remove(&id);
            let _ = st.transport.finish(id, &status, &trailers);
        });
    }
}

impl<C: Codec, R: Runtime> Outgoing<C, R> {
    fn finisher(&self) -> Finisher<R> {
        Finisher {
            conn: self.conn.clone(),
            id: self.id,
        }
    }

    /// Compresses the responses with `encoding` if the client accepts it (before the
    /// first response).
    pub fn set_compression(&mut self, encoding: Encoding) -> Result<(), Status> {
        let id = self.id;
        self.conn
            .with(|st| st.transport.set_compression(id, encoding))
            .map_err(|e| e.to_status())
    }

    /// Sends the response headers with `metadata` now (otherwise the first message
    /// sends them without metadata).
    pub fn send_headers(&mut self, metadata: Metadata) -> Result<(), Status> {
        let id = self.id;
        self.conn
            .with(|st| match st.transport.send_headers(id, metadata) {
                Ok(()) | Err(CallError::HeadersAlreadySent) => Ok(()),
                Err(e) => Err(e.to_status()),
            })
    }

    /// Sends one response, waiting while the send buffer is full.
    pub async fn send(&mut self, message: C::Encode) -> Result<(), Status> {
        let bytes: Bytes = self.codec.encode(message)?;
        let id = self.id;
        let mut bytes = Some(bytes);
        poll_fn(|cx| {
            self.conn.with(|st| {
                if st.transport.is_closed() {
                    return Poll::Ready(Err(Status::cancelled("connection closed")));
                }
                if !st.transport.can_send(id) {
                    return Poll::Ready(Err(Status::cancelled("the call has ended")));
                }
                if st.transport.send_capacity(id) == 0 {
                    st.writers.insert(id, cx.waker().clone());
                    return Poll::Pending;
                }
                let b = bytes.take().unwrap_or_default();
                Poll::Ready(st.transport.send_message(id, b).map_err(|e| e.to_status()))
            })
        })
        .await
    }

    /// Trailer metadata to send with the status.
    pub fn set_trailers(&mut self, trailers: Metadata) {
        let id = self.id;
        self.conn.with(|st| {
            st.trailers.insert(id, trailers);
        });
    }

    fn finish(self, result: Result<(), Status>) {
        self.finisher().finish(result);
    }
}

/// Runs one connection: the writer and timer as tasks, the reader here.
async fn run_connection<R: Runtime>(conn: Arc<Conn<R>>, io: Box<dyn Io>) {
    let (mut reader, writer) = crate::rt::split(io);
    // Neither may outlive this task, even aborted: the writer holds the socket open.
    let writer = AbortOnDrop(Task::spawn(
        &conn.rt,
        server_write_loop(Arc::downgrade(&conn), writer),
    ));
    let _timer = AbortOnDrop(Task::spawn(
        &conn.rt,
        server_timer_loop(Arc::downgrade(&conn)),
    ));
    let mut region = ReadRegion::default();
    loop {
        loop {
            let (wants, closed) = {
                let st = conn.lock();
                (st.transport.wants_read(), st.transport.is_closed())
            };
            if closed || wants {
                break;
            }
            conn.resume.notified().await;
        }
        if conn.lock().transport.is_closed() {
            break;
        }
        match region.read(&mut reader).await {
            Ok(data) if !data.is_empty() => {
                let now = conn.now();
                conn.with_from(Origin::Reader, |st| st.transport.recv(data, now));
            }
            _ => {
                conn.with(|st| st.transport.recv_eof());
                break;
            }
        }
        // A read that filled the region left more in the socket: let the handlers it
        // woke take their messages first, or the reader runs ahead of them by the
        // whole flow-control window, all of it held in memory.
        if region.filled() {
            conn.rt.yield_now().await;
        }
    }
    // Let the writer push out the last frames (GOAWAY), then stop.
    let rt = conn.rt.clone();
    // Past the limit, dropping the guard aborts it.
    let _ = timeout(&rt, Duration::from_secs(1), writer.0.join()).await;
}

async fn server_write_loop<R: Runtime>(weak: Weak<Conn<R>>, mut writer: WriteSide) {
    let mut out = Transmit::new();
    loop {
        let Some(conn) = weak.upgrade() else {
            return;
        };
        let now = conn.now();
        let (closed, several) = conn.with_from(Origin::Writer, |st| {
            while st.transport.poll_transmit(now, &mut out) > 0 && out.len() < 256 * 1024 {}
            (st.transport.is_closed(), st.transport.open_calls() > 1)
        });
        if out.is_empty() {
            if writer.flush().await.is_err() || closed {
                let _ = writer.close().await;
                return;
            }
            conn.flush.notified().await;
            // Gather what the other ready handlers are about to queue into one write
            // (unless one call is all there was when the last batch went out).
            if several {
                yield_now().await;
            }
            continue;
        }
        let written = write_chunks(&mut writer, out.chunks()).await;
        out.clear();
        if written.is_err() {
            conn.with(|st| st.transport.recv_eof());
            return;
        }
    }
}

async fn server_timer_loop<R: Runtime>(weak: Weak<Conn<R>>) {
    loop {
        let Some(conn) = weak.upgrade() else {
            return;
        };
        let next = conn.lock().transport.poll_timeout();
        match next {
            Some(at) => {
                let sleep = std::pin::pin!(conn.rt.sleep_until(at));
                let notified = std::pin::pin!(conn.timer.notified());
                if let Either::Left(_) = select(sleep, notified).await {
                    let now = conn.now();
                    conn.with_from(Origin::Timer, |st| st.transport.handle_timeout(now));
                }
            }
            None => conn.timer.notified().await,
        }
    }
}
