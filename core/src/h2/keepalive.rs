//! Keepalive and connection-lifetime timers for one HTTP/2 connection (gRFC A8, gRFC A9).
//!
//! Three independent pieces, each a pure state machine the connection feeds with events
//! and the current time:
//!
//! - [`ClientKeepalive`]: the client's PING-based liveness check (A8). A PING goes out
//!   `time` after the last byte read; if nothing at all is read within `timeout` after
//!   it, the connection is dead. No PINGs while no stream is open, unless permitted.
//! - [`PingPolicy`]: the server's defence against clients that ping too often (A8
//!   "Server Enforcement"), counting ping strikes as grpc-go does.
//! - [`ServerKeepalive`]: the server's connection management (A9): the same liveness
//!   check (regardless of streams), shutdown after `max_connection_idle` without streams,
//!   and shutdown after a jittered `max_connection_age` followed by a hard close once
//!   `max_connection_age_grace` has passed.
//!
//! Timer-driven pieces share one shape: events come in with `now`, `poll_timeout`
//! gives the next instant at which something may be due (the connection arms one timer
//! at the minimum over all its parts), and `handle_timeout(now)` returns at most one
//! action; after acting, the connection asks `poll_timeout` again. A deadline in the
//! past means "due now". Nothing here reads a clock or draws random numbers: the
//! max-connection-age jitter comes from a caller-supplied `u64`.
//!
//! Durations that are "infinite" are `None`. A finite duration so large that the
//! deadline it produces cannot be represented as an [`Instant`] is treated as infinite
//! too, so no input can overflow.

use std::time::{Duration, Instant};

use crate::ErrorCode;

/// Client keepalive timeout when none is configured: gRFC A8's default, long enough for
/// retransmits on lossy links without letting a black-holed connection linger.
pub(crate) const DEFAULT_CLIENT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Smallest client keepalive time; shorter values are raised to it. gRFC A8 makes 10 s a
/// hard client-side floor so a misconfigured fleet cannot flood servers with PINGs
/// (grpc-go clamps the same way in `WithKeepaliveParams`).
pub(crate) const MIN_CLIENT_KEEPALIVE_TIME: Duration = Duration::from_secs(10);

/// Server keepalive time when none is configured: gRFC A9's default, matching the TCP
/// keepalive interval RFC 1122 recommends as a floor.
pub(crate) const DEFAULT_SERVER_KEEPALIVE_TIME: Duration = Duration::from_secs(2 * 60 * 60);

/// Server keepalive timeout when none is configured: gRFC A9's default, the same
/// allowance as the client side.
pub(crate) const DEFAULT_SERVER_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Smallest server keepalive time; shorter values are raised to it, as grpc-go's
/// `KeepaliveParams` does, so a server never pings in a tight loop.
pub(crate) const MIN_SERVER_KEEPALIVE_TIME: Duration = Duration::from_secs(1);

/// Default minimum interval the server accepts between client PINGs (gRFC A8's
/// `PERMIT_KEEPALIVE_TIME`): generous enough for sane keepalive, tight enough to stop
/// abuse.
pub(crate) const DEFAULT_PERMIT_KEEPALIVE_TIME: Duration = Duration::from_secs(5 * 60);

/// Minimum interval between client PINGs when no stream is open and such PINGs are not
/// permitted: gRFC A8 ties it to the TCP keepalive floor, so an idle client may still
/// probe as often as TCP itself would.
pub(crate) const PING_WITHOUT_STREAMS_MIN_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);

/// Ping strikes tolerated before the server gives up on the client; gRFC A8 allows some
/// fuzziness because PINGs have legitimate uses besides keepalive (RTT, BDP).
pub(crate) const MAX_PING_STRIKES: u32 = 2;

/// `max_connection_age` is jittered by ±1/this (±10%, gRFC A9) so connections opened
/// in a burst do not all expire in the same burst again.
pub(crate) const MAX_CONNECTION_AGE_JITTER_DIVISOR: u32 = 10;

/// GOAWAY debug data a server sends with ENHANCE_YOUR_CALM when a client pinged too
/// often; gRFC A8 fixes the exact string so clients can recognise it and back off.
pub(crate) const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// Payload of keepalive PINGs. Any read counts as liveness, so the payload only has to
/// let the connection tell keepalive ACKs apart from its other PINGs (BDP, shutdown).
pub(crate) const KEEPALIVE_PING_PAYLOAD: [u8; 8] = *b"gsnskeep";

/// Reason to report when a connection closes because a keepalive PING went unanswered.
pub(crate) const KEEPALIVE_TIMEOUT_REASON: &str = "keepalive ping timed out";

/// Whether `deadline` exists and has been reached at `now`.
fn reached(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|deadline| deadline <= now)
}

/// The earlier of two optional deadlines, `None` meaning never.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The PING-and-wait liveness check that client (A8) and server (A9) share.
///
/// The next PING is due `interval` after the last read (A8 forbids measuring from the
/// last PING sent: a client whose interval equals the server's permitted minimum would
/// otherwise be struck for pinging early by its own round-trip time). Once a PING is
/// out, any read clears it; otherwise the connection is dead `timeout` after sending.
#[derive(Clone, Debug)]
struct PingTimer {
    /// Time without reads before a PING; `None` disables the check entirely.
    interval: Option<Duration>,
    /// How long a sent PING may go without any read in reply.
    timeout: Duration,
    /// When the last frame was read (initially: when the connection started).
    last_read: Instant,
    /// When the outstanding PING was sent, if one is outstanding.
    ping_sent: Option<Instant>,
}

impl PingTimer {
    fn new(interval: Option<Duration>, timeout: Duration, now: Instant) -> PingTimer {
        PingTimer {
            interval,
            timeout,
            last_read: now,
            ping_sent: None,
        }
    }

    fn on_read(&mut self, now: Instant) {
        // Inputs out of order must not move the clock back and pull the next PING in.
        self.last_read = self.last_read.max(now);
        self.ping_sent = None;
    }

    fn close_deadline(&self) -> Option<Instant> {
        self.ping_sent?.checked_add(self.timeout)
    }

