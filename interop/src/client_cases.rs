//! The client side of the interop test cases (grpc/grpc
//! `doc/interop-test-descriptions.md`), on a grpc-sansio [`Channel`]. Each case returns
//! `Ok(())` or a message saying precisely what differed.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use grpc_sansio::grpc::compression::Encoding;
use grpc_sansio_runtime::{CallOptions, Channel, Code, Metadata, ProstCodec, Runtime, Status};

use crate::method_path;
use crate::proto::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse, zero_payload,
};
use crate::server::{ECHO_INITIAL, ECHO_TRAILING};

/// Every test case this client implements, in the order of the description.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
];

/// How long one case may take before it fails (a hung peer must not hang the tests).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the test case named `case` on `channel`.
pub async fn run<R: Runtime>(channel: &Channel<R>, case: &str) -> Result<(), String> {
    let fut = async {
        match case {
            "empty_unary" => empty_unary(channel).await,
            "large_unary" => large_unary(channel).await,
            "client_compressed_unary" => client_compressed_unary(channel).await,
            "server_compressed_unary" => server_compressed_unary(channel).await,
            "client_streaming" => client_streaming(channel).await,
            "client_compressed_streaming" => client_compressed_streaming(channel).await,
            "server_streaming" => server_streaming(channel).await,
            "server_compressed_streaming" => server_compressed_streaming(channel).await,
            "ping_pong" => ping_pong(channel).await,
            "empty_stream" => empty_stream(channel).await,
            "cancel_after_begin" => cancel_after_begin(channel).await,
            "cancel_after_first_response" => cancel_after_first_response(channel).await,
            "timeout_on_sleeping_server" => timeout_on_sleeping_server(channel).await,
            "status_code_and_message" => status_code_and_message(channel).await,
            "special_status_message" => special_status_message(channel).await,
            "custom_metadata" => custom_metadata(channel).await,
            "unimplemented_method" => unimplemented_method(channel).await,
            "unimplemented_service" => unimplemented_service(channel).await,
            other => Err(format!(
                "unknown test case {other:?}; known: {}",
                CASES.join(", ")
            )),
        }
    };
    let rt = channel.runtime().clone();
    let sleep = std::pin::pin!(rt.sleep_until(rt.now() + CASE_TIMEOUT));
    let fut = std::pin::pin!(fut);
    match futures_util::future::select(fut, sleep).await {
        futures_util::future::Either::Left((r, _)) => r,
        futures_util::future::Either::Right(_) => {
            Err(format!("{case}: did not finish within {CASE_TIMEOUT:?}"))
        }
    }
}

type UnaryCodec<Req, Resp> = ProstCodec<Req, Resp>;
type SimpleCodec = UnaryCodec<SimpleRequest, SimpleResponse>;
type InputCodec = UnaryCodec<StreamingInputCallRequest, StreamingInputCallResponse>;
type OutputCodec = UnaryCodec<StreamingOutputCallRequest, StreamingOutputCallResponse>;

fn fmt_status(s: &Status) -> String {
    format!("{:?} {:?}", s.code, s.message)
}

fn rpc_err(what: &str) -> impl FnOnce(Status) -> String + '_ {
    move |s| format!("{what}: failed with {}", fmt_status(&s))
}

/// Checks that `payload` is `size` zero bytes.
fn check_payload(what: &str, payload: Option<&Payload>, size: usize) -> Result<(), String> {
    let body = payload.map_or(&[][..], |p| &p.body[..]);
    if size > 0 && payload.is_none() {
        return Err(format!("{what}: no payload, expected {size} bytes"));
    }
    if body.len() != size {
        return Err(format!(
            "{what}: payload of {} bytes, expected {size}",
            body.len()
        ));
    }
    if let Some(i) = body.iter().position(|&b| b != 0) {
        return Err(format!(
            "{what}: payload byte {i} is {}, expected 0",
            body[i]
        ));
    }
    Ok(())
}

fn expect_code(what: &str, got: Result<(), Status>, code: Code) -> Result<Status, String> {
    match got {
        Ok(()) => Err(format!("{what}: succeeded, expected {code:?}")),
        Err(s) if s.code == code => Ok(s),
        Err(s) => Err(format!(
            "{what}: failed with {}, expected {code:?}",
            fmt_status(&s)
        )),
    }
}

/// A stream of the items (the requests of a client-streaming call).
struct Iter<T>(std::vec::IntoIter<T>);

