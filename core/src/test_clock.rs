//! The single clock read of the core's unit tests.
//!
//! The core never reads a clock; its tests need one `Instant` to build virtual time from
//! (`t0 + Duration`), and `Instant` has no other constructor. Only the differences from
//! this base point ever matter, so the tests stay deterministic.

use std::time::Instant;

/// A base point for virtual time in tests.
pub(crate) fn t0() -> Instant {
    Instant::now()
}