    fn ping_deadline(&self) -> Option<Instant> {
        if self.ping_sent.is_some() {
            // One PING at a time: a second one proves nothing the first does not.
            return None;
        }
        self.last_read.checked_add(self.interval?)
    }

    /// The next deadline; `may_ping` is false while the owner suppresses PINGs.
    fn deadline(&self, may_ping: bool) -> Option<Instant> {
        if self.ping_sent.is_some() {
            self.close_deadline()
        } else if may_ping {
            self.ping_deadline()
        } else {
            None
        }
    }

    fn timed_out(&self, now: Instant) -> bool {
        reached(self.close_deadline(), now)
    }

    /// Records a PING as sent if one is due, and says whether it was.
    fn send_ping_if_due(&mut self, now: Instant) -> bool {
        if reached(self.ping_deadline(), now) {
            self.ping_sent = Some(now);
            true
        } else {
            false
        }
    }
}

/// Client keepalive settings (gRFC A8 `KEEPALIVE_TIME`, `KEEPALIVE_TIMEOUT`,
/// `KEEPALIVE_WITHOUT_CALLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientKeepaliveConfig {
    /// Time without reads before a PING; `None` (infinite, the default) disables
    /// keepalive. Values below 10 s are raised to it (gRFC A8's floor).
    pub time: Option<Duration>,
    /// How long after a PING the client waits for any read before closing.
    pub timeout: Duration,
    /// Whether to ping while no stream is open. Off by default: idle connections are
    /// the bulk of a fleet and pinging them all is the self-inflicted DDoS A8 warns of.
    pub permit_without_stream: bool,
}

impl Default for ClientKeepaliveConfig {
    fn default() -> ClientKeepaliveConfig {
        ClientKeepaliveConfig {
            time: None,
            timeout: DEFAULT_CLIENT_KEEPALIVE_TIMEOUT,
            permit_without_stream: false,
        }
    }
}

/// What [`ClientKeepalive::handle_timeout`] asks the connection to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientKeepaliveAction {
    /// Write a PING carrying [`KEEPALIVE_PING_PAYLOAD`].
    SendPing,
    /// Nothing was read within the timeout after a PING: close the connection, reporting
    /// [`KEEPALIVE_TIMEOUT_REASON`].
    Close,
}

/// The client side of gRFC A8 keepalive, as grpc-go's `http2Client.keepalive` behaves.
///
/// The connection reports every frame read ([`on_read`](Self::on_read)) and every change
/// of the number of open streams ([`on_stream_count`](Self::on_stream_count)). While no
/// stream is open and `permit_without_stream` is off, the check is dormant: no PING, no
/// deadline. When a stream opens after `time` or more without reads, the PING is due at
/// once, so a broken connection is found within `timeout` instead of `time + timeout`
/// (A8); the connection should run [`handle_timeout`](Self::handle_timeout) before
/// writing that stream's HEADERS.
#[derive(Clone, Debug)]
pub(crate) struct ClientKeepalive {
    timer: PingTimer,
    permit_without_stream: bool,
    active_streams: usize,
    closed: bool,
}

impl ClientKeepalive {
    /// A keepalive for a connection established at `now`, with no streams yet.
    pub(crate) fn new(config: ClientKeepaliveConfig, now: Instant) -> ClientKeepalive {
        let interval = config.time.map(|time| time.max(MIN_CLIENT_KEEPALIVE_TIME));
        ClientKeepalive {
            timer: PingTimer::new(interval, config.timeout, now),
            permit_without_stream: config.permit_without_stream,
            active_streams: 0,
            closed: false,
        }
    }

    /// The keepalive time in force after clamping; `None` when keepalive is off.
    #[cfg(test)]
    pub(crate) fn time(&self) -> Option<Duration> {
        self.timer.interval
    }

    /// A frame (of any type) was read: the peer is alive, and the next PING moves to
    /// `time` from now.
    pub(crate) fn on_read(&mut self, now: Instant) {
        self.timer.on_read(now);
    }

    /// A PING ACK was read. It is a read like any other (grpc-go makes no distinction),
    /// so calling this as well as [`on_read`](Self::on_read) for the same frame is
    /// harmless.
    pub(crate) fn on_ping_ack(&mut self, now: Instant) {
        self.timer.on_read(now);
    }

    /// The number of open streams is now `active_streams`.
    ///
    /// `now` is not needed: A8 measures keepalive time from the last read, so opening a
    /// stream must not restart it.
    pub(crate) fn on_stream_count(&mut self, _now: Instant, active_streams: usize) {
        self.active_streams = active_streams;
    }

    fn may_ping(&self) -> bool {
        self.active_streams > 0 || self.permit_without_stream
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do; `None`
    /// while disabled, dormant or closed.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.timer.deadline(self.may_ping())
    }

    /// Acts on the deadlines reached at `now`; `None` if nothing is due yet.
    ///
    /// An outstanding PING still times out after the last stream closes: the peer owes
    /// an answer either way, and an unanswered PING means the connection is dead.
    #[must_use]
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<ClientKeepaliveAction> {
        if self.closed {
            return None;
        }
        if self.timer.timed_out(now) {
            self.closed = true;
            return Some(ClientKeepaliveAction::Close);
        }
        if self.may_ping() && self.timer.send_ping_if_due(now) {
            return Some(ClientKeepaliveAction::SendPing);
        }
        None
    }
}

/// Whether a received GOAWAY is a server's "you ping too often" (gRFC A8): code
/// ENHANCE_YOUR_CALM with debug data exactly `too_many_pings`.
pub(crate) fn is_too_many_pings(code: ErrorCode, debug_data: &[u8]) -> bool {
    code == ErrorCode::EnhanceYourCalm && debug_data == TOO_MANY_PINGS
}

