//! The HTTP/2 connection end to end, client and server in memory: bulk DATA throughput and
//! the copies behind it, the cost of small unary calls, and the memory an idle connection
//! and an idle stream hold. Copies and memory are measured once and printed; criterion
//! times the rest.

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use grpc_sansio::h2::{
    Config, Connection, DEFAULT_MAX_WRITE_BATCH, DEFAULT_STREAM_SEND_BUFFER, SMALL_PAYLOAD_COPY,
};
use grpc_sansio_benches::counting_alloc::{CountingAlloc, live, set_counting};
use grpc_sansio_benches::h2_pair::{
    CopyCount, H2Pair, bulk_transfer, open_idle_streams, payload_source, unary_calls,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Payload of each bulk run.
const BULK_BYTES: usize = 256 << 20;

/// Unary calls per small-call run.
const CALLS: usize = 100_000;

/// Calls kept in flight: the server's default MAX_CONCURRENT_STREAMS.
const IN_FLIGHT: usize = 100;

/// Idle streams opened for the per-stream memory figure.
const IDLE_STREAMS: usize = 1000;

/// Payload of the transfer after which idle memory is measured again.
const AFTER_BULK_BYTES: usize = 16 << 20;

/// Fixed 1 MiB windows, BDP off: every batch is a full `poll_transmit` batch from the
/// first round, so this measures the data path alone. It is the headline GB/s figure;
/// the defaults are measured beside it for what BDP costs.
fn fixed_window(mut config: Config) -> Config {
    config.initial_stream_window = 1 << 20;
    config.initial_connection_window = 1 << 20;
    config.dynamic_window = false;
    config
}

/// The two window setups the bulk runs compare.
fn window_configs() -> [(&'static str, Config, Config); 2] {
    [
        // The defaults: 64 KiB windows grown by the BDP estimator, which sees every round
        // trip of the fixed clock as 1 ns. The run pays for its PINGs, window growth and
        // the odd-sized frames of the 65535-byte start on top of the data path.
        ("default_bdp", Config::client(), Config::server()),
        (
            "window_1MiB",
            fixed_window(Config::client()),
            fixed_window(Config::server()),
        ),
    ]
}

/// Prints, once per run, how much of the bulk payload the connections copied.
fn report_copies(now: Instant) {
    let source = payload_source(DEFAULT_STREAM_SEND_BUFFER);
    for (label, client, server) in window_configs() {
        for streams in [1, 16] {
            let mut pair = H2Pair::connected(client.clone(), server.clone(), now);
            let handshake = pair.driver_copied();
            let mut count = CopyCount::default();
            bulk_transfer(&mut pair, streams, BULK_BYTES, &source, Some(&mut count));
            println!(
                "h2 bulk {label}, {streams} stream(s): core copies on send: {} of {} payload bytes; \
                 on receive: {} of {}",
                count.sent - count.sent_by_reference,
                count.sent,
                count.received - count.received_in_place,
                count.received,
            );
            let driver = count.driver_copied - handshake;
            println!(
                "h2 bulk {label}, {streams} stream(s): driver (socket stand-in) copied {driver} bytes, \
                 {:.4} per payload byte; {} DATA frames ({} under {SMALL_PAYLOAD_COPY} bytes) \
                 in {} client batches",
                driver as f64 / count.sent as f64,
                count.frames,
                count.small_frames,
                count.batches,
            );
        }
    }
}

fn bulk(c: &mut Criterion) {
    let now = Instant::now();
    report_copies(now);
    let source = payload_source(DEFAULT_STREAM_SEND_BUFFER);
    let mut group = c.benchmark_group("h2_bulk_256MiB");
    group.throughput(Throughput::Bytes(BULK_BYTES as u64));
    group.sample_size(10);
    // The ceiling: the driver's own copy alone, the same bytes from the same source in
    // the same batch sizes, with no HTTP/2 around it.
    let mut buf = BytesMut::with_capacity(DEFAULT_MAX_WRITE_BATCH);
    group.bench_function("memcpy_baseline", |b| {
        b.iter(|| {
            let mut left = BULK_BYTES;
            while left > 0 {
                let batch = left.min(DEFAULT_MAX_WRITE_BATCH);
                left -= batch;
                buf.clear();
                while buf.len() < batch {
                    let n = (batch - buf.len()).min(source.len());
                    buf.extend_from_slice(&source[..n]);
                }
                black_box(&buf);
            }
        })
    });
    for (label, client, server) in window_configs() {
        for streams in [1, 16] {
            group.bench_function(format!("{label}/{streams}_streams"), |b| {
                b.iter_batched_ref(
                    || H2Pair::connected(client.clone(), server.clone(), now),
                    |pair| bulk_transfer(pair, streams, BULK_BYTES, &source, None),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

fn small_calls(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("h2_unary_100k");
    // Elements per second; the time per call (client and server together) is the
    // reported time divided by CALLS.
    group.throughput(Throughput::Elements(CALLS as u64));
    group.sample_size(10);
    // A run takes over 100 ms: the same iteration count in every sample keeps the bench
    // within its measurement time, where criterion's rising counts would overrun it.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("16B_request_16B_response", |b| {
        b.iter_batched_ref(
            || H2Pair::connected(Config::client(), Config::server(), now),
            |pair| {
                unary_calls(pair, CALLS, IN_FLIGHT);
                black_box(pair.driver_copied())
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Bytes (and blocks) each connection of `pair` holds alone: freed when it is dropped,
/// the pair's own buffers already gone.
fn held(pair: H2Pair) -> [(isize, isize); 2] {
    let (client, server) = pair.into_connections();
    let freed_by = |conn: Connection| {
        let before = live();
        drop(conn);
        let after = live();
        (before.0 - after.0, before.1 - after.1)
    };
    let client = freed_by(client);
    let server = freed_by(server);
    [client, server]
}

fn memory(_: &mut Criterion) {
    let now = Instant::now();
    let source = payload_source(DEFAULT_STREAM_SEND_BUFFER);
    let server_config = || Config {
        max_concurrent_streams: Some(IDLE_STREAMS as u32),
        ..Config::server()
    };
    set_counting(true);
    let before = live();
    let pair = H2Pair::connected(Config::client(), server_config(), now);
    let with_pair = live();
    let idle = held(pair);
    let leftover = live();

    let mut pair = H2Pair::connected(Config::client(), server_config(), now);
    open_idle_streams(&mut pair, IDLE_STREAMS);
    let busy = held(pair);
    // What an idle connection keeps after traffic: buffers sized by the busiest moment.
    let mut pair = H2Pair::connected(
        fixed_window(Config::client()),
        fixed_window(Config::server()),
        now,
    );
    bulk_transfer(&mut pair, 1, AFTER_BULK_BYTES, &source, None);
    let after_bulk = held(pair);
    set_counting(false);

    println!(
        "h2 memory: pair with its driver after handshake: {} bytes in {} blocks; \
         left after dropping it: {} bytes",
        with_pair.0 - before.0,
        with_pair.1 - before.1,
        leftover.0 - before.0,
    );
    for (i, side) in ["client", "server"].into_iter().enumerate() {
        let (idle, busy, after_bulk) = (idle[i], busy[i], after_bulk[i]);
        println!(
            "h2 memory: idle connected {side} connection: {} heap bytes in {} blocks, \
             plus the Connection value itself ({} bytes)",
            idle.0,
            idle.1,
            size_of::<Connection>(),
        );
        println!(
            "h2 memory: {side}, per idle stream (of {IDLE_STREAMS}): {:.1} bytes in {:.2} blocks",
            (busy.0 - idle.0) as f64 / IDLE_STREAMS as f64,
            (busy.1 - idle.1) as f64 / IDLE_STREAMS as f64,
        );
        println!(
            "h2 memory: idle connected {side} connection after a {} MiB transfer on 1 MiB \
             windows, its stream closed: {} heap bytes in {} blocks",
            AFTER_BULK_BYTES >> 20,
            after_bulk.0,
            after_bulk.1,
        );
    }
}

criterion_group!(benches, memory, bulk, small_calls);
criterion_main!(benches);
