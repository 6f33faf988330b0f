//! grpc-sansio on smol: the [`Smol`] runtime and the API types named for it
//! (`grpc_sansio_async_std::smol::Channel` is `grpc_sansio_runtime::Channel<Smol>`).
//!
//! ```no_run
//! use bytes::Bytes;
//! use grpc_sansio_async_std::smol::{Channel, Server};
//! use grpc_sansio_async_std::{BytesCodec, CallOptions, Reply, Request};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let server = Server::builder()
//!         .unary::<BytesCodec, _, _>("/demo.Echo/Unary", |req: Request<Bytes>| async move {
//!             Ok(Reply::new(req.message))
//!         })
//!         .build();
//!     let listener = async_net::TcpListener::bind("127.0.0.1:50051").await?;
//!     let serving = server.clone();
//!     smol::spawn(async move { serving.serve(listener).await }).detach();
//!
//!     let channel = Channel::builder("dns:///localhost:50051").connect().await?;
//!     let reply = channel
//!         .unary::<BytesCodec>("/demo.Echo/Unary", Bytes::from_static(b"hi"), CallOptions::new())
//!         .await?;
//!     assert_eq!(reply.message, Bytes::from_static(b"hi"));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use grpc_sansio::channel::target::Address;
#[cfg(feature = "tls")]
use grpc_sansio_runtime::TlsAcceptor;
use grpc_sansio_runtime::{Io, Runtime};

use crate::{connect_unix, tcp};

grpc_sansio_runtime::runtime_aliases!(Smol, "smol");

/// The smol runtime, as grpc-sansio uses it: smol's global executor, async-net's
/// sockets and resolver, and async-io's timers. Usable from any thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Smol;

impl Runtime for Smol {
    type Listener = async_net::TcpListener;

    fn current() -> Self {
        Smol
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        ::smol::spawn(task).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        crate::sleep_until(deadline)
    }

    fn connect(
        &self,
        address: &Address,
    ) -> impl Future<Output = io::Result<Box<dyn Io>>> + Send + 'static {
        let address = address.clone();
        async move { connect_plain(&address).await }
    }

    fn lookup(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        let host = host.to_owned();
        async move { async_net::resolve((host.as_str(), port)).await }
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Box<dyn Io>, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        // gRPC frames are small and latency-bound.
        let _ = stream.set_nodelay(true);
        Ok((tcp(stream), peer))
    }
}

/// Opens a plain socket to `address` with async-net: TCP with TCP_NODELAY, or a unix
/// socket (abstract names on Linux).
pub async fn connect_plain(address: &Address) -> io::Result<Box<dyn Io>> {
    use async_net::TcpStream;
    let stream = match address {
        Address::Socket(a) => TcpStream::connect(*a).await?,
        Address::Name { host, port } => TcpStream::connect((host.as_str(), *port)).await?,
        other => return connect_unix(other).await,
    };
    stream.set_nodelay(true)?;
    Ok(tcp(stream))
}

/// Accepts TCP connections on `listener` and serves each on `server` after its TLS
/// handshake, until the server shuts down ([`Server::serve_tls`]).
#[cfg(feature = "tls")]
pub async fn serve_tls(
    server: &Server,
    listener: async_net::TcpListener,
    acceptor: TlsAcceptor,
) -> io::Result<()> {
    server.serve_tls(listener, acceptor).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tcp_streams_keep_vectored_writes_timers_and_lookup() {
        ::smol::block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepting = ::smol::spawn(async move {
                let (s, _) = Smol.accept(&listener).await.unwrap();
                crate::tests::assert_tcp_halves(s).await;
            });
            crate::tests::assert_tcp_halves(connect_plain(&Address::Socket(addr)).await.unwrap())
                .await;
            accepting.await;

            let start = Instant::now();
            Smol.sleep_until(start + Duration::from_millis(50)).await;
            assert!(start.elapsed() >= Duration::from_millis(50));
            let addrs = Smol.lookup("localhost", 8080).await.unwrap();
            assert!(!addrs.is_empty());
            assert!(
                addrs
                    .iter()
                    .all(|a| a.port() == 8080 && a.ip().is_loopback())
            );
        });
    }
}