/// The keepalive time to use for the channel's next connection after one was closed for
/// GOAWAY ENHANCE_YOUR_CALM `too_many_pings`: twice the time in force (after the 10 s floor), or infinite
/// (`None`) if doubling overflows or keepalive was already off.
///
/// A8 asks for the configured time to double for new connections; applying this to the
/// previous result on every such GOAWAY compounds, which is what makes the client
/// converge on what the server permits. (grpc-go doubles only the dial-time value,
/// so repeated GOAWAYs do not compound there.)
pub fn keepalive_time_after_too_many_pings(time: Option<Duration>) -> Option<Duration> {
    time?.max(MIN_CLIENT_KEEPALIVE_TIME).checked_mul(2)
}

/// The server's rules for PINGs it receives (gRFC A8 `PERMIT_KEEPALIVE_TIME`,
/// `PERMIT_KEEPALIVE_WITHOUT_CALLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnforcementPolicy {
    /// Minimum interval between client PINGs.
    pub min_time: Duration,
    /// Whether PINGs are welcome while no stream is open; if not, the client may ping
    /// only every 2 hours then.
    pub permit_without_stream: bool,
}

impl Default for EnforcementPolicy {
    fn default() -> EnforcementPolicy {
        EnforcementPolicy {
            min_time: DEFAULT_PERMIT_KEEPALIVE_TIME,
            permit_without_stream: false,
        }
    }
}

/// What the server should do about a PING it received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PingVerdict {
    /// Within policy: answer it.
    Ok,
    /// Too early, but still tolerated: answer it.
    Strike,
    /// Too many strikes: send GOAWAY with this code and debug data and close the
    /// connection immediately (A8: failing the client's RPCs makes the misconfiguration
    /// visible).
    GoAway {
        /// Always [`ErrorCode::EnhanceYourCalm`].
        code: ErrorCode,
        /// Always [`TOO_MANY_PINGS`].
        debug_data: &'static [u8],
    },
}

/// Ping-strike accounting for a server connection, as grpc-go's `handlePing` does it.
///
/// A PING received sooner than the permitted interval after the previous PING is a
/// strike; more than [`MAX_PING_STRIKES`] strikes and the client is misbehaving. Sending
/// HEADERS or DATA forgives everything, since a client may legitimately ping to measure
/// RTT or bandwidth while receiving. Every PING restarts the interval, strikes included
/// (grpc-go; A8's sketch only restarts it on valid PINGs, which strikes out later).
/// Only PINGs without the ACK flag count.
#[derive(Clone, Debug)]
pub(crate) struct PingPolicy {
    policy: EnforcementPolicy,
    /// When the previous PING arrived; `None` at start and after HEADERS or DATA were
    /// sent, so the next PING is always accepted.
    last_ping: Option<Instant>,
    strikes: u32,
}

impl PingPolicy {
    /// A fresh policy for a new connection.
    pub(crate) fn new(policy: EnforcementPolicy) -> PingPolicy {
        PingPolicy {
            policy,
            last_ping: None,
            strikes: 0,
        }
    }

    /// A PING (not an ACK) arrived at `now` while `active_streams` streams were open.
    #[must_use]
    pub(crate) fn on_ping(&mut self, now: Instant, active_streams: usize) -> PingVerdict {
        let Some(previous) = self.last_ping.replace(now) else {
            return PingVerdict::Ok;
        };
        let min_interval = if active_streams == 0 && !self.policy.permit_without_stream {
            PING_WITHOUT_STREAMS_MIN_INTERVAL
        } else {
            self.policy.min_time
        };
        // An interval too long to represent can never have elapsed.
        let too_early = previous
            .checked_add(min_interval)
            .is_none_or(|allowed| allowed > now);
        if !too_early {
            return PingVerdict::Ok;
        }
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes > MAX_PING_STRIKES {
            PingVerdict::GoAway {
                code: ErrorCode::EnhanceYourCalm,
                debug_data: TOO_MANY_PINGS,
            }
        } else {
            PingVerdict::Strike
        }
    }

    /// The server wrote a HEADERS or DATA frame: strikes are forgiven and the next PING
    /// is accepted whenever it comes.
    pub(crate) fn on_data_or_headers_sent(&mut self) {
        self.last_ping = None;
        self.strikes = 0;
    }

    /// Strikes counted since the last HEADERS or DATA sent.
    #[cfg(test)]
    pub(crate) fn strikes(&self) -> u32 {
        self.strikes
    }
}

/// Server connection management settings (gRFC A9). `None` means infinite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerKeepaliveConfig {
    /// Shut down after this long without open streams (counted from the last stream
    /// closing, or from the start). Infinite by default.
    pub max_connection_idle: Option<Duration>,
    /// Shut down after this long, jittered ±10%. Infinite by default.
    pub max_connection_age: Option<Duration>,
    /// Close hard this long after the (jittered) age was reached. Infinite by default.
    pub max_connection_age_grace: Option<Duration>,
    /// Time without reads before a PING, whether or not streams are open. Values below
    /// 1 s are raised to it; `None` disables pinging.
    pub time: Option<Duration>,
    /// How long after a PING the server waits for any read before closing.
    pub timeout: Duration,
}

impl Default for ServerKeepaliveConfig {
    fn default() -> ServerKeepaliveConfig {
        ServerKeepaliveConfig {
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
            time: Some(DEFAULT_SERVER_KEEPALIVE_TIME),
            timeout: DEFAULT_SERVER_KEEPALIVE_TIMEOUT,
        }
    }
}

/// Why a server starts a graceful shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShutdownReason {
    /// No stream for `max_connection_idle`.
    MaxIdle,
    /// The connection reached its jittered `max_connection_age`.
    MaxAge,
}

impl ShutdownReason {
    /// The GOAWAY debug data gRFC A9 prescribes for this reason.
    pub(crate) fn debug_data(self) -> &'static [u8] {
        match self {
            ShutdownReason::MaxIdle => b"max_idle",
            ShutdownReason::MaxAge => b"max_age",
        }
    }
}

