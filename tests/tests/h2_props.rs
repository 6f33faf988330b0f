//! Property tests of the HTTP/2 connection: random workloads through the in-memory pair,
//! checked against models rebuilt from the frames on the wire (RFC 9113 §5.1.2, §6.9)
//! and from what the application handed over and got back.
//!
//! Every random choice comes from the proptest input (the pair's chunking seed
//! included), so a failure proptest reports replays exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::ErrorCode;
use grpc_sansio::frame::{DEFAULT_INITIAL_WINDOW_SIZE, DEFAULT_MAX_FRAME_SIZE, Frame, StreamId};
use grpc_sansio::h2::{CommandError, Config, Connection, Event, Header, Initiator, Role, Transmit};
use grpc_sansio_tests::pair::{Pair, Side};
use grpc_sansio_tests::rng::SimRng;
use grpc_sansio_tests::wire::{Direction, FrameReader, WireEvent, WireFrames};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn request() -> Vec<Header> {
    vec![
        Header::new(":method", "POST"),
        Header::new(":scheme", "http"),
        Header::new(":path", "/grpc.testing.TestService/StreamingCall"),
        Header::new(":authority", "localhost"),
        Header::new("content-type", "application/grpc"),
        Header::new("te", "trailers"),
    ]
}

fn response() -> Vec<Header> {
    vec![
        Header::new(":status", "200"),
        Header::new("content-type", "application/grpc"),
    ]
}

fn trailers() -> Vec<Header> {
    vec![Header::new("grpc-status", "0")]
}

fn other(side: Side) -> Side {
    match side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

// ----- strategies -----

/// Window sizes from the RFC's default to 1 MiB, the edges more often than chance would
/// pick them.
fn window() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(DEFAULT_INITIAL_WINDOW_SIZE),
        Just(1 << 20),
        DEFAULT_INITIAL_WINDOW_SIZE..=1 << 20,
    ]
}

fn config(base: Config) -> impl Strategy<Value = Config> {
    (
        window(),
        window(),
        any::<bool>(),
        prop_oneof![
            Just(DEFAULT_MAX_FRAME_SIZE),
            DEFAULT_MAX_FRAME_SIZE..=1 << 20
        ],
    )
        .prop_map(move |(stream, conn, dynamic, frame)| Config {
            initial_stream_window: stream,
            initial_connection_window: conn,
            dynamic_window: dynamic,
            max_frame_size: frame,
            ..base.clone()
        })
}

/// Message sizes up to 200 KiB; small ones (a frame or less) often, since they take
/// other paths than window-sized ones.
fn message_len() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=1024, 0usize..=200 * 1024]
}

/// How the receiving applications consume: as DATA arrives (None), or a share of what
/// they hold after each drive, mostly small shares so that the windows fill up.
fn late_release() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![
        1 => Just(None),
        2 => (0u8..=20).prop_map(Some),
        1 => (0u8..=100).prop_map(Some),
    ]
}

/// Largest chunk the pair hands to `recv` at once: single bytes up to a large read.
fn chunking() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), 1usize..=64, 1usize..=70_000]
}

// ----- the flow-control model -----

/// What one side may send, rebuilt from the frames it has read (RFC 9113 §6.9).
///
/// A SETTINGS_INITIAL_WINDOW_SIZE change moves every stream window by the difference
/// (§6.9.2), so a stream's window is always the current initial size plus its updates
/// minus what was sent on it; a stream that does not exist yet just has no updates.
#[derive(Debug)]
struct Allowance {
    initial: i64,
    max_frame: u32,
    conn: i64,
    /// Per stream: WINDOW_UPDATE increments read minus DATA octets written.
    streams: HashMap<u32, i64>,
}

impl Allowance {
    fn new() -> Allowance {
        Allowance {
            initial: DEFAULT_INITIAL_WINDOW_SIZE.into(),
            max_frame: DEFAULT_MAX_FRAME_SIZE,
            conn: DEFAULT_INITIAL_WINDOW_SIZE.into(),
            streams: HashMap::new(),
        }
    }

    fn stream(&self, id: u32) -> i64 {
        self.initial + self.streams.get(&id).copied().unwrap_or(0)
    }

    /// A frame from the peer. Frames still sitting unprocessed in the connection's inbox
    /// count too: this can only make the model more generous than the sender's own view,
    /// never stricter, because every window change in these tests is a growth.
    fn read(&mut self, frame: &Frame) {
        match frame {
            Frame::Settings(s) if !s.ack => {
                if let Some(w) = s.initial_window_size {
                    self.initial = w.into();
                }
                if let Some(m) = s.max_frame_size {
                    self.max_frame = m;
                }
            }
            Frame::WindowUpdate(wu) if wu.stream_id.is_zero() => {
                self.conn += i64::from(wu.increment);
            }
            Frame::WindowUpdate(wu) => {
                *self.streams.entry(wu.stream_id.value()).or_default() += i64::from(wu.increment);
            }
            _ => {}
        }
    }

    /// A frame this side wrote: DATA must fit the peer's frame size and both windows.
    fn wrote(&mut self, frame: &Frame) -> Result<(), String> {
        let Frame::Data(data) = frame else {
            return Ok(());
        };
        let id = data.stream_id.value();
        let n = data.flow_controlled_len();
        if n > self.max_frame {
            return Err(format!(
                "DATA of {n} octets on stream {id} above the peer's max frame size {}",
                self.max_frame
            ));
        }
        // §6.9.1: a frame with no flow-controlled octets is always allowed.
        if n > 0 {
            let (stream, conn) = (self.stream(id), self.conn);
            if i64::from(n) > stream || i64::from(n) > conn {
                return Err(format!(
                    "DATA of {n} octets on stream {id} with stream window {stream} and \
                     connection window {conn}"
                ));
            }
        }
        self.conn -= i64::from(n);
        *self.streams.entry(id).or_default() -= i64::from(n);
        Ok(())
    }
}

/// The receive limits one side announced: its SETTINGS_INITIAL_WINDOW_SIZE, and whether
/// a later SETTINGS grew it (the dynamic window, which also sets the connection window).
#[derive(Debug)]
struct Announced {
    settings_seen: bool,
    stream_limit: u32,
    grown_to: Option<u32>,
}

impl Announced {
    fn wrote(&mut self, frame: &Frame) {
        if let Frame::Settings(s) = frame
            && !s.ack
        {
            if let Some(w) = s.initial_window_size {
                self.stream_limit = w;
                if self.settings_seen {
                    self.grown_to = Some(w);
                }
            }
            self.settings_seen = true;
        }
    }
}

