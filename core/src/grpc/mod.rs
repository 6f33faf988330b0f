//! gRPC on one HTTP/2 stream (grpc/grpc `doc/PROTOCOL-HTTP2.md`): status codes and
//! statuses, metadata, `grpc-timeout`, `grpc-message` encoding, the HTTP/2 → gRPC
//! mapping tables, and the length-prefixed message framing with compression.
//!
//! The client and server call state machines on top of [`crate::h2::Connection`] come
//! next; these are the pieces they are built from.

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
