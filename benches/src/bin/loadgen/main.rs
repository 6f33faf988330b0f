//! The load bench (issues 6, 7 and 9): our tokio client, our async-std client and
//! tonic's client against tonic's server and ours, on loopback, interleaved, with
//! min/median/max over runs and the ratios ours/tonic.
//!
//! ```text
//! cargo run --release -p grpc-sansio-benches --bin loadgen -- [--seconds N] [--runs R] [--quick]
//! ```
//!
//! The orchestrator starts each server as a child process (this binary re-executed as
//! `loadgen serve --impl ours|tonic`, which prints `PORT <n>`), pinned to CPU 0 with
//! `taskset` when it exists and the machine has two CPUs or more; every measurement is
//! one more child process (`loadgen client --impl ours|ours-async-std|tonic|h2load --port P --figure F
//! ...`, pinned to CPU 1) that prints one `RESULT key=value ...` line. A client process
//! measures its own CPU time (`/proc/self/stat`) and peak RSS (`VmHWM`). The raw-TCP
//! ceilings (`serve --impl raw`, `client --impl raw`, in [`raw`]) run the same way.

mod raw;

use std::io::{BufRead, BufReader, Read, Write};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use grpc_sansio_async_std::AsyncStd;
use grpc_sansio_interop::proto::{
    ResponseParameters, SimpleRequest, SimpleResponse, StreamingInputCallRequest,
    StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
    zero_payload,
};
use grpc_sansio_interop::{method_path, tonic_peer};
use grpc_sansio_runtime::{CallOptions, Channel, ProstCodec, Runtime};
use grpc_sansio_tokio::Tokio;
use prost::Message;

// ---------------------------------------------------------------------------------
// Command line.

fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--seconds N] [--runs R] [--quick]\n\
         \x20      loadgen serve --impl ours|tonic|raw\n\
         \x20      loadgen client --impl ours|ours-async-std|tonic|h2load|raw --port P --figure \
         unary|sstream|cstream|pingpong|idle [--conc C] [--size S] [--seconds N] \
         [--server-pid PID]\n\
         \x20      (raw: the raw-TCP ceilings, pingpong and sstream only)"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("client") => client(&args[1..]),
        _ => orchestrate(&args),
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).map(|i| {
        args.get(i + 1)
            .map(String::as_str)
            .unwrap_or_else(|| usage())
    })
}

fn num<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    flag(args, name).map_or(default, |v| v.parse().unwrap_or_else(|_| usage()))
}

fn runtime() -> tokio::runtime::Runtime {
    // One worker per CPU the process may run on: one when pinned.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------
// The server process.

fn serve(args: &[String]) {
    let which = flag(args, "--impl").unwrap_or_else(|| usage()).to_owned();
    if which == "raw" {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        return raw::serve(listener);
    }
    let rt = runtime();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        println!("PORT {port}");
        std::io::stdout().flush().unwrap();
        match which.as_str() {
            "ours" => grpc_sansio_interop::server::serve::<Tokio>(listener)
                .await
                .unwrap(),
            // No gzip: tonic would compress every streaming response (our client
            // advertises gzip), and the bench would measure zlib on zeros.
            "tonic" => tonic_peer::serve_tonic(listener, false).await.unwrap(),
            _ => usage(),
        }
    });
}

// ---------------------------------------------------------------------------------
// The client process.

/// User + system CPU seconds of this process so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A `VmXxx:` line of /proc/self/status, in KiB.
fn vm_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Figure {
    Unary,
    /// Server streaming: calls of many messages of `size` each.
    SStream,
    /// Client streaming: calls of many messages of `size` each.
    CStream,
    PingPong,
    Idle,
}

impl Figure {
    fn parse(s: &str) -> Figure {
        match s {
            "unary" => Figure::Unary,
            "sstream" => Figure::SStream,
            "cstream" => Figure::CStream,
            "pingpong" => Figure::PingPong,
            "idle" => Figure::Idle,
            _ => usage(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Figure::Unary => "unary",
            Figure::SStream => "sstream",
            Figure::CStream => "cstream",
            Figure::PingPong => "pingpong",
            Figure::Idle => "idle",
        }
    }
}

/// Bytes moved by one streaming call: enough messages for about 16 MiB.
fn messages_per_call(size: usize) -> usize {
    (16 << 20) / size.max(1)
}

fn simple_request(size: usize) -> SimpleRequest {
    SimpleRequest {
        response_size: size as i32,
        payload: Some(zero_payload(size)),
        ..Default::default()
    }
}

fn output_request(size: usize, n: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: (0..n)
            .map(|_| ResponseParameters {
                size: size as i32,
                interval_us: 0,
                compressed: None,
            })
            .collect(),
        ..Default::default()
    }
}

/// A stream of `n` StreamingInputCallRequests of `size` payload bytes.
struct Inputs {
    left: usize,
    size: usize,
}

