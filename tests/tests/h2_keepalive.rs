//! Scenario: keepalive, ping policy, BDP and graceful-shutdown timers on the virtual clock.

use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::ErrorCode;
use grpc_sansio::frame::{Frame, Ping, Settings, StreamId};
use grpc_sansio::h2::{
    ClientKeepaliveConfig, CloseReason, Config, EnforcementPolicy, Event, Header, Role,
    ServerKeepaliveConfig,
};
use grpc_sansio_tests::pair::{Pair, Side};
use grpc_sansio_tests::script::Scripted;

fn request() -> Vec<Header> {
    vec![
        Header::new(":method", "POST"),
        Header::new(":path", "/svc/M"),
        Header::new(":scheme", "http"),
        Header::new(":authority", "x"),
    ]
}

fn keepalive_client(time: u64, timeout: u64) -> Config {
    Config {
        client_keepalive: ClientKeepaliveConfig {
            time: Some(Duration::from_secs(time)),
            timeout: Duration::from_secs(timeout),
            permit_without_stream: false,
        },
        dynamic_window: false,
        ..Config::client()
    }
}

fn pings(frames: &[Frame]) -> Vec<[u8; 8]> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Ping(p) if !p.ack => Some(p.payload),
            _ => None,
        })
        .collect()
}

#[test]
fn client_pings_after_time_without_reads_and_closes_when_no_ack_comes() {
    let mut s = Scripted::connected(Role::Client, keepalive_client(30, 5));
    s.conn.open_stream(request(), false).unwrap();
    s.written();
    s.advance(Duration::from_secs(29));
    assert!(pings(&s.written()).is_empty(), "no ping before `time`");
    s.advance(Duration::from_secs(1));
    assert_eq!(pings(&s.written()).len(), 1);
    s.advance(Duration::from_millis(4_999));
    assert!(s.conn.close_reason().is_none());
    s.advance(Duration::from_millis(1));
    assert_eq!(s.conn.close_reason(), Some(&CloseReason::KeepaliveTimeout));
    assert!(
        s.written().is_empty(),
        "a keepalive timeout closes without GOAWAY (the peer is gone)"
    );
}

#[test]
fn an_ack_keeps_the_connection_and_the_next_ping_waits_a_full_interval() {
    let mut s = Scripted::connected(Role::Client, keepalive_client(30, 5));
    s.conn.open_stream(request(), false).unwrap();
    s.written();
    s.advance(Duration::from_secs(30));
    let payload = pings(&s.written())[0];
    s.advance(Duration::from_secs(1));
    s.send(Frame::Ping(Ping::ack(payload)));
    s.advance(Duration::from_secs(10));
    assert!(s.conn.close_reason().is_none());
    assert!(pings(&s.written()).is_empty());
    s.advance(Duration::from_secs(20));
    assert_eq!(pings(&s.written()).len(), 1, "30 s after the ACK");
}

#[test]
fn no_keepalive_pings_without_streams_unless_permitted() {
    let mut s = Scripted::connected(Role::Client, keepalive_client(10, 1));
    s.advance(Duration::from_secs(3600));
    assert!(pings(&s.written()).is_empty());
    assert!(s.conn.close_reason().is_none());
}

#[test]
fn pinging_too_often_earns_a_too_many_pings_goaway_and_a_doubled_keepalive_next_time() {
    let server = Config {
        ping_policy: EnforcementPolicy {
            min_time: Duration::from_secs(60),
            permit_without_stream: true,
        },
        ..Config::server()
    };
    let mut pair = Pair::with_configs(11, keepalive_client(10, 20), server);
    let id = pair.client.open_stream(request(), false).unwrap();
    pair.drive();
    // The client's keepalive (10 s) is far below the server's 60 s minimum: strikes.
    for _ in 0..6 {
        pair.advance(Duration::from_secs(10));
    }
    let events = pair.take_events(Side::Client);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::GoAway { code: ErrorCode::EnhanceYourCalm, debug_data, .. }
                if debug_data == "too_many_pings"
        )),
        "{events:?}"
    );
    // The server closed its socket after the GOAWAY; the client reports the GOAWAY.
    assert!(
        matches!(
            pair.client.close_reason(),
            Some(CloseReason::GoAway {
                code: ErrorCode::EnhanceYourCalm,
                ..
            })
        ),
        "{:?}",
        pair.client.close_reason()
    );
    assert_eq!(
        pair.client.next_keepalive_time(),
        Some(Duration::from_secs(20))
    );
    assert_eq!(
        pair.client.send_data(id, Bytes::new(), true),
        Err(grpc_sansio::h2::CommandError::Closed)
    );
}

#[test]
fn a_server_pings_idle_clients_and_closes_silent_ones() {
    let config = Config {
        server_keepalive: ServerKeepaliveConfig {
            time: Some(Duration::from_secs(60)),
            timeout: Duration::from_secs(10),
            ..ServerKeepaliveConfig::default()
        },
        ..Config::server()
    };
    let mut s = Scripted::connected(Role::Server, config);
    s.advance(Duration::from_secs(60));
    assert_eq!(pings(&s.written()).len(), 1);
    s.advance(Duration::from_secs(10));
    assert_eq!(s.conn.close_reason(), Some(&CloseReason::KeepaliveTimeout));
}

