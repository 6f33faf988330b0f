//! The channel itself (grpc-go's `ClientConn`): a target, its resolver, a balancer,
//! subchannels and their HTTP/2 transports, and the calls routed over them.
//!
//! The owner executes [`Action`]s (resolve a name, open or close a socket, write a
//! connection's bytes) and reports back (`resolver_update`, `connect_result`, `recv`,
//! `recv_eof`); time moves only through `handle_timeout`. The application starts
//! calls with [`Channel::start_call`] and reads them with [`Channel::poll_call`]. A
//! call that finds no usable subchannel waits in the channel for the next picker (or
//! fails, if it is not wait-for-ready and the picker says so), and a call whose stream
//! the server never processed is retried once on a new pick.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::backoff::ConnectParams;
use super::balancer::{
    Balancer, BalancerBuilder, BalancerContext, ClientConnState, Endpoint, FixedPicker, PickInfo,
    PickResult, Picker, ResolverState, SubchannelId,
};
use super::pick_first::{PICK_FIRST, PickFirstBuilder};
use super::random::Random;
use super::service_config::ServiceConfig;
use super::state::ConnectivityState;
use super::subchannel::{ConnId, ConnIds, Subchannel, SubchannelAction};
use super::target::{Address, Target, TargetError, static_addresses};
use super::trace::{TraceEvent, TraceKind};
use crate::grpc::client::{ClientEvent, RequestHeaders, Scheme};
use crate::grpc::compression::Encoding;
use crate::grpc::metadata::Metadata;
use crate::grpc::status::Status;
use crate::grpc::transport::{
    CallError, CallId, ClientTransport, ClientTransportEvent, MessageLimits,
};
use crate::h2::{Config, ConnectionMemory, ConnectionWindows, StreamWindows, Transmit};
use crate::id_map::IdMap;
use crate::spares::Spares;

/// Schemes the core resolves itself, with no I/O.
const STATIC_SCHEMES: [&str; 5] = ["passthrough", "unix", "unix-abstract", "ipv4", "ipv6"];

/// Request bytes a call keeps for a transparent retry before it gives the retry up
/// (grpc-go's default per-call retry buffer).
pub const RETRY_BUFFER: usize = 256 * 1024;

/// Default idle timeout (grpc-go's `WithIdleTimeout` default).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Default minimum time between two re-resolutions (grpc-go's DNS resolver).
pub const DEFAULT_MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

/// How a channel is set up.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// The scheme for targets without a known one: `dns` (grpc-go's `NewClient`) or
    /// `passthrough` (its old `Dial`).
    pub default_scheme: String,
    /// Schemes the owner resolves with I/O besides `dns` (custom resolvers).
    pub custom_schemes: Vec<String>,
    /// `:authority` for every call instead of the one derived from the target.
    pub authority: Option<String>,
    /// `:scheme` of the calls: `https` when the owner wraps connections in TLS.
    pub scheme: Scheme,
    /// Service config used when the resolver supplies none (JSON).
    pub default_service_config: Option<String>,
    /// Extra balancer policies, looked up by name before the built-in ones.
    pub balancers: Vec<Arc<dyn BalancerBuilder + Send + Sync>>,
    /// Backoff and the minimum connect timeout.
    pub connect: ConnectParams,
    /// HTTP/2 settings of every connection.
    pub h2: Config,
    /// Message size limits (a service config may lower them per method).
    pub limits: MessageLimits,
    /// With no call for this long the channel goes IDLE; zero disables idleness.
    pub idle_timeout: Duration,
    /// Minimum time between two re-resolution requests.
    pub min_resolve_interval: Duration,
    /// Put before our `user-agent`.
    pub user_agent_prefix: Option<String>,
    /// Seed of every random choice the channel makes.
    pub seed: u64,
    /// The channel's number in trace lines (`Channel #1`).
    pub channel_number: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            default_scheme: "dns".to_owned(),
            custom_schemes: Vec::new(),
            authority: None,
            scheme: Scheme::Http,
            default_service_config: None,
            balancers: Vec::new(),
            connect: ConnectParams::default(),
            h2: Config::client(),
            limits: MessageLimits::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_resolve_interval: DEFAULT_MIN_RESOLVE_INTERVAL,
            user_agent_prefix: None,
            seed: 0,
            channel_number: 1,
        }
    }
}

/// Why a channel could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The target is malformed or its scheme unknown.
    Target(TargetError),
    /// The default service config is invalid.
    ServiceConfig(String),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Target(e) => e.fmt(f),
            ChannelError::ServiceConfig(e) => write!(f, "invalid default service config: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

/// What the owner must do for the channel, from [`Channel::poll_action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Resolve this target (a scheme that needs I/O) and answer with
    /// [`Channel::resolver_update`], now and whenever the result changes.
    Resolve {
        /// The parsed target.
        target: Target,
    },
    /// Resolve the target again now (rate-limited by the channel).
    ResolveNow,
    /// Stop resolving (the channel went idle or shut down).
    StopResolving,
    /// Open a connection to `address` and report with
    /// [`Channel::connect_result`]. The channel enforces the connect deadline.
    Connect {
        /// The connection's id in every later call.
        conn: ConnId,
        /// Where to connect.
        address: Address,
    },
    /// The connection has bytes to write: call [`Channel::poll_transmit`] until it
    /// returns 0.
    Flush(ConnId),
    /// Close this connection's socket (abandoned attempt, or the transport is done).
    Close(ConnId),
}

/// What the application should know, from [`Channel::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The channel's connectivity state changed.
    StateChanged(ConnectivityState),
    /// The call has events to take with [`Channel::poll_call`] (again only after
    /// `poll_call` returned `None`).
    CallReadable(ChannelCallId),
    /// The call's send buffer has room again.
    CallWritable(ChannelCallId),
    /// A trace event (state changes, addresses tried, retries).
    Trace(TraceEvent),
}

/// A call on the channel; never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelCallId(pub u64);

/// How to make one call.
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// `/package.Service/Method`. A `&'static str` converts without a copy; for a path
    /// known only at run time, [`Channel::method_path`] shares one copy between calls.
    pub path: Bytes,
    /// Custom metadata.
    pub metadata: Metadata,
    /// When the call must be over.
    pub deadline: Option<Instant>,
    /// Wait for a READY subchannel instead of failing fast; `None` takes the service
    /// config's `waitForReady` (false without one).
    pub wait_for_ready: Option<bool>,
    /// Request compression.
    pub encoding: Encoding,
    /// `application/grpc+{subtype}`.
    pub content_subtype: Option<String>,
}

impl CallOptions {
    /// A call to `path` with no metadata, deadline or compression.
    pub fn new(path: impl Into<Bytes>) -> CallOptions {
        CallOptions {
            path: path.into(),
            metadata: Metadata::new(),
            deadline: None,
            wait_for_ready: None,
            encoding: Encoding::Identity,
            content_subtype: None,
        }
    }

