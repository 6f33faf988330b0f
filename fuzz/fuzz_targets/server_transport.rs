//! Hostile client bytes into a gRPC `ServerTransport`, with a small echo handler
//! reacting to its events, time advances and handler commands the input chooses.
//!
//! The input's first byte holds flags: bit 0 sends a valid client preface and SETTINGS
//! first (without it the preface path gets the raw bytes), bit 1 acknowledges the
//! server's SETTINGS, bit 2 defers finishing half-closed calls to a later command, bit 3
//! forgets failed calls instead of finishing them, bits 4-7 pick the chunk size the
//! peer's bytes are delivered in. Then each byte is an operation: raw peer bytes,
//! HEADERS with a gRPC request header block (from `hpack::Encoder`, possibly broken on
//! purpose), DATA carrying raw bytes or well-formed, gzip, oversized or bomb messages,
//! control frames, time advances, handler commands, or an early EOF. The connection
//! gets `recv_eof` at the end.
//!
//! The handler polls every new or readable call, echoes each message back and finishes
//! OK on `HalfClosed`; on `Failed` it finishes with that status or forgets the call.
//!
//! Invariants (a panic is a finding):
//! - nothing panics;
//! - a `NewCall` never reuses a call id; `Closed` is reported at most once, and only
//!   once the transport is closed;
//! - each call's events are messages, then at most one `HalfClosed`, then at most one
//!   `Failed`, and nothing after `Failed` (no message after `HalfClosed` either);
//! - every message is within the configured `MessageLimits::max_recv`;
//! - a call the handler finished or forgot has nothing more to read, and
//!   `open_calls()` always equals the calls the handler holds (so it returns to 0 once
//!   the handler has finished or forgotten every call);
//! - once a call's `grpc-timeout` has passed and the timer fired, it has failed;
//! - once the connection is closed, every call the handler still held has read its
//!   `Failed` (so `open_calls()` is 0 once the handler reacted);
//! - `connection().queued_control_frames()` stays within the configured maximum plus
//!   a small constant after every read.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::ErrorCode;
use grpc_sansio::frame::{
    self, Data, Frame, GoAway, Headers, Ping, RstStream, Settings, StreamId, WindowUpdate,
};
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::compression::{Encoding, compress};
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::ServerEvent;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{CallId, MessageLimits, ServerTransport, ServerTransportEvent};
use grpc_sansio::h2::{Config, Transmit};
use grpc_sansio::hpack::{Encoder, HeaderField};
use libfuzzer_sys::fuzz_target;

/// The receive limit the transport is configured with.
const MAX_RECV: usize = 64 * 1024;
/// The control-frame queue limit the connection is configured with.
const MAX_CONTROL: usize = 16;
/// What one read may add above `MAX_CONTROL`.
const CONTROL_SLACK: usize = 8;
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

