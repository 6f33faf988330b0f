//! The machinery under a [`Channel`](crate::Channel): the core channel behind one
//! mutex, and the tasks that serve it — a timer task, a resolver task, and per
//! connection a reader and a writer.
//!
//! Every touch of the core goes through `Shared::with`, which runs the closure under
//! the lock and then *settles*: it executes the core's actions (spawn a connect or a
//! resolution, wake a connection's writer, close a socket) and delivers its events
//! (wake the tasks waiting on a call, publish state changes, log trace lines). Nothing
//! awaits while the lock is held.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use futures_io::AsyncWrite;
use futures_util::future::{Either, select};
use futures_util::io::AsyncWriteExt;
use grpc_sansio::channel::balancer::{Endpoint, ResolverState};
use grpc_sansio::channel::client_channel::{
    Action, Channel as CoreChannel, ChannelCallId, ChannelEvent,
};
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio::channel::subchannel::ConnId;
use grpc_sansio::channel::target::{Address, Target, dns_host_port};
use grpc_sansio::grpc::status::Status;
use grpc_sansio::h2::Transmit;
use grpc_sansio::id_map::IdMap;

use crate::read_region::ReadRegion;
use crate::rt::{
    AbortOnDrop, BoxFuture, Dialer, Io, ReadSide, Runtime, Signal, Task, Watch, Watcher, WriteSide,
    split, yield_now,
};

/// Opens the byte stream for an address (grpc-go's custom dialer). The default,
/// [`PlainConnector`], opens TCP (TCP_NODELAY on) or a unix socket with the channel's
/// runtime.
pub trait Connector: Send + Sync + 'static {
    /// Connects to `address`; `authority` is the channel's `:authority` (the TLS
    /// server name, or the host a proxy is asked to reach); `dialer` opens plain
    /// sockets on the channel's runtime, for connectors that wrap them.
    fn connect(
        &self,
        address: &Address,
        authority: &str,
        dialer: &Dialer,
    ) -> BoxFuture<io::Result<Box<dyn Io>>>;
}

/// Resolves a target of a custom scheme (grpc-go's `resolver.Builder`), called on
/// start and on every re-resolution request.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses (and optionally a service config) for `target`.
    fn resolve(&self, target: &Target) -> BoxFuture<Result<ResolverState, Status>>;
}

/// The default connector: a plain socket from the channel's [`Dialer`] (TCP with
/// TCP_NODELAY, or unix sockets).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainConnector;

impl Connector for PlainConnector {
    fn connect(
        &self,
        address: &Address,
        _authority: &str,
        dialer: &Dialer,
    ) -> BoxFuture<io::Result<Box<dyn Io>>> {
        dialer.dial(address)
    }
}

/// One connection's handles.
struct ConnHandle {
    /// Wakes the writer: the core has bytes for this connection.
    flush: Arc<Signal>,
    /// Wakes the reader: the core may want to read again.
    resume: Arc<Signal>,
    /// The reader is paused for flow control (set and read under the lock).
    paused: Arc<AtomicBool>,
    task: Task,
}

/// The resolver task's handles.
struct ResolverHandle {
    again: Arc<Signal>,
    task: Task,
}

/// Everything behind the lock.
pub(crate) struct State {
    pub(crate) core: CoreChannel,
    /// Tasks waiting for a call's next event.
    readers: IdMap<ChannelCallId, Waker>,
    /// Tasks waiting for room to send on a call.
    writers: IdMap<ChannelCallId, Waker>,
    conns: HashMap<ConnId, ConnHandle>,
    resolver: Option<ResolverHandle>,
    /// The deadline the timer task sleeps until (`None`: no deadline). Settling wakes
    /// it only when the core's next timeout comes earlier than this.
    armed: Option<Instant>,
}

/// The connectivity state and the last connection error, as watchers see them.
pub(crate) type StateView = (ConnectivityState, Option<String>);

