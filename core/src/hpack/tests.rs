//! Whole-codec tests: the RFC 7541 Appendix C examples byte for byte, the `hpack` and
//! `loona-hpack` crates as differential oracles, and the table-state properties the
//! connection relies on.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn hex(s: &str) -> Bytes {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    bytes.into()
}

fn pairs(list: &[(&str, &str)]) -> Pairs {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn decode(d: &mut Decoder, block: &Bytes) -> Result<Vec<Field>, DecodeError> {
    let mut out = Vec::new();
    d.decode(block, |f| out.push(f))?;
    Ok(out)
}

fn decode_pairs(d: &mut Decoder, block: &Bytes) -> Result<Pairs, DecodeError> {
    Ok(decode(d, block)?
        .into_iter()
        .map(|f| (f.name.to_vec(), f.value.to_vec()))
        .collect())
}

fn decoder_table(d: &Decoder) -> Pairs {
    (0..d.table_len())
        .map(|i| d.table_entry(i).unwrap())
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

fn encoder_table(e: &Encoder) -> Pairs {
    (0..e.table_len())
        .map(|i| e.table_entry(i).unwrap())
        .map(|(n, v)| (n.to_vec(), v.to_vec()))
        .collect()
}

fn encode(e: &mut Encoder, fields: &[HeaderField<'_>]) -> Bytes {
    let mut dst = BytesMut::new();
    e.encode(fields.iter().copied(), &mut dst);
    dst.freeze()
}

/// One step of an Appendix C sequence: the block, the fields (with the indexing the RFC
/// used), and the dynamic table and its size afterwards.
struct Step {
    block: &'static str,
    fields: &'static [(&'static str, &'static str, Indexing)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

/// Decodes and encodes a whole sequence on one connection. `prelude` is what our encoder
/// puts before the RFC's first block (the size update for a non-default table).
fn run_sequence(table_size: usize, huffman: bool, prelude: &str, steps: &[Step]) {
    let mut d = Decoder::new(table_size, usize::MAX);
    let mut e = Encoder::new();
    e.set_huffman(huffman);
    e.set_peer_max_table_size(table_size);
    for (i, step) in steps.iter().enumerate() {
        let want_fields: Pairs = step
            .fields
            .iter()
            .map(|(n, v, _)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let want_table = pairs(step.table);

        let got = decode_pairs(&mut d, &hex(step.block)).unwrap();
        assert_eq!(got, want_fields, "step {i}: decoded fields");
        assert_eq!(decoder_table(&d), want_table, "step {i}: decoder table");
        assert_eq!(d.table_size(), step.size, "step {i}: decoder table size");

        let fields: Vec<HeaderField<'_>> = step
            .fields
            .iter()
            .map(|(n, v, indexing)| HeaderField {
                name: n.as_bytes(),
                value: v.as_bytes(),
                indexing: *indexing,
            })
            .collect();
        let mut want_block = BytesMut::new();
        if i == 0 {
            want_block.extend_from_slice(&hex(prelude));
        }
        want_block.extend_from_slice(&hex(step.block));
        assert_eq!(
            encode(&mut e, &fields),
            want_block,
            "step {i}: encoded block"
        );
        assert_eq!(encoder_table(&e), want_table, "step {i}: encoder table");
        assert_eq!(e.table_size(), step.size, "step {i}: encoder table size");
    }
}

use Indexing::{Auto, Incremental, Never, WithoutIndexing};

#[test]
fn rfc_c2_1_literal_with_indexing() {
    run_sequence(
        4096,
        false,
        "",
        &[Step {
            block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            fields: &[("custom-key", "custom-header", Incremental)],
            table: &[("custom-key", "custom-header")],
            size: 55,
        }],
    );
}

#[test]
fn rfc_c2_2_literal_without_indexing() {
    run_sequence(
        4096,
        false,
        "",
        &[Step {
            block: "040c 2f73 616d 706c 652f 7061 7468",
            fields: &[(":path", "/sample/path", WithoutIndexing)],
            table: &[],
            size: 0,
        }],
    );
}

#[test]
fn rfc_c2_3_literal_never_indexed() {
    run_sequence(
        4096,
        false,
        "",
        &[Step {
            block: "1008 7061 7373 776f 7264 0673 6563 7265 74",
            fields: &[("password", "secret", Never)],
            table: &[],
            size: 0,
        }],
    );
    let mut d = Decoder::new(4096, usize::MAX);
    let fields = decode(&mut d, &hex("1008 7061 7373 776f 7264 0673 6563 7265 74")).unwrap();
    assert!(fields[0].never_indexed);
}

#[test]
fn rfc_c2_4_indexed() {
    run_sequence(
        4096,
        false,
        "",
        &[Step {
            block: "82",
            fields: &[(":method", "GET", Auto)],
            table: &[],
            size: 0,
        }],
    );
}

const C3_FIELDS_1: &[(&str, &str, Indexing)] = &[
    (":method", "GET", Auto),
    (":scheme", "http", Auto),
    (":path", "/", Auto),
    (":authority", "www.example.com", Auto),
];
const C3_FIELDS_2: &[(&str, &str, Indexing)] = &[
    (":method", "GET", Auto),
    (":scheme", "http", Auto),
    (":path", "/", Auto),
    (":authority", "www.example.com", Auto),
    ("cache-control", "no-cache", Auto),
];
const C3_FIELDS_3: &[(&str, &str, Indexing)] = &[
    (":method", "GET", Auto),
    (":scheme", "https", Auto),
    (":path", "/index.html", Auto),
    (":authority", "www.example.com", Auto),
    ("custom-key", "custom-value", Auto),
];
const C3_TABLE_1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const C3_TABLE_2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const C3_TABLE_3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[test]
fn rfc_c3_requests_without_huffman() {
    run_sequence(
        4096,
        false,
        "",
        &[
            Step {
                block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                fields: C3_FIELDS_1,
                table: C3_TABLE_1,
                size: 57,
            },
            Step {
                block: "8286 84be 5808 6e6f 2d63 6163 6865",
                fields: C3_FIELDS_2,
                table: C3_TABLE_2,
                size: 110,
            },
            Step {
                block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                fields: C3_FIELDS_3,
                table: C3_TABLE_3,
                size: 164,
            },
        ],
    );
}

#[test]
fn rfc_c4_requests_with_huffman() {
    run_sequence(
        4096,
        true,
        "",
        &[
            Step {
                block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                fields: C3_FIELDS_1,
                table: C3_TABLE_1,
                size: 57,
            },
            Step {
                block: "8286 84be 5886 a8eb 1064 9cbf",
                fields: C3_FIELDS_2,
                table: C3_TABLE_2,
                size: 110,
            },
            Step {
                block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                fields: C3_FIELDS_3,
                table: C3_TABLE_3,
                size: 164,
            },
        ],
    );
}

const DATE_21: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE_22: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const C5_FIELDS_1: &[(&str, &str, Indexing)] = &[
    (":status", "302", Auto),
    ("cache-control", "private", Auto),
    ("date", DATE_21, Auto),
    ("location", LOCATION, Auto),
];
const C5_FIELDS_2: &[(&str, &str, Indexing)] = &[
    (":status", "307", Auto),
    ("cache-control", "private", Auto),
    ("date", DATE_21, Auto),
    ("location", LOCATION, Auto),
];
// Our encoder sends set-cookie never-indexed by default; the RFC indexes it.
const C5_FIELDS_3: &[(&str, &str, Indexing)] = &[
    (":status", "200", Auto),
    ("cache-control", "private", Auto),
    ("date", DATE_22, Auto),
    ("location", LOCATION, Auto),
    ("content-encoding", "gzip", Auto),
    ("set-cookie", COOKIE, Incremental),
];
const C5_TABLE_1: &[(&str, &str)] = &[
    ("location", LOCATION),
    ("date", DATE_21),
    ("cache-control", "private"),
    (":status", "302"),
];
const C5_TABLE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", LOCATION),
    ("date", DATE_21),
    ("cache-control", "private"),
];
const C5_TABLE_3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE_22),
];
/// Our encoder must tell a default decoder that the table is now 256 bytes.
const SIZE_UPDATE_256: &str = "3fe101";

#[test]
fn rfc_c5_responses_without_huffman() {
    run_sequence(
        256,
        false,
        SIZE_UPDATE_256,
        &[
            Step {
                block:
                    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                    2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                    6c65 2e63 6f6d",
                fields: C5_FIELDS_1,
                table: C5_TABLE_1,
                size: 222,
            },
            Step {
                block: "4803 3330 37c1 c0bf",
                fields: C5_FIELDS_2,
                table: C5_TABLE_2,
                size: 222,
            },
            Step {
                block:
                    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                    54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                    5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                    3d31",
                fields: C5_FIELDS_3,
                table: C5_TABLE_3,
                size: 215,
            },
        ],
    );
}

#[test]
fn rfc_c6_responses_with_huffman() {
    run_sequence(
        256,
        true,
        SIZE_UPDATE_256,
        &[
            Step {
                block:
                    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                    2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                fields: C5_FIELDS_1,
                table: C5_TABLE_1,
                size: 222,
            },
            Step {
                block: "4883 640e ffc1 c0bf",
                fields: C5_FIELDS_2,
                table: C5_TABLE_2,
                size: 222,
            },
            Step {
                block:
                    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                    77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                    9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                fields: C5_FIELDS_3,
                table: C5_TABLE_3,
                size: 215,
            },
        ],
    );
}

const GRPC_REQUEST: &[(&[u8], &[u8])] = &[
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":path", b"/grpc.testing.TestService/UnaryCall"),
    (b":authority", b"localhost:50051"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
    (b"grpc-timeout", b"1S"),
    (b"user-agent", b"grpc-rust-sansio/0.1.0"),
];

#[test]
fn repeated_grpc_request_is_at_most_ten_bytes() {
    let fields: Vec<HeaderField<'_>> = GRPC_REQUEST
        .iter()
        .map(|&(n, v)| HeaderField::new(n, v))
        .collect();
    let want: Pairs = GRPC_REQUEST
        .iter()
        .map(|&(n, v)| (n.to_vec(), v.to_vec()))
        .collect();
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096, 16 * 1024);
    let first = encode(&mut e, &fields);
    let second = encode(&mut e, &fields);
    assert!(
        second.len() <= 10,
        "repeated block is {} bytes: {second:02x?}",
        second.len()
    );
    assert!(first.len() < 120, "first block is {} bytes", first.len());
    assert_eq!(decode_pairs(&mut d, &first).unwrap(), want);
    assert_eq!(decode_pairs(&mut d, &second).unwrap(), want);
    assert_eq!(decoder_table(&d), encoder_table(&e));
}

#[test]
fn a_repeated_block_is_replayed_until_the_table_changes() {
    let request = [
        HeaderField::new(b":method", b"POST"),
        HeaderField::new(b":path", b"/pkg.Svc/Method"),
        HeaderField::new(b"content-type", b"application/grpc"),
    ];
    let mut e = Encoder::new();
    let first = encode(&mut e, &request);
    // Adding the fields to the table: nothing to remember yet.
    assert_eq!(e.memos(), 0);
    let indexed = encode(&mut e, &request);
    assert!(indexed.len() < first.len());
    assert_eq!(e.memos(), 1);
    assert_eq!(encode(&mut e, &request), indexed);
    assert_eq!(e.memos(), 1);
    // A new field changes the table: the next block may not replay the old bytes.
    let other = [HeaderField::new(b"x-new", b"value")];
    encode(&mut e, &other);
    let again = encode(&mut e, &request);
    assert_eq!(e.memos(), 1, "forgotten, then remembered afresh");
    let mut plain = Encoder::new();
    plain.disable_memo();
    for block in [&request[..], &request, &request, &other] {
        encode(&mut plain, block);
    }
    assert_eq!(again, encode(&mut plain, &request));
}

#[test]
fn sensitive_fields_come_out_never_indexed() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096, usize::MAX);
    let fields = [
        HeaderField::new(b"authorization", b"Bearer abc"),
        HeaderField::new(b"proxy-authorization", b"Basic xyz"),
        HeaderField::sensitive(b"x-api-key", b"k"),
        HeaderField::new(b"x-plain", b"p"),
    ];
    for _ in 0..2 {
        let got = decode(&mut d, &encode(&mut e, &fields)).unwrap();
        let flags: Vec<bool> = got.iter().map(|f| f.never_indexed).collect();
        assert_eq!(flags, [true, true, true, false]);
    }
    assert_eq!(decoder_table(&d), pairs(&[("x-plain", "p")]));
}

