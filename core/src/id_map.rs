//! Hash maps keyed by small integer ids: stream ids and call ids.
//!
//! Every call looks its state up a dozen times across the layers; SipHash made those
//! lookups about 4 % of a unary client's CPU. The ids are counters (ours) or stream
//! ids the peer must raise monotonically, so a multiplicative hash spreads them well,
//! and a fixed hasher keeps iteration order, and so event order, deterministic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by ids, hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing of integer ids: multiplying by 2⁶⁴/φ spreads consecutive ids
/// (and consecutive odd stream ids) over the product's high bits. `finish` swaps the
/// halves because the table takes its bucket from the low bits, where an odd id
/// times an odd constant would always be odd (half the buckets never chosen). Not for
/// keys an attacker picks freely.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(32) ^ n).wrapping_mul(GOLDEN);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash<T: std::hash::Hash>(v: T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(v)
    }

    #[test]
    fn consecutive_ids_spread_over_the_buckets_of_a_table() {
        // hashbrown takes the bucket from the low bits and a tag from the top 7.
        for (step, n) in [(1u64, 64u64), (2, 64), (1, 1024), (2, 1024)] {
            let mut low: Vec<u64> = (0..n).map(|i| hash(1 + i * step) % n).collect();
            low.sort_unstable();
            low.dedup();
            assert!(
                low.len() as u64 * 4 >= n * 3,
                "step {step}: {} of {n}",
                low.len()
            );
        }
        let tags: std::collections::HashSet<u64> =
            (0..64u32).map(|i| hash(2 * i + 1) >> 57).collect();
        assert!(tags.len() > 32, "{} distinct tags", tags.len());
    }

    #[test]
    fn the_same_id_always_hashes_the_same_and_widths_agree() {
        assert_eq!(hash(7u32), hash(7u32));
        assert_eq!(hash(7u32), hash(7u64));
        assert_ne!(hash(7u64), hash(9u64));
        let mut map: IdMap<u64, &str> = IdMap::default();
        map.insert(1, "a");
        map.insert(3, "b");
        assert_eq!(map.get(&3), Some(&"b"));
    }
}
