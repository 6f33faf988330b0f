//! Scripted-peer tests: one rule of RFC 9113 (or of gRPC over HTTP/2) per test, hand-built
//! frames into one `Connection`, asserting the exact frames it writes back and its events.

use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::ErrorCode;
use grpc_sansio::frame::{
    Frame, GoAway, Ping, PrioritySpec, PushPromise, RstStream, Settings, StreamId, WindowUpdate,
};
use grpc_sansio::h2::{CloseReason, Config, Event, Header, Initiator, Role};
use grpc_sansio_tests::script::{Scripted, data};

const REQUEST: &[(&str, &str)] = &[
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/svc/M"),
    (":authority", "x"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
];
const RESPONSE: &[(&str, &str)] = &[(":status", "200"), ("content-type", "application/grpc")];
const TRAILERS: &[(&str, &str)] = &[("grpc-status", "0")];

fn req_headers() -> Vec<Header> {
    REQUEST.iter().map(|(n, v)| Header::new(*n, *v)).collect()
}

/// Client defaults with fixed windows: no BDP pings in the frames these tests count.
fn fixed_client() -> Config {
    Config {
        dynamic_window: false,
        ..Config::client()
    }
}

/// A connected client with stream 1 open (request HEADERS written).
fn client_with_stream() -> Scripted {
    let mut s = Scripted::connected(Role::Client, fixed_client());
    let id = s.conn.open_stream(req_headers(), false).unwrap();
    assert_eq!(id, StreamId::new(1));
    let written = s.written();
    assert!(matches!(written.as_slice(), [Frame::Headers(h)] if h.stream_id == id));
    s
}

fn goaway_of(frames: &[Frame]) -> Option<&GoAway> {
    frames.iter().find_map(|f| match f {
        Frame::GoAway(g) => Some(g),
        _ => None,
    })
}

fn rst_of(frames: &[Frame]) -> Option<(u32, ErrorCode)> {
    frames.iter().find_map(|f| match f {
        Frame::RstStream(r) => Some((r.stream_id.value(), r.error_code)),
        _ => None,
    })
}

// ----- start-up -----

#[test]
fn client_writes_preface_settings_and_a_connection_window_update_when_its_window_is_larger() {
    let config = Config {
        initial_connection_window: 1 << 20,
        initial_stream_window: 1 << 18,
        ..Config::client()
    };
    let mut s = Scripted::raw(Role::Client, config);
    let frames = s.written(); // `written` asserts and strips the preface
    match frames.as_slice() {
        [Frame::Settings(settings), Frame::WindowUpdate(wu)] => {
            assert_eq!(settings.enable_push, Some(false));
            assert_eq!(settings.initial_window_size, Some(1 << 18));
            assert_eq!(wu.stream_id, StreamId::ZERO);
            assert_eq!(wu.increment, (1 << 20) - 65_535);
        }
        other => panic!("unexpected start-up frames: {other:?}"),
    }
}

#[test]
fn server_rejects_a_bad_preface_without_writing_anything() {
    let mut s = Scripted::raw(Role::Server, Config::server());
    s.written(); // its SETTINGS
    s.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(s.written().is_empty(), "no GOAWAY for a non-HTTP/2 peer");
    assert_eq!(s.conn.close_reason(), Some(&CloseReason::BadPreface));
    assert!(s.conn.is_closed());
}

#[test]
fn a_preface_split_into_single_bytes_is_accepted() {
    let mut s = Scripted::raw(Role::Server, Config::server());
    for b in grpc_sansio::frame::PREFACE {
        s.send_bytes(&[*b]);
    }
    s.send(Frame::Settings(Settings::default()));
    assert!(s.events().contains(&Event::Connected));
}

#[test]
fn first_frame_other_than_settings_is_a_connection_protocol_error() {
    let mut s = Scripted::raw(Role::Server, Config::server());
    s.send_bytes(grpc_sansio::frame::PREFACE);
    s.send(Frame::Ping(Ping::new(*b"12345678")));
    let frames = s.written();
    assert_eq!(
        goaway_of(&frames).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

#[test]
fn settings_are_acknowledged_and_connected_is_reported_once() {
    let mut s = Scripted::raw(Role::Client, Config::client());
    s.written();
    s.send(Frame::Settings(Settings::default()));
    s.send(Frame::Settings(Settings {
        max_concurrent_streams: Some(7),
        ..Settings::default()
    }));
    let acks = s
        .written()
        .iter()
        .filter(|f| matches!(f, Frame::Settings(s) if s.ack))
        .count();
    assert_eq!(acks, 2);
    let connected = s
        .events()
        .iter()
        .filter(|e| **e == Event::Connected)
        .count();
    assert_eq!(connected, 1);
}

#[test]
fn a_server_enabling_push_is_a_protocol_error() {
    let mut s = Scripted::raw(Role::Client, Config::client());
    s.send(Frame::Settings(Settings {
        enable_push: Some(true),
        ..Settings::default()
    }));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

// ----- HEADERS -----

#[test]
fn response_headers_then_trailers_are_reported_as_headers_then_trailers() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    let t = s.headers(1, TRAILERS, true);
    s.send(t);
    let events = s.events();
    assert!(matches!(
        &events[0],
        Event::Headers {
            end_stream: false,
            ..
        }
    ));
    assert!(matches!(&events[1], Event::Trailers { fields, .. } if fields[0].value == "0"));
}

#[test]
fn trailers_only_response_is_headers_with_end_stream() {
    let mut s = client_with_stream();
    let t = s.headers(1, &[(":status", "200"), ("grpc-status", "12")], true);
    s.send(t);
    assert!(matches!(
        s.events().as_slice(),
        [Event::Headers {
            end_stream: true,
            ..
        }]
    ));
}

#[test]
fn second_headers_without_end_stream_is_a_stream_protocol_error() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    let again = s.headers(1, RESPONSE, false);
    s.send(again);
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::ProtocolError)));
    let events = s.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::StreamReset { reset, .. } if reset.code == ErrorCode::ProtocolError
            && reset.initiator == Initiator::Local
    )));
    assert!(s.conn.is_connected(), "a stream error keeps the connection");
}