#[test]
fn peer_table_of_zero_keeps_both_tables_empty() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096, usize::MAX);
    e.set_peer_max_table_size(0);
    d.set_max_table_size(0);
    let fields: Vec<HeaderField<'_>> = GRPC_REQUEST
        .iter()
        .map(|&(n, v)| HeaderField::new(n, v))
        .collect();
    for _ in 0..3 {
        let got = decode_pairs(&mut d, &encode(&mut e, &fields)).unwrap();
        assert_eq!(got.len(), GRPC_REQUEST.len());
        assert_eq!(
            (d.table_len(), d.table_size(), d.table_max_size()),
            (0, 0, 0)
        );
        assert_eq!((e.table_len(), e.table_size()), (0, 0));
    }
}

#[test]
fn size_updates_between_blocks_keep_tables_in_step() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096, usize::MAX);
    let fields: Vec<HeaderField<'_>> = GRPC_REQUEST
        .iter()
        .map(|&(n, v)| HeaderField::new(n, v))
        .collect();
    for (peer, ours) in [(4096, 4096), (200, 200), (0, 0), (1000, 4096), (8192, 8192)] {
        d.set_max_table_size(ours);
        e.set_peer_max_table_size(peer);
        decode(&mut d, &encode(&mut e, &fields)).unwrap();
        assert_eq!(decoder_table(&d), encoder_table(&e), "peer {peer}");
        assert_eq!(d.table_max_size(), e.table_max_size());
        assert!(d.table_size() <= d.table_max_size());
    }
}

