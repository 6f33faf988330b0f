//! grpc-sansio on tokio: the sockets, timers, DNS and tasks around the sans-IO core,
//! and the API a Rust gRPC user expects — a [`Channel`] making the four kinds of call
//! with any [`Codec`], and a [`Server`] serving handlers for them.
//!
//! The adapter decides nothing: every protocol decision is the core's. It moves bytes
//! between sockets and the core, runs the core's timers and executes its actions.

pub mod channel;
pub mod codec;
pub mod driver;
pub mod intercept;
pub mod proxy;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use channel::{BuildError, CallOptions, Channel, ChannelBuilder, Response, Sender, Streaming};
#[cfg(feature = "prost")]
pub use codec::ProstCodec;
pub use codec::{BytesCodec, Codec};
pub use grpc_sansio::grpc::code::Code;
pub use grpc_sansio::grpc::compression::Encoding;
pub use grpc_sansio::grpc::metadata::Metadata;
pub use grpc_sansio::grpc::status::Status;
pub use intercept::{BearerToken, CallCredentials, CallInfo, CallKind, Interceptor};
pub use proxy::{ProxyConfig, ProxyConnector};
pub use server::{Incoming, Outgoing, Reply, Request, Server, ServerBuilder};
#[cfg(feature = "tls")]
pub use tls::{TlsAcceptor, TlsConfig, TlsConnector, serve_tls};