/// What [`ServerKeepalive::handle_timeout`] asks the connection to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerKeepaliveAction {
    /// Write a PING carrying [`KEEPALIVE_PING_PAYLOAD`].
    SendPing,
    /// Nothing was read within the timeout after a PING: close the connection, reporting
    /// [`KEEPALIVE_TIMEOUT_REASON`].
    Close,
    /// Begin the two-phase graceful shutdown (GOAWAY with NO_ERROR, last stream id
    /// 2^31-1 and [`ShutdownReason::debug_data`], a PING, then the final GOAWAY).
    StartGracefulShutdown {
        /// Why; selects the GOAWAY debug data.
        reason: ShutdownReason,
    },
    /// The grace period after `max_connection_age` is over: close now, whatever streams
    /// are still open.
    ForceClose,
}

/// Where a server connection is in its managed lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifetime {
    Serving,
    Draining,
    Closed,
}

/// The server side of gRFC A9, as grpc-go's `http2Server.keepalive` behaves.
///
/// Keepalive PINGs go out regardless of open streams and continue while draining, since
/// a dead client can hold streams open through a shutdown. Idle and age each start the
/// graceful shutdown once; whatever started it, the hard close comes at the jittered
/// age plus the grace period, so `max_connection_age + max_connection_age_grace` bounds
/// the connection's life in every case.
#[derive(Clone, Debug)]
pub(crate) struct ServerKeepalive {
    timer: PingTimer,
    max_idle: Option<Duration>,
    /// Since when no stream has been open; `None` while streams are open.
    idle_since: Option<Instant>,
    active_streams: usize,
    age_deadline: Option<Instant>,
    force_close_at: Option<Instant>,
    lifetime: Lifetime,
}

impl ServerKeepalive {
    /// Connection management for a connection accepted at `now`.
    ///
    /// `random` picks this connection's age jitter (any value, e.g. from the adapter's
    /// RNG); the same `random` always gives the same deadlines.
    pub(crate) fn new(config: ServerKeepaliveConfig, now: Instant, random: u64) -> ServerKeepalive {
        let interval = config.time.map(|time| time.max(MIN_SERVER_KEEPALIVE_TIME));
        let age_deadline = config
            .max_connection_age
            .and_then(|age| jittered_age(age, random))
            .and_then(|age| now.checked_add(age));
        let force_close_at = age_deadline
            .zip(config.max_connection_age_grace)
            .and_then(|(deadline, grace)| deadline.checked_add(grace));
        ServerKeepalive {
            timer: PingTimer::new(interval, config.timeout, now),
            max_idle: config.max_connection_idle,
            idle_since: Some(now),
            active_streams: 0,
            age_deadline,
            force_close_at,
            lifetime: Lifetime::Serving,
        }
    }

    /// The keepalive time in force after clamping; `None` when pinging is off.
    #[cfg(test)]
    pub(crate) fn time(&self) -> Option<Duration> {
        self.timer.interval
    }

    /// A frame (of any type) was read: the client is alive.
    pub(crate) fn on_read(&mut self, now: Instant) {
        self.timer.on_read(now);
    }

    /// A PING ACK was read; the same as [`on_read`](Self::on_read).
    pub(crate) fn on_ping_ack(&mut self, now: Instant) {
        self.timer.on_read(now);
    }

    /// The number of open streams is now `active_streams`.
    pub(crate) fn on_stream_count(&mut self, now: Instant, active_streams: usize) {
        if active_streams > 0 {
            self.idle_since = None;
        } else if self.active_streams > 0 {
            // Only the transition counts: a repeated zero must not restart the idle clock.
            self.idle_since = Some(now);
        }
        self.active_streams = active_streams;
    }

    /// The connection began a graceful shutdown on its own (application request, a
    /// GOAWAY of its own): idle and age no longer start one, but the hard close at age
    /// plus grace still applies.
    pub(crate) fn on_shutdown_started(&mut self) {
        if self.lifetime == Lifetime::Serving {
            self.lifetime = Lifetime::Draining;
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        self.idle_since?.checked_add(self.max_idle?)
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do; `None`
    /// when nothing is scheduled.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let lifetime = match self.lifetime {
            Lifetime::Serving => earliest(self.age_deadline, self.idle_deadline()),
            Lifetime::Draining => self.force_close_at,
            Lifetime::Closed => return None,
        };
        earliest(self.timer.deadline(true), lifetime)
    }

    /// Acts on the deadlines reached at `now`; `None` if nothing is due yet.
    #[must_use]
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<ServerKeepaliveAction> {
        match self.lifetime {
            Lifetime::Closed => return None,
            _ if self.timer.timed_out(now) => {
                self.lifetime = Lifetime::Closed;
                return Some(ServerKeepaliveAction::Close);
            }
            Lifetime::Draining if reached(self.force_close_at, now) => {
                self.lifetime = Lifetime::Closed;
                return Some(ServerKeepaliveAction::ForceClose);
            }
            Lifetime::Serving => {
                // Age first: if both are due, it is the stronger reason, and the grace
                // clock is already running.
                let reason = if reached(self.age_deadline, now) {
                    Some(ShutdownReason::MaxAge)
                } else if reached(self.idle_deadline(), now) {
                    Some(ShutdownReason::MaxIdle)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    self.lifetime = Lifetime::Draining;
                    return Some(ServerKeepaliveAction::StartGracefulShutdown { reason });
                }
            }
            Lifetime::Draining => {}
        }
        if self.timer.send_ping_if_due(now) {
            return Some(ServerKeepaliveAction::SendPing);
        }
        None
    }
}

/// `age` moved by a jitter in [-age/10, +age/10) chosen by `random`, as grpc-go's
/// `getJitter` does with its own RNG; `None` if the result overflows (infinite).
///
/// The top 32 bits of `random` scale the jitter span, so any uniform `u64` gives a
/// uniform jitter: `0` gives -10%, `1 << 63` gives exactly `age`, `u64::MAX` just under
/// +10%. 32 bits keep the product within `u128` for any `Duration`.
pub(crate) fn jittered_age(age: Duration, random: u64) -> Option<Duration> {
    let spread = age / MAX_CONNECTION_AGE_JITTER_DIVISOR;
    let span = spread.checked_mul(2)?.as_nanos();
    let fraction = u128::from(random >> 32);
    let offset = duration_from_nanos(span.checked_mul(fraction)? >> 32)?;
    age.checked_sub(spread)?.checked_add(offset)
}

