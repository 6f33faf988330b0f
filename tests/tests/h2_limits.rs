//! Scenario: the known HTTP/2 floods played against one `Connection`. Each shows memory
//! stays bounded and, where the attack is unambiguous, the GOAWAY that ends it.

use bytes::{Bytes, BytesMut};
use grpc_sansio::ErrorCode;
use grpc_sansio::frame::{
    self, Frame, FrameHeader, GoAway, Headers, Ping, Priority, PrioritySpec, RstStream, Settings,
    StreamId, WindowUpdate, encode_continuation, encode_raw, flags, kind,
};
use grpc_sansio::h2::{Config, Event, Role};
use grpc_sansio_tests::script::{Scripted, data};

const REQUEST: &[(&str, &str)] = &[
    (":method", "POST"),
    (":path", "/svc/M"),
    (":scheme", "http"),
];

fn goaway(frames: &[Frame]) -> Option<&GoAway> {
    frames.iter().find_map(|f| match f {
        Frame::GoAway(g) => Some(g),
        _ => None,
    })
}

fn server() -> Scripted {
    Scripted::connected(Role::Server, Config::server())
}

/// Sends `n` copies of `frame` in one read, as a flood arrives.
fn flood(s: &mut Scripted, frame: &Frame, n: usize) {
    let mut buf = BytesMut::new();
    for _ in 0..n {
        frame
            .encode(&mut buf, frame::DEFAULT_MAX_FRAME_SIZE)
            .unwrap();
    }
    s.conn.recv(buf, s.now);
}

#[test]
fn a_server_answers_a_ping_flood_with_too_many_pings() {
    let mut s = server();
    flood(&mut s, &Frame::Ping(Ping::new(*b"floodpin")), 10_000);
    let frames = s.written();
    let acks = frames
        .iter()
        .filter(|f| matches!(f, Frame::Ping(p) if p.ack))
        .count();
    assert!(acks <= 2, "pings past the policy are not answered: {acks}");
    let g = goaway(&frames).expect("GOAWAY");
    assert_eq!(g.error_code, ErrorCode::EnhanceYourCalm);
    assert_eq!(g.debug_data, "too_many_pings");
}

#[test]
fn ping_flood_replies_are_capped_and_reading_pauses_until_they_drain() {
    // A client has no ping policy (servers may ping it at will), so the flood is paced by
    // the reply queue alone.
    let mut s = Scripted::connected(Role::Client, Config::client());
    flood(&mut s, &Frame::Ping(Ping::new(*b"floodpin")), 10_000);
    let cap = Config::client().max_queued_control_frames;
    assert!(s.conn.queued_control_frames() <= cap);
    assert!(
        !s.conn.wants_read(),
        "a peer not reading our ACKs must be paused"
    );
    // As the writer drains, the held-back pings are answered, never more than the cap
    // queued at once: every one gets its ACK in the end.
    let acks = s
        .written()
        .iter()
        .filter(|f| matches!(f, Frame::Ping(p) if p.ack))
        .count();
    assert_eq!(acks, 10_000);
    assert!(s.conn.wants_read());
}

#[test]
fn settings_flood_is_paced_the_same_way() {
    let mut s = server();
    flood(&mut s, &Frame::Settings(Settings::default()), 5_000);
    assert!(s.conn.queued_control_frames() <= Config::server().max_queued_control_frames);
    let acks = s
        .written()
        .iter()
        .filter(|f| matches!(f, Frame::Settings(st) if st.ack))
        .count();
    assert_eq!(acks, 5_000);
}

#[test]
fn empty_data_flood_ends_with_enhance_your_calm() {
    let mut s = server();
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    flood(&mut s, &data(1, b"", false), 100);
    assert!(goaway(&s.written()).is_none(), "100 are tolerated");
    flood(&mut s, &data(1, b"", false), 1);
    assert_eq!(
        goaway(&s.written()).unwrap().error_code,
        ErrorCode::EnhanceYourCalm
    );
}

#[test]
fn continuation_flood_ends_with_enhance_your_calm_and_bounded_buffering() {
    let mut s = server();
    let mut buf = BytesMut::new();
    let head = FrameHeader {
        len: 1,
        kind: kind::HEADERS,
        flags: 0,
        stream_id: StreamId::new(1),
    };
    encode_raw(&head, &[0x82], &mut buf);
    for _ in 0..10_000 {
        encode_continuation(StreamId::new(1), &[], false, &mut buf);
    }
    s.conn.recv(buf, s.now);
    let frames = s.written();
    assert_eq!(
        goaway(&frames).unwrap().error_code,
        ErrorCode::EnhanceYourCalm
    );
    assert!(s.conn.is_closed());
}

#[test]
fn hpack_bomb_resets_the_stream_and_keeps_the_connection() {
    // One 4064-byte entry, then a block that references it 4000 times: 16 MB decoded
    // from 4 KB, far above the 16 KiB header-list limit.
    let mut s = server();
    let mut block = BytesMut::new();
    // Literal with indexing, new name "x", value length 4000 (127 + 0x21 + 0x1e << 7).
    block.extend_from_slice(&[0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e]);
    block.extend_from_slice(&[b'v'; 4000]);
    s.send(Frame::Headers(Headers {
        end_stream: true,
        ..Headers::new(StreamId::new(1), block.freeze())
    }));
    let mut bomb = BytesMut::new();
    bomb.extend_from_slice(&[0x82]);
    bomb.extend_from_slice(&[0xbe; 4000]);
    s.send(Frame::Headers(Headers {
        end_stream: true,
        ..Headers::new(StreamId::new(3), bomb.freeze())
    }));
    let frames = s.written();
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::RstStream(r) if r.stream_id.value() == 3)),
        "{frames:?}"
    );
    assert!(goaway(&frames).is_none());
    // HPACK stayed in step: the next request decodes.
    let h = s.headers(5, REQUEST, true);
    s.send(h);
    let opened: Vec<u32> = s
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Headers { stream_id, .. } => Some(stream_id.value()),
            _ => None,
        })
        .collect();
    assert!(!opened.contains(&3));
    assert!(opened.contains(&5), "{opened:?}");
}

