//! The header block encoder.

use bytes::BytesMut;

use super::table::{DynamicTable, Entry, entry_size};
use super::{DEFAULT_HEADER_TABLE_SIZE, huffman, integer, static_table};

/// The most dynamic table we keep for the peer by default, whatever larger size it
/// allows: 4096 bytes hold a gRPC request's or response's repeated fields many times over,
/// and memory per connection stays small.
pub const DEFAULT_ENCODER_TABLE_CAP: usize = 4096;

/// With [`Indexing::Auto`], a field is indexed only if its entry takes at most
/// 1/`AUTO_INDEX_SHARE` of the table: a bigger one would evict most of what is there for a
/// value that rarely repeats (large cookies, tokens, trace contexts).
const AUTO_INDEX_SHARE: usize = 2;

/// Names whose values are credentials: with [`Indexing::Auto`] they are sent as
/// never-indexed literals (RFC 7541 §7.1.3), so no intermediary indexes them and their
/// compressed size reveals nothing about other requests. Compared ignoring ASCII case.
const SENSITIVE_NAMES: [&[u8]; 4] = [
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"set-cookie",
];

/// How a field may be represented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Indexing {
    /// Let the encoder choose: [`Indexing::Never`] for credential headers
    /// (`authorization`, `proxy-authorization`, `cookie`, `set-cookie`),
    /// [`Indexing::WithoutIndexing`] for fields whose entry would take more than half the
    /// table, [`Indexing::Incremental`] for the rest.
    #[default]
    Auto,
    /// Use an index if the table has the exact field; otherwise send a literal with
    /// incremental indexing (RFC 7541 §6.2.1), adding the field to the table.
    Incremental,
    /// Use an index if the table has the exact field; otherwise send a literal without
    /// indexing (§6.2.2). Never adds to the table.
    WithoutIndexing,
    /// Always send a never-indexed literal (§6.2.3), even if the table has the field: the
    /// value must stay literal across every hop. The name may still be indexed.
    Never,
}

/// A header field to encode: borrowed bytes, no conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeaderField<'a> {
    /// The field name; HTTP/2 requires lowercase, which the encoder does not check.
    pub name: &'a [u8],
    /// The field value.
    pub value: &'a [u8],
    /// How it may be represented.
    pub indexing: Indexing,
}

impl<'a> HeaderField<'a> {
    /// A field with [`Indexing::Auto`].
    pub fn new(name: &'a [u8], value: &'a [u8]) -> Self {
        HeaderField {
            name,
            value,
            indexing: Indexing::Auto,
        }
    }

    /// A field that must never be indexed ([`Indexing::Never`]), e.g. a credential the
    /// encoder would not recognise by name.
    pub fn sensitive(name: &'a [u8], value: &'a [u8]) -> Self {
        HeaderField {
            name,
            value,
            indexing: Indexing::Never,
        }
    }
}

/// A dynamic table entry as the encoder keeps it: name and value in one allocation.
#[derive(Debug)]
struct OwnedEntry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry for OwnedEntry {
    fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }
    fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }
}

/// Blocks remembered per encoder ([`Encoder::encode`] replays them).
const MEMO_SLOTS: usize = 4;

/// Blocks whose fields take more than this (as [`Memo::key`] spells them) are not
/// remembered: a memo is for the small, repeated blocks of RPCs, and its memory stays
/// bounded at a few KiB per connection.
const MEMO_MAX_KEY: usize = 512;

/// A block that left the dynamic table as it found it, with the bytes it encoded to:
/// while the table stays unchanged, the same fields encode to the same bytes again.
#[derive(Debug)]
struct Memo {
    /// The fields: per field its indexing, name length, name, value length, value.
    key: Vec<u8>,
    block: Vec<u8>,
}

impl Memo {
    /// The bytes `field` takes in a key.
    fn key_len(field: &HeaderField<'_>) -> usize {
        1 + 4 + field.name.len() + 4 + field.value.len()
    }

    /// Appends `field` to a key.
    fn push_field(key: &mut Vec<u8>, field: &HeaderField<'_>) {
        key.push(field.indexing as u8);
        for part in [field.name, field.value] {
            key.extend_from_slice(&(part.len() as u32).to_le_bytes());
            key.extend_from_slice(part);
        }
    }

