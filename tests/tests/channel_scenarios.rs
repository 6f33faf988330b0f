//! The channel's seed scenarios in the simulated network (`tests/src/net.rs`), each
//! asserting the exact trace of state changes and their virtual times:
//! (a) seed 000's start-up, (b) seed 004's restart with backoff, (c) a server's
//! graceful GOAWAY with calls in flight and one call transparently retried, (d) three
//! addresses where the first black-holes and the second refuses, (e) round_robin
//! spreading calls and surviving a dead server.

use std::time::Duration;

use grpc_sansio::channel::backoff::BackoffConfig;
use grpc_sansio::channel::client_channel::{CallOptions, ChannelConfig};
use grpc_sansio::channel::random::Random;
use grpc_sansio::channel::state::ConnectivityState::*;
use grpc_sansio::grpc::code::Code;
use grpc_sansio_tests::net::{Behaviour, Net, addr};

fn call() -> CallOptions {
    CallOptions::new("/test.Echo/Unary")
}

const SECOND: Duration = Duration::from_secs(1);

/// Asserts the trace lines, printing the whole trace on a mismatch.
fn assert_trace(net: &Net, expected: &[&str]) {
    let got = net.trace_lines();
    assert_eq!(got, expected, "\ntrace:\n{}", got.join("\n"));
}

#[test]
fn a_startup_is_ready_only_after_the_server_preface() {
    let mut net = Net::new("passthrough:///127.0.0.1:50051", ChannelConfig::default());
    assert_eq!(
        net.channel.get_state(false, net.now),
        Idle,
        "a new channel is IDLE"
    );
    // The server accepts the TCP connection but says nothing for 5 s.
    net.set(&addr(50051), Behaviour::Mute);
    let id = net.unary(call());
    net.advance(5 * SECOND);
    assert_eq!(net.outcome(id), None, "the call waits for READY");
    assert_eq!(net.channel.get_state(false, net.now), Connecting);
    net.set(&addr(50051), Behaviour::Serve);
    net.run();
    let (status, server) = net.outcome(id).expect("the call ended");
    assert!(status.is_ok(), "{status:?}");
    assert_eq!(server.as_deref(), Some("127.0.0.1:50051"));
    assert_trace(
        &net,
        &[
            "+0.000s [Channel #1] Channel created for target \"passthrough:///127.0.0.1:50051\"",
            "+0.000s [Channel #1] Resolver state updated: 1 endpoint(s)",
            "+0.000s [Channel #1] Channel switches to new LB policy \"pick_first\"",
            "+0.000s [Channel #1 SubChannel #1] Subchannel created for addresses [127.0.0.1:50051]",
            "+0.000s [Channel #1] Channel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:50051\" to connect",
            "+5.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to READY",
            "+5.000s [Channel #1] Channel Connectivity change to READY",
        ],
    );
}