/// Watches a pair's wire and checks every DATA frame against the model, as it is written.
struct FlowWatch {
    frames: WireFrames,
    allowance: [Allowance; 2],
    announced: [Announced; 2],
    /// Per side: flow-controlled octets written on each stream.
    sent: [BTreeMap<u32, u64>; 2],
    /// Per side: streams it wrote END_STREAM or RST_STREAM on.
    send_closed: [BTreeSet<u32>; 2],
}

impl FlowWatch {
    fn new() -> FlowWatch {
        let announced = || Announced {
            settings_seen: false,
            stream_limit: DEFAULT_INITIAL_WINDOW_SIZE,
            grown_to: None,
        };
        FlowWatch {
            frames: WireFrames::new(),
            allowance: [Allowance::new(), Allowance::new()],
            announced: [announced(), announced()],
            sent: [BTreeMap::new(), BTreeMap::new()],
            send_closed: [BTreeSet::new(), BTreeSet::new()],
        }
    }

    fn feed(&mut self, log: &[WireEvent]) -> Result<(), String> {
        for event in log {
            for seen in self.frames.observe(event) {
                let side = seen.side as usize;
                match seen.direction {
                    Direction::Read => self.allowance[side].read(&seen.frame),
                    Direction::Wrote => {
                        self.allowance[side]
                            .wrote(&seen.frame)
                            .map_err(|e| format!("{:?} wrote {e}", seen.side))?;
                        self.check_stream_state(side, &seen.frame)
                            .map_err(|e| format!("{:?} wrote {e}", seen.side))?;
                        self.announced[side].wrote(&seen.frame);
                        if let Frame::Data(d) = &seen.frame {
                            *self.sent[side].entry(d.stream_id.value()).or_default() +=
                                u64::from(d.flow_controlled_len());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// §5.1: after END_STREAM (half-closed local) or RST_STREAM (closed) a sender writes
    /// no more DATA or HEADERS on the stream.
    fn check_stream_state(&mut self, side: usize, frame: &Frame) -> Result<(), String> {
        let (id, end) = match frame {
            Frame::Data(d) => (d.stream_id.value(), d.end_stream),
            Frame::Headers(h) => (h.stream_id.value(), h.end_stream),
            Frame::RstStream(r) => {
                self.send_closed[side].insert(r.stream_id.value());
                return Ok(());
            }
            _ => return Ok(()),
        };
        if self.send_closed[side].contains(&id) {
            return Err(format!("{frame:?} on a stream it had ended or reset"));
        }
        if end {
            self.send_closed[side].insert(id);
        }
        Ok(())
    }
}

// ----- an application on both ends of the pair -----

/// One direction of one stream: what the sender's application handed over and what the
/// receiver's application got.
#[derive(Debug)]
struct Flow {
    /// Payload source: unique bytes, so that a duplicated or reordered piece cannot go
    /// unnoticed.
    rng: SimRng,
    accepted: Vec<u8>,
    delivered: Vec<u8>,
    end_sent: bool,
    ends_seen: usize,
}

impl Flow {
    fn new(salt: u64) -> Flow {
        Flow {
            rng: SimRng::new(salt),
            accepted: Vec::new(),
            delivered: Vec::new(),
            end_sent: false,
            ends_seen: 0,
        }
    }

    fn next_bytes(&mut self, len: usize) -> Bytes {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out.into()
    }
}

#[derive(Debug)]
struct Call {
    id: StreamId,
    /// Client to server.
    up: Flow,
    /// Server to client.
    down: Flow,
    /// The server's application has seen the request headers.
    server_seen: bool,
    response_sent: bool,
    /// Response HEADERS events the client got.
    response_headers: usize,
    /// Who reset the stream with a command that succeeded.
    reset_by: Option<Side>,
    /// Per side: the stream is over for that side's application (its own reset or the
    /// peer's), so nothing more may be delivered to it.
    closed: [bool; 2],
    /// Per side: StreamReset events.
    resets_seen: [usize; 2],
}

impl Call {
    fn flow_to(&mut self, side: Side) -> &mut Flow {
        match side {
            Side::Server => &mut self.up,
            Side::Client => &mut self.down,
        }
    }

    fn flow_from(&mut self, side: Side) -> &mut Flow {
        self.flow_to(other(side))
    }

    /// Both directions ended normally.
    fn complete(&self) -> bool {
        self.up.ends_seen > 0 && self.down.ends_seen > 0
    }
}

/// A pair with an application on each end: the client opens calls, both sides send, and
/// everything either application receives is recorded and checked as it arrives.
struct Exchange {
    pair: Pair,
    watch: FlowWatch,
    calls: Vec<Call>,
    by_id: BTreeMap<u32, usize>,
    rng: SimRng,
    /// None: the application consumes DATA as it arrives. Some(p): it consumes about p%
    /// of what it holds after each drive, the rest later.
    late_release: Option<u8>,
    /// DATA delivered and not yet released, per side and stream.
    held: [BTreeMap<u32, usize>; 2],
    tick: Duration,
    violations: Vec<String>,
}

impl Exchange {
    fn new(
        seed: u64,
        client: Config,
        server: Config,
        max_chunk: usize,
        late_release: Option<u8>,
    ) -> Exchange {
        let mut pair = Pair::with_configs(seed, client, server);
        pair.max_chunk = max_chunk;
        pair.auto_release = late_release.is_none();
        pair.record_wire();
        Exchange {
            pair,
            watch: FlowWatch::new(),
            calls: Vec::new(),
            by_id: BTreeMap::new(),
            rng: SimRng::new(seed ^ 0x5eed),
            late_release,
            held: [BTreeMap::new(), BTreeMap::new()],
            tick: Duration::ZERO,
            violations: Vec::new(),
        }
    }

    fn open(&mut self, end_stream: bool) -> usize {
        let id = self
            .pair
            .client
            .open_stream(request(), end_stream)
            .expect("open_stream");
        let n = self.calls.len() as u64;
        let mut call = Call {
            id,
            up: Flow::new(n << 1),
            down: Flow::new(n << 1 | 1),
            server_seen: false,
            response_sent: false,
            response_headers: 0,
            reset_by: None,
            closed: [false; 2],
            resets_seen: [0; 2],
        };
        call.up.end_sent = end_stream;
        self.by_id.insert(id.value(), self.calls.len());
        self.calls.push(call);
        self.calls.len() - 1
    }

    /// Whether `side`'s application may still send on call `i`.
    fn can_send(&self, i: usize, side: Side) -> bool {
        let call = &self.calls[i];
        let flow = match side {
            Side::Client => &call.up,
            Side::Server => &call.down,
        };
        !flow.end_sent && !call.closed[side as usize] && (side == Side::Client || call.server_seen)
    }

    /// The server answers with HEADERS before its first DATA or trailers.
    fn respond(&mut self, i: usize) -> Result<(), CommandError> {
        if !self.calls[i].response_sent {
            let id = self.calls[i].id;
            self.pair.server.send_headers(id, response(), false)?;
            self.calls[i].response_sent = true;
        }
        Ok(())
    }

    /// `side` sends `len` fresh bytes on call `i` (END_STREAM with the last if `end`).
    /// Returns false when the application could not send (stream over, or not seen yet).
    fn send(&mut self, i: usize, side: Side, len: usize, end: bool) -> bool {
        if !self.can_send(i, side) {
            return false;
        }
        let result = (|| -> Result<(), CommandError> {
            if side == Side::Server {
                self.respond(i)?;
            }
            let call = &mut self.calls[i];
            let id = call.id;
            let flow = call.flow_from(side);
            let bytes = flow.next_bytes(len);
            self.pair.conn(side).send_data(id, bytes.clone(), end)?;
            let flow = self.calls[i].flow_from(side);
            flow.accepted.extend_from_slice(&bytes);
            flow.end_sent |= end;
            Ok(())
        })();
        self.command_result(i, side, "send", result)
    }

    /// `side` ends its half of call `i`: an empty END_STREAM DATA from the client,
    /// trailers from the server.
    fn finish(&mut self, i: usize, side: Side) -> bool {
        if !self.can_send(i, side) {
            return false;
        }
        let result = match side {
            Side::Client => {
                let id = self.calls[i].id;
                self.pair.client.send_data(id, Bytes::new(), true)
            }
            Side::Server => self.respond(i).and_then(|()| {
                let id = self.calls[i].id;
                self.pair.server.send_headers(id, trailers(), true)
            }),
        };
        let ok = self.command_result(i, side, "finish", result);
        if ok {
            self.calls[i].flow_from(side).end_sent = true;
        }
        ok
    }

    /// `side` cancels call `i`.
    fn reset(&mut self, i: usize, side: Side) {
        let call = &self.calls[i];
        if call.closed[side as usize] || (side == Side::Server && !call.server_seen) {
            return;
        }
        let id = call.id;
        match self.pair.conn(side).reset(id, ErrorCode::Cancel) {
            Ok(()) => {
                let call = &mut self.calls[i];
                call.reset_by.get_or_insert(side);
                call.closed[side as usize] = true;
            }
            // The stream ended on this side already: both halves done, or the peer's reset
            // is read but its event not yet taken.
            Err(CommandError::UnknownStream) => {}
            Err(e) => self
                .violations
                .push(format!("{side:?} reset of stream {id:?}: {e}")),
        }
    }

    /// A command refused for a stream the test believes open is a failure, unless
    /// somebody reset that stream (the news may be in flight).
    fn command_result(
        &mut self,
        i: usize,
        side: Side,
        what: &str,
        result: Result<(), CommandError>,
    ) -> bool {
        match result {
            Ok(()) => true,
            Err(CommandError::UnknownStream) if self.calls[i].reset_by.is_some() => {
                self.calls[i].closed[side as usize] = true;
                false
            }
            Err(e) => {
                let id = self.calls[i].id;
                self.violations
                    .push(format!("{side:?} {what} on stream {id:?} refused: {e}"));
                false
            }
        }
    }

    /// Drives the pair to quiescence (after moving the clock by `tick`), checks the wire,
    /// takes the events and consumes some of the data. Returns whether anything moved.
    fn drive(&mut self) -> Result<bool, TestCaseError> {
        let before = self.pair.written;
        self.pair.advance(self.tick);
        let log = self.pair.take_wire();
        self.watch.feed(&log).map_err(fail)?;
        let mut progress = before != self.pair.written;
        for side in [Side::Client, Side::Server] {
            for event in self.pair.take_events(side) {
                progress = true;
                self.absorb(side, event);
            }
        }
        if let Some(pct) = self.late_release {
            for side in [Side::Client, Side::Server] {
                let ids: Vec<u32> = self.held[side as usize].keys().copied().collect();
                for id in ids {
                    let held = self.held[side as usize][&id];
                    let n =
                        held * usize::from(pct) / 100 + usize::from(self.rng.percent(pct.into()));
                    self.release(side, id, n.min(held));
                }
            }
        }
        if !self.violations.is_empty() {
            return Err(fail(self.violations.join("\n")));
        }
        Ok(progress)
    }

    fn release(&mut self, side: Side, id: u32, n: usize) {
        if n == 0 {
            return;
        }
        let held = self.held[side as usize].entry(id).or_default();
        *held -= n;
        if *held == 0 {
            self.held[side as usize].remove(&id);
        }
        if let Err(e) = self.pair.conn(side).release_data(StreamId::new(id), n) {
            self.violations
                .push(format!("{side:?} release of {n} on stream {id}: {e}"));
        }
    }

    fn release_all(&mut self) -> bool {
        let mut any = false;
        for side in [Side::Client, Side::Server] {
            let held: Vec<(u32, usize)> = self.held[side as usize]
                .iter()
                .map(|(&id, &n)| (id, n))
                .collect();
            for (id, n) in held {
                self.release(side, id, n);
                any = true;
            }
        }
        any
    }

    fn absorb(&mut self, side: Side, event: Event) {
        let stream = match &event {
            Event::Headers { stream_id, .. }
            | Event::Data { stream_id, .. }
            | Event::Trailers { stream_id, .. }
            | Event::StreamReset { stream_id, .. } => *stream_id,
            Event::Closed { reason } => {
                return self
                    .violations
                    .push(format!("{side:?} connection closed: {reason}"));
            }
            _ => return,
        };
        let Some(&i) = self.by_id.get(&stream.value()) else {
            return self
                .violations
                .push(format!("{side:?} event on unknown stream: {event:?}"));
        };
        let call = &mut self.calls[i];
        if call.closed[side as usize] {
            return self.violations.push(format!(
                "{side:?} got an event on stream {stream:?} after it was reset: {event:?}"
            ));
        }
        match event {
            Event::Headers { end_stream, .. } => {
                match side {
                    Side::Server => call.server_seen = true,
                    Side::Client => call.response_headers += 1,
                }
                if end_stream {
                    call.flow_to(side).ends_seen += 1;
                }
            }
            Event::Data {
                data, end_stream, ..
            } => {
                let flow = call.flow_to(side);
                flow.delivered.extend_from_slice(&data);
                flow.ends_seen += usize::from(end_stream);
                if self.late_release.is_some() && !data.is_empty() {
                    *self.held[side as usize].entry(stream.value()).or_default() += data.len();
                }
            }
            Event::Trailers { .. } => call.flow_to(side).ends_seen += 1,
            Event::StreamReset { reset, .. } => {
                call.resets_seen[side as usize] += 1;
                call.closed[side as usize] = true;
                let expected = call.reset_by == Some(other(side))
                    && reset.initiator == Initiator::Remote
                    && reset.code == ErrorCode::Cancel;
                if !expected {
                    self.violations.push(format!(
                        "{side:?}: unexpected reset of stream {stream:?}: {reset:?}"
                    ));
                }
            }
            _ => {}
        }
    }

    /// Drives until nothing moves, consuming everything held once the pair is idle, so
    /// that a stall is the connection's doing and not a slow reader's.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10_000 {
            if !self.drive()? && !self.release_all() {
                return Ok(());
            }
        }
        Err(fail("the exchange never settled".into()))
    }

    /// Both applications end their halves of every call not reset, and the pair runs
    /// until idle; whether the calls then complete is for the caller to check.
    fn end_all(&mut self) -> Result<(), TestCaseError> {
        for i in 0..self.calls.len() {
            self.finish(i, Side::Client);
        }
        // The server may see some requests only now.
        self.settle()?;
        for i in 0..self.calls.len() {
            self.finish(i, Side::Server);
        }
        self.settle()
    }

    /// Every call ends normally unless reset; returns an error naming the ones that
    /// stalled.
    fn finish_all(&mut self) -> Result<(), TestCaseError> {
        self.end_all()?;
        let stuck: Vec<String> = self
            .calls
            .iter()
            .filter(|c| c.reset_by.is_none() && !c.complete())
            .map(|c| {
                format!(
                    "stream {:?}: up {}/{} bytes, end {}; down {}/{} bytes, end {}",
                    c.id,
                    c.up.delivered.len(),
                    c.up.accepted.len(),
                    c.up.ends_seen,
                    c.down.delivered.len(),
                    c.down.accepted.len(),
                    c.down.ends_seen
                )
            })
            .collect();
        if stuck.is_empty() {
            return Ok(());
        }
        Err(fail(format!("calls never completed: {stuck:?}")))
    }

    /// The delivery property: every direction of every stream got a prefix of what was
    /// accepted, at most one end, and with `complete`, all of it and exactly one end
    /// unless the stream was reset.
    fn check_delivery(&self, complete: bool) -> Result<(), TestCaseError> {
        for call in &self.calls {
            for (name, flow) in [("up", &call.up), ("down", &call.down)] {
                let n = flow.delivered.len();
                prop_assert!(
                    n <= flow.accepted.len() && flow.delivered[..] == flow.accepted[..n],
                    "stream {:?} {name}: delivered {n} bytes that are not a prefix of the {} accepted",
                    call.id,
                    flow.accepted.len()
                );
                prop_assert!(
                    flow.ends_seen <= 1,
                    "stream {:?} {name}: ended twice",
                    call.id
                );
                if complete && call.reset_by.is_none() {
                    prop_assert_eq!(
                        n,
                        flow.accepted.len(),
                        "stream {:?} {}: bytes lost",
                        call.id,
                        name
                    );
                    prop_assert_eq!(
                        flow.ends_seen,
                        1,
                        "stream {:?} {} never ended",
                        call.id,
                        name
                    );
                }
            }
            prop_assert!(call.response_headers <= 1, "{:?}: two responses", call.id);
            prop_assert!(call.resets_seen.iter().all(|&n| n <= 1));
        }
        Ok(())
    }
}

// ----- 1: flow control -----

#[derive(Clone, Debug)]
struct FlowCase {
    seed: u64,
    max_chunk: usize,
    client: Config,
    server: Config,
    /// Request and response size of each stream.
    messages: Vec<(usize, usize)>,
    /// Largest piece the applications hand to `send_data` at once.
    piece: usize,
    late_release: Option<u8>,
    tick_ms: u64,
}

fn flow_case() -> impl Strategy<Value = FlowCase> {
    (
        any::<u64>(),
        chunking(),
        config(Config::client()),
        config(Config::server()),
        prop::collection::vec((message_len(), message_len()), 1..=8),
        prop_oneof![256usize..=4096, 4096usize..=96 * 1024],
        late_release(),
        prop_oneof![Just(0u64), 0u64..=50],
    )
        .prop_map(
            |(seed, max_chunk, client, server, messages, piece, late_release, tick_ms)| FlowCase {
                seed,
                max_chunk,
                client,
                server,
                messages,
                piece,
                late_release,
                tick_ms,
            },
        )
}

/// Runs every stream's request and response concurrently, each application queueing its
/// message in random pieces between drives, until the pair is idle. The flow watch checks
/// every DATA frame as it is written.
fn run_flow_case(case: &FlowCase) -> Result<Exchange, TestCaseError> {
    let mut ex = Exchange::new(
        case.seed,
        case.client.clone(),
        case.server.clone(),
        case.max_chunk,
        case.late_release,
    );
    ex.tick = Duration::from_millis(case.tick_ms);
    let mut left: Vec<[usize; 2]> = Vec::new();
    for &(up, down) in &case.messages {
        ex.open(false);
        left.push([up, down]);
    }
    for _round in 0..1_000_000 {
        for (i, rest) in left.iter_mut().enumerate() {
            for side in [Side::Client, Side::Server] {
                let rest = &mut rest[side as usize];
                if *rest == 0 || !ex.can_send(i, side) {
                    continue;
                }
                let n = ex.rng.range(1, case.piece).min(*rest);
                *rest -= n;
                ex.send(i, side, n, false);
            }
        }
        let moved = ex.drive()?;
        let queued = left.iter().any(|r| r.iter().any(|&n| n > 0));
        if !moved && !queued && !ex.release_all() {
            break;
        }
    }
    ex.end_all()?;
    Ok(ex)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Property 1: no DATA frame exceeds the stream or connection window the peer granted
    /// (RFC 9113 §6.9: the RFC's 65,535, SETTINGS_INITIAL_WINDOW_SIZE, the WINDOW_UPDATEs
    /// the sender had read when it wrote the frame), nor the peer's
    /// SETTINGS_MAX_FRAME_SIZE; and after END_STREAM or RST_STREAM nothing more is written
    /// on the stream. Random windows (65,535 to 1 MiB, dynamic or not), frame sizes,
    /// streams, message sizes, chunking, and receivers that consume late.
    #[test]
    fn data_frames_never_exceed_the_granted_windows(case in flow_case()) {
        let ex = run_flow_case(&case)?;
        ex.check_delivery(false)?;
        // The model saw DATA: at least the first connection window's worth each way.
        // Whether the rest arrives is for the liveness property below, which the
        // connection-window stall makes fail today.
        for side in [Side::Client, Side::Server] {
            let total: usize = case
                .messages
                .iter()
                .map(|m| if side == Side::Client { m.0 } else { m.1 })
                .sum();
            let sent: u64 = ex.watch.sent[side as usize].values().sum();
            prop_assert!(
                sent >= total.min(DEFAULT_INITIAL_WINDOW_SIZE as usize) as u64,
                "{side:?} sent only {sent} of {total}"
            );
        }
    }
}

// ----- 2: delivery -----

#[derive(Clone, Debug)]
enum Op {
    /// One application queues `len` bytes on a call (the call index is taken modulo the
    /// number of calls).
    Send {
        call: usize,
        client: bool,
        len: usize,
        end: bool,
    },
    /// One application cancels a call.
    Reset { call: usize, client: bool },
    /// The pair runs until idle.
    Drive,
}

fn side_of(client: bool) -> Side {
    if client { Side::Client } else { Side::Server }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            0usize..8,
            any::<bool>(),
            prop_oneof![0usize..=512, 0usize..=48 * 1024],
            prop::bool::weighted(0.1),
        )
            .prop_map(|(call, client, len, end)| Op::Send { call, client, len, end }),
        1 => (0usize..8, any::<bool>()).prop_map(|(call, client)| Op::Reset { call, client }),
        3 => Just(Op::Drive),
    ]
}

#[derive(Clone, Debug)]
struct DeliveryCase {
    seed: u64,
    max_chunk: usize,
    client: Config,
    server: Config,
    calls: usize,
    ops: Vec<Op>,
    late_release: Option<u8>,
    tick_ms: u64,
}

fn delivery_case() -> impl Strategy<Value = DeliveryCase> {
    (
        any::<u64>(),
        chunking(),
        config(Config::client()),
        config(Config::server()),
        1usize..=8,
        prop::collection::vec(op(), 1..48),
        late_release(),
        prop_oneof![Just(0u64), 0u64..=50],
    )
        .prop_map(
            |(seed, max_chunk, client, server, calls, ops, late_release, tick_ms)| DeliveryCase {
                seed,
                max_chunk,
                client,
                server,
                calls,
                ops,
                late_release,
                tick_ms,
            },
        )
}

/// Plays the operations, then both applications end every call still open.
fn run_delivery_case(case: &DeliveryCase) -> Result<Exchange, TestCaseError> {
    let mut ex = Exchange::new(
        case.seed,
        case.client.clone(),
        case.server.clone(),
        case.max_chunk,
        case.late_release,
    );
    ex.tick = Duration::from_millis(case.tick_ms);
    for _ in 0..case.calls {
        ex.open(false);
    }
    for op in &case.ops {
        match *op {
            Op::Send {
                call,
                client,
                len,
                end,
            } => {
                ex.send(call % case.calls, side_of(client), len, end);
            }
            Op::Reset { call, client } => ex.reset(call % case.calls, side_of(client)),
            Op::Drive => {
                ex.drive()?;
            }
        }
    }
    Ok(ex)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Property 2, safety half: what each application receives on a stream is a prefix
    /// of what the other accepted in `send_data`, in order and without duplication, with
    /// at most one end; nothing reaches a side after its own reset or the peer's
    /// (RST_STREAM closes the stream, §5.1), and the only resets are the ones the
    /// applications asked for, seen by the peer as a remote CANCEL.
    #[test]
    fn accepted_bytes_arrive_in_order_at_most_once_and_never_after_a_reset(
        case in delivery_case()
    ) {
        let mut ex = run_delivery_case(&case)?;
        ex.end_all()?;
        ex.check_delivery(false)?;
    }

    /// Property 2, liveness half: on top of the above, every stream nobody reset delivers
    /// everything accepted and exactly one end, both ways.
    #[test]

    fn every_accepted_byte_arrives_unless_its_stream_was_reset(case in delivery_case()) {
        let mut ex = run_delivery_case(&case)?;
        ex.finish_all()?;
        ex.check_delivery(true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The smallest form of the stall above: one stream whose window is more than four
    /// times the connection window (so no stream WINDOW_UPDATE comes while the first
    /// connection window's worth is consumed) must still send past 65,535 octets once the
    /// connection WINDOW_UPDATEs arrive (§6.9.1).
    #[test]

    fn a_stream_held_only_by_the_connection_window_resumes_when_it_reopens(
        seed in any::<u64>(),
        max_chunk in chunking(),
        stream_window in 262_144u32..=1 << 20,
        len in 65_536usize..=200 * 1024,
    ) {
        let server = Config {
            initial_stream_window: stream_window,
            dynamic_window: false,
            ..Config::server()
        };
        let client = Config {
            dynamic_window: false,
            ..Config::client()
        };
        let mut ex = Exchange::new(seed, client, server, max_chunk, None);
        let i = ex.open(false);
        ex.send(i, Side::Client, len, true);
        ex.settle()?;
        prop_assert_eq!(ex.calls[i].up.delivered.len(), len);
    }
}

// ----- 3: windows restore -----

#[derive(Clone, Debug)]
struct RestoreCase {
    seed: u64,
    max_chunk: usize,
    client: Config,
    server: Config,
    messages: Vec<(usize, usize)>,
    piece: usize,
    release_pct: u8,
    tick_ms: u64,
}

fn restore_case() -> impl Strategy<Value = RestoreCase> {
    (
        any::<u64>(),
        chunking(),
        config(Config::client()),
        config(Config::server()),
        prop::collection::vec((message_len(), message_len()), 1..=4),
        prop_oneof![256usize..=4096, 4096usize..=96 * 1024],
        0u8..=100,
        prop_oneof![Just(0u64), 0u64..=50],
    )
        .prop_map(
            |(seed, max_chunk, client, server, messages, piece, release_pct, tick_ms)| {
                RestoreCase {
                    seed,
                    max_chunk,
                    client,
                    server,
                    messages,
                    piece,
                    release_pct,
                    tick_ms,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Property 3: once the receiving application has consumed everything, the windows
    /// the sender holds (per the wire: SETTINGS and WINDOW_UPDATEs read, DATA written) are
    /// back within the quarter-window batching of the receiver's limits: for every stream
    /// still open, more than 3/4 of the announced SETTINGS_INITIAL_WINDOW_SIZE and never
    /// more than it; for the connection, more than 3/4 of the connection window. Streams
    /// stay open (no END_STREAM) so that their windows still matter.
    #[test]
    fn windows_return_to_the_limit_once_the_receiver_consumes(case in restore_case()) {
        let mut ex = Exchange::new(
            case.seed,
            case.client.clone(),
            case.server.clone(),
            case.max_chunk,
            Some(case.release_pct),
        );
        ex.tick = Duration::from_millis(case.tick_ms);
        let mut left: Vec<[usize; 2]> = Vec::new();
        for &(up, down) in &case.messages {
            ex.open(false);
            left.push([up, down]);
        }
        for _round in 0..1_000_000 {
            for (i, rest) in left.iter_mut().enumerate() {
                for side in [Side::Client, Side::Server] {
                    let rest = &mut rest[side as usize];
                    if *rest > 0 && ex.can_send(i, side) {
                        let n = ex.rng.range(1, case.piece).min(*rest);
                        *rest -= n;
                        ex.send(i, side, n, false);
                    }
                }
            }
            let moved = ex.drive()?;
            if !moved && left.iter().all(|r| r == &[0, 0]) {
                break;
            }
        }
        ex.settle()?;
        prop_assert!(ex.held.iter().all(BTreeMap::is_empty));
        for (sender, config) in [(Side::Client, &case.server), (Side::Server, &case.client)] {
            let receiver = other(sender) as usize;
            let announced = &ex.watch.announced[receiver];
            let allowance = &ex.watch.allowance[sender as usize];
            let limit = i64::from(announced.stream_limit);
            for call in &ex.calls {
                let window = allowance.stream(call.id.value());
                prop_assert!(
                    window > limit - limit / 4 && window <= limit,
                    "{sender:?} holds {window} on {:?}, limit {limit}",
                    call.id
                );
            }
            // With the dynamic window, a growth sets the connection window too.
            let conn_limit = i64::from(
                announced
                    .grown_to
                    .unwrap_or(config.initial_connection_window),
            );
            prop_assert!(
                allowance.conn > conn_limit - conn_limit / 4,
                "{sender:?} holds {} of the connection window, limit {conn_limit}",
                allowance.conn
            );
        }
    }
}

// ----- 4: chunking -----

#[derive(Clone, Debug)]
enum ClientOp {
    Open { end: bool },
    Send { call: usize, len: usize, end: bool },
    Trailers { call: usize },
    Reset { call: usize },
    Ping,
    Drive,
}

#[derive(Clone, Copy, Debug)]
enum Finale {
    KeepOpen,
    Shutdown,
    Close,
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        2 => any::<bool>().prop_map(|end| ClientOp::Open { end }),
        5 => (0usize..8, prop_oneof![0usize..=256, 0usize..=16 * 1024], prop::bool::weighted(0.1))
            .prop_map(|(call, len, end)| ClientOp::Send { call, len, end }),
        1 => (0usize..8).prop_map(|call| ClientOp::Trailers { call }),
        1 => (0usize..8).prop_map(|call| ClientOp::Reset { call }),
        1 => Just(ClientOp::Ping),
        2 => Just(ClientOp::Drive),
    ]
}

/// Ways to cut a byte stream: the sizes are used in turn, cyclically.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        prop::collection::vec(1usize..=16, 1..8),
        prop::collection::vec(1usize..=4096, 1..8),
        prop::collection::vec(1usize..=40_000, 1..8),
    ]
}

#[derive(Clone, Debug)]
struct ReplayCase {
    seed: u64,
    max_chunk: usize,
    client: Config,
    server: Config,
    ops: Vec<ClientOp>,
    finale: Finale,
    splits: Vec<Vec<usize>>,
}

fn replay_case() -> impl Strategy<Value = ReplayCase> {
    (
        any::<u64>(),
        chunking(),
        config(Config::client()),
        config(Config::server()),
        prop::collection::vec(client_op(), 1..64),
        prop_oneof![
            Just(Finale::KeepOpen),
            Just(Finale::Shutdown),
            Just(Finale::Close)
        ],
        prop::collection::vec(splits(), 2),
    )
        .prop_map(
            |(seed, max_chunk, client, server, ops, finale, splits)| ReplayCase {
                seed,
                max_chunk,
                client,
                server,
                ops,
                finale,
                splits,
            },
        )
}

/// Runs a client application against a server that only reads, and returns what the
/// client wrote, the server's events, and whether the client closed its end.
fn record_client(case: &ReplayCase) -> (Vec<u8>, Vec<Event>, Instant, bool) {
    let mut pair = Pair::with_configs(case.seed, case.client.clone(), case.server.clone());
    pair.max_chunk = case.max_chunk;
    pair.record_wire();
    let mut rng = SimRng::new(case.seed);
    let mut ids: Vec<StreamId> = Vec::new();
    let pick = |ids: &[StreamId], call: usize| ids.get(call % ids.len().max(1)).copied();
    for op in &case.ops {
        // Refusals (a stream already ended or reset) are part of the workload, not the
        // property: only what reaches the wire matters here.
        match *op {
            ClientOp::Open { end } => {
                if let Ok(id) = pair.client.open_stream(request(), end) {
                    ids.push(id);
                }
            }
            ClientOp::Send { call, len, end } => {
                if let Some(id) = pick(&ids, call) {
                    let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                    let _ = pair.client.send_data(id, bytes.into(), end);
                }
            }
            ClientOp::Trailers { call } => {
                if let Some(id) = pick(&ids, call) {
                    let _ = pair.client.send_headers(id, trailers(), true);
                }
            }
            ClientOp::Reset { call } => {
                if let Some(id) = pick(&ids, call) {
                    let _ = pair.client.reset(id, ErrorCode::Cancel);
                }
            }
            ClientOp::Ping => {
                let _ = pair.client.ping(rng.next_u64().to_le_bytes());
            }
            ClientOp::Drive => pair.drive(),
        }
    }
    // Close after what was queued is written: closing first would discard it, leaving
    // little for the replays to read.
    pair.drive();
    match case.finale {
        Finale::KeepOpen => {}
        Finale::Shutdown => pair.client.shutdown(),
        Finale::Close => pair.client.close(ErrorCode::NoError, "done"),
    }
    pair.drive();
    let mut bytes = Vec::new();
    for event in pair.take_wire() {
        if let WireEvent::Written {
            from: Side::Client,
            bytes: b,
        } = event
        {
            bytes.extend_from_slice(&b);
        }
    }
    let eof = pair.client.is_closed();
    (bytes, pair.take_events(Side::Server), pair.now, eof)
}

/// A fresh server fed `bytes` cut by `splits`, drained after every read as a real owner
/// would (writes discarded, DATA consumed at once), all at the instant `now`.
fn replay(config: &Config, now: Instant, bytes: &[u8], splits: &[usize], eof: bool) -> Vec<Event> {
    let mut conn = Connection::new(Role::Server, config.clone(), now);
    let mut events = Vec::new();
    let mut out = Transmit::new();
    let mut rest = bytes;
    let mut sizes = splits.iter().cycle();
    loop {
        while conn.poll_transmit(now, &mut out) > 0 {
            out.clear();
        }
        while let Some(event) = conn.poll_event() {
            if let Event::Data {
                stream_id, data, ..
            } = &event
            {
                conn.release_data(*stream_id, data.len())
                    .expect("releasing delivered data");
            }
            events.push(event);
        }
        if rest.is_empty() || !conn.wants_read() {
            break;
        }
        let n = (*sizes.next().expect("splits are never empty")).clamp(1, rest.len());
        conn.recv(BytesMut::from(&rest[..n]), now);
        rest = &rest[n..];
    }
    if eof && rest.is_empty() {
        conn.recv_eof();
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    events
}

/// The first place two event lists differ, for a readable failure.
fn first_difference(a: &[Event], b: &[Event]) -> Option<String> {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    (a.len() != b.len() || i < a.len()).then(|| {
        format!(
            "at event {i} of {}/{}: {:?} vs {:?}",
            a.len(),
            b.len(),
            a.get(i),
            b.get(i)
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Property 4: how the bytes are cut into reads does not change what the connection
    /// reports. A client's bytes from a random exchange, replayed into fresh servers in
    /// one read, in single bytes and in random cuts, give the same events, equal to those
    /// of the server that read them through the pair.
    #[test]
    fn recv_chunking_does_not_change_the_events(case in replay_case()) {
        let (bytes, original, now, eof) = record_client(&case);
        // The client sent what the original server's WINDOW_UPDATEs allowed, and those
        // depended on when that server read and released: a replay that reads
        // everything at once never gets the chance, and rightly refuses DATA beyond
        // the window (a proptest case found this: 65,536 bytes on one stream). The
        // replays get windows no exchange can exhaust, so only the cutting differs.
        let mut server = case.server.clone();
        server.initial_stream_window = grpc_sansio::frame::MAX_WINDOW_SIZE;
        server.initial_connection_window = grpc_sansio::frame::MAX_WINDOW_SIZE;
        let whole = replay(&server, now, &bytes, &[usize::MAX], eof);
        if let Some(diff) = first_difference(&original, &whole) {
            prop_assert!(false, "the pair's server and a single read differ {diff}");
        }
        let mut cuts = case.splits.clone();
        cuts.push(vec![1]);
        for cut in &cuts {
            let events = replay(&server, now, &bytes, cut, eof);
            if let Some(diff) = first_difference(&whole, &events) {
                prop_assert!(false, "reads cut as {cut:?} differ {diff}");
            }
        }
    }
}

// ----- 5: concurrency limit -----

/// What the client may open, rebuilt from the frames it wrote and read (§5.1.2): the
/// streams it still counts as open (not yet ended both ways, nor reset).
struct ConcurrencyWatch {
    frames: WireFrames,
    limit: Option<u32>,
    open: BTreeSet<u32>,
    ended_local: BTreeSet<u32>,
    ended_remote: BTreeSet<u32>,
    last_id: u32,
    most_open: usize,
}

impl ConcurrencyWatch {
    fn new() -> ConcurrencyWatch {
        ConcurrencyWatch {
            frames: WireFrames::new(),
            limit: None,
            open: BTreeSet::new(),
            ended_local: BTreeSet::new(),
            ended_remote: BTreeSet::new(),
            last_id: 0,
            most_open: 0,
        }
    }

    fn feed(&mut self, log: &[WireEvent]) -> Result<(), String> {
        for event in log {
            for seen in self.frames.observe(event) {
                if seen.side == Side::Client {
                    self.client_saw(seen.direction, &seen.frame)?;
                }
            }
        }
        Ok(())
    }

    fn client_saw(&mut self, direction: Direction, frame: &Frame) -> Result<(), String> {
        let (id, end) = match frame {
            Frame::Settings(s) if direction == Direction::Read && !s.ack => {
                if let Some(max) = s.max_concurrent_streams {
                    self.limit = Some(max);
                }
                return Ok(());
            }
            Frame::RstStream(r) => {
                self.open.remove(&r.stream_id.value());
                return Ok(());
            }
            Frame::Headers(h) => (h.stream_id.value(), h.end_stream),
            Frame::Data(d) => (d.stream_id.value(), d.end_stream),
            _ => return Ok(()),
        };
        if direction == Direction::Wrote
            && matches!(frame, Frame::Headers(_))
            && !self.open.contains(&id)
        {
            // §5.1.1: a new stream's id is larger than every id opened before.
            if id <= self.last_id {
                return Err(format!(
                    "HEADERS on stream {id} after stream {}",
                    self.last_id
                ));
            }
            self.last_id = id;
            self.open.insert(id);
            self.most_open = self.most_open.max(self.open.len());
            if let Some(limit) = self.limit
                && self.open.len() > limit as usize
            {
                return Err(format!(
                    "stream {id} opened with {} open, limit {limit}",
                    self.open.len()
                ));
            }
        }
        if end {
            match direction {
                Direction::Wrote => self.ended_local.insert(id),
                Direction::Read => self.ended_remote.insert(id),
            };
            if self.ended_local.contains(&id) && self.ended_remote.contains(&id) {
                self.open.remove(&id);
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct QuotaStream {
    request: usize,
    response: usize,
    /// Drives between the server seeing the request and answering it.
    delay: usize,
    /// The client cancels it after this many drives, if not complete by then.
    cancel_after: Option<usize>,
}

#[derive(Clone, Debug)]
struct QuotaCase {
    seed: u64,
    max_chunk: usize,
    limit: u32,
    dynamic_window: bool,
    streams: Vec<QuotaStream>,
}

fn quota_case() -> impl Strategy<Value = QuotaCase> {
    let stream = (
        0usize..=4096,
        0usize..=4096,
        0usize..=4,
        prop::option::weighted(0.15, 0usize..=6),
    )
        .prop_map(|(request, response, delay, cancel_after)| QuotaStream {
            request,
            response,
            delay,
            cancel_after,
        });
    (
        any::<u64>(),
        chunking(),
        1u32..=10,
        any::<bool>(),
        prop::collection::vec(stream, 1..=30),
    )
        .prop_map(
            |(seed, max_chunk, limit, dynamic_window, streams)| QuotaCase {
                seed,
                max_chunk,
                limit,
                dynamic_window,
                streams,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Property 5: with a random SETTINGS_MAX_CONCURRENT_STREAMS on the server, the
    /// client never has more streams open than that (§5.1.2, counted from its own
    /// frames) and opens them in increasing id order (§5.1.1); the server never holds
    /// more and never refuses one; and every stream the client did not cancel completes.
    #[test]
    fn open_streams_stay_within_the_servers_limit_and_all_complete(case in quota_case()) {
        let server = Config {
            max_concurrent_streams: Some(case.limit),
            dynamic_window: case.dynamic_window,
            ..Config::server()
        };
        let client = Config {
            dynamic_window: case.dynamic_window,
            ..Config::client()
        };
        let mut pair = Pair::with_configs(case.seed, client, server);
        pair.max_chunk = case.max_chunk;
        pair.record_wire();
        let mut watch = ConcurrencyWatch::new();
        // Opened after the handshake: before the server's SETTINGS the client may assume
        // more quota than it has (§5.1.2 allows the server to refuse those).
        pair.drive();
        let mut ids = BTreeMap::new();
        for (i, s) in case.streams.iter().enumerate() {
            let id = pair.client.open_stream(request(), s.request == 0).expect("open");
            if s.request > 0 {
                pair.client
                    .send_data(id, Bytes::from(vec![i as u8; s.request]), true)
                    .expect("send");
            }
            ids.insert(id.value(), i);
        }
        let n = case.streams.len();
        let mut seen_at: Vec<Option<usize>> = vec![None; n];
        let mut answered = vec![false; n];
        let mut complete = vec![false; n];
        let mut cancelled = vec![false; n];
        for round in 0..1_000 {
            pair.drive();
            watch.feed(&pair.take_wire()).map_err(fail)?;
            prop_assert!(
                pair.server.open_streams() <= case.limit as usize,
                "server holds {} streams, limit {}",
                pair.server.open_streams(),
                case.limit
            );
            for event in pair.take_events(Side::Server) {
                match event {
                    Event::Headers { stream_id, .. } => seen_at[ids[&stream_id.value()]] = Some(round),
                    Event::StreamReset { stream_id, reset } => prop_assert!(
                        cancelled[ids[&stream_id.value()]] && reset.initiator == Initiator::Remote,
                        "server: unexpected reset of {stream_id:?}: {reset:?}"
                    ),
                    Event::Closed { reason } => prop_assert!(false, "server closed: {reason}"),
                    _ => {}
                }
            }
            for event in pair.take_events(Side::Client) {
                match event {
                    Event::Trailers { stream_id, .. } => complete[ids[&stream_id.value()]] = true,
                    Event::StreamReset { stream_id, reset } => {
                        prop_assert!(false, "client: reset of {stream_id:?}: {reset:?}")
                    }
                    Event::Closed { reason } => prop_assert!(false, "client closed: {reason}"),
                    _ => {}
                }
            }
            if (0..n).all(|i| complete[i] || cancelled[i]) {
                prop_assert_eq!(pair.server.open_streams(), 0);
                prop_assert_eq!(pair.client.open_streams(), 0);
                // The limit was reached when there were enough streams to reach it: the
                // watch is not vacuous.
                let cancels = case.streams.iter().filter(|s| s.cancel_after.is_some()).count();
                if n >= case.limit as usize + cancels {
                    prop_assert_eq!(watch.most_open, case.limit as usize);
                }
                return Ok(());
            }
            for (&id, &i) in &ids {
                let id = StreamId::new(id);
                let s = &case.streams[i];
                if !complete[i] && !cancelled[i] && s.cancel_after.is_some_and(|r| r <= round) {
                    pair.client.reset(id, ErrorCode::Cancel).expect("cancel an open stream");
                    cancelled[i] = true;
                }
                if cancelled[i] || answered[i] || seen_at[i].is_none_or(|r| round < r + s.delay) {
                    continue;
                }
                answered[i] = true;
                pair.server.send_headers(id, response(), false).expect("response");
                if s.response > 0 {
                    pair.server
                        .send_data(id, Bytes::from(vec![!(i as u8); s.response]), false)
                        .expect("response body");
                }
                pair.server.send_headers(id, trailers(), true).expect("trailers");
            }
        }
        let stuck: Vec<usize> = (0..n).filter(|&i| !complete[i] && !cancelled[i]).collect();
        prop_assert!(false, "streams never completed: {stuck:?}");
    }
}

// ----- the connection preface -----

/// RFC 9113 §3.4: the client's preface is the magic octets followed by SETTINGS, and the
/// server's preface is SETTINGS, "the first frame the server sends". An application may
/// close a connection before it ever wrote: then either nothing is written at all, or
/// the preface comes first as usual.
#[test]

fn closing_before_the_first_write_still_starts_with_settings() {
    for role in [Role::Client, Role::Server] {
        let now = Instant::now();
        let mut conn = Connection::new(role, Config::for_role(role), now);
        conn.close(ErrorCode::NoError, "not needed after all");
        let mut out = Transmit::new();
        let mut bytes = BytesMut::new();
        while conn.poll_transmit(now, &mut out) > 0 {
            out.copy_to(&mut bytes);
            out.clear();
        }
        if bytes.is_empty() {
            continue;
        }
        let frames = FrameReader::new(role == Role::Client).push(&bytes);
        assert!(
            matches!(frames.first(), Some(Frame::Settings(s)) if !s.ack),
            "{role:?} wrote {frames:?}"
        );
    }
}
