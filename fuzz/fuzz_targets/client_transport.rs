//! Hostile server bytes into a gRPC `ClientTransport` running a few calls (unary and
//! streaming, with and without deadlines and gzip), with time advances and commands
//! (start, send, close-send, cancel, forget, ping, shutdown, close) the input chooses.
//!
//! The input's first byte holds flags: bit 0 sends a valid server SETTINGS first
//! (without it the client waits on whatever the raw bytes say), bit 1 acknowledges the
//! client's SETTINGS, bit 2 turns the dynamic window off, bits 4-7 pick the chunk size
//! the peer's bytes are delivered in. Then each byte is an operation: raw peer bytes,
//! HEADERS with response headers, trailers or a non-gRPC response (from
//! `hpack::Encoder`), DATA carrying raw bytes or well-formed, gzip, oversized or bomb
//! messages, control frames, time advances, commands, or an early EOF. The connection
//! gets `recv_eof` at the end. Every `CallReadable` call is polled until it has nothing
//! more to say.
//!
//! Invariants (a panic is a finding):
//! - nothing panics;
//! - each call's events are at most one `Headers`, then messages (only after
//!   `Headers`), then exactly one `Status`, which is last: after it `poll_call` returns
//!   `None` and `open_calls()` has dropped by one;
//! - no event is ever read for a call after its status or after `forget`;
//! - every message is within the configured `MessageLimits::max_recv`;
//! - `open_calls()` always equals the calls started and neither ended nor forgotten;
//! - `cancel` gives the call its status at once (it is readable and polled), and so
//!   does a deadline once it has passed and the timer fired;
//! - once the connection is closed (at the latest after `recv_eof`), every started call
//!   has had its status (or was forgotten) and `open_calls()` is 0; `Closed` is
//!   reported exactly once;
//! - `connection().queued_control_frames()` stays within the configured maximum plus
//!   a small constant after every read.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::ErrorCode;
use grpc_sansio::frame::{
    self, Data, Frame, GoAway, Headers, Ping, RstStream, Settings, StreamId, WindowUpdate,
};
use grpc_sansio::grpc::client::{ClientEvent, RequestHeaders, Scheme};
use grpc_sansio::grpc::compression::{Encoding, compress};
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::transport::{CallId, ClientTransport, ClientTransportEvent, MessageLimits};
use grpc_sansio::h2::{Config, Transmit};
use grpc_sansio::hpack::{Encoder, HeaderField};
use libfuzzer_sys::fuzz_target;

/// The receive limit the transport is configured with.
const MAX_RECV: usize = 64 * 1024;
/// The control-frame queue limit the connection is configured with.
const MAX_CONTROL: usize = 16;
/// What one read may add above `MAX_CONTROL`.
const CONTROL_SLACK: usize = 8;
/// Most calls one input starts.
const MAX_CALLS: usize = 16;
/// Rounds of transmit/event handling without quiescence declared a livelock.
const MAX_ROUNDS: usize = 10_000;

/// The one clock read: everything after it is moved by the input.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(rest.len());
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    head
}

fn byte(rest: &mut &[u8]) -> u8 {
    take(rest, 1).first().copied().unwrap_or(0)
}

fn stream(n: u8) -> StreamId {
    StreamId::new(u32::from(n) * 2 + 1)
}

fn encode(frame: Frame, wire: &mut BytesMut) {
    frame
        .encode(wire, frame::DEFAULT_MAX_FRAME_SIZE)
        .expect("the target builds encodable frames");
}

/// A response header block chosen by `v`: response headers (bit 0: gzip), trailers,
/// or a non-gRPC response.
fn response_block(encoder: &mut Encoder, v: u8) -> Bytes {
    let code = (v >> 3) % 18;
    let status = code.to_string();
    let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
    match v & 3 {
        0 | 1 => {
            fields.push((b":status", b"200"));
            fields.push((b"content-type", b"application/grpc+proto"));
            if v & 1 != 0 {
                fields.push((b"grpc-encoding", b"gzip"));
            }
            if v & 4 != 0 {
                // Trailers-Only when sent with END_STREAM.
                fields.push((b"grpc-status", status.as_bytes()));
                fields.push((b"grpc-message", b"fuzz%20status"));
            }
        }
        2 => {
            fields.push((b"grpc-status", status.as_bytes()));
            if v & 4 != 0 {
                fields.push((b"grpc-message", b"bad%zz"));
                fields.push((b"grpc-status-details-bin", b"AAEC"));
            }
        }
        _ => {
            let http: &[u8] = match code % 4 {
                0 => b"100",
                1 => b"404",
                2 => b"503",
                _ => b"200",
            };
            fields.push((b":status", http));
            fields.push((b"content-type", b"text/html"));
        }
    }
    if v & 0x80 != 0 {
        fields.push((b"x-fuzz-bin", b"not base64!"));
    }
    let mut block = BytesMut::new();
    encoder.encode(
        fields.iter().map(|&(n, v)| HeaderField::new(n, v)),
        &mut block,
    );
    block.freeze()
}

