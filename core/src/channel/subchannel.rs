//! The subchannel: the connectivity state machine of one group of equivalent addresses
//! (grpc-go's `addrConn`), pure and deterministic.
//!
//! A [`Subchannel`] does no I/O and owns no transport. It tells its channel what to do
//! through [`SubchannelAction`]s ([`Subchannel::poll_action`]): open a connection to an
//! address, close one, forward a state change to the balancer, ask the resolver to
//! resolve again, record a trace event. The channel performs them, owns the HTTP/2
//! transport of each connection, and reports back what happened to each connection
//! ([`Subchannel::on_ready`], [`Subchannel::on_connect_failed`],
//! [`Subchannel::on_closed`]) and when time passed ([`Subchannel::handle_timeout`]).
//!
//! # The life cycle (grpc-go semantics)
//!
//! - IDLE: nothing happens until [`Subchannel::connect`] (the balancer decides when).
//! - CONNECTING: one *pass* over the addresses in order (grpc-go's `tryAllAddrs`). The
//!   pass's backoff delay `d` is drawn once when it starts; every attempt gets
//!   `max(min_connect_timeout, d)` from its own start to reach READY (TCP connect and
//!   the server's preface), else it is closed and the next address is tried.
//! - READY: the first attempt that completes its handshake wins; the backoff resets.
//! - TRANSIENT_FAILURE: every address of the pass failed. The subchannel asks for
//!   re-resolution and waits `d`, then goes IDLE. It never reconnects on its own.
//! - A READY connection that closes (GOAWAY, connection loss) leaves the subchannel
//!   IDLE, with a re-resolution request.
//! - SHUTDOWN: for good.
//!
//! Every connection attempt gets a fresh [`ConnId`], so late events about an abandoned
//! connection are recognised and ignored.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::backoff::ConnectParams;
use super::balancer::{SubchannelId, SubchannelState};
use super::random::Random;
use super::state::ConnectivityState;
use super::target::Address;
use super::trace::TraceKind;
use crate::grpc::status::Status;

/// The error of an attempt that did not reach READY within its deadline.
const ATTEMPT_TIMED_OUT: &str = "connection attempt timed out";

/// The error of a pass over an empty address list (nothing could even be tried).
const NO_ADDRESSES: &str = "no addresses to connect to";

/// One connection (an attempt, and the transport it becomes). Allocated by
/// [`ConnIds`] and never reused within a channel, so an event about a connection the
/// subchannel has abandoned cannot be mistaken for one about its current connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn #{}", self.0)
    }
}

/// The allocator of [`ConnId`]s, shared by all subchannels of a channel so that the
/// channel can key its transports by `ConnId` alone. The first id is 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnIds {
    next: u64,
}

impl ConnIds {
    /// A fresh id: one more than the last one handed out.
    // Named like `Iterator::next` on purpose, but an allocator that never runs out is
    // not usefully an iterator (every call site would unwrap a `Some`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> ConnId {
        // u64 cannot wrap in practice (one id per attempt); saturate rather than panic.
        self.next = self.next.saturating_add(1);
        ConnId(self.next)
    }
}

/// What the subchannel asks its channel to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubchannelAction {
    /// Open a connection to `address` and run the HTTP/2 handshake on it. The channel
    /// then reports its fate with [`Subchannel::on_ready`],
    /// [`Subchannel::on_connect_failed`] or [`Subchannel::on_closed`], naming `conn`.
    Connect {
        /// The connection's id.
        conn: ConnId,
        /// Where to connect.
        address: Address,
    },
    /// Abandon or close this connection (its deadline passed, its address was removed,
    /// or the subchannel shut down). The subchannel has already forgotten it: further
    /// events about it are ignored.
    Close {
        /// The connection's id.
        conn: ConnId,
    },
    /// The subchannel's state changed: forward it to the balancer.
    StateChanged(SubchannelState),
    /// Ask the resolver to resolve again (a pass failed, or a connection was lost).
    ResolveNow,
    /// Record a trace event; the channel stamps it with the time and ids into a
    /// [`TraceEvent`](super::trace::TraceEvent).
    Trace(TraceKind),
}

/// A connection pass over the addresses, with its current attempt.
#[derive(Clone, Debug)]
struct Pass {
    /// The backoff delay drawn when the pass started: it stretches each attempt's
    /// deadline and is the wait after the pass fails (grpc-go's `backoffFor`).
    backoff_delay: Duration,
    /// The index in `addresses` of the current attempt's address.
    index: usize,
    /// The current attempt's connection.
    conn: ConnId,
    /// The current attempt's address, for the trace of its failure and for READY.
    address: Address,
    /// When the current attempt is abandoned; `None` if the timeout is beyond what
    /// `Instant` can represent.
    deadline: Option<Instant>,
}

/// What the subchannel is doing; each variant goes with one or two states.
#[derive(Clone, Debug)]
enum Phase {
    /// IDLE, or SHUTDOWN: no connection and no timer.
    Idle,
    /// CONNECTING.
    Connecting(Pass),
    /// READY over this connection to this address.
    Ready { conn: ConnId, address: Address },
    /// TRANSIENT_FAILURE until this time (`None`: beyond `Instant`'s range, so only
    /// [`Subchannel::reset_backoff`] ends it).
    Backoff { until: Option<Instant> },
}

