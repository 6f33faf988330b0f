//! Arbitrary header lists through our HPACK encoder, decoded by our decoder and by the
//! `hpack` and `loona-hpack` crates as oracles: all three must give back the input.
//!
//! The input is a little program: each op either changes the peer's table size or
//! encodes one header list (names from common and random tokens, raw value bytes, a
//! chosen indexing mode), so indexing, eviction and size updates are all exercised.
#![no_main]

use bytes::{Bytes, BytesMut};
use grpc_sansio::hpack::{Decoder, Encoder, HeaderField, Indexing};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&[u8]] = &[
    b":method",
    b":path",
    b":authority",
    b":scheme",
    b":status",
    b"content-type",
    b"te",
    b"grpc-timeout",
    b"grpc-status",
    b"grpc-message",
    b"user-agent",
    b"authorization",
    b"grpc-encoding",
    b"x-custom-bin",
    b"cookie",
    b"accept-encoding",
];
const TOKEN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.";

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

type List = Vec<(Vec<u8>, Vec<u8>)>;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut encoder = Encoder::new();
    let mut ours = Decoder::new(4096, usize::MAX);
    let mut oracle_a = hpack::Decoder::new();
    let mut oracle_b = loona_hpack::Decoder::new();
    let mut loona_in_step = true;

    while let Some(op) = input.byte() {
        if op & 0x07 == 0x07 {
            let hi = input.byte().unwrap_or(0);
            let lo = input.byte().unwrap_or(0);
            encoder.set_peer_max_table_size(usize::from(u16::from_be_bytes([hi, lo])) % 4097);
            continue;
        }
        let count = usize::from(op >> 3) % 16;
        let mut list: List = Vec::with_capacity(count);
        let mut modes = Vec::with_capacity(count);
        for _ in 0..count {
            let sel = input.byte().unwrap_or(0);
            let name = if sel < 0xc0 {
                NAMES[usize::from(sel) % NAMES.len()].to_vec()
            } else {
                let len = usize::from(sel & 0x0f) + 1;
                input
                    .take(len)
                    .iter()
                    .map(|b| TOKEN[usize::from(*b) % TOKEN.len()])
                    .collect()
            };
            let vlen = usize::from(input.byte().unwrap_or(0) % 96);
            let value = input.take(vlen).to_vec();
            modes.push(match input.byte().unwrap_or(0) % 4 {
                0 => Indexing::Auto,
                1 => Indexing::Incremental,
                2 => Indexing::WithoutIndexing,
                _ => Indexing::Never,
            });
            list.push((name, value));
        }

        let mut block = BytesMut::new();
        encoder.encode(
            list.iter()
                .zip(modes)
                .map(|((n, v), indexing)| HeaderField {
                    name: n,
                    value: v,
                    indexing,
                }),
            &mut block,
        );
        let block: Bytes = block.freeze();

        let mut got: List = Vec::new();
        ours.decode(&block, |f| got.push((f.name.to_vec(), f.value.to_vec())))
            .expect("our decoder rejected our encoder's block");
        assert_eq!(got, list, "ours");
        assert_eq!(ours.table_size(), encoder.table_size(), "tables diverged");

        let a = oracle_a
            .decode(&block)
            .expect("hpack crate rejected our block");
        assert_eq!(a, list, "hpack crate");
        // loona-hpack refuses a block that ends with a size update, which is what an
        // empty list right after a table size change encodes to (valid per RFC 7541 §4.2).
        // Once it has missed a block its table is out of step, so it is asked no more.
        if list.is_empty() {
            loona_in_step = false;
        }
        if loona_in_step {
            let b = oracle_b
                .decode(&block)
                .expect("loona-hpack rejected our block");
            assert_eq!(b, list, "loona-hpack");
        }
    }
});
