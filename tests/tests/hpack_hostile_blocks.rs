//! Every row of `testdata/hpack-hostile-blocks.md` run against our HPACK decoder, then one
//! test per "Resource cases" row.
//!
//! The tracking allocator (`grpc_sansio_tests::alloc`, installed for this binary) measures, per thread, how much memory a
//! decode call allocates, so "no alloc" and "memory stays ~KB" are asserted rather than
//! assumed. Nothing here is timed: CPU cost is the benches' business.

use bytes::{BufMut, Bytes, BytesMut};
use grpc_sansio::hpack::{DecodeError, Decoder, ENTRY_OVERHEAD, Field};
use grpc_sansio_tests::alloc::{Tracking, measure};

/// The decoder the file describes: a 4096-byte table, and a header list limit large enough
/// that no table row hits it.
const TABLE_SIZE: usize = 4096;
const LIST_LIMIT: usize = 1 << 20;

/// Rows marked "no alloc" may allocate at most this much while being decoded.
const NO_ALLOC_BUDGET: usize = 1024;

/// The resource cases may allocate at most this much while being decoded: far below the
/// input sizes (16–64 KiB) that a copying decoder would allocate.
const SMALL_MEMORY_BUDGET: usize = 8 * 1024;

/// The insert the row "valid, first byte `be` (after 1 insert)" needs but does not spell
/// out; the same one the u32-wrap row uses: `k: v` with incremental indexing.
const ONE_INSERT: &str = "40016b0176";

// ---------------------------------------------------------------------------------------
// Allocation tracking.

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result with the most memory this thread had allocated beyond
/// what it had at the start, at any point during `f`.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let (out, cost) = measure(f);
    (out, cost.peak)
}

// ---------------------------------------------------------------------------------------
// The table file.

fn testdata() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/hpack-hostile-blocks.md"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The body rows of the markdown table whose header starts with `header`, split into
/// trimmed cells.
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header));
    assert!(lines.next().is_some(), "no table with header {header:?}");
    let separator = lines.next().unwrap_or_default();
    assert!(
        separator.starts_with("|---"),
        "table {header:?} lacks its separator row"
    );
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let inner = l.trim().strip_prefix('|').and_then(|l| l.strip_suffix('|'));
            let inner = inner.unwrap_or_else(|| panic!("malformed row {l:?}"));
            inner.split('|').map(|c| c.trim().to_string()).collect()
        })
        .collect()
}

/// Lines of the table, counted without parsing them: what the run must add up to.
fn count_table_lines(text: &str, header: &str) -> usize {
    let mut in_table = false;
    let mut count = 0usize;
    for line in text.lines() {
        if line.starts_with(header) {
            in_table = true;
        } else if in_table && line.starts_with('|') {
            count += 1;
        } else if in_table {
            break;
        }
    }
    count.saturating_sub(1) // the separator row
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("not hex: {s:?}"));
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect())
}

/// One term of an input cell: `` `hex` ``, `` `hex`×N `` or `` N×`hex` ``.
fn term(t: &str) -> Result<Vec<u8>, String> {
    let (count, quoted) = if let Some((n, rest)) = t.split_once("×`") {
        (n.trim(), format!("`{rest}"))
    } else if let Some((quoted, n)) = t.split_once('×') {
        (n.trim(), quoted.trim().to_string())
    } else {
        ("1", t.to_string())
    };
    let count: usize = count
        .parse()
        .map_err(|_| format!("bad repeat count in {t:?}"))?;
    let inner = quoted
        .strip_prefix('`')
        .and_then(|q| q.strip_suffix('`'))
        .ok_or_else(|| format!("term is not `hex`: {t:?}"))?;
    Ok(hex(inner)?.repeat(count))
}

/// A `+`-joined sequence of terms.
fn sequence(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if s == "``" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for t in s.split(" + ") {
        out.extend(term(t.trim())?);
    }
    Ok(out)
}

/// A literal with incremental indexing, new name "a", of exactly `entry_size` bytes.
fn insert_of_entry_size(entry_size: usize) -> Vec<u8> {
    literal_block(0x40, b"a", &vec![b'b'; entry_size - 1 - ENTRY_OVERHEAD])
}

