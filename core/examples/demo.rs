//! gRPC calls end to end, in memory: a [`ClientTransport`] talks to an embedded "Echo"
//! service on a [`ServerTransport`], and the demo moves the bytes between them itself.
//!
//! It runs a unary call (request metadata with a `-bin` key, response headers and binary
//! trailers), server streaming, client streaming, bidi streaming, a bidi call the client
//! cancels midway, an unknown method (a Trailers-Only UNIMPLEMENTED), and a call whose
//! 200 ms deadline passes on a virtual clock. Then the server shuts down gracefully and
//! the wire totals are printed, with every byte moved decoded again to count frames.
//!
//! Every outcome is checked: the demo exits non-zero when one differs from what gRPC
//! says it must be, so it doubles as a smoke test.
//!
//! Run with `cargo run -p grpc-sansio --example demo`.

use std::collections::HashMap;
use std::error::Error;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::{self, DecoderConfig, FrameDecoder, PrefaceCheck};
use grpc_sansio::grpc::client::{ClientEvent, RequestHeaders, Scheme};
use grpc_sansio::grpc::code::Code;
use grpc_sansio::grpc::metadata::{Metadata, is_binary_key};
use grpc_sansio::grpc::server::{RequestHead, ServerEvent};
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{
    CallId, ClientTransport, ClientTransportEvent, MessageLimits, ServerTransport,
    ServerTransportEvent,
};
use grpc_sansio::h2::{Config, Transmit};

type Result<T = (), E = Box<dyn Error>> = std::result::Result<T, E>;

const AUTHORITY: &str = "echo.demo:50051";
/// Trailer metadata of every unary answer: binary, so it travels base64-encoded.
const COST: [u8; 4] = [0x00, 0x2a, 0xbe, 0xef];

/// Fails the demo with `what` unless `ok`.
fn expect(ok: bool, what: &str) -> Result {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected outcome: {what}").into())
    }
}

// ---------------------------------------------------------------------------------
// The Echo service: a handler per call, driven by the server transport's events.
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Unary,
    Count,
    Sum,
    Chat,
    Slow,
}

struct Handler {
    method: Method,
    request: Option<Bytes>,
    total_len: usize,
}

#[derive(Default)]
struct EchoServer {
    calls: HashMap<CallId, Handler>,
    /// What handlers saw when their call failed (cancelled, deadline), oldest first.
    failures: Vec<Status>,
}

impl EchoServer {
    fn on_new_call(
        &mut self,
        t: &mut ServerTransport,
        call: CallId,
        head: &RequestHead,
        now: Instant,
    ) -> Result {
        // The handler learns the deadline from grpc-timeout, on its own clock.
        let deadline = head.deadline.map_or(String::new(), |d| {
            format!(" deadline in {}ms", (d - now).as_millis())
        });
        println!(
            "  server: new call {}{} metadata {}",
            text(&head.path),
            deadline,
            show_md(&head.metadata)
        );
        let method = match &head.path[..] {
            b"/demo.Echo/Unary" => Method::Unary,
            b"/demo.Echo/Count" => Method::Count,
            b"/demo.Echo/Sum" => Method::Sum,
            b"/demo.Echo/Chat" => Method::Chat,
            b"/demo.Echo/Slow" => Method::Slow,
            _ => {
                // Nothing was sent yet, so the transport answers Trailers-Only.
                let status = Status::unimplemented(format!("unknown method {}", text(&head.path)));
                println!("  server: finish {status}");
                t.finish(call, &status, &Metadata::new())?;
                return Ok(());
            }
        };
        self.calls.insert(
            call,
            Handler {
                method,
                request: None,
                total_len: 0,
            },
        );
        Ok(())
    }

    fn on_readable(&mut self, t: &mut ServerTransport, call: CallId) -> Result {
        while let Some(event) = t.poll_call(call) {
            let Some(h) = self.calls.get_mut(&call) else {
                break;
            };
            let done = match event {
                ServerEvent::Message(m) => {
                    println!("  server: <- {}", text(&m));
                    match h.method {
                        Method::Unary | Method::Count => h.request = Some(m),
                        Method::Sum => h.total_len += m.len(),
                        // Answered as it arrives: bidi needs no half-close to reply.
                        Method::Chat => t.send_message(call, echo(&m))?,
                        Method::Slow => {}
                    }
                    false
                }
                ServerEvent::HalfClosed => respond(t, call, h)?,
                ServerEvent::Failed(status) => {
                    println!("  server: handler saw {status}");
                    // The stream is gone already; this only releases the call.
                    t.finish(call, &status, &Metadata::new())?;
                    self.failures.push(status);
                    true
                }
            };
            if done {
                self.calls.remove(&call);
            }
        }
        Ok(())
    }
}

