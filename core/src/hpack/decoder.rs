//! The header block decoder.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::table::{DynamicTable, Entry, entry_size};
use super::{huffman, integer, static_table};

/// Huffman scratch space above this is released after the block that needed it, so one
/// large header does not pin memory for the rest of the connection.
const SCRATCH_RETAIN_LIMIT: usize = 4096;

/// One decoded header field.
///
/// `name` and `value` share memory with what they came from: a raw literal is a slice of
/// the header block, a static-table name is `'static`, and a dynamic-table hit is a
/// reference-counted clone of the table's copy. Only Huffman strings are freshly allocated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// The field name, as sent (HPACK does not check case or characters).
    pub name: Bytes,
    /// The field value, any bytes.
    pub value: Bytes,
    /// The peer sent this as a never-indexed literal (RFC 7541 §6.2.3): anyone forwarding
    /// it must encode it the same way.
    pub never_indexed: bool,
}

/// Why a header block could not be decoded.
///
/// Every variant but [`DecodeError::HeaderListTooLarge`] means the decoder's state may no
/// longer match the peer's encoder: the connection must end with COMPRESSION_ERROR
/// (RFC 9113 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The decoded header list exceeded our SETTINGS_MAX_HEADER_LIST_SIZE. The whole block
    /// was still processed, so the dynamic table is in sync; fields past the limit were
    /// not handed out. A stream error, not a connection error.
    HeaderListTooLarge,
    /// The block ended inside a representation, or a string claimed more bytes than the
    /// block has left.
    Truncated,
    /// A prefix integer used more continuation bytes than HPACK ever needs.
    IntegerTooLong,
    /// Index 0, which names no entry (RFC 7541 §6.1).
    IndexZero,
    /// An index past the end of the dynamic table.
    IndexOutOfRange {
        /// The index as received.
        index: usize,
    },
    /// A Huffman string contained the EOS symbol (RFC 7541 §5.2).
    HuffmanEos,
    /// A Huffman string ended with more than 7 bits of padding.
    HuffmanPaddingTooLong,
    /// A Huffman string's padding was not the most significant bits of EOS (all ones).
    HuffmanPaddingNotEos,
    /// A dynamic table size update after the first field of a block (RFC 7541 §4.2).
    SizeUpdateNotAtStart,
    /// A dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §6.3).
    SizeUpdateTooLarge {
        /// The size the peer asked for.
        size: usize,
        /// Our setting.
        max: usize,
    },
    /// Our SETTINGS_HEADER_TABLE_SIZE went below the table's size, and the block did not
    /// start with a size update that honours it (RFC 7541 §4.2).
    SizeUpdateMissing,
}

