//! Building blocks the suite's tests and the cross-runtime tests share: an echo server
//! on any runtime, and client runs against it that assert every outcome.

use std::time::{Duration, Instant};

use bytes::Bytes;
use grpc_sansio_runtime::{
    BytesCodec, CallOptions, Channel, Code, Incoming, Metadata, Outgoing, Reply, Request, Runtime,
    Server, Status,
};

/// Unary echo (metadata `x-echo` echoed in headers and trailers), a failing and a
/// sleeping unary method, `Count` and `Flood` (server streaming), `Sum` (client
/// streaming) and `Chat` (bidi echo).
pub fn echo_server<R: Runtime>() -> Server<R> {
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
            let rt = R::current();
            rt.sleep_until(rt.now() + Duration::from_secs(3600)).await;
            Ok(Reply::new(Bytes::new()))
        })
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Count",
            |mut incoming: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| async move {
                let n = asked_count(&mut incoming).await?;
                for i in 0..n {
                    out.send(Bytes::from(i.to_string())).await?;
                }
                Ok(())
            },
        )
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Flood",
            |mut incoming: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| async move {
                // "N" asks for N messages of FLOOD_MESSAGE zero bytes, sent as fast as
                // flow control lets them go.
                let n = asked_count(&mut incoming).await?;
                let message = Bytes::from(vec![0; FLOOD_MESSAGE]);
                for _ in 0..n {
                    out.send(message.clone()).await?;
                }
                Ok(())
            },
        )
        .streaming::<BytesCodec, _, _>(
            "/test.Echo/Sum",
            |mut incoming: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| async move {
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
            |mut incoming: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| async move {
                while let Some(m) = incoming.message().await? {
                    out.send(m).await?;
                }
                Ok(())
            },
        )
        .build()
}

/// The count a `Count` or `Flood` request asks for: its one message, in decimal.
async fn asked_count<R: Runtime>(incoming: &mut Incoming<BytesCodec, R>) -> Result<usize, Status> {
    Ok(match incoming.message().await? {
        Some(m) => std::str::from_utf8(&m).unwrap().parse().unwrap(),
        None => 0,
    })
}

/// The size of each message `Flood` sends.
pub const FLOOD_MESSAGE: usize = 64 << 10;

/// A unary call with metadata: the message, the echoed header and trailer.
pub async fn unary_with_metadata<R: Runtime>(channel: &Channel<R>) {
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
}

/// A bidi call: ten messages echoed one by one, then the end of the stream and an OK
/// status.
pub async fn bidi_echo<R: Runtime>(channel: &Channel<R>) {
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
    assert!(rx.status().unwrap().is_ok(), "{:?}", rx.status());
}

/// The four call kinds with metadata, as a client on `R` against [`echo_server`].
pub async fn four_call_kinds<R: Runtime>(channel: &Channel<R>) {
    unary_with_metadata(channel).await;

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

    // 71 000 bytes: past the 65 535-byte initial window, so flow control runs.
    let requests = futures_util::stream::iter(vec![
        Bytes::from(vec![1; 1000]),
        Bytes::from(vec![2; 70_000]),
    ]);
    let reply = channel
        .client_streaming::<BytesCodec, _>("/test.Echo/Sum", requests, CallOptions::new())
        .await
        .unwrap();
    assert_eq!(reply.message, Bytes::from_static(b"71000"));

    bidi_echo(channel).await;
}

/// Status codes: a handler's error, an unknown method and a deadline.
pub async fn errors_and_deadlines<R: Runtime>(channel: &Channel<R>) {
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
    let started = Instant::now();
    let err = channel
        .unary::<BytesCodec>(
            "/test.Echo/Sleep",
            Bytes::new(),
            CallOptions::new().timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::DeadlineExceeded);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}