/// The answer once the client finished sending; true when the call is over.
fn respond(t: &mut ServerTransport, call: CallId, h: &mut Handler) -> Result<bool> {
    let request = h.request.take().unwrap_or_default();
    let (status, trailers) = match h.method {
        Method::Unary => {
            let mut headers = Metadata::new();
            headers.append("x-served-by", "demo")?;
            t.send_headers(call, headers)?;
            t.send_message(call, Bytes::from(text(&request).to_uppercase()))?;
            let mut trailers = Metadata::new();
            trailers.append("x-cost-bin", Bytes::from_static(&COST))?;
            (Status::ok(), trailers)
        }
        Method::Count => match std::str::from_utf8(&request)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            Some(n) => {
                for i in 1..=n {
                    t.send_message(call, Bytes::from(format!("{i} of {n}")))?;
                }
                (Status::ok(), Metadata::new())
            }
            None => (
                Status::invalid_argument("the request must be a number"),
                Metadata::new(),
            ),
        },
        Method::Sum => {
            t.send_message(call, Bytes::from(h.total_len.to_string()))?;
            (Status::ok(), Metadata::new())
        }
        Method::Chat => (Status::ok(), Metadata::new()),
        // Never answers: only the deadline ends it.
        Method::Slow => return Ok(false),
    };
    println!("  server: finish {status} trailers {}", show_md(&trailers));
    t.finish(call, &status, &trailers)?;
    Ok(true)
}

fn echo(m: &[u8]) -> Bytes {
    Bytes::from(format!("echo: {}", text(m)))
}

// ---------------------------------------------------------------------------------
// The wire: both transports, the bytes between them, and a virtual clock.
// ---------------------------------------------------------------------------------

/// One direction of the connection.
struct Direction {
    /// Written by one side, not yet read by the other.
    pending: BytesMut,
    /// A copy of everything written, decoded only to count frames.
    tap: BytesMut,
    decoder: FrameDecoder,
    expects_preface: bool,
    bytes: usize,
    /// Frames seen, by frame type code (CONTINUATION is folded into its HEADERS).
    frames: [usize; 10],
}

impl Direction {
    fn new(expects_preface: bool) -> Direction {
        let mut decoder = FrameDecoder::new(DecoderConfig {
            max_header_block_size: 1 << 20,
            ..DecoderConfig::default()
        });
        decoder.set_max_frame_size(frame::MAX_MAX_FRAME_SIZE);
        Direction {
            pending: BytesMut::new(),
            tap: BytesMut::new(),
            decoder,
            expects_preface,
            bytes: 0,
            frames: [0; 10],
        }
    }

    fn write(&mut self, out: &Transmit) -> Result {
        out.copy_to(&mut self.pending);
        out.copy_to(&mut self.tap);
        self.bytes += out.len();
        if self.expects_preface {
            match frame::check_preface(&self.tap) {
                PrefaceCheck::Complete => {
                    let _ = self.tap.split_to(frame::PREFACE.len());
                    self.expects_preface = false;
                }
                PrefaceCheck::Partial => return Ok(()),
                PrefaceCheck::Invalid => return Err("bad preface".into()),
            }
        }
        while let Some(f) = self.decoder.decode(&mut self.tap)? {
            if let Some(n) = self.frames.get_mut(usize::from(f.kind())) {
                *n += 1;
            }
        }
        Ok(())
    }

    fn summary(&self) -> String {
        const NAMES: [&str; 10] = [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ];
        let parts: Vec<String> = NAMES
            .iter()
            .zip(self.frames)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!(
            "{} bytes, {} frames ({})",
            self.bytes,
            self.frames.iter().sum::<usize>(),
            parts.join(", ")
        )
    }
}

