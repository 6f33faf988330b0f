//! gRPC on one HTTP/2 stream (grpc/grpc `doc/PROTOCOL-HTTP2.md`): status codes and
//! statuses, metadata, `grpc-timeout`, `grpc-message` encoding, the HTTP/2 → gRPC
//! mapping tables, and the length-prefixed message framing with compression.
//!
//! [`transport`] builds the client and server call state machines from these pieces on
//! top of [`crate::h2::Connection`].

pub mod client;
pub mod code;
pub mod compression;
pub mod mapping;
pub mod message;
pub mod metadata;
pub mod percent;
mod release;
pub mod server;
pub mod status;
pub mod timeout;
pub mod transport;
