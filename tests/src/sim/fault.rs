//! Faults the simulator injects, and random fault schedules drawn from a seed.

use std::fmt;
use std::time::Duration;

use crate::rng::SimRng;

/// What the resolver answers after a resolver fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolverFault {
    /// A new address list: the hosts whose bit is set in the mask (at least one).
    Hosts(u32),
    /// An empty address list.
    Empty,
    /// A resolution error.
    Error,
}

/// One fault. Links are picked among the live ones by `pick` (modulo their number),
/// hosts by index (modulo the number of hosts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The host refuses new connections for a while.
    Refuse {
        /// Host index.
        host: usize,
        /// How long.
        duration: Duration,
    },
    /// Connection attempts to the host never complete for a while.
    Blackhole {
        /// Host index.
        host: usize,
        /// How long.
        duration: Duration,
    },
    /// The host accepts connections but its server never speaks (not even the
    /// HTTP/2 preface) for a while: the handshake must time out.
    Mute {
        /// Host index.
        host: usize,
        /// How long.
        duration: Duration,
    },
    /// A live connection is reset: in-flight bytes are lost, both ends read EOF.
    Reset {
        /// Which live link.
        pick: u64,
    },
    /// The server behind a live connection vanishes silently: the link drops every byte
    /// both ways and never delivers EOF (only keepalive can tell).
    HalfOpen {
        /// Which live link.
        pick: u64,
    },
    /// The host's process restarts: every connection is reset and new ones are refused
    /// until it is back.
    Restart {
        /// Host index.
        host: usize,
        /// How long it is down.
        down: Duration,
    },
    /// Graceful shutdown (two-phase GOAWAY) of every connection of the host.
    GoawayGraceful {
        /// Host index.
        host: usize,
    },
    /// Immediate GOAWAY of every connection of the host: NO_ERROR, or ENHANCE_YOUR_CALM.
    GoawayImmediate {
        /// Host index.
        host: usize,
        /// ENHANCE_YOUR_CALM instead of NO_ERROR.
        calm: bool,
    },
    /// The host's handlers stop reading requests for a while (the client's window fills).
    SlowReader {
        /// Host index.
        host: usize,
        /// How long.
        duration: Duration,
    },
    /// A channel's application stops taking responses and statuses for a while: its
    /// connections' receive windows fill and the client must stop reading. Not drawn
    /// by [`random_fault`] (so the plans existing seeds draw stay as they were);
    /// [`Scenario::from_seed`](super::Scenario::from_seed) adds it from a stream of
    /// its own.
    SlowClient {
        /// Channel index (modulo the number of channels).
        channel: usize,
        /// How long.
        duration: Duration,
    },
    /// A live link delivers its next `bytes` bytes one byte per write and read.
    OneByte {
        /// Which live link.
        pick: u64,
        /// How many bytes.
        bytes: usize,
    },
    /// The resolver answers something new (pushed to every resolving channel).
    Resolver(ResolverFault),
    /// Virtual time jumps forward at once (a paused VM): timers fire late.
    ClockJump(Duration),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A fault at a time since the start of the run.
pub type Scheduled = (Duration, Fault);

fn ms(rng: &mut SimRng, lo: usize, hi: usize) -> Duration {
    Duration::from_millis(rng.range(lo, hi) as u64)
}

/// A random fault: every kind is equally likely.
pub fn random_fault(rng: &mut SimRng, hosts: usize) -> Fault {
    let host = rng.range(0, hosts - 1);
    let pick = rng.next_u64();
    match rng.range(0, 12) {
        0 => Fault::Refuse {
            host,
            duration: ms(rng, 100, 5000),
        },
        1 => Fault::Blackhole {
            host,
            duration: ms(rng, 100, 5000),
        },
        2 => Fault::Reset { pick },
        3 => Fault::HalfOpen { pick },
        4 => Fault::Restart {
            host,
            down: ms(rng, 10, 3000),
        },
        5 => Fault::GoawayGraceful { host },
        6 => Fault::GoawayImmediate { host, calm: false },
        7 => Fault::GoawayImmediate { host, calm: true },
        8 => Fault::SlowReader {
            host,
            duration: ms(rng, 500, 8000),
        },
        9 => Fault::OneByte {
            pick,
            bytes: rng.range(1, 3000),
        },
        10 => Fault::Resolver(match rng.range(0, 3) {
            0 => ResolverFault::Empty,
            1 => ResolverFault::Error,
            _ => ResolverFault::Hosts(rng.range(1, (1 << hosts) - 1) as u32),
        }),
        11 => Fault::ClockJump(ms(rng, 200, 8000)),
        _ => Fault::Mute {
            host,
            duration: ms(rng, 100, 5000),
        },
    }
}

/// A random schedule: up to `max` faults at random times within `window`, in order.
pub fn random_plan(rng: &mut SimRng, hosts: usize, max: usize, window: Duration) -> Vec<Scheduled> {
    let n = rng.range(0, max);
    let mut plan: Vec<Scheduled> = (0..n)
        .map(|_| {
            let at = Duration::from_millis(rng.range(0, window.as_millis() as usize) as u64);
            (at, random_fault(rng, hosts))
        })
        .collect();
    plan.sort_by_key(|(at, _)| *at);
    plan
}
