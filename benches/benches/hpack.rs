//! HPACK: encode and decode a typical gRPC request header block and a trailer block with a
//! warm dynamic table, ours beside the `loona-hpack` and `hpack` crates in the same run.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use grpc_sansio::hpack::{Decoder, Encoder, HeaderField};
use grpc_sansio_benches::{REQUEST_HEADERS, TRAILER_HEADERS};

type Headers = &'static [(&'static [u8], &'static [u8])];

fn ours_encode(enc: &mut Encoder, headers: Headers, dst: &mut BytesMut) {
    enc.encode(headers.iter().map(|&(n, v)| HeaderField::new(n, v)), dst);
}

/// Block sizes of the first and the repeated block for each encoder, printed once.
fn report_sizes(label: &str, headers: Headers) {
    let mut ours = Encoder::new();
    let mut dst = BytesMut::new();
    ours_encode(&mut ours, headers, &mut dst);
    let first = dst.len();
    dst.clear();
    ours_encode(&mut ours, headers, &mut dst);
    let mut loona = loona_hpack::Encoder::new();
    let l1 = loona.encode(headers.iter().copied()).len();
    let l2 = loona.encode(headers.iter().copied()).len();
    let mut hp = hpack::Encoder::new();
    let h1 = hp.encode(headers.iter().copied()).len();
    let h2 = hp.encode(headers.iter().copied()).len();
    println!(
        "{label} block bytes (first / repeated): ours {first} / {}, loona-hpack {l1} / {l2}, hpack {h1} / {h2}",
        dst.len()
    );
}

fn bench_block(c: &mut Criterion, label: &str, headers: Headers) {
    report_sizes(label, headers);
    let mut group = c.benchmark_group(format!("hpack_{label}"));

    // Encode with a warm table: every field is already indexed.
    let mut ours = Encoder::new();
    let mut dst = BytesMut::with_capacity(1024);
    ours_encode(&mut ours, headers, &mut dst);
    group.bench_function("encode_warm/ours", |b| {
        b.iter(|| {
            dst.clear();
            ours_encode(&mut ours, black_box(headers), &mut dst);
            black_box(dst.len())
        })
    });
    let mut loona = loona_hpack::Encoder::new();
    let mut out = Vec::with_capacity(1024);
    loona
        .encode_into(headers.iter().copied(), &mut out)
        .unwrap();
    group.bench_function("encode_warm/loona-hpack", |b| {
        b.iter(|| {
            out.clear();
            loona
                .encode_into(black_box(headers).iter().copied(), &mut out)
                .unwrap();
            black_box(out.len())
        })
    });
    let mut hp = hpack::Encoder::new();
    hp.encode_into(headers.iter().copied(), &mut out).unwrap();
    group.bench_function("encode_warm/hpack", |b| {
        b.iter(|| {
            out.clear();
            hp.encode_into(black_box(headers).iter().copied(), &mut out)
                .unwrap();
            black_box(out.len())
        })
    });

    // The same bytes go to every decoder: our encoder's first block (literals, Huffman),
    // then its repeated block (all indexed) decoded against the warm table.
    let mut enc = Encoder::new();
    let mut first = BytesMut::new();
    ours_encode(&mut enc, headers, &mut first);
    let first: Bytes = first.freeze();
    let mut warm = BytesMut::new();
    ours_encode(&mut enc, headers, &mut warm);
    let warm: Bytes = warm.freeze();

    let mut dec = Decoder::new(4096, 64 * 1024);
    dec.decode(&first, |_| {}).unwrap();
    // Borrowed fields: the same work as the crates' `decode_with_cb`.
    group.bench_function("decode_warm/ours", |b| {
        b.iter(|| {
            let mut n = 0;
            dec.decode_ref(black_box(&warm), |f| n += f.name().len() + f.value().len())
                .unwrap();
            black_box(n)
        })
    });
    // Owned `Bytes` for every field (reference counts, no copies).
    group.bench_function("decode_warm/ours_owned", |b| {
        b.iter(|| {
            let mut n = 0;
            dec.decode(black_box(&warm), |f| n += f.name.len() + f.value.len())
                .unwrap();
            black_box(n)
        })
    });
    let mut ldec = loona_hpack::Decoder::new();
    ldec.decode(&first).unwrap();
    group.bench_function("decode_warm/loona-hpack", |b| {
        b.iter(|| {
            let mut n = 0;
            ldec.decode_with_cb(black_box(&warm), |k, v| n += k.len() + v.len())
                .unwrap();
            black_box(n)
        })
    });
    let mut hdec = hpack::Decoder::new();
    hdec.decode(&first).unwrap();
    group.bench_function("decode_warm/hpack", |b| {
        b.iter(|| {
            let mut n = 0;
            hdec.decode_with_cb(black_box(&warm), |k, v| n += k.len() + v.len())
                .unwrap();
            black_box(n)
        })
    });

    // A fresh connection's first block: literal and Huffman decoding, table inserts.
    group.bench_function("decode_cold/ours", |b| {
        b.iter_batched_ref(
            || Decoder::new(4096, 64 * 1024),
            |d| {
                let mut n = 0;
                d.decode_ref(black_box(&first), |f| n += f.name().len() + f.value().len())
                    .unwrap();
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_cold/loona-hpack", |b| {
        b.iter_batched_ref(
            loona_hpack::Decoder::new,
            |d| {
                let mut n = 0;
                d.decode_with_cb(black_box(&first), |k, v| n += k.len() + v.len())
                    .unwrap();
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode_cold/hpack", |b| {
        b.iter_batched_ref(
            hpack::Decoder::new,
            |d| {
                let mut n = 0;
                d.decode_with_cb(black_box(&first), |k, v| n += k.len() + v.len())
                    .unwrap();
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn hpack_blocks(c: &mut Criterion) {
    bench_block(c, "request", REQUEST_HEADERS);
    bench_block(c, "trailer", TRAILER_HEADERS);
}

criterion_group!(benches, hpack_blocks);
criterion_main!(benches);