/// A DATA payload chosen by `v` from the input.
fn data_payload(v: u8, rest: &mut &[u8]) -> Bytes {
    let n = usize::from(v & 0x1f);
    let mut out = BytesMut::new();
    match v >> 6 {
        0 => out.extend_from_slice(take(rest, n * 4)),
        1 => {
            let body = take(rest, n);
            out.extend_from_slice(&[0, 0, 0, 0, body.len() as u8]);
            out.extend_from_slice(body);
        }
        2 => {
            // gzip: of input bytes, or with bit 5 of up to 124 KiB of zeros (a bomb
            // past the receive limit).
            let plain = if v & 0x20 != 0 {
                vec![0; n * 4096]
            } else {
                take(rest, n).to_vec()
            };
            let mut body = BytesMut::new();
            compress(Encoding::Gzip, &plain, &mut body).expect("gzip compresses");
            out.extend_from_slice(&[1]);
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(&body);
        }
        _ => {
            // A prefix announcing more than the receive limit, then a few bytes.
            out.extend_from_slice(&[v & 1]);
            out.extend_from_slice(&(MAX_RECV as u32 + u32::from(v)).to_be_bytes());
            out.extend_from_slice(take(rest, n));
        }
    }
    out.freeze()
}

fn control_frame(op: u8, rest: &mut &[u8], wire: &mut BytesMut) {
    let id = stream((op >> 3) & 3);
    let frame = match op & 7 {
        0 => Frame::RstStream(RstStream::new(id, ErrorCode::from(u32::from(byte(rest))))),
        1 => Frame::WindowUpdate(WindowUpdate::new(id, u32::from(byte(rest)) * 4096 + 1)),
        2 => Frame::WindowUpdate(WindowUpdate::new(
            StreamId::ZERO,
            u32::from(byte(rest)) * 4096 + 1,
        )),
        3 => Frame::Ping(Ping::new(*b"serverpg")),
        4 => {
            let v = byte(rest);
            let mut s = Settings::default();
            if v & 0x80 != 0 {
                s.initial_window_size = Some(u32::from(v & 0x7f) * 1024);
            } else {
                s.max_concurrent_streams = Some(u32::from(v & 7));
                s.header_table_size = Some(u32::from(v) * 64);
            }
            Frame::Settings(s)
        }
        5 => Frame::Settings(Settings::ack()),
        6 => Frame::GoAway(GoAway::new(id, ErrorCode::from(u32::from(byte(rest))))),
        _ => Frame::Ping(Ping::ack(*b"fuzzping")),
    };
    encode(frame, wire);
}

/// What the test knows of one started call.
#[derive(Debug)]
struct CallState {
    id: CallId,
    deadline: Option<Instant>,
    headers: bool,
    status: bool,
    forgotten: bool,
}

impl CallState {
    fn live(&self) -> bool {
        !self.status && !self.forgotten
    }
}

struct Harness {
    t: ClientTransport,
    now: Instant,
    wire: BytesMut,
    chunk: usize,
    calls: Vec<CallState>,
    index: HashMap<CallId, usize>,
    connected: bool,
    closed: bool,
}

impl Harness {
    fn check_control(&self) {
        let queued = self.t.connection().queued_control_frames();
        assert!(
            queued <= MAX_CONTROL + CONTROL_SLACK,
            "{queued} control frames queued (limit {MAX_CONTROL})"
        );
    }