#[test]
fn table_stays_in_sync_after_header_list_too_large() {
    // Four indexed literals of 34 bytes each and one Huffman literal without indexing;
    // the limit lets two fields through. The third crosses it; the fourth comes after.
    let block = hex("4001610131 4001620132 4001630133 4001640134 0081 1f 81 1f");
    let mut d = Decoder::new(4096, 100);
    let mut seen = Vec::new();
    let r = d.decode(&block, |f| seen.push(f.name.to_vec()));
    assert_eq!(r, Err(DecodeError::HeaderListTooLarge));
    assert!(!r.unwrap_err().is_connection_error());
    assert_eq!(seen, [b"a".to_vec(), b"b".to_vec()]);
    let all = pairs(&[("d", "4"), ("c", "3"), ("b", "2"), ("a", "1")]);
    assert_eq!(decoder_table(&d), all);
    // The next block refers to every entry, the over-limit ones included.
    d.set_max_header_list_size(1 << 20);
    assert_eq!(decode_pairs(&mut d, &hex("bebfc0c1")).unwrap(), all);
}

#[test]
fn size_update_only_block_and_limits() {
    let mut d = Decoder::new(4096, usize::MAX);
    assert_eq!(decode_pairs(&mut d, &hex("3fe11f")).unwrap(), vec![]);
    assert_eq!(decode_pairs(&mut d, &hex("203fe11f82")).unwrap().len(), 1);
    assert_eq!(d.table_max_size(), 4096);
    assert_eq!(
        decode(&mut d, &hex("3fe21f")),
        Err(DecodeError::SizeUpdateTooLarge {
            size: 4097,
            max: 4096
        })
    );
    assert_eq!(
        decode(&mut d, &hex("823fe11f")),
        Err(DecodeError::SizeUpdateNotAtStart)
    );
}