#[test]
fn headers_on_a_stream_the_client_never_opened_is_a_connection_error() {
    let mut s = client_with_stream();
    let h = s.headers(3, RESPONSE, false);
    s.send(h);
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

#[test]
fn a_bad_hpack_block_is_a_connection_compression_error() {
    let mut s = client_with_stream();
    s.send(Frame::Headers(grpc_sansio::frame::Headers::new(
        StreamId::new(1),
        Bytes::from_static(&[0x80]), // index 0
    )));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::CompressionError
    );
}

#[test]
fn headers_depending_on_themselves_reset_the_stream_but_keep_hpack_in_step() {
    let mut s = Scripted::connected(Role::Server, Config::server());
    let Frame::Headers(mut h) = s.headers(1, REQUEST, false) else {
        unreachable!()
    };
    h.priority = Some(PrioritySpec {
        exclusive: false,
        dependency: StreamId::new(1),
        weight: 15,
    });
    s.send(Frame::Headers(h));
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::ProtocolError)));
    // The block was decoded: a later block indexing into it still works.
    let next = s.headers(3, REQUEST, true);
    s.send(next);
    let events = s.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Headers { stream_id, .. } if stream_id.value() == 3)),
        "{events:?}"
    );
}

// ----- DATA and flow control -----

#[test]
fn data_before_headers_is_a_stream_protocol_error() {
    let mut s = client_with_stream();
    s.send(data(1, b"early", false));
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::ProtocolError)));
}

#[test]
fn data_ending_without_trailers_ends_the_stream() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    s.send(data(1, b"\0\0\0\0\x01x", true));
    let events = s.events();
    assert!(matches!(
        events.last(),
        Some(Event::Data {
            end_stream: true,
            ..
        })
    ));
    assert_eq!(
        s.conn.open_streams(),
        1,
        "our side of the stream is still open"
    );
}

#[test]
fn window_updates_follow_the_quarter_rule_as_the_application_consumes() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    static CHUNK: [u8; 4096] = [7; 4096];
    // grpc-go's threshold is limit / 4 in integers: 65535 / 4 = 16383. One byte short of
    // it, nothing is announced.
    for _ in 0..3 {
        s.send(data(1, &CHUNK, false));
    }
    s.send(data(1, &CHUNK[..4094], false));
    s.events();
    assert!(s.written().is_empty());
    // The connection window is released on receipt (grpc-go's rule)…
    s.send(data(1, &CHUNK[..1], false));
    assert_eq!(
        s.written(),
        vec![Frame::WindowUpdate(WindowUpdate::new(
            StreamId::ZERO,
            16_383
        ))]
    );
    // …the stream window only as the application consumes.
    s.conn.release_data(StreamId::new(1), 16_382).unwrap();
    assert!(s.written().is_empty());
    s.conn.release_data(StreamId::new(1), 1).unwrap();
    assert_eq!(
        s.written(),
        vec![Frame::WindowUpdate(WindowUpdate::new(
            StreamId::new(1),
            16_383
        ))]
    );
}

#[test]
fn data_beyond_the_stream_window_resets_with_flow_control_error() {
    let config = Config {
        initial_stream_window: 65_535,
        ..Config::client()
    };
    let mut s = Scripted::connected(Role::Client, config);
    s.conn.open_stream(req_headers(), false).unwrap();
    s.written();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    static BIG: [u8; 16_384] = [1; 16_384];
    for _ in 0..3 {
        s.send(data(1, &BIG, false));
    }
    s.send(data(1, &BIG[..16_383], false)); // exactly 65535: allowed
    assert_eq!(rst_of(&s.written()), None);
    s.send(data(1, &BIG[..1], false));
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::FlowControlError)));
}

