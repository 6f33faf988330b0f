//! gRPC calls end to end over an in-memory client/server transport pair: the four call
//! kinds, Trailers-Only errors, deadlines, cancellation from each side, metadata both
//! ways, compression, limits, flow-control back-pressure, GOAWAY and connection loss.

use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::ErrorCode;
use grpc_sansio::grpc::client::ClientEvent;
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::compression::Encoding;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::ServerEvent;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{
    CallError, ClientTransportEvent, MessageLimits, StartCallError,
};
use grpc_sansio::h2::{CommandError, Config};
use grpc_sansio_tests::call_pair::CallPair;

fn msg(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn md(pairs: &[(&str, &[u8])]) -> Metadata {
    let mut m = Metadata::new();
    for (k, v) in pairs {
        m.append(k, Bytes::copy_from_slice(v))
            .expect("valid metadata");
    }
    m
}

/// The final status of a client call's events, asserting it is the one last event.
fn status_of(events: &[ClientEvent]) -> (Status, Metadata) {
    let n = events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Status(..)))
        .count();
    assert_eq!(n, 1, "exactly one status: {events:?}");
    match events.last() {
        Some(ClientEvent::Status(s, m)) => (s.clone(), m.clone()),
        other => panic!("status is not last: {other:?}"),
    }
}