impl DecodeError {
    /// True for every error except [`DecodeError::HeaderListTooLarge`]: the connection must
    /// fail with COMPRESSION_ERROR.
    pub fn is_connection_error(&self) -> bool {
        !matches!(self, DecodeError::HeaderListTooLarge)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::HeaderListTooLarge => f.write_str("header list larger than allowed"),
            DecodeError::Truncated => f.write_str("header block truncated"),
            DecodeError::IntegerTooLong => f.write_str("HPACK integer too long"),
            DecodeError::IndexZero => f.write_str("HPACK index 0"),
            DecodeError::IndexOutOfRange { index } => {
                write!(f, "HPACK index {index} past the end of the table")
            }
            DecodeError::HuffmanEos => f.write_str("EOS inside a Huffman string"),
            DecodeError::HuffmanPaddingTooLong => f.write_str("Huffman padding longer than 7 bits"),
            DecodeError::HuffmanPaddingNotEos => f.write_str("Huffman padding is not EOS"),
            DecodeError::SizeUpdateNotAtStart => {
                f.write_str("dynamic table size update after a header field")
            }
            DecodeError::SizeUpdateTooLarge { size, max } => {
                write!(
                    f,
                    "dynamic table size update to {size}, above the limit {max}"
                )
            }
            DecodeError::SizeUpdateMissing => {
                f.write_str("header block lacks the required dynamic table size update")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// A dynamic table entry as the decoder keeps it: its own copy, so the table never holds
/// on to a header block, and what it occupies is what the RFC accounts for.
#[derive(Debug)]
struct SharedEntry {
    name: Bytes,
    value: Bytes,
}

impl Entry for SharedEntry {
    fn name(&self) -> &[u8] {
        &self.name
    }
    fn value(&self) -> &[u8] {
        &self.value
    }
}

/// Where a string that is being decoded lives until it becomes a [`Field`].
enum Text {
    Static(&'static [u8]),
    Shared(Bytes),
    /// A raw literal: this range of the header block.
    Block(Range<usize>),
    /// A Huffman literal: this range of the decoder's scratch buffer.
    Scratch(Range<usize>),
}

impl Text {
    fn len(&self) -> usize {
        match self {
            Text::Static(s) => s.len(),
            Text::Shared(b) => b.len(),
            Text::Block(r) | Text::Scratch(r) => r.len(),
        }
    }

    fn as_slice<'a>(&'a self, block: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self {
            Text::Static(s) => s,
            Text::Shared(b) => b,
            // The ranges were checked against these buffers when they were made.
            Text::Block(r) => block.get(r.clone()).unwrap_or_default(),
            Text::Scratch(r) => scratch.get(r.clone()).unwrap_or_default(),
        }
    }

    fn into_bytes(self, block: &Bytes, scratch: &[u8]) -> Bytes {
        match self {
            Text::Static(s) => Bytes::from_static(s),
            Text::Shared(b) => b,
            Text::Block(r) => {
                // Checked against the block when it was made, so `slice` cannot panic.
                debug_assert!(r.end <= block.len());
                block.slice(r)
            }
            Text::Scratch(r) => Bytes::copy_from_slice(scratch.get(r).unwrap_or_default()),
        }
    }
}

/// How the literal being decoded is to be handled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Literal {
    Incremental,
    WithoutIndexing,
    NeverIndexed,
}

/// Running total of the header list size for one block.
struct ListBudget {
    max: usize,
    used: usize,
    exceeded: bool,
}

impl ListBudget {
    /// Charges a field; false once the list has gone over the limit (that field included).
    fn admit(&mut self, size: usize) -> bool {
        if self.exceeded {
            return false;
        }
        self.used = self.used.saturating_add(size);
        self.exceeded = self.used > self.max;
        !self.exceeded
    }
}

/// An entry found by index.
enum Indexed<'t> {
    Static(&'static [u8], &'static [u8]),
    Dynamic(&'t SharedEntry),
}

/// Decodes header blocks for one direction of one connection.
///
/// Holds the dynamic table the peer's encoder fills. Feed it every header block in the
/// order the peer sent them, each one complete (HEADERS plus any CONTINUATION frames).
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable<SharedEntry>,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the ceiling for the peer's size updates.
    max_table_size: usize,
    /// Our SETTINGS_MAX_HEADER_LIST_SIZE.
    max_header_list_size: usize,
    /// Set when our setting dropped below the table's maximum: the next block must start
    /// with a size update to at most this.
    required_update: Option<usize>,
    /// Where Huffman strings are decoded; cleared after every field.
    scratch: Vec<u8>,
}

impl Decoder {
    /// A decoder for a connection where we advertised `max_table_size` as
    /// SETTINGS_HEADER_TABLE_SIZE and `max_header_list_size` as
    /// SETTINGS_MAX_HEADER_LIST_SIZE (the sum of name + value + 32 over a block's fields).
    ///
    /// The dynamic table starts with `max_table_size` as its maximum.
    pub fn new(max_table_size: usize, max_header_list_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            max_header_list_size,
            required_update: None,
            scratch: Vec::new(),
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE changed (call once the peer has acknowledged it).
    ///
    /// Lowering it below the table's current maximum obliges the peer to start its next
    /// block with a size update to at most the lowest value set since its last block;
    /// the decoder enforces that.
    pub fn set_max_table_size(&mut self, n: usize) {
        self.max_table_size = n;
        if n < self.table.max_size() {
            self.required_update = Some(self.required_update.map_or(n, |m| m.min(n)));
        }
    }

    /// Our SETTINGS_MAX_HEADER_LIST_SIZE changed.
    pub fn set_max_header_list_size(&mut self, n: usize) {
        self.max_header_list_size = n;
    }

    /// The dynamic table's size as RFC 7541 §4.1 counts it.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's maximum size, as last set by the peer's size updates.
    pub fn table_max_size(&self) -> usize {
        self.table.max_size()
    }

    /// Entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Dynamic table entry `i` as (name, value); `i = 0` is the newest (HPACK index 62).
    pub fn table_entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.table.get(i).map(|e| (&e.name[..], &e.value[..]))
    }

