//! Shared helpers for grpc-sansio's scenario tests (in `tests/tests/`).
