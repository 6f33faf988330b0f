//! The simulated world: channels, hosts, links, the event queue and the invariants.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::ErrorCode;
use grpc_sansio::channel::backoff::{BackoffConfig, ConnectParams};
use grpc_sansio::channel::balancer::{Endpoint, ResolverState, SubchannelId};
use grpc_sansio::channel::client_channel::{
    Action, CallOptions, Channel, ChannelCallId, ChannelConfig, ChannelEvent, RETRY_BUFFER,
};
use grpc_sansio::channel::state::ConnectivityState;
use grpc_sansio::channel::subchannel::ConnId;
use grpc_sansio::channel::target::Address;
use grpc_sansio::channel::trace::{TraceEvent, TraceKind};
use grpc_sansio::frame::{DEFAULT_INITIAL_WINDOW_SIZE, MAX_WINDOW_SIZE};
use grpc_sansio::grpc::client::ClientEvent;
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::ServerEvent;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{CallId, MessageLimits, ServerTransport, ServerTransportEvent};
use grpc_sansio::h2::{
    ClientKeepaliveConfig, Config, ConnectionMemory, ConnectionWindows,
    DEFAULT_MAX_QUEUED_CONTROL_FRAMES, DEFAULT_MAX_WRITE_BATCH, DEFAULT_STREAM_SEND_BUFFER,
    EnforcementPolicy, StreamWindows, Transmit,
};

use super::fault::{Fault, ResolverFault};
use super::message;
use super::service::{
    CallEvent, EchoService, HCall, Service, ServiceCall, ServiceCallId, ServiceFactory,
};
use super::workload::{CallKind, CallSpec};
use crate::rng::SimRng;

/// How a simulation is set up. [`SimConfig::new`] gives the defaults the exploration
/// uses; every field may be changed before [`Sim::new`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of every random choice (split into independent streams for the
    /// network, the workload and the faults, so a fault schedule can be shrunk without
    /// changing the rest).
    pub seed: u64,
    /// Client channels, all for the same `dns:///` target.
    pub channels: usize,
    /// Server hosts (`10.0.0.{i+1}:443`).
    pub hosts: usize,
    /// Use `round_robin` instead of `pick_first`.
    pub round_robin: bool,
    /// One-way latency range of a link (each link draws its own).
    pub latency: (Duration, Duration),
    /// Bandwidth range of a link, bytes per second.
    pub bandwidth: (u64, u64),
    /// Bytes a link direction buffers before the sender is back-pressured.
    pub link_buffer: usize,
    /// Timer granularity: how late a deadline may fire.
    pub granularity: Duration,
    /// The channels' connection backoff.
    pub backoff: BackoffConfig,
    /// The channels' minimum connect timeout.
    pub min_connect_timeout: Duration,
    /// Client keepalive time (`None`: off; then half-open links are never detected).
    pub keepalive: Option<Duration>,
    /// Client keepalive timeout.
    pub keepalive_timeout: Duration,
    /// After the faults stop, each channel must serve a call OK within this.
    pub recovery_bound: Duration,
    /// The servers' SETTINGS_MAX_CONCURRENT_STREAMS (`None`: the default, 100).
    pub max_concurrent_streams: Option<u32>,
    /// Initial stream and connection windows of both sides, with the dynamic (BDP)
    /// window off (`None`: the defaults, 64 KiB and BDP on).
    pub window: Option<u32>,
    /// The servers' `max_connection_age` (a graceful GOAWAY every so often).
    pub max_connection_age: Option<Duration>,
    /// The servers' keepalive enforcement: minimum time between client PINGs. Above
    /// the client's keepalive time the server answers pings with GOAWAY
    /// ENHANCE_YOUR_CALM ("too_many_pings") and the client must slow down.
    pub ping_min_time: Duration,
    /// Bytes a connection (client or server) may hold for its application past its
    /// connection receive window: DATA received and not yet consumed plus bytes read
    /// and not yet parsed. Reading stops once the window is full, so the excess is at
    /// most what one read brings (a link segment: up to a write batch and a frame).
    pub memory_slack: usize,
    /// Each host's service (`None`: [`EchoService`]).
    pub service: Option<ServiceFactory>,
}

impl SimConfig {
    /// Defaults for `seed`: 2 channels, 3 hosts, 0.1–20 ms links of 1–100 MB/s,
    /// 256 KiB link buffers, 1 ms granularity, backoff 100 ms × 1.6 ± 20 % up to 3 s,
    /// 2 s connect timeout, keepalive 10 s / 3 s, recovery within 60 s, 512 KiB of
    /// memory slack, echo servers.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            channels: 2,
            hosts: 3,
            round_robin: seed % 2 == 1,
            latency: (Duration::from_micros(100), Duration::from_millis(20)),
            bandwidth: (1_000_000, 100_000_000),
            link_buffer: 256 * 1024,
            granularity: Duration::from_millis(1),
            backoff: BackoffConfig {
                base_delay: Duration::from_millis(100),
                multiplier: 1.6,
                jitter: 0.2,
                max_delay: Duration::from_secs(3),
            },
            min_connect_timeout: Duration::from_secs(2),
            keepalive: Some(Duration::from_secs(10)),
            keepalive_timeout: Duration::from_secs(3),
            recovery_bound: Duration::from_secs(60),
            max_concurrent_streams: None,
            window: None,
            max_connection_age: None,
            ping_min_time: Duration::from_secs(5),
            memory_slack: 2 * DEFAULT_MAX_WRITE_BATCH,
            service: None,
        }
    }
}

/// A broken invariant: which, when, and the trace up to it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The seed of the run.
    pub seed: u64,
    /// Virtual time since the start.
    pub at: Duration,
    /// The invariant's name (stable: regression tests match on it).
    pub invariant: &'static str,
    /// What exactly went wrong.
    pub detail: String,
    /// The whole trace of the run up to the violation.
    pub trace: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} violated `{}` at +{:.6}s: {}",
            self.seed,
            self.invariant,
            self.at.as_secs_f64(),
            self.detail
        )?;
        writeln!(
            f,
            "replay: cargo run -p grpc-sansio-tests --example replay -- {}",
            self.seed
        )?;
        writeln!(f, "trace ({} lines):", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Scheduled things, in the ordered event queue.
#[derive(Clone, Debug)]
enum Ev {
    ConnectDone {
        ch: usize,
        conn: ConnId,
        host: Option<usize>,
    },
    ResolverAnswer {
        ch: usize,
    },
    StartCall(Box<CallSpec>),
    /// One more request message of the call may go.
    SendNext {
        call: usize,
    },
    Cancel {
        call: usize,
    },
    Fault(Fault),
    /// Nothing but a point in time (a stall ends, a slow handler answers).
    Wake,
    Heal,
    Probe {
        ch: usize,
    },
}

/// One direction of a link: segments in flight, each with its arrival time; `None`
/// is EOF.
#[derive(Debug, Default)]
struct Pipe {
    segs: VecDeque<(Instant, Option<Bytes>)>,
    in_flight: usize,
    /// Bytes ever sent into the pipe.
    total: u64,
    free_at: Option<Instant>,
    eof: bool,
}

impl Pipe {
    fn clear(&mut self) {
        self.segs.clear();
        self.in_flight = 0;
    }

    fn due(&self, now: Instant) -> Option<&(Instant, Option<Bytes>)> {
        self.segs.front().filter(|(at, _)| *at <= now)
    }

    fn pop(&mut self) -> Option<Bytes> {
        let (_, seg) = self.segs.pop_front()?;
        if let Some(b) = &seg {
            self.in_flight -= b.len();
        }
        seg
    }
}

/// The largest windows each end of a link has been seen with, starting from the
/// RFC's 65,535 that every connection assumes before SETTINGS: the bounds a §6.9.2
/// decrease may push a stream window below zero by.
#[derive(Clone, Copy, Debug)]
struct FlowSeen {
    peer_initial: u32,
    local_initial: u32,
    conn_recv_limit: u32,
}

impl Default for FlowSeen {
    fn default() -> Self {
        FlowSeen {
            peer_initial: DEFAULT_INITIAL_WINDOW_SIZE,
            local_initial: DEFAULT_INITIAL_WINDOW_SIZE,
            conn_recv_limit: DEFAULT_INITIAL_WINDOW_SIZE,
        }
    }
}

/// A connection between a channel's `conn` and a server transport.
#[derive(Debug)]
struct Link {
    ch: usize,
    conn: ConnId,
    host: usize,
    /// `None` once the server vanished (half-open).
    server: Option<ServerTransport>,
    up: Pipe,
    down: Pipe,
    latency: Duration,
    bandwidth: u64,
    one_byte: usize,
    /// Bytes vanish both ways, no EOF.
    black: bool,
    /// Reset: writes are dropped, EOFs are on their way.
    reset: bool,
    client_closed: bool,
    calls: BTreeMap<CallId, HCall>,
    readable: BTreeSet<CallId>,
    /// Client end, then server end.
    seen: [FlowSeen; 2],
}

struct Host {
    address: Address,
    refuse_until: Option<Instant>,
    blackhole_until: Option<Instant>,
    stall_until: Option<Instant>,
    mute_until: Option<Instant>,
    service: Box<dyn Service>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("address", &self.address)
            .field("refuse_until", &self.refuse_until)
            .field("blackhole_until", &self.blackhole_until)
            .field("stall_until", &self.stall_until)
            .field("mute_until", &self.mute_until)
            .finish_non_exhaustive()
    }
}