impl futures_core::Stream for Inputs {
    type Item = StreamingInputCallRequest;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(StreamingInputCallRequest {
            payload: Some(zero_payload(self.size)),
            expect_compressed: None,
        }))
    }
}

/// Either client, one connection.
#[derive(Clone)]
enum Client<R: Runtime> {
    Ours(Channel<R>),
    Tonic(tonic_peer::TonicClient),
}

type OurSimple = ProstCodec<SimpleRequest, SimpleResponse>;
type OurOutput = ProstCodec<StreamingOutputCallRequest, StreamingOutputCallResponse>;
type OurInput = ProstCodec<StreamingInputCallRequest, StreamingInputCallResponse>;

impl<R: Runtime> Client<R> {
    async fn connect(which: &str, port: u16) -> Client<R> {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        match which {
            "ours" | "ours-async-std" => Client::Ours(
                Channel::builder(format!("passthrough:///{addr}"))
                    .connect()
                    .await
                    .expect("our channel connects"),
            ),
            "tonic" => Client::Tonic(tonic_peer::TonicClient::connect(addr).await),
            _ => usage(),
        }
    }

    /// Runs one worker until `stop`, counting what completes while `recording`:
    /// latencies into `hist`, and the payload bytes it returns.
    ///
    /// Each client's worker is a future of its own, boxed once: one `async fn` over
    /// both clients would be as large as the larger client's call state, and every
    /// task of either client would carry it (6.8 KiB per task, measured with massif).
    fn worker(
        self,
        figure: Figure,
        size: usize,
        recording: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
        hist: Arc<Histogram>,
    ) -> Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
        let rec = Recorder {
            recording,
            hist,
            bytes: 0,
        };
        match self {
            Client::Ours(ch) => Box::pin(ours_worker(ch, figure, size, stop, rec)),
            Client::Tonic(c) => Box::pin(tonic_worker(c, figure, size, stop, rec)),
        }
    }

    /// One small unary call (the idle-RSS figure).
    async fn one_call(&self) {
        match self {
            Client::Ours(ch) => {
                ch.unary::<OurSimple>(
                    &method_path("UnaryCall"),
                    simple_request(16),
                    CallOptions::new(),
                )
                .await
                .expect("unary call");
            }
            Client::Tonic(c) => {
                c.unary::<SimpleRequest, SimpleResponse>(
                    "UnaryCall",
                    tonic::Request::new(simple_request(16)),
                    false,
                )
                .await
                .expect("unary call");
            }
        }
    }
}

/// Counts what completes while `recording`: latencies into `hist`, payload bytes.
struct Recorder {
    recording: Arc<AtomicBool>,
    hist: Arc<Histogram>,
    bytes: u64,
}

impl Recorder {
    fn record(&mut self, start: Instant, n: u64) {
        if self.recording.load(Ordering::Relaxed) {
            self.hist
                .record(start.elapsed().as_micros().min(u64::MAX as u128) as u64);
            self.bytes += n;
        }
    }
}

/// [`Client::worker`] for our channel.
async fn ours_worker<R: Runtime>(
    ch: Channel<R>,
    figure: Figure,
    size: usize,
    stop: Arc<AtomicBool>,
    mut rec: Recorder,
) -> u64 {
    match figure {
        Figure::Unary => {
            let path = method_path("UnaryCall");
            let req = simple_request(size);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = ch
                    .unary::<OurSimple>(&path, req.clone(), CallOptions::new())
                    .await
                    .expect("unary call");
                debug_assert_eq!(r.message.payload.map_or(0, |p| p.body.len()), size);
                rec.record(t, size as u64);
            }
        }
        Figure::SStream => {
            let path = method_path("StreamingOutputCall");
            let req = output_request(size, messages_per_call(size));
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let s = ch
                    .server_streaming::<OurOutput>(&path, req.clone(), CallOptions::new())
                    .await
                    .expect("server streaming call");
                rec.record(t, payload_until_stop(s, &stop).await);
            }
        }
        Figure::CStream => {
            let path = method_path("StreamingInputCall");
            let n = messages_per_call(size);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = ch
                    .client_streaming::<OurInput, _>(
                        &path,
                        Inputs { left: n, size },
                        CallOptions::new(),
                    )
                    .await
                    .expect("client streaming call");
                rec.record(t, r.message.aggregated_payload_size as u64);
            }
        }
        Figure::PingPong => {
            let path = method_path("FullDuplexCall");
            let (tx, rx) = ch
                .bidi_streaming::<OurOutput>(&path, CallOptions::new())
                .await
                .expect("bidi call");
            ping_pong(tx, rx, &pingpong_request(size), &stop, &mut rec).await;
        }
        Figure::Idle => unreachable!(),
    }
    rec.bytes
}