/// The connectivity state machine of one subchannel (grpc-go's `addrConn`). See the
/// [module documentation](self).
#[derive(Clone, Debug)]
pub struct Subchannel {
    id: SubchannelId,
    addresses: Vec<Address>,
    params: ConnectParams,
    state: ConnectivityState,
    phase: Phase,
    /// Consecutive failed passes since the last READY (grpc-go's `backoffIdx`).
    backoff_index: u32,
    /// The error the current state carries.
    last_error: Option<Status>,
    actions: VecDeque<SubchannelAction>,
}

impl Subchannel {
    /// A subchannel over `addresses`, IDLE: it connects only when asked.
    pub fn new(id: SubchannelId, addresses: Vec<Address>, params: ConnectParams) -> Subchannel {
        Subchannel {
            id,
            addresses,
            params,
            state: ConnectivityState::Idle,
            phase: Phase::Idle,
            backoff_index: 0,
            last_error: None,
            actions: VecDeque::new(),
        }
    }

    /// The subchannel's id.
    pub fn id(&self) -> SubchannelId {
        self.id
    }

    /// The current connectivity state.
    pub fn state(&self) -> ConnectivityState {
        self.state
    }

    /// The addresses, in the order a pass tries them.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The connection calls go to: `Some` exactly when READY.
    pub fn ready_conn(&self) -> Option<ConnId> {
        match self.phase {
            Phase::Ready { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The error the current state carries: the failure of the last pass in
    /// TRANSIENT_FAILURE and in the IDLE that follows its backoff; `None` otherwise.
    pub fn last_error(&self) -> Option<&Status> {
        self.last_error.as_ref()
    }

    /// Starts a connection pass over the addresses: IDLE → CONNECTING. Has no effect in
    /// any other state (as grpc-go's `addrConn.connect`): a subchannel already
    /// connecting or connected needs nothing, and one in backoff must wait it out.
    pub fn connect(&mut self, now: Instant, ids: &mut ConnIds, rng: &mut Random) {
        if self.state == ConnectivityState::Idle {
            self.start_pass(now, ids, rng);
        }
    }

    /// The server's preface (its SETTINGS) arrived on `conn`: if `conn` is the current
    /// attempt, the subchannel is READY and the backoff starts over. Ignored otherwise.
    pub fn on_ready(&mut self, conn: ConnId, now: Instant) {
        // The time is not needed: READY cancels the only timer there is.
        let _ = now;
        let Phase::Connecting(pass) = &self.phase else {
            return;
        };
        if pass.conn != conn {
            return;
        }
        let address = pass.address.clone();
        self.phase = Phase::Ready { conn, address };
        // Success: grpc-go's `backoffIdx = 0`.
        self.backoff_index = 0;
        self.set_state(ConnectivityState::Ready, None);
    }

    /// The attempt on `conn` failed before READY: the TCP connection was refused or
    /// failed, or the transport closed during the handshake. The next address is tried
    /// at once; after the last one, the pass has failed: TRANSIENT_FAILURE with this
    /// error (as UNAVAILABLE), a re-resolution request, and the backoff wait.
    ///
    /// For the READY connection this is the same as [`on_closed`](Self::on_closed) (the
    /// transport is gone either way); for any other connection it is ignored.
    pub fn on_connect_failed(
        &mut self,
        conn: ConnId,
        error: Status,
        now: Instant,
        ids: &mut ConnIds,
        rng: &mut Random,
    ) {
        match &self.phase {
            Phase::Connecting(pass) if pass.conn == conn => self.attempt_failed(now, ids, error),
            Phase::Ready { conn: ready, .. } if *ready == conn => {
                self.on_closed(conn, error, now, ids, rng)
            }
            _ => {}
        }
    }

    /// The transport of `conn` closed (GOAWAY or connection loss). For the READY
    /// connection: IDLE and a re-resolution request, and no reconnection until the
    /// balancer asks (grpc-go's `onClose`). For the connection still being attempted:
    /// the same as [`on_connect_failed`](Self::on_connect_failed). Otherwise ignored.
    pub fn on_closed(
        &mut self,
        conn: ConnId,
        error: Status,
        now: Instant,
        ids: &mut ConnIds,
        rng: &mut Random,
    ) {
        // A pass already has its backoff delay: nothing here draws randomness.
        let _ = rng;
        match &self.phase {
            Phase::Connecting(pass) if pass.conn == conn => self.attempt_failed(now, ids, error),
            Phase::Ready { conn: ready, .. } if *ready == conn => {
                self.phase = Phase::Idle;
                // grpc-go refreshes the resolver on any connection loss, before going
                // IDLE, and reports IDLE without an error: the loss of a working
                // connection is not a connection failure.
                self.push(SubchannelAction::ResolveNow);
                self.set_state(ConnectivityState::Idle, None);
            }
            _ => {}
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the current
    /// attempt's deadline while CONNECTING, the end of the backoff in
    /// TRANSIENT_FAILURE, `None` otherwise.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Connecting(pass) => pass.deadline,
            Phase::Backoff { until } => *until,
            Phase::Idle | Phase::Ready { .. } => None,
        }
    }

    /// Acts on the timer if it is due at `now`: an attempt past its deadline is closed
    /// and counts as failed (the next address is tried); a backoff that is over leaves
    /// TRANSIENT_FAILURE for IDLE. Calling it early has no effect.
    pub fn handle_timeout(&mut self, now: Instant, ids: &mut ConnIds, rng: &mut Random) {
        let _ = rng;
        match &self.phase {
            Phase::Connecting(pass) if pass.deadline.is_some_and(|d| d <= now) => {
                let conn = pass.conn;
                self.push(SubchannelAction::Close { conn });
                self.attempt_failed(now, ids, Status::unavailable(ATTEMPT_TIMED_OUT));
            }
            Phase::Backoff { until } if until.is_some_and(|u| u <= now) => self.end_backoff(),
            _ => {}
        }
    }

    /// Replaces the address list (grpc-go's `updateAddrs`). A list equal to the current
    /// one changes nothing. Otherwise: IDLE, TRANSIENT_FAILURE and SHUTDOWN just store
    /// it (the next pass uses it); READY over an address still in the list keeps its
    /// connection. READY over a removed address, and CONNECTING, close the connection
    /// and, if the list is empty, go IDLE, else start a new pass at once.
    pub fn update_addresses(
        &mut self,
        addresses: Vec<Address>,
        now: Instant,
        ids: &mut ConnIds,
        rng: &mut Random,
    ) {
        if addresses == self.addresses {
            // Resolvers repeat themselves; an in-flight attempt must not be restarted
            // for nothing.
            return;
        }
        self.addresses = addresses;
        match &self.phase {
            Phase::Idle | Phase::Backoff { .. } => {}
            Phase::Ready { conn, address } => {
                if self.addresses.contains(address) {
                    return;
                }
                let conn = *conn;
                self.phase = Phase::Idle;
                self.push(SubchannelAction::Close { conn });
                // READY → CONNECTING is not a legal transition: pass through IDLE.
                self.set_state(ConnectivityState::Idle, None);
                if !self.addresses.is_empty() {
                    self.start_pass(now, ids, rng);
                }
            }
            Phase::Connecting(pass) => {
                let conn = pass.conn;
                self.phase = Phase::Idle;
                self.push(SubchannelAction::Close { conn });
                if self.addresses.is_empty() {
                    self.set_state(ConnectivityState::Idle, None);
                } else {
                    // Stays CONNECTING; a new pass draws a new backoff delay at the
                    // same backoff index, as grpc-go's restarted `resetTransport`.
                    self.start_pass(now, ids, rng);
                }
            }
        }
    }

    /// Forgets the failures (grpc-go's `resetConnectBackoff`): the next pass uses the
    /// base backoff delay, and a subchannel waiting out its backoff in
    /// TRANSIENT_FAILURE goes IDLE now.
    pub fn reset_backoff(&mut self, now: Instant) {
        // Ending the backoff does not depend on when it happens.
        let _ = now;
        if self.state == ConnectivityState::Shutdown {
            return;
        }
        self.backoff_index = 0;
        if let Phase::Backoff { .. } = self.phase {
            self.end_backoff();
        }
    }

    /// Shuts the subchannel down for good: closes its connection, if any, and goes
    /// SHUTDOWN. Every later call has no effect.
    pub fn shutdown(&mut self) {
        if self.state == ConnectivityState::Shutdown {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connecting(Pass { conn, .. }) | Phase::Ready { conn, .. } => {
                self.push(SubchannelAction::Close { conn })
            }
            Phase::Idle | Phase::Backoff { .. } => {}
        }
        self.set_state(ConnectivityState::Shutdown, None);
    }

    /// The next action for the channel, in the order they arose.
    pub fn poll_action(&mut self) -> Option<SubchannelAction> {
        self.actions.pop_front()
    }

    /// True when [`poll_action`](Self::poll_action) has something to return.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    fn push(&mut self, action: SubchannelAction) {
        self.actions.push_back(action);
    }

    /// Moves to `state`, carrying `error`, and tells the trace and the balancer.
    fn set_state(&mut self, state: ConnectivityState, error: Option<Status>) {
        debug_assert!(
            self.state.is_legal_subchannel_transition(state),
            "illegal subchannel transition {} -> {state}",
            self.state
        );
        self.state = state;
        self.last_error = error.clone();
        self.push(SubchannelAction::Trace(TraceKind::SubchannelState {
            state,
            last_error: error.as_ref().map(|e| e.message.clone()),
        }));
        self.push(SubchannelAction::StateChanged(SubchannelState {
            state,
            error,
        }));
    }

    /// Starts a pass from IDLE (→ CONNECTING) or restarts one while CONNECTING.
    fn start_pass(&mut self, now: Instant, ids: &mut ConnIds, rng: &mut Random) {
        // One delay per pass (grpc-go `ac.dopts.bs.Backoff(ac.backoffIdx)`). The random
        // value is drawn even when the index is 0 and the delay ignores it, so the
        // random stream does not depend on the backoff state.
        let backoff_delay = self
            .params
            .backoff
            .delay(self.backoff_index, rng.next_u64());
        if self.state != ConnectivityState::Connecting {
            self.set_state(ConnectivityState::Connecting, None);
        }
        self.try_address(now, ids, backoff_delay, 0, None);
    }

    /// Attempts the address at `index` of the current pass, or fails the pass with
    /// `error` (the latest failure of the pass) when there is none left.
    fn try_address(
        &mut self,
        now: Instant,
        ids: &mut ConnIds,
        backoff_delay: Duration,
        index: usize,
        error: Option<Status>,
    ) {
        let Some(address) = self.addresses.get(index).cloned() else {
            self.fail_pass(now, backoff_delay, error);
            return;
        };
        let conn = ids.next();
        // Each attempt gets the whole timeout from its own start, so an address that
        // blackholes the connection cannot starve the addresses after it.
        let deadline = now.checked_add(self.params.connect_timeout(backoff_delay));
        self.push(SubchannelAction::Trace(TraceKind::PickAddress {
            address: address.clone(),
        }));
        self.push(SubchannelAction::Connect {
            conn,
            address: address.clone(),
        });
        self.phase = Phase::Connecting(Pass {
            backoff_delay,
            index,
            conn,
            address,
            deadline,
        });
    }

    /// The current attempt failed with `error`: trace it, then try the next address.
    fn attempt_failed(&mut self, now: Instant, ids: &mut ConnIds, error: Status) {
        let Phase::Connecting(pass) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        self.push(SubchannelAction::Trace(TraceKind::ConnectFailed {
            address: pass.address,
            error: error.message.clone(),
        }));
        // The balancer sees connection failures as UNAVAILABLE whatever the transport
        // called them; the message is kept as given.
        let error = Status::unavailable(error.message);
        self.try_address(now, ids, pass.backoff_delay, pass.index + 1, Some(error));
    }

    /// Every address of the pass failed: TRANSIENT_FAILURE for `backoff_delay`.
    fn fail_pass(&mut self, now: Instant, backoff_delay: Duration, error: Option<Status>) {
        let error = error.unwrap_or_else(|| Status::unavailable(NO_ADDRESSES));
        // grpc-go asks for re-resolution before reporting TRANSIENT_FAILURE.
        self.push(SubchannelAction::ResolveNow);
        self.set_state(ConnectivityState::TransientFailure, Some(error));
        self.backoff_index = self.backoff_index.saturating_add(1);
        self.phase = Phase::Backoff {
            until: now.checked_add(backoff_delay),
        };
    }

    /// The backoff is over (or was reset): IDLE, still carrying the pass's error, as
    /// grpc-go does, so the balancer and the logs keep seeing why.
    fn end_backoff(&mut self) {
        self.phase = Phase::Idle;
        let error = self.last_error.clone();
        self.set_state(ConnectivityState::Idle, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::backoff::BackoffConfig;
    use ConnectivityState::*;
    use SubchannelAction as A;
    use std::net::SocketAddr;

    const SEED: u64 = 0x5eed;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn addr(port: u16) -> Address {
        Address::Socket(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn refused() -> Status {
        Status::unavailable("connection refused")
    }

    /// A subchannel with its channel-side companions and a virtual clock base.
    struct H {
        sc: Subchannel,
        ids: ConnIds,
        rng: Random,
        t0: Instant,
        /// The state the emitted StateChanged actions say the subchannel is in.
        seen: ConnectivityState,
    }

    impl H {
        fn new(addresses: Vec<Address>) -> H {
            H::with_params(addresses, ConnectParams::default())
        }

        fn with_params(addresses: Vec<Address>, params: ConnectParams) -> H {
            H {
                sc: Subchannel::new(SubchannelId(7), addresses, params),
                ids: ConnIds::default(),
                rng: Random::new(SEED),
                t0: crate::test_clock::t0(),
                seen: Idle,
            }
        }

        fn at(&self, d: Duration) -> Instant {
            self.t0 + d
        }

        /// Drains the actions, checking that the reported transitions are legal and
        /// agree with `state()`.
        fn actions(&mut self) -> Vec<A> {
            let out: Vec<A> = std::iter::from_fn(|| self.sc.poll_action()).collect();
            for a in &out {
                if let A::StateChanged(s) = a {
                    assert!(
                        self.seen.is_legal_subchannel_transition(s.state),
                        "{} -> {}",
                        self.seen,
                        s.state
                    );
                    self.seen = s.state;
                }
            }
            assert_eq!(self.seen, self.sc.state());
            out
        }

        fn connect(&mut self, at: Duration) -> Vec<A> {
            let now = self.at(at);
            self.sc.connect(now, &mut self.ids, &mut self.rng);
            self.actions()
        }

        fn ready(&mut self, conn: u64, at: Duration) -> Vec<A> {
            let now = self.at(at);
            self.sc.on_ready(ConnId(conn), now);
            self.actions()
        }

        fn fail(&mut self, conn: u64, error: Status, at: Duration) -> Vec<A> {
            let now = self.at(at);
            self.sc
                .on_connect_failed(ConnId(conn), error, now, &mut self.ids, &mut self.rng);
            self.actions()
        }

        fn closed(&mut self, conn: u64, error: Status, at: Duration) -> Vec<A> {
            let now = self.at(at);
            self.sc
                .on_closed(ConnId(conn), error, now, &mut self.ids, &mut self.rng);
            self.actions()
        }

        fn timeout(&mut self, at: Duration) -> Vec<A> {
            let now = self.at(at);
            self.sc.handle_timeout(now, &mut self.ids, &mut self.rng);
            self.actions()
        }

        fn update(&mut self, addresses: Vec<Address>, at: Duration) -> Vec<A> {
            let now = self.at(at);
            self.sc
                .update_addresses(addresses, now, &mut self.ids, &mut self.rng);
            self.actions()
        }

        fn deadline(&self) -> Option<Duration> {
            self.sc.poll_timeout().map(|t| t - self.t0)
        }
    }

    /// The trace and the balancer update of a state change.
    fn state(state: ConnectivityState, error: Option<&str>) -> Vec<A> {
        vec![
            A::Trace(TraceKind::SubchannelState {
                state,
                last_error: error.map(str::to_owned),
            }),
            A::StateChanged(SubchannelState {
                state,
                error: error.map(Status::unavailable),
            }),
        ]
    }

    /// The start of an attempt.
    fn pick(conn: u64, address: Address) -> Vec<A> {
        vec![
            A::Trace(TraceKind::PickAddress {
                address: address.clone(),
            }),
            A::Connect {
                conn: ConnId(conn),
                address,
            },
        ]
    }

    fn failed(address: Address, error: &str) -> A {
        A::Trace(TraceKind::ConnectFailed {
            address,
            error: error.to_owned(),
        })
    }

    #[test]
    fn conn_ids_start_at_one_and_display() {
        let mut ids = ConnIds::default();
        assert_eq!(ids.next(), ConnId(1));
        assert_eq!(ids.next(), ConnId(2));
        assert_eq!(ConnId(3).to_string(), "conn #3");
    }

    #[test]
    fn new_is_idle_and_quiet() {
        let mut h = H::new(vec![addr(1)]);
        assert_eq!(h.sc.id(), SubchannelId(7));
        assert_eq!(h.sc.state(), Idle);
        assert_eq!(h.sc.addresses(), &[addr(1)]);
        assert_eq!(h.sc.ready_conn(), None);
        assert_eq!(h.sc.last_error(), None);
        assert_eq!(h.sc.poll_timeout(), None);
        assert_eq!(h.actions(), []);
        // Nothing is due: time passing alone never connects.
        assert_eq!(h.timeout(secs(3600)), []);
    }

    #[test]
    fn connect_then_ready() {
        let mut h = H::new(vec![addr(1), addr(2)]);
        assert_eq!(
            h.connect(secs(0)),
            [state(Connecting, None), pick(1, addr(1))].concat()
        );
        // The default 20 s minimum beats the first backoff delay (1 s).
        assert_eq!(h.deadline(), Some(secs(20)));
        assert_eq!(h.ready(1, secs(3)), state(Ready, None));
        assert_eq!(h.sc.ready_conn(), Some(ConnId(1)));
        assert_eq!(h.sc.last_error(), None);
        // READY stops the attempt deadline.
        assert_eq!(h.sc.poll_timeout(), None);
        assert_eq!(h.timeout(secs(20)), []);
    }

    #[test]
    fn timeout_refused_then_ready_over_three_addresses() {
        let mut h = H::new(vec![addr(1), addr(2), addr(3)]);
        h.connect(secs(0));
        // Not yet due.
        assert_eq!(h.timeout(secs(20) - Duration::from_nanos(1)), []);
        // The blackholed first address is abandoned at its deadline; the second gets a
        // full deadline of its own.
        assert_eq!(
            h.timeout(secs(20)),
            [
                vec![
                    A::Close { conn: ConnId(1) },
                    failed(addr(1), "connection attempt timed out"),
                ],
                pick(2, addr(2)),
            ]
            .concat()
        );
        assert_eq!(h.sc.state(), Connecting);
        assert_eq!(h.deadline(), Some(secs(40)));
        assert_eq!(
            h.fail(2, refused(), secs(20)),
            [
                vec![failed(addr(2), "connection refused")],
                pick(3, addr(3))
            ]
            .concat()
        );
        assert_eq!(h.deadline(), Some(secs(40)));
        assert_eq!(h.ready(3, secs(20)), state(Ready, None));
        assert_eq!(h.sc.ready_conn(), Some(ConnId(3)));
    }

    #[test]
    fn all_refused_goes_transient_failure_then_idle_and_backoff_grows() {
        let config = BackoffConfig::default();
        // The expected delays, from the same random stream: one draw per pass.
        let mut r = Random::new(SEED);
        let d0 = config.delay(0, r.next_u64());
        let d1 = config.delay(1, r.next_u64());
        let d2 = config.delay(2, r.next_u64());
        assert_eq!(d0, secs(1));
        assert!(d1 >= secs(1).mul_f64(1.6 * 0.8) && d1 <= secs(1).mul_f64(1.6 * 1.2));
        assert_ne!(d1, secs(1).mul_f64(1.6), "the seed should give some jitter");

        let mut h = H::new(vec![addr(1), addr(2)]);
        h.connect(secs(0));
        assert_eq!(
            h.fail(1, refused(), secs(1)),
            [
                vec![failed(addr(1), "connection refused")],
                pick(2, addr(2))
            ]
            .concat()
        );
        // The last error is reported, as UNAVAILABLE whatever code it came with.
        assert_eq!(
            h.fail(2, Status::internal("no route to host"), secs(2)),
            [
                vec![failed(addr(2), "no route to host"), A::ResolveNow],
                state(TransientFailure, Some("no route to host")),
            ]
            .concat()
        );
        assert_eq!(
            h.sc.last_error(),
            Some(&Status::unavailable("no route to host"))
        );
        assert_eq!(h.deadline(), Some(secs(2) + d0));
        // No reconnection while backing off...
        assert_eq!(h.connect(secs(2)), []);
        assert_eq!(h.timeout(secs(2) + d0 - Duration::from_nanos(1)), []);
        // ... and none when it ends: IDLE, keeping the error, as grpc-go.
        assert_eq!(
            h.timeout(secs(2) + d0),
            state(Idle, Some("no route to host"))
        );
        assert_eq!(h.sc.poll_timeout(), None);
        assert_eq!(h.timeout(secs(100)), []);

        // The second pass: the next backoff delay, still under the 20 s minimum.
        let t = secs(10);
        assert_eq!(
            h.connect(t),
            [state(Connecting, None), pick(3, addr(1))].concat()
        );
        assert_eq!(h.sc.last_error(), None);
        assert_eq!(h.deadline(), Some(t + secs(20)));
        h.fail(3, refused(), t);
        let actions = h.fail(4, refused(), t);
        assert_eq!(actions[1], A::ResolveNow);
        assert_eq!(h.sc.state(), TransientFailure);
        assert_eq!(h.deadline(), Some(t + d1));
        h.timeout(t + d1);

        // The third pass uses the third delay.
        let t = secs(20);
        h.connect(t);
        h.fail(5, refused(), t);
        h.fail(6, refused(), t);
        assert_eq!(h.deadline(), Some(t + d2));
        h.timeout(t + d2);

        // READY resets the backoff: the next failed pass waits the base delay again.
        let t = secs(30);
        h.connect(t);
        assert_eq!(h.ready(7, t), state(Ready, None));
        assert_eq!(
            h.closed(7, Status::unavailable("GOAWAY"), t),
            [vec![A::ResolveNow], state(Idle, None)].concat()
        );
        h.connect(t);
        h.fail(8, refused(), t);
        h.fail(9, refused(), t);
        assert_eq!(h.deadline(), Some(t + secs(1)));
    }

    #[test]
    fn long_backoff_stretches_the_attempt_deadline() {
        let params = ConnectParams {
            backoff: BackoffConfig {
                base_delay: secs(20),
                ..BackoffConfig::default()
            },
            ..ConnectParams::default()
        };
        let mut r = Random::new(SEED);
        let d0 = params.backoff.delay(0, r.next_u64());
        let d1 = params.backoff.delay(1, r.next_u64());
        assert_eq!(d0, secs(20));
        assert!(d1 > secs(25), "{d1:?}");

        let mut h = H::with_params(vec![addr(1)], params);
        h.connect(secs(0));
        assert_eq!(h.deadline(), Some(secs(20)));
        assert_eq!(
            h.timeout(secs(20)),
            [
                vec![
                    A::Close { conn: ConnId(1) },
                    failed(addr(1), "connection attempt timed out"),
                    A::ResolveNow,
                ],
                state(TransientFailure, Some("connection attempt timed out")),
            ]
            .concat()
        );
        assert_eq!(h.deadline(), Some(secs(40)));
        h.timeout(secs(40));
        assert_eq!(h.sc.state(), Idle);
        // Second pass: the attempt gets the (longer) backoff delay to complete.
        h.connect(secs(50));
        assert_eq!(h.deadline(), Some(secs(50) + d1));
    }

    #[test]
    fn ready_connection_closed_goes_idle_without_reconnecting() {
        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        h.ready(1, secs(1));
        assert_eq!(
            h.closed(1, Status::unavailable("connection reset"), secs(5)),
            [vec![A::ResolveNow], state(Idle, None)].concat()
        );
        assert_eq!(h.sc.ready_conn(), None);
        assert_eq!(h.sc.poll_timeout(), None);
        assert_eq!(h.timeout(secs(1000)), []);
        // The balancer reconnects, with a new connection.
        assert_eq!(
            h.connect(secs(6)),
            [state(Connecting, None), pick(2, addr(1))].concat()
        );
        assert_eq!(h.deadline(), Some(secs(26)));
    }

    #[test]
    fn connect_failed_on_the_ready_connection_counts_as_closed() {
        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        h.ready(1, secs(0));
        assert_eq!(
            h.fail(1, refused(), secs(1)),
            [vec![A::ResolveNow], state(Idle, None)].concat()
        );
    }

    #[test]
    fn closed_while_connecting_tries_the_next_address() {
        let mut h = H::new(vec![addr(1), addr(2)]);
        h.connect(secs(0));
        assert_eq!(
            h.closed(1, Status::unavailable("GOAWAY before SETTINGS"), secs(1)),
            [
                vec![failed(addr(1), "GOAWAY before SETTINGS")],
                pick(2, addr(2))
            ]
            .concat()
        );
    }

    #[test]
    fn update_addresses_keeps_a_connection_to_a_kept_address() {
        let mut h = H::new(vec![addr(1), addr(2)]);
        h.connect(secs(0));
        h.ready(1, secs(0));
        assert_eq!(h.update(vec![addr(3), addr(1)], secs(1)), []);
        assert_eq!(h.sc.state(), Ready);
        assert_eq!(h.sc.ready_conn(), Some(ConnId(1)));
        assert_eq!(h.sc.addresses(), &[addr(3), addr(1)]);
    }

    #[test]
    fn update_addresses_dropping_the_connected_address_restarts() {
        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        h.ready(1, secs(0));
        assert_eq!(
            h.update(vec![addr(2), addr(3)], secs(5)),
            [
                vec![A::Close { conn: ConnId(1) }],
                state(Idle, None),
                state(Connecting, None),
                pick(2, addr(2)),
            ]
            .concat()
        );
        assert_eq!(h.deadline(), Some(secs(25)));
        // The closed connection's late events are ignored.
        assert_eq!(h.closed(1, Status::unavailable("closed"), secs(5)), []);
        assert_eq!(h.sc.state(), Connecting);
    }

    #[test]
    fn update_addresses_while_connecting() {
        let mut h = H::new(vec![addr(1), addr(2)]);
        h.connect(secs(0));
        // The same list: the attempt goes on.
        assert_eq!(h.update(vec![addr(1), addr(2)], secs(1)), []);
        // A new list: the attempt is abandoned and a new pass starts, still CONNECTING.
        assert_eq!(
            h.update(vec![addr(3)], secs(2)),
            [vec![A::Close { conn: ConnId(1) }], pick(2, addr(3))].concat()
        );
        assert_eq!(h.sc.state(), Connecting);
        assert_eq!(h.deadline(), Some(secs(22)));
        assert_eq!(h.ready(1, secs(3)), []);
        // No addresses left: IDLE.
        assert_eq!(
            h.update(vec![], secs(4)),
            [vec![A::Close { conn: ConnId(2) }], state(Idle, None)].concat()
        );
        assert_eq!(h.sc.poll_timeout(), None);
    }

    #[test]
    fn update_addresses_to_empty_while_ready_goes_idle() {
        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        h.ready(1, secs(0));
        assert_eq!(
            h.update(vec![], secs(1)),
            [vec![A::Close { conn: ConnId(1) }], state(Idle, None)].concat()
        );
        assert_eq!(h.sc.ready_conn(), None);
    }

    #[test]
    fn update_addresses_while_idle_or_backing_off_only_stores() {
        let mut h = H::new(vec![addr(1)]);
        assert_eq!(h.update(vec![addr(2)], secs(0)), []);
        assert_eq!(h.sc.addresses(), &[addr(2)]);
        h.connect(secs(0));
        h.fail(1, refused(), secs(0));
        assert_eq!(h.sc.state(), TransientFailure);
        assert_eq!(h.update(vec![addr(3)], secs(0)), []);
        assert_eq!(h.sc.state(), TransientFailure);
        assert_eq!(h.deadline(), Some(secs(1)));
        h.timeout(secs(1));
        // The next pass uses the new list.
        assert_eq!(
            h.connect(secs(2)),
            [state(Connecting, None), pick(2, addr(3))].concat()
        );
    }

    #[test]
    fn reset_backoff_ends_transient_failure_now() {
        let mut h = H::new(vec![addr(1)]);
        for (i, t) in [(1, 0), (2, 10)] {
            h.connect(secs(t));
            h.fail(i, refused(), secs(t));
            if i == 1 {
                h.timeout(secs(1));
            }
        }
        assert_eq!(h.sc.state(), TransientFailure);
        assert!(h.deadline() > Some(secs(11)));
        h.sc.reset_backoff(h.at(secs(10)));
        assert_eq!(h.actions(), state(Idle, Some("connection refused")));
        assert_eq!(h.sc.poll_timeout(), None);
        // The backoff index went back to 0: the next failed pass waits 1 s.
        h.connect(secs(10));
        h.fail(3, refused(), secs(10));
        assert_eq!(h.deadline(), Some(secs(11)));
        // Outside TRANSIENT_FAILURE it only resets the index.
        h.timeout(secs(11));
        h.sc.reset_backoff(h.at(secs(11)));
        assert_eq!(h.actions(), []);
        assert_eq!(h.sc.state(), Idle);
    }

    #[test]
    fn shutdown_closes_the_connection() {
        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        h.sc.shutdown();
        assert_eq!(
            h.actions(),
            [vec![A::Close { conn: ConnId(1) }], state(Shutdown, None)].concat()
        );
        assert_eq!(h.sc.poll_timeout(), None);
        // Everything after is ignored.
        h.sc.shutdown();
        h.sc.reset_backoff(h.at(secs(1)));
        assert_eq!(h.connect(secs(1)), []);
        assert_eq!(h.ready(1, secs(1)), []);
        assert_eq!(h.fail(1, refused(), secs(1)), []);
        assert_eq!(h.timeout(secs(100)), []);
        assert_eq!(h.update(vec![addr(2)], secs(1)), []);
        assert_eq!(h.sc.state(), Shutdown);

        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        h.ready(1, secs(0));
        h.sc.shutdown();
        assert_eq!(
            h.actions(),
            [vec![A::Close { conn: ConnId(1) }], state(Shutdown, None)].concat()
        );

        let mut h = H::new(vec![addr(1)]);
        h.sc.shutdown();
        assert_eq!(h.actions(), state(Shutdown, None));
    }

    #[test]
    fn stale_connection_events_are_ignored() {
        let mut h = H::new(vec![addr(1), addr(2)]);
        h.connect(secs(0));
        h.timeout(secs(20));
        // Conn 1 was abandoned at its deadline; conn 99 never existed.
        assert_eq!(h.ready(1, secs(21)), []);
        assert_eq!(h.fail(1, refused(), secs(21)), []);
        assert_eq!(h.closed(1, refused(), secs(21)), []);
        assert_eq!(h.ready(99, secs(21)), []);
        assert_eq!(h.sc.state(), Connecting);
        assert_eq!(h.deadline(), Some(secs(40)));
        h.ready(2, secs(22));
        assert_eq!(h.closed(1, refused(), secs(23)), []);
        assert_eq!(h.ready(2, secs(23)), []);
        assert_eq!(h.sc.ready_conn(), Some(ConnId(2)));
    }

    #[test]
    fn connect_when_not_idle_has_no_effect() {
        let mut h = H::new(vec![addr(1)]);
        h.connect(secs(0));
        let rng = h.rng.clone();
        assert_eq!(h.connect(secs(1)), []);
        // Not even a random draw.
        assert_eq!(h.rng, rng);
        h.ready(1, secs(1));
        assert_eq!(h.connect(secs(2)), []);
        h.closed(1, refused(), secs(3));
        h.connect(secs(3));
        h.fail(2, refused(), secs(3));
        assert_eq!(h.sc.state(), TransientFailure);
        assert_eq!(h.connect(secs(3)), []);
    }

    #[test]
    fn connect_without_addresses_fails_the_pass() {
        let mut h = H::new(vec![]);
        assert_eq!(
            h.connect(secs(0)),
            [
                state(Connecting, None),
                vec![A::ResolveNow],
                state(TransientFailure, Some("no addresses to connect to")),
            ]
            .concat()
        );
        assert_eq!(h.deadline(), Some(secs(1)));
    }

    #[test]
    fn random_event_sequences_keep_the_invariants() {
        let addresses = [addr(1), addr(2), addr(3)];
        for seed in 0..200 {
            let mut r = Random::new(seed);
            let mut h = H::new(addresses[..1 + r.below(3)].to_vec());
            let mut now = secs(0);
            let mut live: Vec<ConnId> = Vec::new();
            let mut max_conn = 0;
            for _ in 0..60 {
                now += Duration::from_millis(r.below(30_000) as u64);
                let conn = 1 + r.below(max_conn as usize + 1) as u64;
                let actions = match r.below(9) {
                    0 | 1 => h.connect(now),
                    2 => h.ready(conn, now),
                    3 => h.fail(conn, refused(), now),
                    4 => h.closed(conn, refused(), now),
                    5 => h.timeout(now),
                    6 => {
                        let n = r.below(4);
                        let start = r.below(3);
                        let list = (0..n).map(|i| addresses[(start + i) % 3].clone());
                        h.update(list.collect(), now)
                    }
                    7 => {
                        h.sc.reset_backoff(h.at(now));
                        h.actions()
                    }
                    _ => {
                        if r.below(20) == 0 {
                            h.sc.shutdown();
                        }
                        h.actions()
                    }
                };
                for a in actions {
                    match a {
                        A::Connect { conn, .. } => {
                            assert!(conn.0 > max_conn, "ids are never reused");
                            max_conn = conn.0;
                            live.push(conn);
                        }
                        A::Close { conn } => {
                            assert!(live.contains(&conn), "{conn} closed twice or unknown");
                            live.retain(|&c| c != conn);
                        }
                        _ => {}
                    }
                }
                let state = h.sc.state();
                assert_eq!(h.sc.ready_conn().is_some(), state == Ready);
                assert_eq!(
                    h.sc.poll_timeout().is_some(),
                    matches!(state, Connecting | TransientFailure)
                );
                match state {
                    TransientFailure => assert!(h.sc.last_error().is_some()),
                    // Only the IDLE that ends a backoff carries an error.
                    Idle => {}
                    _ => assert_eq!(h.sc.last_error(), None),
                }
                // Every abandoned connection was told to close; the failed ones are
                // the channel's to drop, so only the current one may be live here.
                let current = match &h.sc.phase {
                    Phase::Connecting(p) => Some(p.conn),
                    Phase::Ready { conn, .. } => Some(*conn),
                    _ => None,
                };
                live.retain(|c| Some(*c) == current);
            }
        }
    }
}