#[test]
fn padding_counts_against_the_window_and_is_released_at_once() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    // 20 000 bytes of padding-heavy frames: each carries 1 byte of data and 255 of padding.
    for _ in 0..80 {
        s.send(Frame::Data(grpc_sansio::frame::Data {
            pad_len: Some(254),
            ..grpc_sansio::frame::Data::new(StreamId::new(1), Bytes::from_static(b"x"))
        }));
    }
    let frames = s.written();
    let stream_updates: u32 = frames
        .iter()
        .filter_map(|f| match f {
            Frame::WindowUpdate(wu) if wu.stream_id.value() == 1 => Some(wu.increment),
            _ => None,
        })
        .sum();
    // Each frame releases its 255 bytes of padding at once; the 65th crosses the
    // quarter threshold (16 383) and everything unannounced goes out: 65 × 255.
    assert_eq!(stream_updates, 65 * 255, "{frames:?}");
}

#[test]
fn our_sends_are_cut_to_the_peers_windows_and_resume_on_window_update() {
    let mut s = Scripted::connected(Role::Client, Config::client());
    let id = s.conn.open_stream(req_headers(), false).unwrap();
    s.conn
        .send_data(id, Bytes::from(vec![9u8; 100_000]), true)
        .unwrap();
    let frames = s.written();
    let sent: usize = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some(d.payload.len()),
            _ => None,
        })
        .sum();
    assert_eq!(sent, 65_535, "stopped at the initial window");
    assert!(frames.iter().all(|f| match f {
        Frame::Data(d) => d.payload.len() <= 16_384,
        _ => true,
    }));
    // The connection window opens first: nothing moves until the stream's does too.
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        100_000,
    )));
    assert!(s.written().is_empty());
    s.send(Frame::WindowUpdate(WindowUpdate::new(id, 100_000)));
    let rest: usize = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some(d.payload.len()),
            _ => None,
        })
        .sum();
    assert_eq!(rest, 100_000 - 65_535);
}

/// The DATA frames among `frames`: (payload, END_STREAM).
fn sent_data(frames: &[Frame]) -> Vec<(Bytes, bool)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some((d.payload.clone(), d.end_stream)),
            _ => None,
        })
        .collect()
}

/// A stream of a fresh client with `chunks` queued on it, each a `send_data`; the last
/// ends the stream.
fn queued(chunks: &[Bytes]) -> (Scripted, StreamId) {
    let mut s = Scripted::connected(Role::Client, Config::client());
    let id = s.conn.open_stream(req_headers(), false).unwrap();
    s.written();
    for (i, chunk) in chunks.iter().enumerate() {
        s.conn
            .send_data(id, chunk.clone(), i + 1 == chunks.len())
            .unwrap();
    }
    (s, id)
}

#[test]
fn queued_chunks_share_data_frames_up_to_the_frame_size_and_the_windows() {
    // A gRPC message as its transport queues it (its 5-octet prefix, then the body
    // uncopied) and the END_STREAM that closes the request: one frame.
    let prefix = Bytes::from_static(&[0, 0, 0, 16, 0]);
    let body = Bytes::from(vec![1u8; 4_096]);
    let (mut s, _) = queued(&[prefix.clone(), body.clone(), Bytes::new()]);
    let frames = sent_data(&s.written());
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, [&prefix[..], &body[..]].concat());
    assert!(frames[0].1, "END_STREAM rides on the same frame");

    // Past the max frame size, frames are filled to it across the chunks.
    let body = Bytes::from(vec![2u8; 20_000]);
    let (mut s, _) = queued(&[prefix.clone(), body.clone()]);
    let frames = sent_data(&s.written());
    let lens: Vec<_> = frames.iter().map(|(p, end)| (p.len(), *end)).collect();
    assert_eq!(lens, [(16_384, false), (3_621, true)]);
    let sent: Vec<u8> = frames.iter().flat_map(|(p, _)| p.to_vec()).collect();
    assert_eq!(sent, [&prefix[..], &body[..]].concat());

    // And cut at the windows: the rest, with the END_STREAM, follows the updates.
    let body = Bytes::from(vec![3u8; 70_000]);
    let (mut s, id) = queued(&[prefix.clone(), body.clone()]);
    let first = sent_data(&s.written());
    let lens: Vec<_> = first.iter().map(|(p, end)| (p.len(), *end)).collect();
    assert_eq!(
        lens,
        [
            (16_384, false),
            (16_384, false),
            (16_384, false),
            (16_383, false)
        ]
    );
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        10_000,
    )));
    s.send(Frame::WindowUpdate(WindowUpdate::new(id, 10_000)));
    let rest = sent_data(&s.written());
    let lens: Vec<_> = rest.iter().map(|(p, end)| (p.len(), *end)).collect();
    assert_eq!(lens, [(4_470, true)]);
    let sent: Vec<u8> = first
        .iter()
        .chain(&rest)
        .flat_map(|(p, _)| p.to_vec())
        .collect();
    assert_eq!(sent, [&prefix[..], &body[..]].concat());
}

