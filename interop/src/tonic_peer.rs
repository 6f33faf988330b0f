//! A gRPC peer on tonic (hyper + h2): the TestService as a tonic server and a tonic
//! client of it, both written by hand the way tonic-build's generated code is (no
//! protoc): the server is a `tower::Service<http::Request<_>>` dispatching on the path
//! to `tonic::server::Grpc`, the client drives `tonic::client::Grpc`, both with tonic's
//! prost codec. Used by the tonic interop tests and by the load bench
//! (`grpc-sansio-benches`' `loadgen`). Behind the `tonic-peer` feature.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{CompressionEncoding, SingleMessageCompressionOverride};
use tonic::codegen::{BoxFuture, Bytes, Service, StdError, http};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::SERVICE;
use crate::proto::{
    BoolValue, EchoStatus, Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest,
    StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
    zero_payload,
};
use crate::server::{ECHO_INITIAL, ECHO_TRAILING};

// ---------------------------------------------------------------------------------
// The tonic server.

/// Whether the request came with a compressing `grpc-encoding` (an http extension the
/// dispatcher sets, read by the handlers' `expect_compressed` checks).
#[derive(Clone, Copy)]
struct RequestCompressed(bool);

/// One method: a closure as the `tower::Service` tonic's `Grpc` takes.
struct Method<F>(F);

impl<F, Req, Resp> Service<Request<Req>> for Method<F>
where
    F: FnMut(Request<Req>) -> BoxFuture<Response<Resp>, Status>,
{
    type Response = Response<Resp>;
    type Error = Status;
    type Future = BoxFuture<Response<Resp>, Status>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        (self.0)(request)
    }
}

type Responses = ReceiverStream<Result<StreamingOutputCallResponse, Status>>;

fn grpc<E, D>(gzip: bool) -> tonic::server::Grpc<ProstCodec<E, D>>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    let g = tonic::server::Grpc::new(ProstCodec::default())
        .accept_compressed(CompressionEncoding::Gzip);
    if gzip {
        g.send_compressed(CompressionEncoding::Gzip)
    } else {
        g
    }
}

/// The TestService as a tonic service (a `tower::Service` on http requests), for
/// `tonic::transport::Server::add_service`.
#[derive(Clone, Copy, Debug)]
pub struct TonicTestService {
    /// Gzip responses when the client accepts gzip (tonic's `send_compressed`; the
    /// unary call still sends plain responses unless `response_compressed` asks). The
    /// interop tests need it; a load bench does not want it (the streaming responses
    /// would all be gzipped, as tonic cannot choose per message).
    pub gzip: bool,
}

impl tonic::server::NamedService for TonicTestService {
    const NAME: &'static str = SERVICE;
}

impl<B> Service<http::Request<B>> for TonicTestService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let compressed = req
            .headers()
            .get("grpc-encoding")
            .is_some_and(|v| v.as_bytes() != b"identity");
        req.extensions_mut().insert(RequestCompressed(compressed));
        let echo_initial: Vec<_> = req
            .headers()
            .get_all(ECHO_INITIAL)
            .iter()
            .cloned()
            .collect();
        let echo_trailing: Vec<_> = req
            .headers()
            .get_all(ECHO_TRAILING)
            .iter()
            .cloned()
            .collect();
        let path = req.uri().path().to_owned();
        let gzip = self.gzip;
        Box::pin(async move {
            let method = path.rsplit('/').next().unwrap_or_default();
            let mut resp = match method {
                "EmptyCall" => {
                    grpc::<Empty, Empty>(gzip)
                        .unary(Method(empty_call), req)
                        .await
                }
                "UnaryCall" => {
                    grpc::<SimpleResponse, SimpleRequest>(gzip)
                        .unary(Method(unary_call), req)
                        .await
                }
                "StreamingOutputCall" => {
                    grpc::<StreamingOutputCallResponse, StreamingOutputCallRequest>(gzip)
                        .server_streaming(Method(streaming_output_call), req)
                        .await
                }
                "StreamingInputCall" => {
                    grpc::<StreamingInputCallResponse, StreamingInputCallRequest>(gzip)
                        .client_streaming(Method(streaming_input_call), req)
                        .await
                }
                "FullDuplexCall" => {
                    grpc::<StreamingOutputCallResponse, StreamingOutputCallRequest>(gzip)
                        .streaming(Method(full_duplex_call), req)
                        .await
                }
                "HalfDuplexCall" => {
                    grpc::<StreamingOutputCallResponse, StreamingOutputCallRequest>(gzip)
                        .streaming(Method(half_duplex_call), req)
                        .await
                }
                _ => Status::unimplemented(format!("unknown method {path}")).into_http(),
            };
            for v in echo_initial {
                resp.headers_mut().append(ECHO_INITIAL, v);
            }
            if !echo_trailing.is_empty() {
                resp = resp.map(|inner| {
                    tonic::body::Body::new(WithTrailers {
                        inner,
                        extra: echo_trailing,
                    })
                });
            }
            Ok(resp)
        })
    }
}

