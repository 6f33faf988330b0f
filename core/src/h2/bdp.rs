//! Bandwidth-delay product (BDP) estimation, to grow the receive windows to what the link
//! carries: the method of grpc-go's `bdpEstimator`, with time passed in.
//!
//! When DATA starts arriving we send a PING and count the DATA octets received until its
//! ACK. On a link kept busy by the sender, that count is about what is in flight in one
//! round trip, the BDP.
//!
//! One departure from grpc-go: a measurement starts only once a quarter of the estimate
//! has arrived since the last one ended. grpc-go starts one at the first DATA after each
//! ACK, so a connection carrying one call at a time sends a PING (and the WINDOW_UPDATE
//! flushed before it) and gets an ACK for every response: a third of the frames on the wire
//! and about a tenth of both sides' CPU per call, measured with `loadgen` against tonic's
//! server, whose ACK also costs it a write of its own. Such a measurement can never grow
//! the windows (its sample is far below BETA of the estimate). A flow the window holds back
//! delivers a whole window per round trip, so it crosses the quarter within the first round
//! trip and loses at most that share of its first sample: three quarters of the window
//! still clear BETA (0.66), where half would not. (At the initial 64 KiB window one full
//! 16 KiB frame is a quarter: such a flow loses nothing.) When the window, not the link,
//! seems to be what limits the sender, the windows grow to a multiple of the count, up to
//! 16 MiB.
//!
//! All arithmetic is on integers (nanoseconds, octets), so the same inputs give the same
//! outputs on every platform; grpc-go's ratios become exact fractions.

use std::time::{Duration, Instant};

/// Ceiling for the windows grown here: 16 MiB. TCP stacks commonly cap their receive
/// buffers around 4 MiB and some at 16 MiB; as a ceiling it can be generous, since a window
/// only costs memory when the peer fills it.
const BDP_LIMIT: u32 = 16 << 20;

/// The first `RTT_BOOTSTRAP_SAMPLES - 1` RTT samples (nine) are averaged with equal weight,
/// so that one early outlier (a PING queued behind the handshake, say) cannot dominate the
/// start; from the tenth on, each new sample weighs ALPHA.
const RTT_BOOTSTRAP_SAMPLES: u64 = 10;

/// ALPHA = 9/10: weight of each new RTT sample once bootstrapped. High, so the estimate
/// follows a change of route or load within a sample or two.
const ALPHA_NUM: i128 = 9;
/// Denominator of ALPHA.
const ALPHA_DEN: i128 = 10;

/// BETA = 66/100: a sample must reach this share of the current estimate for the windows
/// to grow. After a growth, a sender held back by its window delivers about the whole new
/// window per round trip (a sample near the estimate), while one held back by the link goes
/// on delivering what it did (a sample near estimate / GAMMA). BETA lies between 1/GAMMA and
/// 1 with a margin on both sides (0.66 is grpc-go's value), so the first case keeps growing
/// and the second stops: a larger window would then only let more data queue in the
/// network.
const BETA_NUM: u64 = 66;
/// Denominator of BETA.
const BETA_DEN: u64 = 100;

/// A measurement starts once 1/IDLE_SHARE of the estimate has arrived since the last one
/// ended (see the module notes).
const IDLE_SHARE: u64 = 4;

/// GAMMA = 2: the new estimate is twice the sample. Doubling leaves the sender room to reveal
/// bandwidth the old window hid, so the search is geometric (a few round trips from 64 KiB to
/// megabytes). Since a sample is at most 1.5 times the true BDP, 4/3 would keep the window
/// within twice the true BDP; 2 rounds that up in favour of throughput.
const GAMMA: u64 = 2;

/// Where the estimator is in its one-ping-at-a-time measurement cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cycle {
    /// No measurement: the next DATA starts one.
    Idle,
    /// Measuring; the caller was asked for a PING that is not written yet.
    PingDue,
    /// Measuring; the PING went out at this instant.
    PingSent(Instant),
}

/// Bandwidth as a fraction, octets per nanosecond, compared exactly by cross-multiplying.
/// (grpc-go divides by 1.5 times the RTT; a constant factor cancels out of every comparison,
/// which is all bandwidth is used for.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bandwidth {
    octets: u64,
    /// Never 0.
    nanos: u64,
}

impl Bandwidth {
    /// `self >= other`.
    fn at_least(self, other: Bandwidth) -> bool {
        u128::from(self.octets) * u128::from(other.nanos)
            >= u128::from(other.octets) * u128::from(self.nanos)
    }
}

