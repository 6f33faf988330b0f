//! Frame codec throughput: decoding and encoding 16 MiB of 16 KiB DATA frames.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use grpc_sansio::frame::{Data, DecoderConfig, Frame, FrameDecoder, StreamId};
use grpc_sansio_benches::{DATA_FRAME_PAYLOAD, DATA_STREAM_BYTES, data_payload, data_stream};

/// Decodes every frame of `wire`; returns the payload bytes seen.
fn decode_all(wire: &mut BytesMut) -> usize {
    let mut decoder = FrameDecoder::new(DecoderConfig::default());
    let mut seen = 0;
    while let Ok(Some(frame)) = decoder.decode(wire) {
        if let Frame::Data(data) = frame {
            seen += data.payload.len();
        }
    }
    seen
}

/// Shows, once per run, that decoded payloads are slices of the input buffer.
fn report_zero_copy() {
    let mut wire = data_stream();
    let start = wire.as_ptr() as usize;
    let end = start + wire.len();
    let mut decoder = FrameDecoder::new(DecoderConfig::default());
    let (mut inside, mut total) = (0, 0);
    while let Ok(Some(Frame::Data(data))) = decoder.decode(&mut wire) {
        let p = data.payload.as_ptr() as usize;
        total += 1;
        if p >= start && p + data.payload.len() <= end {
            inside += 1;
        }
    }
    println!("zero copy: {inside} of {total} DATA payloads point into the input buffer");
    assert_eq!(inside, total, "a DATA payload was copied");
}

fn frames(c: &mut Criterion) {
    report_zero_copy();
    let wire = data_stream();
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.sample_size(30);

    group.bench_function("decode_16MiB_data", |b| {
        b.iter_batched_ref(
            || wire.clone(),
            |w| assert_eq!(black_box(decode_all(w)), DATA_STREAM_BYTES),
            criterion::BatchSize::LargeInput,
        )
    });

    let payload = data_payload();
    let frames = DATA_STREAM_BYTES / DATA_FRAME_PAYLOAD;
    let data = Data {
        stream_id: StreamId::new(1),
        payload: payload.clone(),
        end_stream: false,
        pad_len: None,
    };
    let frame = Frame::Data(data.clone());
    let mut out = BytesMut::with_capacity(frames * (DATA_FRAME_PAYLOAD + 9));
    group.bench_function("encode_16MiB_data_copied", |b| {
        b.iter(|| {
            out.clear();
            for _ in 0..frames {
                frame
                    .encode(&mut out, DATA_FRAME_PAYLOAD as u32)
                    .expect("valid frame");
            }
            black_box(out.len())
        })
    });

    // What a vectored writer does: only the 9-byte heads are written; payloads go out as
    // the caller's `Bytes`.
    let mut heads = BytesMut::with_capacity(frames * 9);
    group.bench_function("encode_16MiB_data_heads_only", |b| {
        b.iter(|| {
            heads.clear();
            for _ in 0..frames {
                data.encode_head(&mut heads);
            }
            black_box(heads.len())
        })
    });
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