/// A response body whose trailers get extra fields (tonic has no API for trailers on a
/// successful response). A trailers-only response (no trailers frame) is left alone.
struct WithTrailers {
    inner: tonic::body::Body,
    extra: Vec<http::HeaderValue>,
}

impl http_body::Body for WithTrailers {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                Ok(mut trailers) => {
                    for v in this.extra.drain(..) {
                        trailers.append(ECHO_TRAILING, v);
                    }
                    Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

fn requested_status(s: &Option<EchoStatus>) -> Result<(), Status> {
    match s {
        Some(s) if s.code != 0 => Err(Status::new(Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

fn check_compressed<T>(req: &Request<T>, expect: Option<BoolValue>) -> Result<(), Status> {
    let compressed = req
        .extensions()
        .get::<RequestCompressed>()
        .is_some_and(|c| c.0);
    if expect.is_some_and(|b| b.value) && !compressed {
        return Err(Status::invalid_argument("expected a compressed request"));
    }
    Ok(())
}

fn empty_call(_: Request<Empty>) -> BoxFuture<Response<Empty>, Status> {
    Box::pin(async { Ok(Response::new(Empty {})) })
}

fn unary_call(req: Request<SimpleRequest>) -> BoxFuture<Response<SimpleResponse>, Status> {
    Box::pin(async move {
        check_compressed(&req, req.get_ref().expect_compressed)?;
        let r = req.into_inner();
        requested_status(&r.response_status)?;
        let mut resp = Response::new(SimpleResponse {
            payload: Some(zero_payload(r.response_size as usize)),
            ..Default::default()
        });
        if !r.response_compressed.is_some_and(|b| b.value) {
            resp.extensions_mut()
                .insert(SingleMessageCompressionOverride::Disable);
        }
        Ok(resp)
    })
}

async fn respond(
    req: &StreamingOutputCallRequest,
    tx: &tokio::sync::mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
) -> Result<(), ()> {
    if let Err(s) = requested_status(&req.response_status) {
        let _ = tx.send(Err(s)).await;
        return Err(());
    }
    for p in &req.response_parameters {
        if p.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
        }
        let m = StreamingOutputCallResponse {
            payload: Some(zero_payload(p.size as usize)),
        };
        tx.send(Ok(m)).await.map_err(|_| ())?;
    }
    Ok(())
}

fn streaming_output_call(
    req: Request<StreamingOutputCallRequest>,
) -> BoxFuture<Response<Responses>, Status> {
    Box::pin(async move {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let req = req.into_inner();
        tokio::spawn(async move { respond(&req, &tx).await });
        Ok(Response::new(ReceiverStream::new(rx)))
    })
}

fn streaming_input_call(
    req: Request<Streaming<StreamingInputCallRequest>>,
) -> BoxFuture<Response<StreamingInputCallResponse>, Status> {
    Box::pin(async move {
        let compressed = req
            .extensions()
            .get::<RequestCompressed>()
            .is_some_and(|c| c.0);
        let mut stream = req.into_inner();
        let mut total = 0;
        while let Some(m) = stream.message().await? {
            if m.expect_compressed.is_some_and(|b| b.value) && !compressed {
                return Err(Status::invalid_argument("expected a compressed request"));
            }
            total += m.payload.map_or(0, |p| p.body.len());
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size: total as i32,
        }))
    })
}

fn full_duplex_call(
    req: Request<Streaming<StreamingOutputCallRequest>>,
) -> BoxFuture<Response<Responses>, Status> {
    Box::pin(async move {
        let mut stream = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if respond(&m, &tx).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(s) => {
                        let _ = tx.send(Err(s)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    })
}

fn half_duplex_call(
    req: Request<Streaming<StreamingOutputCallRequest>>,
) -> BoxFuture<Response<Responses>, Status> {
    Box::pin(async move {
        let mut stream = req.into_inner();
        let mut all = Vec::new();
        while let Some(m) = stream.message().await? {
            all.push(m);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for m in &all {
                if respond(m, &tx).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    })
}

/// Serves the tonic TestService on `listener` until the process ends, with tonic's
/// default server settings; `gzip` as [`TonicTestService::gzip`].
pub async fn serve_tonic(
    listener: tokio::net::TcpListener,
    gzip: bool,
) -> Result<(), tonic::transport::Error> {
    // `Server::serve` sets TCP_NODELAY (its `tcp_nodelay` default is true), but a
    // `TcpIncoming` made from a listener leaves Nagle on and `serve_with_incoming`
    // ignores the builder's setting: without this, small responses wait for delayed
    // ACKs (40 ms per call).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(TonicTestService { gzip })
        .serve_with_incoming(incoming)
        .await
}

/// Starts the tonic server (gzip on) on a free loopback port in a task; returns its
/// address.
pub async fn start_tonic_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_tonic(listener, true));
    addr
}

// ---------------------------------------------------------------------------------
// The tonic client.

/// A tonic client of the TestService: a `tonic::transport::Channel` driven through
/// `tonic::client::Grpc` with tonic's prost codec, as tonic-build's generated code does.
#[derive(Clone, Debug)]
pub struct TonicClient {
    /// The tonic channel (one HTTP/2 connection).
    pub channel: tonic::transport::Channel,
}

/// `/grpc.testing.TestService/<method>` as an http path.
pub fn path(method: &str) -> http::uri::PathAndQuery {
    format!("/{SERVICE}/{method}").parse().unwrap()
}

impl TonicClient {
    /// Connects to `addr` (plaintext h2c); panics when that fails.
    pub async fn connect(addr: std::net::SocketAddr) -> TonicClient {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("tonic connects to our server");
        TonicClient { channel }
    }

    /// A ready `tonic::client::Grpc` on the channel, accepting gzip responses and
    /// gzip-compressing requests when `compress`.
    pub async fn grpc(&self, compress: bool) -> tonic::client::Grpc<tonic::transport::Channel> {
        let mut g = tonic::client::Grpc::new(self.channel.clone())
            .accept_compressed(CompressionEncoding::Gzip);
        if compress {
            g = g.send_compressed(CompressionEncoding::Gzip);
        }
        g.ready().await.expect("channel ready");
        g
    }

    /// A unary call of `method`.
    pub async fn unary<Req, Resp>(
        &self,
        method: &str,
        req: Request<Req>,
        compress: bool,
    ) -> Result<Response<Resp>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc(compress)
            .await
            .unary(req, path(method), ProstCodec::<Req, Resp>::default())
            .await
    }

    /// A StreamingInputCall with the requests `reqs`.
    pub async fn input(
        &self,
        reqs: Vec<StreamingInputCallRequest>,
        compress: bool,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        self.grpc(compress)
            .await
            .client_streaming(
                Request::new(tokio_stream::iter(reqs)),
                path("StreamingInputCall"),
                ProstCodec::default(),
            )
            .await
    }

    /// A StreamingOutputCall.
    pub async fn server_stream(
        &self,
        req: StreamingOutputCallRequest,
    ) -> Result<Streaming<StreamingOutputCallResponse>, Status> {
        self.grpc(false)
            .await
            .server_streaming(
                Request::new(req),
                path("StreamingOutputCall"),
                ProstCodec::default(),
            )
            .await
            .map(Response::into_inner)
    }

    /// A FullDuplexCall with a request sender (`None` when `close`: the requests end
    /// after `first`).
    pub async fn duplex(
        &self,
        first: Option<StreamingOutputCallRequest>,
        close: bool,
        timeout: Option<Duration>,
        metadata: Option<MetadataMap>,
    ) -> (
        Option<tokio::sync::mpsc::Sender<StreamingOutputCallRequest>>,
        Result<Response<Streaming<StreamingOutputCallResponse>>, Status>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        if let Some(m) = first {
            tx.send(m).await.unwrap();
        }
        let tx = (!close).then_some(tx);
        let mut req = Request::new(ReceiverStream::new(rx));
        if let Some(t) = timeout {
            req.set_timeout(t);
        }
        if let Some(md) = metadata {
            *req.metadata_mut() = md;
        }
        let r = self
            .grpc(false)
            .await
            .streaming(req, path("FullDuplexCall"), ProstCodec::default())
            .await;
        (tx, r)
    }
}
