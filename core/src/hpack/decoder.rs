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

/// One decoded header field, borrowed from the decoder for the length of a callback.
///
/// Reading [`name`](FieldRef::name) and [`value`](FieldRef::value) costs nothing: they
/// point into the header block, the static table, the dynamic table or the decoder's
/// Huffman scratch space. [`name_bytes`](FieldRef::name_bytes),
/// [`value_bytes`](FieldRef::value_bytes) and [`to_field`](FieldRef::to_field) make owned
/// [`Bytes`] only when asked, so a caller that parses `:status` or `grpc-status` in place
/// pays for no reference count or allocation.
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'a> {
    name: Src<'a>,
    value: Src<'a>,
    never_indexed: bool,
    block: &'a Bytes,
}

/// Where a borrowed string lives.
#[derive(Clone, Copy, Debug)]
enum Src<'a> {
    Static(&'static [u8]),
    /// A dynamic table entry's own copy.
    Table(&'a Bytes),
    /// A raw literal: this slice of the header block.
    Block(&'a [u8]),
    /// A Huffman literal decoded into scratch space.
    Scratch(&'a [u8]),
}

impl<'a> Src<'a> {
    #[inline]
    fn as_slice(&self) -> &'a [u8] {
        match *self {
            Src::Static(s) => s,
            Src::Table(b) => b,
            Src::Block(s) | Src::Scratch(s) => s,
        }
    }

    #[inline]
    fn to_bytes(self, block: &Bytes) -> Bytes {
        match self {
            Src::Static(s) => Bytes::from_static(s),
            Src::Table(b) => b.clone(),
            // `s` was cut from `block`, so this shares its memory rather than copying.
            Src::Block(s) => block.slice_ref(s),
            Src::Scratch(s) => Bytes::copy_from_slice(s),
        }
    }
}

impl<'a> FieldRef<'a> {
    /// The field name, as sent (HPACK does not check case or characters).
    #[inline]
    pub fn name(&self) -> &'a [u8] {
        self.name.as_slice()
    }

    /// The field value, any bytes.
    #[inline]
    pub fn value(&self) -> &'a [u8] {
        self.value.as_slice()
    }

    /// The peer sent this as a never-indexed literal (RFC 7541 §6.2.3).
    #[inline]
    pub fn never_indexed(&self) -> bool {
        self.never_indexed
    }

    /// The name as owned [`Bytes`]: static, shared with the table or the block, or (for
    /// a Huffman-coded name) a new copy.
    #[inline]
    pub fn name_bytes(&self) -> Bytes {
        self.name.to_bytes(self.block)
    }

    /// The value as owned [`Bytes`], shared where it can be, as for the name.
    #[inline]
    pub fn value_bytes(&self) -> Bytes {
        self.value.to_bytes(self.block)
    }

    /// The whole field, owned.
    #[inline]
    pub fn to_field(&self) -> Field {
        Field {
            name: self.name_bytes(),
            value: self.value_bytes(),
            never_indexed: self.never_indexed,
        }
    }
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
        self.src(block, scratch).as_slice()
    }

    fn src<'a>(&'a self, block: &'a [u8], scratch: &'a [u8]) -> Src<'a> {
        match self {
            Text::Static(s) => Src::Static(s),
            Text::Shared(b) => Src::Table(b),
            // The ranges were checked against these buffers when they were made.
            Text::Block(r) => Src::Block(block.get(r.clone()).unwrap_or_default()),
            Text::Scratch(r) => Src::Scratch(scratch.get(r.clone()).unwrap_or_default()),
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
    #[inline]
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

    /// Decodes one complete header block, handing each field to `on_field` in order as
    /// an owned [`Field`]. A convenience over [`decode_ref`](Decoder::decode_ref), which
    /// is faster when the caller keeps only some fields.
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
        self.decode_ref(block, |field| on_field(field.to_field()))
    }

    /// Decodes one complete header block, lending each field to `on_field` in order.
    ///
    /// Errors as for [`decode`](Decoder::decode).
    pub fn decode_ref<F: FnMut(FieldRef<'_>)>(
        &mut self,
        block: &Bytes,
        mut on_field: F,
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        if self.required_update.is_some() || block.first().is_some_and(|&b| b & 0xe0 == 0x20) {
            self.size_updates(block, &mut pos)?;
        }
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

    /// The size updates that may open a block (RFC 7541 §4.2). Rare, so kept out of
    /// line from the per-block path.
    #[cold]
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

    #[inline]
    fn fields<F: FnMut(FieldRef<'_>)>(
        &mut self,
        block: &Bytes,
        mut pos: usize,
        budget: &mut ListBudget,
        on_field: &mut F,
    ) -> Result<(), DecodeError> {
        while let Some(&first) = block.get(pos) {
            if first & 0x80 != 0 {
                // Most fields of a warm connection are one-byte indices.
                let index = if first != 0xff {
                    pos += 1;
                    usize::from(first & 0x7f)
                } else {
                    integer::decode(block, &mut pos, 7)?
                };
                self.indexed(index, block, budget, on_field)?;
                // Indexed fields never touch the Huffman scratch space.
                continue;
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

    #[inline]
    fn lookup(&self, index: usize) -> Result<Indexed<'_>, DecodeError> {
        if index > static_table::LEN {
            return self
                .table
                .get(index - static_table::LEN - 1)
                .map(Indexed::Dynamic)
                .ok_or(DecodeError::IndexOutOfRange { index });
        }
        static_table::get(index)
            .map(|(name, value)| Indexed::Static(name, value))
            // `static_table::get` answers for 1..=LEN, so only 0 is left.
            .ok_or(DecodeError::IndexZero)
    }

    /// An indexed field (RFC 7541 §6.1).
    #[inline]
    fn indexed<F: FnMut(FieldRef<'_>)>(
        &self,
        index: usize,
        block: &Bytes,
        budget: &mut ListBudget,
        on_field: &mut F,
    ) -> Result<(), DecodeError> {
        let (name, value, size) = match self.lookup(index)? {
            Indexed::Static(name, value) => (
                Src::Static(name),
                Src::Static(value),
                entry_size(name.len(), value.len()),
            ),
            Indexed::Dynamic(entry) => (
                Src::Table(&entry.name),
                Src::Table(&entry.value),
                entry.size(),
            ),
        };
        if budget.admit(size) {
            on_field(FieldRef {
                name,
                value,
                never_indexed: false,
                block,
            });
        }
        Ok(())
    }

    /// A literal field (RFC 7541 §6.2), `prefix_bits` being its name index's prefix.
    fn literal<F: FnMut(FieldRef<'_>)>(
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
            self.table.push(entry);
            if admitted && let Some(entry) = self.table.get(0) {
                // Handed out from the table's copy, so owning it costs a reference count.
                on_field(FieldRef {
                    name: Src::Table(&entry.name),
                    value: Src::Table(&entry.value),
                    never_indexed: false,
                    block,
                });
            }
            return Ok(());
        }

        if admitted {
            on_field(FieldRef {
                name: name.src(block, &self.scratch),
                value: value.src(block, &self.scratch),
                never_indexed: kind == Literal::NeverIndexed,
                block,
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
    fn borrowed_fields_match_owned_ones_and_raw_literals_share_the_block() {
        // RFC 7541 C.3.3's block after C.3.1 and C.3.2 (raw literals, dynamic hits).
        let blocks = [
            hex("828684410f7777772e6578616d706c652e636f6d"),
            hex("828684be58086e6f2d6361636865"),
            hex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"),
        ];
        let mut owned = Decoder::new(4096, 1 << 20);
        let mut borrowed = Decoder::new(4096, 1 << 20);
        for block in &blocks {
            let mut a = Vec::new();
            owned.decode(block, |f| a.push(f)).unwrap();
            let mut b = Vec::new();
            let range = block.as_ptr_range();
            borrowed
                .decode_ref(block, |f| {
                    assert_eq!(f.name_bytes(), f.name());
                    let value = f.value_bytes();
                    assert_eq!(value, f.value());
                    b.push((f.to_field(), range.contains(&value.as_ptr())));
                })
                .unwrap();
            assert_eq!(a, b.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>());
            // Every literal in C.3 is indexed, so each comes from the table's own copy:
            // the table must never pin the block.
            assert!(b.iter().all(|(_, in_block)| !in_block));
        }
        // A literal without indexing, raw: its value is a slice of the block.
        let block = hex("0f2b03666f6f");
        let mut d = Decoder::new(4096, 1 << 20);
        let range = block.as_ptr_range();
        let mut seen = 0;
        d.decode_ref(&block, |f| {
            assert_eq!(f.name(), b"user-agent");
            assert_eq!(f.value(), b"foo");
            assert!(range.contains(&f.value_bytes().as_ptr()));
            seen += 1;
        })
        .unwrap();
        assert_eq!(seen, 1);
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