#[test]
fn b_restart_goes_idle_then_backs_off_then_recovers() {
    let seed = 42;
    let config = ChannelConfig {
        seed,
        ..ChannelConfig::default()
    };
    let mut net = Net::new("dns:///server.test:50051", config);
    net.resolver_answer = Some(Net::endpoints(&[addr(50051)]));
    net.set(&addr(50051), Behaviour::Serve);
    let id = net.unary(call());
    assert!(net.outcome(id).expect("ended").0.is_ok());

    // The server dies at +1 s: IDLE, and no reconnect without a call.
    net.advance(SECOND);
    net.kill(&addr(50051));
    net.advance(10 * SECOND);
    assert_eq!(net.connects.len(), 1, "no reconnect while IDLE");
    assert_eq!(
        net.states,
        [
            (Duration::ZERO, Connecting),
            (Duration::ZERO, Ready),
            (SECOND, Idle)
        ]
    );

    // A call at +11 s triggers the connect; refused: TRANSIENT_FAILURE, and a
    // fail-fast call gets UNAVAILABLE with the refusal.
    let id = net.unary(call());
    let (status, _) = net.outcome(id).expect("fail-fast call ended");
    assert_eq!(status.code, Code::Unavailable);
    assert_eq!(
        status.message,
        "dial tcp 127.0.0.1:50051: connect: connection refused"
    );
    assert_eq!(net.states[3], (11 * SECOND, Connecting));
    assert_eq!(net.states[4], (11 * SECOND, TransientFailure));

    // pick_first stays in TRANSIENT_FAILURE and retries after each backoff.
    for _ in 0..12 {
        net.step(Duration::from_secs(300));
    }
    // Every failed pass asks for re-resolution; the requests are rate-limited to one
    // per 30 s.
    assert_eq!(net.resolves[..2], [Duration::ZERO, 30 * SECOND]);
    assert!(net.resolves.len() > 2);
    assert!(net.resolves.windows(2).all(|w| w[1] - w[0] >= 30 * SECOND));
    // The attempts after the first failure follow the backoff policy exactly: the
    // subchannel draws one random value per pass from the channel's generator.
    let times: Vec<Duration> = net.connects.iter().map(|(t, _)| *t).collect();
    let policy = BackoffConfig::default();
    let mut rng = Random::new(seed);
    let draws: Vec<u64> = (0..times.len() + 1).map(|_| rng.next_u64()).collect();
    for k in 1..times.len() - 1 {
        // Pass k (0-based over all passes) failed after using draw k and backoff index
        // k - 1 (the first pass succeeded and the count restarted after READY).
        let expected = policy.delay(k as u32 - 1, draws[k]);
        let gap = times[k + 1] - times[k];
        assert_eq!(gap, expected, "backoff before attempt {}", k + 1);
        let unjittered = 1.6f64.powi(k as i32 - 1).min(120.0);
        let secs = gap.as_secs_f64();
        assert!(
            secs >= unjittered * 0.8 - 1e-9 && secs <= unjittered * 1.2 + 1e-9,
            "attempt {k}: {secs} s vs {unjittered} s ±20 %"
        );
    }
    assert!(
        net.states
            .iter()
            .skip(4)
            .all(|&(_, s)| s == TransientFailure)
    );

    // The server comes back: the next attempt succeeds, READY, calls succeed.
    net.set(&addr(50051), Behaviour::Serve);
    let before = net.connects.len();
    net.step(Duration::from_secs(300));
    assert_eq!(net.connects.len(), before + 1);
    assert_eq!(net.states.last().map(|&(_, s)| s), Some(Ready));
    let id = net.unary(call());
    assert!(net.outcome(id).expect("ended").0.is_ok());
    let lines = net.trace_lines();
    assert_eq!(
        lines[9..17],
        [
            "+1.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to IDLE",
            "+1.000s [Channel #1] Channel Connectivity change to IDLE",
            "+11.000s [Channel #1] Channel Connectivity change to CONNECTING",
            "+11.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to CONNECTING",
            "+11.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:50051\" to connect",
            "+11.000s [Channel #1 SubChannel #1] Creating new client transport to \"127.0.0.1:50051\": dial tcp 127.0.0.1:50051: connect: connection refused",
            "+11.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to TRANSIENT_FAILURE, last error: dial tcp 127.0.0.1:50051: connect: connection refused",
            "+11.000s [Channel #1] Channel Connectivity change to TRANSIENT_FAILURE, last error: dial tcp 127.0.0.1:50051: connect: connection refused",
        ],
        "\ntrace:\n{}",
        lines.join("\n")
    );
    assert_eq!(
        lines[17],
        "+12.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to IDLE, last error: dial tcp 127.0.0.1:50051: connect: connection refused"
    );
}

#[test]
fn c_graceful_goaway_finishes_calls_in_flight_and_retries_the_unsent_one() {
    let mut net = Net::new("passthrough:///127.0.0.1:50051", ChannelConfig::default());
    // Two calls fit the server's concurrency limit; the third waits unsent.
    net.server_config.max_concurrent_streams = Some(2);
    net.set(&addr(50051), Behaviour::Serve);
    net.hold(&addr(50051), true);
    let ids: Vec<_> = (0..3).map(|_| net.unary(call())).collect();
    // The server keeps serving new connections and answers new calls at once; the
    // two already held stay held.
    net.hold(&addr(50051), false);
    net.goaway(&addr(50051));
    let (status, _) = net.outcome(ids[2]).expect("the retried call ended");
    assert!(status.is_ok(), "{status:?}");
    assert_eq!(net.outcome(ids[0]), None, "held calls are still running");
    net.release_held(&addr(50051));
    for &id in &ids[..2] {
        let (status, _) = net.outcome(id).expect("ended");
        assert!(status.is_ok(), "{status:?}");
    }
    assert_eq!(net.connects.len(), 2, "one new connection for the retry");
    assert_eq!(net.served(&addr(50051)), 3);
    assert_eq!(net.channel.open_calls(), 0);
    assert_trace(
        &net,
        &[
            "+0.000s [Channel #1] Channel created for target \"passthrough:///127.0.0.1:50051\"",
            "+0.000s [Channel #1] Resolver state updated: 1 endpoint(s)",
            "+0.000s [Channel #1] Channel switches to new LB policy \"pick_first\"",
            "+0.000s [Channel #1 SubChannel #1] Subchannel created for addresses [127.0.0.1:50051]",
            "+0.000s [Channel #1] Channel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:50051\" to connect",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to READY",
            "+0.000s [Channel #1] Channel Connectivity change to READY",
            "+0.000s [Channel #1] Transparent retry of /test.Echo/Unary on a new pick",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to IDLE",
            "+0.000s [Channel #1] Channel Connectivity change to IDLE",
            "+0.000s [Channel #1] Channel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:50051\" to connect",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to READY",
            "+0.000s [Channel #1] Channel Connectivity change to READY",
        ],
    );
}

