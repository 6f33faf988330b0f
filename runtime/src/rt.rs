//! What this layer needs of an async runtime ([`Runtime`]), the byte streams it runs
//! connections over ([`Io`]), and the few runtime-neutral synchronisation pieces the
//! tasks share: a one-waiter `Signal`, a state `Watch` and abortable `Task`s.
//!
//! An adapter crate implements [`Runtime`] in a hundred lines (spawn, sleep, clock,
//! sockets, DNS, accept); everything else — the driver, the channel and server APIs,
//! TLS, the proxy — is written once, here.

use std::any::Any;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{AbortHandle, Either, abortable, select};
use futures_util::task::AtomicWaker;
use grpc_sansio::channel::target::Address;

/// A boxed future, for the user hooks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A byte stream a connection runs over: TCP, a unix socket, TLS, a proxy tunnel. The
/// `futures-io` traits are the runtime-neutral ones; the tokio adapter wraps tokio's
/// streams to fit them.
///
/// The writers hand each batch of frame heads and payloads to `poll_write_vectored`.
/// A stream that does not override it (the trait's default writes only the first
/// slice) still works, but costs a write per chunk: forward it in your own wrappers.
/// (async-std's and async-net's `UnixStream` do not; the async-std adapter uses
/// `async_io::Async<UnixStream>`, which does.)
///
/// A stream that comes in two independent halves (a TCP socket) should be handed over
/// as [`Halves`]: the connection's reader and writer then use one each. Any other
/// stream is split with a lock the two take turns holding.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The stream as `Any`, so that [`split`] can find [`Halves`] behind a `dyn Io`.
    #[doc(hidden)]
    fn as_any(&self) -> &(dyn Any + Send);

    /// The boxed stream as `Any`, so that [`split`] can take [`Halves`] apart.
    #[doc(hidden)]
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {
    fn as_any(&self) -> &(dyn Any + Send) {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// The read side of a connection's stream, owned by its reader task.
pub(crate) type ReadSide = Box<dyn AsyncRead + Send + Unpin>;

/// The write side of a connection's stream, owned by its writer task.
pub(crate) type WriteSide = Box<dyn AsyncWrite + Send + Unpin>;

/// A byte stream as two halves that work independently, such as a TCP socket's (tokio's
/// `into_split`, or two handles of async-std's socket). A stream split by
/// `futures`' `AsyncReadExt::split` instead puts a lock between its reader and its writer:
/// on a runtime with several worker threads, a read that finds the writer in its
/// `write` system call waits for it to end, and is woken from the other thread.
///
/// Used as one stream (a proxy's CONNECT exchange, say) it reads from the one half and
/// writes to the other.
pub struct Halves {
    read: ReadSide,
    write: WriteSide,
}

impl Halves {
    /// The stream made of `read` and `write`, the two halves of one connection.
    pub fn new(
        read: impl AsyncRead + Send + Unpin + 'static,
        write: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Halves {
        Halves {
            read: Box::new(read),
            write: Box::new(write),
        }
    }
}

impl AsyncRead for Halves {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Halves {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_close(cx)
    }
}

/// `io` as a read side and a write side for the reader and writer tasks: the halves of
/// [`Halves`] as they are, any other stream behind a lock.
pub(crate) fn split(io: Box<dyn Io>) -> (ReadSide, WriteSide) {
    // Asked of the stream in the box: `Box<dyn Io>` is itself an `Io`, and would
    // answer for itself.
    if !(*io).as_any().is::<Halves>() {
        let (read, write) = futures_util::io::AsyncReadExt::split(io);
        return (Box::new(read), Box::new(write));
    }
    match <dyn Io>::into_any(io).downcast::<Halves>() {
        Ok(halves) => (halves.read, halves.write),
        Err(_) => unreachable!("the stream was just found to be Halves"),
    }
}

/// An async runtime, as this layer uses it. Implemented by the adapters
/// (`grpc-sansio-tokio`, `grpc-sansio-async-std`); cheap to clone.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The listening socket [`Server::serve`](crate::server::Server::serve) accepts on.
    type Listener: Send + Sync + 'static;

    /// The runtime the calling code runs in (for tokio: the current runtime's handle,
    /// so this must be called inside one).
    fn current() -> Self;

    /// Runs `task` in the background, detached.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static;

    /// Now, on the runtime's clock (tokio's paused test clock, for instance).
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Lets every other ready task run before the caller goes on, including a future
    /// the runtime drives outside its task queue (tokio's `block_on` future, which
    /// sees a task that wakes itself only every 61 polls). Connection readers call it
    /// after a read that left data in the socket. The default wakes the caller once
    /// (to the back of the run queue, in tokio and async-executor alike).
    fn yield_now(&self) -> impl Future<Output = ()> + Send + 'static {
        yield_now()
    }

    /// Opens a plain socket: TCP with TCP_NODELAY for socket addresses and names, or a
    /// unix socket.
    fn connect(
        &self,
        address: &Address,
    ) -> impl Future<Output = io::Result<Box<dyn Io>>> + Send + 'static;

    /// Resolves `host` to its addresses (A and AAAA records).
    fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static;

    /// Accepts one connection on `listener` (TCP_NODELAY set).
    fn accept(
        &self,
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Box<dyn Io>, SocketAddr)>> + Send;
}

/// Opens plain sockets on a channel's runtime: what wrapping connectors (TLS, the
/// proxy tunnel) build on, handed to every [`Connector`](crate::driver::Connector).
#[derive(Clone)]
pub struct Dialer(Arc<DialFn>);

/// What a [`Dialer`] calls.
type DialFn = dyn Fn(&Address) -> BoxFuture<io::Result<Box<dyn Io>>> + Send + Sync;

impl Dialer {
    /// A dialer connecting with `rt`.
    pub fn new<R: Runtime>(rt: R) -> Dialer {
        Dialer(Arc::new(move |address: &Address| {
            Box::pin(rt.connect(address))
        }))
    }

    /// A dialer that calls `f` (tests, or a socket factory of your own).
    pub fn from_fn(
        f: impl Fn(&Address) -> BoxFuture<io::Result<Box<dyn Io>>> + Send + Sync + 'static,
    ) -> Dialer {
        Dialer(Arc::new(f))
    }

    /// Opens a plain socket to `address`.
    pub fn dial(&self, address: &Address) -> BoxFuture<io::Result<Box<dyn Io>>> {
        (self.0)(address)
    }
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialer")
    }
}