    /// Decodes one complete header block, handing each field to `on_field` in order.
    ///
    /// On [`DecodeError::HeaderListTooLarge`] the fields up to the limit have been handed
    /// out, the rest of the block was still decoded into the dynamic table, and the
    /// connection can go on. Any other error is a connection error, and fields handed out
    /// before it should be discarded.
    pub fn decode<F: FnMut(Field)>(
        &mut self,
        block: &Bytes,
        mut on_field: F,
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        self.size_updates(block, &mut pos)?;
        let mut budget = ListBudget {
            max: self.max_header_list_size,
            used: 0,
            exceeded: false,
        };
        let result = self.fields(block, pos, &mut budget, &mut on_field);
        self.scratch.clear();
        if self.scratch.capacity() > SCRATCH_RETAIN_LIMIT {
            self.scratch = Vec::new();
        }
        result?;
        if budget.exceeded {
            Err(DecodeError::HeaderListTooLarge)
        } else {
            Ok(())
        }
    }

    /// The size updates that may open a block (RFC 7541 §4.2).
    fn size_updates(&mut self, block: &[u8], pos: &mut usize) -> Result<(), DecodeError> {
        let mut satisfied = self.required_update.is_none();
        while let Some(&first) = block.get(*pos) {
            if first & 0xe0 != 0x20 {
                break;
            }
            let size = integer::decode(block, pos, 5)?;
            if size > self.max_table_size {
                return Err(DecodeError::SizeUpdateTooLarge {
                    size,
                    max: self.max_table_size,
                });
            }
            if self.required_update.is_some_and(|bound| size <= bound) {
                satisfied = true;
            }
            self.table.set_max_size(size);
        }
        if !satisfied {
            return Err(DecodeError::SizeUpdateMissing);
        }
        self.required_update = None;
        Ok(())
    }

    fn fields<F: FnMut(Field)>(
        &mut self,
        block: &Bytes,
        mut pos: usize,
        budget: &mut ListBudget,
        on_field: &mut F,
    ) -> Result<(), DecodeError> {
        while let Some(&first) = block.get(pos) {
            if first & 0x80 != 0 {
                let index = integer::decode(block, &mut pos, 7)?;
                self.indexed(index, budget, on_field)?;
            } else if first & 0x40 != 0 {
                self.literal(block, &mut pos, 6, Literal::Incremental, budget, on_field)?;
            } else if first & 0x20 != 0 {
                return Err(DecodeError::SizeUpdateNotAtStart);
            } else if first & 0x10 != 0 {
                self.literal(block, &mut pos, 4, Literal::NeverIndexed, budget, on_field)?;
            } else {
                self.literal(
                    block,
                    &mut pos,
                    4,
                    Literal::WithoutIndexing,
                    budget,
                    on_field,
                )?;
            }
            self.scratch.clear();
        }
        Ok(())
    }

    fn lookup(&self, index: usize) -> Result<Indexed<'_>, DecodeError> {
        if index == 0 {
            return Err(DecodeError::IndexZero);
        }
        if let Some((name, value)) = static_table::get(index) {
            return Ok(Indexed::Static(name, value));
        }
        // `static_table::get` answers for 1..=LEN, so here index > LEN.
        self.table
            .get(index - static_table::LEN - 1)
            .map(Indexed::Dynamic)
            .ok_or(DecodeError::IndexOutOfRange { index })
    }