/// What the tasks and handles share.
pub(crate) struct Shared<R: Runtime> {
    state: Mutex<State>,
    /// The core's next timeout may have moved.
    timer: Arc<Signal>,
    /// (state, last error) for watchers.
    state_tx: Watch<StateView>,
    connector: Arc<dyn Connector>,
    dialer: Dialer,
    resolvers: HashMap<String, Arc<dyn Resolver>>,
    pub(crate) rt: R,
    weak: Weak<Shared<R>>,
}

impl<R: Runtime> Shared<R> {
    /// Wraps `core` and starts the timer task on `rt`.
    pub(crate) fn start(
        rt: R,
        core: CoreChannel,
        connector: Arc<dyn Connector>,
        resolvers: HashMap<String, Arc<dyn Resolver>>,
    ) -> Arc<Shared<R>> {
        let shared = Arc::new_cyclic(|weak| Shared {
            state: Mutex::new(State {
                core,
                readers: IdMap::default(),
                writers: IdMap::default(),
                conns: HashMap::new(),
                resolver: None,
                armed: None,
            }),
            timer: Arc::new(Signal::new()),
            state_tx: Watch::new((ConnectivityState::Idle, None)),
            connector,
            dialer: Dialer::new(rt.clone()),
            resolvers,
            rt,
            weak: weak.clone(),
        });
        let weak = Arc::downgrade(&shared);
        shared.rt.spawn(timer_task(weak));
        shared
    }

    /// Now, on the runtime's clock.
    pub(crate) fn now(&self) -> Instant {
        self.rt.now()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in another task while it held the lock leaves the core as that call
        // left it; carrying on is better than poisoning every call of the channel.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then settles what it caused.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.lock();
        let r = f(&mut st);
        self.settle(&mut st);
        r
    }

    /// Runs `f` on the state without settling: for bookkeeping outside the core (the
    /// timer's, a waiting sender's waker) and looks that change nothing in it.
    pub(crate) fn with_quiet<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.lock())
    }

    /// Reads the state without settling (for the timer and readers, whose looks
    /// change nothing).
    pub(crate) fn peek<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.lock())
    }

    /// A watcher of state changes.
    pub(crate) fn watch_state(&self) -> Watcher<StateView> {
        self.state_tx.subscribe()
    }

    /// Registers the waker of a task waiting to read `id`.
    pub(crate) fn wait_read(st: &mut State, id: ChannelCallId, waker: &Waker) {
        st.readers.insert(id, waker.clone());
    }

    /// Registers the waker of a task waiting to send on `id`.
    pub(crate) fn wait_write(st: &mut State, id: ChannelCallId, waker: &Waker) {
        st.writers.insert(id, waker.clone());
    }

    /// Forgets wakers of a call that is gone.
    pub(crate) fn drop_call(st: &mut State, id: ChannelCallId) {
        st.readers.remove(&id);
        st.writers.remove(&id);
    }

    /// Executes the core's actions and delivers its events.
    fn settle(&self, st: &mut State) {
        loop {
            let mut any = false;
            while let Some(action) = st.core.poll_action() {
                any = true;
                self.act(st, action);
            }
            while let Some(event) = st.core.poll_event() {
                any = true;
                match event {
                    ChannelEvent::CallReadable(id) | ChannelEvent::CallWritable(id) => {
                        if let Some(w) = st.readers.remove(&id) {
                            w.wake();
                        }
                        if let Some(w) = st.writers.remove(&id) {
                            w.wake();
                        }
                    }
                    ChannelEvent::StateChanged(s) => {
                        let last_error = self.state_tx.get().1;
                        self.state_tx.set((s, last_error));
                    }
                    ChannelEvent::Trace(t) => {
                        if let grpc_sansio::channel::trace::TraceKind::ChannelState {
                            state,
                            last_error,
                        } = &t.kind
                        {
                            self.state_tx.set((*state, last_error.clone()));
                        }
                        tracing::info!(
                            target: "grpc_sansio::channel",
                            channel = t.channel,
                            subchannel = t.subchannel.map(|s| s.0),
                            "{t}"
                        );
                    }
                }
            }
            if !any {
                break;
            }
        }
        // Wake a reader paused for flow control only once the core wants bytes again,
        // and the timer only when the next timeout moved earlier: waking them on every
        // operation cost a context switch per call.
        for (&conn, c) in &st.conns {
            if c.paused.load(Ordering::Relaxed) && st.core.wants_read(conn) {
                c.paused.store(false, Ordering::Relaxed);
                c.resume.notify();
            }
        }
        let next = st.core.poll_timeout();
        if next.is_some_and(|t| st.armed.is_none_or(|armed| t < armed)) {
            st.armed = next;
            self.timer.notify();
        }
    }

    fn act(&self, st: &mut State, action: Action) {
        let Some(me) = self.weak.upgrade() else {
            return;
        };
        match action {
            Action::Resolve { target } => {
                if let Some(old) = st.resolver.take() {
                    old.task.abort();
                }
                let again = Arc::new(Signal::new());
                let custom = self.resolvers.get(&target.scheme).cloned();
                let task = Task::spawn(&self.rt, resolver_task(me, target, custom, again.clone()));
                st.resolver = Some(ResolverHandle { again, task });
            }
            Action::ResolveNow => {
                if let Some(r) = &st.resolver {
                    r.again.notify();
                }
            }
            Action::StopResolving => {
                if let Some(r) = st.resolver.take() {
                    r.task.abort();
                }
            }
            Action::Connect { conn, address } => {
                let flush = Arc::new(Signal::new());
                let resume = Arc::new(Signal::new());
                let paused = Arc::new(AtomicBool::new(false));
                let authority = st.core.authority().to_owned();
                let task = Task::spawn(
                    &self.rt,
                    connection_task(
                        me,
                        conn,
                        address,
                        authority,
                        flush.clone(),
                        resume.clone(),
                        paused.clone(),
                    ),
                );
                st.conns.insert(
                    conn,
                    ConnHandle {
                        flush,
                        resume,
                        paused,
                        task,
                    },
                );
            }
            Action::Flush(conn) => {
                if let Some(c) = st.conns.get(&conn) {
                    c.flush.notify();
                }
            }
            Action::Close(conn) => {
                if let Some(c) = st.conns.remove(&conn) {
                    c.task.abort();
                }
            }
        }
    }

    /// Shuts the channel down (graceful for running calls) and stops its tasks once
    /// the core has closed everything.
    pub(crate) fn shutdown(&self) {
        let now = self.now();
        self.with(|st| {
            st.core.shutdown(now);
        });
    }
}