/// A request header block: valid gRPC unless `v` bit 3 breaks it.
fn request_block(encoder: &mut Encoder, v: u8) -> Bytes {
    let timeout = format!("{}m", u32::from(v >> 4) * 300);
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/fuzz.Echo/Call"),
        (b":authority", b"fuzz.local"),
        (b"te", b"trailers"),
        (b"content-type", b"application/grpc"),
    ];
    if v & 1 != 0 {
        fields.push((b"grpc-timeout", timeout.as_bytes()));
    }
    if v & 2 != 0 {
        fields.push((b"grpc-encoding", b"gzip"));
    }
    if v & 4 != 0 {
        fields.push((b"grpc-accept-encoding", b"identity,gzip"));
    }
    if v & 8 != 0 {
        match v >> 6 {
            0 => fields[0].1 = b"GET",
            1 => fields[5].1 = b"text/plain",
            2 => fields[2].1 = b"no-slash",
            _ => {
                fields.remove(4);
            }
        }
    }
    if v & 0x20 != 0 {
        fields.push((b"x-fuzz-bin", b"AAEC"));
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

/// What the handler knows of one call.
#[derive(Debug, Default)]
struct CallState {
    half_closed: bool,
    deadline: Option<Instant>,
}

struct Harness {
    t: ServerTransport,
    now: Instant,
    wire: BytesMut,
    chunk: usize,
    defer_finish: bool,
    forget_failed: bool,
    calls: HashMap<CallId, CallState>,
    /// Every call id ever reported, in order.
    seen: HashSet<CallId>,
    order: Vec<CallId>,
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
        for (id, call) in &self.calls {
            assert!(
                call.deadline.is_none_or(|d| d > self.now),
                "{id} is past its deadline and has not failed"
            );
        }
    }

    /// Writes everything out and lets the handler react, until nothing moves.
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
                assert_eq!(
                    self.t.open_calls(),
                    self.calls.len(),
                    "the transport and the handler disagree on the open calls"
                );
                if self.t.is_closed() {
                    assert!(
                        self.calls.is_empty(),
                        "connection closed but calls never failed: {:?}",
                        self.calls
                    );
                }
                return;
            }
        }
        panic!("server transport did not settle after {MAX_ROUNDS} rounds");
    }

    fn on_event(&mut self, event: ServerTransportEvent) {
        match event {
            ServerTransportEvent::Connected => {
                assert!(!self.connected, "Connected reported twice");
                self.connected = true;
            }
            ServerTransportEvent::NewCall { call, head } => {
                assert!(self.seen.insert(call), "{call} reported twice");
                assert!(!head.path.is_empty());
                self.order.push(call);
                self.calls.insert(
                    call,
                    CallState {
                        half_closed: false,
                        deadline: head.deadline,
                    },
                );
                self.read(call);
            }
            ServerTransportEvent::CallReadable(id) => {
                if self.calls.contains_key(&id) {
                    self.read(id);
                } else {
                    assert!(self.seen.contains(&id), "{id} readable but never reported");
                    assert!(self.t.poll_call(id).is_none(), "{id} is gone but readable");
                }
            }
            ServerTransportEvent::CallWritable(_) | ServerTransportEvent::PingAck { .. } => {}
            ServerTransportEvent::Closed(_) => {
                assert!(!self.closed, "Closed reported twice");
                assert!(self.t.is_closed(), "Closed reported on an open connection");
                self.closed = true;
            }
        }
    }

    /// Takes every event of the call; echoes messages.
    fn read(&mut self, id: CallId) {
        while let Some(event) = self.t.poll_call(id) {
            let call = self.calls.get_mut(&id).expect("events only for live calls");
            match event {
                ServerEvent::Message(m) => {
                    assert!(!call.half_closed, "{id}: message after HalfClosed");
                    assert!(m.len() <= MAX_RECV, "{id}: {} byte message", m.len());
                    let _ = self.t.send_message(id, m);
                }
                ServerEvent::HalfClosed => {
                    assert!(!call.half_closed, "{id}: HalfClosed twice");
                    call.half_closed = true;
                    if !self.defer_finish {
                        self.finish(id, &Status::ok());
                        return;
                    }
                }
                ServerEvent::Failed(status) => {
                    assert!(!status.is_ok(), "{id}: Failed with OK");
                    if self.forget_failed {
                        self.forget(id);
                    } else {
                        self.finish(id, &status);
                    }
                    return;
                }
            }
        }
    }

    fn finish(&mut self, id: CallId, status: &Status) {
        let before = self.t.open_calls();
        let _ = self.t.finish(id, status, &Metadata::new());
        self.gone(id, before);
    }

    fn forget(&mut self, id: CallId) {
        let before = self.t.open_calls();
        self.t.forget(id);
        self.gone(id, before);
    }

    fn gone(&mut self, id: CallId, before: usize) {
        assert!(self.calls.remove(&id).is_some());
        assert_eq!(self.t.open_calls(), before - 1, "{id} still open");
        assert!(
            self.t.poll_call(id).is_none(),
            "{id} readable after its end"
        );
        assert!(self.t.finish(id, &Status::ok(), &Metadata::new()).is_err());
    }

    /// Live calls, oldest first.
    fn live(&self) -> Vec<CallId> {
        self.order
            .iter()
            .copied()
            .filter(|id| self.calls.contains_key(id))
            .collect()
    }

    fn command(&mut self, op: u8, rest: &mut &[u8]) {
        match op & 7 {
            0 => {
                for id in self.live() {
                    if self.calls[&id].half_closed {
                        self.finish(id, &Status::ok());
                    }
                }
            }
            1 => {
                if let Some(&id) = self.live().first() {
                    let code = Code::from_u32(u32::from(byte(rest) % 17));
                    self.finish(id, &Status::new(code, "fuzz"));
                }
            }
            2 => {
                if let Some(&id) = self.live().last() {
                    self.forget(id);
                }
            }
            3 => {
                let _ = self.t.ping(*b"fuzzping");
            }
            4 => self.t.shutdown(),
            5 => {
                let len = usize::from(byte(rest)) * 256;
                for id in self.live() {
                    let _ = self.t.send_message(id, Bytes::from(vec![7; len]));
                }
            }
            6 => {
                for id in self.live() {
                    let mut md = Metadata::new();
                    let _ = md.insert("x-fuzz", "1");
                    let _ = self.t.send_headers(id, md);
                }
            }
            _ => {
                for id in self.live() {
                    let _ = self.t.set_compression(id, Encoding::Gzip);
                }
            }
        }
    }
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
        3 => Frame::Ping(Ping::new(*b"clientpg")),
        4 => {
            let v = byte(rest);
            let mut s = Settings::default();
            if v & 0x80 != 0 {
                s.initial_window_size = Some(u32::from(v & 0x7f) * 1024);
            } else {
                s.max_frame_size = Some(frame::DEFAULT_MAX_FRAME_SIZE + u32::from(v) * 1024);
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

fn run(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let now = base();
    let config = Config {
        max_queued_control_frames: MAX_CONTROL,
        ..Config::server()
    };
    let limits = MessageLimits {
        max_send: MAX_RECV,
        max_recv: MAX_RECV,
    };
    let chunk_sel = usize::from(flags >> 4);
    let mut h = Harness {
        t: ServerTransport::new(config, limits, now),
        now,
        wire: BytesMut::new(),
        chunk: if chunk_sel == 0 {
            usize::MAX
        } else {
            chunk_sel * chunk_sel
        },
        defer_finish: flags & 4 != 0,
        forget_failed: flags & 8 != 0,
        calls: HashMap::new(),
        seen: HashSet::new(),
        order: Vec::new(),
        connected: false,
        closed: false,
    };
    let mut encoder = Encoder::new();
    if flags & 1 != 0 {
        h.wire.extend_from_slice(frame::PREFACE);
        encode(Frame::Settings(Settings::default()), &mut h.wire);
    }
    if flags & 2 != 0 {
        encode(Frame::Settings(Settings::ack()), &mut h.wire);
    }
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
                let mut headers = Headers::new(stream(op & 0x0f), request_block(&mut encoder, v));
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
    for id in h.live() {
        h.forget(id);
    }
    assert_eq!(h.t.open_calls(), 0);
}

fuzz_target!(|data: &[u8]| run(data));
