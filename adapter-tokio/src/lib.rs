//! grpc-sansio on tokio: the sockets, timers, DNS and tasks around the sans-IO core,
//! and the API a Rust gRPC user expects — a [`Channel`] making the four kinds of call
//! with any [`Codec`], and a [`Server`] serving handlers for them.
//!
//! The adapter decides nothing: every protocol decision is the core's. It moves bytes
//! between sockets and the core, runs the core's timers and executes its actions.
//!
//! ```no_run
//! use bytes::Bytes;
//! use grpc_sansio_tokio::{BytesCodec, CallOptions, Channel, Reply, Request, Server};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // A server with one unary method.
//! let server = Server::builder()
//!     .unary::<BytesCodec, _, _>("/demo.Echo/Unary", |req: Request<Bytes>| async move {
//!         Ok(Reply::new(req.message))
//!     })
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! let serving = server.clone();
//! tokio::spawn(async move { serving.serve(listener).await });
//!
//! // A channel, connected, and a call with a deadline.
//! let channel = Channel::builder("dns:///localhost:50051").connect().await?;
//! let reply = channel
//!     .unary::<BytesCodec>(
//!         "/demo.Echo/Unary",
//!         Bytes::from_static(b"hello"),
//!         CallOptions::new().timeout(std::time::Duration::from_secs(1)),
//!     )
//!     .await?;
//! assert_eq!(reply.message, Bytes::from_static(b"hello"));
//! # Ok(())
//! # }
//! ```

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
