//! Channel behaviour beyond the seed scenarios, in the simulated network: idleness,
//! shutdown, wait-for-ready and deadlines of queued calls, service config from the
//! resolver (method timeouts and limits, invalid configs), resolver errors, custom
//! schemes and balancers, authorities, and determinism from the seed.

use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::channel::balancer::{PickInfo, PickResult, Picker, SubchannelId};
use grpc_sansio::channel::base::{BaseBuilder, PickerBuilder};
use grpc_sansio::channel::client_channel::{
    Action, CallOptions, Channel, ChannelConfig, ChannelError,
};
use grpc_sansio::channel::state::ConnectivityState::*;
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::transport::CallError;
use grpc_sansio_tests::net::{Behaviour, Net, addr};

fn call() -> CallOptions {
    CallOptions::new("/test.Echo/Unary")
}

const SECOND: Duration = Duration::from_secs(1);

fn ready_net() -> Net {
    let mut net = Net::new("passthrough:///127.0.0.1:50051", ChannelConfig::default());
    net.set(&addr(50051), Behaviour::Serve);
    let id = net.unary(call());
    assert!(net.outcome(id).expect("ended").0.is_ok());
    net
}

#[test]
fn an_idle_channel_releases_its_connection_and_comes_back_on_the_next_call() {
    let mut net = ready_net();
    assert_eq!(net.channel.connections().len(), 1);
    net.advance(Duration::from_secs(29 * 60));
    assert_eq!(net.channel.get_state(false, net.now), Ready);
    net.advance(Duration::from_secs(60));
    assert_eq!(net.channel.get_state(false, net.now), Idle);
    assert!(
        net.channel.subchannel_states().is_empty(),
        "subchannels released"
    );
    assert!(net.channel.connections().is_empty(), "connection closed");
    // The next call resolves and connects again.
    let id = net.unary(call());
    assert!(net.outcome(id).expect("ended").0.is_ok());
    assert_eq!(net.channel.get_state(false, net.now), Ready);
    assert_eq!(net.connects.len(), 2);
    let states: Vec<_> = net.states.iter().map(|&(t, s)| (t.as_secs(), s)).collect();
    assert_eq!(
        states,
        [
            (0, Connecting),
            (0, Ready),
            (1800, Idle),
            (1800, Connecting),
            (1800, Ready)
        ]
    );
}

#[test]
fn calls_in_flight_keep_the_channel_out_of_idle() {
    let mut net = ready_net();
    net.hold(&addr(50051), true);
    let id = net.unary(call());
    net.advance(Duration::from_secs(3600));
    assert_eq!(net.channel.get_state(false, net.now), Ready);
    net.release_held(&addr(50051));
    assert!(net.outcome(id).expect("ended").0.is_ok());
}

#[test]
fn shutdown_fails_queued_and_new_calls_and_lets_running_ones_finish() {
    let mut net = ready_net();
    net.hold(&addr(50051), true);
    let running = net.unary(call());
    // A second channel target with no server: a queued wait-for-ready call.
    let mut other = Net::new("passthrough:///127.0.0.1:1", ChannelConfig::default());
    let queued = other.unary(call().wait_for_ready(true));
    other.channel.shutdown(other.now);
    other.run();
    let (status, _) = other.outcome(queued).expect("queued call ended");
    assert_eq!(status.code, Code::Cancelled);
    assert_eq!(status.message, "grpc: the client connection is closing");

    net.channel.shutdown(net.now);
    net.run();
    assert_eq!(net.channel.get_state(true, net.now), Shutdown);
    let late = net.unary(call());
    assert_eq!(net.outcome(late).expect("ended").0.code, Code::Cancelled);
    assert_eq!(net.outcome(running), None, "running call not cut");
    net.release_held(&addr(50051));
    assert!(net.outcome(running).expect("ended").0.is_ok());
    net.run();
    assert!(net.channel.connections().is_empty(), "closed once drained");
}