    /// Whether `fields` are exactly the fields of this memo's key.
    fn matches<'a>(&self, fields: impl Iterator<Item = HeaderField<'a>>) -> bool {
        let mut rest = self.key.as_slice();
        for field in fields {
            let Some((&indexing, tail)) = rest.split_first() else {
                return false;
            };
            if indexing != field.indexing as u8 {
                return false;
            }
            rest = tail;
            for part in [field.name, field.value] {
                let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                    return false;
                };
                if u32::from_le_bytes(*len) as usize != part.len() {
                    return false;
                }
                let Some((bytes, tail)) = tail.split_at_checked(part.len()) else {
                    return false;
                };
                if bytes != part {
                    return false;
                }
                rest = tail;
            }
        }
        rest.is_empty()
    }
}

/// Table size changes not yet signalled to the peer.
#[derive(Clone, Copy, Debug)]
struct PendingSizeUpdate {
    /// The smallest size since the last block.
    min: usize,
    /// The size now.
    last: usize,
}

/// Encodes header blocks for one direction of one connection.
///
/// Keeps a copy of the dynamic table the peer's decoder builds from our blocks, so every
/// block must reach the peer, in the order it was encoded.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable<OwnedEntry>,
    /// Our own ceiling on the table, whatever the peer allows.
    table_cap: usize,
    pending: Option<PendingSizeUpdate>,
    huffman: bool,
    /// Bumped whenever what a block encodes to may change: an entry added or evicted,
    /// a size update, Huffman switched.
    generation: u64,
    /// Blocks that encoded without changing the table at `memo_generation`.
    memos: Vec<Memo>,
    memo_generation: u64,
    /// The slot the next new memo takes once all are used.
    memo_next: usize,
    /// Off only in tests that compare against plain encoding.
    memo_on: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder for a peer with the default 4096-byte table, using at most
    /// [`DEFAULT_ENCODER_TABLE_CAP`] of it, with Huffman coding on.
    pub fn new() -> Encoder {
        Encoder::with_table_cap(DEFAULT_ENCODER_TABLE_CAP)
    }

    /// Like [`Encoder::new`], but keeping at most `cap` bytes of dynamic table however
    /// much the peer allows. A cap below 4096 is signalled in the first block.
    pub fn with_table_cap(cap: usize) -> Encoder {
        let mut encoder = Encoder {
            table: DynamicTable::new(DEFAULT_HEADER_TABLE_SIZE),
            table_cap: cap,
            pending: None,
            huffman: true,
            generation: 0,
            memos: Vec::new(),
            memo_generation: 0,
            memo_next: 0,
            memo_on: true,
        };
        encoder.set_peer_max_table_size(DEFAULT_HEADER_TABLE_SIZE);
        encoder
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE arrived. The table becomes the smaller of
    /// that and our cap; the change is signalled at the start of the next block (first the
    /// smallest size since the last block if the table shrank in between, then the final
    /// one, as RFC 7541 §4.2 requires).
    pub fn set_peer_max_table_size(&mut self, n: usize) {
        let size = n.min(self.table_cap);
        match &mut self.pending {
            Some(pending) => {
                pending.min = pending.min.min(size);
                pending.last = size;
            }
            None if size != self.table.max_size() => {
                self.pending = Some(PendingSizeUpdate {
                    min: size,
                    last: size,
                });
            }
            None => {}
        }
    }

    /// Whether to Huffman-code strings (on by default). When on, a string is Huffman-coded
    /// unless that would make it longer, ties going to Huffman as in RFC 7541 Appendix C.
    pub fn set_huffman(&mut self, on: bool) {
        if self.huffman != on {
            self.generation += 1;
        }
        self.huffman = on;
    }

    /// The dynamic table's size as RFC 7541 §4.1 counts it (the peer's decoder has the same).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's maximum size, including changes not yet signalled.
    pub fn table_max_size(&self) -> usize {
        self.pending.map_or(self.table.max_size(), |p| p.last)
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Dynamic table entry `i` as (name, value); `i = 0` is the newest (HPACK index 62).
    pub fn table_entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.table.get(i).map(|e| (e.name(), e.value()))
    }

    /// Appends one header block holding `fields`, in order, to `dst`.
    ///
    /// A block that repeats one that left the table unchanged (an RPC's request or
    /// response headers once they are indexed) is copied from memory rather than
    /// encoded field by field: the same bytes, at the cost of comparing the fields.
    pub fn encode<'a, I>(&mut self, fields: I, dst: &mut BytesMut)
    where
        I: IntoIterator<Item = HeaderField<'a>>,
        I::IntoIter: Clone,
    {
        if let Some(pending) = self.pending.take() {
            if pending.min < self.table.max_size() {
                self.size_update(pending.min, dst);
            }
            if pending.last != self.table.max_size() {
                self.size_update(pending.last, dst);
            }
        }
        let fields = fields.into_iter();
        if !self.memo_on {
            for field in fields {
                self.field(field, dst);
            }
            return;
        }
        if self.memo_generation == self.generation {
            if let Some(memo) = self.memos.iter().find(|m| m.matches(fields.clone())) {
                dst.extend_from_slice(&memo.block);
                return;
            }
        } else {
            // The table changed: every remembered block may encode differently now.
            self.memos.clear();
            self.memo_generation = self.generation;
        }
        let start = dst.len();
        for field in fields.clone() {
            self.field(field, dst);
        }
        if self.generation == self.memo_generation {
            self.remember(fields, &dst[start..]);
        }
    }

    /// Keeps `block` as what `fields` encode to while the table stays as it is.
    ///
    /// Once every slot is in use, a new memo takes the oldest slot's buffers: blocks
    /// that leave the table alone yet never repeat (a fresh token in each) cost a copy,
    /// not two allocations, per block.
    fn remember<'a>(
        &mut self,
        fields: impl Iterator<Item = HeaderField<'a>> + Clone,
        block: &[u8],
    ) {
        if fields.clone().map(|f| Memo::key_len(&f)).sum::<usize>() > MEMO_MAX_KEY {
            return;
        }
        if self.memos.len() < MEMO_SLOTS {
            self.memos.push(Memo {
                key: Vec::new(),
                block: Vec::new(),
            });
            self.memo_next = self.memos.len() - 1;
        }
        let memo = &mut self.memos[self.memo_next];
        memo.key.clear();
        for field in fields {
            Memo::push_field(&mut memo.key, &field);
        }
        memo.block.clear();
        memo.block.extend_from_slice(block);
        self.memo_next = (self.memo_next + 1) % MEMO_SLOTS;
    }

    /// Encodes every block field by field (the reference the memo is tested against).
    #[cfg(test)]
    pub(super) fn disable_memo(&mut self) {
        self.memo_on = false;
    }

    /// Blocks remembered now.
    #[cfg(test)]
    pub(super) fn memos(&self) -> usize {
        self.memos.len()
    }

    fn size_update(&mut self, size: usize, dst: &mut BytesMut) {
        integer::encode(dst, 0x20, 5, size);
        self.table.set_max_size(size);
        self.generation += 1;
    }

    fn field(&mut self, field: HeaderField<'_>, dst: &mut BytesMut) {
        let HeaderField {
            name,
            value,
            indexing,
        } = field;
        let indexing = match indexing {
            Indexing::Auto if is_sensitive(name) => Indexing::Never,
            Indexing::Auto
                if entry_size(name.len(), value.len())
                    > self.table.max_size() / AUTO_INDEX_SHARE =>
            {
                Indexing::WithoutIndexing
            }
            Indexing::Auto => Indexing::Incremental,
            other => other,
        };
        let may_index = indexing != Indexing::Never;

        let stat = static_table::find(name, value);
        if may_index && let Some(index) = stat.and_then(|m| m.full) {
            integer::encode(dst, 0x80, 7, index);
            return;
        }
        let (dyn_full, dyn_name) = self.find_dynamic(name, value);
        if may_index && let Some(i) = dyn_full {
            integer::encode(dst, 0x80, 7, dynamic_index(i));
            return;
        }
        // Static names are preferred: their indices are small and never go stale.
        let name_index = stat
            .map(|m| m.name)
            .or(dyn_name.map(dynamic_index))
            .unwrap_or(0);

        let (flags, prefix_bits) = match indexing {
            Indexing::Incremental => (0x40, 6),
            Indexing::Never => (0x10, 4),
            _ => (0x00, 4),
        };
        integer::encode(dst, flags, prefix_bits, name_index);
        if name_index == 0 {
            self.string(name, dst);
        }
        self.string(value, dst);

        if indexing == Indexing::Incremental {
            let mut bytes = Vec::with_capacity(name.len() + value.len());
            bytes.extend_from_slice(name);
            bytes.extend_from_slice(value);
            self.table.insert(OwnedEntry {
                bytes: bytes.into_boxed_slice(),
                name_len: name.len(),
            });
            self.generation += 1;
        }
    }

    /// The newest dynamic entry with this exact field, and the newest with this name.
    ///
    /// A linear scan: every entry is at least 32 bytes, so the default cap bounds it to 128
    /// entries of length-first slice comparisons, cheaper than hashing every field.
    fn find_dynamic(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_match = None;
        for (i, entry) in self.table.iter().enumerate() {
            if entry.name() == name {
                if entry.value() == value {
                    return (Some(i), name_match.or(Some(i)));
                }
                name_match = name_match.or(Some(i));
            }
        }
        (None, name_match)
    }

    /// A string literal (RFC 7541 §5.2).
    fn string(&self, s: &[u8], dst: &mut BytesMut) {
        if self.huffman {
            let len = huffman::encoded_len(s);
            if len <= s.len() {
                integer::encode(dst, 0x80, 7, len);
                huffman::encode(s, dst);
                return;
            }
        }
        integer::encode(dst, 0x00, 7, s.len());
        dst.extend_from_slice(s);
    }
}