struct Demo {
    client: ClientTransport,
    server: ServerTransport,
    echo: EchoServer,
    start: Instant,
    now: Instant,
    /// Connection-level client events (calls are read with `poll_call` instead).
    client_events: Vec<ClientTransportEvent>,
    server_closed: Option<String>,
    to_server: Direction,
    to_client: Direction,
    eof_sent: [bool; 2],
}

impl Demo {
    fn new() -> Demo {
        // The only clock read: everything after it is virtual time the demo moves on.
        let start = Instant::now();
        Demo {
            client: ClientTransport::new(Config::client(), MessageLimits::default(), start),
            server: ServerTransport::new(Config::server(), MessageLimits::default(), start),
            echo: EchoServer::default(),
            start,
            now: start,
            client_events: Vec::new(),
            server_closed: None,
            to_server: Direction::new(true),
            to_client: Direction::new(false),
            eof_sent: [false, false],
        }
    }

    fn elapsed_ms(&self) -> u128 {
        (self.now - self.start).as_millis()
    }

    /// Moves bytes and events until neither side has anything more to do.
    fn drive(&mut self) -> Result {
        for _ in 0..10_000 {
            let mut progress = false;
            let mut out = Transmit::new();
            while self.client.poll_transmit(self.now, &mut out) > 0 {
                self.to_server.write(&out)?;
                out.clear();
                progress = true;
            }
            while self.server.poll_transmit(self.now, &mut out) > 0 {
                self.to_client.write(&out)?;
                out.clear();
                progress = true;
            }
            // Nobody reads a closed connection's socket: its bytes are dropped.
            if !self.to_server.pending.is_empty() && self.server.is_closed() {
                self.to_server.pending.clear();
            } else if !self.to_server.pending.is_empty() && self.server.wants_read() {
                self.server.recv(self.to_server.pending.split(), self.now);
                progress = true;
            }
            if !self.to_client.pending.is_empty() && self.client.is_closed() {
                self.to_client.pending.clear();
            } else if !self.to_client.pending.is_empty() && self.client.wants_read() {
                self.client.recv(self.to_client.pending.split(), self.now);
                progress = true;
            }
            while let Some(e) = self.server.poll_event() {
                progress = true;
                match e {
                    ServerTransportEvent::NewCall { call, head } => {
                        self.echo
                            .on_new_call(&mut self.server, call, &head, self.now)?;
                    }
                    ServerTransportEvent::CallReadable(call) => {
                        self.echo.on_readable(&mut self.server, call)?;
                    }
                    ServerTransportEvent::Closed(reason) => {
                        self.server_closed = Some(reason.to_string());
                    }
                    _ => {}
                }
            }
            while let Some(e) = self.client.poll_event() {
                progress = true;
                if !matches!(
                    e,
                    ClientTransportEvent::CallReadable(_) | ClientTransportEvent::CallWritable(_)
                ) {
                    self.client_events.push(e);
                }
            }
            // A closed side's socket reaches EOF on the other side once drained.
            if self.client.is_closed() && self.to_server.pending.is_empty() && !self.eof_sent[0] {
                self.eof_sent[0] = true;
                self.server.recv_eof();
                progress = true;
            }
            if self.server.is_closed() && self.to_client.pending.is_empty() && !self.eof_sent[1] {
                self.eof_sent[1] = true;
                self.client.recv_eof();
                progress = true;
            }
            if !progress {
                return Ok(());
            }
        }
        Err("the connection did not settle".into())
    }

    /// Moves the virtual clock on and fires whatever timers are due on both sides.
    fn advance(&mut self, d: Duration) -> Result {
        self.now += d;
        println!(
            "  (virtual clock +{}ms, now t+{}ms)",
            d.as_millis(),
            self.elapsed_ms()
        );
        // Both sides' timers fire before any byte moves, as on two machines whose
        // clocks agree.
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.drive()
    }

    fn start(
        &mut self,
        path: &str,
        metadata: Metadata,
        timeout: Option<Duration>,
    ) -> Result<CallId> {
        let mut headers = RequestHeaders::new(Scheme::Http, AUTHORITY, path.to_owned())
            .metadata(metadata.clone());
        if let Some(t) = timeout {
            headers = headers.deadline(self.now + t);
        }
        let id = self.client.start_call(&headers, self.now)?;
        let deadline = timeout.map_or(String::new(), |t| format!(" deadline +{}ms", t.as_millis()));
        println!(
            "  client: start {path} ({id}){deadline} metadata {}",
            show_md(&metadata)
        );
        Ok(id)
    }