fn messages(events: &[ClientEvent]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn unary_call_with_metadata_both_ways_including_binary() {
    let mut p = CallPair::new(1);
    let request_md = md(&[("x-user", b"alice"), ("x-trace-bin", &[0, 255, 10, 13])]);
    let headers = CallPair::request("/pkg.Echo/Unary").metadata(request_md.clone());
    let id = p.client.start_call(&headers, p.now).unwrap();
    p.client.send_message(id, msg(b"ping"), true).unwrap();
    p.drive();

    let (sid, head) = p.accept().expect("request reached the server");
    assert_eq!(head.service, "pkg.Echo");
    assert_eq!(head.method, "Unary");
    assert_eq!(head.metadata, request_md);
    assert_eq!(
        p.server_call(sid),
        [ServerEvent::Message(msg(b"ping")), ServerEvent::HalfClosed]
    );

    let header_md = md(&[("x-server", b"s1"), ("x-h-bin", &[1, 2, 3])]);
    let trailer_md = md(&[("x-cost", b"7"), ("x-t-bin", &[0xde, 0xad])]);
    p.server.send_headers(sid, header_md.clone()).unwrap();
    p.server.send_message(sid, msg(b"pong")).unwrap();
    p.server.finish(sid, &Status::ok(), &trailer_md).unwrap();
    assert_eq!(p.server.open_calls(), 0);
    p.drive();

    let events = p.client_call(id);
    assert_eq!(events[0], ClientEvent::Headers(header_md));
    assert_eq!(messages(&events), [msg(b"pong")]);
    assert_eq!(status_of(&events), (Status::ok(), trailer_md));
    assert_eq!(p.client.open_calls(), 0, "a call is gone after its status");
    assert_eq!(p.client.connection().open_streams(), 0);
    assert_eq!(p.server.connection().open_streams(), 0);
}

#[test]
fn client_streaming_call() {
    let mut p = CallPair::new(2);
    let id = p
        .client
        .start_call(&CallPair::request("/pkg.S/Upload"), p.now)
        .unwrap();
    let sent: Vec<Bytes> = (0..50u8)
        .map(|i| Bytes::from(vec![i; 100 + usize::from(i) * 37]))
        .collect();
    for m in &sent {
        p.client.send_message(id, m.clone(), false).unwrap();
    }
    p.client.close_send(id).unwrap();
    assert_eq!(p.client.close_send(id), Err(CallError::SendClosed));
    p.drive();
    let (sid, _) = p.accept().unwrap();
    let got = p.server_call(sid);
    let (last, msgs) = got.split_last().unwrap();
    assert_eq!(*last, ServerEvent::HalfClosed);
    assert_eq!(
        msgs,
        sent.iter()
            .cloned()
            .map(ServerEvent::Message)
            .collect::<Vec<_>>()
    );
    p.server.send_message(sid, msg(b"total")).unwrap();
    p.server
        .finish(sid, &Status::ok(), &Metadata::new())
        .unwrap();
    p.drive();
    let events = p.client_call(id);
    assert_eq!(messages(&events), [msg(b"total")]);
    assert!(status_of(&events).0.is_ok());
}

#[test]
fn server_streaming_call_delivers_every_message_in_order() {
    let mut p = CallPair::new(3);
    let id = p
        .client
        .start_call(&CallPair::request("/pkg.S/Download"), p.now)
        .unwrap();
    p.client.send_message(id, msg(b"give me"), true).unwrap();
    p.drive();
    let (sid, _) = p.accept().unwrap();
    assert_eq!(p.server_call(sid).len(), 2);
    // Sizes cross frame, window and 1 KiB copy thresholds.
    let sent: Vec<Bytes> = (0..40usize)
        .map(|i| Bytes::from(vec![(i % 251) as u8; (i * 7919) % 70_000]))
        .collect();
    let mut got = Vec::new();
    for m in &sent {
        p.server.send_message(sid, m.clone()).unwrap();
        p.drive();
        got.extend(p.client_call(id));
    }
    p.server
        .finish(sid, &Status::ok(), &Metadata::new())
        .unwrap();
    p.drive();
    got.extend(p.client_call(id));
    assert_eq!(messages(&got), sent);
    assert!(status_of(&got).0.is_ok());
}

#[test]
fn bidi_streaming_ping_pong() {
    let mut p = CallPair::new(4);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Chat"));
    for round in 0..20u32 {
        let text = Bytes::from(format!("ping {round}"));
        p.client.send_message(id, text.clone(), false).unwrap();
        p.drive();
        assert_eq!(p.server_call(sid), [ServerEvent::Message(text)]);
        let reply = Bytes::from(format!("pong {round}"));
        p.server.send_message(sid, reply.clone()).unwrap();
        p.drive();
        let events = p.client_call(id);
        assert_eq!(messages(&events), [reply], "round {round}");
    }
    p.client.close_send(id).unwrap();
    p.drive();
    assert_eq!(p.server_call(sid), [ServerEvent::HalfClosed]);
    p.server
        .finish(sid, &Status::ok(), &Metadata::new())
        .unwrap();
    p.drive();
    assert!(status_of(&p.client_call(id)).0.is_ok());
}

#[test]
fn trailers_only_error_reaches_the_client_without_headers() {
    let mut p = CallPair::new(5);
    let id = p
        .client
        .start_call(&CallPair::request("/pkg.S/Missing"), p.now)
        .unwrap();
    p.client.send_message(id, msg(b"x"), true).unwrap();
    p.drive();
    let (sid, _) = p.accept().unwrap();
    let status = Status::new(Code::NotFound, "no such thing: 100% gone");
    let trailer_md = md(&[("x-why", b"absent")]);
    p.server.finish(sid, &status, &trailer_md).unwrap();
    p.drive();
    let events = p.client_call(id);
    assert_eq!(
        events.len(),
        1,
        "no Headers event for Trailers-Only: {events:?}"
    );
    assert_eq!(status_of(&events), (status, trailer_md));
}

#[test]
fn server_finishing_early_stops_a_streaming_client() {
    let mut p = CallPair::new(6);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Upload"));
    p.client.send_message(id, msg(b"one"), false).unwrap();
    p.drive();
    assert_eq!(p.server_call(sid), [ServerEvent::Message(msg(b"one"))]);
    let status = Status::new(Code::InvalidArgument, "bad first message");
    p.server.finish(sid, &status, &Metadata::new()).unwrap();
    p.drive();
    let events = p.client_call(id);
    assert_eq!(status_of(&events).0, status);
    // The call is over: nothing more can be sent, and no stream is left either side
    // (the server reset the client's half with NO_ERROR after its trailers).
    assert_eq!(
        p.client.send_message(id, msg(b"two"), false),
        Err(CallError::UnknownCall)
    );
    assert_eq!(p.client.connection().open_streams(), 0);
    assert_eq!(p.server.connection().open_streams(), 0);
}

#[test]
fn deadline_expiry_ends_the_call_on_both_sides() {
    let mut p = CallPair::new(7);
    let deadline = p.now + Duration::from_secs(1);
    let headers = CallPair::request("/pkg.S/Slow").deadline(deadline);
    let (id, sid, head) = p.start(&headers);
    assert_eq!(
        head.deadline,
        Some(deadline),
        "grpc-timeout carried the deadline"
    );
    assert_eq!(p.client.poll_timeout(), Some(deadline));
    p.advance(Duration::from_millis(999));
    assert!(p.client_call(id).is_empty());
    p.advance(Duration::from_millis(1));
    let events = p.client_call(id);
    assert_eq!(status_of(&events).0.code, Code::DeadlineExceeded);
    let server = p.server_call(sid);
    assert!(
        matches!(&server[..], [ServerEvent::Failed(s)] if s.code == Code::DeadlineExceeded),
        "{server:?}"
    );
    // A late answer from the handler goes nowhere and is not an error for it.
    assert_eq!(
        p.server.finish(sid, &Status::ok(), &Metadata::new()),
        Ok(())
    );
    p.drive();
    assert_eq!(p.client.connection().open_streams(), 0);
    assert_eq!(p.server.connection().open_streams(), 0);
    assert_eq!(
        p.client.poll_timeout(),
        p.client.connection().poll_timeout()
    );
}

#[test]
fn at_its_deadline_the_server_sends_status_4_then_resets_with_no_error() {
    use bytes::BytesMut;
    use grpc_sansio::frame::{DecoderConfig, Frame, FrameDecoder};
    use grpc_sansio::h2::Transmit;

    let mut p = CallPair::new(11);
    let deadline = p.now + Duration::from_secs(1);
    let (id, _sid, _) = p.start(&CallPair::request("/pkg.S/Slow").deadline(deadline));
    // Only the server's timer fires (its clock runs ahead of the client's).
    p.now = deadline;
    p.server.handle_timeout(deadline);
    let mut out = Transmit::new();
    while p.server.poll_transmit(deadline, &mut out) > 0 {}
    let mut wire = BytesMut::new();
    for chunk in out.chunks() {
        wire.extend_from_slice(chunk);
    }
    let mut decoder = FrameDecoder::new(DecoderConfig::default());
    let mut frames = Vec::new();
    while let Some(f) = decoder.decode(&mut wire).expect("valid frames") {
        frames.push(f);
    }
    let ends = frames
        .iter()
        .position(|f| matches!(f, Frame::Headers(h) if h.end_stream && h.stream_id.value() == 1));
    let reset = frames.iter().position(|f| matches!(f, Frame::RstStream(_)));
    let (Some(ends), Some(reset)) = (ends, reset) else {
        panic!("trailers and a reset expected: {frames:?}");
    };
    assert!(ends < reset, "the status goes first: {frames:?}");
    let Frame::RstStream(rst) = &frames[reset] else {
        unreachable!()
    };
    // The response is complete: the reset only stops the request (RFC 9113 §8.1).
    assert_eq!(rst.error_code, ErrorCode::NoError);
    // Delivered, the client reports the server's DEADLINE_EXCEEDED, not CANCELLED.
    p.client
        .recv(BytesMut::from(&frames_bytes(&frames)[..]), deadline);
    let events = p.client_call(id);
    assert_eq!(
        status_of(&events).0.code,
        Code::DeadlineExceeded,
        "{events:?}"
    );
}

/// The frames encoded back to bytes.
fn frames_bytes(frames: &[grpc_sansio::frame::Frame]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for f in frames {
        f.encode(&mut out, 16_384).expect("valid frame");
    }
    out.to_vec()
}

#[test]
fn a_passed_deadline_fails_at_once_without_waiting_for_the_server() {
    let mut p = CallPair::new(8);
    p.drive();
    let headers = CallPair::request("/pkg.S/Late").deadline(p.now);
    let id = p.client.start_call(&headers, p.now).unwrap();
    assert_eq!(p.client.poll_timeout(), Some(p.now));
    p.advance(Duration::ZERO);
    assert_eq!(status_of(&p.client_call(id)).0.code, Code::DeadlineExceeded);
}

#[test]
fn client_cancellation_reaches_the_handler() {
    let mut p = CallPair::new(9);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Chat"));
    p.client.cancel(id);
    let events = p.client_call(id);
    assert_eq!(status_of(&events).0.code, Code::Cancelled);
    p.drive();
    let server = p.server_call(sid);
    assert!(
        matches!(&server[..], [ServerEvent::Failed(s)] if s.code == Code::Cancelled),
        "{server:?}"
    );
    assert_eq!(
        p.server.send_message(sid, msg(b"too late")),
        Err(CallError::SendClosed)
    );
    p.server.forget(sid);
    assert_eq!(p.server.open_calls(), 0);
    assert_eq!(p.server.connection().open_streams(), 0);
}

#[test]
fn server_cancellation_reaches_the_client() {
    let mut p = CallPair::new(10);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Chat"));
    p.server.send_message(sid, msg(b"partial")).unwrap();
    p.drive();
    // The handler is dropped without a status: the stream is reset with CANCEL.
    p.server.forget(sid);
    p.drive();
    let events = p.client_call(id);
    assert_eq!(
        messages(&events),
        [msg(b"partial")],
        "data before the reset is kept"
    );
    assert_eq!(status_of(&events).0.code, Code::Cancelled);
}

#[test]
fn dropping_a_call_on_the_client_releases_it_and_resets_the_stream() {
    let mut p = CallPair::new(11);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Download"));
    p.server.send_message(sid, msg(b"unread")).unwrap();
    p.drive();
    p.client.forget(id);
    assert_eq!(p.client.open_calls(), 0);
    assert!(p.client.poll_call(id).is_none());
    p.drive();
    let server = p.server_call(sid);
    assert!(matches!(&server[..], [ServerEvent::Failed(s)] if s.code == Code::Cancelled));
}

#[test]
fn gzip_both_ways() {
    let mut p = CallPair::new(12);
    let headers = CallPair::request("/pkg.S/Zip").encoding(Encoding::Gzip);
    let id = p.client.start_call(&headers, p.now).unwrap();
    let big = Bytes::from("compressible ".repeat(5000));
    p.client.send_message(id, big.clone(), true).unwrap();
    p.drive();
    let request_bytes = p.written[0];
    assert!(
        request_bytes < big.len() / 4,
        "gzip on the wire: {request_bytes} bytes"
    );
    let (sid, head) = p.accept().unwrap();
    assert_eq!(head.encoding, Some(Encoding::Gzip));
    assert_eq!(
        p.server_call(sid),
        [ServerEvent::Message(big.clone()), ServerEvent::HalfClosed]
    );
    p.server.set_compression(sid, Encoding::Gzip).unwrap();
    p.server.send_message(sid, big.clone()).unwrap();
    assert_eq!(
        p.server.set_compression(sid, Encoding::Identity),
        Err(CallError::HeadersAlreadySent)
    );
    p.server
        .finish(sid, &Status::ok(), &Metadata::new())
        .unwrap();
    p.drive();
    assert!(p.written[1] < big.len() / 4);
    let events = p.client_call(id);
    assert_eq!(messages(&events), [big]);
    assert!(status_of(&events).0.is_ok());
}

#[test]
fn message_limits_both_sides() {
    let small = MessageLimits {
        max_send: 1000,
        max_recv: 1000,
    };
    let mut p = CallPair::with(13, Config::client(), Config::server(), small, small);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Big"));
    // Over our own send limit: refused locally, the call goes on.
    let err = p
        .client
        .send_message(id, Bytes::from(vec![0; 1001]), false)
        .unwrap_err();
    assert_eq!(err.to_status().code, Code::ResourceExhausted);
    p.client
        .send_message(id, Bytes::from(vec![1; 1000]), false)
        .unwrap();
    p.drive();
    assert_eq!(p.server_call(sid).len(), 1);
    // The server's send limit applies to it the same way.
    let err = p
        .server
        .send_message(sid, Bytes::from(vec![2; 1001]))
        .unwrap_err();
    assert!(matches!(err, CallError::TooLarge(_)), "{err:?}");

    // The server answers past the client's receive limit: RESOURCE_EXHAUSTED there.

    let big = MessageLimits {
        max_send: usize::MAX,
        max_recv: usize::MAX,
    };
    let mut p = CallPair::with(14, Config::client(), Config::server(), small, big);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Big"));
    p.server
        .send_message(sid, Bytes::from(vec![2; 5000]))
        .unwrap();
    p.drive();
    let events = p.client_call(id);
    assert_eq!(status_of(&events).0.code, Code::ResourceExhausted);
    // The client reset the stream (CANCEL): the handler learns the call is over.
    let server = p.server_call(sid);
    assert!(matches!(&server[..], [ServerEvent::Failed(s)] if s.code == Code::Cancelled));

    // A request past the server's receive limit is answered RESOURCE_EXHAUSTED by the
    // transport itself.
    let mut p = CallPair::with(15, Config::client(), Config::server(), big, small);
    let id = p
        .client
        .start_call(&CallPair::request("/pkg.S/Big"), p.now)
        .unwrap();
    p.client
        .send_message(id, Bytes::from(vec![3; 5000]), true)
        .unwrap();
    p.drive();
    let (sid, _) = p.accept().unwrap();
    let server = p.server_call(sid);
    assert!(matches!(&server[..], [ServerEvent::Failed(s)] if s.code == Code::ResourceExhausted));
    let events = p.client_call(id);
    assert_eq!(status_of(&events).0.code, Code::ResourceExhausted);
}

#[test]
fn a_slow_reader_back_pressures_the_sender_and_loses_nothing() {
    let mut p = CallPair::new(16);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Flood"));
    let chunk = Bytes::from(vec![9u8; 16 * 1024]);
    // 4 MiB offered while the client application reads nothing.
    for _ in 0..256 {
        p.server.send_message(sid, chunk.clone()).unwrap();
    }
    p.drive();
    let delivered = p.written[1];
    assert!(
        delivered < 2 * 1024 * 1024,
        "the server stopped at the client's windows, wrote {delivered} bytes"
    );
    assert_eq!(
        p.server.send_capacity(sid),
        0,
        "send buffer full: back-pressure"
    );
    // Reading drains everything, in order, without loss.
    let mut got = 0usize;
    for _ in 0..10_000 {
        let events = p.client_call(id);
        got += messages(&events)
            .iter()
            .map(|m| {
                assert_eq!(m, &chunk);
                1
            })
            .sum::<usize>();
        if got == 256 {
            break;
        }
        p.drive();
    }
    assert_eq!(got, 256);
    p.server
        .finish(sid, &Status::ok(), &Metadata::new())
        .unwrap();
    p.drive();
    assert!(status_of(&p.client_call(id)).0.is_ok());
}

#[test]
fn connection_loss_mid_call_is_unavailable_with_the_cause() {
    let mut p = CallPair::new(17);
    let (id, _sid, _) = p.start(&CallPair::request("/pkg.S/Chat"));
    p.client.recv_eof();
    let events = p.client_call(id);
    let (status, _) = status_of(&events);
    assert_eq!(status.code, Code::Unavailable);
    assert!(
        status.message.contains("transport closed"),
        "{}",
        status.message
    );
    assert!(
        p.client
            .poll_event()
            .into_iter()
            .chain(std::iter::from_fn(|| p.client.poll_event()))
            .any(|e| matches!(e, ClientTransportEvent::Closed(_)))
    );
}

#[test]
fn goaway_lets_calls_in_flight_finish_and_refuses_new_ones() {
    let mut p = CallPair::new(18);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Unary"));
    p.server.shutdown();
    p.drive();
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientTransportEvent::GoAway {
            code: ErrorCode::NoError,
            ..
        }
    )));
    let err = p
        .client
        .start_call(&CallPair::request("/pkg.S/Unary"), p.now)
        .unwrap_err();
    assert_eq!(err, StartCallError::Connection(CommandError::Draining));
    assert!(err.is_unprocessed());
    assert_eq!(err.to_status().code, Code::Unavailable);
    // The call in flight completes normally.
    p.client.send_message(id, msg(b"req"), true).unwrap();
    p.drive();
    assert_eq!(p.server_call(sid).len(), 2);
    p.server.send_message(sid, msg(b"resp")).unwrap();
    p.server
        .finish(sid, &Status::ok(), &Metadata::new())
        .unwrap();
    p.drive();
    let events = p.client_call(id);
    assert_eq!(messages(&events), [msg(b"resp")]);
    assert!(status_of(&events).0.is_ok());
    assert!(
        p.client.is_closed() && p.server.is_closed(),
        "drained, then closed"
    );
}