impl<T: Unpin> futures_core::Stream for Iter<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(self.0.next())
    }
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 314_159,
        payload: Some(zero_payload(271_828)),
        ..Default::default()
    }
}

async fn empty_unary<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let r = ch
        .unary::<UnaryCodec<Empty, Empty>>(&method_path("EmptyCall"), Empty {}, CallOptions::new())
        .await
        .map_err(rpc_err("EmptyCall"))?;
    if r.message != (Empty {}) {
        return Err("EmptyCall: response is not empty".into());
    }
    Ok(())
}

async fn large_unary<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let r = ch
        .unary::<SimpleCodec>(
            &method_path("UnaryCall"),
            large_request(),
            CallOptions::new(),
        )
        .await
        .map_err(rpc_err("UnaryCall"))?;
    check_payload("UnaryCall response", r.message.payload.as_ref(), 314_159)
}

async fn client_compressed_unary<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    // The probe: expect_compressed set, sent uncompressed; the server must refuse it.
    let probe = SimpleRequest {
        expect_compressed: Some(BoolValue { value: true }),
        ..large_request()
    };
    let got = ch
        .unary::<SimpleCodec>(&method_path("UnaryCall"), probe.clone(), CallOptions::new())
        .await
        .map(|_| ());
    expect_code(
        "UnaryCall probe (expect_compressed, sent uncompressed)",
        got,
        Code::InvalidArgument,
    )?;
    let r = ch
        .unary::<SimpleCodec>(
            &method_path("UnaryCall"),
            probe,
            CallOptions::new().compression(Encoding::Gzip),
        )
        .await
        .map_err(rpc_err("UnaryCall (gzip, expect_compressed)"))?;
    check_payload(
        "UnaryCall (gzip) response",
        r.message.payload.as_ref(),
        314_159,
    )?;
    let plain = SimpleRequest {
        expect_compressed: Some(BoolValue { value: false }),
        ..large_request()
    };
    let r = ch
        .unary::<SimpleCodec>(&method_path("UnaryCall"), plain, CallOptions::new())
        .await
        .map_err(rpc_err("UnaryCall (uncompressed, expect_compressed=false)"))?;
    check_payload(
        "UnaryCall (uncompressed) response",
        r.message.payload.as_ref(),
        314_159,
    )
}

async fn server_compressed_unary<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    // The adapter does not expose a message's Compressed-Flag, so this checks the
    // responses decode (gzip or not), not that the first one was compressed.
    for compressed in [true, false] {
        let req = SimpleRequest {
            response_compressed: Some(BoolValue { value: compressed }),
            ..large_request()
        };
        let what = format!("UnaryCall (response_compressed={compressed})");
        let r = ch
            .unary::<SimpleCodec>(&method_path("UnaryCall"), req, CallOptions::new())
            .await
            .map_err(|s| format!("{what}: failed with {}", fmt_status(&s)))?;
        check_payload(&what, r.message.payload.as_ref(), 314_159)?;
    }
    Ok(())
}

fn input_requests(
    sizes: &[usize],
    expect_compressed: Option<bool>,
) -> Vec<StreamingInputCallRequest> {
    sizes
        .iter()
        .map(|&n| StreamingInputCallRequest {
            payload: Some(zero_payload(n)),
            expect_compressed: expect_compressed.map(|value| BoolValue { value }),
        })
        .collect()
}

async fn client_streaming<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let reqs = input_requests(&[27_182, 8, 1_828, 45_904], None);
    let r = ch
        .client_streaming::<InputCodec, _>(
            &method_path("StreamingInputCall"),
            Iter(reqs.into_iter()),
            CallOptions::new(),
        )
        .await
        .map_err(rpc_err("StreamingInputCall"))?;
    if r.message.aggregated_payload_size != 74_922 {
        return Err(format!(
            "StreamingInputCall: aggregated_payload_size {}, expected 74922",
            r.message.aggregated_payload_size
        ));
    }
    Ok(())
}

