//! A simulated network for one [`Channel`]: servers at addresses (serving, refusing
//! or black-holing connections), byte streams between the channel's connections and
//! the servers' transports, a resolver answered by the test, and a virtual clock that
//! jumps from one timer to the next. Single-threaded and deterministic.
//!
//! The servers are echo servers: every call is answered with its request messages and
//! an OK status, so a test can tell where a call went by the `x-server` header each
//! server adds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::channel::balancer::{Endpoint, ResolverState};
use grpc_sansio::channel::client_channel::{
    Action, CallOptions, Channel, ChannelCallId, ChannelConfig, ChannelEvent,
};
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio::channel::subchannel::ConnId;
use grpc_sansio::channel::target::Address;
use grpc_sansio::channel::trace::TraceEvent;
use grpc_sansio::grpc::client::ClientEvent;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::ServerEvent;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{CallId, MessageLimits, ServerTransport, ServerTransportEvent};
use grpc_sansio::h2::{Config, Transmit};

/// What a server address does with a connection attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts and serves.
    Serve,
    /// Refuses at once ("connection refused").
    Refuse,
    /// Never answers: the attempt hangs until the channel gives up.
    Blackhole,
    /// Accepts, reads, never answers anything (not even the HTTP/2 preface).
    Mute,
}

/// One server host.
#[derive(Debug)]
struct Host {
    behaviour: Behaviour,
    /// Calls this host answered.
    served: usize,
    /// Hold answers (calls stay open) until released.
    hold: bool,
}

/// One accepted connection: the channel's end is `conn`, the server's transport here.
#[derive(Debug)]
struct Link {
    address: Address,
    server: ServerTransport,
    to_server: BytesMut,
    to_client: BytesMut,
    /// The client side closed its socket.
    client_closed: bool,
    /// EOF delivered to the client.
    client_eof_sent: bool,
    /// Calls held open by a holding server: (call, its messages).
    held: Vec<(CallId, Vec<Bytes>)>,
    /// Calls whose request is not complete yet: their messages so far.
    open: BTreeMap<CallId, Vec<Bytes>>,
}

/// The network, the channel and the clock.
#[derive(Debug)]
pub struct Net {
    /// The channel under test.
    pub channel: Channel,
    /// Virtual time.
    pub now: Instant,
    /// When the net started.
    pub start: Instant,
    hosts: BTreeMap<String, Host>,
    links: BTreeMap<ConnId, Link>,
    /// Connect attempts waiting (black-holed ones forever).
    pending: BTreeMap<ConnId, Address>,
    /// Every trace line, stamped with the time since start.
    pub trace: Vec<(Duration, TraceEvent)>,
    /// Channel state changes with their times.
    pub states: Vec<(Duration, ConnectivityState)>,
    /// Resolution requests the channel made (Resolve and ResolveNow), with times.
    pub resolves: Vec<Duration>,
    /// What the resolver answers on Resolve / ResolveNow (None: the test answers).
    pub resolver_answer: Option<ResolverState>,
    /// Connection attempts the channel made, with their times.
    pub connects: Vec<(Duration, Address)>,
    /// The HTTP/2 configuration of every server connection.
    pub server_config: Config,
}

