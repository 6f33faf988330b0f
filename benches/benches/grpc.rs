//! gRPC calls end to end, client and server transports in memory: the cost of a small
//! unary call (time, and heap allocations counted once and printed) beside the same
//! exchange on the bare HTTP/2 connections, and server-streaming throughput.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use grpc_sansio::h2::Config;
use grpc_sansio_benches::counting_alloc::{CountingAlloc, allocations, set_counting};
use grpc_sansio_benches::grpc_pair::{GrpcPair, server_streaming, unary_calls};
use grpc_sansio_benches::h2_pair::{self, H2Pair, payload_source};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Unary calls per timed run.
const CALLS: usize = 100_000;

/// Calls in flight: the server's default MAX_CONCURRENT_STREAMS.
const IN_FLIGHT: usize = 100;

/// Bytes of one server-streaming run, and its message size.
const STREAM_BYTES: usize = 1 << 30;
const STREAM_MESSAGE: usize = 64 * 1024;

/// Fixed 1 MiB windows, BDP off (as in the h2 bench's headline figure).
fn fixed_window(mut config: Config) -> Config {
    config.initial_stream_window = 1 << 20;
    config.initial_connection_window = 1 << 20;
    config.dynamic_window = false;
    config
}

/// Prints heap allocations per unary call, ours and the bare-HTTP/2 baseline's, for
/// one call at a time and for IN_FLIGHT at once.
fn report_allocations(now: Instant) {
    const MEASURED: usize = 10_000;
    for in_flight in [1, IN_FLIGHT] {
        let mut pair = GrpcPair::connected(Config::client(), Config::server(), now);
        // Warm up: HPACK tables, buffers and maps reach their steady size.
        unary_calls(&mut pair, 1_000, in_flight);
        set_counting(true);
        let before = allocations();
        unary_calls(&mut pair, MEASURED, in_flight);
        let grpc = allocations() - before;
        set_counting(false);

        let mut pair = H2Pair::connected(Config::client(), Config::server(), now);
        h2_pair::unary_calls(&mut pair, 1_000, in_flight);
        set_counting(true);
        let before = allocations();
        h2_pair::unary_calls(&mut pair, MEASURED, in_flight);
        let h2 = allocations() - before;
        set_counting(false);
        println!(
            "grpc unary, {in_flight} in flight: {:.2} heap allocations per call (client and \
             server together); bare HTTP/2 exchange: {:.2}",
            grpc as f64 / MEASURED as f64,
            h2 as f64 / MEASURED as f64,
        );
    }
}

fn unary(c: &mut Criterion) {
    let now = Instant::now();
    report_allocations(now);
    let mut group = c.benchmark_group("grpc_unary_100k");
    // Elements per second; the time per call (client and server together) is the
    // reported time divided by CALLS.
    group.throughput(Throughput::Elements(CALLS as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("grpc_16B_each_way", |b| {
        b.iter_batched_ref(
            || GrpcPair::connected(Config::client(), Config::server(), now),
            |pair| black_box(unary_calls(pair, CALLS, IN_FLIGHT)),
            BatchSize::PerIteration,
        )
    });
    // The same exchange with pre-built headers and frames on the bare connections: what
    // the gRPC layer adds is the difference.
    group.bench_function("bare_h2_baseline", |b| {
        b.iter_batched_ref(
            || H2Pair::connected(Config::client(), Config::server(), now),
            |pair| h2_pair::unary_calls(pair, CALLS, IN_FLIGHT),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn streaming(c: &mut Criterion) {
    let now = Instant::now();
    let source = payload_source(STREAM_MESSAGE);
    let mut group = c.benchmark_group("grpc_server_streaming_1GiB");
    group.throughput(Throughput::Bytes(STREAM_BYTES as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let configs = [
        ("default_bdp", Config::client(), Config::server()),
        (
            "window_1MiB",
            fixed_window(Config::client()),
            fixed_window(Config::server()),
        ),
    ];
    for (label, client, server) in configs {
        group.bench_function(format!("{label}/64KiB_messages"), |b| {
            b.iter_batched_ref(
                || GrpcPair::connected(client.clone(), server.clone(), now),
                |pair| {
                    let read = server_streaming(pair, STREAM_BYTES, STREAM_MESSAGE, &source);
                    assert_eq!(read, STREAM_BYTES);
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, unary, streaming);
criterion_main!(benches);