#[test]
fn a_close_behind_data_the_windows_hold_back_waits_for_it() {
    // The END_STREAM queued behind blocked data must not overtake it: it goes out on
    // the frame that carries the data's last octet.
    let (mut s, id) = queued(&[
        Bytes::from(vec![4u8; 65_535]),
        Bytes::from_static(b"x"),
        Bytes::new(),
    ]);
    let first = sent_data(&s.written());
    assert!(first.iter().all(|(_, end)| !end), "{first:?}");
    assert_eq!(first.iter().map(|(p, _)| p.len()).sum::<usize>(), 65_535);
    s.send(Frame::WindowUpdate(WindowUpdate::new(StreamId::ZERO, 1)));
    s.send(Frame::WindowUpdate(WindowUpdate::new(id, 1)));
    let rest = sent_data(&s.written());
    assert_eq!(rest, [(Bytes::from_static(b"x"), true)]);
}

#[test]
fn a_smaller_initial_window_makes_send_windows_negative_until_updates_cover_it() {
    let mut s = Scripted::connected(Role::Client, Config::client());
    let id = s.conn.open_stream(req_headers(), false).unwrap();
    s.conn
        .send_data(id, Bytes::from(vec![1u8; 60_000]), false)
        .unwrap();
    s.written();
    // 60 000 sent against 65 535; the peer shrinks the initial window to 1 000: -59 000.
    s.send(Frame::Settings(Settings {
        initial_window_size: Some(1_000),
        ..Settings::default()
    }));
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        1 << 20,
    )));
    s.conn
        .send_data(id, Bytes::from(vec![2u8; 10]), false)
        .unwrap();
    let frames = s.written();
    assert!(
        !frames.iter().any(|f| matches!(f, Frame::Data(_))),
        "{frames:?}"
    );
    s.send(Frame::WindowUpdate(WindowUpdate::new(id, 59_000)));
    assert!(!s.written().iter().any(|f| matches!(f, Frame::Data(_))));
    s.send(Frame::WindowUpdate(WindowUpdate::new(id, 10)));
    let frames = s.written();
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Data(d) if d.payload.len() == 10)),
        "{frames:?}"
    );
}

#[test]
fn window_update_overflow_is_a_stream_or_connection_flow_control_error() {
    let mut s = client_with_stream();
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::new(1),
        (1 << 31) - 1,
    )));
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::FlowControlError)));
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        (1 << 31) - 1,
    )));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::FlowControlError
    );
}

// ----- RST_STREAM -----

#[test]
fn refused_stream_marks_the_stream_unprocessed() {
    let mut s = client_with_stream();
    s.send(Frame::RstStream(RstStream::new(
        StreamId::new(1),
        ErrorCode::RefusedStream,
    )));
    assert!(matches!(
        s.events().as_slice(),
        [Event::StreamReset { reset, .. }]
            if reset.unprocessed && reset.initiator == Initiator::Remote
    ));
    assert_eq!(s.conn.open_streams(), 0);
}

#[test]
fn rst_stream_on_an_idle_stream_is_a_connection_error_and_on_a_closed_one_ignored() {
    let mut s = client_with_stream();
    s.send(Frame::RstStream(RstStream::new(
        StreamId::new(1),
        ErrorCode::Cancel,
    )));
    s.events();
    s.send(Frame::RstStream(RstStream::new(
        StreamId::new(1),
        ErrorCode::Cancel,
    )));
    assert!(s.written().is_empty());
    s.send(Frame::RstStream(RstStream::new(
        StreamId::new(5),
        ErrorCode::Cancel,
    )));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

#[test]
fn late_data_on_a_stream_we_reset_is_ignored() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    s.conn.reset(StreamId::new(1), ErrorCode::Cancel).unwrap();
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::Cancel)));
    s.send(data(1, b"in flight", false));
    let t = s.headers(1, TRAILERS, true);
    s.send(t);
    assert!(s.written().is_empty());
    assert!(s.conn.is_connected());
}

// ----- SETTINGS: concurrency -----

#[test]
fn streams_wait_for_max_concurrent_streams_and_go_when_it_rises() {
    let mut s = Scripted::connected(Role::Client, Config::client());
    s.send(Frame::Settings(Settings {
        max_concurrent_streams: Some(1),
        ..Settings::default()
    }));
    s.written();
    let a = s.conn.open_stream(req_headers(), true).unwrap();
    let b = s.conn.open_stream(req_headers(), true).unwrap();
    let heads: Vec<u32> = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::Headers(h) => Some(h.stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(heads, vec![a.value()]);
    s.send(Frame::Settings(Settings {
        max_concurrent_streams: Some(2),
        ..Settings::default()
    }));
    let heads: Vec<u32> = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::Headers(h) => Some(h.stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(heads, vec![b.value()]);
}

#[test]
fn a_server_refuses_streams_over_its_limit() {
    let config = Config {
        max_concurrent_streams: Some(1),
        ..Config::server()
    };
    let mut s = Scripted::connected(Role::Server, config);
    let a = s.headers(1, REQUEST, false);
    s.send(a);
    let b = s.headers(3, REQUEST, false);
    s.send(b);
    assert_eq!(rst_of(&s.written()), Some((3, ErrorCode::RefusedStream)));
    let opened = s
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Headers { .. }))
        .count();
    assert_eq!(opened, 1);
}