    /// An indexed field (RFC 7541 §6.1).
    fn indexed<F: FnMut(Field)>(
        &self,
        index: usize,
        budget: &mut ListBudget,
        on_field: &mut F,
    ) -> Result<(), DecodeError> {
        let field = match self.lookup(index)? {
            Indexed::Static(name, value) => {
                if !budget.admit(entry_size(name.len(), value.len())) {
                    return Ok(());
                }
                Field {
                    name: Bytes::from_static(name),
                    value: Bytes::from_static(value),
                    never_indexed: false,
                }
            }
            Indexed::Dynamic(entry) => {
                if !budget.admit(entry.size()) {
                    return Ok(());
                }
                Field {
                    name: entry.name.clone(),
                    value: entry.value.clone(),
                    never_indexed: false,
                }
            }
        };
        on_field(field);
        Ok(())
    }

    /// A literal field (RFC 7541 §6.2), `prefix_bits` being its name index's prefix.
    fn literal<F: FnMut(Field)>(
        &mut self,
        block: &Bytes,
        pos: &mut usize,
        prefix_bits: u8,
        kind: Literal,
        budget: &mut ListBudget,
        on_field: &mut F,
    ) -> Result<(), DecodeError> {
        let name_index = integer::decode(block, pos, prefix_bits)?;

        if budget.exceeded && kind != Literal::Incremental {
            // Nobody will see this field and the table does not change: check it, skip it,
            // allocate nothing.
            if name_index == 0 {
                skip_string(block, pos)?;
            } else {
                self.lookup(name_index)?;
            }
            return skip_string(block, pos);
        }

        let name = if name_index == 0 {
            self.read_string(block, pos)?
        } else {
            match self.lookup(name_index)? {
                Indexed::Static(name, _) => Text::Static(name),
                Indexed::Dynamic(entry) => Text::Shared(entry.name.clone()),
            }
        };
        let value = self.read_string(block, pos)?;
        let size = entry_size(name.len(), value.len());
        let admitted = budget.admit(size);

        if kind == Literal::Incremental && self.table.make_room(size) {
            let entry = self.owned_entry(&name, &value, block);
            if admitted {
                on_field(Field {
                    name: entry.name.clone(),
                    value: entry.value.clone(),
                    never_indexed: false,
                });
            }
            self.table.push(entry);
            return Ok(());
        }

        if admitted {
            on_field(Field {
                name: name.into_bytes(block, &self.scratch),
                value: value.into_bytes(block, &self.scratch),
                never_indexed: kind == Literal::NeverIndexed,
            });
        }
        Ok(())
    }

    /// Copies a field into storage of the table's own. Static names stay static; every
    /// other byte is copied, names from older entries included, so that no entry keeps
    /// an evicted entry's memory alive.
    fn owned_entry(&self, name: &Text, value: &Text, block: &[u8]) -> SharedEntry {
        let value_bytes = value.as_slice(block, &self.scratch);
        if let Text::Static(name) = name {
            return SharedEntry {
                name: Bytes::from_static(name),
                value: Bytes::copy_from_slice(value_bytes),
            };
        }
        let name_bytes = name.as_slice(block, &self.scratch);
        // One allocation for both halves.
        let mut buf = BytesMut::with_capacity(name_bytes.len() + value_bytes.len());
        buf.extend_from_slice(name_bytes);
        buf.extend_from_slice(value_bytes);
        let mut name = buf.freeze();
        let value = name.split_off(name_bytes.len());
        SharedEntry { name, value }
    }

    /// A string literal (RFC 7541 §5.2).
    fn read_string(&mut self, block: &[u8], pos: &mut usize) -> Result<Text, DecodeError> {
        let (huffman, range) = string_range(block, pos)?;
        if !huffman {
            return Ok(Text::Block(range));
        }
        let start = self.scratch.len();
        huffman::decode(block.get(range).unwrap_or_default(), &mut self.scratch)?;
        Ok(Text::Scratch(start..self.scratch.len()))
    }
}

