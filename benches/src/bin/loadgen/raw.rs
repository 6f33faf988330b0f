//! The raw-TCP ceilings two targets of issue 9 are judged against, measured between the
//! same two pinned CPUs in the same run: a 1-byte ping-pong (for bidi ping-pong) and a
//! stream of 64 KiB writes (for server streaming). No HTTP/2 and no gRPC, blocking
//! sockets and no runtime: what a C program would do.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::{Figure, Histogram, cpu_seconds, usage, vm_kib};

/// The first byte a client sends: which figure the connection serves.
const PING_PONG: u8 = b'p';
const STREAM: u8 = b's';

/// The server's write size for the stream figure, as in the ceiling.
const STREAM_WRITE: usize = 64 << 10;

/// The client's read buffer for the stream figure: as large as our driver's read
/// region, so the ceiling is not held back by the reads.
const STREAM_READ: usize = 256 << 10;

/// Serves every connection on its own thread until the peer goes away.
pub(super) fn serve(listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || {
            let _ = serve_one(conn);
        });
    }
}

fn serve_one(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode)?;
    match mode[0] {
        PING_PONG => {
            let mut b = [0u8; 1];
            loop {
                conn.read_exact(&mut b)?;
                conn.write_all(&b)?;
            }
        }
        STREAM => {
            let chunk = vec![0u8; STREAM_WRITE];
            loop {
                conn.write_all(&chunk)?;
            }
        }
        _ => Ok(()),
    }
}

/// Measures `figure` against the raw server on `port`; the `RESULT` line's fields.
pub(super) fn client(port: u16, figure: Figure, seconds: f64) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("raw server reachable");
    conn.set_nodelay(true).unwrap();
    let warm = Duration::from_secs_f64((seconds * 0.1).clamp(0.2, 1.0));
    let run = Duration::from_secs_f64(seconds);
    match figure {
        Figure::PingPong => {
            let hist = Histogram::new();
            conn.write_all(&[PING_PONG]).unwrap();
            let mut b = [7u8; 1];
            let round_trip = |conn: &mut TcpStream, b: &mut [u8; 1]| {
                conn.write_all(&b[..]).unwrap();
                conn.read_exact(&mut b[..]).unwrap();
            };
            let start = Instant::now();
            while start.elapsed() < warm {
                round_trip(&mut conn, &mut b);
            }
            let cpu0 = cpu_seconds("self");
            let t0 = Instant::now();
            while t0.elapsed() < run {
                let t = Instant::now();
                round_trip(&mut conn, &mut b);
                hist.record(t.elapsed().as_micros() as u64);
            }
            let secs = t0.elapsed().as_secs_f64();
            let cpu = cpu_seconds("self") - cpu0;
            let n = hist.count();
            format!(
                "calls={n} secs={secs:.3} qps={:.1} p50_us={} p99_us={} \
                 cpu_us_per_call={:.2} cpu_s={cpu:.3} hwm_kib={}",
                n as f64 / secs,
                hist.percentile(0.50),
                hist.percentile(0.99),
                cpu / n.max(1) as f64 * 1e6,
                vm_kib("VmHWM:"),
            )
        }
        Figure::SStream => {
            conn.write_all(&[STREAM]).unwrap();
            let mut buf = vec![0u8; STREAM_READ];
            let mut read = |conn: &mut TcpStream| match conn.read(&mut buf) {
                Ok(0) | Err(_) => panic!("raw server stopped streaming"),
                Ok(n) => n,
            };
            let start = Instant::now();
            while start.elapsed() < warm {
                read(&mut conn);
            }
            let cpu0 = cpu_seconds("self");
            let t0 = Instant::now();
            let mut bytes = 0usize;
            while t0.elapsed() < run {
                bytes += read(&mut conn);
            }
            let secs = t0.elapsed().as_secs_f64();
            let cpu = cpu_seconds("self") - cpu0;
            let mb = bytes as f64 / 1e6;
            format!(
                "secs={secs:.3} mbps={:.1} cpu_us_per_mb={:.1} cpu_s={cpu:.3} hwm_kib={}",
                mb / secs,
                cpu / mb.max(1e-9) * 1e6,
                vm_kib("VmHWM:"),
            )
        }
        _ => usage(),
    }
}