async fn client_compressed_streaming<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let probe = input_requests(&[27_182], Some(true));
    let got = ch
        .client_streaming::<InputCodec, _>(
            &method_path("StreamingInputCall"),
            Iter(probe.into_iter()),
            CallOptions::new(),
        )
        .await
        .map(|_| ());
    expect_code(
        "StreamingInputCall probe (expect_compressed, sent uncompressed)",
        got,
        Code::InvalidArgument,
    )?;
    // The adapter compresses a whole call or nothing: the second message (which the
    // description sends uncompressed, expect_compressed=false) goes compressed too,
    // which the server does not check.
    let mut reqs = input_requests(&[27_182], Some(true));
    reqs.extend(input_requests(&[45_904], Some(false)));
    let r = ch
        .client_streaming::<InputCodec, _>(
            &method_path("StreamingInputCall"),
            Iter(reqs.into_iter()),
            CallOptions::new().compression(Encoding::Gzip),
        )
        .await
        .map_err(rpc_err("StreamingInputCall (gzip)"))?;
    if r.message.aggregated_payload_size != 73_086 {
        return Err(format!(
            "StreamingInputCall (gzip): aggregated_payload_size {}, expected 73086",
            r.message.aggregated_payload_size
        ));
    }
    Ok(())
}

fn output_request(sizes: &[usize], compressed: Option<&[bool]>) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| ResponseParameters {
                size: n as i32,
                interval_us: 0,
                compressed: compressed.map(|c| BoolValue { value: c[i] }),
            })
            .collect(),
        ..Default::default()
    }
}

async fn read_sizes<R: Runtime>(
    what: &str,
    stream: &mut grpc_sansio_runtime::Streaming<OutputCodec, R>,
    sizes: &[usize],
) -> Result<(), String> {
    for (i, &n) in sizes.iter().enumerate() {
        match stream.message().await {
            Ok(Some(m)) => check_payload(&format!("{what} response {i}"), m.payload.as_ref(), n)?,
            Ok(None) => {
                return Err(format!(
                    "{what}: ended OK after {i} responses, expected {}",
                    sizes.len()
                ));
            }
            Err(s) => {
                return Err(format!(
                    "{what}: response {i}: failed with {}",
                    fmt_status(&s)
                ));
            }
        }
    }
    match stream.message().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(format!("{what}: more than {} responses", sizes.len())),
        Err(s) => Err(format!("{what}: final status {}", fmt_status(&s))),
    }
}

async fn server_streaming<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let sizes = [31_415, 9, 2_653, 58_979];
    let mut stream = ch
        .server_streaming::<OutputCodec>(
            &method_path("StreamingOutputCall"),
            output_request(&sizes, None),
            CallOptions::new(),
        )
        .await
        .map_err(rpc_err("StreamingOutputCall"))?;
    read_sizes("StreamingOutputCall", &mut stream, &sizes).await
}

async fn server_compressed_streaming<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let sizes = [31_415, 92_653];
    let mut stream = ch
        .server_streaming::<OutputCodec>(
            &method_path("StreamingOutputCall"),
            output_request(&sizes, Some(&[true, false])),
            CallOptions::new(),
        )
        .await
        .map_err(rpc_err("StreamingOutputCall (compressed)"))?;
    read_sizes("StreamingOutputCall (compressed)", &mut stream, &sizes).await
}

async fn ping_pong<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let rounds = [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)];
    let (mut tx, mut rx) =
        bidi::<OutputCodec, R>(ch, &method_path("FullDuplexCall"), CallOptions::new()).await?;
    for (i, &(resp, req)) in rounds.iter().enumerate() {
        let mut r = output_request(&[resp], None);
        r.payload = Some(zero_payload(req));
        tx.send(r)
            .await
            .map_err(|s| format!("FullDuplexCall: send {i}: {}", fmt_status(&s)))?;
        match rx.message().await {
            Ok(Some(m)) => check_payload(
                &format!("FullDuplexCall response {i}"),
                m.payload.as_ref(),
                resp,
            )?,
            Ok(None) => {
                return Err(format!(
                    "FullDuplexCall: ended OK after {i} responses, expected 4"
                ));
            }
            Err(s) => {
                return Err(format!(
                    "FullDuplexCall: response {i}: failed with {}",
                    fmt_status(&s)
                ));
            }
        }
    }
    tx.close();
    match rx.message().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err("FullDuplexCall: a 5th response".into()),
        Err(s) => Err(format!("FullDuplexCall: final status {}", fmt_status(&s))),
    }
}

async fn empty_stream<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let (tx, mut rx) =
        bidi::<OutputCodec, R>(ch, &method_path("FullDuplexCall"), CallOptions::new()).await?;
    tx.close();
    match rx.message().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err("FullDuplexCall (no requests): got a response".into()),
        Err(s) => Err(format!(
            "FullDuplexCall (no requests): failed with {}",
            fmt_status(&s)
        )),
    }
}

