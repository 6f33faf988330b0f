//! Our tokio client against our tokio server over loopback TCP: the four call kinds,
//! metadata, deadlines, cancellation by drop, errors, restart with reconnect, and
//! graceful shutdown during a stream of calls.

use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio_tokio::{
    BytesCodec, CallOptions, Channel, Code, Incoming, Metadata, Outgoing, Reply, Request, Server,
    Status,
};
use tokio::net::TcpListener;

fn server() -> Server {
    Server::builder()
        .unary::<BytesCodec, _, _>("/test.Echo/Unary", |req: Request<Bytes>| async move {
            let mut reply = Reply::new(req.message.clone());
            if let Some(v) = req.head.metadata.get("x-echo") {
                reply.metadata.append("x-echo", v.clone()).unwrap();
                reply
                    .trailers
                    .append("x-echo-trailer-bin", v.clone())
                    .unwrap();
            }
            Ok(reply)
        })
        .unary::<BytesCodec, _, _>("/test.Echo/Fail", |_req: Request<Bytes>| async move {
            Err(Status::new(Code::NotFound, "nothing here"))
        })
        .unary::<BytesCodec, _, _>("/test.Echo/Sleep", |_req: Request<Bytes>| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Reply::new(Bytes::new()))
        })
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Count",
            |mut incoming: Incoming<BytesCodec>, mut out: Outgoing<BytesCodec>| async move {
                let n: usize = match incoming.message().await? {
                    Some(m) => std::str::from_utf8(&m).unwrap().parse().unwrap(),
                    None => 0,
                };
                for i in 0..n {
                    out.send(Bytes::from(i.to_string())).await?;
                }
                Ok(())
            },
        )
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Sum",
            |mut incoming: Incoming<BytesCodec>, mut out: Outgoing<BytesCodec>| async move {
                let mut total = 0;
                while let Some(m) = incoming.message().await? {
                    total += m.len();
                }
                out.send(Bytes::from(total.to_string())).await?;
                Ok(())
            },
        )
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Chat",
            |mut incoming: Incoming<BytesCodec>, mut out: Outgoing<BytesCodec>| async move {
                while let Some(m) = incoming.message().await? {
                    out.send(m).await?;
                }
                Ok(())
            },
        )
        .build()
}

async fn start() -> (Server, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let s = server();
    let serving = s.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    (s, addr)
}

#[tokio::test]
async fn four_call_kinds_with_metadata() {
    let (_server, addr) = start().await;
    let channel = Channel::builder(format!("passthrough:///{addr}"))
        .connect()
        .await
        .expect("connects");
    assert_eq!(channel.state(false), ConnectivityState::Ready);

    let mut md = Metadata::new();
    md.append("x-echo", Bytes::from_static(b"hello")).unwrap();
    let reply = channel
        .unary::<BytesCodec>(
            "/test.Echo/Unary",
            Bytes::from_static(b"ping"),
            CallOptions::new().metadata(md),
        )
        .await
        .expect("unary ok");
    assert_eq!(reply.message, Bytes::from_static(b"ping"));
    assert_eq!(
        reply.metadata.get("x-echo").unwrap(),
        &Bytes::from_static(b"hello")
    );
    assert_eq!(
        reply.trailers.get("x-echo-trailer-bin").unwrap(),
        &Bytes::from_static(b"hello")
    );

    let mut stream = channel
        .server_streaming::<BytesCodec>(
            "/test.Echo/Count",
            Bytes::from_static(b"5"),
            CallOptions::new(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        got.push(m);
    }
    assert_eq!(
        got,
        ["0", "1", "2", "3", "4"].map(|s: &str| Bytes::from(s.to_owned()))
    );
    assert!(stream.status().unwrap().is_ok());

    let requests = tokio_stream_of(vec![
        Bytes::from(vec![1; 1000]),
        Bytes::from(vec![2; 70_000]),
    ]);
    let reply = channel
        .client_streaming::<BytesCodec, _>("/test.Echo/Sum", requests, CallOptions::new())
        .await
        .unwrap();
    assert_eq!(reply.message, Bytes::from_static(b"71000"));

    let (mut tx, mut rx) = channel
        .bidi_streaming::<BytesCodec>("/test.Echo/Chat", CallOptions::new())
        .await
        .unwrap();
    for i in 0..10 {
        let m = Bytes::from(format!("m{i}"));
        tx.send(m.clone()).await.unwrap();
        assert_eq!(rx.message().await.unwrap(), Some(m));
    }
    tx.close();
    assert_eq!(rx.message().await.unwrap(), None);
}

/// A stream of the items, for client streaming.
fn tokio_stream_of(items: Vec<Bytes>) -> impl futures_core::Stream<Item = Bytes> + Send {
    struct Iter(std::vec::IntoIter<Bytes>);
    impl futures_core::Stream for Iter {
        type Item = Bytes;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Bytes>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[tokio::test]
async fn errors_deadlines_and_unknown_methods() {
    let (_server, addr) = start().await;
    let channel = Channel::builder(format!("passthrough:///{addr}"))
        .connect_lazy()
        .unwrap();
    let err = channel
        .unary::<BytesCodec>("/test.Echo/Fail", Bytes::new(), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (Code::NotFound, "nothing here")
    );

    let err = channel
        .unary::<BytesCodec>("/test.Echo/Nope", Bytes::new(), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::Unimplemented);

    let started = tokio::time::Instant::now();
    let err = channel
        .unary::<BytesCodec>(
            "/test.Echo/Sleep",
            Bytes::new(),
            CallOptions::new().timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn dropping_a_stream_cancels_the_call_on_the_server() {
    let (cancelled_tx, mut cancelled_rx) = tokio::sync::mpsc::channel::<Code>(1);
    let server = Server::builder()
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Forever",
            move |mut incoming: Incoming<BytesCodec>, mut out: Outgoing<BytesCodec>| {
                let tx = cancelled_tx.clone();
                async move {
                    out.send(Bytes::from_static(b"first")).await?;
                    let r = incoming.message().await;
                    if let Err(status) = &r {
                        let _ = tx.send(status.code).await;
                    }
                    r.map(|_| ())
                }
            },
        )
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serving = server.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let channel = Channel::builder(format!("passthrough:///{addr}"))
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
    let code = tokio::time::timeout(Duration::from_secs(5), cancelled_rx.recv())
        .await
        .expect("the handler saw the cancellation")
        .unwrap();
    assert_eq!(code, Code::Cancelled);
    drop(tx);
}

#[tokio::test]
async fn the_channel_reconnects_after_a_server_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first = server();
    let serving = first.clone();
    let task = tokio::spawn(async move { serving.serve(listener).await });
    let channel = Channel::builder(format!("passthrough:///{addr}"))
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
    let state = tokio::time::timeout(
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
    let listener = TcpListener::bind(addr).await.unwrap();
    let second = server();
    let serving = second.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let reply = tokio::time::timeout(
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

#[tokio::test]
async fn goaway_during_a_stream_of_calls_fails_none() {
    let (server, addr) = start().await;
    let channel = Channel::builder(format!("passthrough:///{addr}"))
        .connect()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let ch = channel.clone();
        tasks.push(tokio::spawn(async move {
            ch.unary::<BytesCodec>(
                "/test.Echo/Unary",
                Bytes::from(i.to_string()),
                CallOptions::new().wait_for_ready(true),
            )
            .await
        }));
        // Let the calls start, so some are in flight at the GOAWAY.
        tokio::task::yield_now().await;
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