// ----- PING -----

#[test]
fn ping_is_answered_before_queued_data() {
    let mut s = Scripted::connected(Role::Client, Config::client());
    let id = s.conn.open_stream(req_headers(), false).unwrap();
    s.conn
        .send_data(id, Bytes::from(vec![0u8; 30_000]), false)
        .unwrap();
    s.send(Frame::Ping(Ping::new(*b"pingpong")));
    let frames = s.written();
    assert_eq!(frames[0], Frame::Ping(Ping::ack(*b"pingpong")));
}

// ----- GOAWAY -----

#[test]
fn goaway_resets_streams_above_its_id_as_unprocessed_and_drains_the_rest() {
    let mut s = Scripted::connected(Role::Client, Config::client());
    let ids: Vec<StreamId> = (0..3)
        .map(|_| s.conn.open_stream(req_headers(), false).unwrap())
        .collect();
    s.written();
    s.send(Frame::GoAway(GoAway::new(
        StreamId::new(1),
        ErrorCode::NoError,
    )));
    let events = s.events();
    let unprocessed: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::StreamReset { stream_id, reset } if reset.unprocessed => Some(stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(unprocessed, vec![3, 5]);
    assert!(matches!(events[0], Event::GoAway { .. }));
    assert!(s.conn.open_stream(req_headers(), true).is_err());
    // Stream 1 still completes, then the connection closes.
    let h = s.headers(1, &[(":status", "200"), ("grpc-status", "0")], true);
    s.send(h);
    s.conn.send_data(ids[0], Bytes::new(), true).unwrap();
    s.written();
    assert!(s.conn.is_closed(), "{:?}", s.conn.close_reason());
}

#[test]
fn goaway_with_an_even_last_stream_id_from_a_server_is_a_protocol_error() {
    let mut s = client_with_stream();
    s.send(Frame::GoAway(GoAway::new(
        StreamId::new(2),
        ErrorCode::NoError,
    )));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

#[test]
fn a_second_goaway_may_not_raise_the_last_stream_id() {
    let mut s = client_with_stream();
    s.send(Frame::GoAway(GoAway::new(
        StreamId::new(1),
        ErrorCode::NoError,
    )));
    s.send(Frame::GoAway(GoAway::new(
        StreamId::new(1),
        ErrorCode::NoError,
    )));
    assert!(s.written().is_empty(), "same id again is fine");
    s.send(Frame::GoAway(GoAway::new(
        StreamId::new(3),
        ErrorCode::NoError,
    )));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

#[test]
fn a_server_shutdown_is_two_phase() {
    let mut s = Scripted::connected(Role::Server, Config::server());
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    s.conn.shutdown();
    let frames = s.written();
    let Some(first) = goaway_of(&frames) else {
        panic!("{frames:?}")
    };
    assert_eq!(first.last_stream_id.value(), (1 << 31) - 1);
    let ping = frames
        .iter()
        .find_map(|f| match f {
            Frame::Ping(p) if !p.ack => Some(p.payload),
            _ => None,
        })
        .expect("shutdown ping");
    // A stream started while the first GOAWAY was in flight is still accepted.
    let late = s.headers(3, REQUEST, false);
    s.send(late);
    s.send(Frame::Ping(Ping::ack(ping)));
    let frames = s.written();
    assert_eq!(goaway_of(&frames).unwrap().last_stream_id.value(), 3);
    // Streams above it are ignored.
    let too_late = s.headers(5, REQUEST, false);
    s.send(too_late);
    let opened: Vec<u32> = s
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Headers { stream_id, .. } => Some(stream_id.value()),
            _ => None,
        })
        .collect();
    assert_eq!(opened, vec![1, 3]);
}

// ----- other frames -----

#[test]
fn push_promise_is_a_connection_protocol_error() {
    let mut s = client_with_stream();
    s.send(Frame::PushPromise(PushPromise {
        stream_id: StreamId::new(1),
        promised_id: StreamId::new(2),
        header_block: Bytes::from_static(&[0x82]),
        pad_len: None,
    }));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::ProtocolError
    );
}

#[test]
fn priority_and_unknown_frames_are_ignored() {
    let mut s = client_with_stream();
    s.send(Frame::Priority(grpc_sansio::frame::Priority {
        stream_id: StreamId::new(9),
        spec: PrioritySpec {
            exclusive: true,
            dependency: StreamId::new(1),
            weight: 3,
        },
    }));
    s.send(Frame::Unknown(grpc_sansio::frame::Unknown {
        kind: 0xfa,
        flags: 0,
        stream_id: StreamId::new(1),
        payload: Bytes::from_static(b"ext"),
    }));
    assert!(s.written().is_empty());
    assert!(s.events().is_empty());
    assert!(s.conn.is_connected());
}