#[test]
fn goaway_below_a_call_makes_it_transparently_retryable() {
    let mut p = CallPair::new(19);
    p.drive();
    // Two calls start; the server's immediate GOAWAY names only streams it saw (none,
    // since nothing was delivered yet): both are unprocessed.
    let a = p
        .client
        .start_call(&CallPair::request("/pkg.S/A"), p.now)
        .unwrap();
    p.server.close(ErrorCode::NoError, "going away");
    p.drive();
    assert!(p.client.transparent_retry_ok(a));
    let events = p.client_call(a);
    let (status, _) = status_of(&events);
    assert_eq!(status.code, Code::Unavailable);
}

#[test]
fn many_calls_over_random_chunkings_all_complete() {
    for seed in 0..20u64 {
        let mut p = CallPair::new(seed);
        p.max_chunk = 1 + (seed as usize * 97) % 3000;
        let mut ids = Vec::new();
        for i in 0..10usize {
            let id = p
                .client
                .start_call(&CallPair::request("/pkg.S/Echo"), p.now)
                .unwrap();
            let body = Bytes::from(vec![i as u8; (i * 1_337 + seed as usize * 11) % 20_000]);
            p.client.send_message(id, body.clone(), true).unwrap();
            ids.push((id, body));
        }
        p.drive();
        while let Some((sid, _)) = p.accept() {
            let events = p.server_call(sid);
            let ServerEvent::Message(body) = &events[0] else {
                panic!("seed {seed}: {events:?}");
            };
            p.server.send_message(sid, body.clone()).unwrap();
            p.server
                .finish(sid, &Status::ok(), &Metadata::new())
                .unwrap();
        }
        p.drive();
        for (id, body) in ids {
            let events = p.client_call(id);
            assert_eq!(messages(&events), [body], "seed {seed}");
            assert!(status_of(&events).0.is_ok(), "seed {seed}");
        }
        assert_eq!(p.client.open_calls(), 0);
        assert_eq!(p.server.open_calls(), 0);
    }
}

#[test]
fn the_server_answers_deadline_exceeded_at_its_deadline() {
    let mut p = CallPair::new(20);
    let deadline = p.now + Duration::from_secs(1);
    let (id, sid, _) = p.start(&CallPair::request("/pkg.S/Slow").deadline(deadline));
    // Only the server's timer fires (the client's clock lags): the client still gets
    // the status from the server's trailers.
    p.now += Duration::from_secs(1);
    p.server.handle_timeout(p.now);
    p.drive();
    let events = p.client_call(id);
    let (status, _) = status_of(&events);
    assert_eq!(status.code, Code::DeadlineExceeded);
    assert_eq!(status.message, "deadline exceeded");
    let server = p.server_call(sid);
    assert!(
        matches!(&server[..], [ServerEvent::Failed(s)] if s.code == Code::DeadlineExceeded),
        "{server:?}"
    );
    assert_eq!(p.server.connection().open_streams(), 0);
}