    /// With a deadline.
    pub fn deadline(mut self, deadline: Instant) -> CallOptions {
        self.deadline = Some(deadline);
        self
    }

    /// With wait-for-ready set.
    pub fn wait_for_ready(mut self, wait: bool) -> CallOptions {
        self.wait_for_ready = Some(wait);
        self
    }

    /// With metadata.
    pub fn metadata(mut self, metadata: Metadata) -> CallOptions {
        self.metadata = metadata;
        self
    }

    /// With request compression.
    pub fn encoding(mut self, encoding: Encoding) -> CallOptions {
        self.encoding = encoding;
        self
    }
}

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Binding {
    /// Waiting for a pick.
    Queued,
    /// Running on a transport's call.
    Bound(ConnId, CallId),
    /// Ended inside the channel (its status is in `local`).
    Done,
}

#[derive(Debug)]
struct Call {
    /// What the application asked for.
    options: CallOptions,
    /// The method path, moved out of the options (a `String`, so valid UTF-8) into a
    /// `Bytes` the request headers share.
    path: Bytes,
    /// The metadata, moved out of the options.
    metadata: Metadata,
    /// Built once the service config is known (the method config may set the
    /// deadline); `None` until then.
    headers: Option<RequestHeaders>,
    limits: MessageLimits,
    deadline: Option<Instant>,
    wait_for_ready: bool,
    binding: Binding,
    /// Messages sent and kept for a (transparent) retry, until the call commits.
    replay: Vec<Bytes>,
    replay_bytes: usize,
    /// A response arrived or the replay buffer overflowed: no retry any more.
    committed: bool,
    /// The application ended its side.
    send_closed: bool,
    /// Transparently retried once already.
    retried: bool,
    /// Events produced by the channel itself (a failure before binding).
    local: VecDeque<ClientEvent>,
    notified: bool,
}

#[derive(Debug)]
struct Conn {
    /// The subchannel it belongs to; `None` once detached (draining after GOAWAY or an
    /// address update) — its calls finish, no new ones start.
    subchannel: Option<SubchannelId>,
    transport: Option<ClientTransport>,
    calls: IdMap<CallId, ChannelCallId>,
    flush_told: bool,
}

/// Everything but the balancer, so the balancer can borrow it as its context.
#[derive(Debug)]
struct Core {
    config: ChannelConfig,
    target: Target,
    authority: String,
    /// `authority` as the header value every call clones (a reference count, not a
    /// copy).
    authority_header: Bytes,
    external: bool,
    now: Instant,
    rng: Random,
    conn_ids: ConnIds,
    next_subchannel: u64,
    next_call: u64,
    subchannels: BTreeMap<SubchannelId, Subchannel>,
    conns: BTreeMap<ConnId, Conn>,
    calls: IdMap<u64, Call>,
    queued: VecDeque<u64>,
    queued_deadlines: BTreeSet<(Instant, u64)>,
    /// Emptied retry buffers of committed calls, for the next calls: one per call of a
    /// burst, of a few messages each (a unary call buffers one).
    spare_replays: Spares<Vec<Bytes>>,
    /// Method paths handed out by [`Channel::method_path`].
    paths: Vec<Bytes>,
    actions: VecDeque<Action>,
    events: VecDeque<ChannelEvent>,
    state: ConnectivityState,
    picker: Box<dyn Picker>,
    picker_changed: bool,
    /// The balancer asked for re-resolution (deferred until the call returns).
    resolve_now_wanted: bool,
    last_resolve: Option<Instant>,
    resolve_now_at: Option<Instant>,
    service_config: Option<Arc<ServiceConfig>>,
    default_service_config: Option<Arc<ServiceConfig>>,
    idle: bool,
    shut_down: bool,
    /// When the last call ended (or the channel left idle), for the idle timer.
    quiet_since: Instant,
    /// A resolver result (or error) arrived since the channel left IDLE.
    resolved: bool,
}

/// A gRPC client channel as a sans-IO state machine. See the module documentation.
#[derive(Debug)]
pub struct Channel {
    core: Core,
    balancer: Option<(String, Box<dyn Balancer>)>,
    /// Kept between [`process`](Self::process) passes, which snapshot the subchannel
    /// and connection ids several times per call: no allocation per pass.
    scratch_subchannels: Vec<SubchannelId>,
    /// See `scratch_subchannels`.
    scratch_conns: Vec<ConnId>,
}

impl Channel {
    /// A channel for `target`, IDLE until the first call or
    /// [`get_state(true)`](Self::get_state). Fails on a malformed target or default
    /// service config.
    pub fn new(target: &str, config: ChannelConfig, now: Instant) -> Result<Channel, ChannelError> {
        let custom = config.custom_schemes.clone();
        let is_known =
            |s: &str| s == "dns" || STATIC_SCHEMES.contains(&s) || custom.iter().any(|c| c == s);
        let target = Target::parse(target, &config.default_scheme, &is_known)
            .map_err(ChannelError::Target)?;
        let external = !STATIC_SCHEMES.contains(&target.scheme.as_str());
        let authority = target.authority_for_call(config.authority.as_deref());
        let builders = config.balancers.clone();
        let supported = move |name: &str| supported_policy(&builders, name);
        let default_service_config = match &config.default_service_config {
            Some(json) => Some(Arc::new(
                ServiceConfig::parse(json, &supported)
                    .map_err(|e| ChannelError::ServiceConfig(e.to_string()))?,
            )),
            None => None,
        };
        let mut core = Core {
            rng: Random::new(config.seed),
            target,
            authority_header: Bytes::from(authority.clone()),
            authority,
            external,
            now,
            conn_ids: ConnIds::default(),
            next_subchannel: 0,
            next_call: 0,
            subchannels: BTreeMap::new(),
            conns: BTreeMap::new(),
            calls: IdMap::default(),
            queued: VecDeque::new(),
            queued_deadlines: BTreeSet::new(),
            // One per call of a burst: at most 64 lists of 4 `Bytes`, 8 KiB in all,
            // small enough to keep with an idle channel untrimmed.
            spare_replays: Spares::new(64, 4),
            paths: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            state: ConnectivityState::Idle,
            picker: Box::new(FixedPicker(PickResult::Queue)),
            picker_changed: false,
            resolve_now_wanted: false,
            last_resolve: None,
            resolve_now_at: None,
            service_config: None,
            default_service_config,
            idle: true,
            shut_down: false,
            quiet_since: now,
            resolved: false,
            config,
        };
        let target = core.target.to_string();
        core.trace(None, TraceKind::ChannelCreated { target });
        Ok(Channel {
            core,
            balancer: None,
            scratch_subchannels: Vec::new(),
            scratch_conns: Vec::new(),
        })
    }

    /// The parsed target.
    pub fn target(&self) -> &Target {
        &self.core.target
    }

    /// The `:authority` of the channel's calls.
    pub fn authority(&self) -> &str {
        &self.core.authority
    }

