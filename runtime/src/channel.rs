//! The client: [`Channel`] and its builder, and the four kinds of call.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use grpc_sansio::channel::backoff::{BackoffConfig, ConnectParams};
use grpc_sansio::channel::client_channel::{
    CallOptions as CoreCallOptions, Channel as CoreChannel, ChannelCallId, ChannelConfig,
    ChannelError,
};
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio::grpc::client::{ClientEvent, Scheme};
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::compression::Encoding;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::MessageLimits;
use grpc_sansio::h2::ClientKeepaliveConfig;

use crate::codec::Codec;
use crate::driver::{Connector, PlainConnector, Resolver, Shared, State};
use crate::intercept::{CallCredentials, CallInfo, CallKind, Interceptor};
use crate::proxy::{ProxyConfig, ProxyConnector};
use crate::rt::Runtime;
#[cfg(feature = "tls")]
use crate::tls::{TlsConfig, TlsConnector};

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    wait_for_ready: Option<bool>,
    metadata: Metadata,
    compression: Option<Encoding>,
}

impl CallOptions {
    /// No deadline, fail-fast (unless the service config says otherwise), no metadata.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// The call must end within `timeout` of its start (DEADLINE_EXCEEDED otherwise).
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Wait for a READY connection instead of failing fast while there is none.
    pub fn wait_for_ready(mut self, wait: bool) -> CallOptions {
        self.wait_for_ready = Some(wait);
        self
    }

    /// Request metadata.
    pub fn metadata(mut self, metadata: Metadata) -> CallOptions {
        self.metadata = metadata;
        self
    }

    /// Compress the request messages (`gzip`).
    pub fn compression(mut self, encoding: Encoding) -> CallOptions {
        self.compression = Some(encoding);
        self
    }
}

/// A unary or client-streaming call's answer.
#[derive(Clone, Debug)]
pub struct Response<T> {
    /// The response headers' metadata.
    pub metadata: Metadata,
    /// The one response message.
    pub message: T,
    /// The trailers' metadata.
    pub trailers: Metadata,
}

/// Builds a [`Channel`].
pub struct ChannelBuilder<R: Runtime> {
    rt: Option<R>,
    target: String,
    config: ChannelConfig,
    connector: Arc<dyn Connector>,
    resolvers: HashMap<String, Arc<dyn Resolver>>,
    interceptors: Vec<Arc<dyn Interceptor>>,
    credentials: Option<Arc<dyn CallCredentials>>,
    insecure_credentials_ok: bool,
    proxy: Option<ProxyConfig>,
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
}

