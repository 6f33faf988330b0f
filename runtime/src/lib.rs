//! The runtime-neutral half of grpc-sansio's adapters: the API a Rust gRPC user
//! expects — a [`Channel`] making the four kinds of call with any [`Codec`], a
//! [`Server`] serving handlers for them — and the tasks under them (per connection a
//! reader and a loopy writer, a timer, a resolver), TLS and the CONNECT proxy, written
//! once over the small [`Runtime`] trait.
//!
//! Users depend on an adapter, which implements [`Runtime`] and names these types for
//! its runtime: `grpc-sansio-tokio` (`grpc_sansio_tokio::Channel` is
//! `Channel<Tokio>`), `grpc-sansio-async-std` (async-std and smol). A runtime of your
//! own needs only an implementation of [`Runtime`].
//!
//! Nothing here decides protocol matters: every decision is the core's
//! (`grpc-sansio`). This layer moves bytes between sockets and the core, runs the
//! core's timers and executes its actions.

pub mod channel;
pub mod codec;
pub mod driver;
pub mod intercept;
pub mod proxy;
mod read_region;
pub mod rt;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

pub use channel::{BuildError, CallOptions, Channel, ChannelBuilder, Response, Sender, Streaming};
#[cfg(feature = "prost")]
pub use codec::ProstCodec;
pub use codec::{BytesCodec, Codec};
pub use driver::{Connector, PlainConnector, Resolver};
pub use grpc_sansio::grpc::code::Code;
pub use grpc_sansio::grpc::compression::Encoding;
pub use grpc_sansio::grpc::metadata::Metadata;
pub use grpc_sansio::grpc::status::Status;
pub use intercept::{BearerToken, CallCredentials, CallInfo, CallKind, Interceptor};
pub use proxy::{ProxyConfig, ProxyConnector};
pub use rt::{BoxFuture, Dialer, Halves, Io, Runtime};
pub use server::{Incoming, Outgoing, Reply, Request, Server, ServerBuilder};
#[cfg(feature = "tls")]
pub use tls::{TlsAcceptor, TlsConfig, TlsConnector};

/// Names the API's types for one runtime: `Channel`, `ChannelBuilder`, `Streaming<C>`,
/// `Sender<C>`, `Server`, `ServerBuilder`, `Incoming<C>` and `Outgoing<C>` as aliases
/// of this crate's generic types. An adapter invokes it once per runtime it offers:
/// `grpc_sansio_runtime::runtime_aliases!(Tokio, "tokio");`.
#[macro_export]
macro_rules! runtime_aliases {
    ($rt:ty, $name:literal) => {
        #[doc = concat!("A client channel on ", $name, ".")]
        pub type Channel = $crate::Channel<$rt>;
        /// Builds a [`Channel`].
        pub type ChannelBuilder = $crate::ChannelBuilder<$rt>;
        /// The responses of a streaming call.
        pub type Streaming<C> = $crate::Streaming<C, $rt>;
        /// The requests of a bidi call.
        pub type Sender<C> = $crate::Sender<C, $rt>;
        #[doc = concat!("A gRPC server on ", $name, ".")]
        pub type Server = $crate::Server<$rt>;
        /// Builds a [`Server`].
        pub type ServerBuilder = $crate::ServerBuilder<$rt>;
        /// The requests of a call, for a streaming handler.
        pub type Incoming<C> = $crate::Incoming<C, $rt>;
        /// The responses of a call, for a streaming handler.
        pub type Outgoing<C> = $crate::Outgoing<C, $rt>;
    };
}