/// A stream of `StreamingOutputCall` responses, from either client.
trait OutputStream: Send {
    /// The next response: `Ok(None)` at the end, `Err` (the status) if the call failed.
    fn next(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<StreamingOutputCallResponse>, String>> + Send;
}

impl<R: Runtime> OutputStream for grpc_sansio_runtime::Streaming<OurOutput, R> {
    async fn next(&mut self) -> Result<Option<StreamingOutputCallResponse>, String> {
        self.message().await.map_err(|s| format!("{s:?}"))
    }
}

impl OutputStream for tonic::Streaming<StreamingOutputCallResponse> {
    async fn next(&mut self) -> Result<Option<StreamingOutputCallResponse>, String> {
        self.message().await.map_err(|s| format!("{s:?}"))
    }
}

/// The request side of a `FullDuplexCall`, from either client.
trait InputSink: Send {
    /// Sends one request. A failed call ends the run.
    fn send_one(
        &mut self,
        req: StreamingOutputCallRequest,
    ) -> impl std::future::Future<Output = ()> + Send;
}

impl<R: Runtime> InputSink for grpc_sansio_runtime::Sender<OurOutput, R> {
    async fn send_one(&mut self, req: StreamingOutputCallRequest) {
        self.send(req).await.expect("send");
    }
}

impl InputSink for tokio::sync::mpsc::Sender<StreamingOutputCallRequest> {
    async fn send_one(&mut self, req: StreamingOutputCallRequest) {
        self.send(req).await.expect("send");
    }
}

/// The ping-pong request: one response of `size` bytes.
fn pingpong_request(size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        payload: Some(zero_payload(size)),
        ..output_request(size, 1)
    }
}

/// Round trips of `req` until `stop`, each recorded; then closes the requests and
/// drains the responses.
async fn ping_pong(
    mut tx: impl InputSink,
    mut rx: impl OutputStream,
    req: &StreamingOutputCallRequest,
    stop: &AtomicBool,
    rec: &mut Recorder,
) {
    let size = req.payload.as_ref().map_or(0, |p| p.body.len());
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        tx.send_one(req.clone()).await;
        rx.next().await.expect("message").expect("a response");
        rec.record(t, size as u64);
    }
    drop(tx);
    while let Ok(Some(_)) = rx.next().await {}
}

/// The payload bytes of `s`'s responses, until it ends or `stop` is set.
async fn payload_until_stop(mut s: impl OutputStream, stop: &AtomicBool) -> u64 {
    let mut n = 0u64;
    while let Some(m) = s.next().await.expect("message") {
        n += m.payload.map_or(0, |p| p.body.len()) as u64;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    n
}

/// [`Client::worker`] for tonic's client.
async fn tonic_worker(
    c: tonic_peer::TonicClient,
    figure: Figure,
    size: usize,
    stop: Arc<AtomicBool>,
    mut rec: Recorder,
) -> u64 {
    match figure {
        Figure::Unary => {
            let path = tonic_peer::path("UnaryCall");
            let req = simple_request(size);
            let mut g = c.grpc(false).await;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                g.ready().await.expect("ready");
                let r = g
                    .unary(
                        tonic::Request::new(req.clone()),
                        path.clone(),
                        tonic_prost::ProstCodec::<SimpleRequest, SimpleResponse>::default(),
                    )
                    .await
                    .expect("unary call");
                debug_assert_eq!(r.into_inner().payload.map_or(0, |p| p.body.len()), size);
                rec.record(t, size as u64);
            }
        }
        Figure::SStream => {
            let req = output_request(size, messages_per_call(size));
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let s = c
                    .server_stream(req.clone())
                    .await
                    .expect("server streaming");
                rec.record(t, payload_until_stop(s, &stop).await);
            }
        }
        Figure::CStream => {
            let path = tonic_peer::path("StreamingInputCall");
            let n = messages_per_call(size);
            let mut g = c.grpc(false).await;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                g.ready().await.expect("ready");
                let r = g
                    .client_streaming(
                        tonic::Request::new(Inputs { left: n, size }),
                        path.clone(),
                        tonic_prost::ProstCodec::<
                            StreamingInputCallRequest,
                            StreamingInputCallResponse,
                        >::default(),
                    )
                    .await
                    .expect("client streaming call");
                rec.record(t, r.into_inner().aggregated_payload_size as u64);
            }
        }
        Figure::PingPong => {
            let req = pingpong_request(size);
            // The first request goes with the call: a server may hold its response
            // headers until the first message.
            let (tx, r) = c.duplex(Some(req.clone()), false, None, None).await;
            let tx = tx.expect("sender");
            let mut rx = r.expect("bidi call").into_inner();
            rx.next().await.expect("message").expect("a response");
            ping_pong(tx, rx, &req, &stop, &mut rec).await;
        }
        Figure::Idle => unreachable!(),
    }
    rec.bytes
}