impl<R: Runtime> Drop for Shared<R> {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, c) in st.conns.drain() {
            c.task.abort();
        }
        if let Some(r) = st.resolver.take() {
            r.task.abort();
        }
    }
}

/// Fires the core's timers. Ends when the channel is gone.
async fn timer_task<R: Runtime>(weak: Weak<Shared<R>>) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let timer = shared.timer.clone();
        let next = shared.with_quiet(|st| {
            let next = st.core.poll_timeout();
            st.armed = next;
            next
        });
        match next {
            Some(at) => {
                let sleep = shared.rt.sleep_until(at);
                // Hold no strong reference while asleep, so dropping the channel ends us.
                drop(shared);
                let notified = std::pin::pin!(timer.notified());
                let sleep = std::pin::pin!(sleep);
                if let Either::Left(_) = select(sleep, notified).await
                    && let Some(shared) = weak.upgrade()
                {
                    let now = shared.now();
                    shared.with(|st| st.core.handle_timeout(now));
                }
            }
            None => {
                drop(shared);
                timer.notified().await;
            }
        }
    }
}

/// Resolves `target` now and on every request: DNS (A and AAAA through the
/// runtime's resolver) or the user's resolver for the scheme.
async fn resolver_task<R: Runtime>(
    shared: Arc<Shared<R>>,
    target: Target,
    custom: Option<Arc<dyn Resolver>>,
    again: Arc<Signal>,
) {
    let weak = Arc::downgrade(&shared);
    let rt = shared.rt.clone();
    drop(shared);
    loop {
        let result = match &custom {
            Some(r) => r.resolve(&target).await,
            None => resolve_dns(&rt, &target).await,
        };
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let now = shared.now();
        shared.with(|st| st.core.resolver_update(result, now));
        drop(shared);
        again.notified().await;
    }
}