    /// The channel's state; with `try_to_connect`, an IDLE channel starts connecting
    /// (grpc-go's `GetState` + `Connect`).
    pub fn get_state(&mut self, try_to_connect: bool, now: Instant) -> ConnectivityState {
        self.core.now = self.core.now.max(now);
        if try_to_connect && self.core.state == ConnectivityState::Idle && !self.core.shut_down {
            self.exit_idle();
            self.process();
        }
        self.core.state
    }

    /// True when [`poll_transmit`](Self::poll_transmit) for `conn` has something to
    /// write now.
    pub fn wants_transmit(&self, conn: ConnId) -> bool {
        self.core
            .conns
            .get(&conn)
            .and_then(|c| c.transport.as_ref())
            .is_some_and(ClientTransport::wants_transmit)
    }

    /// Calls not yet ended and taken by the application.
    pub fn open_calls(&self) -> usize {
        self.core.calls.len()
    }

    /// The subchannels' states, by id (for tests and channelz-like views).
    pub fn subchannel_states(&self) -> Vec<(SubchannelId, ConnectivityState)> {
        self.core
            .subchannels
            .iter()
            .map(|(&id, sc)| (id, sc.state()))
            .collect()
    }

    /// Connections the channel holds (connecting, ready or draining).
    pub fn connections(&self) -> Vec<ConnId> {
        self.core.conns.keys().copied().collect()
    }

    /// A connection's flow-control windows; `None` for a connection the channel does
    /// not hold or whose socket is not open yet.
    pub fn connection_windows(&self, conn: ConnId) -> Option<ConnectionWindows> {
        self.transport_of(conn).map(|t| t.connection().windows())
    }