#[test]
fn max_connection_idle_starts_a_graceful_shutdown_with_max_idle() {
    let config = Config {
        server_keepalive: ServerKeepaliveConfig {
            max_connection_idle: Some(Duration::from_secs(30)),
            ..ServerKeepaliveConfig::default()
        },
        ..Config::server()
    };
    let mut pair = Pair::with_configs(12, Config::client(), config);
    pair.drive();
    pair.advance(Duration::from_secs(31));
    let events = pair.take_events(Side::Client);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::GoAway { code: ErrorCode::NoError, debug_data, .. } if debug_data == "max_idle"
        )),
        "{events:?}"
    );
    assert!(pair.server.is_closed());
    assert!(pair.client.is_closed());
}

#[test]
fn the_final_goaway_goes_out_even_if_the_shutdown_ping_is_never_answered() {
    let mut s = Scripted::connected(Role::Server, Config::server());
    let h = s.headers(1, &[(":method", "POST"), (":path", "/a/b")], false);
    s.send(h);
    s.conn.shutdown();
    let first: Vec<u32> = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::GoAway(g) => Some(g.last_stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(first, vec![(1 << 31) - 1]);
    s.advance(Duration::from_millis(4_999));
    assert!(s.written().is_empty());
    s.advance(Duration::from_millis(1));
    let second: Vec<u32> = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::GoAway(g) => Some(g.last_stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(second, vec![1]);
}

#[test]
fn bdp_grows_the_receive_window_during_a_bulk_transfer() {
    let mut pair = Pair::new(13);
    let id = pair.client.open_stream(request(), false).unwrap();
    pair.drive();
    pair.server
        .send_headers(id, vec![Header::new(":status", "200")], false)
        .unwrap();
    let chunk = Bytes::from(vec![0x42u8; 64 * 1024]);
    for _ in 0..128 {
        pair.server.send_data(id, chunk.clone(), false).unwrap();
        // A millisecond per chunk: the BDP pings measure a real round trip.
        pair.advance(Duration::from_millis(1));
    }
    let grown: Vec<u32> = pair
        .take_events(Side::Server)
        .iter()
        .filter_map(|e| match e {
            Event::RemoteSettings(Settings {
                initial_window_size: Some(w),
                ..
            }) => Some(*w),
            _ => None,
        })
        .collect();
    assert!(!grown.is_empty(), "the client never raised its window");
    assert!(grown.windows(2).all(|w| w[0] < w[1]), "{grown:?}");
    assert!(*grown.last().unwrap() > 65_535);
    assert!(*grown.last().unwrap() <= 16 << 20);
    let received: usize = pair
        .take_events(Side::Client)
        .iter()
        .map(|e| match e {
            Event::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(received, 128 * 64 * 1024);
    let _ = StreamId::ZERO;
}

/// Runs `calls` unary calls one at a time on a fresh client, each answered with a
/// `size`-octet message; the calls after which the client sent a BDP PING (each is
/// acknowledged at once).
fn bdp_pings_of_calls_one_at_a_time(s: &mut Scripted, size: usize, calls: u32) -> Vec<u32> {
    static BODY: [u8; 4_096] = [7; 4_096];
    let mut pinged_at = Vec::new();
    for call in 0..calls {
        let id = s.conn.open_stream(request(), true).unwrap().value();
        s.written();
        let headers = s.headers(id, &[(":status", "200")], false);
        s.send(headers);
        s.send(grpc_sansio_tests::script::data(id, &BODY[..size], false));
        let trailers = s.headers(id, &[("grpc-status", "0")], true);
        s.send(trailers);
        s.events();
        let written = s.written();
        for payload in pings(&written) {
            pinged_at.push(call);
            s.send(Frame::Ping(Ping::ack(payload)));
        }
        s.advance(Duration::from_millis(1));
    }
    pinged_at
}

#[test]
fn calls_one_at_a_time_ping_once_per_quarter_of_the_window() {
    // grpc-go measures after every response of a lone unary call: a PING and a
    // WINDOW_UPDATE out and an ACK in per call. Ours waits for 16,383 octets (a quarter
    // of the 64 KiB window): 25-octet responses ask every 656th call, 4 KiB ones every
    // fourth.
    let mut s = Scripted::connected(Role::Client, Config::client());
    assert_eq!(
        bdp_pings_of_calls_one_at_a_time(&mut s, 25, 1_400),
        [655, 1_311]
    );
    let mut s = Scripted::connected(Role::Client, Config::client());
    assert_eq!(
        bdp_pings_of_calls_one_at_a_time(&mut s, 4_096, 12),
        [3, 7, 11]
    );

    // A bulk response still starts a measurement at its first full frame.
    let id = s.conn.open_stream(request(), true).unwrap().value();
    s.written();
    let headers = s.headers(id, &[(":status", "200")], false);
    s.send(headers);
    s.send(grpc_sansio_tests::script::data(id, &[7; 16_384], false));
    assert_eq!(pings(&s.written()).len(), 1);
}
