//! grpc.testing.TestService on the grpc-sansio server, as
//! `doc/interop-test-descriptions.md` specifies it: payloads of the requested sizes,
//! `response_status` echo, `x-grpc-test-echo-initial` echoed in the response headers
//! and `x-grpc-test-echo-trailing-bin` in the trailers, gzip responses when asked, and
//! the `expect_compressed` check.
//!
//! Every method is served through the streaming handler API, even the unary ones: only
//! [`Outgoing`] can pick the response compression and send headers explicitly.

use std::time::Duration;

use grpc_sansio::grpc::compression::Encoding;
use grpc_sansio_runtime::{
    Code, Incoming, Metadata, Outgoing, ProstCodec, Runtime, Server, Status,
};

use crate::method_path;
use crate::proto::{
    BoolValue, EchoStatus, Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest,
    StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
    zero_payload,
};

/// The metadata key echoed in the response headers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// The metadata key echoed in the trailers.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

type Unary<Req, Resp> = ProstCodec<Resp, Req>;

/// The TestService server (not yet serving).
pub fn test_service<R: Runtime>() -> Server<R> {
    Server::<R>::builder()
        .streaming::<Unary<Empty, Empty>, _, _>(&method_path("EmptyCall"), |inc, out| {
            empty_call::<R>(inc, out)
        })
        .streaming::<Unary<SimpleRequest, SimpleResponse>, _, _>(
            &method_path("UnaryCall"),
            unary_call::<R>,
        )
        .streaming::<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, _, _>(
            &method_path("StreamingOutputCall"),
            streaming_output_call::<R>,
        )
        .streaming::<Unary<StreamingInputCallRequest, StreamingInputCallResponse>, _, _>(
            &method_path("StreamingInputCall"),
            streaming_input_call::<R>,
        )
        .streaming::<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, _, _>(
            &method_path("FullDuplexCall"),
            full_duplex_call::<R>,
        )
        .streaming::<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, _, _>(
            &method_path("HalfDuplexCall"),
            half_duplex_call::<R>,
        )
        .streaming::<Unary<Empty, Empty>, _, _>(
            &method_path("UnimplementedCall"),
            |_inc, _out| async {
                Err(Status::new(
                    Code::Unimplemented,
                    "grpc.testing.TestService/UnimplementedCall is not implemented",
                ))
            },
        )
        .build()
}

/// Serves the TestService on `listener` until the server shuts down.
pub async fn serve<R: Runtime>(listener: R::Listener) -> std::io::Result<()> {
    test_service::<R>().serve(listener).await
}

/// Serves the TestService on `listener` over TLS until the process ends.
pub async fn serve_tls<R: Runtime>(
    listener: R::Listener,
    acceptor: grpc_sansio_runtime::TlsAcceptor,
) -> std::io::Result<()> {
    test_service::<R>().serve_tls(listener, acceptor).await
}

/// The echo metadata of the request: (for the headers, for the trailers).
fn echo_metadata(head_md: &Metadata) -> (Metadata, Metadata) {
    let mut initial = Metadata::new();
    let mut trailing = Metadata::new();
    for v in head_md.get_all(ECHO_INITIAL) {
        let _ = initial.append(ECHO_INITIAL, v.clone());
    }
    for v in head_md.get_all(ECHO_TRAILING) {
        let _ = trailing.append(ECHO_TRAILING, v.clone());
    }
    (initial, trailing)
}

/// Sets the trailers and sends the headers (with the echoed metadata), after picking
/// the response compression.
fn start_response<C: grpc_sansio_runtime::Codec, R: Runtime>(
    incoming_md: &Metadata,
    out: &mut Outgoing<C, R>,
    compress: bool,
) -> Result<(), Status> {
    let (initial, trailing) = echo_metadata(incoming_md);
    if compress {
        // The client may not accept gzip: then the response goes uncompressed, as the
        // interop description allows.
        let _ = out.set_compression(Encoding::Gzip);
    }
    out.set_trailers(trailing);
    out.send_headers(initial)
}

/// The status a request asked for, if not OK.
fn requested_status(status: &Option<EchoStatus>) -> Result<(), Status> {
    match status {
        Some(s) if s.code != 0 => Err(Status::new(
            Code::from_u32(s.code as u32),
            s.message.clone(),
        )),
        _ => Ok(()),
    }
}

/// INVALID_ARGUMENT if the request should have come compressed and did not.
///
/// The adapter exposes the call's `grpc-encoding`, not each message's Compressed-Flag,
/// so a gzip call counts as compressed.
fn check_compressed(expect: Option<BoolValue>, encoding: Option<Encoding>) -> Result<(), Status> {
    if expect.is_some_and(|b| b.value) && encoding.is_none_or(|e| e == Encoding::Identity) {
        return Err(Status::invalid_argument(
            "expected a compressed request, got an uncompressed one",
        ));
    }
    Ok(())
}