/// One client channel and what the simulator knows about it.
#[derive(Debug)]
struct Slot {
    channel: Channel,
    /// A slow client: the application takes no responses until then.
    stall_until: Option<Instant>,
    resolving: bool,
    state: ConnectivityState,
    subchannels: BTreeMap<SubchannelId, (ConnectivityState, Instant)>,
    readable: BTreeSet<ChannelCallId>,
    recovered: Option<Instant>,
}

/// A call made by the workload, and what happened to it.
#[derive(Debug)]
struct Record {
    spec: CallSpec,
    id: ChannelCallId,
    tag: u64,
    planned: Vec<Bytes>,
    /// Request messages the schedule allows by now.
    allowed: usize,
    sent: usize,
    received: usize,
    status: Option<Status>,
    deadline: Option<Instant>,
    cancelled: bool,
    probe: bool,
    /// Half-closed without a message (streaming calls with no request).
    closed: bool,
    /// A send was refused: the call sends no more.
    send_failed: bool,
    /// Responses of a call to a custom method, kept for [`Sim::responses`] (echo
    /// calls are checked as they arrive instead).
    responses: Vec<Bytes>,
}

/// The simulator. See the [module documentation](super).
#[derive(Debug)]
pub struct Sim {
    /// The configuration it was built with.
    pub config: SimConfig,
    /// The start of virtual time.
    pub start: Instant,
    /// Virtual now.
    pub now: Instant,
    rng: SimRng,
    seq: u64,
    queue: BTreeMap<(Instant, u64), Ev>,
    slots: Vec<Slot>,
    hosts: Vec<Host>,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    conn_links: BTreeMap<(usize, ConnId), u64>,
    abandoned: BTreeSet<(usize, ConnId)>,
    resolver: Result<Vec<usize>, ()>,
    calls: Vec<Record>,
    by_id: BTreeMap<(usize, ChannelCallId), usize>,
    trace: Vec<String>,
    failure: Option<Violation>,
    jumps: Vec<(Instant, Instant)>,
    /// Slow clients: channel, from, to (deadlines fire on time, but the application
    /// reads the status only when it reads again).
    client_stalls: Vec<(usize, Instant, Instant)>,
    healed_at: Option<Instant>,
    steps_at_now: (Instant, u32),
    /// The largest message handed to a transport so far (memory bounds).
    largest_message: usize,
    out: Transmit,
    /// Print every trace line to stdout as it is logged (replay: the trace survives a
    /// panic in the core).
    pub echo: bool,
}