#[test]
fn a_connection_error_resets_open_streams_and_reports_closed() {
    let mut s = client_with_stream();
    s.send(Frame::Ping(Ping::new(*b"12345678")));
    s.send_bytes(&[0, 0, 7, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]); // PING of 7 bytes
    let frames = s.written();
    assert_eq!(
        goaway_of(&frames).unwrap().error_code,
        ErrorCode::FrameSizeError
    );
    let events = s.events();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::StreamReset { .. },
                Event::Closed {
                    reason: CloseReason::Local {
                        code: ErrorCode::FrameSizeError,
                        ..
                    }
                }
            ]
        ),
        "{events:?}"
    );
    s.advance(Duration::from_secs(60));
    assert!(s.conn.is_closed());
}

// ----- stream ids -----

#[test]
fn the_last_stream_id_is_used_then_new_streams_are_refused_and_the_owner_told() {
    let mut s = Scripted::connected(Role::Client, fixed_client());
    s.conn.skip_stream_ids_to((1 << 31) - 3);
    let a = s.conn.open_stream(req_headers(), true).unwrap();
    assert_eq!(a.value(), (1 << 31) - 3);
    assert!(s.events().is_empty());
    let b = s.conn.open_stream(req_headers(), true).unwrap();
    assert_eq!(b.value(), (1 << 31) - 1);
    assert_eq!(s.events(), vec![Event::StreamIdsExhausted]);
    assert_eq!(
        s.conn.open_stream(req_headers(), true),
        Err(grpc_sansio::h2::CommandError::StreamIdsExhausted)
    );
    // The streams already opened still work.
    let heads = s
        .written()
        .iter()
        .filter(|f| matches!(f, Frame::Headers(_)))
        .count();
    assert_eq!(heads, 2);
}

#[test]
fn a_server_must_send_headers_before_data() {
    let mut s = Scripted::connected(Role::Server, Config::server());
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    assert_eq!(
        s.conn
            .send_data(StreamId::new(1), Bytes::from_static(b"x"), false),
        Err(grpc_sansio::h2::CommandError::HeadersNotSent)
    );
}

#[test]
fn a_smaller_hpack_table_takes_effect_only_when_acknowledged() {
    // Until our SETTINGS is acknowledged the peer may use the default 4096-byte table
    // (RFC 7541 §4.2), so a size update to 4096 must be accepted before the ACK.
    let config = Config {
        header_table_size: 256,
        ..Config::server()
    };
    let mut s = Scripted::raw(Role::Server, config);
    s.send_bytes(grpc_sansio::frame::PREFACE);
    s.send(Frame::Settings(Settings::default()));
    s.send(Frame::Headers(grpc_sansio::frame::Headers {
        end_stream: true,
        ..grpc_sansio::frame::Headers::new(
            StreamId::new(1),
            Bytes::from_static(&[0x3f, 0xe1, 0x1f, 0x83, 0x84]), // size update 4096, POST, /
        )
    }));
    assert!(
        s.events()
            .iter()
            .any(|e| matches!(e, Event::Headers { .. })),
        "size update within the default refused before our ACK"
    );
    // After the ACK the smaller table is in force: the peer must shrink to it first.
    s.written();
    s.send(Frame::Settings(Settings::ack()));
    s.send(Frame::Headers(grpc_sansio::frame::Headers {
        end_stream: true,
        ..grpc_sansio::frame::Headers::new(StreamId::new(3), Bytes::from_static(&[0x83, 0x84]))
    }));
    assert_eq!(
        goaway_of(&s.written()).map(|g| g.error_code),
        Some(ErrorCode::CompressionError)
    );
}

#[test]
fn a_client_assumes_100_streams_until_settings_then_unlimited_if_unstated() {
    let mut s = Scripted::raw(Role::Client, fixed_client());
    for _ in 0..150 {
        s.conn.open_stream(req_headers(), true).unwrap();
    }
    let heads = |frames: &[Frame]| {
        frames
            .iter()
            .filter(|f| matches!(f, Frame::Headers(_)))
            .count()
    };
    assert_eq!(heads(&s.written()), 100, "100 before the server's SETTINGS");
    s.send(Frame::Settings(Settings::default()));
    assert_eq!(heads(&s.written()), 50, "no limit stated: the rest go");
}

// ----- the writer -----

#[test]
fn streams_with_data_are_served_round_robin() {
    let mut s = Scripted::connected(Role::Client, fixed_client());
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        1 << 20,
    )));
    let big = s.conn.open_stream(req_headers(), false).unwrap();
    let small = s.conn.open_stream(req_headers(), false).unwrap();
    s.conn
        .send_data(big, Bytes::from(vec![1u8; 60_000]), true)
        .unwrap();
    s.conn
        .send_data(small, Bytes::from(vec![2u8; 20_000]), true)
        .unwrap();
    let order: Vec<u32> = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::Data(d) => Some(d.stream_id.value()),
            _ => None,
        })
        .collect();
    // One frame each in turn while both have data, then the big one finishes alone.
    assert_eq!(order, vec![1, 3, 1, 3, 1, 1], "{order:?}");
}