    fn send(&mut self, id: CallId, message: &str, last: bool) -> Result {
        println!(
            "  client: -> {message:?}{}",
            if last { " (last)" } else { "" }
        );
        self.client
            .send_message(id, Bytes::from(message.to_owned()), last)?;
        Ok(())
    }

    /// Everything the call has for the client now, printed as it is taken.
    fn take(&mut self, id: CallId, r: &mut Response) {
        while let Some(event) = self.client.poll_call(id) {
            match event {
                ClientEvent::Headers(md) => {
                    println!("  client: <- headers {}", show_md(&md));
                    r.headers = Some(md);
                }
                ClientEvent::Message(m) => {
                    println!("  client: <- {}", text(&m));
                    r.messages.push(text(&m));
                }
                ClientEvent::Status(status, trailers) => {
                    println!(
                        "  client: <- status {status}, trailers {}",
                        show_md(&trailers)
                    );
                    r.status = Some(status);
                    r.trailers = trailers;
                }
            }
        }
    }
}

#[derive(Default)]
struct Response {
    headers: Option<Metadata>,
    messages: Vec<String>,
    status: Option<Status>,
    trailers: Metadata,
}

impl Response {
    fn code(&self) -> Option<Code> {
        self.status.as_ref().map(|s| s.code)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hex(b: &[u8]) -> String {
    let bytes: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    bytes.join(" ")
}

fn show_md(md: &Metadata) -> String {
    let parts: Vec<String> = md
        .iter()
        .map(|(k, v)| {
            if is_binary_key(k.as_bytes()) {
                format!("{k}: [{}]", hex(v))
            } else {
                format!("{k}: {}", text(v))
            }
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn main() -> Result {
    let mut demo = Demo::new();
    demo.drive()?;
    expect(
        demo.client_events
            .contains(&ClientTransportEvent::Connected),
        "the client is connected",
    )?;
    println!("connected: preface and SETTINGS exchanged at t+0ms");

    println!("== unary: /demo.Echo/Unary");
    let mut md = Metadata::new();
    md.append("x-request-id", "req-1")?;
    md.append("x-trace-bin", Bytes::from_static(&[0xca, 0xfe, 0x00, 0x01]))?;
    let id = demo.start("/demo.Echo/Unary", md, None)?;
    demo.send(id, "hello, sans-io", true)?;
    demo.drive()?;
    let mut r = Response::default();
    demo.take(id, &mut r);
    expect(
        r.headers.as_ref().and_then(|h| h.get_str("x-served-by")) == Some("demo"),
        "unary headers carry x-served-by: demo",
    )?;
    expect(
        r.messages == ["HELLO, SANS-IO"],
        "unary echo is upper-cased",
    )?;
    expect(r.code() == Some(Code::Ok), "unary ends OK")?;
    expect(
        r.trailers.get("x-cost-bin").map(|v| &v[..]) == Some(&COST[..]),
        "unary trailers carry x-cost-bin",
    )?;

    println!("== server streaming: /demo.Echo/Count");
    let id = demo.start("/demo.Echo/Count", Metadata::new(), None)?;
    demo.send(id, "3", true)?;
    demo.drive()?;
    let mut r = Response::default();
    demo.take(id, &mut r);
    expect(
        r.messages == ["1 of 3", "2 of 3", "3 of 3"] && r.code() == Some(Code::Ok),
        "Count answers three messages and OK",
    )?;

    println!("== client streaming: /demo.Echo/Sum");
    let id = demo.start("/demo.Echo/Sum", Metadata::new(), None)?;
    println!("  client: -> \"a\", \"bb\", \"ccc\", then close send");
    for m in ["a", "bb", "ccc"] {
        demo.client
            .send_message(id, Bytes::from_static(m.as_bytes()), false)?;
    }
    demo.client.close_send(id)?;
    demo.drive()?;
    let mut r = Response::default();
    demo.take(id, &mut r);
    expect(
        r.messages == ["6"] && r.code() == Some(Code::Ok),
        "Sum answers 6 and OK",
    )?;

    println!("== bidi streaming: /demo.Echo/Chat");
    let id = demo.start("/demo.Echo/Chat", Metadata::new(), None)?;
    let mut r = Response::default();
    for m in ["ping", "pong"] {
        demo.send(id, m, false)?;
        demo.drive()?;
        // Each answer is already here before the client sends the next message.
        demo.take(id, &mut r);
        expect(
            r.messages.last().map(String::as_str) == Some(&format!("echo: {m}")[..]),
            "Chat answers each message as it arrives",
        )?;
    }
    println!("  client: close send");
    demo.client.close_send(id)?;
    demo.drive()?;
    demo.take(id, &mut r);
    expect(r.code() == Some(Code::Ok), "Chat ends OK")?;

    println!("== bidi cancelled by the client midway");
    let id = demo.start("/demo.Echo/Chat", Metadata::new(), None)?;
    let mut r = Response::default();
    demo.send(id, "first", false)?;
    demo.drive()?;
    demo.take(id, &mut r);
    println!("  client: cancel");
    demo.client.cancel(id);
    demo.drive()?;
    demo.take(id, &mut r);
    expect(
        r.messages == ["echo: first"] && r.code() == Some(Code::Cancelled),
        "the cancelled Chat ends CANCELLED on the client",
    )?;
    expect(
        demo.echo.failures.last().map(|s| s.code) == Some(Code::Cancelled),
        "the Chat handler sees CANCELLED",
    )?;

    println!("== unknown method: Trailers-Only");
    let id = demo.start("/demo.Echo/Nope", Metadata::new(), None)?;
    demo.send(id, "?", true)?;
    demo.drive()?;
    let mut r = Response::default();
    demo.take(id, &mut r);
    expect(
        r.headers.is_none() && r.code() == Some(Code::Unimplemented),
        "an unknown method ends UNIMPLEMENTED without response headers",
    )?;

    println!("== deadline: /demo.Echo/Slow");
    let id = demo.start(
        "/demo.Echo/Slow",
        Metadata::new(),
        Some(Duration::from_millis(200)),
    )?;
    demo.send(id, "anyone there?", true)?;
    demo.drive()?;
    let mut r = Response::default();
    demo.take(id, &mut r);
    expect(
        r.status.is_none(),
        "Slow has not answered before its deadline",
    )?;
    demo.advance(Duration::from_millis(199))?;
    demo.take(id, &mut r);
    expect(
        r.status.is_none(),
        "Slow is still running 1 ms before its deadline",
    )?;
    demo.advance(Duration::from_millis(1))?;
    demo.take(id, &mut r);
    expect(
        r.code() == Some(Code::DeadlineExceeded),
        "Slow ends DEADLINE_EXCEEDED on the client",
    )?;
    expect(
        demo.echo.failures.last().map(|s| s.code) == Some(Code::DeadlineExceeded),
        "the Slow handler sees DEADLINE_EXCEEDED",
    )?;

    println!("== graceful shutdown: server.shutdown()");
    demo.client_events.clear();
    // With no call left, the client closes as soon as GOAWAY arrives, so the server's
    // own close is the EOF of that socket.
    demo.server.shutdown();
    demo.drive()?;
    for e in &demo.client_events {
        match e {
            ClientTransportEvent::GoAway {
                last_stream_id,
                code,
                ..
            } => println!(
                "  client: <- GOAWAY last_stream_id={} {code}",
                last_stream_id.value()
            ),
            ClientTransportEvent::Closed(reason) => println!("  client: closed ({reason})"),
            other => println!("  client: {other:?}"),
        }
    }
    if let Some(reason) = &demo.server_closed {
        println!("  server: closed ({reason})");
    }
    expect(
        demo.client_events
            .iter()
            .any(|e| matches!(e, ClientTransportEvent::GoAway { .. })),
        "the client sees GOAWAY",
    )?;
    expect(
        demo.client.is_closed() && demo.server.is_closed(),
        "both sides are closed",
    )?;
    expect(
        demo.client.open_calls() == 0 && demo.server.open_calls() == 0,
        "no call is left open",
    )?;

    println!("== wire totals (t+{}ms)", demo.elapsed_ms());
    // The client's bytes include the 24-byte preface. Most PINGs are BDP probes and
    // their acks: each side sizes its flow-control windows from the round trips.
    println!("  client -> server: {}", demo.to_server.summary());
    println!("  server -> client: {}", demo.to_client.summary());
    println!("all outcomes as expected");
    Ok(())
}