/// A literal field with a new raw name and a raw value; `first` picks the representation.
fn literal_block(first: u8, name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(first);
    put_int(&mut out, 0x00, 7, name.len());
    out.extend_from_slice(name);
    put_int(&mut out, 0x00, 7, value.len());
    out.extend_from_slice(value);
    out.to_vec()
}

/// RFC 7541 §5.1, written out here so the test does not lean on the code under test.
fn put_int(out: &mut BytesMut, flags: u8, prefix_bits: u32, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.put_u8(flags | value as u8);
        return;
    }
    out.put_u8(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

struct Case {
    /// Blocks decoded first, each on its own, each expected to succeed.
    before: Vec<Vec<u8>>,
    block: Vec<u8>,
    expect_ok: bool,
    expect_no_fields: bool,
    no_alloc: bool,
}

fn parse_row(cells: &[String]) -> Result<Case, String> {
    let [case, input, expected] = cells else {
        return Err(format!("expected 3 cells, got {}", cells.len()));
    };
    let (block, prior) = match input.split_once(" after ") {
        Some((block, prior)) => (block, Some(prior.trim())),
        None => (input.as_str(), None),
    };
    let mut before = Vec::new();
    match prior {
        None => {}
        Some("the insert") => {
            // The case names the entry's size: "valid 5000-byte entry into a 4096 table".
            let size = case
                .split_whitespace()
                .find_map(|w| w.strip_suffix("-byte"))
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("'after the insert' but no entry size in {case:?}"))?;
            before.push(insert_of_entry_size(size));
        }
        Some(prior) => before.push(sequence(prior)?),
    }
    if case.contains("(after 1 insert)") {
        before.push(hex(ONE_INSERT)?);
    }
    let expected = expected.to_ascii_lowercase();
    let expect_ok = if expected.starts_with("ok") {
        true
    } else if expected.starts_with("error") {
        false
    } else {
        return Err(format!("expected neither ok nor error: {expected:?}"));
    };
    Ok(Case {
        before,
        block: sequence(block)?,
        expect_ok,
        expect_no_fields: expected.starts_with("ok []"),
        no_alloc: expected.contains("no alloc"),
    })
}

fn decode(d: &mut Decoder, block: &Bytes) -> Result<Vec<Field>, DecodeError> {
    let mut fields = Vec::new();
    d.decode(block, |f| fields.push(f))?;
    Ok(fields)
}

fn run_case(c: &Case) -> Result<(), String> {
    let mut d = Decoder::new(TABLE_SIZE, LIST_LIMIT);
    for prior in &c.before {
        decode(&mut d, &Bytes::copy_from_slice(prior))
            .map_err(|e| format!("prior block failed: {e}"))?;
    }
    let block = Bytes::copy_from_slice(&c.block);
    let (result, grew) = peak_growth(|| {
        let mut count = 0usize;
        d.decode(&block, |_| count += 1).map(|()| count)
    });
    match (&result, c.expect_ok) {
        (Ok(n), true) if c.expect_no_fields && *n != 0 => {
            return Err(format!("expected no fields, got {n}"));
        }
        (Ok(_), true) => {}
        (Err(e), false) if e.is_connection_error() => {}
        (Err(e), false) => return Err(format!("{e} is not a connection error")),
        (Ok(n), false) => return Err(format!("expected an error, decoded {n} fields")),
        (Err(e), true) => return Err(format!("expected ok, got {e}")),
    }
    if c.no_alloc && grew > NO_ALLOC_BUDGET {
        return Err(format!("allocated {grew} bytes"));
    }
    if d.table_size() > d.table_max_size() || d.table_max_size() > TABLE_SIZE {
        return Err(format!(
            "table {} of {} bytes",
            d.table_size(),
            d.table_max_size()
        ));
    }
    Ok(())
}

const HOSTILE_HEADER: &str = "| case | input block";
const RESOURCE_HEADER: &str = "| case | bound";