#[test]
fn reading_pauses_while_the_application_holds_more_than_the_connection_window() {
    // Stream windows larger than the connection window: the connection window is
    // released on receipt (grpc-go), so only `wants_read` bounds what piles up unread.
    let config = Config {
        initial_stream_window: 1 << 20,
        ..fixed_client()
    };
    let mut s = Scripted::connected(Role::Client, config);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.conn.open_stream(req_headers(), false).unwrap());
    }
    s.written();
    static CHUNK: [u8; 16_384] = [3; 16_384];
    for &id in &ids {
        let h = s.headers(id.value(), RESPONSE, false);
        s.send(h);
    }
    let mut frames = 0;
    while s.conn.wants_read() {
        let id = ids[frames % ids.len()].value();
        s.send(data(id, &CHUNK, false));
        s.written(); // the connection WINDOW_UPDATEs go back to the peer
        frames += 1;
        assert!(frames < 100, "reading never paused");
    }
    let held: usize = s
        .events()
        .iter()
        .map(|e| match e {
            Event::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert!(held > 65_535, "{held}");
    // Consuming resumes reading.
    let per_stream = held / ids.len();
    for &id in &ids {
        s.conn.release_data(id, per_stream).unwrap();
    }
    assert!(s.conn.wants_read());
}

// ----- late frames on closed streams (RFC 9113 §5.1) -----

#[test]
fn data_after_the_peer_reset_the_stream_is_a_stream_closed_error() {
    let mut s = client_with_stream();
    s.send(Frame::RstStream(RstStream::new(
        StreamId::new(1),
        ErrorCode::Cancel,
    )));
    s.events();
    s.send(data(1, b"after its own reset", false));
    assert_eq!(rst_of(&s.written()), Some((1, ErrorCode::StreamClosed)));
    assert!(s.conn.is_connected());
}

#[test]
fn data_after_both_sides_ended_the_stream_is_a_connection_stream_closed_error() {
    let mut s = Scripted::connected(Role::Client, fixed_client());
    let id = s.conn.open_stream(req_headers(), true).unwrap();
    s.written();
    let t = s.headers(
        id.value(),
        &[(":status", "200"), ("grpc-status", "0")],
        true,
    );
    s.send(t);
    assert_eq!(s.conn.open_streams(), 0);
    s.send(data(1, b"too late", false));
    assert_eq!(
        goaway_of(&s.written()).unwrap().error_code,
        ErrorCode::StreamClosed
    );
}

#[test]
fn window_updates_and_resets_on_a_finished_stream_are_ignored() {
    let mut s = Scripted::connected(Role::Client, fixed_client());
    let id = s.conn.open_stream(req_headers(), true).unwrap();
    s.written();
    let t = s.headers(
        id.value(),
        &[(":status", "200"), ("grpc-status", "0")],
        true,
    );
    s.send(t);
    s.send(Frame::WindowUpdate(WindowUpdate::new(id, 100)));
    s.send(Frame::RstStream(RstStream::new(id, ErrorCode::NoError)));
    assert!(s.written().is_empty());
    assert!(s.conn.is_connected());
}

#[test]
fn request_read_opens_the_window_for_a_message_larger_than_it() {
    let mut s = client_with_stream();
    let h = s.headers(1, RESPONSE, false);
    s.send(h);
    s.conn.request_read(StreamId::new(1), 200_000).unwrap();
    let granted: u32 = s
        .written()
        .iter()
        .filter_map(|f| match f {
            Frame::WindowUpdate(w) if w.stream_id.value() == 1 => Some(w.increment),
            _ => None,
        })
        .sum();
    // The peer may now send the whole message: 65 535 + the grant ≥ 200 000.
    assert!(65_535 + granted >= 200_000, "{granted}");
    static CHUNK: [u8; 16_384] = [5; 16_384];
    s.send(Frame::WindowUpdate(WindowUpdate::new(
        StreamId::ZERO,
        1 << 20,
    )));
    for _ in 0..12 {
        s.send(data(1, &CHUNK, false));
    }
    assert_eq!(rst_of(&s.written()), None, "within the granted window");
    assert_eq!(
        s.conn.request_read(StreamId::new(99), 10),
        Err(grpc_sansio::h2::CommandError::UnknownStream)
    );
}

// ----- frame size -----

/// A DATA frame of `len` bytes on stream 1, as raw wire bytes.
fn data_frame_bytes(len: usize) -> Vec<u8> {
    let mut b = vec![
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        0,
        0,
        0,
        0,
        0,
        1,
    ];
    b.resize(9 + len, 7);
    b
}

/// Windows large enough that only the frame size can refuse a frame.
fn wide_client() -> Config {
    Config {
        initial_stream_window: 1 << 20,
        initial_connection_window: 1 << 20,
        ..fixed_client()
    }
}

/// Opens stream 1 and takes the peer's response headers on it, leaving nothing
/// written or reported.
fn open_stream_1(s: &mut Scripted) {
    s.conn.open_stream(req_headers(), true).unwrap();
    s.written();
    let response = s.headers(1, RESPONSE, false);
    s.send(response);
    s.written();
    s.events();
}

#[test]
fn a_connection_announces_64_kib_frames_and_takes_them_once_acknowledged() {
    let mut s = Scripted::raw(Role::Client, wide_client());
    s.send(Frame::Settings(Settings::default()));
    let ours = s
        .written()
        .into_iter()
        .find_map(|f| match f {
            Frame::Settings(st) if !st.ack => Some(st),
            _ => None,
        })
        .expect("our SETTINGS");
    assert_eq!(ours.max_frame_size, Some(64 * 1024));
    s.send(Frame::Settings(Settings::ack()));
    open_stream_1(&mut s);
    s.send_bytes(&data_frame_bytes(64 * 1024));
    let events = s.events();
    assert!(
        matches!(events.as_slice(), [Event::Data { data, .. }] if data.len() == 64 * 1024),
        "{events:?}"
    );
    assert!(goaway_of(&s.written()).is_none());
    // One byte more is a connection error (RFC 9113 §4.2).
    s.send_bytes(&data_frame_bytes(64 * 1024 + 1));
    assert_eq!(
        goaway_of(&s.written()).map(|g| g.error_code),
        Some(ErrorCode::FrameSizeError)
    );
}

#[test]
fn until_our_settings_are_acknowledged_the_limit_is_16_kib() {
    let mut s = Scripted::raw(Role::Client, wide_client());
    s.send(Frame::Settings(Settings::default()));
    open_stream_1(&mut s);
    // The peer may not have seen our SETTINGS yet (RFC 9113 §6.5.3).
    s.send_bytes(&data_frame_bytes(16 * 1024 + 1));
    assert_eq!(
        goaway_of(&s.written()).map(|g| g.error_code),
        Some(ErrorCode::FrameSizeError)
    );
}

/// DATA frames of `len` bytes each, frame `i` filled with byte `i`, on stream 1.
fn data_frames(n: usize, len: usize) -> Vec<u8> {
    let mut wire = bytes::BytesMut::new();
    for i in 0..n {
        Frame::Data(grpc_sansio::frame::Data::new(
            StreamId::new(1),
            Bytes::from(vec![i as u8; len]),
        ))
        .encode(&mut wire, grpc_sansio::frame::DEFAULT_MAX_FRAME_SIZE)
        .unwrap();
    }
    wire.to_vec()
}

/// The DATA payloads among the events so far.
fn data_payloads(s: &mut Scripted) -> Vec<Bytes> {
    s.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Data { data, .. } => Some(data),
            _ => None,
        })
        .collect()
}