    /// Feeds the wire to the transport while it wants to read.
    fn deliver(&mut self) {
        while !self.wire.is_empty() && self.t.wants_read() {
            let n = self.chunk.min(self.wire.len());
            let chunk = self.wire.split_to(n);
            self.t.recv(chunk, self.now);
            self.check_control();
            self.settle();
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.t.poll_timeout().is_some_and(|t| t <= self.now) {
            self.t.handle_timeout(self.now);
            self.check_control();
        }
        self.settle();
        for call in &self.calls {
            assert!(
                !call.live() || call.deadline.is_none_or(|d| d > self.now),
                "{} is past its deadline without a status",
                call.id
            );
        }
    }

    /// Writes everything out and polls every readable call, until nothing moves.
    fn settle(&mut self) {
        let mut out = Transmit::new();
        for _ in 0..MAX_ROUNDS {
            while self.t.poll_transmit(self.now, &mut out) > 0 {
                out.clear();
            }
            let mut any = false;
            while let Some(event) = self.t.poll_event() {
                any = true;
                self.on_event(event);
            }
            if !any {
                let live = self.calls.iter().filter(|c| c.live()).count();
                assert_eq!(
                    self.t.open_calls(),
                    live,
                    "the transport and the test disagree on the open calls"
                );
                if self.t.is_closed() {
                    assert_eq!(live, 0, "connection closed, calls without status");
                }
                return;
            }
        }
        panic!("client transport did not settle after {MAX_ROUNDS} rounds");
    }

    fn on_event(&mut self, event: ClientTransportEvent) {
        match event {
            ClientTransportEvent::Connected => {
                assert!(!self.connected, "Connected reported twice");
                self.connected = true;
            }
            ClientTransportEvent::CallReadable(id) => self.read(id),
            ClientTransportEvent::Closed(_) => {
                assert!(!self.closed, "Closed reported twice");
                assert!(self.t.is_closed(), "Closed reported on an open connection");
                self.closed = true;
            }
            ClientTransportEvent::CallWritable(_)
            | ClientTransportEvent::GoAway { .. }
            | ClientTransportEvent::PingAck { .. }
            | ClientTransportEvent::StreamIdsExhausted => {}
        }
    }

    /// Takes every event of the call.
    fn read(&mut self, id: CallId) {
        let Some(&i) = self.index.get(&id) else {
            panic!("{id} readable but never started");
        };
        loop {
            let before = self.t.open_calls();
            let Some(event) = self.t.poll_call(id) else {
                return;
            };
            let call = &mut self.calls[i];
            assert!(!call.forgotten, "{id}: event after forget: {event:?}");
            assert!(!call.status, "{id}: event after its status: {event:?}");
            match event {
                ClientEvent::Headers(_) => {
                    assert!(!call.headers, "{id}: Headers twice");
                    call.headers = true;
                }
                ClientEvent::Message(m) => {
                    assert!(call.headers, "{id}: message before Headers");
                    assert!(m.len() <= MAX_RECV, "{id}: {} byte message", m.len());
                }
                ClientEvent::Status(..) => {
                    call.status = true;
                    assert_eq!(self.t.open_calls(), before - 1, "{id} open after status");
                    assert!(self.t.poll_call(id).is_none(), "{id}: event after status");
                    assert!(self.t.send_message(id, Bytes::new(), true).is_err());
                    return;
                }
            }
        }
    }

    /// A call chosen by the next input byte.
    fn pick(&self, rest: &mut &[u8]) -> Option<usize> {
        let v = usize::from(byte(rest));
        (!self.calls.is_empty()).then(|| v % self.calls.len())
    }

    fn start(&mut self, v: u8, rest: &mut &[u8]) {
        if self.calls.len() >= MAX_CALLS {
            return;
        }
        let mut headers = RequestHeaders::new(Scheme::Http, "fuzz.local:50051", "/fuzz.Echo/Call");
        let deadline =
            (v & 2 != 0).then(|| self.now + Duration::from_millis(u64::from(v >> 4) * 200));
        if let Some(d) = deadline {
            headers = headers.deadline(d);
        }
        if v & 4 != 0 {
            headers = headers.encoding(Encoding::Gzip);
        }
        if v & 8 != 0 {
            let mut md = Metadata::new();
            let _ = md.insert("x-fuzz", "1");
            headers = headers.metadata(md);
        }
        let Ok(id) = self.t.start_call(&headers, self.now) else {
            return;
        };
        assert!(!self.index.contains_key(&id), "{id} started twice");
        self.index.insert(id, self.calls.len());
        self.calls.push(CallState {
            id,
            deadline,
            headers: false,
            status: false,
            forgotten: false,
        });
        // Unary (bit 0 clear): one message and END_STREAM; streaming: a first message.
        let body = Bytes::copy_from_slice(take(rest, usize::from(v >> 4)));
        let _ = self.t.send_message(id, body, v & 1 == 0);
    }

    fn command(&mut self, op: u8, rest: &mut &[u8]) {
        match op & 7 {
            0 => {
                let v = byte(rest);
                self.start(v, rest);
            }
            1 => {
                if let Some(i) = self.pick(rest) {
                    let id = self.calls[i].id;
                    self.t.cancel(id);
                    self.settle();
                    let call = &self.calls[i];
                    assert!(!call.live(), "{id} cancelled without a status");
                }
            }
            2 => {
                if let Some(i) = self.pick(rest) {
                    let id = self.calls[i].id;
                    let before = self.t.open_calls();
                    let live = self.calls[i].live();
                    self.t.forget(id);
                    self.calls[i].forgotten = true;
                    assert_eq!(self.t.open_calls(), before - usize::from(live));
                    assert!(self.t.poll_call(id).is_none(), "{id} readable after forget");
                }
            }
            3 => {
                if let Some(i) = self.pick(rest) {
                    let len = usize::from(byte(rest)) * 512;
                    let _ = self
                        .t
                        .send_message(self.calls[i].id, Bytes::from(vec![3; len]), false);
                }
            }
            4 => {
                if let Some(i) = self.pick(rest) {
                    let _ = self.t.close_send(self.calls[i].id);
                }
            }
            5 => {
                let _ = self.t.ping(*b"fuzzping");
            }
            6 => self.t.shutdown(),
            _ => self.t.close(ErrorCode::NoError, "fuzz close"),
        }
    }
}

fn run(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let now = base();
    let config = Config {
        max_queued_control_frames: MAX_CONTROL,
        dynamic_window: flags & 4 == 0,
        ..Config::client()
    };
    let limits = MessageLimits {
        max_send: MAX_RECV,
        max_recv: MAX_RECV,
    };
    let chunk_sel = usize::from(flags >> 4);
    let mut h = Harness {
        t: ClientTransport::new(config, limits, now),
        now,
        wire: BytesMut::new(),
        chunk: if chunk_sel == 0 {
            usize::MAX
        } else {
            chunk_sel * chunk_sel
        },
        calls: Vec::new(),
        index: HashMap::new(),
        connected: false,
        closed: false,
    };
    let mut encoder = Encoder::new();
    if flags & 1 != 0 {
        encode(Frame::Settings(Settings::default()), &mut h.wire);
    }
    if flags & 2 != 0 {
        encode(Frame::Settings(Settings::ack()), &mut h.wire);
    }
    h.settle();
    h.deliver();
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op >> 5 {
            // Raw peer bytes: the next (op & 0x3f) * 4 + 1.
            0 | 1 => {
                let raw = take(&mut rest, usize::from(op & 0x3f) * 4 + 1);
                h.wire.extend_from_slice(raw);
            }
            2 => {
                let v = byte(&mut rest);
                let mut headers = Headers::new(stream(op & 0x0f), response_block(&mut encoder, v));
                headers.end_stream = op & 0x10 != 0;
                encode(Frame::Headers(headers), &mut h.wire);
            }
            3 => {
                let v = byte(&mut rest);
                let mut data = Data::new(stream(op & 0x0f), data_payload(v, &mut rest));
                data.end_stream = op & 0x10 != 0;
                encode(Frame::Data(data), &mut h.wire);
            }
            4 => {
                let x = u64::from(op & 0x1f);
                let d = if x < 16 {
                    Duration::from_millis((x + 1) * 50)
                } else {
                    Duration::from_secs((x - 15) * 2)
                };
                h.advance(d);
            }
            5 => control_frame(op, &mut rest, &mut h.wire),
            6 => h.command(op, &mut rest),
            _ if op == 0xff => break,
            _ => {
                let n = usize::from(op & 0x1f);
                h.chunk = if n == 0 { usize::MAX } else { n * n };
            }
        }
        h.deliver();
        h.settle();
        if h.t.is_closed() {
            break;
        }
    }
    h.t.recv_eof();
    h.settle();
    assert!(h.t.is_closed(), "EOF did not close the connection");
    assert!(h.closed, "the connection closed without reporting Closed");
    assert!(
        h.calls.iter().all(|c| !c.live()),
        "calls without status after EOF: {:?}",
        h.calls
    );
    assert_eq!(h.t.open_calls(), 0);
}

fuzz_target!(|data: &[u8]| run(data));
