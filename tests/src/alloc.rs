//! A tracking allocator for tests that assert memory rather than assume it.
//!
//! A test binary installs it with `#[global_allocator] static A: Tracking = Tracking;`
//! and wraps the code under test in [`measure`]. Counts are per thread, so tests running
//! in parallel do not see each other's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, with per-thread bookkeeping of what it hands out.
pub struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(size as isize);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let _ = COUNT.try_with(|count| count.set(count.get() + 1));
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

fn on_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub(size as isize)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping only
// touches allocation-free thread-locals.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            on_free(layout.size());
            on_alloc(new_size);
        }
        new
    }
}

/// What a measured closure cost this thread.
#[derive(Debug)]
pub struct Cost {
    /// Allocations made (a realloc counts as one).
    pub count: usize,
    /// The largest single allocation.
    pub largest: usize,
    /// The most bytes live beyond the starting point at any moment.
    pub peak: usize,
    /// Bytes live at the end less those at the start: negative when `f` freed more
    /// than it kept.
    pub net: isize,
}

/// Runs `f` and returns its result with what it allocated on this thread. Meaningful
/// only in a binary that installed [`Tracking`] as its global allocator.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Cost) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let count = COUNT.with(Cell::get);
    LARGEST.with(|l| l.set(0));
    let out = f();
    let cost = Cost {
        count: COUNT.with(Cell::get) - count,
        largest: LARGEST.with(Cell::get),
        peak: usize::try_from(PEAK.with(Cell::get) - start).unwrap_or(0),
        net: LIVE.with(Cell::get) - start,
    };
    (out, cost)
}