#[test]
fn d_connect_deadline_moves_past_a_blackhole_and_a_refusal() {
    let mut net = Net::new(
        "ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
        ChannelConfig::default(),
    );
    net.set(&addr(1), Behaviour::Blackhole);
    net.set(&addr(2), Behaviour::Refuse);
    net.set(&addr(3), Behaviour::Serve);
    let id = net.unary(call().wait_for_ready(true));
    net.advance(19 * SECOND);
    assert_eq!(net.outcome(id), None);
    net.advance(SECOND);
    let (status, server) = net.outcome(id).expect("ended");
    assert!(status.is_ok());
    assert_eq!(server.as_deref(), Some("127.0.0.1:3"));
    assert_eq!(
        net.connects,
        [
            (Duration::ZERO, addr(1)),
            (20 * SECOND, addr(2)),
            (20 * SECOND, addr(3))
        ]
    );
    assert_trace(
        &net,
        &[
            "+0.000s [Channel #1] Channel created for target \"ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3\"",
            "+0.000s [Channel #1] Resolver state updated: 3 endpoint(s)",
            "+0.000s [Channel #1] Channel switches to new LB policy \"pick_first\"",
            "+0.000s [Channel #1 SubChannel #1] Subchannel created for addresses [127.0.0.1:1 127.0.0.1:2 127.0.0.1:3]",
            "+0.000s [Channel #1] Channel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:1\" to connect",
            "+20.000s [Channel #1 SubChannel #1] Creating new client transport to \"127.0.0.1:1\": connection attempt timed out",
            "+20.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:2\" to connect",
            "+20.000s [Channel #1 SubChannel #1] Creating new client transport to \"127.0.0.1:2\": dial tcp 127.0.0.1:2: connect: connection refused",
            "+20.000s [Channel #1 SubChannel #1] Subchannel picks a new address \"127.0.0.1:3\" to connect",
            "+20.000s [Channel #1 SubChannel #1] Subchannel Connectivity change to READY",
            "+20.000s [Channel #1] Channel Connectivity change to READY",
        ],
    );
}

#[test]
fn e_round_robin_spreads_calls_and_survives_a_dead_server() {
    let config = ChannelConfig {
        default_service_config: Some(r#"{"loadBalancingConfig":[{"round_robin":{}}]}"#.into()),
        ..ChannelConfig::default()
    };
    let mut net = Net::new("ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", config);
    for port in 1..=3 {
        net.set(&addr(port), Behaviour::Serve);
    }
    // Warm up: once every subchannel is READY, calls rotate over all three.
    let first = net.unary(call().wait_for_ready(true));
    assert!(net.outcome(first).expect("ended").0.is_ok());
    let before: Vec<usize> = (1..=3).map(|p| net.served(&addr(p))).collect();
    let ids: Vec<_> = (0..30).map(|_| net.unary(call())).collect();
    for id in ids {
        assert!(net.outcome(id).expect("ended").0.is_ok());
    }
    let spread: Vec<usize> = (1..=3)
        .map(|p| net.served(&addr(p)) - before[p as usize - 1])
        .collect();
    assert_eq!(spread, [10, 10, 10]);

    // Server 2 dies: its subchannel fails; every call still succeeds, on 1 and 3.
    net.kill(&addr(2));
    let before: Vec<usize> = (1..=3).map(|p| net.served(&addr(p))).collect();
    let ids: Vec<_> = (0..30).map(|_| net.unary(call())).collect();
    for id in ids {
        let (status, server) = net.outcome(id).expect("ended");
        assert!(status.is_ok(), "{status:?}");
        assert_ne!(server.as_deref(), Some("127.0.0.1:2"));
    }
    let spread: Vec<usize> = (1..=3)
        .map(|p| net.served(&addr(p)) - before[p as usize - 1])
        .collect();
    assert_eq!(spread, [15, 0, 15]);
    assert_eq!(net.channel.get_state(false, net.now), Ready);
    let states: Vec<_> = net
        .channel
        .subchannel_states()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(states, [Ready, TransientFailure, Ready]);
    let lines = net.trace_lines();
    assert_eq!(
        lines[lines.len() - 5..],
        [
            "+0.000s [Channel #1 SubChannel #2] Subchannel Connectivity change to IDLE",
            "+0.000s [Channel #1 SubChannel #2] Subchannel Connectivity change to CONNECTING",
            "+0.000s [Channel #1 SubChannel #2] Subchannel picks a new address \"127.0.0.1:2\" to connect",
            "+0.000s [Channel #1 SubChannel #2] Creating new client transport to \"127.0.0.1:2\": dial tcp 127.0.0.1:2: connect: connection refused",
            "+0.000s [Channel #1 SubChannel #2] Subchannel Connectivity change to TRANSIENT_FAILURE, last error: dial tcp 127.0.0.1:2: connect: connection refused",
        ],
        "\ntrace:\n{}",
        lines.join("\n")
    );
}