#[test]
fn every_hostile_row() {
    let text = testdata();
    let rows = table_rows(&text, HOSTILE_HEADER);
    let mut ran = 0;
    let mut failures = Vec::new();
    for cells in &rows {
        let name = cells.first().cloned().unwrap_or_default();
        match parse_row(cells).and_then(|c| run_case(&c)) {
            Ok(()) => {}
            Err(why) => failures.push(format!("{name}: {why}")),
        }
        ran += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(ran, count_table_lines(&text, HOSTILE_HEADER));
    assert!(
        ran >= 39,
        "the file had 39 rows when this test was written; found {ran}"
    );
}

#[test]
fn the_row_parser_understands_every_form() {
    assert_eq!(sequence("`1f` + `ff`×3").unwrap(), [0x1f, 0xff, 0xff, 0xff]);
    assert_eq!(
        sequence("`00a8` + `ff`×2 + `0161`").unwrap(),
        [0x00, 0xa8, 0xff, 0xff, 0x01, 0x61]
    );
    assert_eq!(
        sequence("`4001` + 3×`62`").unwrap(),
        [0x40, 0x01, 0x62, 0x62, 0x62]
    );
    assert_eq!(sequence("``").unwrap(), [0u8; 0]);
    assert!(sequence("`zz`").is_err());
    assert!(sequence("ff").is_err());
    let cells = |a: &str, b: &str, c: &str| vec![a.to_string(), b.to_string(), c.to_string()];
    let c = parse_row(&cells("x", "`be` after `40016b0176`", "error")).unwrap();
    assert_eq!(
        (c.before.len(), c.block.as_slice(), c.expect_ok),
        (1, &[0xbe][..], false)
    );
    let c = parse_row(&cells(
        "valid 5000-byte entry",
        "`be` after the insert",
        "error (x)",
    ))
    .unwrap();
    assert_eq!(c.before[0].len(), 5 + 5000 - ENTRY_OVERHEAD);
    assert!(parse_row(&cells("no size here", "`be` after the insert", "error")).is_err());
    assert!(parse_row(&cells("x", "`be`", "maybe")).is_err());
    assert!(parse_row(&cells("x", "`be`", "ok")[..2]).is_err());
}

// ---------------------------------------------------------------------------------------
// Resource cases, one test each.

#[test]
fn every_resource_row_has_a_test() {
    let text = testdata();
    let rows = table_rows(&text, RESOURCE_HEADER);
    let covered = [
        "header-list bomb",
        "2^28-1",
        "256 blocks",
        "3276 fields",
        "16 KiB of Huffman",
    ];
    for cells in &rows {
        let case = cells.first().cloned().unwrap_or_default();
        assert!(
            covered.iter().any(|k| case.contains(k)),
            "resource row without a test: {case:?}"
        );
    }
    assert_eq!(rows.len(), covered.len());
    assert_eq!(rows.len(), count_table_lines(&text, RESOURCE_HEADER));
}

#[test]
fn header_list_bomb_is_refused_in_bounded_memory() {
    let mut d = Decoder::new(TABLE_SIZE, LIST_LIMIT);
    decode(&mut d, &Bytes::from(insert_of_entry_size(4064))).unwrap();
    assert_eq!((d.table_len(), d.table_size()), (1, 4064));

    let mut bomb = vec![0x82];
    bomb.extend(std::iter::repeat_n(0xbe, 16383));
    assert_eq!(bomb.len(), 16 * 1024);
    let bomb = Bytes::from(bomb);
    let mut handed_out = 0usize;
    let (result, grew) = peak_growth(|| {
        d.decode(&bomb, |f| {
            handed_out += f.name.len() + f.value.len() + ENTRY_OVERHEAD
        })
    });
    assert_eq!(result, Err(DecodeError::HeaderListTooLarge));
    assert!(!DecodeError::HeaderListTooLarge.is_connection_error());
    assert!(handed_out <= LIST_LIMIT);
    assert!(
        grew <= SMALL_MEMORY_BUDGET,
        "decoding the bomb allocated {grew} bytes"
    );
    assert!(d.table_size() <= TABLE_SIZE);
    // The connection goes on with the table intact.
    let fields = decode(&mut d, &Bytes::from_static(&[0xbe])).unwrap();
    assert_eq!(fields[0].value.len(), 4064 - 1 - ENTRY_OVERHEAD);
}

#[test]
fn size_update_to_2_pow_28_minus_1_is_rejected_and_nothing_retained() {
    let mut d = Decoder::new(TABLE_SIZE, LIST_LIMIT);
    let mut update = BytesMut::new();
    put_int(&mut update, 0x20, 5, (1 << 28) - 1);
    let result = decode(&mut d, &update.freeze());
    assert_eq!(
        result,
        Err(DecodeError::SizeUpdateTooLarge {
            size: (1 << 28) - 1,
            max: TABLE_SIZE
        })
    );
    assert!(result.unwrap_err().is_connection_error());
    assert_eq!((d.table_max_size(), d.table_size()), (TABLE_SIZE, 0));

    // Even if the caller ignored the error, 16 KiB entries cannot stay in a 4096 table.
    let blocks: Vec<Bytes> = (0..8)
        .map(|_| Bytes::from(literal_block(0x40, b"a", &vec![b'x'; 16 * 1024])))
        .collect();
    for block in &blocks {
        let (fields, grew) = peak_growth(|| decode(&mut d, block).unwrap());
        assert_eq!(fields.len(), 1);
        assert!(
            grew <= SMALL_MEMORY_BUDGET,
            "decoding allocated {grew} bytes"
        );
        assert_eq!((d.table_len(), d.table_size()), (0, 0));
    }
}

#[test]
fn entries_larger_than_the_table_are_not_kept() {
    let mut d = Decoder::new(TABLE_SIZE, LIST_LIMIT);
    for i in 0..256u32 {
        let block = Bytes::from(literal_block(0x40, b"a", &vec![b'b'; 65535]));
        let (fields, grew) = peak_growth(|| decode(&mut d, &block).unwrap());
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].value.len(), 65535);
        assert!(
            grew <= SMALL_MEMORY_BUDGET,
            "block {i} allocated {grew} bytes"
        );
        assert_eq!((d.table_len(), d.table_size()), (0, 0), "block {i}");
    }
}

