//! Shared helpers for grpc-sansio's scenario tests (in `tests/tests/`): a seeded random
//! source, an in-memory client/server pair under a virtual clock (the start of the
//! deterministic simulator), a scripted raw-frame peer, and a frame-level view of the
//! pair's wire.

pub mod alloc;
pub mod call_pair;
pub mod net;
pub mod pair;
pub mod rng;
pub mod script;
pub mod sim;
pub mod wire;