async fn cancel_after_begin<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    // The adapter cancels a call by dropping its response handle (RST_STREAM CANCEL);
    // it has no cancel() that would then report the CANCELLED status, so this checks
    // the cancellation happens without anything else failing, and that the channel
    // still works.
    let (tx, rx) =
        bidi::<InputCodec, R>(ch, &method_path("StreamingInputCall"), CallOptions::new()).await?;
    drop(rx);
    drop(tx);
    empty_unary(ch)
        .await
        .map_err(|e| format!("after the cancellation: {e}"))
}

async fn cancel_after_first_response<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let (mut tx, mut rx) =
        bidi::<OutputCodec, R>(ch, &method_path("FullDuplexCall"), CallOptions::new()).await?;
    let mut r = output_request(&[31_415], None);
    r.payload = Some(zero_payload(27_182));
    tx.send(r)
        .await
        .map_err(|s| format!("FullDuplexCall: send: {}", fmt_status(&s)))?;
    match rx.message().await {
        Ok(Some(m)) => check_payload("FullDuplexCall response", m.payload.as_ref(), 31_415)?,
        Ok(None) => return Err("FullDuplexCall: ended OK without a response".into()),
        Err(s) => return Err(format!("FullDuplexCall: failed with {}", fmt_status(&s))),
    }
    // Cancel (see cancel_after_begin), then the channel must still work.
    drop(rx);
    drop(tx);
    empty_unary(ch)
        .await
        .map_err(|e| format!("after the cancellation: {e}"))
}

/// Starts a bidi-streaming (or any streaming) call.
async fn bidi<C: grpc_sansio_runtime::Codec + Default, R: Runtime>(
    ch: &Channel<R>,
    path: &str,
    options: CallOptions,
) -> Result<
    (
        grpc_sansio_runtime::Sender<C, R>,
        grpc_sansio_runtime::Streaming<C, R>,
    ),
    String,
> {
    ch.bidi_streaming::<C>(path, options)
        .await
        .map_err(|s| format!("{path}: the call did not start: {}", fmt_status(&s)))
}

async fn timeout_on_sleeping_server<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let started = ch
        .bidi_streaming::<OutputCodec>(
            &method_path("FullDuplexCall"),
            CallOptions::new().timeout(Duration::from_millis(1)),
        )
        .await;
    let (mut tx, mut rx) = match started {
        Ok(call) => call,
        // The deadline may pass before the call even starts.
        Err(s) => {
            return expect_code(
                "FullDuplexCall (1 ms deadline)",
                Err(s),
                Code::DeadlineExceeded,
            )
            .map(|_| ());
        }
    };
    let r = StreamingOutputCallRequest {
        payload: Some(zero_payload(27_182)),
        ..Default::default()
    };
    // The send may fail already: the deadline can pass first. The status says why.
    let _ = tx.send(r).await;
    let got = loop {
        match rx.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => break Ok(()),
            Err(s) => break Err(s),
        }
    };
    drop(tx);
    expect_code(
        "FullDuplexCall (1 ms deadline)",
        got,
        Code::DeadlineExceeded,
    )
    .map(|_| ())
}

async fn check_echo_status<R: Runtime>(ch: &Channel<R>, message: &str) -> Result<(), String> {
    let status = EchoStatus {
        code: 2,
        message: message.to_owned(),
    };
    let req = SimpleRequest {
        response_status: Some(status.clone()),
        ..Default::default()
    };
    let got = ch
        .unary::<SimpleCodec>(&method_path("UnaryCall"), req, CallOptions::new())
        .await
        .map(|_| ());
    let s = expect_code("UnaryCall (response_status)", got, Code::Unknown)?;
    if s.message != message {
        return Err(format!(
            "UnaryCall (response_status): message {:?}, expected {message:?}",
            s.message
        ));
    }
    Ok(())
}