fn size(n: i32) -> Result<usize, Status> {
    usize::try_from(n).map_err(|_| Status::invalid_argument(format!("negative size {n}")))
}

/// Reads exactly one request.
async fn single<C: grpc_sansio_runtime::Codec, R: Runtime>(
    incoming: &mut Incoming<C, R>,
) -> Result<C::Decode, Status> {
    let Some(m) = incoming.message().await? else {
        return Err(Status::internal("the client sent no request message"));
    };
    if incoming.message().await?.is_some() {
        return Err(Status::internal(
            "the client sent more than one request message",
        ));
    }
    Ok(m)
}

async fn empty_call<R: Runtime>(
    mut inc: Incoming<Unary<Empty, Empty>, R>,
    mut out: Outgoing<Unary<Empty, Empty>, R>,
) -> Result<(), Status> {
    single(&mut inc).await?;
    start_response(&inc.head.metadata, &mut out, false)?;
    out.send(Empty {}).await
}

async fn unary_call<R: Runtime>(
    mut inc: Incoming<Unary<SimpleRequest, SimpleResponse>, R>,
    mut out: Outgoing<Unary<SimpleRequest, SimpleResponse>, R>,
) -> Result<(), Status> {
    let req = single(&mut inc).await?;
    check_compressed(req.expect_compressed, inc.head.encoding)?;
    let compress = req.response_compressed.is_some_and(|b| b.value);
    start_response(&inc.head.metadata, &mut out, compress)?;
    requested_status(&req.response_status)?;
    out.send(SimpleResponse {
        payload: Some(zero_payload(size(req.response_size)?)),
        ..Default::default()
    })
    .await
}

/// Sends the responses one request asks for.
async fn respond<R: Runtime>(
    req: &StreamingOutputCallRequest,
    out: &mut Outgoing<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
) -> Result<(), Status> {
    requested_status(&req.response_status)?;
    for p in &req.response_parameters {
        if p.interval_us > 0 {
            let rt = R::current();
            rt.sleep_until(rt.now() + Duration::from_micros(p.interval_us as u64))
                .await;
        }
        out.send(StreamingOutputCallResponse {
            payload: Some(zero_payload(size(p.size)?)),
        })
        .await?;
    }
    Ok(())
}

/// Whether any response of the request should be compressed. Compression is chosen per
/// call (the adapter has no per-message switch), so one compressed response compresses
/// them all.
fn wants_compression(req: &StreamingOutputCallRequest) -> bool {
    req.response_parameters
        .iter()
        .any(|p| p.compressed.is_some_and(|b| b.value))
}

async fn streaming_output_call<R: Runtime>(
    mut inc: Incoming<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
    mut out: Outgoing<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
) -> Result<(), Status> {
    let req = single(&mut inc).await?;
    start_response(&inc.head.metadata, &mut out, wants_compression(&req))?;
    respond(&req, &mut out).await
}

async fn streaming_input_call<R: Runtime>(
    mut inc: Incoming<Unary<StreamingInputCallRequest, StreamingInputCallResponse>, R>,
    mut out: Outgoing<Unary<StreamingInputCallRequest, StreamingInputCallResponse>, R>,
) -> Result<(), Status> {
    let mut total = 0usize;
    while let Some(req) = inc.message().await? {
        check_compressed(req.expect_compressed, inc.head.encoding)?;
        total += req.payload.map_or(0, |p| p.body.len());
    }
    start_response(&inc.head.metadata, &mut out, false)?;
    out.send(StreamingInputCallResponse {
        aggregated_payload_size: i32::try_from(total).unwrap_or(i32::MAX),
    })
    .await
}

async fn full_duplex_call<R: Runtime>(
    mut inc: Incoming<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
    mut out: Outgoing<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
) -> Result<(), Status> {
    let mut started = false;
    while let Some(req) = inc.message().await? {
        if !started {
            // The first request decides the compression, then the headers go.
            start_response(&inc.head.metadata, &mut out, wants_compression(&req))?;
            started = true;
        }
        respond(&req, &mut out).await?;
    }
    if !started {
        start_response(&inc.head.metadata, &mut out, false)?;
    }
    Ok(())
}

async fn half_duplex_call<R: Runtime>(
    mut inc: Incoming<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
    mut out: Outgoing<Unary<StreamingOutputCallRequest, StreamingOutputCallResponse>, R>,
) -> Result<(), Status> {
    let mut requests = Vec::new();
    while let Some(req) = inc.message().await? {
        requests.push(req);
    }
    let compress = requests.iter().any(wants_compression);
    start_response(&inc.head.metadata, &mut out, compress)?;
    for req in &requests {
        respond(req, &mut out).await?;
    }
    Ok(())
}