/// Reads a string literal's header and returns whether it is Huffman-coded and where its
/// bytes are, after checking that they are all present.
fn string_range(block: &[u8], pos: &mut usize) -> Result<(bool, Range<usize>), DecodeError> {
    let huffman = block.get(*pos).is_some_and(|b| b & 0x80 != 0);
    let len = integer::decode(block, pos, 7)?;
    let start = *pos;
    let end = start
        .checked_add(len)
        .filter(|&end| end <= block.len())
        .ok_or(DecodeError::Truncated)?;
    *pos = end;
    Ok((huffman, start..end))
}

/// Steps over a string literal, validating Huffman coding without keeping the result.
fn skip_string(block: &[u8], pos: &mut usize) -> Result<(), DecodeError> {
    let (huffman, range) = string_range(block, pos)?;
    if huffman {
        huffman::decoded_len(block.get(range).unwrap_or_default())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Bytes {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn decode(d: &mut Decoder, block: &Bytes) -> Result<Pairs, DecodeError> {
        let mut out = Vec::new();
        d.decode(block, |f| out.push((f.name.to_vec(), f.value.to_vec())))?;
        Ok(out)
    }

    fn err(block: &str) -> DecodeError {
        decode(&mut Decoder::new(4096, 1 << 20), &hex(block)).unwrap_err()
    }

    #[test]
    fn errors_by_kind() {
        assert_eq!(err("80"), DecodeError::IndexZero);
        assert_eq!(err("be"), DecodeError::IndexOutOfRange { index: 62 });
        assert_eq!(err("7e0161"), DecodeError::IndexOutOfRange { index: 62 });
        assert_eq!(err("ff"), DecodeError::Truncated);
        assert_eq!(err("00056162"), DecodeError::Truncated);
        assert_eq!(err("1fffffffffffffffffffff01"), DecodeError::IntegerTooLong);
        assert_eq!(err("822082"), DecodeError::SizeUpdateNotAtStart);
        assert_eq!(
            err("3fe1ff0382"),
            DecodeError::SizeUpdateTooLarge {
                size: 65536,
                max: 4096
            }
        );
        assert_eq!(err("00821fff0161"), DecodeError::HuffmanPaddingTooLong);
        assert_eq!(err("0081180161"), DecodeError::HuffmanPaddingNotEos);
        assert_eq!(err("0085fffffffc7f0161"), DecodeError::HuffmanEos);
        for e in [
            DecodeError::Truncated,
            DecodeError::SizeUpdateMissing,
            DecodeError::HuffmanEos,
        ] {
            assert!(e.is_connection_error());
            assert!(!e.to_string().is_empty());
        }
        assert!(!DecodeError::HeaderListTooLarge.is_connection_error());
    }

    #[test]
    fn raw_literals_are_slices_of_the_block() {
        let block = hex("00 03 616263 03 646566");
        let mut d = Decoder::new(4096, 1 << 20);
        let mut fields = Vec::new();
        d.decode(&block, |f| fields.push(f)).unwrap();
        let range = block.as_ptr() as usize..block.as_ptr() as usize + block.len();
        assert!(range.contains(&(fields[0].name.as_ptr() as usize)));
        assert!(range.contains(&(fields[0].value.as_ptr() as usize)));
    }

    #[test]
    fn table_entries_do_not_point_into_the_block() {
        let block = hex("40 03 616263 03 646566");
        let mut d = Decoder::new(4096, 1 << 20);
        d.decode(&block, |_| {}).unwrap();
        let range = block.as_ptr() as usize..block.as_ptr() as usize + block.len();
        let (name, value) = d.table_entry(0).unwrap();
        assert_eq!((name, value), (&b"abc"[..], &b"def"[..]));
        assert!(!range.contains(&(name.as_ptr() as usize)));
        assert!(!range.contains(&(value.as_ptr() as usize)));
    }

    #[test]
    fn never_indexed_flag_follows_the_representation() {
        let mut d = Decoder::new(4096, 1 << 20);
        let mut flags = Vec::new();
        // never-indexed, without indexing, incremental, indexed.
        d.decode(&hex("1001610162 0001610162 4001610162 be"), |f| {
            flags.push(f.never_indexed)
        })
        .unwrap();
        assert_eq!(flags, [true, false, false, false]);
    }

    #[test]
    fn lowered_setting_requires_a_size_update() {
        let mut d = Decoder::new(4096, 1 << 20);
        d.decode(&hex("4001610162"), |_| {}).unwrap();
        d.set_max_table_size(100);
        // A block without the update is refused, and so is an update above the new bound.
        assert_eq!(
            decode(&mut d, &hex("be")),
            Err(DecodeError::SizeUpdateMissing)
        );
        let mut d2 = Decoder::new(4096, 1 << 20);
        d2.set_max_table_size(100);
        assert_eq!(
            decode(&mut d2, &hex("3f45 82")),
            Ok(vec![(b":method".to_vec(), b"GET".to_vec())])
        );

        // Lowered then raised: the update must still reach the lowest value.
        for (block, ok) in [("3fe11f 82", false), ("20 3fe11f 82", true)] {
            let mut d = Decoder::new(4096, 1 << 20);
            d.decode(&hex("4001610162"), |_| {}).unwrap();
            d.set_max_table_size(0);
            d.set_max_table_size(4096);
            let r = decode(&mut d, &hex(block));
            if !ok {
                assert_eq!(r, Err(DecodeError::SizeUpdateMissing));
                continue;
            }
            assert_eq!(r.unwrap().len(), 1);
            assert_eq!((d.table_len(), d.table_max_size()), (0, 4096));
            // Once satisfied, later blocks need none.
            assert_eq!(decode(&mut d, &hex("82")).unwrap().len(), 1);
        }
    }

    #[test]
    fn raising_the_setting_requires_nothing() {
        let mut d = Decoder::new(100, 1 << 20);
        d.set_max_table_size(4096);
        assert_eq!(decode(&mut d, &hex("82")).unwrap().len(), 1);
        assert_eq!(d.table_max_size(), 100);
        assert_eq!(decode(&mut d, &hex("3fe11f")).unwrap().len(), 0);
        assert_eq!(d.table_max_size(), 4096);
    }

    #[test]
    fn header_list_limit_counts_the_field_that_crosses_it() {
        // ":method: GET" is 7 + 3 + 32 = 42 bytes.
        let mut d = Decoder::new(4096, 84);
        assert_eq!(decode(&mut d, &hex("8282")).unwrap().len(), 2);
        let mut seen = 0;
        assert_eq!(
            d.decode(&hex("828282"), |_| seen += 1),
            Err(DecodeError::HeaderListTooLarge)
        );
        assert_eq!(seen, 2);
        // The next block starts a fresh count.
        assert_eq!(decode(&mut d, &hex("8282")).unwrap().len(), 2);
        d.set_max_header_list_size(41);
        assert_eq!(
            decode(&mut d, &hex("82")),
            Err(DecodeError::HeaderListTooLarge)
        );
    }

    #[test]
    fn compression_errors_win_over_the_list_limit() {
        let mut d = Decoder::new(4096, 40);
        assert_eq!(decode(&mut d, &hex("82 80")), Err(DecodeError::IndexZero));
        // Even in fields that are skipped.
        assert_eq!(
            decode(&mut d, &hex("82 0081180161")),
            Err(DecodeError::HuffmanPaddingNotEos)
        );
        assert_eq!(
            decode(&mut d, &hex("82 0f2f0161")),
            Err(DecodeError::IndexOutOfRange { index: 62 })
        );
    }

    #[test]
    fn huffman_scratch_is_released_after_a_large_block() {
        let mut d = Decoder::new(4096, 1 << 20);
        let mut block = BytesMut::new();
        integer::encode(&mut block, 0, 4, 0);
        integer::encode(&mut block, 0, 7, 1);
        block.extend_from_slice(b"a");
        let value = vec![b'a'; 20_000];
        integer::encode(&mut block, 0x80, 7, huffman::encoded_len(&value));
        huffman::encode(&value, &mut block);
        let fields = decode(&mut d, &block.freeze()).unwrap();
        assert_eq!(fields[0].1, value);
        assert!(d.scratch.capacity() <= SCRATCH_RETAIN_LIMIT);
    }
}