fn duration_from_nanos(nanos: u128) -> Option<Duration> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const HOUR: Duration = Duration::from_secs(60 * 60);

    fn client(
        time: u64,
        timeout: u64,
        permit_without_stream: bool,
        t0: Instant,
    ) -> ClientKeepalive {
        ClientKeepalive::new(
            ClientKeepaliveConfig {
                time: Some(secs(time)),
                timeout: secs(timeout),
                permit_without_stream,
            },
            t0,
        )
    }

    /// A client with one open stream since `t0`.
    fn busy_client(time: u64, timeout: u64, t0: Instant) -> ClientKeepalive {
        let mut ka = client(time, timeout, false, t0);
        ka.on_stream_count(t0, 1);
        ka
    }

    // ---- client keepalive ----

    #[test]
    fn client_pings_after_time_of_silence_and_not_before() {
        let t0 = crate::test_clock::t0();
        let mut ka = busy_client(30, 20, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(30)));
        assert_eq!(ka.handle_timeout(t0 + secs(29)), None);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(30)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(30)),
            Some(ClientKeepaliveAction::SendPing)
        );
        // One PING at a time: next deadline is its timeout, not another PING.
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(50)));
        assert_eq!(ka.handle_timeout(t0 + secs(49)), None);
        assert_eq!(KEEPALIVE_PING_PAYLOAD.len(), 8);
    }

    #[test]
    fn client_read_pushes_ping_back() {
        let t0 = crate::test_clock::t0();
        let mut ka = busy_client(30, 20, t0);
        ka.on_read(t0 + secs(25));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(55)));
        assert_eq!(ka.handle_timeout(t0 + secs(30)), None);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(55)));
        // A read stamped earlier than one already seen does not pull the PING in.
        ka.on_read(t0 + secs(10));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(55)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(55)),
            Some(ClientKeepaliveAction::SendPing)
        );
    }

    #[test]
    fn client_closes_when_ping_unanswered_within_timeout() {
        let t0 = crate::test_clock::t0();
        let mut ka = busy_client(30, 20, t0);
        assert_eq!(
            ka.handle_timeout(t0 + secs(30)),
            Some(ClientKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(50)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(50)),
            Some(ClientKeepaliveAction::Close)
        );
        assert_eq!(KEEPALIVE_TIMEOUT_REASON, "keepalive ping timed out");
        // Closed for good.
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + secs(500)), None);
        ka.on_read(t0 + secs(501));
        assert_eq!(ka.poll_timeout(), None);
    }

    #[test]
    fn client_ack_in_time_prevents_close_and_next_ping_counts_from_ack() {
        let t0 = crate::test_clock::t0();
        let mut ka = busy_client(30, 20, t0);
        assert_eq!(
            ka.handle_timeout(t0 + secs(30)),
            Some(ClientKeepaliveAction::SendPing)
        );
        ka.on_ping_ack(t0 + secs(31));
        // A8: measured from the last read, never from the PING sent.
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(61)));
        assert_eq!(ka.handle_timeout(t0 + secs(50)), None);
        assert_eq!(
            ka.handle_timeout(t0 + secs(61)),
            Some(ClientKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(81)));
    }

    #[test]
    fn client_any_read_while_ping_outstanding_counts_as_liveness() {
        let t0 = crate::test_clock::t0();
        let mut ka = busy_client(30, 20, t0);
        assert_eq!(
            ka.handle_timeout(t0 + secs(30)),
            Some(ClientKeepaliveAction::SendPing)
        );
        ka.on_read(t0 + secs(49));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(79)));
        assert_eq!(ka.handle_timeout(t0 + secs(50)), None);
    }

    #[test]
    fn client_dormant_without_streams() {
        let t0 = crate::test_clock::t0();
        let mut ka = client(30, 20, false, t0);
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + HOUR), None);
        assert_eq!(ka.poll_timeout(), None);
        // Going back to zero streams before the PING is due also suppresses it.
        ka.on_stream_count(t0 + secs(1), 1);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(30)));
        ka.on_stream_count(t0 + secs(2), 0);
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + secs(30)), None);
    }

    #[test]
    fn client_wakes_when_stream_starts_and_pings_at_once_if_overdue() {
        let t0 = crate::test_clock::t0();
        let mut ka = client(30, 20, false, t0);
        assert_eq!(ka.poll_timeout(), None);
        let start = t0 + HOUR;
        ka.on_stream_count(start, 1);
        // Overdue since t0 + 30 s: due now, so the PING goes before the stream's HEADERS.
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(30)));
        assert_eq!(
            ka.handle_timeout(start),
            Some(ClientKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), Some(start + secs(20)));
    }

    #[test]
    fn client_wake_after_recent_read_waits_for_time_since_that_read() {
        let t0 = crate::test_clock::t0();
        let mut ka = client(30, 20, false, t0);
        ka.on_read(t0 + secs(100));
        ka.on_stream_count(t0 + secs(110), 2);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(130)));
        assert_eq!(ka.handle_timeout(t0 + secs(110)), None);
        assert_eq!(
            ka.handle_timeout(t0 + secs(130)),
            Some(ClientKeepaliveAction::SendPing)
        );
    }

    #[test]
    fn client_permit_without_stream_pings_with_no_streams() {
        let t0 = crate::test_clock::t0();
        let mut ka = client(30, 20, true, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(30)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(30)),
            Some(ClientKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(50)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(50)),
            Some(ClientKeepaliveAction::Close)
        );
    }

    #[test]
    fn client_outstanding_ping_still_times_out_after_last_stream_closes() {
        let t0 = crate::test_clock::t0();
        let mut ka = busy_client(30, 20, t0);
        assert_eq!(
            ka.handle_timeout(t0 + secs(30)),
            Some(ClientKeepaliveAction::SendPing)
        );
        ka.on_stream_count(t0 + secs(35), 0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(50)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(50)),
            Some(ClientKeepaliveAction::Close)
        );
    }

    #[test]
    fn client_time_is_clamped_to_ten_seconds() {
        let t0 = crate::test_clock::t0();
        for time in [Duration::ZERO, Duration::from_millis(1), secs(9)] {
            let config = ClientKeepaliveConfig {
                time: Some(time),
                ..ClientKeepaliveConfig::default()
            };
            let mut ka = ClientKeepalive::new(config, t0);
            ka.on_stream_count(t0, 1);
            assert_eq!(ka.time(), Some(MIN_CLIENT_KEEPALIVE_TIME));
            assert_eq!(ka.poll_timeout(), Some(t0 + secs(10)));
            assert_eq!(ka.handle_timeout(t0 + secs(9)), None);
            assert_eq!(
                ka.handle_timeout(t0 + secs(10)),
                Some(ClientKeepaliveAction::SendPing)
            );
            assert_eq!(ka.poll_timeout(), Some(t0 + secs(30)));
        }
        assert_eq!(busy_client(11, 20, t0).poll_timeout(), Some(t0 + secs(11)));
    }

    #[test]
    fn client_disabled_when_time_is_infinite() {
        let t0 = crate::test_clock::t0();
        let config = ClientKeepaliveConfig::default();
        assert_eq!(config.time, None);
        assert_eq!(config.timeout, secs(20));
        assert!(!config.permit_without_stream);
        for time in [None, Some(Duration::MAX)] {
            let mut ka = ClientKeepalive::new(
                ClientKeepaliveConfig {
                    time,
                    permit_without_stream: true,
                    ..config
                },
                t0,
            );
            ka.on_stream_count(t0, 3);
            assert_eq!(ka.poll_timeout(), None);
            assert_eq!(ka.handle_timeout(t0 + 1000 * HOUR), None);
            assert_eq!(ka.poll_timeout(), None);
        }
    }

    #[test]
    fn client_huge_timeout_never_closes_and_never_overflows() {
        let t0 = crate::test_clock::t0();
        let mut ka = ClientKeepalive::new(
            ClientKeepaliveConfig {
                time: Some(secs(10)),
                timeout: Duration::MAX,
                permit_without_stream: true,
            },
            t0,
        );
        assert_eq!(
            ka.handle_timeout(t0 + secs(10)),
            Some(ClientKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + 1000 * HOUR), None);
    }

    #[test]
    fn too_many_pings_goaway_doubles_next_connection_time() {
        assert!(is_too_many_pings(
            ErrorCode::EnhanceYourCalm,
            b"too_many_pings"
        ));
        assert!(!is_too_many_pings(
            ErrorCode::EnhanceYourCalm,
            b"too_many_ping"
        ));
        assert!(!is_too_many_pings(ErrorCode::EnhanceYourCalm, b""));
        assert!(!is_too_many_pings(ErrorCode::NoError, b"too_many_pings"));

        assert_eq!(
            keepalive_time_after_too_many_pings(Some(secs(30))),
            Some(secs(60))
        );
        let twice = keepalive_time_after_too_many_pings(Some(secs(60)));
        assert_eq!(twice, Some(secs(120)));
        assert_eq!(keepalive_time_after_too_many_pings(twice), Some(secs(240)));
        // Doubles the time in force, i.e. after the 10 s floor.
        assert_eq!(
            keepalive_time_after_too_many_pings(Some(secs(1))),
            Some(secs(20))
        );
        // min(time * 2, infinity): saturates to infinite instead of overflowing.
        assert_eq!(
            keepalive_time_after_too_many_pings(Some(Duration::MAX)),
            None
        );
        assert_eq!(keepalive_time_after_too_many_pings(None), None);

        let t0 = crate::test_clock::t0();
        let next = ClientKeepaliveConfig {
            time: keepalive_time_after_too_many_pings(Some(secs(30))),
            ..ClientKeepaliveConfig::default()
        };
        let mut ka = ClientKeepalive::new(next, t0);
        ka.on_stream_count(t0, 1);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(60)));
    }

    // ---- server ping enforcement ----

    fn policy(min_time: Duration, permit_without_stream: bool) -> PingPolicy {
        PingPolicy::new(EnforcementPolicy {
            min_time,
            permit_without_stream,
        })
    }

    const GOAWAY_TOO_MANY_PINGS: PingVerdict = PingVerdict::GoAway {
        code: ErrorCode::EnhanceYourCalm,
        debug_data: b"too_many_pings",
    };

    #[test]
    fn enforcement_defaults() {
        let policy = EnforcementPolicy::default();
        assert_eq!(policy.min_time, secs(300));
        assert!(!policy.permit_without_stream);
        assert_eq!(MAX_PING_STRIKES, 2);
    }

    #[test]
    fn pings_at_min_time_are_fine() {
        let t0 = crate::test_clock::t0();
        let mut p = PingPolicy::new(EnforcementPolicy::default());
        for i in 0..10 {
            assert_eq!(p.on_ping(t0 + i * secs(300), 1), PingVerdict::Ok);
        }
        assert_eq!(p.strikes(), 0);
    }

    #[test]
    fn pings_faster_than_min_time_strike_out_on_the_third_strike() {
        let t0 = crate::test_clock::t0();
        let mut p = policy(secs(60), false);
        assert_eq!(p.on_ping(t0, 1), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + secs(59), 1), PingVerdict::Strike);
        assert_eq!(p.strikes(), 1);
        // Each PING restarts the interval, strikes included (grpc-go).
        assert_eq!(p.on_ping(t0 + secs(118), 1), PingVerdict::Strike);
        assert_eq!(p.strikes(), 2);
        assert_eq!(p.on_ping(t0 + secs(177), 1), GOAWAY_TOO_MANY_PINGS);
        assert_eq!(p.strikes(), 3);
        // A valid PING does not forgive strikes.
        assert_eq!(p.on_ping(t0 + secs(1000), 1), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + secs(1001), 1), GOAWAY_TOO_MANY_PINGS);
    }

    #[test]
    fn strikes_reset_by_sent_data_or_headers() {
        let t0 = crate::test_clock::t0();
        let mut p = policy(secs(60), false);
        assert_eq!(p.on_ping(t0, 1), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + secs(1), 1), PingVerdict::Strike);
        assert_eq!(p.on_ping(t0 + secs(2), 1), PingVerdict::Strike);
        p.on_data_or_headers_sent();
        assert_eq!(p.strikes(), 0);
        // The next PING is accepted however soon it comes, and restarts the interval.
        assert_eq!(p.on_ping(t0 + secs(3), 1), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + secs(4), 1), PingVerdict::Strike);
        assert_eq!(p.on_ping(t0 + secs(5), 1), PingVerdict::Strike);
        assert_eq!(p.on_ping(t0 + secs(6), 1), GOAWAY_TOO_MANY_PINGS);
    }

    #[test]
    fn two_hour_rule_without_streams() {
        let t0 = crate::test_clock::t0();
        let mut p = policy(secs(60), false);
        assert_eq!(p.on_ping(t0, 0), PingVerdict::Ok);
        // Well past min_time, but no stream is open: two hours apply.
        assert_eq!(p.on_ping(t0 + secs(600), 0), PingVerdict::Strike);
        let t1 = t0 + secs(600);
        assert_eq!(p.on_ping(t1 + 2 * HOUR - secs(1), 0), PingVerdict::Strike);
        let t2 = t1 + 2 * HOUR - secs(1);
        assert_eq!(p.on_ping(t2 + 2 * HOUR, 0), PingVerdict::Ok);
        // With a stream open, min_time applies again.
        assert_eq!(p.on_ping(t2 + 2 * HOUR + secs(60), 1), PingVerdict::Ok);
        assert_eq!(p.strikes(), 2);
    }

    #[test]
    fn permit_without_stream_uses_min_time_with_no_streams() {
        let t0 = crate::test_clock::t0();
        let mut p = policy(secs(60), true);
        assert_eq!(p.on_ping(t0, 0), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + secs(60), 0), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + secs(61), 0), PingVerdict::Strike);
    }

    #[test]
    fn infinite_min_time_strikes_every_repeat_ping_without_overflow() {
        let t0 = crate::test_clock::t0();
        let mut p = policy(Duration::MAX, true);
        assert_eq!(p.on_ping(t0, 1), PingVerdict::Ok);
        assert_eq!(p.on_ping(t0 + 1000 * HOUR, 1), PingVerdict::Strike);
    }

    // ---- server connection management ----

    fn server(config: ServerKeepaliveConfig, t0: Instant) -> ServerKeepalive {
        // Exactly the configured age: the middle of the jitter range.
        ServerKeepalive::new(config, t0, 1 << 63)
    }

    /// No keepalive PINGs, so lifetime deadlines show alone.
    fn no_pings() -> ServerKeepaliveConfig {
        ServerKeepaliveConfig {
            time: None,
            ..ServerKeepaliveConfig::default()
        }
    }

    fn start(reason: ShutdownReason) -> Option<ServerKeepaliveAction> {
        Some(ServerKeepaliveAction::StartGracefulShutdown { reason })
    }

    #[test]
    fn server_defaults_are_infinite_except_keepalive() {
        let config = ServerKeepaliveConfig::default();
        assert_eq!(config.max_connection_idle, None);
        assert_eq!(config.max_connection_age, None);
        assert_eq!(config.max_connection_age_grace, None);
        assert_eq!(config.time, Some(2 * HOUR));
        assert_eq!(config.timeout, secs(20));
        let t0 = crate::test_clock::t0();
        let ka = server(config, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + 2 * HOUR));
    }

    #[test]
    fn server_pings_without_streams_and_closes_after_timeout() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            time: Some(secs(60)),
            timeout: secs(10),
            ..ServerKeepaliveConfig::default()
        };
        let mut ka = server(config, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(60)));
        ka.on_read(t0 + secs(30));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(90)));
        assert_eq!(ka.handle_timeout(t0 + secs(89)), None);
        assert_eq!(
            ka.handle_timeout(t0 + secs(90)),
            Some(ServerKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(100)));
        ka.on_ping_ack(t0 + secs(95));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(155)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(155)),
            Some(ServerKeepaliveAction::SendPing)
        );
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(165)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(165)),
            Some(ServerKeepaliveAction::Close)
        );
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + 100 * HOUR), None);
    }

    #[test]
    fn server_time_is_clamped_to_one_second() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            time: Some(Duration::from_millis(10)),
            ..ServerKeepaliveConfig::default()
        };
        let ka = server(config, t0);
        assert_eq!(ka.time(), Some(MIN_SERVER_KEEPALIVE_TIME));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(1)));
    }

    #[test]
    fn server_idle_counts_from_start() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_idle: Some(secs(100)),
            ..no_pings()
        };
        let mut ka = server(config, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(100)));
        // Reads are not streams: they do not keep the connection out of idleness.
        ka.on_read(t0 + secs(50));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(100)));
        assert_eq!(ka.handle_timeout(t0 + secs(99)), None);
        assert_eq!(
            ka.handle_timeout(t0 + secs(100)),
            start(ShutdownReason::MaxIdle)
        );
        assert_eq!(ShutdownReason::MaxIdle.debug_data(), b"max_idle");
        // Started once; no age configured, so nothing more to do.
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + secs(200)), None);
    }

    #[test]
    fn server_idle_shutdown_only_after_last_stream_closes() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_idle: Some(secs(100)),
            ..no_pings()
        };
        let mut ka = server(config, t0);
        ka.on_stream_count(t0 + secs(10), 1);
        assert_eq!(ka.poll_timeout(), None);
        ka.on_stream_count(t0 + secs(20), 2);
        assert_eq!(ka.handle_timeout(t0 + secs(500)), None);
        ka.on_stream_count(t0 + secs(600), 1);
        assert_eq!(ka.poll_timeout(), None);
        ka.on_stream_count(t0 + secs(700), 0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(800)));
        // A repeated zero does not restart the idle clock.
        ka.on_stream_count(t0 + secs(750), 0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(800)));
        assert_eq!(ka.handle_timeout(t0 + secs(799)), None);
        assert_eq!(
            ka.handle_timeout(t0 + secs(800)),
            start(ShutdownReason::MaxIdle)
        );
    }

    #[test]
    fn age_jitter_is_within_ten_percent_and_deterministic() {
        let age = secs(100);
        assert_eq!(jittered_age(age, 0), Some(secs(90)));
        assert_eq!(jittered_age(age, 1 << 63), Some(secs(100)));
        assert_eq!(jittered_age(age, 1 << 62), Some(secs(95)));
        assert_eq!(
            jittered_age(age, u64::MAX),
            Some(Duration::from_nanos(109_999_999_995))
        );
        // Only the top 32 bits matter.
        assert_eq!(jittered_age(age, u64::from(u32::MAX)), Some(secs(90)));
        let mut random = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..1000 {
            random = random
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let jittered = jittered_age(age, random);
            assert_eq!(jittered, jittered_age(age, random));
            let jittered = jittered.unwrap_or(Duration::ZERO);
            assert!(jittered >= secs(90) && jittered < secs(110), "{jittered:?}");
        }
        assert_eq!(jittered_age(Duration::ZERO, u64::MAX), Some(Duration::ZERO));
        // Near Duration::MAX the +10% side overflows: infinite, not a panic.
        assert_eq!(jittered_age(Duration::MAX, u64::MAX), None);
        assert!(jittered_age(Duration::MAX, 0).is_some());
    }

    #[test]
    fn server_age_with_jitter_then_grace_then_force_close() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_age: Some(secs(1000)),
            max_connection_age_grace: Some(secs(30)),
            ..no_pings()
        };
        for (random, age) in [(0, secs(900)), (1 << 63, secs(1000)), (3 << 62, secs(1050))] {
            let mut ka = ServerKeepalive::new(config, t0, random);
            ka.on_stream_count(t0, 1);
            assert_eq!(ka.poll_timeout(), Some(t0 + age));
            assert_eq!(ka.handle_timeout(t0 + age - secs(1)), None);
            assert_eq!(ka.handle_timeout(t0 + age), start(ShutdownReason::MaxAge));
            assert_eq!(ka.poll_timeout(), Some(t0 + age + secs(30)));
            assert_eq!(ka.handle_timeout(t0 + age + secs(29)), None);
            assert_eq!(
                ka.handle_timeout(t0 + age + secs(30)),
                Some(ServerKeepaliveAction::ForceClose)
            );
            assert_eq!(ka.poll_timeout(), None);
            assert_eq!(ka.handle_timeout(t0 + 10 * age), None);
        }
        assert_eq!(ShutdownReason::MaxAge.debug_data(), b"max_age");
    }

    #[test]
    fn server_age_beats_idle_and_late_handling_does_not_extend_grace() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_idle: Some(secs(100)),
            max_connection_age: Some(secs(100)),
            max_connection_age_grace: Some(secs(10)),
            ..no_pings()
        };
        let mut ka = server(config, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(100)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(500)),
            start(ShutdownReason::MaxAge)
        );
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(110)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(500)),
            Some(ServerKeepaliveAction::ForceClose)
        );
    }

    #[test]
    fn server_idle_drain_still_force_closes_at_age_plus_grace() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_idle: Some(secs(10)),
            max_connection_age: Some(secs(100)),
            max_connection_age_grace: Some(secs(5)),
            ..no_pings()
        };
        let mut ka = server(config, t0);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(10)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(10)),
            start(ShutdownReason::MaxIdle)
        );
        // A stream that raced the first GOAWAY keeps the connection draining; the age
        // does not start a second shutdown, but the hard close still comes.
        ka.on_stream_count(t0 + secs(11), 1);
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(105)));
        assert_eq!(ka.handle_timeout(t0 + secs(100)), None);
        assert_eq!(
            ka.handle_timeout(t0 + secs(105)),
            Some(ServerKeepaliveAction::ForceClose)
        );
    }

    #[test]
    fn server_shutdown_started_elsewhere_suppresses_idle_and_age() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_idle: Some(secs(10)),
            max_connection_age: Some(secs(100)),
            max_connection_age_grace: Some(secs(5)),
            time: Some(secs(60)),
            timeout: secs(20),
        };
        let mut ka = server(config, t0);
        ka.on_shutdown_started();
        // Keepalive continues while draining.
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(60)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(60)),
            Some(ServerKeepaliveAction::SendPing)
        );
        ka.on_read(t0 + secs(61));
        assert_eq!(ka.poll_timeout(), Some(t0 + secs(105)));
        assert_eq!(
            ka.handle_timeout(t0 + secs(105)),
            Some(ServerKeepaliveAction::ForceClose)
        );
        ka.on_shutdown_started();
        assert_eq!(ka.poll_timeout(), None);
    }

    #[test]
    fn server_infinite_durations_never_fire_and_never_overflow() {
        let t0 = crate::test_clock::t0();
        let config = ServerKeepaliveConfig {
            max_connection_idle: Some(Duration::MAX),
            max_connection_age: Some(Duration::MAX),
            max_connection_age_grace: Some(Duration::MAX),
            time: Some(Duration::MAX),
            timeout: Duration::MAX,
        };
        for random in [0, 1 << 63, u64::MAX] {
            let mut ka = ServerKeepalive::new(config, t0, random);
            assert_eq!(ka.poll_timeout(), None);
            assert_eq!(ka.handle_timeout(t0 + 1000 * HOUR), None);
            ka.on_stream_count(t0 + HOUR, 1);
            ka.on_stream_count(t0 + 2 * HOUR, 0);
            assert_eq!(ka.poll_timeout(), None);
        }
        // Finite age with infinite grace: shutdown, then never a hard close.
        let config = ServerKeepaliveConfig {
            max_connection_age: Some(secs(100)),
            ..no_pings()
        };
        let mut ka = server(config, t0);
        assert_eq!(
            ka.handle_timeout(t0 + secs(100)),
            start(ShutdownReason::MaxAge)
        );
        assert_eq!(ka.poll_timeout(), None);
        assert_eq!(ka.handle_timeout(t0 + 1000 * HOUR), None);
    }
}