/// `127.0.0.1:port`.
pub fn addr(port: u16) -> Address {
    Address::Socket(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

impl Net {
    /// A channel for `target` with `config`, over an empty network.
    pub fn new(target: &str, config: ChannelConfig) -> Net {
        // The only clock read: a base point; everything after it is virtual.
        let now = Instant::now();
        let channel = Channel::new(target, config, now).expect("valid target");
        let mut net = Net {
            channel,
            now,
            start: now,
            hosts: BTreeMap::new(),
            links: BTreeMap::new(),
            pending: BTreeMap::new(),
            trace: Vec::new(),
            states: Vec::new(),
            resolves: Vec::new(),
            resolver_answer: None,
            connects: Vec::new(),
            server_config: Config::server(),
        };
        net.run();
        net
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Sets what connecting to `address` does.
    pub fn set(&mut self, address: &Address, behaviour: Behaviour) {
        self.hosts
            .entry(address.to_string())
            .or_insert(Host {
                behaviour,
                served: 0,
                hold: false,
            })
            .behaviour = behaviour;
    }

    /// Makes the server at `address` hold calls open (answer nothing) until
    /// [`release_held`](Self::release_held).
    pub fn hold(&mut self, address: &Address, hold: bool) {
        if let Some(h) = self.hosts.get_mut(&address.to_string()) {
            h.hold = hold;
        }
    }

    /// Calls the server at `address` answered.
    pub fn served(&self, address: &Address) -> usize {
        self.hosts.get(&address.to_string()).map_or(0, |h| h.served)
    }

    /// The server at `address` dies: its connections close (the channel reads EOF)
    /// and new attempts are refused.
    pub fn kill(&mut self, address: &Address) {
        self.set(address, Behaviour::Refuse);
        let key = address.to_string();
        let dead: Vec<ConnId> = self
            .links
            .iter()
            .filter(|(_, l)| l.address.to_string() == key)
            .map(|(&c, _)| c)
            .collect();
        for conn in dead {
            self.links.remove(&conn);
            self.channel.recv_eof(conn, self.now);
        }
        self.run();
    }

    /// The server at `address` starts a graceful shutdown (two-phase GOAWAY) on every
    /// connection; calls in flight finish.
    pub fn goaway(&mut self, address: &Address) {
        let key = address.to_string();
        for link in self.links.values_mut() {
            if link.address.to_string() == key {
                link.server.shutdown();
            }
        }
        self.run();
    }

    /// Answers held calls on every connection to `address` (echo + OK).
    pub fn release_held(&mut self, address: &Address) {
        let key = address.to_string();
        if let Some(h) = self.hosts.get_mut(&key) {
            h.hold = false;
        }
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            if link.address.to_string() != key {
                continue;
            }
            let held = std::mem::take(&mut link.held);
            for (call, messages) in held {
                answer(&mut link.server, call, &messages, &key);
                if let Some(h) = self.hosts.get_mut(&key) {
                    h.served += 1;
                }
            }
        }
        self.run();
    }

    /// Answers the channel's pending resolution with `state`.
    pub fn resolve(&mut self, state: ResolverState) {
        self.channel.resolver_update(Ok(state), self.now);
        self.run();
    }

    /// Answers the channel's pending resolution with an error.
    pub fn resolve_error(&mut self, message: &str) {
        self.channel
            .resolver_update(Err(Status::unavailable(message)), self.now);
        self.run();
    }

    /// A resolver state listing `addresses`, one endpoint each.
    pub fn endpoints(addresses: &[Address]) -> ResolverState {
        ResolverState {
            endpoints: addresses.iter().cloned().map(Endpoint::new).collect(),
            ..ResolverState::default()
        }
    }

    /// Starts a unary call to `/test.Echo/Unary` with a 1-byte body.
    pub fn unary(&mut self, options: CallOptions) -> ChannelCallId {
        let id = self.channel.start_call(options, self.now);
        self.channel
            .send_message(id, Bytes::from_static(b"x"), true)
            .expect("send the request");
        self.run();
        id
    }

    /// The call's events so far (its status included once it ended).
    pub fn events(&mut self, id: ChannelCallId) -> Vec<ClientEvent> {
        let events: Vec<ClientEvent> = std::iter::from_fn(|| self.channel.poll_call(id)).collect();
        self.run();
        events
    }

    /// The call's final status and the server that answered (`x-server` header), or
    /// `None` if it has not ended.
    pub fn outcome(&mut self, id: ChannelCallId) -> Option<(Status, Option<String>)> {
        let events = self.events(id);
        let server = events.iter().find_map(|e| match e {
            ClientEvent::Headers(md) => md.get_str("x-server").map(str::to_owned),
            _ => None,
        });
        events.into_iter().find_map(|e| match e {
            ClientEvent::Status(s, _) => Some((s, server.clone())),
            _ => None,
        })
    }

    /// Moves time forward by `d`, firing every timer on the way at its own time.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self.next_timer();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.fire();
                }
                _ => break,
            }
        }
        self.now = end;
        self.fire();
    }

    /// Advances to the next timer (at most `limit` ahead); returns whether one fired.
    pub fn step(&mut self, limit: Duration) -> bool {
        match self.next_timer() {
            Some(t) if t <= self.now + limit => {
                self.now = self.now.max(t);
                self.fire();
                true
            }
            _ => false,
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let mut next = self.channel.poll_timeout();
        for link in self.links.values() {
            if let Some(t) = link.server.poll_timeout() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    fn fire(&mut self) {
        self.channel.handle_timeout(self.now);
        for link in self.links.values_mut() {
            if link.server.poll_timeout().is_some_and(|t| t <= self.now) {
                link.server.handle_timeout(self.now);
            }
        }
        self.run();
    }

    /// Runs actions, bytes and servers until nothing moves.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            let mut progress = false;
            progress |= self.do_actions();
            progress |= self.move_bytes();
            progress |= self.serve();
            progress |= self.collect_events();
            if !progress {
                return;
            }
        }
        panic!("network did not settle");
    }

    fn do_actions(&mut self) -> bool {
        let mut progress = false;
        while let Some(action) = self.channel.poll_action() {
            progress = true;
            match action {
                Action::Resolve { .. } | Action::ResolveNow => {
                    self.resolves.push(self.elapsed());
                    if let Some(state) = self.resolver_answer.clone() {
                        self.channel.resolver_update(Ok(state), self.now);
                    }
                }
                Action::StopResolving | Action::Flush(_) => {}
                Action::Connect { conn, address } => {
                    self.connects.push((self.elapsed(), address.clone()));
                    let behaviour = self
                        .hosts
                        .get(&address.to_string())
                        .map_or(Behaviour::Refuse, |h| h.behaviour);
                    match behaviour {
                        Behaviour::Refuse => self.channel.connect_result(
                            conn,
                            Err(format!("dial tcp {address}: connect: connection refused")),
                            self.now,
                        ),
                        Behaviour::Blackhole => {
                            self.pending.insert(conn, address);
                        }
                        Behaviour::Serve | Behaviour::Mute => {
                            self.links.insert(
                                conn,
                                Link {
                                    address: address.clone(),
                                    server: ServerTransport::new(
                                        self.server_config.clone(),
                                        MessageLimits::default(),
                                        self.now,
                                    ),
                                    to_server: BytesMut::new(),
                                    to_client: BytesMut::new(),
                                    client_closed: false,
                                    client_eof_sent: false,
                                    held: Vec::new(),
                                    open: BTreeMap::new(),
                                },
                            );
                            self.channel.connect_result(conn, Ok(()), self.now);
                        }
                    }
                }
                Action::Close(conn) => {
                    self.pending.remove(&conn);
                    if let Some(link) = self.links.get_mut(&conn) {
                        link.client_closed = true;
                        link.server.recv_eof();
                    }
                }
            }
        }
        progress
    }

    fn move_bytes(&mut self) -> bool {
        let mut progress = false;
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        let mut out = Transmit::new();
        for conn in conns {
            // Channel → server.
            while self.channel.poll_transmit(conn, self.now, &mut out) > 0 {
                if let Some(link) = self.links.get_mut(&conn) {
                    out.copy_to(&mut link.to_server);
                }
                out.clear();
                progress = true;
            }
            let Some(link) = self.links.get_mut(&conn) else {
                continue;
            };
            let mute = self
                .hosts
                .get(&link.address.to_string())
                .is_some_and(|h| h.behaviour == Behaviour::Mute);
            if !link.to_server.is_empty() && !link.client_closed && !link.server.is_closed() {
                let bytes = link.to_server.split();
                link.server.recv(bytes, self.now);
                progress = true;
            }
            // Server → channel.
            if !mute {
                while link.server.poll_transmit(self.now, &mut out) > 0 {
                    out.copy_to(&mut link.to_client);
                    out.clear();
                    progress = true;
                }
            }
            if !link.to_client.is_empty() && !link.client_closed {
                let bytes = link.to_client.split();
                self.channel.recv(conn, bytes, self.now);
                progress = true;
            }
            let link = self.links.get_mut(&conn).expect("still here");
            if link.server.is_closed() && link.to_client.is_empty() && !link.client_eof_sent {
                link.client_eof_sent = true;
                self.channel.recv_eof(conn, self.now);
                progress = true;
            }
        }
        progress
    }

    /// The echo servers handle their calls.
    fn serve(&mut self) -> bool {
        let mut progress = false;
        for link in self.links.values_mut() {
            let key = link.address.to_string();
            let host = self.hosts.get_mut(&key);
            let (hold, host) = match host {
                Some(h) => (h.hold, h),
                None => continue,
            };
            while let Some(event) = link.server.poll_event() {
                progress = true;
                let call = match event {
                    ServerTransportEvent::NewCall { call, .. } => {
                        link.open.insert(call, Vec::new());
                        call
                    }
                    ServerTransportEvent::CallReadable(call) => call,
                    _ => continue,
                };
                while let Some(ev) = link.server.poll_call(call) {
                    match ev {
                        ServerEvent::Message(m) => {
                            if let Some(v) = link.open.get_mut(&call) {
                                v.push(m);
                            }
                        }
                        ServerEvent::HalfClosed => {
                            let messages = link.open.remove(&call).unwrap_or_default();
                            if hold {
                                link.held.push((call, messages));
                            } else {
                                answer(&mut link.server, call, &messages, &key);
                                host.served += 1;
                            }
                        }
                        ServerEvent::Failed(_) => {
                            link.open.remove(&call);
                            link.server.forget(call);
                        }
                    }
                }
            }
        }
        progress
    }

    fn collect_events(&mut self) -> bool {
        let mut progress = false;
        while let Some(event) = self.channel.poll_event() {
            progress = true;
            match event {
                ChannelEvent::Trace(t) => self.trace.push((self.elapsed(), t)),
                ChannelEvent::StateChanged(s) => self.states.push((self.elapsed(), s)),
                // Tests read calls with `outcome`/`events` when they choose to.
                ChannelEvent::CallReadable(_) | ChannelEvent::CallWritable(_) => {}
            }
        }
        progress
    }

    /// The trace lines so far, as `"+{secs}s {line}"`.
    pub fn trace_lines(&self) -> Vec<String> {
        self.trace
            .iter()
            .map(|(t, e)| format!("+{:.3}s {e}", t.as_secs_f64()))
            .collect()
    }
}

/// Echo: response headers naming the server, the request's messages back, OK.
fn answer(server: &mut ServerTransport, call: CallId, messages: &[Bytes], name: &str) {
    let mut md = Metadata::new();
    md.append("x-server", Bytes::from(name.to_owned()))
        .expect("valid metadata");
    if server.send_headers(call, md).is_err() {
        return;
    }
    for m in messages {
        let _ = server.send_message(call, m.clone());
    }
    let _ = server.finish(call, &Status::ok(), &Metadata::new());
}