/// The BDP estimator of one connection (grpc-go's `bdpEstimator`). Feed it every DATA
/// frame, write the PING it asks for, pass back the ACK; it says when to grow the windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BdpEstimator {
    /// Current estimate: the receive window it asked for last.
    bdp: u32,
    cycle: Cycle,
    /// DATA octets since the measurement began, the triggering frame included.
    sample: u64,
    /// DATA octets since the last measurement ended (or the estimator began), while no
    /// measurement runs.
    idle: u64,
    /// RTT samples taken.
    rtt_samples: u64,
    /// Smoothed RTT.
    rtt_nanos: u64,
    /// Highest bandwidth measured so far.
    max_bandwidth: Bandwidth,
}

impl BdpEstimator {
    /// The 8-byte payload that marks a PING (and its ACK) as the estimator's. It must differ
    /// from every other PING payload the connection uses.
    pub(crate) const PING_PAYLOAD: [u8; 8] = *b"gsns-bdp";

    /// `initial` is the current receive window, where the estimate starts. An estimator
    /// started at or above 16 MiB never asks for a PING.
    pub(crate) fn new(initial: u32) -> Self {
        BdpEstimator {
            bdp: initial,
            cycle: Cycle::Idle,
            sample: 0,
            idle: 0,
            rtt_samples: 0,
            rtt_nanos: 0,
            max_bandwidth: Bandwidth {
                octets: 0,
                nanos: 1,
            },
        }
    }

    /// A DATA frame of `n` flow-controlled octets arrived, on any stream. Returns true when
    /// the caller must send a PING with [`PING_PAYLOAD`](Self::PING_PAYLOAD) now: for the
    /// DATA that brings what arrived since the last measurement ended to a quarter of the
    /// estimate. No new measurement starts until that PING is reported written
    /// ([`on_ping_sent`](Self::on_ping_sent)) and acknowledged. An empty frame (END_STREAM
    /// alone) starts nothing: it usually ends the flow, so its sample would be near zero
    /// and the PING wasted.
    pub(crate) fn on_data(&mut self, n: u32) -> bool {
        if self.bdp >= BDP_LIMIT {
            return false;
        }
        if self.cycle == Cycle::Idle {
            self.idle = self.idle.saturating_add(u64::from(n));
            if n == 0 || self.idle < u64::from(self.bdp) / IDLE_SHARE {
                return false;
            }
            self.idle = 0;
            self.cycle = Cycle::PingDue;
            self.sample = u64::from(n);
            return true;
        }
        self.sample = self.sample.saturating_add(u64::from(n));
        false
    }

    /// The PING asked for by [`on_data`](Self::on_data) was written at `now` (the writer
    /// calls this, so queueing before the write is not counted as network delay). Ignored
    /// when no PING was asked for, or this one was already reported.
    pub(crate) fn on_ping_sent(&mut self, now: Instant) {
        if self.cycle == Cycle::PingDue {
            self.cycle = Cycle::PingSent(now);
        }
    }

    /// The ACK of our PING arrived at `now`, which ends the measurement. Returns the new
    /// receive window when it must grow: the caller then raises the connection window and
    /// every stream window to it and sends it as SETTINGS_INITIAL_WINDOW_SIZE, as grpc-go
    /// does. An ACK with no PING written is ignored.
    pub(crate) fn on_ping_ack(&mut self, now: Instant) -> Option<u32> {
        let Cycle::PingSent(sent_at) = self.cycle else {
            return None;
        };
        self.cycle = Cycle::Idle;
        self.add_rtt_sample(now.saturating_duration_since(sent_at));

        // A 0 RTT means faster than the clock can tell: count it as its smallest tick.
        let bandwidth = Bandwidth {
            octets: self.sample,
            nanos: self.rtt_nanos.max(1),
        };
        // A larger sample at a lower bandwidth means the RTT grew with it: the extra data
        // sat in a queue, and a larger window would only lengthen that queue. So the
        // windows grow only at the highest bandwidth seen.
        if !bandwidth.at_least(self.max_bandwidth) {
            return None;
        }
        self.max_bandwidth = bandwidth;

        let enough = u128::from(self.sample) * u128::from(BETA_DEN)
            >= u128::from(self.bdp) * u128::from(BETA_NUM);
        if !enough || self.bdp >= BDP_LIMIT {
            return None;
        }
        let grown = self.sample.saturating_mul(GAMMA).min(u64::from(BDP_LIMIT));
        let grown = u32::try_from(grown).unwrap_or(BDP_LIMIT);
        if grown <= self.bdp {
            return None;
        }
        self.bdp = grown;
        Some(grown)
    }

    /// The current estimate: the receive window last asked for, or the initial one.
    #[cfg(test)]
    pub(crate) fn estimate(&self) -> u32 {
        self.bdp
    }

