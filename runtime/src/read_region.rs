//! The memory a connection's reader reads the socket into.

use std::io;

use bytes::BytesMut;
use futures_util::AsyncReadExt;

/// A zeroed region each read's bytes are split off the front of, sized to the reads
/// the connection sees. (`futures-io` reads need initialised memory: zeroing once per
/// region, not per read, keeps that cheap.)
///
/// Consecutive reads from one region are contiguous, so the core joins a frame split
/// across two reads without copying; only at a region switch does it copy the new
/// bytes behind the leftover. So a connection moving bulk data wants large regions
/// (one copy per 256 KiB rather than nearly one per read), while one carrying small
/// calls would only keep a quarter megabyte resident for reads of a few kilobytes.
/// Each new region is therefore four times the largest read of the one before, within
/// [`MIN`](Self::MIN)..=[`MAX`](Self::MAX): a read that fills what it was offered
/// grows the next region fourfold, and a run of small reads shrinks it again.
///
/// A region nothing references any more is read into again in place: a fresh one
/// costs page faults, and the allocator returning the old one to the kernel.
#[derive(Debug, Default)]
pub(crate) struct ReadRegion {
    buf: BytesMut,
    /// The size of the current region (0 before the first read).
    size: usize,
    /// The largest read from the current region.
    largest: usize,
    /// The last read took all it was offered: the socket may hold more.
    filled: bool,
}

impl ReadRegion {
    /// The smallest region: a page. It is zeroed, so resident, as soon as it is
    /// taken; an idle connection should not hold more than a page of it.
    pub(crate) const MIN: usize = 4 * 1024;
    /// The largest region.
    pub(crate) const MAX: usize = 256 * 1024;

    /// Reads once from `reader`; an empty chunk is EOF.
    pub(crate) async fn read<T: futures_io::AsyncRead + Unpin>(
        &mut self,
        reader: &mut T,
    ) -> io::Result<BytesMut> {
        // Less than an eighth left: move on to a new region rather than offer the
        // socket a small read.
        if self.buf.len() < (self.size / 8).max(1) {
            self.next_region();
        }
        let offered = self.buf.len();
        let n = reader.read(&mut self.buf[..]).await?;
        self.largest = self.largest.max(n);
        self.filled = n == offered;
        Ok(self.buf.split_to(n))
    }

    /// True when the last read took all the room it was offered, so the socket may
    /// already hold more.
    pub(crate) fn filled(&self) -> bool {
        self.filled
    }

    /// The size of the current region.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.size
    }

    fn next_region(&mut self) {
        let size = (self.largest.saturating_mul(4))
            .next_power_of_two()
            .clamp(Self::MIN, Self::MAX);
        self.largest = 0;
        let left = self.buf.len();
        // Reuse in place only at the same size: a smaller region must not keep a
        // larger allocation resident.
        if size == self.size && self.buf.try_reclaim(size - left) {
            self.buf.resize(size, 0);
        } else {
            self.buf = BytesMut::zeroed(size);
        }
        self.size = size;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// The output of a future that must complete on its first poll: the sources and
    /// sinks here are always ready.
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("an always-ready future")
    }

    /// A source that always has `per_read` bytes of `fill`.
    struct Endless {
        per_read: usize,
        fill: u8,
    }

    impl futures_io::AsyncRead for Endless {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.per_read);
            buf[..n].fill(self.fill);
            Poll::Ready(Ok(n))
        }
    }

    /// Makes `reads` reads; returns where each read began a new region (its bytes
    /// not right behind the previous read's), keeping the chunks in `hold` if given.
    fn region_starts(
        source: &mut Endless,
        region: &mut ReadRegion,
        reads: usize,
        mut hold: Option<&mut Vec<BytesMut>>,
    ) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut next = None;
        for _ in 0..reads {
            let chunk = ready(region.read(source)).unwrap();
            assert!(chunk.len() <= source.per_read);
            assert!(chunk.iter().all(|&b| b == source.fill));
            let at = chunk.as_ptr() as usize;
            if next != Some(at) {
                starts.push(at);
            }
            next = Some(at + chunk.len());
            if let Some(hold) = hold.as_deref_mut() {
                hold.push(chunk);
            }
        }
        starts
    }

    #[test]
    fn a_region_is_read_into_again_once_nothing_holds_it_and_not_before() {
        let mut region = ReadRegion::default();
        // Reads of 64 KiB grow the regions to 256 KiB, four reads each: 4 KiB, 16
        // KiB, 64 KiB, then a 256 KiB region read to its end.
        let mut source = Endless {
            per_read: 64 * 1024,
            fill: 1,
        };
        region_starts(&mut source, &mut region, 7, None);
        assert_eq!(region.size(), ReadRegion::MAX);
        let mut held = Vec::new();
        let first = region_starts(&mut source, &mut region, 12, Some(&mut held));
        assert_eq!(first.len(), 3, "{first:x?}");
        // Every piece still held: each region is a new allocation.
        let again = region_starts(&mut source, &mut region, 12, Some(&mut held));
        assert_eq!(again.len(), 3, "{again:x?}");
        assert!(
            again.iter().all(|r| !first.contains(r)),
            "{first:x?} {again:x?}"
        );
        // Nothing held any more: every switch starts over in the same region.
        held.clear();
        source.fill = 2;
        let reused = region_starts(&mut source, &mut region, 12, None);
        assert_eq!(reused.len(), 3, "{reused:x?}");
        assert!(
            reused.iter().all(|&r| r == again[2]),
            "{again:x?} {reused:x?}"
        );
    }

    #[test]
    fn regions_grow_to_fit_reads_that_fill_them_and_shrink_after_small_ones() {
        let mut region = ReadRegion::default();
        let mut source = Endless {
            per_read: 1 << 20,
            fill: 3,
        };
        // A socket with more than any region holds: every read fills its region,
        // and the next is four times larger, up to MAX.
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let chunk = ready(region.read(&mut source)).unwrap();
            assert!(region.filled());
            assert_eq!(chunk.len(), region.size());
            sizes.push(region.size());
        }
        assert_eq!(
            sizes,
            [4 << 10, 16 << 10, 64 << 10, 256 << 10, 256 << 10, 256 << 10]
        );
        // Reads of about 1 KB (small calls): the next region is MIN, and stays there.
        source.per_read = 1000;
        let mut seen = Vec::new();
        for _ in 0..600 {
            ready(region.read(&mut source)).unwrap();
            assert!(!region.filled());
            seen.push(region.size());
        }
        assert_eq!(*seen.last().unwrap(), ReadRegion::MIN);
        assert!(seen.iter().filter(|&&s| s == ReadRegion::MAX).count() <= 263);
        // Reads of 8 KiB: the regions settle at four of them, 32 KiB.
        source.per_read = 8 * 1024;
        for _ in 0..8 {
            ready(region.read(&mut source)).unwrap();
        }
        assert_eq!(region.size(), 32 << 10);
    }
}