#[test]
fn frames_after_one_split_across_two_reads_are_delivered_from_the_second_read_in_place() {
    // Two reads into different buffers (a reader moving to a new region): the frame
    // they split is joined by a copy, and every frame after it is a slice of the
    // second buffer, however large that read is.
    const FRAMES: usize = 12;
    const LEN: usize = 1000;
    let wire = data_frames(FRAMES, LEN);
    let frame_len = 9 + LEN;
    // Inside the 4th frame's header, at its first byte, inside its payload, and one
    // byte before its end.
    for cut in [
        3 * frame_len + 4,
        3 * frame_len,
        3 * frame_len + 500,
        4 * frame_len - 1,
    ] {
        let mut s = Scripted::connected(Role::Server, Config::server());
        let h = s.headers(1, REQUEST, false);
        s.send(h);
        s.events();
        s.conn.recv(bytes::BytesMut::from(&wire[..cut]), s.now);
        let second = bytes::BytesMut::from(&wire[cut..]);
        let range = second.as_ptr() as usize..second.as_ptr() as usize + second.len();
        s.conn.recv(second, s.now);
        let payloads = data_payloads(&mut s);
        assert_eq!(payloads.len(), FRAMES, "cut at {cut}");
        for (i, p) in payloads.iter().enumerate() {
            assert_eq!(p.len(), LEN);
            assert!(p.iter().all(|&b| b == i as u8), "frame {i}, cut at {cut}");
            let starts_after_cut = (i * frame_len) >= cut;
            if starts_after_cut {
                assert!(
                    range.contains(&(p.as_ptr() as usize)),
                    "frame {i} after the cut at {cut} was copied"
                );
            }
        }
    }
}

#[test]
fn a_frame_split_across_several_reads_is_joined_whole() {
    // The 2nd frame arrives in 7-byte pieces, each its own buffer, then the rest at once.
    const LEN: usize = 300;
    let wire = data_frames(3, LEN);
    let frame_len = 9 + LEN;
    let mut s = Scripted::connected(Role::Server, Config::server());
    let h = s.headers(1, REQUEST, false);
    s.send(h);
    s.events();
    let mut at = frame_len + 2;
    s.conn.recv(bytes::BytesMut::from(&wire[..at]), s.now);
    while at < 2 * frame_len - 7 {
        s.conn.recv(bytes::BytesMut::from(&wire[at..at + 7]), s.now);
        at += 7;
    }
    s.conn.recv(bytes::BytesMut::from(&wire[at..]), s.now);
    let payloads = data_payloads(&mut s);
    assert_eq!(payloads.len(), 3);
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(&p[..], &vec![i as u8; LEN][..], "frame {i}");
    }
}
