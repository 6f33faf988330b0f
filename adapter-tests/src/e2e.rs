//! Our client against our server over loopback TCP: the four call kinds,
//! metadata, deadlines, cancellation by drop, errors, restart with reconnect, and
//! graceful shutdown during a stream of calls.

use std::time::Duration;

use crate::{TestRuntime, listen, spawn, timeout, yield_now};
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
    // The calls after the GOAWAY went over a new connection.
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