#[test]
fn rapid_reset_ends_with_enhance_your_calm() {
    let mut s = server();
    let limit = Config::server().max_remote_resets;
    for i in 0..=limit as u32 {
        let id = 2 * i + 1;
        let h = s.headers(id, REQUEST, false);
        s.send(h);
        s.send(Frame::RstStream(RstStream::new(
            StreamId::new(id),
            ErrorCode::Cancel,
        )));
    }
    let frames = s.written();
    assert_eq!(
        goaway(&frames).unwrap().error_code,
        ErrorCode::EnhanceYourCalm
    );
    assert_eq!(s.conn.open_streams(), 0);
}

#[test]
fn resets_spread_over_time_are_tolerated() {
    let mut s = server();
    let limit = Config::server().max_remote_resets;
    for i in 0..(3 * limit) as u32 {
        let id = 2 * i + 1;
        let h = s.headers(id, REQUEST, false);
        s.send(h);
        s.send(Frame::RstStream(RstStream::new(
            StreamId::new(id),
            ErrorCode::Cancel,
        )));
        s.advance(std::time::Duration::from_millis(200));
    }
    assert!(goaway(&s.written()).is_none());
    assert!(s.conn.is_connected());
}

#[test]
fn too_many_stream_errors_end_with_enhance_your_calm() {
    let mut s = server();
    let limit = Config::server().max_local_resets;
    // Each WINDOW_UPDATE of 0 on a stream is a stream error we answer with RST_STREAM.
    let mut buf = BytesMut::new();
    for i in 0..=limit as u32 {
        let head = FrameHeader {
            len: 4,
            kind: kind::WINDOW_UPDATE,
            flags: 0,
            stream_id: StreamId::new(2 * i + 1),
        };
        encode_raw(&head, &[0, 0, 0, 0], &mut buf);
    }
    s.conn.recv(buf, s.now);
    let frames = s.written();
    let resets = frames
        .iter()
        .filter(|f| matches!(f, Frame::RstStream(_)))
        .count();
    assert!(resets <= limit, "{resets}");
    assert_eq!(
        goaway(&frames).unwrap().error_code,
        ErrorCode::EnhanceYourCalm
    );
}

#[test]
fn window_update_flood_is_absorbed_without_growth() {
    let mut s = server();
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    flood(
        &mut s,
        &Frame::WindowUpdate(WindowUpdate::new(StreamId::new(1), 1)),
        50_000,
    );
    flood(
        &mut s,
        &Frame::WindowUpdate(WindowUpdate::new(StreamId::ZERO, 1)),
        50_000,
    );
    assert!(s.written().is_empty(), "nothing to answer");
    assert_eq!(s.conn.queued_control_frames(), 0);
    assert!(s.conn.is_connected());
}

#[test]
fn data_dribble_is_delivered_and_flow_controlled_without_growth() {
    let mut s = server();
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    flood(&mut s, &data(1, b"x", false), 20_000);
    let delivered: usize = s
        .events()
        .iter()
        .map(|e| match e {
            Event::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(delivered, 20_000);
    // Unreleased: the stream window (65 535) bounds what the peer may still send.
    assert!(s.conn.wants_read());
    let frames = s.written();
    assert!(
        frames.iter().all(
            |f| matches!(f, Frame::WindowUpdate(w) if w.stream_id.is_zero())
                || matches!(f, Frame::Ping(_))
        ),
        "only connection updates (and BDP pings) before the app reads: {frames:?}"
    );
}

#[test]
fn priority_cycles_are_ignored_without_state() {
    let mut s = server();
    let mut buf = BytesMut::new();
    for i in 1..=10_000u32 {
        let f = Frame::Priority(Priority {
            stream_id: StreamId::new(2 * i + 1),
            spec: PrioritySpec {
                exclusive: true,
                dependency: StreamId::new(2 * (i % 100) + 3),
                weight: 255,
            },
        });
        f.encode(&mut buf, frame::DEFAULT_MAX_FRAME_SIZE).unwrap();
    }
    s.conn.recv(buf, s.now);
    assert!(s.written().is_empty());
    assert_eq!(s.conn.open_streams(), 0);
    // Streams named only by PRIORITY are still idle: a later HEADERS opens them.
    let h = s.headers(3, REQUEST, true);
    s.send(h);
    assert!(
        s.events()
            .iter()
            .any(|e| matches!(e, Event::Headers { stream_id, .. } if stream_id.value() == 3))
    );
    let _ = (Bytes::new(), flags::END_HEADERS);
}

#[test]
fn empty_headers_count_toward_the_empty_frame_limit() {
    let mut s = server();
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    flood(&mut s, &data(1, b"", false), 60);
    let empty = Frame::Headers(Headers::new(StreamId::new(1), Bytes::new()));
    flood(&mut s, &empty, 41);
    let frames = s.written();
    assert_eq!(
        goaway(&frames).unwrap().error_code,
        ErrorCode::EnhanceYourCalm
    );
}