#[test]
fn wait_for_ready_calls_wait_until_their_deadline_and_fail_fast_ones_fail_at_once() {
    let mut net = Net::new("passthrough:///127.0.0.1:50051", ChannelConfig::default());
    net.set(&addr(50051), Behaviour::Refuse);
    let fast = net.unary(call());
    let deadline = net.now + 5 * SECOND;
    let patient = net.unary(call().wait_for_ready(true).deadline(deadline));
    let (status, _) = net.outcome(fast).expect("fail-fast ended");
    assert_eq!(status.code, Code::Unavailable);
    net.advance(4 * SECOND);
    assert_eq!(net.outcome(patient), None);
    net.advance(SECOND);
    let (status, _) = net.outcome(patient).expect("ended at its deadline");
    assert_eq!(status.code, Code::DeadlineExceeded);
    assert_eq!(
        status.message,
        "context deadline exceeded while waiting for connections to become ready"
    );
}

#[test]
fn a_wait_for_ready_call_goes_through_once_the_server_is_back() {
    let mut net = Net::new("passthrough:///127.0.0.1:50051", ChannelConfig::default());
    net.set(&addr(50051), Behaviour::Refuse);
    let id = net.unary(call().wait_for_ready(true));
    net.advance(3 * SECOND);
    net.set(&addr(50051), Behaviour::Serve);
    for _ in 0..5 {
        net.step(Duration::from_secs(60));
    }
    let (status, _) = net.outcome(id).expect("ended");
    assert!(status.is_ok(), "{status:?}");
}

#[test]
fn method_config_from_the_resolver_sets_timeouts_and_limits() {
    let mut net = Net::new("dns:///svc.test:50051", ChannelConfig::default());
    let mut state = Net::endpoints(&[addr(50051)]);
    state.service_config = Some(
        r#"{"methodConfig":[{"name":[{"service":"test.Echo"}],"timeout":"2s",
            "maxRequestMessageBytes":10}]}"#
            .into(),
    );
    net.resolver_answer = Some(state);
    net.set(&addr(50051), Behaviour::Serve);
    net.hold(&addr(50051), true);
    let id = net.unary(call());
    net.advance(2 * SECOND);
    let (status, _) = net.outcome(id).expect("timed out by the method config");
    assert_eq!(status.code, Code::DeadlineExceeded);
    // The request limit applies to the call's messages.
    let id = net.channel.start_call(call(), net.now);
    let err = net
        .channel
        .send_message(id, Bytes::from(vec![0u8; 11]), true)
        .unwrap_err();
    assert!(matches!(err, CallError::TooLarge(_)), "{err:?}");
    // Other services have no timeout.
    let other = net.unary(CallOptions::new("/other.Svc/M"));
    net.advance(10 * SECOND);
    assert_eq!(net.outcome(other), None);
}

