//! The server: [`Server`] serves registered handlers over TCP (or any stream), one
//! core [`ServerTransport`] per connection with a reader, a writer and a timer task,
//! and one task per call.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::compression::Encoding;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::{RequestHead, ServerEvent};
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{
    CallError, CallId, MessageLimits, ServerTransport, ServerTransportEvent,
};
use grpc_sansio::h2::{Config, EnforcementPolicy, ServerKeepaliveConfig, Transmit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, watch};

use crate::codec::Codec;
use crate::driver::{BoxFuture, Io, now, write_chunks};

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

type Handler = Arc<dyn Fn(CallHandle) -> BoxFuture<()> + Send + Sync>;

/// Builds a [`Server`].
pub struct ServerBuilder {
    handlers: HashMap<String, Handler>,
    config: Config,
    limits: MessageLimits,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("methods", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            handlers: HashMap::new(),
            config: Config::server(),
            limits: MessageLimits::default(),
        }
    }
}

impl ServerBuilder {
    /// Serves `path` (`/package.Service/Method`) with a unary handler.
    pub fn unary<C, F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        C: Codec + Default,
        F: Fn(Request<C::Decode>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply<C::Encode>, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Handler = Arc::new(move |call: CallHandle| {
            let handler = handler.clone();
            Box::pin(async move {
                let (mut incoming, mut outgoing) = split::<C>(call);
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
        F: Fn(Incoming<C>, Outgoing<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Handler = Arc::new(move |call: CallHandle| {
            let handler = handler.clone();
            Box::pin(async move {
                let (incoming, outgoing) = split::<C>(call);
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

    /// The server.
    pub fn build(self) -> Server {
        let (shutdown_tx, _) = watch::channel(false);
        Server {
            inner: Arc::new(ServerInner {
                handlers: self.handlers,
                config: self.config,
                limits: self.limits,
                shutdown: shutdown_tx,
                connections: Mutex::new(Vec::new()),
            }),
        }
    }
}

struct ServerInner {
    handlers: HashMap<String, Handler>,
    config: Config,
    limits: MessageLimits,
    shutdown: watch::Sender<bool>,
    connections: Mutex<Vec<Weak<Conn>>>,
}

/// A gRPC server. Cheap to clone; clones serve the same handlers.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A builder.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Accepts connections on `listener` until [`shutdown`](Self::shutdown).
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = accepted?;
                    stream.set_nodelay(true)?;
                    self.serve_connection(Box::new(stream));
                }
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
    }

    /// Accepts TLS connections on `listener` until [`shutdown`](Self::shutdown); each
    /// handshake runs in its own task, so a slow client never holds up accepting.
    #[cfg(feature = "tls")]
    pub async fn serve_tls(
        &self,
        listener: tokio::net::TcpListener,
        acceptor: crate::tls::TlsAcceptor,
    ) -> std::io::Result<()> {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        // One connection's trouble must not end the listener.
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted) => continue,
                        Err(e) => return Err(e),
                    };
                    let _ = stream.set_nodelay(true);
                    let server = self.clone();
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match acceptor.accept(stream).await {
                            Ok(io) => server.serve_connection(io),
                            Err(e) => tracing::debug!(target: "grpc_sansio::server", %peer, "TLS handshake failed: {e}"),
                        }
                    });
                }
                _ = stop.wait_for(|s| *s) => return Ok(()),
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
        if *self.inner.shutdown.borrow() {
            conn.with(|st| st.transport.shutdown());
        }
        tokio::spawn(run_connection(conn, io));
    }

    /// Graceful shutdown: stops accepting, sends the two-phase GOAWAY on every
    /// connection; calls in flight finish.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        self.drain_connections();
    }

    /// Sends the two-phase GOAWAY on every current connection while the listener keeps
    /// accepting: clients finish their calls there and reconnect (connection rotation,
    /// as max connection age does on a timer).
    pub fn drain_connections(&self) {
        let conns: Vec<Arc<Conn>> = self
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
    handlers: HashMap<CallId, tokio::task::AbortHandle>,
}

struct Conn {
    state: Mutex<ConnState>,
    flush: Notify,
    resume: Notify,
    timer: Notify,
    server: Arc<ServerInner>,
    weak: Weak<Conn>,
}

impl Conn {
    fn new(server: Arc<ServerInner>) -> Arc<Conn> {
        Arc::new_cyclic(|weak| Conn {
            state: Mutex::new(ConnState {
                transport: ServerTransport::new(server.config.clone(), server.limits, now()),
                readers: HashMap::new(),
                writers: HashMap::new(),
                trailers: HashMap::new(),
                handlers: HashMap::new(),
            }),
            flush: Notify::new(),
            resume: Notify::new(),
            timer: Notify::new(),
            server,
            weak: weak.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the connection, then dispatches what the transport reported and
    /// wakes the writer, reader and timer tasks to look again.
    fn with<R>(&self, f: impl FnOnce(&mut ConnState) -> R) -> R {
        self.with_from(Origin::Other, f)
    }

    /// [`with`](Self::with) from one of the connection's own tasks, which does not wake
    /// itself (it looks again anyway; a self-wake would spin).
    fn with_from<R>(&self, origin: Origin, f: impl FnOnce(&mut ConnState) -> R) -> R {
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
            self.flush.notify_one();
        }
        if origin != Origin::Reader {
            self.resume.notify_one();
        }
        if origin != Origin::Timer {
            self.timer.notify_one();
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
                let task = tokio::spawn(handler(handle));
                st.handlers.insert(call, task.abort_handle());
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
struct CallHandle {
    conn: Arc<Conn>,
    id: CallId,
    head: RequestHead,
}

fn split<C: Codec + Default>(call: CallHandle) -> (Incoming<C>, Outgoing<C>) {
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
pub struct Incoming<C: Codec> {
    conn: Arc<Conn>,
    id: CallId,
    /// The checked request headers: path, metadata, deadline, encoding.
    pub head: RequestHead,
    codec: C,
    ended: bool,
}

impl<C: Codec> std::fmt::Debug for Incoming<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> Incoming<C> {
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
pub struct Outgoing<C: Codec> {
    conn: Arc<Conn>,
    id: CallId,
    codec: C,
}

impl<C: Codec> std::fmt::Debug for Outgoing<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").finish_non_exhaustive()
    }
}

/// Ends a call once its handler returns.
struct Finisher {
    conn: Arc<Conn>,
    id: CallId,
}

impl Finisher {
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

impl<C: Codec> Outgoing<C> {
    fn finisher(&self) -> Finisher {
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
async fn run_connection(conn: Arc<Conn>, io: Box<dyn Io>) {
    let (mut reader, writer) = tokio::io::split(io);
    let writer = tokio::spawn(server_write_loop(Arc::downgrade(&conn), writer));
    let timer = tokio::spawn(server_timer_loop(Arc::downgrade(&conn)));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let resume = conn.resume.notified();
            let (wants, closed) = {
                let st = conn.lock();
                (st.transport.wants_read(), st.transport.is_closed())
            };
            if closed {
                break;
            }
            if wants {
                break;
            }
            resume.await;
        }
        if conn.lock().transport.is_closed() {
            break;
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match reader.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {
                let data = buf.split();
                conn.with_from(Origin::Reader, |st| st.transport.recv(data, now()));
            }
            _ => {
                conn.with(|st| st.transport.recv_eof());
                break;
            }
        }
    }
    // Let the writer push out the last frames (GOAWAY), then stop.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    timer.abort();
}

async fn server_write_loop(weak: Weak<Conn>, mut writer: tokio::io::WriteHalf<Box<dyn Io>>) {
    let mut out = Transmit::new();
    loop {
        let Some(conn) = weak.upgrade() else {
            return;
        };
        let closed = conn.with_from(Origin::Writer, |st| {
            while st.transport.poll_transmit(now(), &mut out) > 0 && out.len() < 256 * 1024 {}
            st.transport.is_closed()
        });
        if out.is_empty() {
            if writer.flush().await.is_err() || closed {
                let _ = writer.shutdown().await;
                return;
            }
            let flush = &conn.flush;
            // Hold the Arc only while waiting on its Notify.
            flush.notified().await;
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

async fn server_timer_loop(weak: Weak<Conn>) {
    loop {
        let Some(conn) = weak.upgrade() else {
            return;
        };
        let next = conn.lock().transport.poll_timeout();
        let notified = conn.timer.notified();
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                        conn.with_from(Origin::Timer, |st| st.transport.handle_timeout(now()));
                    }
                    () = notified => {}
                }
            }
            None => notified.await,
        }
    }
}