// ---------------------------------------------------------------------------------------
// Differential tests against the crates.io codecs.

/// Names that hit the static table, gRPC names that get indexed, credentials, and random
/// lowercase tokens.
fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(vec![
            &b":method"[..], b":path", b":authority", b":scheme", b":status", b"content-type", b"te",
            b"grpc-timeout", b"grpc-status", b"grpc-message", b"user-agent", b"authorization",
            b"cookie", b"accept-encoding", b"x-custom",
        ])
        .prop_map(|n| n.to_vec()),
        1 => "[a-z][a-z0-9-]{0,20}".prop_map(String::into_bytes),
    ]
}

/// A few values that repeat (so indexing happens) and arbitrary bytes.
fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::sample::select(vec![&b""[..], b"GET", b"POST", b"1S", b"application/grpc", b"trailers", b"/"])
            .prop_map(|v| v.to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..48),
        1 => prop::collection::vec(any::<u8>(), 100..400),
    ]
}

fn indexing_strategy() -> impl Strategy<Value = Indexing> {
    prop_oneof![4 => Just(Auto), 1 => Just(Incremental), 1 => Just(WithoutIndexing), 1 => Just(Never)]
}

type Block = (Option<usize>, Vec<(Vec<u8>, Vec<u8>, Indexing)>);

