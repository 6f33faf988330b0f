//! The dynamic table (RFC 7541 §2.3.2, §4): newest entry first, evicted from the oldest
//! end, sized by the RFC's accounting rather than by what the entries happen to occupy.

use std::collections::VecDeque;

/// Bytes RFC 7541 §4.1 charges per dynamic table entry on top of its name and value;
/// SETTINGS_MAX_HEADER_LIST_SIZE counts fields the same way (RFC 9113 §6.5.2).
pub const ENTRY_OVERHEAD: usize = 32;

/// An entry's size as RFC 7541 §4.1 counts it.
#[inline]
pub(super) fn entry_size(name_len: usize, value_len: usize) -> usize {
    name_len
        .saturating_add(value_len)
        .saturating_add(ENTRY_OVERHEAD)
}

/// What the decoder and the encoder each store per entry.
pub(super) trait Entry {
    fn name(&self) -> &[u8];
    fn value(&self) -> &[u8];
    #[inline]
    fn size(&self) -> usize {
        entry_size(self.name().len(), self.value().len())
    }
}

#[derive(Debug)]
pub(super) struct DynamicTable<E> {
    /// Index 0 is the newest entry.
    entries: VecDeque<E>,
    /// Sum of the entries' sizes; never above `max_size`.
    size: usize,
    max_size: usize,
}

impl<E: Entry> DynamicTable<E> {
    pub(super) fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    #[inline]
    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`, newest first.
    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<&E> {
        self.entries.get(i)
    }

    /// Newest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &E> {
        self.entries.iter()
    }

    /// A dynamic table size update: evicts until the table fits (§4.3).
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
        if self.entries.is_empty() {
            // A table emptied for good (size 0) should not keep its peak capacity.
            self.entries.shrink_to_fit();
        }
    }

    /// Makes room for an entry of `size` bytes. Returns false when it can never fit: the
    /// table is then empty and the entry must not be added (§4.4).
    pub(super) fn make_room(&mut self, size: usize) -> bool {
        match self.max_size.checked_sub(size) {
            Some(room) => {
                self.evict_to(room);
                true
            }
            None => {
                self.entries.clear();
                self.size = 0;
                false
            }
        }
    }

    /// Adds the newest entry. The caller has made room for it with [`Self::make_room`].
    pub(super) fn push(&mut self, entry: E) {
        self.size += entry.size();
        debug_assert!(self.size <= self.max_size);
        self.entries.push_front(entry);
    }

    /// Adds an entry, evicting as needed; one larger than the table empties it instead.
    pub(super) fn insert(&mut self, entry: E) {
        if self.make_room(entry.size()) {
            self.push(entry);
        }
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(old) => self.size -= old.size(),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(&'static [u8], &'static [u8]);
    impl Entry for E {
        fn name(&self) -> &[u8] {
            self.0
        }
        fn value(&self) -> &[u8] {
            self.1
        }
    }

    fn names(t: &DynamicTable<E>) -> Vec<&'static [u8]> {
        t.iter().map(|e| e.0).collect()
    }

    #[test]
    fn evicts_oldest_first() {
        // Each entry is 1 + 1 + 32 = 34 bytes; three fit in 102.
        let mut t = DynamicTable::new(102);
        t.insert(E(b"a", b"1"));
        t.insert(E(b"b", b"2"));
        t.insert(E(b"c", b"3"));
        assert_eq!((t.len(), t.size()), (3, 102));
        t.insert(E(b"d", b"4"));
        assert_eq!(names(&t), [b"d", b"c", b"b"]);
        assert_eq!(t.size(), 102);
    }

    #[test]
    fn shrinking_evicts_and_zero_empties() {
        let mut t = DynamicTable::new(200);
        t.insert(E(b"a", b"1"));
        t.insert(E(b"b", b"2"));
        t.set_max_size(40);
        assert_eq!(names(&t), [b"b"]);
        t.set_max_size(0);
        assert_eq!((t.len(), t.size()), (0, 0));
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut t = DynamicTable::new(40);
        t.insert(E(b"a", b"1"));
        t.insert(E(b"name", b"a value too long"));
        assert_eq!((t.len(), t.size()), (0, 0));
        // Exactly the table size fits.
        t.insert(E(b"abc", b"defgh"));
        assert_eq!((t.len(), t.size()), (1, 40));
    }
}
