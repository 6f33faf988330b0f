//! Interceptors, call credentials and back-pressure, client against our server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{TestRuntime, listen, sleep, spawn, timeout};
use bytes::Bytes;
use grpc_sansio_runtime::{
    BearerToken, BytesCodec, CallInfo, CallKind, CallOptions, Channel, Code, Incoming, Interceptor,
    Outgoing, Reply, Request, Server, Status,
};

async fn start<R: TestRuntime>(server: Server<R>) -> String {
    let (listener, addr) = listen::<R>().await;
    let addr = addr.to_string();
    spawn::<R, _>(async move { server.serve(listener).await });
    format!("passthrough:///{addr}")
}

/// Echoes the request's `x-echo` and `authorization` metadata as response headers.
fn echo_server<R: TestRuntime>() -> Server<R> {
    Server::<R>::builder()
        .unary::<BytesCodec, _, _>("/t.S/Echo", |req: Request<Bytes>| async move {
            let mut reply = Reply::new(req.message);
            for key in ["x-echo", "authorization"] {
                if let Some(v) = req.head.metadata.get(key) {
                    reply.metadata.append(key, v.clone()).unwrap();
                }
            }
            Ok(reply)
        })
        .unary::<BytesCodec, _, _>("/t.S/Fail", |_req: Request<Bytes>| async move {
            Err(Status::new(Code::NotFound, "no"))
        })
        .build()
}

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, CallKind, Code)>>,
}

impl Interceptor for Recorder {
    fn before(&self, call: &mut CallInfo<'_>) -> Result<(), Status> {
        if call.path.ends_with("/Forbidden") {
            return Err(Status::permission_denied("blocked by the interceptor"));
        }
        call.metadata
            .append("x-echo", Bytes::from_static(b"from-interceptor"))
            .unwrap();
        Ok(())
    }

    fn after(&self, path: &str, kind: CallKind, status: &Status) {
        self.seen
            .lock()
            .unwrap()
            .push((path.to_owned(), kind, status.code));
    }
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn interceptors_add_metadata_refuse_calls_and_observe_outcomes<R: TestRuntime>() {
    let target = start::<R>(echo_server::<R>()).await;
    let recorder = Arc::new(Recorder::default());
    let channel = Channel::<R>::builder(target)
        .interceptor(recorder.clone())
        .connect()
        .await
        .unwrap();
    let reply = channel
        .unary::<BytesCodec>("/t.S/Echo", Bytes::from_static(b"x"), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(
        reply.metadata.get("x-echo").unwrap(),
        &Bytes::from_static(b"from-interceptor")
    );
    let err = channel
        .unary::<BytesCodec>("/t.S/Fail", Bytes::new(), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::NotFound);
    let err = channel
        .unary::<BytesCodec>("/t.S/Forbidden", Bytes::new(), CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::PermissionDenied);
    let (_tx, rx) = channel
        .bidi_streaming::<BytesCodec>("/t.S/Unknown", CallOptions::new())
        .await
        .unwrap();
    drop(rx);
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("/t.S/Echo".to_owned(), CallKind::Unary, Code::Ok),
            ("/t.S/Fail".to_owned(), CallKind::Unary, Code::NotFound),
            (
                "/t.S/Forbidden".to_owned(),
                CallKind::Unary,
                Code::PermissionDenied
            ),
            (
                "/t.S/Unknown".to_owned(),
                CallKind::BidiStreaming,
                Code::Cancelled
            ),
        ]
    );
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn bearer_tokens_need_tls_unless_allowed<R: TestRuntime>() {
    let target = start::<R>(echo_server::<R>()).await;
    let err = Channel::<R>::builder(target.clone())
        .call_credentials(Arc::new(BearerToken::new("secret")))
        .connect_lazy()
        .unwrap_err();
    assert!(err.0.contains("require transport security"), "{err}");
    let channel = Channel::<R>::builder(target)
        .call_credentials(Arc::new(BearerToken::new("secret")))
        .allow_insecure_call_credentials()
        .connect()
        .await
        .unwrap();
    let reply = channel
        .unary::<BytesCodec>("/t.S/Echo", Bytes::new(), CallOptions::new())
        .await
        .unwrap();
    assert_eq!(
        reply.metadata.get("authorization").unwrap(),
        &Bytes::from_static(b"Bearer secret")
    );
}

/// Messages [`CountingCodec`] has encoded (this binary's one back-pressure test is
/// its only user).
static ENCODED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// [`BytesCodec`] that counts what it encodes.
#[derive(Clone, Copy, Debug, Default)]
struct CountingCodec;

impl grpc_sansio_runtime::Codec for CountingCodec {
    type Encode = Bytes;
    type Decode = Bytes;

    fn encode(&self, message: Bytes) -> Result<Bytes, Status> {
        ENCODED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(message)
    }