#[test]
fn an_invalid_service_config_fails_picks_or_keeps_the_previous_one() {
    // No previous config: picks fail UNAVAILABLE with the parse error.
    let mut net = Net::new("dns:///svc.test:50051", ChannelConfig::default());
    net.set(&addr(50051), Behaviour::Serve);
    let id = net.channel.start_call(call(), net.now);
    net.run();
    let mut bad = Net::endpoints(&[addr(50051)]);
    bad.service_config = Some("{not json".into());
    net.resolve(bad.clone());
    net.channel
        .send_message(id, Bytes::from_static(b"x"), true)
        .unwrap();
    net.run();
    let (status, _) = net.outcome(id).expect("ended");
    assert_eq!(status.code, Code::Unavailable);
    assert!(
        status.message.contains("error parsing service config"),
        "{}",
        status.message
    );

    // A good config, then a bad one: the good one stays in force.
    let mut good = Net::endpoints(&[addr(50051)]);
    good.service_config = Some(r#"{"methodConfig":[{"name":[{}],"timeout":"1s"}]}"#.into());
    net.resolve(good);
    net.resolve(bad);
    net.hold(&addr(50051), true);
    let id = net.unary(call());
    net.advance(SECOND);
    assert_eq!(
        net.outcome(id).expect("the kept timeout fired").0.code,
        Code::DeadlineExceeded
    );
}

#[test]
fn resolver_errors_before_any_address_fail_fast_calls_with_the_error() {
    let mut net = Net::new("dns:///nowhere.test", ChannelConfig::default());
    let id = net.channel.start_call(call(), net.now);
    net.run();
    assert_eq!(
        net.resolves.len(),
        1,
        "resolution requested on the first call"
    );
    net.resolve_error("lookup nowhere.test: no such host");
    let (status, _) = net.outcome(id).expect("ended");
    assert_eq!(status.code, Code::Unavailable);
    assert!(
        status.message.contains("no such host"),
        "{}",
        status.message
    );
    assert_eq!(net.channel.get_state(false, net.now), TransientFailure);
}

/// A user policy supplying only a picker: always the last READY subchannel.
#[derive(Clone, Debug)]
struct LastReady;

#[derive(Debug)]
struct LastReadyPicker(Vec<SubchannelId>);

impl Picker for LastReadyPicker {
    fn pick(&mut self, _: &PickInfo<'_>) -> PickResult {
        match self.0.last() {
            Some(&sc) => PickResult::Pick(sc),
            None => PickResult::Queue,
        }
    }
}

impl PickerBuilder for LastReady {
    fn build(&self, ready: &[SubchannelId], _random: u64) -> Box<dyn Picker> {
        Box::new(LastReadyPicker(ready.to_vec()))
    }
}

#[test]
fn a_custom_scheme_and_a_custom_balancer_from_the_service_config() {
    let config = ChannelConfig {
        custom_schemes: vec!["myresolver".into()],
        balancers: vec![std::sync::Arc::new(BaseBuilder::new(
            "last_ready",
            LastReady,
        ))],
        default_service_config: Some(
            r#"{"loadBalancingConfig":[{"unknown_policy":{}},{"last_ready":{}}]}"#.into(),
        ),
        ..ChannelConfig::default()
    };
    let mut net = Net::new("myresolver://auth/backends", config);
    assert_eq!(net.channel.target().scheme, "myresolver");
    assert_eq!(net.channel.authority(), "backends");
    net.resolver_answer = Some(Net::endpoints(&[addr(1), addr(2)]));
    net.set(&addr(1), Behaviour::Serve);
    net.set(&addr(2), Behaviour::Serve);
    let first = net.unary(call().wait_for_ready(true));
    assert!(net.outcome(first).expect("ended").0.is_ok());
    for _ in 0..5 {
        let id = net.unary(call());
        let (status, server) = net.outcome(id).expect("ended");
        assert!(status.is_ok());
        assert_eq!(
            server.as_deref(),
            Some("127.0.0.1:2"),
            "the policy's choice"
        );
    }
    assert!(
        net.trace_lines()
            .iter()
            .any(|l| l.ends_with("Channel switches to new LB policy \"last_ready\""))
    );
}

#[test]
fn targets_authorities_and_errors() {
    let now = std::time::Instant::now();
    let ch = |t: &str, config: ChannelConfig| Channel::new(t, config, now);
    let c = ch("foo.example:50051", ChannelConfig::default()).unwrap();
    assert_eq!(c.target().scheme, "dns");
    assert_eq!(c.authority(), "foo.example:50051");
    let c = ch(
        "foo.example:50051",
        ChannelConfig {
            default_scheme: "passthrough".into(),
            ..ChannelConfig::default()
        },
    )
    .unwrap();
    assert_eq!(c.target().scheme, "passthrough");
    let c = ch(
        "dns:///foo.example:50051",
        ChannelConfig {
            authority: Some("override.example".into()),
            ..ChannelConfig::default()
        },
    )
    .unwrap();
    assert_eq!(c.authority(), "override.example");
    assert_eq!(
        ch("unix:///tmp/sock", ChannelConfig::default())
            .unwrap()
            .authority(),
        "localhost"
    );
    assert!(matches!(
        ch("dns:///bad\u{7f}host", ChannelConfig::default()),
        Err(ChannelError::Target(_))
    ));
    assert!(matches!(
        ch(
            "localhost:1",
            ChannelConfig {
                default_service_config: Some("[]".into()),
                ..ChannelConfig::default()
            }
        ),
        Err(ChannelError::ServiceConfig(_))
    ));
}

#[test]
fn dns_targets_are_resolved_by_the_owner_and_re_resolved_on_loss() {
    let mut net = Net::new("dns:///svc.test:50051", ChannelConfig::default());
    assert!(net.resolves.is_empty(), "nothing happens while IDLE");
    net.channel.get_state(true, net.now);
    net.run();
    assert_eq!(net.resolves, [Duration::ZERO]);
    net.set(&addr(50051), Behaviour::Serve);
    net.resolve(Net::endpoints(&[addr(50051)]));
    assert_eq!(net.channel.get_state(false, net.now), Ready);
    net.advance(40 * SECOND);
    net.kill(&addr(50051));
    assert_eq!(
        net.resolves,
        [Duration::ZERO, 40 * SECOND],
        "ResolveNow on loss"
    );
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let run = |seed: u64| {
        let config = ChannelConfig {
            seed,
            default_service_config: Some(
                r#"{"loadBalancingConfig":[{"pick_first":{"shuffleAddressList":true}}]}"#.into(),
            ),
            ..ChannelConfig::default()
        };
        let mut net = Net::new(
            "ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4",
            config,
        );
        for port in 1..=4 {
            net.set(&addr(port), Behaviour::Refuse);
        }
        let _ = net.unary(call().wait_for_ready(true));
        for _ in 0..20 {
            net.step(Duration::from_secs(600));
        }
        net.trace_lines()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8), "the seed drives shuffles and jitter");
}

