//! Our client against our server over loopback TCP: the four call kinds,
//! metadata, deadlines, cancellation by drop, errors, restart with reconnect, and
//! graceful shutdown during a stream of calls.

use std::time::Duration;

use crate::{TestRuntime, listen, sleep, spawn, timeout, yield_now};
use bytes::Bytes;
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio_runtime::{BytesCodec, CallOptions, Channel, Code, Incoming, Outgoing, Server};

async fn start<R: TestRuntime>() -> (Server<R>, String) {
    let (listener, addr) = listen::<R>().await;
    let addr = addr.to_string();
    let s = crate::scenarios::echo_server::<R>();
    let serving = s.clone();
    spawn::<R, _>(async move { serving.serve(listener).await });
    (s, addr)
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn four_call_kinds_with_metadata<R: TestRuntime>() {
    let (_server, addr) = start::<R>().await;
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connect()
        .await
        .expect("connects");
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    crate::scenarios::four_call_kinds(&channel).await;
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn errors_deadlines_and_unknown_methods<R: TestRuntime>() {
    let (_server, addr) = start::<R>().await;
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connect_lazy()
        .unwrap();
    crate::scenarios::errors_and_deadlines(&channel).await;
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn dropping_a_stream_cancels_the_call_on_the_server<R: TestRuntime>() {
    let (cancelled_tx, mut cancelled_rx) = futures_channel::mpsc::unbounded::<Code>();
    let server = Server::<R>::builder()
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Forever",
            move |mut incoming: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| {
                let tx = cancelled_tx.clone();
                async move {
                    out.send(Bytes::from_static(b"first")).await?;
                    let r = incoming.message().await;
                    if let Err(status) = &r {
                        let _ = tx.unbounded_send(status.code);
                    }
                    r.map(|_| ())
                }
            },
        )
        .build();
    let (listener, addr) = listen::<R>().await;
    let addr = addr.to_string();
    let serving = server.clone();
    spawn::<R, _>(async move { serving.serve(listener).await });
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connect()
        .await
        .unwrap();
    let (tx, mut rx) = channel
        .bidi_streaming::<BytesCodec>("/test.Echo/Forever", CallOptions::new())
        .await
        .unwrap();
    assert_eq!(
        rx.message().await.unwrap(),
        Some(Bytes::from_static(b"first"))
    );
    drop(rx);
    let code = timeout::<R, _>(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut cancelled_rx),
    )
    .await
    .expect("the handler saw the cancellation")
    .unwrap();
    assert_eq!(code, Code::Cancelled);
    drop(tx);
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn the_channel_reconnects_after_a_server_restart<R: TestRuntime>() {
    let (listener, addr) = listen::<R>().await;
    let first = crate::scenarios::echo_server::<R>();
    let serving = first.clone();
    let task = spawn::<R, _>(async move { serving.serve(listener).await });
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .backoff(grpc_sansio::channel::backoff::BackoffConfig {
            base_delay: Duration::from_millis(50),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_millis(500),
        })
        .connect()
        .await
        .unwrap();
    channel
        .unary::<BytesCodec>(
            "/test.Echo/Unary",
            Bytes::from_static(b"a"),
            CallOptions::new(),
        )
        .await
        .unwrap();
    // Stop the server: graceful GOAWAY, then the listener is gone.
    first.shutdown();
    task.await.unwrap().unwrap();
    let state = timeout::<R, _>(
        Duration::from_secs(5),
        channel.wait_for_state_change(ConnectivityState::Ready),
    )
    .await
    .expect("the channel noticed");
    assert_eq!(state, ConnectivityState::Idle);
    let err = channel
        .unary::<BytesCodec>(
            "/test.Echo/Unary",
            Bytes::from_static(b"b"),
            CallOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");
    // Back on the same port; a wait-for-ready call goes through after the backoff.
    let listener = R::bind(addr).await.unwrap();
    let second = crate::scenarios::echo_server::<R>();
    let serving = second.clone();
    spawn::<R, _>(async move { serving.serve(listener).await });
    let reply = timeout::<R, _>(
        Duration::from_secs(10),
        channel.unary::<BytesCodec>(
            "/test.Echo/Unary",
            Bytes::from_static(b"c"),
            CallOptions::new().wait_for_ready(true),
        ),
    )
    .await
    .expect("recovered in time")
    .unwrap();
    assert_eq!(reply.message, Bytes::from_static(b"c"));
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn goaway_during_a_stream_of_calls_fails_none<R: TestRuntime>() {
    let (server, addr) = start::<R>().await;
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connect()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let ch = channel.clone();
        tasks.push(spawn::<R, _>(async move {
            ch.unary::<BytesCodec>(
                "/test.Echo/Unary",
                Bytes::from(i.to_string()),
                CallOptions::new().wait_for_ready(true),
            )
            .await
        }));
        // Let the calls start, so some are in flight at the GOAWAY.
        yield_now().await;
        if i == 100 {
            // Graceful shutdown of the connections, while the listener keeps accepting.
            assert_eq!(server.connection_count(), 1);
            server.drain_connections();
        }
    }
    for t in tasks {
        t.await
            .unwrap()
            .expect("no call fails across a graceful GOAWAY");
    }
    // The calls after the GOAWAY went over a new connection; the drained one closes
    // once its last stream is done, which under load may be a moment after the calls.
    for _ in 0..500 {
        if server.connection_count() == 1 {
            break;
        }
        sleep::<R>(Duration::from_millis(10)).await;
    }
    assert_eq!(server.connection_count(), 1);
    assert_eq!(channel.state(false), ConnectivityState::Ready);
}

/// Records when each connection attempt starts, then dials as usual.
struct AttemptClock(std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>);

impl grpc_sansio_runtime::Connector for AttemptClock {
    fn connect(
        &self,
        address: &grpc_sansio::channel::target::Address,
        _authority: &str,
        dialer: &grpc_sansio_runtime::Dialer,
    ) -> grpc_sansio_runtime::BoxFuture<std::io::Result<Box<dyn grpc_sansio_runtime::Io>>> {
        self.0.lock().unwrap().push(std::time::Instant::now());
        dialer.dial(address)
    }
}

/// Instantiated per runtime by [`suite!`](crate::suite).
///
/// Nothing listens: a wait-for-ready call keeps the channel trying, and the attempts
/// come at the backoff's intervals (100, 200, 400 ms with no jitter).
pub async fn reconnect_attempts_follow_the_backoff<R: TestRuntime>() {
    let (listener, addr) = listen::<R>().await;
    drop(listener);
    let attempts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connector(std::sync::Arc::new(AttemptClock(attempts.clone())))
        .backoff(grpc_sansio::channel::backoff::BackoffConfig {
            base_delay: Duration::from_millis(100),
            multiplier: 2.0,
            jitter: 0.0,
            max_delay: Duration::from_secs(10),
        })
        .connect_lazy()
        .unwrap();
    let err = channel
        .unary::<BytesCodec>(
            "/test.Echo/Unary",
            Bytes::new(),
            CallOptions::new()
                .wait_for_ready(true)
                .timeout(Duration::from_millis(1000)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded, "{err:?}");
    let at = attempts.lock().unwrap().clone();
    // Attempts at about 0, 100, 300 and 700 ms (the next would be at 1500).
    assert!(at.len() >= 4, "{} attempts in 1 s", at.len());
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().take(3).enumerate() {
        let expected = Duration::from_millis(100 << i);
        assert!(
            *gap >= expected.mul_f64(0.9) && *gap <= expected + Duration::from_millis(300),
            "attempt gap {i}: {gap:?}, expected about {expected:?} (all gaps {gaps:?})"
        );
    }
}

/// Counts the bytes read through it: what the connection's reader has taken from the
/// socket.
struct CountingReads {
    inner: Box<dyn grpc_sansio_runtime::Io>,
    read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl futures_io::AsyncRead for CountingReads {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = polled {
            self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }
}

impl futures_io::AsyncWrite for CountingReads {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Dials as usual and counts what the connection reads.
struct CountingConnector(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl grpc_sansio_runtime::Connector for CountingConnector {
    fn connect(
        &self,
        address: &grpc_sansio::channel::target::Address,
        _authority: &str,
        dialer: &grpc_sansio_runtime::Dialer,
    ) -> grpc_sansio_runtime::BoxFuture<std::io::Result<Box<dyn grpc_sansio_runtime::Io>>> {
        let dial = dialer.dial(address);
        let read = self.0.clone();
        Box::pin(async move {
            let inner = dial.await?;
            Ok(Box::new(CountingReads { inner, read }) as Box<dyn grpc_sansio_runtime::Io>)
        })
    }
}

/// For a runtime whose tasks share one thread (`tests/tokio_extra.rs`: tokio's
/// current-thread runtime, with the caller as the `block_on` future).
///
/// A server streams 32 MiB as fast as flow control allows to a caller that takes each
/// message as it comes. The connection's reader must let the caller run between its
/// reads: one that reads on while the socket has data gets ahead of the caller by as
/// much as the flow-control window allows (16 MiB once BDP estimation has grown it),
/// all of it held in memory. (On a multi-threaded executor the caller and the reader
/// run in parallel, and no yield can keep a slower caller level with the reader: there
/// the window is the bound.)
pub async fn a_streaming_caller_is_never_more_than_a_read_behind_the_reader<R: TestRuntime>() {
    use crate::scenarios::FLOOD_MESSAGE;
    let (_server, addr) = start::<R>().await;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connector(std::sync::Arc::new(CountingConnector(read.clone())))
        .connect()
        .await
        .expect("connects");
    let n = 512;
    let mut stream = channel
        .server_streaming::<BytesCodec>(
            "/test.Echo/Flood",
            Bytes::from(n.to_string()),
            CallOptions::new(),
        )
        .await
        .unwrap();
    let (mut taken, mut messages, mut behind) = (0, 0, 0);
    while let Some(m) = stream.message().await.unwrap() {
        taken += m.len();
        messages += 1;
        // What was read counts frame heads, HEADERS and SETTINGS too: 41 bytes per
        // message (four DATA frames and the 5-byte prefix), a few hundred besides.
        let overhead = messages * 41 + 1024;
        let ahead = read.load(std::sync::atomic::Ordering::Relaxed);
        behind = behind.max(ahead.saturating_sub(taken + overhead));
    }
    assert!(stream.status().unwrap().is_ok(), "{:?}", stream.status());
    assert_eq!(taken, n * FLOOD_MESSAGE);
    // One read (at most the reader's 256 KiB region) and the message being assembled.
    let bound = (256 << 10) + FLOOD_MESSAGE;
    assert!(
        behind <= bound,
        "the caller fell {behind} bytes behind the reader (bound {bound})"
    );
}