async fn status_code_and_message<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let message = "test status message";
    check_echo_status(ch, message).await?;
    let (mut tx, mut rx) =
        bidi::<OutputCodec, R>(ch, &method_path("FullDuplexCall"), CallOptions::new()).await?;
    let req = StreamingOutputCallRequest {
        response_status: Some(EchoStatus {
            code: 2,
            message: message.to_owned(),
        }),
        ..Default::default()
    };
    let _ = tx.send(req).await;
    tx.close();
    let got = loop {
        match rx.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => break Ok(()),
            Err(s) => break Err(s),
        }
    };
    let s = expect_code("FullDuplexCall (response_status)", got, Code::Unknown)?;
    if s.message != message {
        return Err(format!(
            "FullDuplexCall (response_status): message {:?}, expected {message:?}",
            s.message
        ));
    }
    Ok(())
}

async fn special_status_message<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    check_echo_status(
        ch,
        "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n",
    )
    .await
}

const INITIAL_VALUE: &str = "test_initial_metadata_value";
const TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];

fn echo_request_metadata() -> Metadata {
    let mut md = Metadata::new();
    md.append(ECHO_INITIAL, INITIAL_VALUE.as_bytes().to_vec())
        .expect("valid key");
    md.append(ECHO_TRAILING, TRAILING_VALUE.to_vec())
        .expect("valid key");
    md
}

fn check_echo(
    what: &str,
    headers: Option<&Metadata>,
    trailers: Option<&Metadata>,
) -> Result<(), String> {
    let initial = headers.and_then(|h| h.get(ECHO_INITIAL));
    if initial.map(|v| &v[..]) != Some(INITIAL_VALUE.as_bytes()) {
        return Err(format!(
            "{what}: response headers {ECHO_INITIAL} = {initial:?}, expected {INITIAL_VALUE:?}"
        ));
    }
    let trailing = trailers.and_then(|t| t.get(ECHO_TRAILING));
    if trailing.map(|v| &v[..]) != Some(&TRAILING_VALUE[..]) {
        return Err(format!(
            "{what}: trailers {ECHO_TRAILING} = {trailing:?}, expected {TRAILING_VALUE:?}"
        ));
    }
    Ok(())
}

async fn custom_metadata<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let r = ch
        .unary::<SimpleCodec>(
            &method_path("UnaryCall"),
            large_request(),
            CallOptions::new().metadata(echo_request_metadata()),
        )
        .await
        .map_err(rpc_err("UnaryCall (echo metadata)"))?;
    check_payload(
        "UnaryCall (echo metadata)",
        r.message.payload.as_ref(),
        314_159,
    )?;
    check_echo("UnaryCall", Some(&r.metadata), Some(&r.trailers))?;

    let (mut tx, mut rx) = bidi::<OutputCodec, R>(
        ch,
        &method_path("FullDuplexCall"),
        CallOptions::new().metadata(echo_request_metadata()),
    )
    .await?;
    let mut req = output_request(&[314_159], None);
    req.payload = Some(zero_payload(271_828));
    tx.send(req)
        .await
        .map_err(|s| format!("FullDuplexCall (echo metadata): send: {}", fmt_status(&s)))?;
    tx.close();
    read_sizes("FullDuplexCall (echo metadata)", &mut rx, &[314_159]).await?;
    check_echo("FullDuplexCall", rx.headers(), rx.trailers())
}

async fn unimplemented_method<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let got = unary_status(ch, &method_path("UnimplementedCall")).await;
    expect_code("TestService/UnimplementedCall", got, Code::Unimplemented).map(|_| ())
}

async fn unimplemented_service<R: Runtime>(ch: &Channel<R>) -> Result<(), String> {
    let got = unary_status(ch, "/grpc.testing.UnimplementedService/UnimplementedCall").await;
    expect_code(
        "UnimplementedService/UnimplementedCall",
        got,
        Code::Unimplemented,
    )
    .map(|_| ())
}

/// A unary call of `Empty` that reports the call's real status.
///
/// Works around `Channel::unary`: when the server answers before the request message is
/// queued (a trailers-only UNIMPLEMENTED right after the headers, as gRPC C-core does),
/// its send fails and `unary` returns that send error (UNKNOWN "the call has ended")
/// instead of reading the status. A bidi call ignores the send error and reads the
/// status from the responses.
async fn unary_status<R: Runtime>(ch: &Channel<R>, path: &str) -> Result<(), Status> {
    let (mut tx, mut rx) = ch
        .bidi_streaming::<UnaryCodec<Empty, Empty>>(path, CallOptions::new())
        .await?;
    let _ = tx.send(Empty {}).await;
    tx.close();
    while rx.message().await?.is_some() {}
    Ok(())
}