    fn add_rtt_sample(&mut self, rtt: Duration) {
        let sample = i128::from(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
        let smoothed = i128::from(self.rtt_nanos);
        self.rtt_samples = self.rtt_samples.saturating_add(1);
        let next = if self.rtt_samples < RTT_BOOTSTRAP_SAMPLES {
            // Running mean: the n-th sample moves it by 1/n of the difference.
            smoothed + (sample - smoothed) / i128::from(self.rtt_samples)
        } else {
            smoothed + (sample - smoothed) * ALPHA_NUM / ALPHA_DEN
        };
        self.rtt_nanos = u64::try_from(next.max(0)).unwrap_or(u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::DEFAULT_INITIAL_WINDOW_SIZE;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One measurement: `octets` of DATA under a PING written at `at`, acknowledged `rtt` later.
    fn measure(e: &mut BdpEstimator, octets: u32, at: Instant, rtt: Duration) -> Option<u32> {
        assert!(e.on_data(octets), "a measurement was already running");
        e.on_ping_sent(at);
        e.on_ping_ack(at + rtt)
    }

    #[test]
    fn ping_payload_is_not_the_keepalive_one() {
        assert_ne!(
            BdpEstimator::PING_PAYLOAD,
            crate::h2::keepalive::KEEPALIVE_PING_PAYLOAD
        );
    }

    #[test]
    fn a_ping_waits_for_a_quarter_of_the_estimate_and_one_runs_at_a_time() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(65_535);
        assert!(!e.on_data(0), "an empty frame starts no measurement");
        assert!(!e.on_data(100), "100 of the 16,383 octets that start one");
        assert!(
            e.on_data(16_283),
            "16,383 octets since the start: a measurement"
        );
        assert_eq!(
            e.sample, 16_283,
            "the sample counts from the frame that asked"
        );
        assert!(!e.on_data(100_000), "PING asked for, not yet written");
        e.on_ping_sent(t0);
        assert!(!e.on_data(100_000), "PING outstanding");
        assert_eq!(e.on_ping_ack(t0 + ms(10)), Some(432_566));
        // The count starts again when a measurement ends, at the grown estimate.
        assert!(!e.on_data(108_140));
        assert!(e.on_data(1), "108,141 octets: a quarter of 432,566");
    }

    #[test]
    fn responses_one_at_a_time_ask_for_a_ping_per_quarter_of_the_window() {
        // One 25-octet response per round trip, as a unary call at a time gets: grpc-go
        // would measure after every response, here every 656th asks. (4 KiB responses:
        // every fourth.)
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(65_535);
        let mut pings = Vec::new();
        for i in 0..2_000u64 {
            let at = t0 + ms(i);
            if e.on_data(25) {
                pings.push(i);
                e.on_ping_sent(at);
            }
            assert_eq!(e.on_ping_ack(at + Duration::from_micros(100)), None);
        }
        assert_eq!(pings, [655, 1_311, 1_967]);
    }

    #[test]
    fn a_full_frame_asks_for_a_ping_at_once() {
        let mut e = BdpEstimator::new(65_535);
        assert!(e.on_data(16_384));
        let mut e = BdpEstimator::new(16 << 20 >> 1);
        assert!(!e.on_data(16_384), "a quarter of 8 MiB is 2 MiB");
    }

    #[test]
    fn the_first_sample_of_a_flow_held_back_by_the_window_still_grows_it() {
        // A sender the 1 MiB window holds back delivers the whole window in the round trip
        // after a quiet spell. The quarter that arrives before the PING is not counted;
        // the three quarters that are still clear BETA, so the window doubles from them.
        let t0 = crate::test_clock::t0();
        let window: u32 = 1 << 20;
        let mut e = BdpEstimator::new(window);
        let frame = 16_384;
        let mut asked_at = None;
        for i in 0..window / frame {
            if e.on_data(frame) {
                assert!(asked_at.is_none(), "one measurement at a time");
                asked_at = Some(i);
                e.on_ping_sent(t0);
            }
        }
        assert_eq!(asked_at, Some(15), "the 16th frame completes the quarter");
        let counted = window * 3 / 4 + frame;
        assert_eq!(e.sample, u64::from(counted), "all but the first 15 frames");
        assert_eq!(e.on_ping_ack(t0 + ms(1)), Some(2 * counted));
    }

    #[test]
    fn ack_without_a_written_ping_is_ignored() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(65_535);
        assert_eq!(e.on_ping_ack(t0), None);
        assert_eq!(e, BdpEstimator::new(65_535));

        assert!(e.on_data(60_000));
        let before = e.clone();
        assert_eq!(e.on_ping_ack(t0 + ms(5)), None);
        assert_eq!(
            e, before,
            "an ACK of a PING not yet written changes nothing"
        );

        e.on_ping_sent(t0 + ms(5));
        e.on_ping_sent(t0 + ms(7));
        assert_eq!(e.on_ping_ack(t0 + ms(15)), Some(120_000));
        assert_eq!(e.rtt_nanos, 10_000_000, "the first write is the one timed");
        let before = e.clone();
        assert_eq!(e.on_ping_ack(t0 + ms(20)), None, "a second ACK is ignored");
        e.on_ping_sent(t0 + ms(20));
        assert_eq!(e, before, "a write nobody asked for is ignored");
    }

    #[test]
    fn window_doubles_the_sample_once_it_reaches_beta_of_the_estimate() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(100_000);
        assert_eq!(measure(&mut e, 65_999, t0, ms(10)), None);
        assert_eq!(measure(&mut e, 66_000, t0 + ms(100), ms(10)), Some(132_000));
        assert_eq!(e.estimate(), 132_000);
    }