    /// The windows of a connection's open streams (nothing for a connection the
    /// channel does not hold or whose socket is not open yet).
    pub fn connection_stream_windows(
        &self,
        conn: ConnId,
    ) -> impl Iterator<Item = StreamWindows> + '_ {
        self.transport_of(conn)
            .into_iter()
            .flat_map(|t| t.connection().stream_windows())
    }

    /// What a connection buffers (control frames owed, DATA queued to send, DATA
    /// received and not yet taken by its calls, bytes not yet parsed); `None` as for
    /// [`connection_windows`](Self::connection_windows).
    pub fn connection_memory(&self, conn: ConnId) -> Option<ConnectionMemory> {
        self.transport_of(conn).map(|t| t.connection().memory())
    }

    fn transport_of(&self, conn: ConnId) -> Option<&ClientTransport> {
        self.core.conns.get(&conn)?.transport.as_ref()
    }

    // ----- owner inputs -----

    /// The resolver's answer: new addresses and service config, or an error.
    pub fn resolver_update(&mut self, update: Result<ResolverState, Status>, now: Instant) {
        self.core.now = self.core.now.max(now);
        if self.core.shut_down || self.core.idle {
            return;
        }
        self.apply_resolver_update(update);
        self.process();
    }

    /// A connection attempt's outcome: the socket is open (`Ok`) and the HTTP/2
    /// handshake starts, or it failed with this message ("connection refused").
    pub fn connect_result(&mut self, conn: ConnId, result: Result<(), String>, now: Instant) {
        self.core.now = self.core.now.max(now);
        let Some(c) = self.core.conns.get_mut(&conn) else {
            return;
        };
        match result {
            Ok(()) => {
                if c.transport.is_none() {
                    c.transport = Some(ClientTransport::new(
                        self.core.config.h2.clone(),
                        self.core.config.limits,
                        self.core.now,
                    ));
                    self.core.tell_flush(conn);
                }
            }
            Err(message) => {
                let sc = c.subchannel;
                self.core.conns.remove(&conn);
                if let Some(sc) = sc.and_then(|id| self.core.subchannels.get_mut(&id)) {
                    sc.on_connect_failed(
                        conn,
                        Status::unavailable(message),
                        self.core.now,
                        &mut self.core.conn_ids,
                        &mut self.core.rng,
                    );
                }
            }
        }
        self.process();
    }

    /// Bytes read from a connection.
    pub fn recv(&mut self, conn: ConnId, data: BytesMut, now: Instant) {
        self.core.now = self.core.now.max(now);
        if let Some(t) = self.core.transport(conn) {
            t.recv(data, now);
            self.core.tell_flush(conn);
        }
        self.process();
    }

    /// The connection's socket reached EOF or failed.
    pub fn recv_eof(&mut self, conn: ConnId, now: Instant) {
        self.core.now = self.core.now.max(now);
        match self.core.transport(conn) {
            Some(t) => t.recv_eof(),
            None => {
                // Closed before the socket even opened: a failed attempt.
                return self.connect_result(conn, Err("connection closed".to_owned()), now);
            }
        }
        self.process();
    }

    /// Whether to read from this connection now (flow-control back-pressure).
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.core
            .conns
            .get(&conn)
            .and_then(|c| c.transport.as_ref())
            .is_some_and(|t| t.wants_read())
    }

    /// Appends what to write on `conn` to `out`; returns the bytes added (0 when idle).
    pub fn poll_transmit(&mut self, conn: ConnId, now: Instant, out: &mut Transmit) -> usize {
        self.core.now = self.core.now.max(now);
        let n = match self.core.conns.get_mut(&conn) {
            Some(c) => {
                c.flush_told = false;
                match c.transport.as_mut() {
                    Some(t) => t.poll_transmit(now, out),
                    None => 0,
                }
            }
            None => 0,
        };
        self.process();
        n
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let core = &self.core;
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for sc in core.subchannels.values() {
            consider(sc.poll_timeout());
        }
        for c in core.conns.values() {
            consider(c.transport.as_ref().and_then(|t| t.poll_timeout()));
        }
        consider(core.queued_deadlines.first().map(|&(at, _)| at));
        consider(core.resolve_now_at);
        consider(core.idle_deadline());
        next
    }

    /// Time passed: connect deadlines, backoff, call deadlines, keepalive, the
    /// re-resolution rate limit, idleness.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.now = self.core.now.max(now);
        let now = self.core.now;
        let ids: Vec<SubchannelId> = self.core.subchannels.keys().copied().collect();
        for id in ids {
            if let Some(sc) = self.core.subchannels.get_mut(&id)
                && sc.poll_timeout().is_some_and(|t| t <= now)
            {
                sc.handle_timeout(now, &mut self.core.conn_ids, &mut self.core.rng);
            }
        }
        let conns: Vec<ConnId> = self.core.conns.keys().copied().collect();
        for conn in conns {
            if let Some(t) = self.core.transport(conn)
                && t.poll_timeout().is_some_and(|at| at <= now)
            {
                t.handle_timeout(now);
                self.core.tell_flush(conn);
            }
        }
        while let Some(&(at, id)) = self.core.queued_deadlines.first() {
            if at > now {
                break;
            }
            self.core.queued_deadlines.pop_first();
            self.core.fail_local(
                id,
                Status::deadline_exceeded(
                    "context deadline exceeded while waiting for connections to become ready",
                ),
            );
        }
        if self.core.resolve_now_at.is_some_and(|t| t <= now) {
            self.core.resolve_now_at = None;
            self.core.last_resolve = Some(now);
            self.core.actions.push_back(Action::ResolveNow);
        }
        if self.core.idle_deadline().is_some_and(|t| t <= now) {
            self.enter_idle();
        }
        self.process();
    }

    /// The next action for the owner.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.core.actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.core.events.pop_front()
    }

    /// Skips the current backoff of every subchannel (grpc-go's
    /// `ResetConnectBackoff`).
    pub fn reset_connect_backoff(&mut self, now: Instant) {
        self.core.now = self.core.now.max(now);
        for sc in self.core.subchannels.values_mut() {
            sc.reset_backoff(self.core.now);
        }
        self.process();
    }

    /// Shuts the channel down: queued calls fail CANCELLED ("the client connection
    /// is closing"), new calls fail at once, connections close gracefully (calls
    /// already running finish).
    pub fn shutdown(&mut self, now: Instant) {
        self.core.now = self.core.now.max(now);
        if self.core.shut_down {
            return;
        }
        self.core.shut_down = true;
        let queued: Vec<u64> = self.core.queued.drain(..).collect();
        for id in queued {
            self.core.fail_local(
                id,
                Status::cancelled("grpc: the client connection is closing"),
            );
        }
        self.close_balancer();
        for conn in self.core.conns.values_mut() {
            conn.subchannel = None;
        }
        let conns: Vec<ConnId> = self.core.conns.keys().copied().collect();
        for conn in conns {
            self.core.shutdown_conn(conn);
        }
        if self.core.external {
            self.core.actions.push_back(Action::StopResolving);
        }
        self.core.set_state(ConnectivityState::Shutdown, None);
        self.process();
    }

    // ----- calls -----

    /// Starts a call. It never fails here: a call that cannot run ends with a status
    /// from [`poll_call`](Self::poll_call) (UNAVAILABLE when no subchannel is usable
    /// and it is not wait-for-ready, CANCELLED after shutdown, INTERNAL for invalid
    /// metadata or path). Messages may be sent at once; they wait with the call.
    pub fn start_call(&mut self, mut options: CallOptions, now: Instant) -> ChannelCallId {
        self.core.now = self.core.now.max(now);
        self.core.next_call += 1;
        let id = self.core.next_call;
        let deadline = options.deadline;
        self.core.calls.insert(
            id,
            Call {
                path: std::mem::take(&mut options.path),
                metadata: std::mem::take(&mut options.metadata),
                headers: None,
                limits: self.core.config.limits,
                deadline,
                wait_for_ready: options.wait_for_ready.unwrap_or(false),
                options,
                binding: Binding::Queued,
                replay: Vec::new(),
                replay_bytes: 0,
                committed: false,
                send_closed: false,
                retried: false,
                local: VecDeque::new(),
                notified: false,
            },
        );
        if self.core.shut_down {
            self.core.fail_local(
                id,
                Status::cancelled("grpc: the client connection is closing"),
            );
        } else {
            if let Some(d) = deadline {
                self.core.queued_deadlines.insert((d, id));
            }
            if self.core.idle {
                self.exit_idle();
            }
            self.pick(id);
        }
        self.process();
        ChannelCallId(id)
    }

    /// `path` as [`CallOptions::path`]: the same shared bytes each time for up to 64
    /// distinct paths, so that calls to a method copy its path once, not once per call.
    pub fn method_path(&mut self, path: &str) -> Bytes {
        const KEEP: usize = 64;
        let paths = &mut self.core.paths;
        if let Some(known) = paths.iter().find(|p| p[..] == *path.as_bytes()) {
            return known.clone();
        }
        let bytes = Bytes::copy_from_slice(path.as_bytes());
        if paths.len() < KEEP {
            paths.push(bytes.clone());
        }
        bytes
    }

    /// Sends one request message; `last` ends the request with it.
    pub fn send_message(
        &mut self,
        id: ChannelCallId,
        message: Bytes,
        last: bool,
    ) -> Result<(), CallError> {
        let core = &mut self.core;
        let call = core.calls.get_mut(&id.0).ok_or(CallError::UnknownCall)?;
        if call.send_closed {
            return Err(CallError::SendClosed);
        }
        // Compressed messages are checked by the transport, after compression.
        if call.options.encoding == Encoding::Identity && message.len() > call.limits.max_send {
            return Err(CallError::TooLarge(
                crate::grpc::message::EncodeError::TooLarge {
                    len: message.len(),
                    max: call.limits.max_send,
                },
            ));
        }
        call.send_closed = last;
        if !call.committed {
            if call.replay.capacity() == 0 {
                call.replay = core.spare_replays.take();
            }
            call.replay_bytes += message.len();
            call.replay.push(message.clone());
        }
        match call.binding {
            Binding::Bound(conn, tid) => {
                let result = match core.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) {
                    Some(t) => t.send_message(tid, message, last),
                    None => Err(CallError::UnknownCall),
                };
                core.maybe_commit_by_size(id.0);
                core.tell_flush(conn);
                self.process();
                // A stream that already ended reports its status through poll_call.
                match result {
                    Err(CallError::UnknownCall | CallError::SendClosed) => Ok(()),
                    other => other,
                }
            }
            Binding::Queued => Ok(()),
            Binding::Done => Ok(()),
        }
    }

    /// Ends the request without another message.
    pub fn close_send(&mut self, id: ChannelCallId) -> Result<(), CallError> {
        let core = &mut self.core;
        let call = core.calls.get_mut(&id.0).ok_or(CallError::UnknownCall)?;
        if call.send_closed {
            return Err(CallError::SendClosed);
        }
        call.send_closed = true;
        if let Binding::Bound(conn, tid) = call.binding {
            if let Some(t) = core.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) {
                let _ = t.close_send(tid);
            }
            core.tell_flush(conn);
            self.process();
        }
        Ok(())
    }

    /// True while the call can still send (not half-closed, not ended). A sender
    /// waiting for [`send_capacity`](Self::send_capacity) should give up when this
    /// turns false; the call's status comes from [`poll_call`](Self::poll_call).
    pub fn can_send(&self, id: ChannelCallId) -> bool {
        let Some(call) = self.core.calls.get(&id.0) else {
            return false;
        };
        if call.send_closed {
            return false;
        }
        match call.binding {
            Binding::Queued => true,
            Binding::Done => false,
            Binding::Bound(conn, tid) => self
                .core
                .conns
                .get(&conn)
                .and_then(|c| c.transport.as_ref())
                .is_some_and(|t| t.can_send(tid)),
        }
    }

    /// Bytes the call may still queue before back-pressure applies.
    pub fn send_capacity(&self, id: ChannelCallId) -> usize {
        let Some(call) = self.core.calls.get(&id.0) else {
            return 0;
        };
        match call.binding {
            Binding::Bound(conn, tid) => self
                .core
                .conns
                .get(&conn)
                .and_then(|c| c.transport.as_ref())
                .map_or(0, |t| t.send_capacity(tid)),
            Binding::Queued => {
                crate::h2::DEFAULT_STREAM_SEND_BUFFER.saturating_sub(call.replay_bytes)
            }
            Binding::Done => 0,
        }
    }

    /// Cancels the call: CANCELLED, its stream reset.
    pub fn cancel(&mut self, id: ChannelCallId) {
        let core = &mut self.core;
        let Some(call) = core.calls.get_mut(&id.0) else {
            return;
        };
        match call.binding {
            Binding::Bound(conn, tid) => {
                if let Some(t) = core.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) {
                    t.cancel(tid);
                }
                core.tell_flush(conn);
            }
            Binding::Queued => {
                core.fail_local(id.0, Status::cancelled("call cancelled by the application"));
            }
            Binding::Done => {}
        }
        self.process();
    }

    /// The application dropped the call: cancelled if running, and forgotten.
    pub fn forget(&mut self, id: ChannelCallId) {
        let core = &mut self.core;
        let Some(call) = core.calls.remove(&id.0) else {
            return;
        };
        core.queued.retain(|&q| q != id.0);
        if let Some(d) = call.deadline {
            core.queued_deadlines.remove(&(d, id.0));
        }
        if let Binding::Bound(conn, tid) = call.binding {
            if let Some(c) = core.conns.get_mut(&conn) {
                c.calls.remove(&tid);
                if let Some(t) = c.transport.as_mut() {
                    t.forget(tid);
                }
            }
            core.tell_flush(conn);
        }
        core.note_quiet();
        self.process();
    }

    /// The call's next event: headers, messages, then exactly one status, after which
    /// the call is gone.
    pub fn poll_call(&mut self, id: ChannelCallId) -> Option<ClientEvent> {
        let core = &mut self.core;
        let call = core.calls.get_mut(&id.0)?;
        let event = match call.binding {
            Binding::Bound(conn, tid) => {
                let event = core
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| c.transport.as_mut())
                    .and_then(|t| t.poll_call(tid));
                if matches!(
                    event,
                    Some(ClientEvent::Headers(_) | ClientEvent::Message(_))
                ) {
                    call.committed = true;
                    core.spare_replays.put(std::mem::take(&mut call.replay));
                    call.replay_bytes = 0;
                }
                // Taking a message may free window: a WINDOW_UPDATE to write.
                core.tell_flush(conn);
                event
            }
            Binding::Queued | Binding::Done => call.local.pop_front(),
        };
        let call = core.calls.get_mut(&id.0)?;
        match &event {
            None => call.notified = false,
            Some(ClientEvent::Status(..)) => {
                let call = core.calls.remove(&id.0);
                if let Some(Binding::Bound(conn, tid)) = call.map(|c| c.binding)
                    && let Some(c) = core.conns.get_mut(&conn)
                {
                    c.calls.remove(&tid);
                }
                core.note_quiet();
                // The call's connection may be closed and now without calls. Only an
                // ending call can make one so here: reading closes no transport.
                core.reap_conns();
            }
            Some(_) => {}
        }
        event
    }

    // ----- internals -----

    fn exit_idle(&mut self) {
        if !self.core.idle || self.core.shut_down {
            return;
        }
        self.core.idle = false;
        self.core.quiet_since = self.core.now;
        if self.core.external {
            self.core.last_resolve = Some(self.core.now);
            let target = self.core.target.clone();
            self.core.actions.push_back(Action::Resolve { target });
        } else {
            let update = match static_addresses(&self.core.target) {
                Some(Ok(addresses)) => Ok(ResolverState {
                    endpoints: addresses.into_iter().map(Endpoint::new).collect(),
                    ..ResolverState::default()
                }),
                Some(Err(e)) => Err(Status::unavailable(e.to_string())),
                None => Err(Status::unavailable("no resolver for the target")),
            };
            self.apply_resolver_update(update);
        }
        if let Some((_, balancer)) = self.balancer.as_mut() {
            balancer.exit_idle(&mut self.core);
        }
    }

    fn enter_idle(&mut self) {
        if self.core.idle || self.core.shut_down {
            return;
        }
        self.close_balancer();
        for conn in self.core.conns.values_mut() {
            conn.subchannel = None;
        }
        let conns: Vec<ConnId> = self.core.conns.keys().copied().collect();
        for conn in conns {
            self.core.shutdown_conn(conn);
        }
        if self.core.external {
            self.core.actions.push_back(Action::StopResolving);
        }
        self.core.idle = true;
        self.core.resolved = false;
        self.core.resolve_now_at = None;
        self.core.picker = Box::new(FixedPicker(PickResult::Queue));
        self.core.set_state(ConnectivityState::Idle, None);
    }

    fn close_balancer(&mut self) {
        if let Some((_, mut balancer)) = self.balancer.take() {
            balancer.close(&mut self.core);
        }
        // Subchannels the balancer did not remove go too.
        let ids: Vec<SubchannelId> = self.core.subchannels.keys().copied().collect();
        for id in ids {
            self.core.remove_subchannel(id);
        }
    }

    fn apply_resolver_update(&mut self, update: Result<ResolverState, Status>) {
        if !self.core.resolved {
            // Calls waiting for the first result can now read the method config.
            self.core.resolved = true;
            self.core.picker_changed = true;
        }
        let state = match update {
            Ok(state) => state,
            Err(error) => {
                self.core.trace(
                    None,
                    TraceKind::ResolverUpdate {
                        summary: format!("error: {}", error.message),
                    },
                );
                match self.balancer.as_mut() {
                    Some((_, b)) => b.resolver_error(&error, &mut self.core),
                    None => {
                        self.core.publish(
                            ConnectivityState::TransientFailure,
                            Box::new(FixedPicker(PickResult::Fail(error.clone()))),
                            Some(error.message.clone()),
                        );
                    }
                }
                return;
            }
        };
        self.core.trace(
            None,
            TraceKind::ResolverUpdate {
                summary: format!("{} endpoint(s)", state.endpoints.len()),
            },
        );
        // Service config: the resolver's, else the default; a bad one from the
        // resolver keeps the previous config, or fails picks if there is none.
        let builders = self.core.config.balancers.clone();
        let supported = move |name: &str| supported_policy(&builders, name);
        let config = match &state.service_config {
            Some(json) => match ServiceConfig::parse(json, &supported) {
                Ok(sc) => Some(Arc::new(sc)),
                Err(e) => match &self.core.service_config {
                    Some(previous) => Some(previous.clone()),
                    None => {
                        let status =
                            Status::unavailable(format!("error parsing service config: {e}"));
                        self.core.publish(
                            ConnectivityState::TransientFailure,
                            Box::new(FixedPicker(PickResult::Fail(status.clone()))),
                            Some(status.message),
                        );
                        self.core.resolve_now_wanted = true;
                        return;
                    }
                },
            },
            None => self.core.default_service_config.clone(),
        };
        self.core.service_config = config.clone();
        let (policy, lb_config) = match config.as_ref().and_then(|c| c.load_balancing.as_ref()) {
            Some(lb) => (lb.name.clone(), Some(lb.config.clone())),
            None => (PICK_FIRST.to_owned(), None),
        };
        if self
            .balancer
            .as_ref()
            .is_none_or(|(name, _)| *name != policy)
        {
            self.close_balancer_keep_subchannels();
            let builder = find_builder(&self.core.config.balancers, &policy);
            self.core.trace(
                None,
                TraceKind::BalancerSwitch {
                    policy: policy.clone(),
                },
            );
            self.balancer = Some((policy, builder.build()));
        }
        if let Some((_, b)) = self.balancer.as_mut() {
            let ccs = ClientConnState {
                resolver_state: state,
                config: lb_config,
            };
            if b.update_client_conn_state(&ccs, &mut self.core).is_err() {
                self.core.resolve_now_wanted = true;
            }
        }
    }

    /// Replaces the balancer: the old one removes its subchannels.
    fn close_balancer_keep_subchannels(&mut self) {
        if let Some((_, mut balancer)) = self.balancer.take() {
            balancer.close(&mut self.core);
        }
    }

    /// Picks for a queued call and binds it when a READY subchannel comes back.
    fn pick(&mut self, id: u64) {
        let core = &mut self.core;
        let Some(call) = core.calls.get(&id) else {
            return;
        };
        if call.binding != Binding::Queued {
            return;
        }
        if call.headers.is_none() {
            // The method config comes with the first resolver result (grpc-go waits
            // for it in waitForResolvedAddrs before reading the config).
            if !core.resolved {
                core.enqueue(id);
                return;
            }
            if !core.apply_method_config(id) {
                return;
            }
        }
        let Some(call) = core.calls.get(&id) else {
            return;
        };
        let info = PickInfo {
            path: path_str(&call.path),
            metadata: &call.metadata,
        };
        let result = core.picker.pick(&info);
        match result {
            PickResult::Pick(sc) => {
                let conn = core
                    .subchannels
                    .get(&sc)
                    .filter(|s| s.state() == ConnectivityState::Ready)
                    .and_then(|s| s.ready_conn());
                match conn.and_then(|conn| core.bind(id, conn).then_some(())) {
                    Some(()) => core.queued.retain(|&q| q != id),
                    None => core.enqueue(id),
                }
            }
            PickResult::Queue => {
                core.enqueue(id);
                if core.state == ConnectivityState::Idle
                    && let Some((_, b)) = self.balancer.as_mut()
                {
                    b.exit_idle(&mut self.core);
                }
            }
            PickResult::Fail(status) => {
                if call.wait_for_ready {
                    core.enqueue(id);
                } else {
                    core.fail_local(id, status);
                }
            }
            PickResult::Drop(status) => core.fail_local(id, status),
        }
    }

    /// Runs everything that follows from the last input until nothing changes:
    /// subchannel actions to the balancer and owner, transport events to subchannels
    /// and calls, re-picks after a new picker.
    fn process(&mut self) {
        for _ in 0..10_000 {
            let mut progress = false;
            progress |= self.drain_subchannels();
            progress |= self.drain_transports();
            if self.core.resolve_now_wanted {
                self.core.resolve_now_wanted = false;
                self.core.request_resolve_now();
                progress = true;
            }
            if self.core.picker_changed {
                self.core.picker_changed = false;
                let queued: Vec<u64> = self.core.queued.iter().copied().collect();
                for id in queued {
                    self.pick(id);
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
        self.core.reap_conns();
    }

    fn drain_subchannels(&mut self) -> bool {
        // Runs several times per step of every call, and the common answer is none:
        // one pass over the queues rather than collecting ids to visit.
        if !self.core.subchannels.values().any(Subchannel::has_actions) {
            return false;
        }
        let mut progress = false;
        let mut ids = std::mem::take(&mut self.scratch_subchannels);
        ids.clear();
        ids.extend(self.core.subchannels.keys().copied());
        for &id in &ids {
            loop {
                let Some(action) = self
                    .core
                    .subchannels
                    .get_mut(&id)
                    .and_then(|s| s.poll_action())
                else {
                    break;
                };
                progress = true;
                match action {
                    SubchannelAction::Connect { conn, address } => {
                        self.core.conns.insert(
                            conn,
                            Conn {
                                subchannel: Some(id),
                                transport: None,
                                calls: IdMap::default(),
                                flush_told: false,
                            },
                        );
                        self.core
                            .actions
                            .push_back(Action::Connect { conn, address });
                    }
                    SubchannelAction::Close { conn } => {
                        if let Some(c) = self.core.conns.get_mut(&conn) {
                            c.subchannel = None;
                        }
                        self.core.shutdown_conn(conn);
                    }
                    SubchannelAction::StateChanged(state) => {
                        if let Some((_, b)) = self.balancer.as_mut() {
                            b.subchannel_state(id, &state, &mut self.core);
                        }
                    }
                    SubchannelAction::ResolveNow => self.core.resolve_now_wanted = true,
                    SubchannelAction::Trace(kind) => self.core.trace(Some(id), kind),
                }
            }
        }
        self.scratch_subchannels = ids;
        progress
    }

    fn drain_transports(&mut self) -> bool {
        // As in `drain_subchannels`: most passes find every queue empty.
        if !self.core.conns.values().any(|c| {
            c.transport
                .as_ref()
                .is_some_and(ClientTransport::has_events)
        }) {
            return false;
        }
        let mut progress = false;
        let mut conns = std::mem::take(&mut self.scratch_conns);
        conns.clear();
        conns.extend(self.core.conns.keys().copied());
        for &conn in &conns {
            loop {
                let Some(event) = self.core.transport(conn).and_then(|t| t.poll_event()) else {
                    break;
                };
                progress = true;
                let sc = self.core.conns.get(&conn).and_then(|c| c.subchannel);
                match event {
                    ClientTransportEvent::Connected => {
                        if let Some(s) = sc.and_then(|id| self.core.subchannels.get_mut(&id)) {
                            s.on_ready(conn, self.core.now);
                        }
                    }
                    ClientTransportEvent::GoAway { code, .. } => {
                        // Draining: no new calls here; the subchannel moves on while the
                        // calls in flight finish on this transport.
                        if let Some(c) = self.core.conns.get_mut(&conn) {
                            c.subchannel = None;
                        }
                        if let Some(s) = sc.and_then(|id| self.core.subchannels.get_mut(&id)) {
                            s.on_closed(
                                conn,
                                Status::unavailable(format!("received GOAWAY {code}")),
                                self.core.now,
                                &mut self.core.conn_ids,
                                &mut self.core.rng,
                            );
                        }
                    }
                    ClientTransportEvent::Closed(reason) => {
                        if let Some(c) = self.core.conns.get_mut(&conn) {
                            c.subchannel = None;
                        }
                        if let Some(s) = sc.and_then(|id| self.core.subchannels.get_mut(&id)) {
                            s.on_closed(
                                conn,
                                Status::unavailable(reason.to_string()),
                                self.core.now,
                                &mut self.core.conn_ids,
                                &mut self.core.rng,
                            );
                        }
                    }
                    ClientTransportEvent::CallReadable(tid) => self.on_call_readable(conn, tid),
                    ClientTransportEvent::CallWritable(tid) => {
                        if let Some(&cid) =
                            self.core.conns.get(&conn).and_then(|c| c.calls.get(&tid))
                        {
                            self.core.events.push_back(ChannelEvent::CallWritable(cid));
                        }
                    }
                    ClientTransportEvent::PingAck { .. }
                    | ClientTransportEvent::StreamIdsExhausted => {}
                }
            }
        }
        self.scratch_conns = conns;
        progress
    }

    /// A transport call has events: retry it transparently if the server never
    /// processed it, else tell the application.
    fn on_call_readable(&mut self, conn: ConnId, tid: CallId) {
        let core = &mut self.core;
        let Some(&cid) = core.conns.get(&conn).and_then(|c| c.calls.get(&tid)) else {
            return;
        };
        let retry = {
            let t = core.conns.get(&conn).and_then(|c| c.transport.as_ref());
            let call = core.calls.get(&cid.0);
            matches!((t, call), (Some(t), Some(call))
                if !call.committed && !call.retried && t.transparent_retry_ok(tid))
        };
        if retry {
            if let Some(c) = core.conns.get_mut(&conn) {
                c.calls.remove(&tid);
                if let Some(t) = c.transport.as_mut() {
                    t.forget(tid);
                }
            }
            let now = core.now;
            let (path, expired) = match core.calls.get_mut(&cid.0) {
                Some(call) => {
                    call.retried = true;
                    call.binding = Binding::Queued;
                    let expired = call.deadline.is_some_and(|d| d <= now);
                    if let Some(d) = call.deadline
                        && !expired
                    {
                        core.queued_deadlines.insert((d, cid.0));
                    }
                    (call.path.clone(), expired)
                }
                None => return,
            };
            if expired {
                // No time left for another attempt: the deadline is the call's outcome.
                core.fail_local(cid.0, Status::deadline_exceeded("deadline exceeded"));
                return;
            }
            core.trace(
                None,
                TraceKind::TransparentRetry {
                    path: path_str(&path).to_owned(),
                },
            );
            self.pick(cid.0);
            return;
        }
        core.notify(cid.0);
    }
}

impl Core {
    fn trace(&mut self, subchannel: Option<SubchannelId>, kind: TraceKind) {
        self.events.push_back(ChannelEvent::Trace(TraceEvent {
            at: self.now,
            channel: self.config.channel_number,
            subchannel,
            kind,
        }));
    }

    fn transport(&mut self, conn: ConnId) -> Option<&mut ClientTransport> {
        self.conns.get_mut(&conn).and_then(|c| c.transport.as_mut())
    }

    /// Tells the owner once that `conn` has bytes to write.
    fn tell_flush(&mut self, conn: ConnId) {
        // Only when there is something to write: most reads (a response, a message)
        // leave nothing, and waking the writer for nothing cost a task switch each.
        if let Some(c) = self.conns.get_mut(&conn)
            && !c.flush_told
            && c.transport
                .as_ref()
                .is_some_and(ClientTransport::wants_transmit)
        {
            c.flush_told = true;
            self.actions.push_back(Action::Flush(conn));
        }
    }

    fn set_state(&mut self, state: ConnectivityState, last_error: Option<String>) {
        if self.state == state {
            return;
        }
        self.state = state;
        self.trace(None, TraceKind::ChannelState { state, last_error });
        self.events.push_back(ChannelEvent::StateChanged(state));
    }

    fn publish(
        &mut self,
        state: ConnectivityState,
        picker: Box<dyn Picker>,
        last_error: Option<String>,
    ) {
        if self.shut_down || self.idle {
            return;
        }
        self.picker = picker;
        self.picker_changed = true;
        self.set_state(state, last_error);
    }

    fn method_config(&self, path: &str) -> Option<super::service_config::MethodConfig> {
        let sc = self
            .service_config
            .as_ref()
            .or(self.default_service_config.as_ref())?;
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let (service, method) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        sc.method_config(service, method).cloned()
    }

    /// Applies the method config to a call (deadline, wait-for-ready, limits) and
    /// builds its headers. False if the call ended here (a message it already queued
    /// is over the method's request limit).
    fn apply_method_config(&mut self, id: u64) -> bool {
        let method = match self.calls.get(&id) {
            Some(call) => self.method_config(path_str(&call.path)),
            None => return false,
        };
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let mut deadline = call.options.deadline;
        if let Some(timeout) = method.as_ref().and_then(|m| m.timeout)
            && let Some(by_config) = now.checked_add(timeout)
        {
            deadline = Some(deadline.map_or(by_config, |d| d.min(by_config)));
        }
        call.wait_for_ready = call
            .options
            .wait_for_ready
            .or(method.as_ref().and_then(|m| m.wait_for_ready))
            .unwrap_or(false);
        if let Some(m) = &method {
            if let Some(n) = m.max_request_message_bytes {
                call.limits.max_send = call.limits.max_send.min(n);
            }
            if let Some(n) = m.max_response_message_bytes {
                call.limits.max_recv = call.limits.max_recv.min(n);
            }
        }
        let mut headers = RequestHeaders::new(
            self.config.scheme,
            self.authority_header.clone(),
            call.path.clone(),
        )
        .encoding(call.options.encoding)
        .metadata(call.metadata.clone());
        if let Some(d) = deadline {
            headers = headers.deadline(d);
        }
        if let Some(sub) = &call.options.content_subtype {
            headers = headers.content_subtype(sub.clone());
        }
        if let Some(prefix) = &self.config.user_agent_prefix {
            headers = headers.user_agent_prefix(prefix.clone());
        }
        call.headers = Some(headers);
        if deadline != call.deadline {
            if let Some(old) = call.deadline {
                self.queued_deadlines.remove(&(old, id));
            }
            if let Some(new) = deadline {
                self.queued_deadlines.insert((new, id));
            }
            call.deadline = deadline;
        }
        let max_send = call.limits.max_send;
        let too_large = call.options.encoding == Encoding::Identity
            && call.replay.iter().any(|m| m.len() > max_send);
        if too_large {
            self.fail_local(
                id,
                Status::resource_exhausted(format!(
                    "trying to send message larger than max ({max_send})"
                )),
            );
            return false;
        }
        true
    }

    fn enqueue(&mut self, id: u64) {
        if !self.queued.contains(&id) {
            self.queued.push_back(id);
        }
    }

    /// Starts the call on `conn`'s transport; false if that transport takes no new
    /// calls (the call stays queued).
    fn bind(&mut self, id: u64, conn: ConnId) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Some(t) = self.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) else {
            return false;
        };
        let Some(headers) = call.headers.as_ref() else {
            return false;
        };
        let tid = match t.start_call_with_limits(headers, call.limits, self.now) {
            Ok(tid) => tid,
            Err(e) if e.is_unprocessed() => return false,
            Err(e) => {
                self.fail_local(id, e.to_status());
                return true;
            }
        };
        let n = call.replay.len();
        for (i, m) in call.replay.iter().enumerate() {
            let last = call.send_closed && i + 1 == n;
            let _ = t.send_message(tid, m.clone(), last);
        }
        if call.send_closed && n == 0 {
            let _ = t.close_send(tid);
        }
        call.binding = Binding::Bound(conn, tid);
        if let Some(d) = call.deadline {
            self.queued_deadlines.remove(&(d, id));
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.calls.insert(tid, ChannelCallId(id));
        }
        self.maybe_commit_by_size(id);
        self.tell_flush(conn);
        true
    }

    fn maybe_commit_by_size(&mut self, id: u64) {
        if let Some(call) = self.calls.get_mut(&id)
            && call.replay_bytes > RETRY_BUFFER
        {
            call.committed = true;
            call.replay = Vec::new();
            call.replay_bytes = 0;
        }
    }

    /// Ends a call that is not running on a transport with `status`.
    fn fail_local(&mut self, id: u64, status: Status) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.binding != Binding::Queued {
            return;
        }
        call.binding = Binding::Done;
        call.replay = Vec::new();
        call.local
            .push_back(ClientEvent::Status(status, Metadata::new()));
        if let Some(d) = call.deadline {
            self.queued_deadlines.remove(&(d, id));
        }
        self.queued.retain(|&q| q != id);
        self.notify(id);
    }

    fn notify(&mut self, id: u64) {
        if let Some(call) = self.calls.get_mut(&id)
            && !call.notified
        {
            call.notified = true;
            self.events
                .push_back(ChannelEvent::CallReadable(ChannelCallId(id)));
        }
    }

    /// Graceful close of a connection: its transport sends GOAWAY and finishes its
    /// calls; a connection still opening is abandoned.
    fn shutdown_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.transport.as_mut() {
            Some(t) => {
                t.shutdown();
                self.tell_flush(conn);
            }
            None => {
                self.conns.remove(&conn);
                self.actions.push_back(Action::Close(conn));
            }
        }
    }

    /// Drops detached connections whose transport is closed, telling the owner.
    fn reap_conns(&mut self) {
        let done =
            |c: &Conn| c.transport.as_ref().is_some_and(|t| t.is_closed()) && c.calls.is_empty();
        // Runs after every step of every call: the common answer, none, costs one pass.
        if !self.conns.values().any(done) {
            return;
        }
        let closed: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| done(c))
            .map(|(&id, _)| id)
            .collect();
        for conn in closed {
            self.conns.remove(&conn);
            self.actions.push_back(Action::Close(conn));
        }
    }

    fn remove_subchannel(&mut self, id: SubchannelId) {
        if let Some(mut sc) = self.subchannels.remove(&id) {
            sc.shutdown();
            while let Some(action) = sc.poll_action() {
                match action {
                    SubchannelAction::Close { conn } => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.subchannel = None;
                        }
                        self.shutdown_conn(conn);
                    }
                    SubchannelAction::Trace(kind) => self.trace(Some(id), kind),
                    _ => {}
                }
            }
            for c in self.conns.values_mut() {
                if c.subchannel == Some(id) {
                    c.subchannel = None;
                }
            }
            let conns: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.subchannel.is_none() && c.transport.is_none())
                .map(|(&id, _)| id)
                .collect();
            for conn in conns {
                self.shutdown_conn(conn);
            }
        }
    }

    /// Asks for re-resolution, no more often than the configured interval.
    fn request_resolve_now(&mut self) {
        if !self.external || self.idle || self.shut_down {
            return;
        }
        let earliest = self
            .last_resolve
            .and_then(|t| t.checked_add(self.config.min_resolve_interval));
        match earliest {
            Some(at) if at > self.now => {
                if self.resolve_now_at.is_none() {
                    self.resolve_now_at = Some(at);
                }
            }
            _ => {
                self.last_resolve = Some(self.now);
                self.actions.push_back(Action::ResolveNow);
            }
        }
    }

    fn note_quiet(&mut self) {
        if self.calls.is_empty() {
            self.quiet_since = self.now;
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        if self.idle
            || self.shut_down
            || !self.calls.is_empty()
            || self.config.idle_timeout.is_zero()
        {
            return None;
        }
        self.quiet_since.checked_add(self.config.idle_timeout)
    }
}

