//! Calls the simulator makes: their kinds and shapes, and random workloads from a seed.

use std::time::Duration;

use crate::rng::SimRng;

/// The four kinds of gRPC call; the simulated servers implement each as an echo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// One request, one response (the request echoed).
    Unary,
    /// Many requests, the server answers after the last (echoing them all).
    ClientStream,
    /// One request naming a count and size, that many responses.
    ServerStream,
    /// Each request echoed at once.
    Bidi,
}

impl CallKind {
    /// The method path the simulated servers dispatch on.
    pub fn path(self) -> &'static str {
        match self {
            CallKind::Unary => "/sim.Echo/Unary",
            CallKind::ClientStream => "/sim.Echo/ClientStream",
            CallKind::ServerStream => "/sim.Echo/ServerStream",
            CallKind::Bidi => "/sim.Echo/Bidi",
        }
    }

    /// The kind for a path, if it is one of the echo methods.
    pub fn from_path(path: &str) -> Option<CallKind> {
        [
            CallKind::Unary,
            CallKind::ClientStream,
            CallKind::ServerStream,
            CallKind::Bidi,
        ]
        .into_iter()
        .find(|k| k.path() == path)
    }
}

/// One call of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSpec {
    /// Which channel makes it.
    pub channel: usize,
    /// When it starts (since the start of the run).
    pub start: Duration,
    /// Its kind.
    pub kind: CallKind,
    /// Request messages (payload sizes); one for unary. For server streaming the single
    /// request asks for `responses` messages of `response_size` bytes.
    pub requests: Vec<usize>,
    /// Server streaming: how many responses.
    pub responses: u32,
    /// Server streaming: their payload size.
    pub response_size: u32,
    /// Time between two request messages of a streaming call.
    pub gap: Duration,
    /// Deadline, relative to the start.
    pub deadline: Option<Duration>,
    /// The application cancels the call this long after its start.
    pub cancel_after: Option<Duration>,
    /// Wait for a READY subchannel instead of failing fast.
    pub wait_for_ready: bool,
    /// The server delays its answer by this much (a slow handler).
    pub server_delay: Duration,
    /// Call this method instead of `kind`'s echo method (a user's [`Service`](super::Service)).
    /// The requests are still built from `kind` and `requests`, but the responses are
    /// not checked as echoes: read them with [`Sim::responses`](super::Sim::responses).
    pub method: Option<String>,
}

impl CallSpec {
    /// A unary call on `channel` at `start` with a `size`-byte request.
    pub fn unary(channel: usize, start: Duration, size: usize) -> CallSpec {
        CallSpec {
            channel,
            start,
            kind: CallKind::Unary,
            requests: vec![size],
            responses: 0,
            response_size: 0,
            gap: Duration::ZERO,
            deadline: None,
            cancel_after: None,
            wait_for_ready: false,
            server_delay: Duration::ZERO,
            method: None,
        }
    }
}

fn size(rng: &mut SimRng) -> usize {
    match rng.range(0, 19) {
        0 => rng.range(16 * 1024, 120 * 1024),
        1..=3 => rng.range(1024, 16 * 1024),
        _ => rng.range(0, 200),
    }
}

/// A random call on one of `channels` channels starting at `start`.
pub fn random_call(rng: &mut SimRng, channels: usize, start: Duration) -> CallSpec {
    let kind = match rng.range(0, 3) {
        0 => CallKind::Unary,
        1 => CallKind::ClientStream,
        2 => CallKind::ServerStream,
        _ => CallKind::Bidi,
    };
    let requests = match kind {
        CallKind::Unary | CallKind::ServerStream => vec![size(rng)],
        _ => (0..rng.range(0, 8)).map(|_| size(rng)).collect(),
    };
    CallSpec {
        channel: rng.range(0, channels - 1),
        start,
        kind,
        requests,
        responses: rng.range(0, 10) as u32,
        response_size: size(rng) as u32,
        gap: Duration::from_millis(rng.range(0, 200) as u64),
        deadline: (!rng.percent(20)).then(|| Duration::from_millis(rng.range(20, 6000) as u64)),
        cancel_after: rng
            .percent(10)
            .then(|| Duration::from_millis(rng.range(0, 1000) as u64)),
        wait_for_ready: rng.percent(50),
        server_delay: if rng.percent(15) {
            Duration::from_millis(rng.range(1, 3000) as u64)
        } else {
            Duration::ZERO
        },
        method: None,
    }
}

/// `n` random calls starting within `window`, in start order.
pub fn random_workload(
    rng: &mut SimRng,
    channels: usize,
    n: usize,
    window: Duration,
) -> Vec<CallSpec> {
    let mut calls: Vec<CallSpec> = (0..n)
        .map(|_| {
            let start = Duration::from_millis(rng.range(0, window.as_millis() as usize) as u64);
            random_call(rng, channels, start)
        })
        .collect();
    calls.sort_by_key(|c| c.start);
    calls
}
