//! Emptied containers kept for reuse, so that steady-state calls draw on memory the last
//! calls left instead of allocating: header lists, send queues, retry buffers.
//!
//! A pool is bounded in count and in the capacity of what it keeps: a container grown by
//! a burst is freed, not kept. While its owner is busy it may keep one container per
//! call in flight, since calls that start together need theirs together; once the owner
//! is idle ([`Spares::trim`]) it keeps only the few a call at a time needs.

use std::collections::VecDeque;

/// A container a [`Spares`] pool can hold.
pub(crate) trait Reusable: Default {
    /// Elements it can hold without allocating.
    fn capacity(&self) -> usize;
    /// Drops its elements, keeping its memory.
    fn clear(&mut self);
}

impl<T> Reusable for Vec<T> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

impl<T> Reusable for VecDeque<T> {
    fn capacity(&self) -> usize {
        VecDeque::capacity(self)
    }
    fn clear(&mut self) {
        VecDeque::clear(self);
    }
}

/// Up to `keep` emptied containers of capacity `1..=max_capacity`, and no more than
/// `idle_keep` after a [`trim`](Self::trim).
#[derive(Debug)]
pub(crate) struct Spares<C> {
    kept: Vec<C>,
    keep: usize,
    idle_keep: usize,
    max_capacity: usize,
}

impl<C: Reusable> Spares<C> {
    /// An empty pool; it allocates nothing until a container is kept.
    pub(crate) fn new(keep: usize, max_capacity: usize) -> Self {
        Self::with_idle(keep, keep, max_capacity)
    }

    /// [`new`](Self::new), keeping only `idle_keep` containers once trimmed.
    pub(crate) fn with_idle(keep: usize, idle_keep: usize, max_capacity: usize) -> Self {
        Spares {
            kept: Vec::new(),
            keep,
            idle_keep: idle_keep.min(keep),
            max_capacity,
        }
    }

    /// The owner is idle: frees all but `idle_keep` containers.
    pub(crate) fn trim(&mut self) {
        if self.kept.len() > self.idle_keep {
            self.kept.truncate(self.idle_keep);
            self.kept.shrink_to_fit();
        }
    }

    /// A kept container, or a new (unallocated) one.
    pub(crate) fn take(&mut self) -> C {
        self.kept.pop().unwrap_or_default()
    }

    /// Empties `c` and keeps it, unless the pool is full or `c` has no memory or too much.
    pub(crate) fn put(&mut self, mut c: C) {
        if self.kept.len() < self.keep && (1..=self.max_capacity).contains(&c.capacity()) {
            c.clear();
            self.kept.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_emptied_containers_within_its_bounds() {
        let mut spares: Spares<Vec<u8>> = Spares::new(2, 8);
        spares.put(Vec::new());
        assert!(spares.kept.is_empty(), "nothing to reuse in an empty Vec");
        spares.put(Vec::with_capacity(64));
        assert!(spares.kept.is_empty(), "grown past the bound: freed");
        let mut v = Vec::with_capacity(4);
        v.extend_from_slice(b"abc");
        let ptr = v.as_ptr();
        spares.put(v);
        spares.put(Vec::with_capacity(4));
        spares.put(Vec::with_capacity(4));
        assert_eq!(spares.kept.len(), 2, "at most `keep`");
        let mut seen = [spares.take(), spares.take()];
        assert!(seen.iter().all(|v| v.is_empty() && v.capacity() >= 4));
        assert!(
            seen.iter().any(|v| v.as_ptr() == ptr),
            "the same memory back"
        );
        seen[0].push(1);
        assert_eq!(spares.take().capacity(), 0, "then new ones");
    }

    #[test]
    fn keeps_one_per_call_while_busy_and_a_few_once_trimmed() {
        let mut spares: Spares<Vec<u8>> = Spares::with_idle(64, 2, 8);
        for _ in 0..100 {
            spares.put(Vec::with_capacity(4));
        }
        assert_eq!(spares.kept.len(), 64);
        spares.trim();
        assert_eq!(spares.kept.len(), 2);
        assert!(
            spares.kept.capacity() < 64,
            "the pool's own list shrinks too"
        );
        // Busy again: it fills up to `keep` once more.
        for _ in 0..10 {
            spares.put(Vec::with_capacity(4));
        }
        assert_eq!(spares.kept.len(), 12);
    }
}