impl BalancerContext for Core {
    fn new_subchannel(&mut self, addresses: Vec<Address>) -> SubchannelId {
        self.next_subchannel += 1;
        let id = SubchannelId(self.next_subchannel);
        self.trace(
            Some(id),
            TraceKind::SubchannelCreated {
                addresses: addresses.clone(),
            },
        );
        self.subchannels
            .insert(id, Subchannel::new(id, addresses, self.config.connect));
        id
    }

    fn update_addresses(&mut self, subchannel: SubchannelId, addresses: Vec<Address>) {
        if let Some(sc) = self.subchannels.get_mut(&subchannel) {
            sc.update_addresses(addresses, self.now, &mut self.conn_ids, &mut self.rng);
        }
    }

    fn connect(&mut self, subchannel: SubchannelId) {
        if let Some(sc) = self.subchannels.get_mut(&subchannel) {
            sc.connect(self.now, &mut self.conn_ids, &mut self.rng);
        }
    }

    fn remove_subchannel(&mut self, subchannel: SubchannelId) {
        Core::remove_subchannel(self, subchannel);
    }

    fn update_state(&mut self, state: ConnectivityState, picker: Box<dyn Picker>) {
        let last_error = if state == ConnectivityState::TransientFailure {
            self.subchannels
                .values()
                .filter_map(|s| s.last_error())
                .map(|e| e.message.clone())
                .next_back()
        } else {
            None
        };
        self.publish(state, picker, last_error);
    }

    fn resolve_now(&mut self) {
        self.resolve_now_wanted = true;
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

fn supported_policy(builders: &[Arc<dyn BalancerBuilder + Send + Sync>], name: &str) -> bool {
    name == PICK_FIRST
        || name == super::round_robin::ROUND_ROBIN
        || builders.iter().any(|b| b.name() == name)
}

fn find_builder(
    builders: &[Arc<dyn BalancerBuilder + Send + Sync>],
    name: &str,
) -> Arc<dyn BalancerBuilder + Send + Sync> {
    if let Some(b) = builders.iter().find(|b| b.name() == name) {
        return b.clone();
    }
    if name == super::round_robin::ROUND_ROBIN {
        return Arc::new(super::round_robin::round_robin_builder());
    }
    Arc::new(PickFirstBuilder)
}

/// A call's path as text: it was a `String` before it became `Bytes`.
fn path_str(path: &Bytes) -> &str {
    std::str::from_utf8(path).unwrap_or_default()
}