    fn decode(&self, bytes: Bytes) -> Result<Bytes, Status> {
        Ok(bytes)
    }
}

/// Instantiated per runtime by [`suite!`](crate::suite).
///
/// Also: a send that waits has not encoded its message yet, so a waiting sender holds
/// no encoded message beside those queued.
pub async fn a_server_that_never_reads_makes_send_wait_with_bounded_memory<R: TestRuntime>() {
    let server = Server::<R>::builder()
        .streaming::<BytesCodec, _, _>(
            "/t.S/Sink",
            |_incoming: Incoming<BytesCodec, R>, _out: Outgoing<BytesCodec, R>| async move {
                sleep::<R>(Duration::from_secs(3600)).await;
                Ok(())
            },
        )
        .build();
    let target = start(server).await;
    let channel = Channel::<R>::builder(target).connect().await.unwrap();
    let (mut tx, _rx) = channel
        .bidi_streaming::<CountingCodec>("/t.S/Sink", CallOptions::new())
        .await
        .unwrap();
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let mut sent = 0usize;
    let mut accepted = 0;
    loop {
        match timeout::<R, _>(Duration::from_millis(500), tx.send(chunk.clone())).await {
            Ok(Ok(())) => {
                sent += chunk.len();
                accepted += 1;
            }
            Ok(Err(e)) => panic!("send failed: {e:?}"),
            Err(_) => break, // send waits: back-pressure
        }
        assert!(
            sent < 64 * 1024 * 1024,
            "no back-pressure after {sent} bytes"
        );
    }
    // What was accepted is bounded by the windows (64 KiB each way, grown by BDP up to
    // a few MiB at most) plus the send buffers: far below what an unbounded queue takes.
    assert!(
        sent <= 16 * 1024 * 1024,
        "accepted {sent} bytes before waiting"
    );
    assert!(sent >= 64 * 1024, "sent at least one message");
    assert_eq!(
        ENCODED.load(std::sync::atomic::Ordering::Relaxed),
        accepted,
        "the send that waited encoded its message"
    );
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn calls_on_a_failing_channel_report_the_connection_error<R: TestRuntime>() {
    // A port with nothing listening.
    let (listener, addr) = listen::<R>().await;
    drop(listener);
    let channel = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connect_lazy()
        .unwrap();
    for attempt in 0..3 {
        let err = channel
            .unary::<BytesCodec>("/t.S/Echo", Bytes::new(), CallOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::Unavailable, "attempt {attempt}: {err:?}");
        assert!(
            err.message.contains("refused"),
            "attempt {attempt}: {}",
            err.message
        );
    }
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn channels_and_servers_move_between_threads<R: TestRuntime>() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Channel<R>>();
    send_sync::<Server<R>>();
}

/// A user policy supplying only a picker: the last READY subchannel.
#[derive(Clone, Debug)]
struct LastReady;

#[derive(Debug)]
struct LastReadyPicker(Vec<grpc_sansio::channel::balancer::SubchannelId>);

impl grpc_sansio::channel::balancer::Picker for LastReadyPicker {
    fn pick(
        &mut self,
        _: &grpc_sansio::channel::balancer::PickInfo<'_>,
    ) -> grpc_sansio::channel::balancer::PickResult {
        use grpc_sansio::channel::balancer::PickResult;
        self.0
            .last()
            .map_or(PickResult::Queue, |&sc| PickResult::Pick(sc))
    }
}

impl grpc_sansio::channel::base::PickerBuilder for LastReady {
    fn build(
        &self,
        ready: &[grpc_sansio::channel::balancer::SubchannelId],
        _random: u64,
    ) -> Box<dyn grpc_sansio::channel::balancer::Picker> {
        Box::new(LastReadyPicker(ready.to_vec()))
    }
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn a_user_balancer_chosen_by_the_service_config_routes_the_calls<R: TestRuntime>() {
    let named = |name: &'static str| {
        Server::<R>::builder()
            .unary::<BytesCodec, _, _>("/t.S/Who", move |_req: Request<Bytes>| async move {
                Ok(Reply::new(Bytes::from_static(name.as_bytes())))
            })
            .build()
    };
    let a = start(named("a")).await.replace("passthrough:///", "");
    let b = start(named("b")).await.replace("passthrough:///", "");
    let channel = Channel::<R>::builder(format!("ipv4:{a},{b}"))
        .balancer(Arc::new(grpc_sansio::channel::base::BaseBuilder::new(
            "last_ready",
            LastReady,
        )))
        .default_service_config(r#"{"loadBalancingConfig":[{"last_ready":{}}]}"#)
        .connect_lazy()
        .unwrap();
    // Wait until both subchannels are READY (the first call may see only one).
    let _ = channel
        .unary::<BytesCodec>(
            "/t.S/Who",
            Bytes::new(),
            CallOptions::new().wait_for_ready(true),
        )
        .await
        .unwrap();
    sleep::<R>(Duration::from_millis(100)).await;
    for _ in 0..5 {
        let reply = channel
            .unary::<BytesCodec>("/t.S/Who", Bytes::new(), CallOptions::new())
            .await
            .unwrap();
        assert_eq!(reply.message, Bytes::from_static(b"b"));
    }
}

/// Sets its flag when dropped: tells whether a handler's future was dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn handlers_that_never_look_at_their_call_stop_when_the_connection_closes<
    R: TestRuntime,
>() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dropped.clone();
    let server = Server::<R>::builder()
        .streaming::<BytesCodec, _, _>(
            "/t.S/Stuck",
            move |_incoming: Incoming<BytesCodec, R>, _out: Outgoing<BytesCodec, R>| {
                let guard = DropFlag(flag.clone());
                async move {
                    let _guard = guard;
                    sleep::<R>(Duration::from_secs(3600)).await;
                    Ok(())
                }
            },
        )
        .build();
    let target = start(server.clone()).await;
    let channel = Channel::<R>::builder(target).connect().await.unwrap();
    let (_tx, _rx) = channel
        .bidi_streaming::<BytesCodec>("/t.S/Stuck", CallOptions::new())
        .await
        .unwrap();
    sleep::<R>(Duration::from_millis(100)).await;
    assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
    // The client goes away entirely: the connection closes under the handler.
    drop((_tx, _rx, channel));
    for _ in 0..50 {
        if dropped.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        sleep::<R>(Duration::from_millis(20)).await;
    }
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the handler outlived its connection"
    );
    assert_eq!(server.connection_count(), 0);
}

/// Instantiated per runtime by [`suite!`](crate::suite).
///
/// A unary call takes its request, response and status in as few trips through the
/// channel as it can; the unusual endings must still come out right: a request over the
/// send limit, a handler that answers twice or not at all, an error status. Each is
/// seen by the interceptors, and the channel serves the next call.
pub async fn unary_calls_end_right_when_the_response_is_not_one_message<R: TestRuntime>() {
    let server = Server::<R>::builder()
        .unary::<BytesCodec, _, _>("/t.S/Echo", |req: Request<Bytes>| async move {
            Ok(Reply::new(req.message))
        })
        .streaming::<BytesCodec, _, _>(
            "/t.S/Twice",
            |_in: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| async move {
                out.send(Bytes::from_static(b"one")).await?;
                out.send(Bytes::from_static(b"two")).await?;
                Ok(())
            },
        )
        .streaming::<BytesCodec, _, _>(
            "/t.S/Never",
            |_in: Incoming<BytesCodec, R>, _out: Outgoing<BytesCodec, R>| async move { Ok(()) },
        )
        .streaming::<BytesCodec, _, _>(
            "/t.S/Fail",
            |_in: Incoming<BytesCodec, R>, mut out: Outgoing<BytesCodec, R>| async move {
                out.send(Bytes::from_static(b"partial")).await?;
                Err(Status::new(Code::Aborted, "changed its mind"))
            },
        )
        .build();
    let target = start(server).await;
    let recorder = Arc::new(Recorder::default());
    let channel = Channel::<R>::builder(target)
        .interceptor(recorder.clone())
        .message_limits(1024, 4 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let call = |path: &'static str, len: usize| {
        let channel = channel.clone();
        async move {
            channel
                .unary::<BytesCodec>(path, Bytes::from(vec![1u8; len]), CallOptions::new())
                .await
        }
    };

    let too_large = call("/t.S/Echo", 2048).await.unwrap_err();
    assert_eq!(too_large.code, Code::ResourceExhausted, "{too_large:?}");
    let twice = call("/t.S/Twice", 3).await.unwrap_err();
    assert_eq!(twice.code, Code::Internal, "{twice:?}");
    assert!(twice.message.contains("got more"), "{twice:?}");
    let never = call("/t.S/Never", 3).await.unwrap_err();
    assert_eq!(never.code, Code::Internal, "{never:?}");
    assert!(never.message.contains("got none"), "{never:?}");
    let fail = call("/t.S/Fail", 3).await.unwrap_err();
    assert_eq!(
        (fail.code, fail.message.as_str()),
        (Code::Aborted, "changed its mind")
    );
    let ok = call("/t.S/Echo", 1024).await.unwrap();
    assert_eq!(ok.message.len(), 1024);

    let seen: Vec<(String, Code)> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(path, _, code)| (path.clone(), *code))
        .collect();
    let seen: Vec<(&str, Code)> = seen.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    assert_eq!(
        seen,
        [
            // Refused before it was sent: the call was dropped.
            ("/t.S/Echo", Code::Cancelled),
            // The surplus message cancels the call.
            ("/t.S/Twice", Code::Cancelled),
            // The status itself was OK; the missing message is the caller's error.
            ("/t.S/Never", Code::Ok),
            ("/t.S/Fail", Code::Aborted),
            ("/t.S/Echo", Code::Ok),
        ]
    );
}
