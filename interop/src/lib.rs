//! The gRPC interop test client and server (grpc/grpc
//! `doc/interop-test-descriptions.md`) on grpc-sansio: the `grpc.testing` messages
//! ([`proto`]), the TestService ([`server`]) and the client test cases
//! ([`client_cases`]), shared by the `interop-server` and `interop-client` binaries and
//! by the in-process interop tests against other gRPC implementations.

pub mod client_cases;
pub mod flags;
pub mod proto;
pub mod report;
pub mod server;
#[cfg(feature = "tonic-peer")]
pub mod tonic_peer;

/// The fully-qualified name of the interop test service.
pub const SERVICE: &str = "grpc.testing.TestService";

/// `/grpc.testing.TestService/<method>`.
pub fn method_path(method: &str) -> String {
    format!("/{SERVICE}/{method}")
}