#[test]
fn block_of_3276_one_byte_huffman_fields_decodes() {
    let block = Bytes::from([0x00, 0x81, 0x1f, 0x81, 0x1f].repeat(3276));
    assert_eq!(block.len(), 16380);
    let mut d = Decoder::new(TABLE_SIZE, LIST_LIMIT);
    let fields = decode(&mut d, &block).unwrap();
    assert_eq!(fields.len(), 3276);
    assert!(
        fields
            .iter()
            .all(|f| &f.name[..] == b"a" && &f.value[..] == b"a" && !f.never_indexed)
    );
    assert_eq!(d.table_len(), 0);
}

/// A few RFC 7541 Appendix B codes, (symbol, code, bits), to build a Huffman string without
/// the code under test.
const SOME_CODES: [(u8, u32, u32); 7] = [
    (b'a', 0x3, 5),
    (b':', 0x5c, 7),
    (b'e', 0x5, 5),
    (b'0', 0x0, 5),
    (b'X', 0xfc, 8),
    (b'%', 0x15, 6),
    (b'!', 0x3f8, 10),
];

#[test]
fn sixteen_kib_huffman_value_decodes() {
    let target = 16 * 1024;
    let mut coded = Vec::with_capacity(target);
    let mut plain = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    'fill: loop {
        for &(sym, code, len) in &SOME_CODES {
            // Stop while the padded result is still exactly the target size.
            if (coded.len() * 8 + bits as usize + len as usize).div_ceil(8) > target {
                break 'fill;
            }
            acc = (acc << len) | u64::from(code);
            bits += len;
            plain.push(sym);
            while bits >= 8 {
                bits -= 8;
                coded.push((acc >> bits) as u8);
            }
        }
    }
    if bits > 0 {
        coded.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
    assert_eq!(coded.len(), target);

    let mut block = BytesMut::new();
    block.extend_from_slice(&[0x00, 0x01, b'v']);
    put_int(&mut block, 0x80, 7, coded.len());
    block.extend_from_slice(&coded);
    let mut d = Decoder::new(TABLE_SIZE, LIST_LIMIT);
    let fields = decode(&mut d, &block.freeze()).unwrap();
    assert_eq!(fields.len(), 1);
    assert_eq!(&fields[0].name[..], b"v");
    assert_eq!(fields[0].value, plain);
}