/// Latencies in µs, in fixed memory shared by the workers (storing every sample
/// made the client's memory grow with the calls it made, the same for every client,
/// hiding the clients' own use). Log-linear buckets: exact below 64 µs, then 64 per
/// doubling, so a percentile is within 1.6 % of the sample.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    const SUB: u32 = 6;

    fn new() -> Histogram {
        let n = (1usize << Histogram::SUB) * (65 - Histogram::SUB as usize);
        let buckets: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
        Histogram { buckets }
    }

    fn index(us: u64) -> usize {
        let sub = 1u64 << Histogram::SUB;
        if us < sub {
            return us as usize;
        }
        let octave = 63 - us.leading_zeros() - Histogram::SUB; // 0 for 64..128
        let within = (us >> octave) - sub; // 0..64
        ((octave as u64 + 1) * sub + within) as usize
    }

    /// The largest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        let sub = 1u64 << Histogram::SUB;
        let i = i as u64;
        if i < sub {
            return i;
        }
        let octave = i / sub - 1;
        // u128: the last bucket ends at u64::MAX.
        ((u128::from(sub + i % sub + 1) << octave) - 1) as u64
    }

    fn record(&self, us: u64) {
        self.buckets[Histogram::index(us)].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The `p` quantile (0..=1), as its bucket's upper bound; 0 with no samples.
    fn percentile(&self, p: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let rank = ((n as f64 * p).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return Histogram::upper(i);
            }
        }
        0
    }
}

/// The client's anonymous RSS once its runtime is up, before it connects.
static ANON_BASE: AtomicU64 = AtomicU64::new(0);