/// Blocks for one connection, each with an optional change of the peer's table size.
fn blocks_strategy() -> impl Strategy<Value = Vec<Block>> {
    let size = prop::option::weighted(
        0.2,
        prop::sample::select(vec![0usize, 64, 256, 1024, 4096, 65536]),
    );
    let field = (name_strategy(), value_strategy(), indexing_strategy());
    prop::collection::vec((size, prop::collection::vec(field, 1..12)), 1..8)
}

type FieldList = Vec<(Vec<u8>, Vec<u8>, Indexing)>;

/// Which block of the pool to send next, a new peer table size, whether to switch Huffman.
type SendStep = (usize, Option<usize>, bool);

/// A few blocks, and the order a connection sends them in, with the peer's table size
/// changing and Huffman switching now and then.
fn repeated_blocks_strategy() -> impl Strategy<Value = (Vec<FieldList>, Vec<SendStep>)> {
    let field = (name_strategy(), value_strategy(), indexing_strategy());
    // Up to 6 blocks for 4 memo slots, so replacing a slot is exercised too.
    let pool = prop::collection::vec(prop::collection::vec(field, 0..10), 1..7);
    let size = prop::option::weighted(0.1, prop::sample::select(vec![0usize, 64, 256, 4096]));
    let step = (0usize..6, size, prop::bool::weighted(0.1));
    (pool, prop::collection::vec(step, 1..24))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Replaying remembered blocks gives the bytes plain encoding gives, block after
    /// block of one connection, and they decode to their fields.
    #[test]
    fn remembered_blocks_encode_as_plain_encoding_does((pool, steps) in repeated_blocks_strategy()) {
        let mut e = Encoder::new();
        let mut plain = Encoder::new();
        plain.disable_memo();
        let mut ours = Decoder::new(4096, usize::MAX);
        let mut oracle = hpack::Decoder::new();
        let mut huffman = true;
        for (pick, size, toggle) in steps {
            if let Some(size) = size {
                e.set_peer_max_table_size(size);
                plain.set_peer_max_table_size(size);
            }
            if toggle {
                huffman = !huffman;
                e.set_huffman(huffman);
                plain.set_huffman(huffman);
            }
            let list = &pool[pick % pool.len()];
            let fields: Vec<HeaderField<'_>> =
                list.iter().map(|(n, v, i)| HeaderField { name: n, value: v, indexing: *i }).collect();
            let block = encode(&mut e, &fields);
            prop_assert_eq!(&block, &encode(&mut plain, &fields));
            let want: Pairs = list.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(&decode_pairs(&mut ours, &block).unwrap(), &want);
            prop_assert_eq!(&oracle.decode(&block).unwrap(), &want);
        }
    }

    /// Our blocks decode to the input with our decoder and both oracle decoders, across
    /// blocks sharing one connection state, and our decoder's table mirrors our encoder's.
    #[test]
    fn our_blocks_decode_identically_everywhere(blocks in blocks_strategy(), huffman in any::<bool>()) {
        let mut e = Encoder::new();
        e.set_huffman(huffman);
        let mut ours = Decoder::new(4096, usize::MAX);
        ours.set_max_table_size(65536);
        let mut oracle_a = hpack::Decoder::new();
        let mut oracle_b = loona_hpack::Decoder::new();
        for (size, list) in blocks {
            if let Some(size) = size {
                e.set_peer_max_table_size(size);
            }
            let fields: Vec<HeaderField<'_>> =
                list.iter().map(|(n, v, i)| HeaderField { name: n, value: v, indexing: *i }).collect();
            let want: Pairs = list.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            let block = encode(&mut e, &fields);

            let got = decode(&mut ours, &block).unwrap();
            let got_pairs: Pairs = got.iter().map(|f| (f.name.to_vec(), f.value.to_vec())).collect();
            prop_assert_eq!(&got_pairs, &want);
            for (f, (name, _, indexing)) in got.iter().zip(&list) {
                let never = *indexing == Never
                    || (*indexing == Auto
                        && matches!(&name[..], b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"));
                prop_assert_eq!(f.never_indexed, never);
            }
            prop_assert_eq!(decoder_table(&ours), encoder_table(&e));
            prop_assert_eq!(ours.table_size(), e.table_size());

            prop_assert_eq!(&oracle_a.decode(&block).unwrap(), &want);
            prop_assert_eq!(&oracle_b.decode(&block).unwrap(), &want);
        }
    }

    /// Blocks from the oracle encoders decode to their input with ours.
    #[test]
    fn oracle_blocks_decode_identically_with_ours(blocks in blocks_strategy()) {
        let mut enc_a = hpack::Encoder::new();
        let mut enc_b = loona_hpack::Encoder::new();
        let mut dec_a = Decoder::new(4096, usize::MAX);
        let mut dec_b = Decoder::new(4096, usize::MAX);
        for (_, list) in blocks {
            let want: Pairs = list.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
            let block_a = Bytes::from(enc_a.encode(list.iter().map(|(n, v, _)| (&n[..], &v[..]))));
            let block_b = Bytes::from(enc_b.encode(list.iter().map(|(n, v, _)| (&n[..], &v[..]))));
            prop_assert_eq!(&decode_pairs(&mut dec_a, &block_a).unwrap(), &want);
            prop_assert_eq!(&decode_pairs(&mut dec_b, &block_b).unwrap(), &want);
        }
    }

    /// A decoder with a tight header list limit hands out a prefix of each list and keeps
    /// exactly the table of a decoder without limit.
    #[test]
    fn list_limit_never_desynchronises_the_table(blocks in blocks_strategy(), limit in 0usize..600) {
        let mut e = Encoder::new();
        let mut tight = Decoder::new(4096, limit);
        let mut loose = Decoder::new(4096, usize::MAX);
        for (size, list) in blocks {
            if let Some(size) = size {
                e.set_peer_max_table_size(size);
            }
            let fields: Vec<HeaderField<'_>> =
                list.iter().map(|(n, v, i)| HeaderField { name: n, value: v, indexing: *i }).collect();
            let block = encode(&mut e, &fields);
            let all = decode_pairs(&mut loose, &block).unwrap();
            let mut seen = Vec::new();
            let r = tight.decode(&block, |f| seen.push((f.name.to_vec(), f.value.to_vec())));
            let total: usize = all.iter().map(|(n, v)| n.len() + v.len() + ENTRY_OVERHEAD).sum();
            if total > limit {
                prop_assert_eq!(r, Err(DecodeError::HeaderListTooLarge));
            } else {
                prop_assert_eq!(r, Ok(()));
            }
            let used: usize = seen.iter().map(|(n, v)| n.len() + v.len() + ENTRY_OVERHEAD).sum();
            prop_assert!(used <= limit);
            prop_assert_eq!(&seen[..], &all[..seen.len()]);
            prop_assert_eq!(decoder_table(&tight), decoder_table(&loose));
        }
    }

    /// Arbitrary bytes never panic the decoder, and the table stays within its bounds.
    #[test]
    fn arbitrary_blocks_are_refused_or_decoded_safely(
        blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..6),
    ) {
        let mut d = Decoder::new(256, 1024);
        for block in blocks {
            let mut used = 0usize;
            let r = d.decode(&Bytes::from(block), |f| used += f.name.len() + f.value.len() + ENTRY_OVERHEAD);
            prop_assert!(used <= 1024);
            prop_assert!(d.table_size() <= d.table_max_size());
            prop_assert!(d.table_max_size() <= 256);
            if r.is_err_and(|e| e.is_connection_error()) {
                break;
            }
        }
    }
}