async fn resolve_dns<R: Runtime>(rt: &R, target: &Target) -> Result<ResolverState, Status> {
    let (host, port) = dns_host_port(target).map_err(|e| Status::unavailable(e.to_string()))?;
    let addrs = rt
        .lookup(&host, port)
        .await
        .map_err(|e| Status::unavailable(format!("dns: lookup {host}: {e}")))?;
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for a in addrs {
        let address = Address::Socket(a);
        if !endpoints.iter().any(|e| e.addresses[0] == address) {
            endpoints.push(Endpoint::new(address));
        }
    }
    if endpoints.is_empty() {
        return Err(Status::unavailable(format!("dns: no addresses for {host}")));
    }
    Ok(ResolverState {
        endpoints,
        ..ResolverState::default()
    })
}

/// Connects, then runs the connection: the writer as its own task, the reader here.
async fn connection_task<R: Runtime>(
    shared: Arc<Shared<R>>,
    conn: ConnId,
    address: Address,
    authority: String,
    flush: Arc<Signal>,
    resume: Arc<Signal>,
    paused: Arc<AtomicBool>,
) {
    let io = shared
        .connector
        .connect(&address, &authority, &shared.dialer)
        .await;
    let io = match io {
        Ok(io) => io,
        Err(e) => {
            let message = format!("dial {address}: {e}");
            let now = shared.now();
            shared.with(|st| st.core.connect_result(conn, Err(message), now));
            return;
        }
    };
    let now = shared.now();
    shared.with(|st| st.core.connect_result(conn, Ok(()), now));
    let (reader, writer) = split(io);
    // The reader ends on EOF or error, or this task is aborted once the core has
    // closed the connection: either way the writer, and with it the socket, goes too.
    let _writer = AbortOnDrop(Task::spawn(
        &shared.rt,
        write_loop(Arc::downgrade(&shared), conn, writer, flush),
    ));
    read_loop(Arc::downgrade(&shared), conn, reader, resume, paused).await;
}

/// Socket → core, pausing while the core does not want to read (flow control).
async fn read_loop<R: Runtime>(
    weak: Weak<Shared<R>>,
    conn: ConnId,
    mut reader: ReadSide,
    resume: Arc<Signal>,
    paused: Arc<AtomicBool>,
) {
    let mut region = ReadRegion::default();
    // Whether the core wants more bytes, when the last read's trip through it asked.
    let mut wants = None;
    loop {
        loop {
            let wants = match wants.take() {
                Some(wants) => wants,
                None => {
                    let Some(shared) = weak.upgrade() else {
                        return;
                    };
                    shared.peek(|st| wants_read(st, conn, &paused))
                }
            };
            if wants {
                break;
            }
            resume.notified().await;
        }
        let read = region.read(&mut reader).await;
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let now = shared.now();
        match read {
            Ok(data) if !data.is_empty() => {
                // Asked under the same lock: a trip of its own per read was not needed.
                wants = Some(shared.with(|st| {
                    st.core.recv(conn, data, now);
                    wants_read(st, conn, &paused)
                }));
            }
            _ => {
                shared.with(|st| st.core.recv_eof(conn, now));
                return;
            }
        }
        let rt = shared.rt.clone();
        drop(shared);
        if region.filled() {
            // Let the callers this read woke take their messages before reading on:
            // otherwise the reader, never blocked while the socket has data, runs
            // ahead of them by the whole flow-control window (16 MiB once BDP has
            // grown it), all of it held in memory.
            rt.yield_now().await;
        }
    }
}

/// Whether the core wants bytes from `conn`'s socket, noted in `paused` under the lock
/// (so a settle that makes reading possible again sees the reader waiting).
fn wants_read(st: &State, conn: ConnId, paused: &AtomicBool) -> bool {
    let wants = st.core.wants_read(conn);
    paused.store(!wants, Ordering::Relaxed);
    wants
}