/// Wakes one waiting task; a notification with nobody waiting is kept for the next
/// wait, so a wake between "look" and "wait" is never lost.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    pub(crate) fn new() -> Signal {
        Signal::default()
    }

    /// Wakes the waiter, or leaves a permit for the next one.
    pub(crate) fn notify(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Completes once notified (consuming the permit).
    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified(self)
    }

    fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.set.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A notify between the first check and the registration woke nobody.
        if self.set.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The future of [`Signal::notified`].
pub(crate) struct Notified<'a>(&'a Signal);

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_notified(cx)
    }
}

/// A value many tasks watch for changes (the channel's connectivity state, a
/// server's shutdown flag).
pub(crate) struct Watch<T> {
    inner: Arc<Mutex<WatchState<T>>>,
}

struct WatchState<T> {
    value: T,
    version: u64,
    closed: bool,
    wakers: Vec<Waker>,
}

impl<T: Clone> Watch<T> {
    pub(crate) fn new(value: T) -> Watch<T> {
        Watch {
            inner: Arc::new(Mutex::new(WatchState {
                value,
                version: 0,
                closed: false,
                wakers: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current value.
    pub(crate) fn get(&self) -> T {
        self.lock().value.clone()
    }

    /// Replaces the value and wakes every watcher.
    pub(crate) fn set(&self, value: T) {
        let wakers = {
            let mut st = self.lock();
            st.value = value;
            st.version += 1;
            std::mem::take(&mut st.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A watcher that has seen nothing yet.
    pub(crate) fn subscribe(&self) -> Watcher<T> {
        Watcher {
            inner: self.inner.clone(),
            seen: None,
        }
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        let wakers = {
            let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            st.closed = true;
            std::mem::take(&mut st.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// One task's view of a [`Watch`].
pub(crate) struct Watcher<T> {
    inner: Arc<Mutex<WatchState<T>>>,
    seen: Option<u64>,
}

impl<T: Clone> Watcher<T> {
    /// The current value, marked as seen.
    pub(crate) fn borrow_and_update(&mut self) -> T {
        let st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.seen = Some(st.version);
        st.value.clone()
    }

    /// Waits for a value not yet seen; `Err` once the watched value is gone.
    pub(crate) async fn changed(&mut self) -> Result<(), ()> {
        std::future::poll_fn(|cx| {
            let mut st = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if self.seen != Some(st.version) {
                return Poll::Ready(Ok(()));
            }
            if st.closed {
                return Poll::Ready(Err(()));
            }
            if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                st.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Waits until `pred` holds for the value.
    pub(crate) async fn wait_for(&mut self, pred: impl Fn(&T) -> bool) {
        loop {
            if pred(&self.borrow_and_update()) || self.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A spawned task that can be stopped and awaited.
#[derive(Debug)]
pub(crate) struct Task {
    abort: AbortHandle,
    done: Arc<Signal>,
}

impl Task {
    /// Spawns `fut` on `rt`.
    pub(crate) fn spawn<R: Runtime>(
        rt: &R,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> Task {
        let (fut, abort) = abortable(fut);
        let done = Arc::new(Signal::new());
        let finished = done.clone();
        rt.spawn(async move {
            let _ = fut.await;
            finished.notify();
        });
        Task { abort, done }
    }

    /// Stops the task at its next await point.
    pub(crate) fn abort(&self) {
        self.abort.abort();
    }

    /// Waits until the task has ended (one waiter).
    pub(crate) async fn join(&self) {
        self.done.notified().await;
    }
}

/// Aborts its task when dropped: for a task that must not outlive the one that spawned
/// it, even when that one is aborted (a connection's writer holds its socket open).
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) Task);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `fut` for at most `limit`; `None` if the time ran out first.
pub(crate) async fn timeout<R: Runtime, F: Future>(
    rt: &R,
    limit: Duration,
    fut: F,
) -> Option<F::Output> {
    let sleep = rt.sleep_until(rt.now() + limit);
    let fut = std::pin::pin!(fut);
    let sleep = std::pin::pin!(sleep);
    match select(fut, sleep).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

/// Lets the other tasks that are ready run first: wakes itself and is pending once.
///
/// A writer woken by the first of many callers would otherwise run right after it
/// (tokio puts a task woken by another in a "next" slot) and write that caller's
/// frames alone; behind the queue it finds every ready caller's frames and writes
/// them together. A task that wakes itself while running goes to the back of the
/// run queue in tokio and async-executor alike.
pub(crate) fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// The future of [`yield_now`].
pub(crate) struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker;
    use std::sync::Condvar;

    /// A stream whose reads and writes each wait (up to a second) inside the poll for
    /// one of the other kind to be inside its poll too, and count the meetings.
    #[derive(Clone, Default)]
    struct Meeting(Arc<(Mutex<(u32, u32)>, Condvar)>);

    impl Meeting {
        /// Waits inside a poll for the other side; true if it came.
        fn meet(&self) -> bool {
            let (lock, cv) = &*self.0;
            let mut st = lock.lock().unwrap();
            st.0 += 1;
            cv.notify_all();
            let (mut st, _) = cv
                .wait_timeout_while(st, Duration::from_secs(1), |st| st.0 < 2)
                .unwrap();
            let met = st.0 >= 2;
            if met {
                st.1 += 1;
            }
            met
        }

        fn meetings(&self) -> u32 {
            self.0.0.lock().unwrap().1
        }
    }

    impl AsyncRead for Meeting {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.meet();
            Poll::Ready(Ok(buf.len()))
        }
    }

    impl AsyncWrite for Meeting {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.meet();
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Polls a read on `read` and a write on `write` at the same time, each from its own
    /// thread, and says whether each poll got through to the stream.
    fn read_and_write_together(mut read: ReadSide, mut write: WriteSide) -> (bool, bool) {
        let writer = std::thread::spawn(move || {
            let waker = noop_waker();
            let mut cx = Context::from_waker(&waker);
            Pin::new(&mut write)
                .poll_write(&mut cx, b"frame")
                .is_ready()
        });
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 8];
        let read = Pin::new(&mut read).poll_read(&mut cx, &mut buf).is_ready();
        (read, writer.join().unwrap())
    }

    #[test]
    fn halves_let_a_read_and_a_write_run_at_once_where_a_locked_split_makes_one_wait() {
        let meeting = Meeting::default();
        let io: Box<dyn Io> = Box::new(Halves::new(meeting.clone(), meeting.clone()));
        let (read, write) = split(io);
        assert_eq!(read_and_write_together(read, write), (true, true));
        assert_eq!(
            meeting.meetings(),
            2,
            "the read and the write met inside their polls"
        );

        // The same stream not in halves: one side finds the lock taken and is pending,
        // while the other waits out its second alone.
        let meeting = Meeting::default();
        let (read, write) = split(Box::new(meeting.clone()));
        let (read_done, write_done) = read_and_write_together(read, write);
        assert!(!(read_done && write_done), "one of them could not get in");
        assert_eq!(meeting.meetings(), 0);
    }

    #[test]
    fn halves_used_whole_read_from_one_half_and_write_to_the_other() {
        use futures_util::io::{AsyncReadExt, AsyncWriteExt, Cursor};
        let sink = Arc::new(Mutex::new(Vec::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl AsyncWrite for Sink {
            fn poll_write(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let mut io = Halves::new(Cursor::new(b"from the peer".to_vec()), Sink(sink.clone()));
        // Both ends are always ready: the exchange completes in one poll.
        let exchange = async {
            io.write_all(b"to the peer").await.unwrap();
            let mut got = String::new();
            io.read_to_string(&mut got).await.unwrap();
            got
        };
        let got = futures_util::FutureExt::now_or_never(exchange).expect("never pending");
        assert_eq!(got, "from the peer");
        assert_eq!(&sink.lock().unwrap()[..], b"to the peer");
    }

    #[test]
    fn a_signal_keeps_one_permit_for_a_late_waiter() {
        let s = Signal::new();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        s.notify();
        s.notify();
        assert!(s.poll_notified(&mut cx).is_ready());
        assert!(s.poll_notified(&mut cx).is_pending());
        s.notify();
        assert!(s.poll_notified(&mut cx).is_ready());
    }

    #[test]
    fn a_watcher_sees_each_change_and_the_end() {
        let w = Watch::new(1);
        let mut r = w.subscribe();
        assert_eq!(r.borrow_and_update(), 1);
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut changed = std::pin::pin!(r.changed());
            assert!(changed.as_mut().poll(&mut cx).is_pending());
            w.set(2);
            assert_eq!(changed.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
        }
        assert_eq!(r.borrow_and_update(), 2);
        drop(w);
        let mut changed = std::pin::pin!(r.changed());
        assert_eq!(changed.as_mut().poll(&mut cx), Poll::Ready(Err(())));
    }

    #[test]
    fn yield_now_wakes_itself_and_is_pending_exactly_once() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl futures_util::task::ArcWake for Count {
            fn wake_by_ref(arc_self: &Arc<Self>) {
                arc_self
                    .0
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(Default::default()));
        let waker = futures_util::task::waker(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut y = std::pin::pin!(yield_now());
        assert!(y.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(y.as_mut().poll(&mut cx).is_ready());
        assert_eq!(count.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