/// Connections a channel may hold per host at once (one ready, one connecting, the
/// rest draining after GOAWAYs while long calls finish).
const MAX_CONNECTIONS_PER_HOST: usize = 16;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Sim {
    /// A world with `config.channels` channels (IDLE) and `config.hosts` serving hosts.
    pub fn new(config: SimConfig) -> Sim {
        let start = Instant::now();
        let mut rng = SimRng::new(config.seed ^ 0x6e65_7477_6f72_6b00);
        let slots = (0..config.channels)
            .map(|i| {
                let mut h2 = Config::client();
                h2.client_keepalive = ClientKeepaliveConfig {
                    time: config.keepalive,
                    timeout: config.keepalive_timeout,
                    permit_without_stream: true,
                };
                h2.random = rng.next_u64();
                if let Some(w) = config.window {
                    h2.initial_stream_window = w;
                    h2.initial_connection_window = w;
                    h2.dynamic_window = false;
                }
                let cc = ChannelConfig {
                    connect: ConnectParams {
                        backoff: config.backoff,
                        min_connect_timeout: config.min_connect_timeout,
                    },
                    h2,
                    min_resolve_interval: Duration::from_secs(1),
                    default_service_config: config
                        .round_robin
                        .then(|| r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#.to_owned()),
                    seed: rng.next_u64(),
                    channel_number: i as u64 + 1,
                    ..ChannelConfig::default()
                };
                Slot {
                    channel: Channel::new("dns:///svc.sim:443", cc, start).expect("valid"),
                    stall_until: None,
                    resolving: false,
                    state: ConnectivityState::Idle,
                    subchannels: BTreeMap::new(),
                    readable: BTreeSet::new(),
                    recovered: None,
                }
            })
            .collect();
        let hosts = (0..config.hosts)
            .map(|i| Host {
                address: Address::Socket(std::net::SocketAddr::from((
                    [10, 0, 0, i as u8 + 1],
                    443,
                ))),
                refuse_until: None,
                blackhole_until: None,
                stall_until: None,
                mute_until: None,
                service: match &config.service {
                    Some(f) => f.make(i),
                    None => Box::new(EchoService),
                },
            })
            .collect();
        let all = (0..config.hosts).collect();
        let mut sim = Sim {
            config,
            start,
            now: start,
            rng,
            seq: 0,
            queue: BTreeMap::new(),
            slots,
            hosts,
            links: BTreeMap::new(),
            next_link: 0,
            conn_links: BTreeMap::new(),
            abandoned: BTreeSet::new(),
            resolver: Ok(all),
            calls: Vec::new(),
            by_id: BTreeMap::new(),
            trace: Vec::new(),
            failure: None,
            jumps: Vec::new(),
            client_stalls: Vec::new(),
            healed_at: None,
            steps_at_now: (start, 0),
            largest_message: 0,
            out: Transmit::new(),
            echo: false,
        };
        sim.settle();
        sim
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The trace so far, one line per event.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// The first violation, if any.
    pub fn failure(&self) -> Option<&Violation> {
        self.failure.as_ref()
    }

    /// The address of host `i`.
    pub fn host_address(&self, i: usize) -> &Address {
        &self.hosts[i].address
    }

    /// Channel `i` (to inspect it, or drive it directly).
    pub fn channel(&mut self, i: usize) -> &mut Channel {
        &mut self.slots[i].channel
    }

    /// Calls started so far, and how many have ended.
    pub fn calls_started_ended(&self) -> (usize, usize) {
        let ended = self.calls.iter().filter(|c| c.status.is_some()).count();
        (self.calls.len(), ended)
    }

    /// Replaces host `i`'s service (before the run, or its calls in progress see a
    /// different service for their remaining events).
    pub fn set_service(&mut self, host: usize, service: impl Service + 'static) {
        self.hosts[host].service = Box::new(service);
    }

    /// The responses call `i` (in start order) received so far, for calls to a custom
    /// [`CallSpec::method`]; empty for echo calls, which are checked as they arrive.
    pub fn responses(&self, i: usize) -> &[Bytes] {
        &self.calls[i].responses
    }

    /// The statuses of every call so far (`None`: still running), in start order.
    pub fn statuses(&self) -> Vec<Option<Code>> {
        self.calls
            .iter()
            .map(|c| c.status.as_ref().map(|s| s.code))
            .collect()
    }

    /// One line per link: its ends, bytes in flight each way, whether each side wants
    /// to read, the server's open calls and the handler's pending output (for
    /// debugging a stuck run).
    pub fn links_summary(&self) -> Vec<String> {
        self.links
            .iter()
            .map(|(id, l)| {
                let srv = l.server.as_ref().map(|s| {
                    format!(
                        "server open {} closed {} wants_read {} control {}",
                        s.open_calls(),
                        s.is_closed(),
                        s.wants_read(),
                        s.connection().queued_control_frames()
                    )
                });
                let pending: Vec<(usize, Option<Duration>)> = l
                    .calls
                    .values()
                    .map(|h| (h.out.len(), h.finish.as_ref().map(|(t, _)| *t - self.start)))
                    .collect();
                format!(
                    "link {id} ch{} {:?} host {}: up {} B ({} segs, {} total) down {} B ({} segs, {} total), client wants_read {}, closed {} black {} reset {}, {srv:?}, handler calls (out, finish_at) {pending:?}",
                    l.ch + 1,
                    l.conn,
                    l.host,
                    l.up.in_flight,
                    l.up.segs.len(),
                    l.up.total,
                    l.down.in_flight,
                    l.down.segs.len(),
                    l.down.total,
                    self.slots[l.ch].channel.wants_read(l.conn),
                    l.client_closed,
                    l.black,
                    l.reset,
                )
            })
            .collect()
    }

    /// Bytes ever sent up (client to server) and down on each link still held, in
    /// link order.
    pub fn link_totals(&self) -> Vec<(u64, u64)> {
        self.links
            .values()
            .map(|l| (l.up.total, l.down.total))
            .collect()
    }

    /// Schedules `call` (its `start` is relative to the start of the run).
    pub fn schedule_call(&mut self, call: CallSpec) {
        let at = self.start + call.start;
        self.schedule(at, Ev::StartCall(Box::new(call)));
    }

    /// Schedules `fault` at `at` since the start.
    pub fn schedule_fault(&mut self, at: Duration, fault: Fault) {
        self.schedule(self.start + at, Ev::Fault(fault));
    }

    /// Schedules the end of the faults at `at` since the start: every host serves
    /// again, the resolver lists every host, and each channel starts probing with
    /// wait-for-ready calls until one succeeds (which must happen within
    /// [`SimConfig::recovery_bound`]).
    pub fn schedule_heal(&mut self, at: Duration) {
        self.schedule(self.start + at, Ev::Heal);
    }

    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn log(&mut self, who: &str, what: impl fmt::Display) {
        let line = format!("{:>11.6} {who:<5} {what}", self.elapsed().as_secs_f64());
        if self.echo {
            println!("{line}");
        }
        self.trace.push(line);
    }

    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.failure.is_some() {
            return;
        }
        self.log("FAIL", format_args!("{invariant}: {detail}"));
        self.failure = Some(Violation {
            seed: self.config.seed,
            at: self.elapsed(),
            invariant,
            detail,
            trace: self.trace.clone(),
        });
    }

    /// Runs until `limit` since the start, or a violation; returns whether the run is
    /// still clean.
    pub fn run_until(&mut self, limit: Duration) -> bool {
        let end = self.start + limit;
        while self.failure.is_none() && self.step(end) {}
        if self.failure.is_none() && self.now < end {
            self.now = end;
            self.fire_timers();
            self.settle();
            self.check_step();
        }
        self.failure.is_none()
    }

    /// Runs until the run is over: healed, every call ended and every channel
    /// recovered, or the recovery bound (plus a margin) is over. Then checks the
    /// end-of-run invariants. Returns the first violation.
    pub fn run_to_end(&mut self) -> Result<(), Violation> {
        loop {
            if self.failure.is_some() {
                break;
            }
            if let Some(h) = self.healed_at {
                let done = self.calls.iter().all(|c| c.status.is_some())
                    && self.slots.iter().all(|s| s.recovered.is_some());
                if done {
                    break;
                }
                let limit = h + self.config.recovery_bound + Duration::from_secs(30);
                if !self.step(limit) {
                    self.now = self.now.max(limit);
                    break;
                }
            } else if !self.step(self.now + Duration::from_secs(3600)) {
                break;
            }
        }
        self.check_end();
        match self.failure.clone() {
            Some(v) => Err(v),
            None => Ok(()),
        }
    }

    /// The end-of-run invariants: every call ended, every channel recovered in time.
    pub fn check_end(&mut self) {
        if let Some(c) = self.calls.iter().find(|c| c.status.is_none()) {
            let detail = format!(
                "call {:#x} ({:?} on channel {}) never ended",
                c.tag,
                c.spec.kind,
                c.spec.channel + 1
            );
            self.fail("every call ends", detail);
        }
        // Nothing leaks: every ended call is gone from its channel, and no channel holds
        // more connections than it has addresses (draining ones have closed by now).
        if self.calls.iter().all(|c| c.status.is_some()) {
            for i in 0..self.slots.len() {
                let open = self.slots[i].channel.open_calls();
                let conns = self.slots[i].channel.connections().len();
                if open > 0 || conns > self.hosts.len() {
                    let detail = format!(
                        "channel {} still holds {open} calls and {conns} connections after every call ended",
                        i + 1
                    );
                    self.fail("nothing leaks", detail);
                }
            }
            let open: usize = self
                .links
                .values()
                .filter_map(|l| l.server.as_ref())
                .map(|s| s.open_calls())
                .sum();
            let handled: usize = self.links.values().map(|l| l.calls.len()).sum();
            if open > handled {
                let detail = format!("servers hold {open} calls, their handlers only {handled}");
                self.fail("nothing leaks", detail);
            }
        }
        if let Some(h) = self.healed_at {
            let bound = self.config.recovery_bound;
            for i in 0..self.slots.len() {
                match self.slots[i].recovered {
                    Some(t) if t - h <= bound => {}
                    other => {
                        let detail = format!(
                            "channel {} did not serve a call within {bound:?} of the faults stopping (recovered: {:?})",
                            i + 1,
                            other.map(|t| t - h)
                        );
                        self.fail("recovery after faults", detail);
                    }
                }
            }
        }
    }

    /// The next time something happens, if anything is pending.
    fn next_time(&self) -> Option<Instant> {
        let mut next = self.queue.keys().next().map(|&(t, _)| t);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for s in &self.slots {
            consider(s.channel.poll_timeout());
        }
        for l in self.links.values() {
            if let Some(srv) = &l.server {
                consider(srv.poll_timeout());
                if let Some((at, seg)) = l.up.segs.front()
                    && (seg.is_none() || srv.wants_read())
                {
                    consider(Some(*at));
                }
            }
            if let Some((at, seg)) = l.down.segs.front()
                && (seg.is_none() || l.client_closed || self.slots[l.ch].channel.wants_read(l.conn))
            {
                consider(Some(*at));
            }
        }
        next
    }

    /// One step: time moves to the next event (at most `limit`), everything due
    /// happens, the world settles, the invariants are checked. False when nothing is
    /// due before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        let Some(t) = self.next_time() else {
            return false;
        };
        if t > limit {
            return false;
        }
        if t > self.now {
            self.now = t;
            self.steps_at_now = (t, 0);
        } else {
            self.steps_at_now.1 += 1;
            if self.steps_at_now.1 > 10_000 {
                self.fail(
                    "time advances",
                    "10000 steps at the same instant: a timer that never clears".into(),
                );
                return false;
            }
        }
        while let Some((&(at, seq), _)) = self.queue.first_key_value() {
            if at > self.now {
                break;
            }
            let ev = self.queue.remove(&(at, seq)).expect("present");
            self.apply(ev);
            // As a runtime would: timers already due fire before the next event.
            self.fire_due();
        }
        self.fire_due();
        self.check_step();
        true
    }

    /// Fires due timers and settles, again while timers are due (a timer handler can
    /// leave another timer already due, e.g. a call re-bound past its deadline).
    fn fire_due(&mut self) {
        for _ in 0..100 {
            self.fire_timers();
            self.settle();
            let now = self.now;
            let due = self
                .slots
                .iter()
                .any(|s| s.channel.poll_timeout().is_some_and(|t| t <= now))
                || self.links.values().any(|l| {
                    l.server
                        .as_ref()
                        .is_some_and(|s| s.poll_timeout().is_some_and(|t| t <= now))
                });
            if !due || self.failure.is_some() {
                return;
            }
        }
        self.fail(
            "time advances",
            "timers still due after 100 rounds of handle_timeout".into(),
        );
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        for s in &mut self.slots {
            if s.channel.poll_timeout().is_some_and(|t| t <= now) {
                s.channel.handle_timeout(now);
            }
        }
        for l in self.links.values_mut() {
            if let Some(srv) = &mut l.server
                && srv.poll_timeout().is_some_and(|t| t <= now)
            {
                srv.handle_timeout(now);
            }
        }
    }

    fn apply(&mut self, ev: Ev) {
        match ev {
            Ev::ConnectDone { ch, conn, host } => self.connect_done(ch, conn, host),
            Ev::ResolverAnswer { ch } => {
                if self.slots[ch].resolving {
                    let update = self.resolver_state();
                    self.slots[ch].channel.resolver_update(update, self.now);
                }
            }
            Ev::StartCall(spec) => self.start_call(*spec, false),
            Ev::SendNext { call } => {
                self.calls[call].allowed += 1;
            }
            Ev::Cancel { call } => {
                let c = &mut self.calls[call];
                if c.status.is_none() {
                    // A slow client may cancel a call whose status is already waiting
                    // to be read: then that status stands.
                    let stalled = self.slots[c.spec.channel]
                        .stall_until
                        .is_some_and(|t| t > self.now);
                    c.cancelled = !stalled;
                    let (ch, id, tag) = (c.spec.channel, c.id, c.tag);
                    self.log(
                        "call",
                        format_args!("{tag:#x} cancelled by the application"),
                    );
                    self.slots[ch].channel.cancel(id);
                    self.slots[ch].readable.insert(id);
                }
            }
            Ev::Fault(f) => self.inject(f),
            Ev::Wake => {}
            Ev::Heal => self.heal(),
            Ev::Probe { ch } => {
                if self.slots[ch].recovered.is_none() {
                    let mut spec = CallSpec::unary(ch, self.elapsed(), 10);
                    spec.wait_for_ready = true;
                    spec.deadline = Some(Duration::from_secs(10));
                    self.start_call(spec, true);
                }
            }
        }
    }

    fn resolver_state(&self) -> Result<ResolverState, Status> {
        match &self.resolver {
            Ok(hosts) => Ok(ResolverState {
                endpoints: hosts
                    .iter()
                    .map(|&h| Endpoint::new(self.hosts[h].address.clone()))
                    .collect(),
                ..ResolverState::default()
            }),
            Err(()) => Err(Status::unavailable("sim: name resolution failed")),
        }
    }

    fn push_resolver(&mut self) {
        for ch in 0..self.slots.len() {
            if self.slots[ch].resolving {
                let update = self.resolver_state();
                self.slots[ch].channel.resolver_update(update, self.now);
            }
        }
    }

    fn heal(&mut self) {
        self.log("sim", "faults stop: heal");
        for h in &mut self.hosts {
            h.refuse_until = None;
            h.blackhole_until = None;
            h.stall_until = None;
            h.mute_until = None;
        }
        for s in &mut self.slots {
            s.stall_until = None;
        }
        self.resolver = Ok((0..self.hosts.len()).collect());
        self.push_resolver();
        self.healed_at = Some(self.now);
        for ch in 0..self.slots.len() {
            self.schedule(self.now, Ev::Probe { ch });
        }
    }

    /// The links still carrying a live connection, in id order.
    fn live_links(&self, host: Option<usize>) -> Vec<u64> {
        self.links
            .iter()
            .filter(|(_, l)| {
                l.server.as_ref().is_some_and(|s| !s.is_closed())
                    && !l.black
                    && !l.reset
                    && !l.client_closed
                    && host.is_none_or(|h| h == l.host)
            })
            .map(|(&id, _)| id)
            .collect()
    }

    fn pick_link(&self, pick: u64) -> Option<u64> {
        let live = self.live_links(None);
        (!live.is_empty()).then(|| live[(pick % live.len() as u64) as usize])
    }

    fn reset_link(&mut self, id: u64) {
        let now = self.now;
        if let Some(l) = self.links.get_mut(&id) {
            l.reset = true;
            l.up.clear();
            l.down.clear();
            if !l.up.eof {
                l.up.eof = true;
                l.up.segs.push_back((now, None));
            }
            if !l.down.eof {
                l.down.eof = true;
                l.down.segs.push_back((now, None));
            }
        }
    }

    /// Injects `fault` now.
    pub fn inject(&mut self, fault: Fault) {
        self.log("fault", &fault);
        let hosts = self.hosts.len();
        let now = self.now;
        let until = |d: Duration| Some(now + d);
        match fault {
            Fault::Refuse { host, duration } => {
                self.hosts[host % hosts].refuse_until = until(duration);
            }
            Fault::Mute { host, duration } => {
                self.hosts[host % hosts].mute_until = until(duration);
            }
            Fault::Blackhole { host, duration } => {
                self.hosts[host % hosts].blackhole_until = until(duration);
            }
            Fault::Reset { pick } => {
                if let Some(id) = self.pick_link(pick) {
                    self.log("sim", format_args!("reset link {id}"));
                    self.reset_link(id);
                }
            }
            Fault::HalfOpen { pick } => {
                if let Some(id) = self.pick_link(pick) {
                    self.log("sim", format_args!("link {id} goes half-open"));
                    let l = self.links.get_mut(&id).expect("live");
                    l.black = true;
                    l.server = None;
                    l.readable.clear();
                    let calls = std::mem::take(&mut l.calls);
                    let host = l.host;
                    l.up.clear();
                    l.down.clear();
                    self.fail_service_calls(host, id, calls, "sim: the server vanished");
                }
            }
            Fault::Restart { host, down } => {
                let host = host % hosts;
                self.hosts[host].refuse_until = until(down);
                let ids: Vec<u64> = self
                    .links
                    .iter()
                    .filter(|(_, l)| l.host == host && !l.black)
                    .map(|(&id, _)| id)
                    .collect();
                for id in ids {
                    self.reset_link(id);
                }
            }
            Fault::GoawayGraceful { host } => {
                for id in self.live_links(Some(host % hosts)) {
                    if let Some(s) = &mut self.links.get_mut(&id).expect("live").server {
                        s.shutdown();
                    }
                }
            }
            Fault::GoawayImmediate { host, calm } => {
                let code = if calm {
                    ErrorCode::EnhanceYourCalm
                } else {
                    ErrorCode::NoError
                };
                for id in self.live_links(Some(host % hosts)) {
                    if let Some(s) = &mut self.links.get_mut(&id).expect("live").server {
                        s.close(code, "sim: immediate goaway");
                    }
                }
            }
            Fault::SlowReader { host, duration } => {
                self.hosts[host % hosts].stall_until = until(duration);
                self.schedule(self.now + duration, Ev::Wake);
            }
            Fault::SlowClient { channel, duration } => {
                let ch = channel % self.slots.len();
                self.slots[ch].stall_until = until(duration);
                self.client_stalls.push((ch, now, now + duration));
                self.schedule(now + duration, Ev::Wake);
            }
            Fault::OneByte { pick, bytes } => {
                if let Some(id) = self.pick_link(pick) {
                    self.links.get_mut(&id).expect("live").one_byte += bytes;
                }
            }
            Fault::Resolver(r) => {
                self.resolver = match r {
                    ResolverFault::Hosts(mask) => {
                        let v: Vec<usize> = (0..hosts).filter(|h| mask & (1 << h) != 0).collect();
                        Ok(if v.is_empty() { vec![0] } else { v })
                    }
                    ResolverFault::Empty => Ok(Vec::new()),
                    ResolverFault::Error => Err(()),
                };
                self.push_resolver();
            }
            Fault::ClockJump(d) => {
                let from = self.now;
                self.now += d;
                self.steps_at_now = (self.now, 0);
                self.jumps.push((from, self.now));
                // Timers due by the new time fire before anything else happens (a
                // second jump queued behind this one must not skip them).
                self.fire_due();
            }
        }
    }

    fn connect_done(&mut self, ch: usize, conn: ConnId, host: Option<usize>) {
        if self.abandoned.remove(&(ch, conn)) {
            return;
        }
        let now = self.now;
        let who = format!("ch{}", ch + 1);
        let Some(h) = host else {
            self.log(&who, format_args!("{conn:?}: no such host"));
            self.slots[ch].channel.connect_result(
                conn,
                Err("connect: no route to host".to_owned()),
                now,
            );
            return;
        };
        let hs = &self.hosts[h];
        if hs.blackhole_until.is_some_and(|t| t > now) {
            self.log(&who, format_args!("{conn:?} to host {h}: black-holed"));
            return;
        }
        if hs.refuse_until.is_some_and(|t| t > now) {
            self.log(&who, format_args!("{conn:?} to host {h}: refused"));
            self.slots[ch].channel.connect_result(
                conn,
                Err("connect: connection refused".to_owned()),
                now,
            );
            return;
        }
        let (lo, hi) = self.config.latency;
        let latency =
            lo + Duration::from_micros(self.rng.range(0, (hi - lo).as_micros() as usize) as u64);
        let (blo, bhi) = self.config.bandwidth;
        let bandwidth = self.rng.range(blo as usize, bhi as usize) as u64;
        let mut cfg = Config::server();
        cfg.ping_policy = EnforcementPolicy {
            min_time: self.config.ping_min_time,
            permit_without_stream: true,
        };
        cfg.random = self.rng.next_u64();
        if let Some(n) = self.config.max_concurrent_streams {
            cfg.max_concurrent_streams = Some(n);
        }
        if let Some(w) = self.config.window {
            cfg.initial_stream_window = w;
            cfg.initial_connection_window = w;
            cfg.dynamic_window = false;
        }
        cfg.server_keepalive.max_connection_age = self.config.max_connection_age;
        let id = self.next_link;
        self.next_link += 1;
        let mute = self.hosts[h].mute_until.is_some_and(|t| t > now);
        self.links.insert(
            id,
            Link {
                ch,
                conn,
                host: h,
                server: (!mute).then(|| ServerTransport::new(cfg, MessageLimits::default(), now)),
                up: Pipe::default(),
                down: Pipe::default(),
                latency,
                bandwidth,
                one_byte: 0,
                black: mute,
                reset: false,
                client_closed: false,
                calls: BTreeMap::new(),
                readable: BTreeSet::new(),
                seen: [FlowSeen::default(); 2],
            },
        );
        self.conn_links.insert((ch, conn), id);
        self.log(
            &who,
            format_args!(
                "{conn:?} to host {h}: link {id} up ({:.3} ms, {} B/s){}",
                ms(latency),
                bandwidth,
                if mute { ", mute server" } else { "" }
            ),
        );
        self.slots[ch].channel.connect_result(conn, Ok(()), now);
    }

    fn start_call(&mut self, spec: CallSpec, probe: bool) {
        let idx = self.calls.len();
        let ch = spec.channel;
        let tag = ((ch as u64 + 1) << 32) | idx as u64;
        let planned: Vec<Bytes> = match spec.kind {
            CallKind::ServerStream => vec![message::encode_stream_request(
                tag,
                spec.responses,
                spec.response_size,
            )],
            _ => spec
                .requests
                .iter()
                .enumerate()
                .map(|(i, &n)| message::encode(tag, i as u32, n))
                .collect(),
        };
        let mut md = Metadata::new();
        md.append(
            "x-delay-ms",
            Bytes::from(spec.server_delay.as_millis().to_string()),
        )
        .expect("valid metadata");
        let path = spec.method.as_deref().unwrap_or(spec.kind.path());
        let mut options = CallOptions::new(Bytes::copy_from_slice(path.as_bytes()))
            .metadata(md)
            .wait_for_ready(spec.wait_for_ready);
        let deadline = spec.deadline.map(|d| self.now + d);
        if let Some(d) = deadline {
            options = options.deadline(d);
        }
        self.log(
            "call",
            format_args!(
                "{tag:#x} starts on ch{}: {:?} {} requests {:?} deadline {:?} cancel {:?} wfr {} delay {:?}{}",
                ch + 1,
                spec.kind,
                planned.len(),
                spec.requests.iter().take(8).collect::<Vec<_>>(),
                spec.deadline,
                spec.cancel_after,
                spec.wait_for_ready,
                spec.server_delay,
                if probe { " (probe)" } else { "" }
            ),
        );
        let id = self.slots[ch].channel.start_call(options, self.now);
        self.by_id.insert((ch, id), idx);
        // Streaming calls release their messages one gap apart; the first at once.
        let streaming = matches!(spec.kind, CallKind::ClientStream | CallKind::Bidi);
        let allowed = if streaming && !spec.gap.is_zero() {
            for k in 1..=planned.len() {
                self.schedule(self.now + spec.gap * k as u32, Ev::SendNext { call: idx });
            }
            0
        } else {
            planned.len()
        };
        if let Some(c) = spec.cancel_after {
            self.schedule(self.now + c, Ev::Cancel { call: idx });
        }
        self.calls.push(Record {
            spec,
            id,
            tag,
            planned,
            allowed,
            sent: 0,
            received: 0,
            status: None,
            deadline,
            cancelled: false,
            probe,
            closed: false,
            send_failed: false,
            responses: Vec::new(),
        });
        self.slots[ch].readable.insert(id);
    }

    /// Runs actions, bytes, servers and clients until nothing moves.
    fn settle(&mut self) {
        for _ in 0..1_000_000 {
            let mut progress = false;
            progress |= self.channel_io();
            progress |= self.links_io();
            progress |= self.serve();
            progress |= self.clients();
            if !progress || self.failure.is_some() {
                return;
            }
        }
        self.fail(
            "the world settles",
            "no quiescence after 10^6 rounds".into(),
        );
    }

    fn channel_io(&mut self) -> bool {
        let mut progress = false;
        for ch in 0..self.slots.len() {
            while let Some(action) = self.slots[ch].channel.poll_action() {
                progress = true;
                let who = format!("ch{}", ch + 1);
                match action {
                    Action::Resolve { .. } | Action::ResolveNow => {
                        self.slots[ch].resolving = true;
                        let delay = Duration::from_micros(self.rng.range(0, 5000) as u64);
                        self.schedule(self.now + delay, Ev::ResolverAnswer { ch });
                    }
                    Action::StopResolving => self.slots[ch].resolving = false,
                    Action::Flush(_) => {}
                    Action::Connect { conn, address } => {
                        let host = self.hosts.iter().position(|h| h.address == address);
                        self.log(&who, format_args!("connect {conn:?} to {address}"));
                        let delay = Duration::from_micros(self.rng.range(50, 10_000) as u64);
                        self.schedule(self.now + delay, Ev::ConnectDone { ch, conn, host });
                    }
                    Action::Close(conn) => match self.conn_links.remove(&(ch, conn)) {
                        Some(id) => {
                            self.log(&who, format_args!("close {conn:?} (link {id})"));
                            let now = self.now;
                            let l = self.links.get_mut(&id).expect("linked");
                            l.client_closed = true;
                            l.down.clear();
                            if !l.up.eof {
                                l.up.eof = true;
                                let at = l.up.free_at.unwrap_or(now).max(now) + l.latency;
                                l.up.segs.push_back((at, None));
                            }
                        }
                        None => {
                            self.abandoned.insert((ch, conn));
                        }
                    },
                }
            }
            while let Some(event) = self.slots[ch].channel.poll_event() {
                progress = true;
                match event {
                    ChannelEvent::Trace(t) => self.on_trace(ch, t),
                    ChannelEvent::StateChanged(s) => {
                        self.slots[ch].state = s;
                        self.log(&format!("ch{}", ch + 1), format_args!("state {s}"));
                    }
                    ChannelEvent::CallReadable(id) => {
                        self.slots[ch].readable.insert(id);
                    }
                    ChannelEvent::CallWritable(_) => {}
                }
            }
        }
        progress
    }

    fn on_trace(&mut self, ch: usize, t: TraceEvent) {
        self.log(&format!("ch{}", ch + 1), &t);
        let Some(sc) = t.subchannel else {
            return;
        };
        match t.kind {
            TraceKind::SubchannelCreated { .. } => {
                self.slots[ch]
                    .subchannels
                    .insert(sc, (ConnectivityState::Idle, t.at));
            }
            TraceKind::SubchannelState { state, .. } => {
                let (prev, since) = self.slots[ch]
                    .subchannels
                    .get(&sc)
                    .copied()
                    .unwrap_or((ConnectivityState::Idle, t.at));
                self.slots[ch].subchannels.insert(sc, (state, t.at));
                if !prev.is_legal_subchannel_transition(state) {
                    self.fail(
                        "legal connectivity transitions",
                        format!("channel {} {sc}: {prev} -> {state}", ch + 1),
                    );
                }
                if prev == ConnectivityState::TransientFailure && state == ConnectivityState::Idle {
                    let b = self.config.backoff;
                    let gap = t.at - since;
                    let g = self.config.granularity;
                    let lo = b.base_delay.mul_f64(1.0 - b.jitter).saturating_sub(g);
                    let hi = b.max_delay.mul_f64(1.0 + b.jitter) + g;
                    let jumped = self.jumps.iter().any(|&(a, z)| a < t.at && z > since);
                    if gap < lo || (gap > hi && !jumped) {
                        self.fail(
                            "backoff within policy bounds",
                            format!(
                                "channel {} {sc}: TRANSIENT_FAILURE lasted {gap:?}, policy allows {lo:?}..={hi:?}",
                                ch + 1
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn push_bytes(
        pipe: &mut Pipe,
        now: Instant,
        data: Bytes,
        l_latency: Duration,
        bw: u64,
        one_byte: &mut usize,
        rng: &mut SimRng,
    ) {
        let mut rest = data;
        while !rest.is_empty() {
            let n = if *one_byte > 0 {
                *one_byte -= 1;
                1
            } else if rng.percent(15) {
                rng.range(1, rest.len())
            } else {
                rest.len()
            };
            let chunk = rest.split_to(n);
            let depart = pipe.free_at.unwrap_or(now).max(now)
                + Duration::from_nanos(chunk.len() as u64 * 1_000_000_000 / bw.max(1));
            pipe.free_at = Some(depart);
            pipe.in_flight += chunk.len();
            pipe.total += chunk.len() as u64;
            pipe.segs.push_back((depart + l_latency, Some(chunk)));
        }
    }

    fn links_io(&mut self) -> bool {
        let mut progress = false;
        let now = self.now;
        let cap = self.config.link_buffer;
        let ids: Vec<u64> = self.links.keys().copied().collect();
        for id in ids {
            let l = self.links.get_mut(&id).expect("listed");
            let channel = &mut self.slots[l.ch].channel;
            // Client → up.
            if !l.client_closed {
                while l.up.in_flight < cap && channel.poll_transmit(l.conn, now, &mut self.out) > 0
                {
                    progress = true;
                    if !l.black && !l.reset {
                        for c in self.out.take_chunks() {
                            Self::push_bytes(
                                &mut l.up,
                                now,
                                c,
                                l.latency,
                                l.bandwidth,
                                &mut l.one_byte,
                                &mut self.rng,
                            );
                        }
                    }
                    self.out.clear();
                }
            }
            // Up → server.
            while let Some((_, seg)) = l.up.due(now) {
                let Some(srv) = l.server.as_mut() else {
                    l.up.clear();
                    break;
                };
                if seg.is_some() && !srv.wants_read() {
                    break;
                }
                progress = true;
                match l.up.pop() {
                    Some(b) => srv.recv(BytesMut::from(&b[..]), now),
                    None => srv.recv_eof(),
                }
            }
            // Server → down.
            if let Some(srv) = l.server.as_mut() {
                while l.down.in_flight < cap && srv.poll_transmit(now, &mut self.out) > 0 {
                    progress = true;
                    if !l.black && !l.reset && !l.client_closed {
                        for c in self.out.take_chunks() {
                            Self::push_bytes(
                                &mut l.down,
                                now,
                                c,
                                l.latency,
                                l.bandwidth,
                                &mut l.one_byte,
                                &mut self.rng,
                            );
                        }
                    }
                    self.out.clear();
                }
                if srv.is_closed() && !l.down.eof {
                    l.down.eof = true;
                    progress = true;
                    if !l.client_closed {
                        let at = l.down.free_at.unwrap_or(now).max(now) + l.latency;
                        l.down.segs.push_back((at, None));
                    }
                }
            }
            // Down → client.
            while let Some((_, seg)) = l.down.due(now) {
                if l.client_closed {
                    l.down.clear();
                    break;
                }
                if seg.is_some() && !channel.wants_read(l.conn) {
                    break;
                }
                progress = true;
                match l.down.pop() {
                    Some(b) => channel.recv(l.conn, BytesMut::from(&b[..]), now),
                    None => channel.recv_eof(l.conn, now),
                }
            }
            // Gone for good?
            let server_done = l.server.as_ref().is_none_or(|s| s.is_closed());
            if l.client_closed && server_done && l.up.segs.is_empty() && l.down.segs.is_empty() {
                let l = self.links.remove(&id).expect("listed");
                self.fail_service_calls(l.host, id, l.calls, "sim: the connection is gone");
                progress = true;
            }
        }
        progress
    }

    /// Tells host `host`'s service that `calls` of link `link` failed with
    /// UNAVAILABLE `why` (the simulator dropped them with their connection).
    fn fail_service_calls(
        &mut self,
        host: usize,
        link: u64,
        calls: BTreeMap<CallId, HCall>,
        why: &'static str,
    ) {
        let mut violation = None;
        for (call, mut h) in calls {
            let mut sc = ServiceCall {
                id: ServiceCallId { host, link, call },
                start: self.start,
                now: self.now,
                call: &mut h,
                violation: &mut violation,
            };
            self.hosts[host]
                .service
                .on_event(&mut sc, CallEvent::Failed(Status::unavailable(why)));
        }
        if let Some((invariant, detail)) = violation {
            self.fail(invariant, detail);
        }
    }

    /// Runs the hosts' services: new calls and their events go to the service, what it
    /// queued goes to the transport as send capacity allows.
    fn serve(&mut self) -> bool {
        let mut progress = false;
        let (start, now) = (self.start, self.now);
        let mut violation = None;
        let mut wakes = Vec::new();
        for (&lid, l) in &mut self.links {
            let Some(srv) = l.server.as_mut() else {
                continue;
            };
            let host = &mut self.hosts[l.host];
            if host.stall_until.is_some_and(|t| t > now) {
                continue;
            }
            let service = &mut host.service;
            let id = |call| ServiceCallId {
                host: l.host,
                link: lid,
                call,
            };
            while let Some(ev) = srv.poll_event() {
                progress = true;
                match ev {
                    ServerTransportEvent::NewCall { call, head } => {
                        let mut h = HCall::default();
                        let mut sc = ServiceCall {
                            id: id(call),
                            start,
                            now,
                            call: &mut h,
                            violation: &mut violation,
                        };
                        service.on_event(&mut sc, CallEvent::Started(&head));
                        l.calls.insert(call, h);
                        l.readable.insert(call);
                    }
                    ServerTransportEvent::CallReadable(call) => {
                        l.readable.insert(call);
                    }
                    _ => {}
                }
            }
            for call in std::mem::take(&mut l.readable) {
                while let Some(ev) = srv.poll_call(call) {
                    progress = true;
                    let Some(h) = l.calls.get_mut(&call) else {
                        continue;
                    };
                    let (event, failed) = match ev {
                        ServerEvent::Message(m) => (CallEvent::Message(m), false),
                        ServerEvent::HalfClosed => (CallEvent::HalfClosed, false),
                        ServerEvent::Failed(s) => (CallEvent::Failed(s), true),
                    };
                    let mut sc = ServiceCall {
                        id: id(call),
                        start,
                        now,
                        call: h,
                        violation: &mut violation,
                    };
                    service.on_event(&mut sc, event);
                    if failed {
                        l.calls.remove(&call);
                        srv.forget(call);
                    }
                }
            }
            // Answer.
            let ids: Vec<CallId> = l.calls.keys().copied().collect();
            for call in ids {
                let h = l.calls.get_mut(&call).expect("listed");
                if let Some(w) = h.wake.take() {
                    wakes.push(w);
                }
                if !srv.can_send(call) {
                    // Ended under the service without a Failed event (its stream is
                    // gone): the service still hears of it.
                    let mut h = l.calls.remove(&call).expect("listed");
                    srv.forget(call);
                    if h.finish.is_none() {
                        let mut sc = ServiceCall {
                            id: id(call),
                            start,
                            now,
                            call: &mut h,
                            violation: &mut violation,
                        };
                        let status = Status::cancelled("sim: the call can no longer send");
                        service.on_event(&mut sc, CallEvent::Failed(status));
                    }
                    progress = true;
                    continue;
                }
                while !h.out.is_empty() && srv.send_capacity(call) > 0 {
                    let m = h.out.pop_front().expect("non-empty");
                    self.largest_message = self.largest_message.max(m.len());
                    progress = true;
                    if srv.send_message(call, m).is_err() {
                        break;
                    }
                }
                if h.out.is_empty() && h.finish.as_ref().is_some_and(|(t, _)| *t <= now) {
                    let (_, status) = h.finish.take().expect("checked");
                    let _ = srv.finish(call, &status, &Metadata::new());
                    l.calls.remove(&call);
                    progress = true;
                }
            }
        }
        for w in wakes {
            self.schedule(w, Ev::Wake);
        }
        if let Some((invariant, detail)) = violation {
            self.fail(invariant, detail);
        }
        progress
    }

    fn clients(&mut self) -> bool {
        let mut progress = false;
        // Sends.
        for idx in 0..self.calls.len() {
            let c = &self.calls[idx];
            if c.status.is_some() || c.send_failed || c.sent >= c.allowed.min(c.planned.len()) {
                continue;
            }
            let ch = c.spec.channel;
            let channel = &mut self.slots[ch].channel;
            while {
                let c = &self.calls[idx];
                c.sent < c.allowed.min(c.planned.len())
                    && channel.can_send(c.id)
                    && channel.send_capacity(c.id) > 0
            } {
                let c = &mut self.calls[idx];
                let last = c.sent + 1 == c.planned.len();
                let m = c.planned[c.sent].clone();
                self.largest_message = self.largest_message.max(m.len());
                progress = true;
                match channel.send_message(c.id, m, last) {
                    Ok(()) => c.sent += 1,
                    Err(e) => {
                        c.send_failed = true;
                        let tag = c.tag;
                        self.log("call", format_args!("{tag:#x} send refused: {e:?}"));
                        break;
                    }
                }
            }
        }
        // Streaming calls with no request at all half-close at once.
        for idx in 0..self.calls.len() {
            let c = &mut self.calls[idx];
            if c.planned.is_empty() && !c.closed && c.status.is_none() {
                c.closed = true;
                let ch = c.spec.channel;
                let _ = self.slots[ch].channel.close_send(c.id);
                progress = true;
            }
        }
        // Receives.
        for ch in 0..self.slots.len() {
            if self.slots[ch].stall_until.is_some_and(|t| t > self.now) {
                continue;
            }
            let readable = std::mem::take(&mut self.slots[ch].readable);
            for id in readable {
                let Some(&idx) = self.by_id.get(&(ch, id)) else {
                    continue;
                };
                while let Some(ev) = self.slots[ch].channel.poll_call(id) {
                    progress = true;
                    self.on_call_event(idx, ev);
                }
            }
        }
        progress
    }

    fn on_call_event(&mut self, idx: usize, ev: ClientEvent) {
        let now = self.now;
        let c = &mut self.calls[idx];
        if c.status.is_some() {
            let detail = format!("call {:#x} got {ev:?} after its status", c.tag);
            self.fail("every call ends exactly once", detail);
            return;
        }
        match ev {
            ClientEvent::Headers(_) => {}
            ClientEvent::Message(m) if c.spec.method.is_some() => {
                c.received += 1;
                c.responses.push(m);
            }
            ClientEvent::Message(m) => {
                let i = c.received;
                c.received += 1;
                let problem = match c.spec.kind {
                    CallKind::ServerStream => match message::decode(&m) {
                        Ok(h)
                            if h.tag == c.tag
                                && h.seq == i as u32
                                && h.payload == c.spec.response_size as usize =>
                        {
                            None
                        }
                        Ok(h) => Some(format!("response {i} is {h:?}")),
                        Err(e) => Some(e),
                    },
                    _ => match c.planned.get(i) {
                        Some(p) if *p == m => None,
                        _ => Some(match message::decode(&m) {
                            Ok(h) => format!(
                                "response {i} is {h:?} (expected seq {i} of tag {:#x})",
                                c.tag
                            ),
                            Err(e) => e,
                        }),
                    },
                };
                if let Some(p) = problem {
                    let detail = format!("call {:#x}: {p}", c.tag);
                    self.fail("responses arrive in order, once, intact", detail);
                }
            }
            ClientEvent::Status(s, _) => {
                let expected = match c.spec.kind {
                    CallKind::ServerStream => c.spec.responses as usize,
                    _ => c.planned.len(),
                };
                let tag = c.tag;
                let (kind, received, sent, cancelled, probe, ch) = (
                    c.spec.kind,
                    c.received,
                    c.sent,
                    c.cancelled,
                    c.probe,
                    c.spec.channel,
                );
                let deadline = c.deadline;
                let echo = c.spec.method.is_none();
                c.status = Some(s.clone());
                self.log(
                    "call",
                    format_args!(
                        "{tag:#x} ends {:?} {:?} after {received} responses",
                        s.code, s.message
                    ),
                );
                if echo && s.is_ok() && received != expected {
                    self.fail(
                        "no accepted message lost on an OK call",
                        format!(
                            "call {tag:#x} ({kind:?}) ended OK with {received} responses, expected {expected} ({sent} requests sent)"
                        ),
                    );
                }
                if cancelled && !s.is_ok() && s.code != Code::Cancelled {
                    // Cancelled calls that already had another verdict in flight are fine
                    // only if that verdict came first, which the log shows; be strict:
                    self.fail(
                        "cancelled calls end CANCELLED",
                        format!("call {tag:#x} was cancelled but ended {:?}", s.code),
                    );
                }
                if let Some(d) = deadline {
                    let allowed = self.allowed_end(d, ch);
                    if now > allowed {
                        self.fail(
                            "no call outlives its deadline",
                            format!("call {tag:#x} ended {:?} after its deadline", now - d),
                        );
                    }
                }
                if probe {
                    if s.is_ok() {
                        self.slots[ch].recovered.get_or_insert(now);
                    } else {
                        let at = now + Duration::from_millis(200);
                        self.schedule(at, Ev::Probe { ch });
                    }
                }
            }
        }
    }

    /// The latest a call with deadline `d` on channel `ch` may end: one granularity
    /// after it, or after a clock jump that skipped over it, or after a slow client
    /// of the channel that was not reading then.
    fn allowed_end(&self, d: Instant, ch: usize) -> Instant {
        let g = self.config.granularity;
        let mut end = d + g;
        let stalls = self
            .client_stalls
            .iter()
            .filter(move |s| s.0 == ch)
            .map(|&(_, from, to)| (from, to));
        let intervals = self.jumps.iter().copied().chain(stalls);
        loop {
            let before = end;
            for (from, to) in intervals.clone() {
                if from <= end && to >= d {
                    end = end.max(to + g);
                }
            }
            if end == before {
                return end;
            }
        }
    }

    /// The invariants checked after every step.
    fn check_step(&mut self) {
        let now = self.now;
        let late = self.calls.iter().find(|c| {
            c.status.is_none()
                && c.deadline
                    .is_some_and(|d| now > self.allowed_end(d, c.spec.channel))
        });
        if let Some(c) = late {
            let detail = format!(
                "call {:#x} ({:?}) is still open {:?} after its deadline",
                c.tag,
                c.spec.kind,
                now - c.deadline.expect("has one")
            );
            self.fail("no call outlives its deadline", detail);
        }
        let cap = self.config.link_buffer + 2 * DEFAULT_MAX_WRITE_BATCH;
        let bounds = MemoryBounds {
            slack: self.config.memory_slack,
            largest_message: self.largest_message,
        };
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        for (id, l) in &mut self.links {
            if l.up.in_flight > cap || l.down.in_flight > cap {
                problems.push((
                    "memory per connection bounded",
                    format!(
                        "link {id}: {} bytes up, {} down (bound {cap})",
                        l.up.in_flight, l.down.in_flight
                    ),
                ));
            }
            let channel = &self.slots[l.ch].channel;
            let client = channel.connection_windows(l.conn).map(|w| {
                let streams: Vec<StreamWindows> =
                    channel.connection_stream_windows(l.conn).collect();
                (w, streams)
            });
            let server = l.server.as_ref().map(|srv| {
                let streams: Vec<StreamWindows> = srv.connection().stream_windows().collect();
                (srv.connection().windows(), streams)
            });
            for (end, side, seen) in [(&client, "client", 0), (&server, "server", 1)] {
                let Some((w, streams)) = end else {
                    continue;
                };
                if let Some(p) = window_problem(w, streams, &mut l.seen[seen]) {
                    problems.push((
                        "flow-control windows within bounds",
                        format!("link {id} {side} end: {p}"),
                    ));
                }
            }
            if let (Some((cw, cs)), Some((sw, ss))) = (&client, &server)
                && let Some(p) = views_problem(cw, cs, sw, ss)
            {
                problems.push(("flow-control views agree", format!("link {id}: {p}")));
            }
            let memories = [
                (channel.connection_memory(l.conn), &client, "client"),
                (
                    l.server.as_ref().map(|s| s.connection().memory()),
                    &server,
                    "server",
                ),
            ];
            for (memory, end, side) in memories {
                let (Some(m), Some((w, streams))) = (memory, end) else {
                    continue;
                };
                if let Some(p) = bounds.problem(&m, w, streams.len()) {
                    problems.push((
                        "memory per connection bounded",
                        format!("link {id} {side} end: {p}"),
                    ));
                }
            }
        }
        if let Some((invariant, detail)) = problems.into_iter().next() {
            self.fail(invariant, detail);
        }
        // A channel holds a bounded number of connections (ready, connecting, draining):
        // closed ones must be dropped, attempts must not pile up.
        let bound = MAX_CONNECTIONS_PER_HOST * self.hosts.len();
        for i in 0..self.slots.len() {
            let n = self.slots[i].channel.connections().len();
            if n > bound {
                let detail = format!("channel {} holds {n} connections (bound {bound})", i + 1);
                self.fail("connections per channel bounded", detail);
            }
        }
    }
}

/// The §6.9 bounds on one end's windows, given the largest windows that end has been
/// seen with (updated here).
///
/// The connection windows only move by DATA and WINDOW_UPDATE, so they stay within
/// 0 and what was advertised. A stream window is kept non-negative by the same, and a
/// change of an initial window moves it by the difference (§6.9.2): so it never goes
/// below (current initial window − largest initial window ever), and a receive window
/// never above the limit plus the credit granted past it.
fn window_problem(
    w: &ConnectionWindows,
    streams: &[StreamWindows],
    seen: &mut FlowSeen,
) -> Option<String> {
    let max = i64::from(MAX_WINDOW_SIZE);
    seen.peer_initial = seen.peer_initial.max(w.peer_initial_window);
    seen.local_initial = seen.local_initial.max(w.local_initial_window);
    seen.conn_recv_limit = seen.conn_recv_limit.max(w.recv_limit);
    if !(0..=max).contains(&w.send) {
        return Some(format!("connection send window {}", w.send));
    }
    let advertised = i64::from(seen.conn_recv_limit);
    if !(0..=advertised).contains(&w.recv) {
        return Some(format!(
            "connection receive window {} outside 0..={advertised} (the most ever advertised)",
            w.recv
        ));
    }
    let send_floor = (i64::from(w.peer_initial_window) - i64::from(seen.peer_initial)).min(0);
    let recv_floor = (i64::from(w.local_initial_window) - i64::from(seen.local_initial)).min(0);
    for s in streams {
        if !(send_floor..=max).contains(&s.send) {
            return Some(format!(
                "stream {} send window {} below {send_floor} (peer's initial window {}, largest {})",
                s.stream_id.value(),
                s.send,
                w.peer_initial_window,
                seen.peer_initial
            ));
        }
        let advertised = i64::from(s.recv_limit) + i64::from(s.recv_extra);
        if !(recv_floor..=advertised).contains(&s.recv) || advertised > max {
            return Some(format!(
                "stream {} receive window {} outside {recv_floor}..={advertised} (limit {} + extra {}; our initial window {}, largest {})",
                s.stream_id.value(),
                s.recv,
                s.recv_limit,
                s.recv_extra,
                w.local_initial_window,
                seen.local_initial
            ));
        }
    }
    None
}

/// Each end's view of the other's windows: what a sender may still send never exceeds
/// what its receiver will still accept. Between them are only DATA and WINDOW_UPDATEs
/// in flight, SETTINGS changes not yet applied by the side that applies them last
/// (the receiver for a decrease, the sender for a growth) and bytes a reset lost, all
/// of which keep the sender's view the smaller; a larger one means the sender may send
/// what the receiver will refuse with FLOW_CONTROL_ERROR.
fn views_problem(
    client: &ConnectionWindows,
    client_streams: &[StreamWindows],
    server: &ConnectionWindows,
    server_streams: &[StreamWindows],
) -> Option<String> {
    if client.send > server.recv {
        return Some(format!(
            "the client may send {} on the connection, the server accepts {}",
            client.send, server.recv
        ));
    }
    if server.send > client.recv {
        return Some(format!(
            "the server may send {} on the connection, the client accepts {}",
            server.send, client.recv
        ));
    }
    for c in client_streams {
        let Some(s) = server_streams.iter().find(|s| s.stream_id == c.stream_id) else {
            continue;
        };
        if c.send > s.recv || s.send > c.recv {
            return Some(format!(
                "stream {}: the client may send {} and accepts {}, the server may send {} and accepts {}",
                c.stream_id.value(),
                c.send,
                c.recv,
                s.send,
                s.recv
            ));
        }
    }
    None
}

/// What one end of a connection may buffer.
struct MemoryBounds {
    /// [`SimConfig::memory_slack`].
    slack: usize,
    /// The largest message handed to a transport so far.
    largest_message: usize,
}

impl MemoryBounds {
    /// Control frames are capped by the reading side (reading stops at the cap, one
    /// frame may add a few); received data by the connection window, as reading stops
    /// once the application holds that much, plus what one read brings; queued sends by
    /// the stream send buffer (or a transparent retry's replay buffer, resent at once),
    /// plus the message that crossed it, per stream.
    fn problem(
        &self,
        m: &ConnectionMemory,
        w: &ConnectionWindows,
        streams: usize,
    ) -> Option<String> {
        let control = DEFAULT_MAX_QUEUED_CONTROL_FRAMES + 16;
        let received = w.recv_limit as usize + self.slack;
        let per_stream =
            2 * (DEFAULT_STREAM_SEND_BUFFER.max(RETRY_BUFFER) + self.largest_message) + 5;
        let queued = streams * per_stream;
        let held = m.recv_unconsumed + m.recv_unparsed;
        (m.control_frames > control || held > received || m.send_queued > queued).then(|| {
            format!(
                "{} control frames (bound {control}), {} bytes received and unconsumed + {} unparsed (bound {received}), {} bytes queued to send on {streams} streams (bound {queued})",
                m.control_frames, m.recv_unconsumed, m.recv_unparsed, m.send_queued
            )
        })
    }
}