fn dynamic_index(i: usize) -> usize {
    static_table::LEN + 1 + i
}

fn is_sensitive(name: &[u8]) -> bool {
    SENSITIVE_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(e: &mut Encoder, fields: &[HeaderField<'_>]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        e.encode(fields.iter().copied(), &mut dst);
        dst.to_vec()
    }

    #[test]
    fn static_full_match_is_one_byte() {
        let mut e = Encoder::new();
        assert_eq!(
            encode(&mut e, &[HeaderField::new(b":method", b"POST")]),
            [0x83]
        );
        assert_eq!(
            encode(&mut e, &[HeaderField::new(b":authority", b"")]),
            [0x81]
        );
        assert_eq!(e.table_len(), 0);
    }

    #[test]
    fn repeated_field_becomes_indexed() {
        let mut e = Encoder::new();
        e.set_huffman(false);
        let f = [HeaderField::new(b"grpc-timeout", b"1S")];
        assert_eq!(encode(&mut e, &f), b"\x40\x0cgrpc-timeout\x021S");
        assert_eq!(encode(&mut e, &f), [0xbe]);
        // Same name, new value: literal with the dynamic name index (62).
        let g = [HeaderField::new(b"grpc-timeout", b"2S")];
        assert_eq!(encode(&mut e, &g), b"\x7e\x022S");
        assert_eq!(e.table_entry(0), Some((&b"grpc-timeout"[..], &b"2S"[..])));
        assert_eq!(e.table_entry(1), Some((&b"grpc-timeout"[..], &b"1S"[..])));
    }

    #[test]
    fn sensitive_names_are_never_indexed() {
        let mut e = Encoder::new();
        e.set_huffman(false);
        for name in [
            &b"authorization"[..],
            b"Proxy-Authorization",
            b"cookie",
            b"set-cookie",
        ] {
            let out = encode(&mut e, &[HeaderField::new(name, b"secret")]);
            assert_eq!(out[0] & 0xf0, 0x10, "{name:?}");
        }
        let out = encode(&mut e, &[HeaderField::sensitive(b"x-token", b"secret")]);
        assert_eq!(out[0], 0x10);
        assert_eq!(e.table_len(), 0);
    }

    #[test]
    fn never_ignores_a_full_match() {
        let mut e = Encoder::new();
        e.set_huffman(false);
        let f = HeaderField {
            name: b"x",
            value: b"y",
            indexing: Indexing::Incremental,
        };
        encode(&mut e, &[f]);
        let out = encode(&mut e, &[HeaderField::sensitive(b"x", b"y")]);
        // Never-indexed literal, name by index 62 (15 + 47 in the continuation byte).
        assert_eq!(out, b"\x1f\x2f\x01y");
    }

    #[test]
    fn large_fields_are_not_indexed_automatically() {
        let mut e = Encoder::new();
        let big = vec![b'v'; 3000];
        let out = encode(&mut e, &[HeaderField::new(b"x-big", &big)]);
        assert_eq!(out[0] & 0xf0, 0x00);
        assert_eq!(e.table_len(), 0);
        // Half the table (2048) is still indexed.
        let half = vec![b'v'; 2048 - 32 - 5];
        encode(&mut e, &[HeaderField::new(b"x-big", &half)]);
        assert_eq!(e.table_size(), 2048);
    }

    #[test]
    fn forced_incremental_larger_than_the_table_empties_it() {
        let mut e = Encoder::new();
        e.set_peer_max_table_size(100);
        encode(
            &mut e,
            &[HeaderField {
                name: b"a",
                value: b"b",
                indexing: Indexing::Incremental,
            }],
        );
        assert_eq!(e.table_len(), 1);
        let big = vec![b'v'; 100];
        encode(
            &mut e,
            &[HeaderField {
                name: b"a",
                value: &big,
                indexing: Indexing::Incremental,
            }],
        );
        assert_eq!((e.table_len(), e.table_size()), (0, 0));
    }

    #[test]
    fn size_updates_are_signalled_once_at_the_start() {
        let mut e = Encoder::new();
        e.set_peer_max_table_size(65536);
        // Capped at 4096: nothing changes.
        assert_eq!(encode(&mut e, &[]), b"");
        e.set_peer_max_table_size(1024);
        assert_eq!(
            encode(&mut e, &[HeaderField::new(b":method", b"GET")]),
            [0x3f, 0xe1, 0x07, 0x82]
        );
        assert_eq!(encode(&mut e, &[]), b"");
        // Shrunk then grown: the minimum, then the final size.
        e.set_peer_max_table_size(0);
        e.set_peer_max_table_size(2048);
        assert_eq!(encode(&mut e, &[]), [0x20, 0x3f, 0xe1, 0x0f]);
        assert_eq!(e.table_max_size(), 2048);
        // Grown then shrunk back: nothing to say.
        e.set_peer_max_table_size(4096);
        e.set_peer_max_table_size(2048);
        assert_eq!(encode(&mut e, &[]), b"");
    }

    #[test]
    fn peer_table_of_zero_never_inserts() {
        let mut e = Encoder::new();
        e.set_peer_max_table_size(0);
        let f = [
            HeaderField::new(b"grpc-timeout", b"1S"),
            HeaderField::new(b"te", b"trailers"),
        ];
        let first = encode(&mut e, &f);
        assert_eq!(first[0], 0x20);
        let second = encode(&mut e, &f);
        assert_eq!(first[1..], second[..]);
        assert_eq!((e.table_len(), e.table_size()), (0, 0));
    }

    #[test]
    fn a_smaller_cap_is_signalled_in_the_first_block() {
        let mut e = Encoder::with_table_cap(1024);
        assert_eq!(e.table_max_size(), 1024);
        assert_eq!(encode(&mut e, &[]), [0x3f, 0xe1, 0x07]);
        e.set_peer_max_table_size(8192);
        assert_eq!(encode(&mut e, &[]), b"");
    }

    #[test]
    fn huffman_only_when_not_longer() {
        let mut e = Encoder::new();
        let f = HeaderField {
            name: b"x",
            value: b"\x00\x00",
            indexing: Indexing::WithoutIndexing,
        };
        // Both strings would grow under Huffman ('x' is 7 bits, but 0x00 is 13).
        assert_eq!(encode(&mut e, &[f]), b"\x00\x81\xf3\x02\x00\x00");
    }
}
