//! grpc-sansio: the sans-IO core of a gRPC-over-HTTP/2 stack.
//!
//! Everything here is a pure state machine or codec: bytes and time go in, bytes and
//! events come out. Nothing reads a clock, touches a socket, spawns a thread or keeps
//! global state; the adapter crates do that. See `DESIGN.md` for the layer map.
//!
//! The layers, bottom up:
//! - [`frame`]: the RFC 9113 frame codec (streaming decoder, encoder, validation).
//! - [`hpack`]: the RFC 7541 header compression codec.
//! - [`h2`]: one HTTP/2 connection (client or server) as a state machine.
//! - [`grpc`]: gRPC call semantics (statuses, metadata, messages) and the call
//!   transports over one connection ([`grpc::transport`]).
//! - [`channel`]: the client channel: targets, service config, resolvers, balancers,
//!   subchannels with backoff, picks, and the connections they own.

mod ascii;
pub mod channel;
pub mod error_code;
pub mod frame;
pub mod grpc;
pub mod h2;
pub mod hpack;
pub mod id_map;
mod spares;

pub use error_code::ErrorCode;

#[cfg(test)]
mod test_clock;