    #[test]
    fn no_growth_unless_bandwidth_is_the_best_seen() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(65_535);
        // 50,000 octets in 10 ms: 5 MB/s.
        assert_eq!(measure(&mut e, 50_000, t0, ms(10)), Some(100_000));
        // Enough octets, but the RTT grew with them: mean RTT 15 ms, 4.7 MB/s.
        assert_eq!(measure(&mut e, 70_000, t0 + ms(100), ms(20)), None);
        assert_eq!(e.estimate(), 100_000);
        // Mean RTT 13.3 ms: 6 MB/s, the best so far.
        assert_eq!(measure(&mut e, 80_000, t0 + ms(200), ms(10)), Some(160_000));
    }

    #[test]
    fn rtt_is_a_mean_of_the_first_samples_then_weights_each_new_one_by_alpha() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(1 << 20);
        for i in 1..=9 {
            assert_eq!(measure(&mut e, 262_144, t0 + ms(i * 1_000), ms(i)), None);
        }
        assert_eq!(e.rtt_nanos, 5_000_000, "mean of 1..=9 ms");
        assert_eq!(measure(&mut e, 262_144, t0 + ms(20_000), ms(15)), None);
        assert_eq!(e.rtt_nanos, 14_000_000, "5 ms + 9/10 of (15 - 5) ms");
    }

    #[test]
    fn zero_or_negative_rtt_counts_as_the_fastest_link_without_panicking() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(65_535);
        assert_eq!(measure(&mut e, 50_000, t0, Duration::ZERO), Some(100_000));
        assert!(e.on_data(70_000));
        e.on_ping_sent(t0 + ms(10));
        assert_eq!(
            e.on_ping_ack(t0),
            Some(140_000),
            "an ACK timed before its PING"
        );
    }

    #[test]
    fn huge_samples_are_capped_at_16_mib_then_pings_stop() {
        let t0 = crate::test_clock::t0();
        let mut e = BdpEstimator::new(65_535);
        assert!(e.on_data(u32::MAX));
        for _ in 0..10 {
            assert!(!e.on_data(u32::MAX));
        }
        e.on_ping_sent(t0);
        let late = t0 + Duration::from_secs(1_000_000);
        assert_eq!(e.on_ping_ack(late), Some(BDP_LIMIT));
        assert_eq!(e.estimate(), BDP_LIMIT);
        assert!(!e.on_data(1), "nothing left to grow: no more PINGs");
        assert!(!BdpEstimator::new(u32::MAX).on_data(1));
    }

    /// What [`simulate`] saw.
    #[derive(Debug)]
    struct Run {
        window: u32,
        pings: u32,
        pings_at_limit: u32,
    }

    /// A sender keeping a window of DATA in flight on a link of `bandwidth` octets/s and
    /// round trip `rtt` for `duration`, its window grown as the estimator says. PINGs are
    /// written on arrival of the DATA that asks for them and acknowledged one RTT later.
    fn simulate(bandwidth: u64, rtt: Duration, duration: Duration) -> Run {
        const FRAME: u32 = 16_384;
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        let t0 = crate::test_clock::t0();
        let end = t0 + duration;
        let mut e = BdpEstimator::new(DEFAULT_INITIAL_WINDOW_SIZE);
        let mut window = e.estimate();
        let mut run = Run {
            window,
            pings: 0,
            pings_at_limit: 0,
        };
        let frame_gap = |window: u32| {
            let window_rate = u128::from(window) * NANOS_PER_SEC / rtt.as_nanos();
            let rate = window_rate.min(u128::from(bandwidth)).max(1);
            Duration::from_nanos(
                u64::try_from(u128::from(FRAME) * NANOS_PER_SEC / rate).unwrap_or(u64::MAX),
            )
        };
        let mut next_frame = t0;
        let mut ack_at = None;
        let mut now = t0;
        while now < end {
            match ack_at {
                Some(ack) if ack <= next_frame => {
                    now = ack;
                    ack_at = None;
                    if let Some(grown) = e.on_ping_ack(now) {
                        assert!(grown > window);
                        window = grown;
                    }
                }
                _ => {
                    now = next_frame;
                    if e.on_data(FRAME) {
                        e.on_ping_sent(now);
                        ack_at = Some(now + rtt);
                        run.pings += 1;
                        if window == BDP_LIMIT {
                            run.pings_at_limit += 1;
                        }
                    }
                    next_frame = now + frame_gap(window);
                }
            }
        }
        run.window = window;
        assert_eq!(window, e.estimate());
        run
    }

    #[test]
    fn simulated_links_grow_the_window_to_between_the_bdp_and_gamma_times_it() {
        const FRAME_SLACK: u64 = 2 * 16_384;
        for (bandwidth, rtt) in [
            (1_000_000, ms(100)),
            (10_000_000, ms(50)),
            (100_000_000, ms(20)),
            (50_000_000, ms(1)),
        ] {
            let bdp = bandwidth * u64::try_from(rtt.as_millis()).unwrap_or(0) / 1_000;
            let run = simulate(bandwidth, rtt, Duration::from_secs(10));
            let window = u64::from(run.window);
            assert!(
                window > u64::from(DEFAULT_INITIAL_WINDOW_SIZE) || bdp * GAMMA < 65_535,
                "{bandwidth} B/s, {rtt:?}: {run:?}"
            );
            assert!(
                window >= bdp && window <= GAMMA * (bdp + FRAME_SLACK),
                "{bandwidth} B/s, {rtt:?}, BDP {bdp}: {run:?}"
            );
        }
    }

    #[test]
    fn simulated_fat_link_is_capped_at_16_mib_and_pings_stop_there() {
        let run = simulate(1_000_000_000, ms(100), Duration::from_secs(10));
        assert_eq!(run.window, BDP_LIMIT, "{run:?}");
        assert_eq!(run.pings_at_limit, 0, "{run:?}");
    }

    #[test]
    fn simulated_slow_link_does_not_grow_the_window() {
        let run = simulate(100_000, ms(10), Duration::from_secs(10));
        assert_eq!(run.window, DEFAULT_INITIAL_WINDOW_SIZE, "{run:?}");
        assert!(run.pings > 10, "{run:?}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Data(u32),
        Sent(u64),
        Ack(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let nanos = prop_oneof![
            Just(0u64),
            0..=1_000_000_000u64,
            0..=1_000_000_000_000_000u64
        ];
        prop_oneof![
            3 => prop_oneof![0..=100_000u32, any::<u32>()].prop_map(Op::Data),
            1 => nanos.clone().prop_map(Op::Sent),
            1 => nanos.prop_map(Op::Ack),
        ]
    }

    proptest! {
        #[test]
        fn no_input_panics_and_the_estimate_only_grows_within_the_limit(
            initial in prop_oneof![0..=1_000_000u32, any::<u32>()],
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let t0 = crate::test_clock::t0();
            let run = |ops: &[Op]| {
                let mut e = BdpEstimator::new(initial);
                let mut outputs = Vec::new();
                for op in ops {
                    let before = e.clone();
                    match *op {
                        Op::Data(n) => {
                            let ping = e.on_data(n);
                            let due = before.idle + u64::from(n) >= u64::from(before.bdp) / IDLE_SHARE;
                            assert_eq!(ping, before.cycle == Cycle::Idle && n > 0 && before.bdp < BDP_LIMIT && due);
                            outputs.push(u64::from(ping));
                        }
                        Op::Sent(at) => e.on_ping_sent(t0 + Duration::from_nanos(at)),
                        Op::Ack(at) => {
                            let grown = e.on_ping_ack(t0 + Duration::from_nanos(at));
                            if let Some(w) = grown {
                                assert!(w > before.bdp && w <= BDP_LIMIT);
                                assert!(matches!(before.cycle, Cycle::PingSent(_)));
                            }
                            assert_eq!(e.estimate(), grown.unwrap_or(before.bdp));
                            outputs.push(grown.map_or(0, u64::from));
                        }
                    }
                }
                outputs
            };
            prop_assert_eq!(run(&ops), run(&ops), "same inputs, same outputs");
        }
    }
}