impl<R: Runtime> std::fmt::Debug for ChannelBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelBuilder")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> ChannelBuilder<R> {
    /// HTTP/2 keepalive (gRFC A8): a PING after `time` without reads, the connection
    /// closed if nothing comes back within `timeout`.
    pub fn keepalive(
        mut self,
        time: Duration,
        timeout: Duration,
        permit_without_calls: bool,
    ) -> Self {
        self.config.h2.client_keepalive = ClientKeepaliveConfig {
            time: Some(time),
            timeout,
            permit_without_stream: permit_without_calls,
        };
        self
    }

    /// Initial stream and connection windows; `dynamic` keeps BDP estimation on.
    pub fn windows(mut self, stream: u32, connection: u32, dynamic: bool) -> Self {
        self.config.h2.initial_stream_window = stream;
        self.config.h2.initial_connection_window = connection;
        self.config.h2.dynamic_window = dynamic;
        self
    }

    /// Message size limits (the service config may lower them per method).
    pub fn message_limits(mut self, max_send: usize, max_recv: usize) -> Self {
        self.config.limits = MessageLimits { max_send, max_recv };
        self
    }

    /// Reconnect backoff (grpc/grpc `doc/connection-backoff.md`).
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.config.connect.backoff = backoff;
        self
    }

    /// Minimum time a connection attempt may take (20 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect = ConnectParams {
            min_connect_timeout: timeout,
            ..self.config.connect
        };
        self
    }

    /// Service config used when the resolver gives none (JSON).
    pub fn default_service_config(mut self, json: impl Into<String>) -> Self {
        self.config.default_service_config = Some(json.into());
        self
    }

    /// Registers a load-balancing policy (the user's own, or built with
    /// `grpc_sansio::channel::base::BaseBuilder` over a picker); a service config's
    /// `loadBalancingConfig` selects it by name.
    pub fn balancer(
        mut self,
        builder: Arc<dyn grpc_sansio::channel::balancer::BalancerBuilder + Send + Sync>,
    ) -> Self {
        self.config.balancers.push(builder);
        self
    }

    /// Put `prefix` before our `user-agent`.
    pub fn user_agent(mut self, prefix: impl Into<String>) -> Self {
        self.config.user_agent_prefix = Some(prefix.into());
        self
    }

    /// Go IDLE after this long without calls (30 min by default; zero disables).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// The `:authority` of every call instead of the one derived from the target.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.config.authority = Some(authority.into());
        self
    }

    /// Bare `host:port` targets use `scheme` (`dns` by default, `passthrough` as
    /// grpc-go's old `Dial`).
    pub fn default_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.config.default_scheme = scheme.into();
        self
    }

    /// A resolver for targets of `scheme`.
    pub fn resolver(mut self, scheme: impl Into<String>, resolver: Arc<dyn Resolver>) -> Self {
        let scheme = scheme.into();
        self.config.custom_schemes.push(scheme.clone());
        self.resolvers.insert(scheme, resolver);
        self
    }

    /// Opens connections with `connector` instead of plain TCP (custom dialer).
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = connector;
        self
    }

    /// TLS with this configuration (ALPN `h2` required; `:scheme` becomes `https`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self.config.scheme = Scheme::Https;
        self
    }

    /// Connects through this HTTP CONNECT proxy (TLS, if any, runs inside the tunnel).
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// No proxy, even if `grpc_proxy` / `https_proxy` are set (the default is to use
    /// them, as grpc-go does).
    pub fn no_proxy(mut self) -> Self {
        self.proxy = None;
        self
    }

    /// Adds an interceptor; they run in the order added.
    pub fn interceptor(mut self, interceptor: Arc<dyn Interceptor>) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Per-call credentials (bearer tokens and the like). Unless
    /// [`allow_insecure_call_credentials`](Self::allow_insecure_call_credentials) is
    /// set, credentials that require transport security make `connect` fail on a
    /// plaintext channel, as grpc-go does.
    pub fn call_credentials(mut self, credentials: Arc<dyn CallCredentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Lets call credentials travel over plaintext (tests, trusted local links).
    pub fn allow_insecure_call_credentials(mut self) -> Self {
        self.insecure_credentials_ok = true;
        self
    }

    /// Full control over the core channel's configuration.
    pub fn config(mut self, f: impl FnOnce(&mut ChannelConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The runtime the channel's tasks run on (by default the one `connect_lazy` is
    /// called in).
    pub fn runtime(mut self, rt: R) -> Self {
        self.rt = Some(rt);
        self
    }

    /// A channel that connects on its first call (grpc-go's `NewClient`). Without
    /// [`runtime`](Self::runtime) it must be called inside the runtime (for tokio).
    pub fn connect_lazy(self) -> Result<Channel<R>, BuildError> {
        if let Some(creds) = &self.credentials
            && creds.require_transport_security()
            && self.config.scheme != Scheme::Https
            && !self.insecure_credentials_ok
        {
            return Err(BuildError(
                "the call credentials require transport security (use TLS, or \
                 allow_insecure_call_credentials)"
                    .to_owned(),
            ));
        }
        let rt = self.rt.unwrap_or_else(R::current);
        let now = rt.now();
        let mut config = self.config;
        if config.seed == 0 {
            config.seed = random_seed();
        }
        let core = CoreChannel::new(&self.target, config, now)
            .map_err(|e: ChannelError| BuildError(e.to_string()))?;
        let authority = core.authority().to_owned();
        // The connection stack: the base connector (TCP or the user's), the proxy
        // tunnel over it, TLS inside the tunnel.
        let mut connector = self.connector;
        if let Some(proxy) = self.proxy {
            connector = Arc::new(ProxyConnector::new(proxy, connector));
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls {
            let tls = TlsConnector::try_new(tls).map_err(|e| BuildError(format!("TLS: {e}")))?;
            connector = Arc::new(tls.over(connector));
        }
        let shared = Shared::start(rt, core, connector, self.resolvers);
        Ok(Channel {
            inner: Arc::new(Inner {
                shared,
                interceptors: self.interceptors,
                credentials: self.credentials,
                authority,
            }),
        })
    }

    /// A channel that is READY, or the error of its first failed connection attempt
    /// (grpc-go's `WithBlock`).
    pub async fn connect(self) -> Result<Channel<R>, Status> {
        let channel = self
            .connect_lazy()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        channel.wait_ready().await?;
        Ok(channel)
    }
}

/// A seed for the channel's random choices, different in every channel.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::Instant::now().elapsed().as_nanos() as u64);
    h.finish() | 1
}

/// Why a channel could not be built: a malformed target or service config, or call
/// credentials that need TLS on a plaintext channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// What the handles share; dropping the last one shuts the channel down.
struct Inner<R: Runtime> {
    shared: Arc<Shared<R>>,
    interceptors: Vec<Arc<dyn Interceptor>>,
    credentials: Option<Arc<dyn CallCredentials>>,
    authority: String,
}

impl<R: Runtime> Drop for Inner<R> {
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

/// A gRPC client channel: cheap to clone, `Send + Sync`. Dropping the last clone shuts
/// it down gracefully.
#[derive(Clone)]
pub struct Channel<R: Runtime> {
    inner: Arc<Inner<R>>,
}

impl<R: Runtime> std::fmt::Debug for Channel<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").finish_non_exhaustive()
    }
}

impl<R: Runtime> Channel<R> {
    /// A builder for `target` (`dns:///host:port`, `host:port`, `unix:/path`,
    /// `ipv4:1.2.3.4:5`, …).
    pub fn builder(target: impl Into<String>) -> ChannelBuilder<R> {
        ChannelBuilder {
            rt: None,
            target: target.into(),
            config: ChannelConfig::default(),
            connector: Arc::new(PlainConnector),
            resolvers: HashMap::new(),
            interceptors: Vec::new(),
            credentials: None,
            insecure_credentials_ok: false,
            // As grpc-go: a proxy from the environment unless told otherwise.
            proxy: ProxyConfig::from_env(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The runtime the channel's tasks run on.
    pub fn runtime(&self) -> &R {
        &self.inner.shared.rt
    }

    fn shared(&self) -> &Arc<Shared<R>> {
        &self.inner.shared
    }

    /// The channel's state; with `try_to_connect` an IDLE channel starts connecting.
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        let now = self.shared().now();
        self.shared()
            .with(|st| st.core.get_state(try_to_connect, now))
    }

    /// Waits until the state differs from `current`; returns the new state.
    pub async fn wait_for_state_change(&self, current: ConnectivityState) -> ConnectivityState {
        let mut rx = self.shared().watch_state();
        loop {
            let (state, _) = rx.borrow_and_update().clone();
            if state != current {
                return state;
            }
            if rx.changed().await.is_err() {
                return ConnectivityState::Shutdown;
            }
        }
    }

    /// Starts connecting and waits for READY, or fails with the first connection error.
    pub async fn wait_ready(&self) -> Result<(), Status> {
        let mut rx = self.shared().watch_state();
        self.state(true);
        loop {
            let (state, error) = rx.borrow_and_update().clone();
            match state {
                ConnectivityState::Ready => return Ok(()),
                ConnectivityState::TransientFailure => {
                    return Err(Status::unavailable(
                        error.unwrap_or_else(|| "connection failed".to_owned()),
                    ));
                }
                ConnectivityState::Shutdown => {
                    return Err(Status::cancelled("grpc: the client connection is closing"));
                }
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(Status::cancelled("grpc: the client connection is closing"));
            }
        }
    }

    /// Graceful shutdown: queued calls fail, running ones finish, then the connections
    /// close.
    pub fn shutdown(&self) {
        self.shared().shutdown();
    }

    /// Skips the reconnect backoff now (grpc-go's `ResetConnectBackoff`).
    pub fn reset_connect_backoff(&self) {
        let now = self.shared().now();
        self.shared().with(|st| st.core.reset_connect_backoff(now));
    }

    /// Runs the interceptors and call credentials, then starts the call.
    async fn start(
        &self,
        path: &str,
        kind: CallKind,
        mut options: CallOptions,
        only: Option<Bytes>,
    ) -> Result<RawCall<R>, Status> {
        for i in &self.inner.interceptors {
            let mut info = CallInfo {
                path,
                kind,
                metadata: &mut options.metadata,
                timeout: &mut options.timeout,
            };
            if let Err(status) = i.before(&mut info) {
                self.after(path, kind, &status);
                return Err(status);
            }
        }
        if let Some(creds) = &self.inner.credentials {
            match creds.metadata(path, &self.inner.authority).await {
                Ok(md) => {
                    for (k, v) in md.iter() {
                        let _ = options.metadata.append_sensitive(k, v.clone());
                    }
                }
                Err(status) => {
                    self.after(path, kind, &status);
                    return Err(status);
                }
            }
        }
        let (mut call, only) = self.start_now(path, kind, options, only)?;
        // Sent with the start unless the call could not take it then.
        if let Some(message) = only {
            call.send_or_ended(message, true).await?;
        }
        Ok(call)
    }

    /// Tells the interceptors how a call ended.
    fn after(&self, path: &str, kind: CallKind, status: &Status) {
        for i in &self.inner.interceptors {
            i.after(path, kind, status);
        }
    }

    /// Starts the call and, under the same lock, sends `only` as its one and last
    /// request message if the call can take it now; otherwise hands it back.
    fn start_now(
        &self,
        path: &str,
        kind: CallKind,
        options: CallOptions,
        mut only: Option<Bytes>,
    ) -> Result<(RawCall<R>, Option<Bytes>), Status> {
        let now = self.shared().now();
        let mut core_options = CoreCallOptions::new(Bytes::new()).metadata(options.metadata);
        if let Some(timeout) = options.timeout
            && let Some(deadline) = now.checked_add(timeout)
        {
            core_options = core_options.deadline(deadline);
        }
        if let Some(wait) = options.wait_for_ready {
            core_options = core_options.wait_for_ready(wait);
        }
        if let Some(encoding) = options.compression {
            core_options = core_options.encoding(encoding);
        }
        let (id, sent) = self.shared().with(|st| {
            core_options.path = st.core.method_path(path);
            let id = st.core.start_call(core_options, now);
            let sent = match only.take() {
                Some(message) if RawCall::<R>::has_room(st, id) => Some(
                    st.core
                        .send_message(id, message, true)
                        .map_err(|e| e.to_status()),
                ),
                other => {
                    only = other;
                    None
                }
            };
            (id, sent)
        });
        let call = RawCall {
            shared: self.shared().clone(),
            id,
            done: false,
            observer: (!self.inner.interceptors.is_empty()).then(|| Observer {
                channel: self.clone(),
                path: path.to_owned(),
                kind,
            }),
        };
        match sent {
            // Dropping the call forgets it in the core.
            Some(Err(status)) => Err(status),
            _ => Ok((call, only)),
        }
    }

    /// A unary call.
    pub async fn unary<C: Codec + Default>(
        &self,
        path: &str,
        request: C::Encode,
        options: CallOptions,
    ) -> Result<Response<C::Decode>, Status> {
        let codec = C::default();
        let bytes = codec.encode(request)?;
        // A call that already ended (no usable connection, say) has its real status
        // waiting: the response side reads it rather than reporting the refused send.
        let mut call = self
            .start(path, CallKind::Unary, options, Some(bytes))
            .await?;
        call.single_response(&codec).await
    }

    /// A client-streaming call: every request of `requests`, then one response.
    pub async fn client_streaming<C, S>(
        &self,
        path: &str,
        requests: S,
        options: CallOptions,
    ) -> Result<Response<C::Decode>, Status>
    where
        C: Codec + Default,
        S: Stream<Item = C::Encode> + Send,
    {
        let codec = C::default();
        let mut call = self
            .start(path, CallKind::ClientStreaming, options, None)
            .await?;
        let mut requests = std::pin::pin!(requests);
        while let Some(request) = poll_fn(|cx| requests.as_mut().poll_next(cx)).await {
            // Encode only once the call can take the message: a message encoded
            // early would wait, in memory, beside the ones still queued.
            match call.writable().await {
                Ok(()) => {}
                Err(status) if status == call_ended() => break,
                Err(status) => return Err(status),
            }
            let bytes = codec.encode(request)?;
            match call.send(bytes, false).await {
                Ok(()) => {}
                // The call ended early: its status says why.
                Err(status) if status == call_ended() => break,
                Err(status) => return Err(status),
            }
        }
        call.close_send();
        call.single_response(&codec).await
    }

    /// A server-streaming call: one request, a stream of responses.
    pub async fn server_streaming<C: Codec + Default>(
        &self,
        path: &str,
        request: C::Encode,
        options: CallOptions,
    ) -> Result<Streaming<C, R>, Status> {
        let codec = C::default();
        let bytes = codec.encode(request)?;
        let call = self
            .start(path, CallKind::ServerStreaming, options, Some(bytes))
            .await?;
        Ok(Streaming::new(call, codec))
    }

    /// A bidirectional-streaming call: a sender for requests and a stream of responses.
    pub async fn bidi_streaming<C: Codec + Default>(
        &self,
        path: &str,
        options: CallOptions,
    ) -> Result<(Sender<C, R>, Streaming<C, R>), Status> {
        let call = self
            .start(path, CallKind::BidiStreaming, options, None)
            .await?;
        let sender = Sender {
            call: RawCall {
                shared: call.shared.clone(),
                id: call.id,
                done: true, // the Streaming half owns the call's lifetime
                observer: None,
            },
            codec: C::default(),
        };
        Ok((sender, Streaming::new(call, C::default())))
    }
}

/// What a send on a call that has ended reports; the call's real status comes with its
/// responses (grpc-go's `SendMsg` returns `io.EOF` the same way).
fn call_ended() -> Status {
    Status::unknown("the call has ended; its status comes with the responses")
}

/// Reports a call's end to the channel's interceptors.
struct Observer<R: Runtime> {
    channel: Channel<R>,
    path: String,
    kind: CallKind,
}

/// One call on the core channel. Dropping it before its status cancels the call.
struct RawCall<R: Runtime> {
    shared: Arc<Shared<R>>,
    id: ChannelCallId,
    /// Its status was taken (or another handle owns its lifetime).
    done: bool,
    /// Interceptors to tell how it ended, if the channel has any.
    observer: Option<Observer<R>>,
}

impl<R: Runtime> RawCall<R> {
    /// Whether call `id` can take a message now: ready when its send buffer has room,
    /// [`call_ended`] once it cannot take any more, pending (woken on room) otherwise.
    fn room(st: &mut State, id: ChannelCallId, cx: &Context<'_>) -> Poll<Result<(), Status>> {
        if !st.core.can_send(id) {
            return Poll::Ready(Err(call_ended()));
        }
        if st.core.send_capacity(id) == 0 {
            Shared::<R>::wait_write(st, id, cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// Whether call `id` can take a message right now.
    fn has_room(st: &State, id: ChannelCallId) -> bool {
        st.core.can_send(id) && st.core.send_capacity(id) > 0
    }

    /// Waits until the call can take a message (its send buffer has room), or fails
    /// with [`call_ended`] once it cannot take any more.
    async fn writable(&mut self) -> Result<(), Status> {
        let id = self.id;
        // A look that changes nothing in the core (it may only leave a waker): there
        // is nothing to settle after it.
        poll_fn(|cx| self.shared.with_quiet(|st| Self::room(st, id, cx))).await
    }

    async fn send(&mut self, message: Bytes, last: bool) -> Result<(), Status> {
        let id = self.id;
        let mut message = Some(message);
        // Room check and send under one lock: a call with room (the usual case) costs
        // one trip through the core, not two.
        poll_fn(|cx| {
            self.shared.with(|st| {
                match Self::room(st, id, cx) {
                    Poll::Ready(Ok(())) => {}
                    waiting_or_ended => return waiting_or_ended,
                }
                let message = message.take().expect("sent once");
                Poll::Ready(
                    st.core
                        .send_message(id, message, last)
                        .map_err(|e| e.to_status()),
                )
            })
        })
        .await
    }

    /// [`send`](Self::send), where a call that has already ended is not an error (its
    /// status follows from the response side); other failures (too large) are.
    async fn send_or_ended(&mut self, message: Bytes, last: bool) -> Result<(), Status> {
        match self.send(message, last).await {
            Err(status) if status == call_ended() => Ok(()),
            other => other,
        }
    }

    fn close_send(&mut self) {
        let id = self.id;
        self.shared.with(|st| {
            let _ = st.core.close_send(id);
        });
    }

    /// The call's status arrived: it is over.
    fn ended(&mut self, status: &Status) {
        self.done = true;
        let id = self.id;
        self.shared.with(|st| Shared::<R>::drop_call(st, id));
        if let Some(o) = self.observer.take() {
            o.channel.after(&o.path, o.kind, status);
        }
    }

    /// Reads a unary-style response: headers, exactly one message, status.
    async fn single_response<C: Codec>(
        &mut self,
        codec: &C,
    ) -> Result<Response<C::Decode>, Status> {
        let id = self.id;
        let mut metadata = Metadata::new();
        let mut message: Option<Bytes> = None;
        // Every event already there is taken under one lock: headers, message and
        // status usually arrive in one read, and three trips through the core (each
        // settling it) were a visible share of a small call's cost.
        let (status, trailers) = poll_fn(|cx| {
            self.shared.with(|st| {
                loop {
                    match st.core.poll_call(id) {
                        Some(ClientEvent::Headers(md)) => metadata = md,
                        Some(ClientEvent::Message(bytes)) => {
                            if message.is_some() {
                                st.core.cancel(id);
                                return Poll::Ready(Err(Status::internal(
                                    "cardinality violation: expected one response message, got more",
                                )));
                            }
                            message = Some(bytes);
                        }
                        Some(ClientEvent::Status(status, trailers)) => {
                            Shared::<R>::drop_call(st, id);
                            return Poll::Ready(Ok((status, trailers)));
                        }
                        None => {
                            Shared::<R>::wait_read(st, id, cx.waker());
                            return Poll::Pending;
                        }
                    }
                }
            })
        })
        .await?;
        self.done = true;
        if let Some(o) = self.observer.take() {
            o.channel.after(&o.path, o.kind, &status);
        }
        if !status.is_ok() {
            return Err(status);
        }
        match message {
            Some(bytes) => Ok(Response {
                metadata,
                message: codec.decode(bytes)?,
                trailers,
            }),
            None => Err(Status::new(
                Code::Internal,
                "cardinality violation: expected one response message, got none",
            )),
        }
    }

    fn cancel(&mut self) {
        let id = self.id;
        self.shared.with(|st| st.core.cancel(id));
    }
}

impl<R: Runtime> Drop for RawCall<R> {
    fn drop(&mut self) {
        if !self.done {
            let id = self.id;
            self.shared.with(|st| {
                st.core.forget(id);
                Shared::<R>::drop_call(st, id);
            });
            if let Some(o) = self.observer.take() {
                let status = Status::cancelled("call dropped by the application");
                o.channel.after(&o.path, o.kind, &status);
            }
        }
    }
}

/// The requests of a bidi call. Dropping it (or [`close`](Sender::close)) ends the
/// request stream.
pub struct Sender<C: Codec, R: Runtime> {
    call: RawCall<R>,
    codec: C,
}

impl<C: Codec, R: Runtime> std::fmt::Debug for Sender<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<C: Codec, R: Runtime> Sender<C, R> {
    /// Sends one request, waiting while the send buffer is full. Fails once the call
    /// has ended (its status comes from the response stream).
    pub async fn send(&mut self, message: C::Encode) -> Result<(), Status> {
        // Encoded only once the call can take it (see `client_streaming`).
        self.call.writable().await?;
        let bytes = self.codec.encode(message)?;
        self.call.send(bytes, false).await
    }

    /// Ends the requests.
    pub fn close(mut self) {
        self.call.close_send();
    }
}

impl<C: Codec, R: Runtime> Drop for Sender<C, R> {
    fn drop(&mut self) {
        self.call.close_send();
    }
}

/// The responses of a streaming call: headers, messages, then the status. Dropping it
/// before the end cancels the call.
pub struct Streaming<C: Codec, R: Runtime> {
    call: RawCall<R>,
    codec: C,
    headers: Option<Metadata>,
    trailers: Option<Metadata>,
    status: Option<Status>,
}

impl<C: Codec, R: Runtime> std::fmt::Debug for Streaming<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming").finish_non_exhaustive()
    }
}

impl<C: Codec, R: Runtime> Streaming<C, R> {
    fn new(call: RawCall<R>, codec: C) -> Self {
        Streaming {
            call,
            codec,
            headers: None,
            trailers: None,
            status: None,
        }
    }

    /// The next message; `Ok(None)` once the call ended OK, `Err` with its status
    /// otherwise.
    pub async fn message(&mut self) -> Result<Option<C::Decode>, Status> {
        poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<C::Decode>, Status>> {
        loop {
            if let Some(status) = &self.status {
                return Poll::Ready(if status.is_ok() {
                    Ok(None)
                } else {
                    Err(status.clone())
                });
            }
            let id = self.call.id;
            let event = self.call.shared.with(|st| match st.core.poll_call(id) {
                Some(event) => Some(event),
                None => {
                    Shared::<R>::wait_read(st, id, cx.waker());
                    None
                }
            });
            match event {
                None => return Poll::Pending,
                Some(ClientEvent::Headers(md)) => self.headers = Some(md),
                Some(ClientEvent::Message(bytes)) => {
                    return Poll::Ready(self.codec.decode(bytes).map(Some));
                }
                Some(ClientEvent::Status(status, trailers)) => {
                    self.call.ended(&status);
                    self.trailers = Some(trailers);
                    self.status = Some(status);
                }
            }
        }
    }

    /// Cancels the call: the stream is reset with CANCEL and the next
    /// [`message`](Self::message) reports CANCELLED (unless the call had already ended).
    pub fn cancel(&mut self) {
        if self.status.is_none() {
            self.call.cancel();
        }
    }

    /// The response headers' metadata, once they arrived.
    pub fn headers(&self) -> Option<&Metadata> {
        self.headers.as_ref()
    }

    /// The trailers' metadata, once the call ended.
    pub fn trailers(&self) -> Option<&Metadata> {
        self.trailers.as_ref()
    }

    /// The final status, once the call ended.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }
}

impl<C: Codec + Unpin, R: Runtime> Stream for Streaming<C, R> {
    type Item = Result<C::Decode, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.poll_message(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(m))) => Poll::Ready(Some(Ok(m))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(s)) => {
                // Report a failure once, then end.
                if this.status.as_ref().is_some_and(|st| !st.is_ok()) {
                    this.status = Some(Status::ok());
                }
                Poll::Ready(Some(Err(s)))
            }
        }
    }
}