#[test]
fn owner_actions_for_a_dns_channel() {
    let now = std::time::Instant::now();
    let mut ch = Channel::new("dns:///svc.test:443", ChannelConfig::default(), now).unwrap();
    assert_eq!(ch.poll_action(), None);
    ch.get_state(true, now);
    match ch.poll_action() {
        Some(Action::Resolve { target }) => assert_eq!(target.endpoint, "svc.test:443"),
        other => panic!("expected Resolve, got {other:?}"),
    }
}

#[test]
fn address_updates_keep_a_connection_whose_address_survives() {
    let mut net = Net::new("dns:///svc.test:50051", ChannelConfig::default());
    net.resolver_answer = Some(Net::endpoints(&[addr(1)]));
    net.set(&addr(1), Behaviour::Serve);
    net.set(&addr(2), Behaviour::Serve);
    let id = net.unary(call());
    assert!(net.outcome(id).expect("ended").0.is_ok());
    // The connected address is still listed (second now): the connection stays.
    net.resolve(Net::endpoints(&[addr(2), addr(1)]));
    assert_eq!(net.connects.len(), 1);
    let id = net.unary(call());
    assert_eq!(
        net.outcome(id).expect("ended").1.as_deref(),
        Some("127.0.0.1:1")
    );
    // It is gone from the list: the subchannel reconnects to what is listed.
    net.resolve(Net::endpoints(&[addr(2)]));
    let id = net.unary(call());
    assert_eq!(
        net.outcome(id).expect("ended").1.as_deref(),
        Some("127.0.0.1:2")
    );
    assert_eq!(net.connects.len(), 2);
    net.run();
    assert_eq!(
        net.channel.connections().len(),
        1,
        "the old connection was closed"
    );
}