/// Core → socket: each batch from `poll_transmit` in vectored writes, frame heads and
/// payload `Bytes` as they are.
async fn write_loop<R: Runtime>(
    weak: Weak<Shared<R>>,
    conn: ConnId,
    mut writer: WriteSide,
    flush: Arc<Signal>,
) {
    let mut out = Transmit::new();
    // More than one call open when the last batch was taken: a wake may be the first
    // of several callers queueing frames.
    let mut several = false;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let now = shared.now();
        let more = shared.with(|st| {
            // Asking before calling again spares the call that would come back empty
            // (each call steps the whole channel). The first call is always made: it
            // is what re-arms the core's flush notice.
            while st.core.poll_transmit(conn, now, &mut out) > 0
                && out.len() < 256 * 1024
                && st.core.wants_transmit(conn)
            {}
            several = st.core.open_calls() > 1;
            st.core.wants_transmit(conn)
        });
        drop(shared);
        if !out.is_empty() {
            let written = write_chunks(&mut writer, out.chunks()).await;
            // Keeps the batch's Vec for the next one.
            out.clear();
            if written.is_err() {
                break;
            }
            // Only a batch cut at its size limit leaves more to take now. Otherwise
            // the notice was re-armed before this write, so whatever was queued
            // during it has signalled: waiting is right, and a call to find the queue
            // empty (a trip through the whole channel per batch) is not needed.
            if more {
                continue;
            }
        }
        // The queue ran dry: push out anything a wrapping stream (TLS) buffers.
        if writer.flush().await.is_err() {
            break;
        }
        flush.notified().await;
        // Gather what the other ready tasks are about to queue into one write (with
        // one call there is nothing to gather: a ping-pong would only pay for it).
        if several {
            yield_now().await;
        }
    }
    if let Some(shared) = weak.upgrade() {
        let now = shared.now();
        shared.with(|st| st.core.recv_eof(conn, now));
    }
}

/// Writes every chunk, in order, with as few `write_vectored` calls as the socket
/// allows. Nothing is allocated: the slices live on the stack, and a partly written
/// chunk is resumed from an offset.
pub(crate) async fn write_chunks<W: AsyncWrite + Unpin>(
    w: &mut W,
    chunks: &[Bytes],
) -> io::Result<()> {
    const MAX_SLICES: usize = 64;
    let (mut start, mut offset) = (0, 0);
    loop {
        // Skip what is fully written (and empty chunks, which write nothing).
        while start < chunks.len() && chunks[start].len() == offset {
            start += 1;
            offset = 0;
        }
        if start == chunks.len() {
            return Ok(());
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(&chunks[start..]) {
            let from = if count == 0 { offset } else { 0 };
            *slot = IoSlice::new(&chunk[from..]);
            count += 1;
        }
        let mut n = w.write_vectored(&slices[..count]).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed"));
        }
        while n > 0 && start < chunks.len() {
            let left = chunks[start].len() - offset;
            if n >= left {
                n -= left;
                start += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// The output of a future that must complete on its first poll: the sources and
    /// sinks here are always ready.
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("an always-ready future")
    }

    /// A sink taking at most `per_call` bytes per write, recording how many writes.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        writes: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.per_call);
            self.got.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.per_call;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.got.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
                if left == 0 {
                    break;
                }
            }
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn every_byte_in_order_across_partial_writes_empty_chunks_and_many_chunks() {
        let chunks: Vec<Bytes> = (0..150u8)
            .map(|i| Bytes::from(vec![i; usize::from(i % 7)]))
            .collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        for per_call in [1, 3, 10, 1000, usize::MAX] {
            let mut sink = Trickle {
                got: Vec::new(),
                per_call,
                writes: 0,
            };
            ready(write_chunks(&mut sink, &chunks)).unwrap();
            assert_eq!(sink.got, expected, "{per_call} bytes per write");
            if per_call == usize::MAX {
                // 150 chunks in batches of at most 64 slices.
                assert_eq!(sink.writes, 3);
            }
        }
    }

    #[test]
    fn a_sink_that_takes_nothing_is_an_error_not_a_loop() {
        let mut sink = Trickle {
            got: Vec::new(),
            per_call: 0,
            writes: 0,
        };
        let err = ready(write_chunks(&mut sink, &[Bytes::from_static(b"x")])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }
}
