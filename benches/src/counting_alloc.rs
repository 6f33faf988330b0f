//! A global allocator for the bench binaries that forwards to the system allocator and,
//! while counting is on, keeps a tally of live bytes, live blocks and allocation calls.
//!
//! Each bench binary installs it with
//! `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`. Counting is off
//! while criterion times: a shared atomic add on every allocation would tax the
//! small-call benches, which allocate a few dozen times per call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering::Relaxed};

/// The system allocator, observed.
#[derive(Debug)]
pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn tally(bytes: isize, blocks: isize, calls: u64) {
    if COUNTING.load(Relaxed) {
        LIVE_BYTES.fetch_add(bytes, Relaxed);
        LIVE_BLOCKS.fetch_add(blocks, Relaxed);
        ALLOCATIONS.fetch_add(calls, Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the tally only observes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            tally(layout.size() as isize, 1, 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            tally(layout.size() as isize, 1, 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        tally(-(layout.size() as isize), -1, 0);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // A reallocation is an allocator call like any other for the per-call count.
            tally(new_size as isize - layout.size() as isize, 0, 1);
        }
        p
    }
}

/// Turns the tally on or off.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Relaxed);
}

/// Live bytes and blocks counted so far, as requested from the allocator (its own
/// per-block overhead, 8 to 16 bytes with glibc, comes on top).
pub fn live() -> (isize, isize) {
    (LIVE_BYTES.load(Relaxed), LIVE_BLOCKS.load(Relaxed))
}

/// Allocation and reallocation calls counted so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}