fn client(args: &[String]) {
    let which = flag(args, "--impl").unwrap_or_else(|| usage()).to_owned();
    let port: u16 = num(args, "--port", 0);
    let figure = Figure::parse(flag(args, "--figure").unwrap_or_else(|| usage()));
    let conc: usize = num(args, "--conc", 1);
    let size: usize = num(args, "--size", 16);
    let seconds: f64 = num(args, "--seconds", 10.0);
    // The server's CPU over the same window, when the orchestrator says which process.
    let server = flag(args, "--server-pid").map(str::to_owned);
    if which == "h2load" {
        return h2load_client(port, conc, size, seconds, server);
    }
    if which == "raw" {
        println!("RESULT {}", raw::client(port, figure, seconds));
        return;
    }
    // Heap and stacks only: VmHWM also counts the binary's code pages as they are
    // first run, the same for every client since all live in this one binary.
    let anon_peak = Arc::new(AtomicU64::new(0));
    {
        let anon_peak = anon_peak.clone();
        std::thread::spawn(move || {
            loop {
                anon_peak.fetch_max(vm_kib("RssAnon:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
    let line = match which.as_str() {
        "ours-async-std" => async_std::task::block_on(measure::<AsyncStd>(
            which, port, figure, conc, size, seconds, server,
        )),
        _ => runtime().block_on(measure::<Tokio>(
            which, port, figure, conc, size, seconds, server,
        )),
    };
    let peak = anon_peak.load(Ordering::Relaxed).max(vm_kib("RssAnon:"));
    let anon_growth = peak.saturating_sub(ANON_BASE.load(Ordering::Relaxed));
    println!("RESULT {line} anon_peak_growth_kib={anon_growth}");
    // Do not wait for in-flight calls or a graceful close.
    std::process::exit(0);
}

/// Connects a client of kind `which` on runtime `R` and measures `figure`; the
/// `RESULT` line's fields.
async fn measure<R: Runtime>(
    which: String,
    port: u16,
    figure: Figure,
    conc: usize,
    size: usize,
    seconds: f64,
    server: Option<String>,
) -> String {
    let hist = Arc::new(Histogram::new());
    sleep::<R>(Duration::from_millis(50)).await;
    ANON_BASE.store(vm_kib("RssAnon:"), Ordering::Relaxed);
    if figure == Figure::Idle {
        // The runtime has settled: RSS before, connect + one call, RSS after.
        let before = vm_kib("VmRSS:");
        let anon_before = vm_kib("RssAnon:");
        let c = Client::<R>::connect(&which, port).await;
        c.one_call().await;
        sleep::<R>(Duration::from_millis(100)).await;
        let after = vm_kib("VmRSS:");
        let anon_after = vm_kib("RssAnon:");
        drop(c);
        return format!(
            "idle_kib={} idle_anon_kib={}",
            after as i64 - before as i64,
            anon_after as i64 - anon_before as i64
        );
    }
    let c = Client::<R>::connect(&which, port).await;
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..conc)
        .map(|_| {
            spawn::<R, _>(c.clone().worker(
                figure,
                size,
                recording.clone(),
                stop.clone(),
                hist.clone(),
            ))
        })
        .collect();
    // Warm up (connection, HPACK tables, allocator), then measure.
    sleep::<R>(Duration::from_secs_f64((seconds * 0.1).clamp(0.2, 1.0))).await;
    let cpu0 = cpu_seconds("self");
    let server0 = server.as_deref().map(cpu_seconds);
    let t0 = Instant::now();
    recording.store(true, Ordering::Relaxed);
    sleep::<R>(Duration::from_secs_f64(seconds)).await;
    recording.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self") - cpu0;
    let server_cpu = server
        .as_deref()
        .map(cpu_seconds)
        .zip(server0)
        .map(|(b, a)| b - a);
    stop.store(true, Ordering::Relaxed);
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await.expect("worker");
    }
    let n = hist.count();
    let calls = n.max(1) as f64;
    format!(
        "calls={} secs={secs:.3} qps={:.1} p50_us={} p90_us={} p99_us={} p999_us={} mbps={:.1} \
         cpu_us_per_call={:.2} cpu_us_per_mb={:.1} cpu_s={cpu:.3} hwm_kib={}{}",
        n,
        n as f64 / secs,
        hist.percentile(0.50),
        hist.percentile(0.90),
        hist.percentile(0.99),
        hist.percentile(0.999),
        bytes as f64 / secs / 1e6,
        cpu / calls * 1e6,
        cpu / (bytes as f64 / 1e6).max(1e-9) * 1e6,
        vm_kib("VmHWM:"),
        server_field(server_cpu, n as f64),
    )
}

/// The ` server_cpu_us_per_call=...` field, when the server's CPU was measured.
fn server_field(server_cpu: Option<f64>, calls: f64) -> String {
    server_cpu.map_or(String::new(), |c| {
        format!(" server_cpu_us_per_call={:.2}", c / calls.max(1.0) * 1e6)
    })
}

/// Sleeps on runtime `R`.
async fn sleep<R: Runtime>(d: Duration) {
    let rt = R::current();
    rt.sleep_until(rt.now() + d).await;
}

/// Spawns on runtime `R`; the output arrives through the receiver.
fn spawn<R: Runtime, T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> futures_channel::oneshot::Receiver<T> {
    let (tx, rx) = futures_channel::oneshot::channel();
    R::current().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx
}

/// The h2load client: `h2load -d BODY ...` for `seconds` against UnaryCall.
fn h2load_client(port: u16, conc: usize, size: usize, seconds: f64, server: Option<String>) {
    let body = simple_request(size).encode_to_vec();
    let mut framed = Vec::with_capacity(5 + body.len());
    framed.push(0);
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    let file = std::env::temp_dir().join(format!("loadgen-h2load-{}.bin", std::process::id()));
    std::fs::write(&file, &framed).unwrap();
    let warm = (seconds * 0.1).clamp(0.2, 1.0);
    let mut child = Command::new("h2load")
        .arg("-d")
        .arg(&file)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-m", &conc.to_string(), "-c", "1", "-t", "1"])
        .args(["-D", &format!("{}", seconds.ceil() as u64)])
        .args(["--warm-up-time", &format!("{}", warm.ceil() as u64)])
        .arg(format!(
            "http://127.0.0.1:{port}/grpc.testing.TestService/UnaryCall"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("h2load runs");
    let pid = child.id().to_string();
    // h2load counts only the calls after its warm-up: so must the CPU times.
    let at_warm = {
        let (pid, server) = (pid.clone(), server.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(warm.ceil()));
            (cpu_seconds(&pid), server.as_deref().map(cpu_seconds))
        })
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let server_end = server.as_deref().map(cpu_seconds);
    // The exited child stays a zombie until waited for: its CPU times are still there.
    let mut cpu = cpu_seconds(&pid);
    for _ in 0..100 {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if st
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        {
            cpu = cpu_seconds(&pid);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.wait();
    let _ = std::fs::remove_file(&file);
    let (cpu_warm, server_warm) = at_warm.join().expect("the warm-up sampler");
    let cpu = cpu - cpu_warm;
    let server_cpu = server_end.zip(server_warm).map(|(b, a)| b - a);
    // "finished in 10.00s, 81088.30 req/s, ..." and "requests: N total, ... M succeeded".
    let qps = out
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let ok = out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| l.split(", ").find(|p| p.ends_with("succeeded")))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    if ok == 0.0 {
        eprintln!("h2load output:\n{out}");
    }
    println!(
        "RESULT calls={ok} qps={qps:.1} cpu_us_per_call={:.2} cpu_s={cpu:.3}{}",
        cpu / ok.max(1.0) * 1e6,
        server_field(server_cpu, ok),
    );
}

// ---------------------------------------------------------------------------------
// The orchestrator.

struct Spec {
    figure: Figure,
    conc: usize,
    size: usize,
}

impl Spec {
    fn label(&self) -> String {
        let size = if self.size >= 1 << 20 {
            format!("{} MiB", self.size >> 20)
        } else if self.size >= 1024 {
            format!("{} KiB", self.size >> 10)
        } else {
            format!("{} B", self.size)
        };
        match self.figure {
            Figure::Unary => format!("unary c={} {size}", self.conc),
            Figure::SStream => format!("server-stream {size} msgs"),
            Figure::CStream => format!("client-stream {size} msgs"),
            Figure::PingPong => format!("bidi ping-pong {size}"),
            Figure::Idle => "idle channel".into(),
        }
    }
}

fn specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for conc in [1, 16, 64] {
        for size in [16, 4096] {
            v.push(Spec {
                figure: Figure::Unary,
                conc,
                size,
            });
        }
    }
    for figure in [Figure::SStream, Figure::CStream] {
        for size in [64 << 10, 1 << 20] {
            v.push(Spec {
                figure,
                conc: 1,
                size,
            });
        }
    }
    v.push(Spec {
        figure: Figure::PingPong,
        conc: 1,
        size: 16,
    });
    v.push(Spec {
        figure: Figure::Idle,
        conc: 1,
        size: 16,
    });
    v
}

struct Pinning {
    server: Vec<String>,
    client: Vec<String>,
}

fn pinning() -> Pinning {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if taskset && cpus >= 2 {
        eprintln!("pinning: servers on CPU 0, clients on CPU 1 (taskset; {cpus} CPUs)");
        Pinning {
            server: vec!["taskset".into(), "-c".into(), "0".into()],
            client: vec!["taskset".into(), "-c".into(), "1".into()],
        }
    } else {
        eprintln!(
            "pinning: OFF ({}; {cpus} CPUs): server and client share the CPUs",
            if taskset {
                "taskset found"
            } else {
                "no taskset"
            }
        );
        Pinning {
            server: vec![],
            client: vec![],
        }
    }
}

fn command(prefix: &[String], args: &[String]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut c;
    if let Some((first, rest)) = prefix.split_first() {
        c = Command::new(first);
        c.args(rest).arg(exe);
    } else {
        c = Command::new(exe);
    }
    c.args(args);
    c
}

struct ServerProc {
    child: Child,
    port: u16,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(pin: &Pinning, which: &str) -> ServerProc {
    let mut child = command(
        &pin.server,
        &["serve".into(), "--impl".into(), which.into()],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("server process starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("server {which} printed {line:?}, not PORT <n>"));
    ServerProc { child, port }
}

/// key → value of a RESULT line.
type Sample = Vec<(String, f64)>;

fn run_client(
    pin: &Pinning,
    which: &str,
    srv: &ServerProc,
    spec: &Spec,
    seconds: f64,
) -> Option<Sample> {
    let port = srv.port;
    let server_pid = srv.child.id().to_string();
    let args: Vec<String> = [
        "client",
        "--impl",
        which,
        "--port",
        &port.to_string(),
        "--figure",
        spec.figure.name(),
        "--conc",
        &spec.conc.to_string(),
        "--size",
        &spec.size.to_string(),
        "--seconds",
        &seconds.to_string(),
        "--server-pid",
        &server_pid,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = command(&pin.client, &args)
        .stderr(Stdio::inherit())
        .output()
        .expect("client process runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
        eprintln!(
            "!! client {which} {} failed ({}): {text}",
            spec.label(),
            out.status
        );
        return None;
    };
    eprintln!("   {which:<14} {:<26} {line}", spec.label());
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect(),
    )
}

fn get(s: &Sample, key: &str) -> Option<f64> {
    s.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
}

/// Samples per (server, spec index, client).
type Results = std::collections::HashMap<(String, usize, String), Vec<Sample>>;

fn orchestrate(args: &[String]) {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        usage();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let seconds: f64 = num(args, "--seconds", if quick { 2.0 } else { 10.0 });
    let runs: usize = num(args, "--runs", if quick { 1 } else { 3 });
    let pin = pinning();
    let h2load = Command::new("h2load")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !h2load {
        eprintln!(
            "!!!!!!!! h2load not found: the h2load column is skipped \
             (apt-get install nghttp2-client) !!!!!!!!"
        );
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        eprintln!("load average at start: {}", load.trim());
    }
    let specs = specs();
    // Only a pinned run measures "across the same two cores".
    let ceilings = !pin.server.is_empty();
    let mut results = Results::new();
    let started = Instant::now();
    for run in 0..runs {
        for server in ["tonic", "ours"] {
            eprintln!("run {}/{runs}: {server} server", run + 1);
            let srv = start_server(&pin, server);
            for (i, spec) in specs.iter().enumerate() {
                // A B, then B A on the next run: neither client always goes first.
                let mut clients = vec!["ours", "tonic", "ours-async-std"];
                if run % 2 == 1 {
                    clients.reverse();
                }
                if h2load && spec.figure == Figure::Unary {
                    clients.push("h2load");
                }
                for client in clients {
                    if let Some(s) = run_client(&pin, client, &srv, spec, seconds) {
                        results
                            .entry((server.into(), i, client.into()))
                            .or_default()
                            .push(s);
                    }
                }
            }
        }
        if let Some(srv) = ceilings.then(|| start_server(&pin, "raw")) {
            eprintln!("run {}/{runs}: raw TCP ceilings", run + 1);
            for (i, spec) in specs.iter().enumerate() {
                if has_ceiling(spec)
                    && let Some(s) = run_client(&pin, "raw", &srv, spec, seconds)
                {
                    results
                        .entry(("raw".into(), i, "raw".into()))
                        .or_default()
                        .push(s);
                }
            }
        }
    }
    let mut load = String::new();
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        load = l.trim().to_owned();
    }
    println!();
    println!(
        "loadgen: {runs} run(s) x {seconds} s per figure, {:.0} s in all; load average at \
         the end: {load}; pinning: {}",
        started.elapsed().as_secs_f64(),
        if pin.server.is_empty() {
            "off"
        } else {
            "server CPU 0, client CPU 1"
        }
    );
    for server in ["tonic", "ours"] {
        print_table(server, &specs, &results, h2load);
    }
    if h2load {
        print_servers(&specs, &results);
    }
    if ceilings {
        print_ceilings(&specs, &results);
    }
}

/// The two servers driven by the same client, h2load: QPS and the server's CPU per
/// call, ours / tonic's.
fn print_servers(specs: &[Spec], results: &Results) {
    println!();
    println!("### the servers under h2load: median (min–max)");
    println!();
    println!("| figure | ours | tonic | ours/tonic | better |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, spec) in specs.iter().enumerate() {
        if spec.figure != Figure::Unary {
            continue;
        }
        for (what, key, higher_better) in [
            ("QPS", "qps", true),
            ("server CPU µs/call", "server_cpu_us_per_call", false),
        ] {
            let values = |server: &str| -> Option<(f64, f64, f64)> {
                stats(
                    results
                        .get(&(server.to_owned(), i, "h2load".to_owned()))
                        .map_or(vec![], |v| v.iter().filter_map(|s| get(s, key)).collect()),
                )
            };
            let (ours, theirs) = (values("ours"), values("tonic"));
            let ratio = match (ours, theirs) {
                (Some((_, a, _)), Some((_, b, _))) if b != 0.0 => {
                    let r = a / b;
                    let win = if higher_better { r > 1.0 } else { r < 1.0 };
                    format!("{r:.2}{}", if win { "" } else { " (we lose)" })
                }
                _ => "—".into(),
            };
            println!(
                "| {}: {what} | {} | {} | {ratio} | {} |",
                spec.label(),
                fmt_stats(ours),
                fmt_stats(theirs),
                if higher_better { "higher" } else { "lower" },
            );
        }
    }
}

/// The figures the issue judges against a raw-TCP ceiling between the same two CPUs.
fn has_ceiling(spec: &Spec) -> bool {
    spec.figure == Figure::PingPong || (spec.figure == Figure::SStream && spec.size == 1 << 20)
}

/// Each client's median on each server as a share of the raw-TCP median.
fn print_ceilings(specs: &[Spec], results: &Results) {
    println!();
    println!("### against the raw-TCP ceiling between the same CPUs: median (min–max)");
    println!();
    println!("| figure | raw TCP | client → server | value | share of raw TCP |");
    println!("| --- | --- | --- | --- | --- |");
    for (i, spec) in specs.iter().enumerate().filter(|(_, s)| has_ceiling(s)) {
        let key = if spec.figure == Figure::PingPong {
            "qps"
        } else {
            "mbps"
        };
        let values = |server: &str, client: &str| -> Vec<f64> {
            results
                .get(&(server.to_owned(), i, client.to_owned()))
                .map_or(vec![], |v| v.iter().filter_map(|s| get(s, key)).collect())
        };
        let raw = stats(values("raw", "raw"));
        for server in ["tonic", "ours"] {
            for client in ["ours", "ours-async-std", "tonic"] {
                let v = stats(values(server, client));
                let share = match (v, raw) {
                    (Some((_, a, _)), Some((_, b, _))) if b != 0.0 => {
                        format!("{:.0} %", a / b * 100.0)
                    }
                    _ => "—".into(),
                };
                println!(
                    "| {} ({key}) | {} | {client} → {server} | {} | {share} |",
                    spec.label(),
                    fmt_stats(raw),
                    fmt_stats(v),
                );
            }
        }
    }
}

/// min / median / max of the values.
fn stats(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[0], med, v[n - 1]))
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn fmt_stats(s: Option<(f64, f64, f64)>) -> String {
    match s {
        Some((lo, med, hi)) if lo == hi => fmt_num(med),
        Some((lo, med, hi)) => format!("{} ({}–{})", fmt_num(med), fmt_num(lo), fmt_num(hi)),
        None => "—".into(),
    }
}

fn print_table(server: &str, specs: &[Spec], results: &Results, h2load: bool) {
    println!();
    println!("### against the {server} server: median (min–max)");
    println!();
    println!(
        "| figure | ours (tokio) | tonic | ours/tonic | ours (async-std) | async-std/tonic | better |{}",
        if h2load { " h2load |" } else { "" }
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- |{}",
        if h2load { " --- |" } else { "" }
    );
    let values = |i: usize, client: &str, key: &str| -> Vec<f64> {
        results
            .get(&(server.to_owned(), i, client.to_owned()))
            .map_or(vec![], |v| v.iter().filter_map(|s| get(s, key)).collect())
    };
    let row = |name: String, i: usize, key: &str, scale: f64, higher_better: bool| {
        let ours = stats(values(i, "ours", key).iter().map(|v| v * scale).collect());
        let theirs = stats(values(i, "tonic", key).iter().map(|v| v * scale).collect());
        let async_std = stats(
            values(i, "ours-async-std", key)
                .iter()
                .map(|v| v * scale)
                .collect(),
        );
        let ratio_of = |ours: Option<(f64, f64, f64)>| match (ours, theirs) {
            (Some((_, a, _)), Some((_, b, _))) if b != 0.0 => {
                let r = a / b;
                let win = if higher_better { r > 1.0 } else { r < 1.0 };
                format!("{r:.2}{}", if win { "" } else { " (we lose)" })
            }
            _ => "—".into(),
        };
        let ratio = ratio_of(ours);
        let ratio_async_std = ratio_of(async_std);
        let h2 = if h2load {
            format!(
                " {} |",
                fmt_stats(stats(
                    values(i, "h2load", key).iter().map(|v| v * scale).collect()
                ))
            )
        } else {
            String::new()
        };
        println!(
            "| {name} | {} | {} | {ratio} | {} | {ratio_async_std} | {} |{h2}",
            fmt_stats(ours),
            fmt_stats(theirs),
            fmt_stats(async_std),
            if higher_better { "higher" } else { "lower" },
        );
    };
    for (i, spec) in specs.iter().enumerate() {
        let l = spec.label();
        match spec.figure {
            Figure::Unary => {
                row(format!("{l}: QPS"), i, "qps", 1.0, true);
                row(format!("{l}: p50 µs"), i, "p50_us", 1.0, false);
                row(format!("{l}: p90 µs"), i, "p90_us", 1.0, false);
                row(format!("{l}: p99 µs"), i, "p99_us", 1.0, false);
                row(format!("{l}: p99.9 µs"), i, "p999_us", 1.0, false);
                row(
                    format!("{l}: client CPU µs/call"),
                    i,
                    "cpu_us_per_call",
                    1.0,
                    false,
                );
                row(
                    format!("{l}: server CPU µs/call"),
                    i,
                    "server_cpu_us_per_call",
                    1.0,
                    false,
                );
                if spec.conc == 64 && spec.size == 16 {
                    row(
                        format!("{l}: client peak RSS KiB"),
                        i,
                        "hwm_kib",
                        1.0,
                        false,
                    );
                    row(
                        format!("{l}: client peak anon RSS growth KiB"),
                        i,
                        "anon_peak_growth_kib",
                        1.0,
                        false,
                    );
                }
            }
            Figure::SStream | Figure::CStream => {
                row(format!("{l}: MB/s"), i, "mbps", 1.0, true);
                row(
                    format!("{l}: client CPU µs/MB"),
                    i,
                    "cpu_us_per_mb",
                    1.0,
                    false,
                );
                row(
                    format!("{l}: client peak RSS KiB"),
                    i,
                    "hwm_kib",
                    1.0,
                    false,
                );
            }
            Figure::PingPong => {
                row(format!("{l}: round trips/s"), i, "qps", 1.0, true);
                row(format!("{l}: p99 µs"), i, "p99_us", 1.0, false);
                row(
                    format!("{l}: client CPU µs/round trip"),
                    i,
                    "cpu_us_per_call",
                    1.0,
                    false,
                );
            }
            Figure::Idle => {
                row(format!("{l}: RSS growth KiB"), i, "idle_kib", 1.0, false);
                row(
                    format!("{l}: anon RSS growth KiB"),
                    i,
                    "idle_anon_kib",
                    1.0,
                    false,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn every_value_lands_in_a_bucket_whose_bound_is_within_two_percent() {
        let mut last = 0;
        for us in (0..200_000u64).chain([1 << 40, u64::MAX - 1, u64::MAX]) {
            let i = Histogram::index(us);
            assert!(i >= last, "monotonic at {us}");
            last = i;
            let upper = Histogram::upper(i);
            assert!(upper >= us, "{us} above its bucket's bound {upper}");
            assert!(
                (upper - us) as f64 <= us as f64 / 64.0,
                "{us}: bound {upper}"
            );
            if i > 0 {
                assert!(Histogram::upper(i - 1) < us, "{us} belongs lower");
            }
        }
    }

    #[test]
    fn percentiles_of_known_samples() {
        let h = Histogram::new();
        assert_eq!(h.percentile(0.5), 0);
        for us in 1..=1000 {
            h.record(us);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.percentile(0.5), 503, "500 in the 496..=503 bucket");
        assert_eq!(h.percentile(0.99), 991, "990 in the 984..=991 bucket");
        assert_eq!(h.percentile(0.001), 1);
        assert_eq!(h.percentile(1.0), 1007);
    }
}
