//! grpc-sansio on async-std and smol: the sockets, timers, DNS and tasks around the
//! sans-IO core, and the API a Rust gRPC user expects — a [`Channel`] making the four
//! kinds of call with any [`Codec`], and a [`Server`] serving handlers for them.
//!
//! The adapter decides nothing: every protocol decision is the core's. The API and
//! the connection tasks are written once, runtime-neutral, in `grpc-sansio-runtime`;
//! this crate implements its [`Runtime`] trait twice:
//!
//! - [`AsyncStd`]: async-std's tasks, TCP sockets and DNS, async-io's timers.
//!   [`Channel`] is `grpc_sansio_runtime::Channel<AsyncStd>`, and so on.
//! - `Smol` (feature `smol`, on by default): smol's tasks, async-net's sockets and
//!   DNS, async-io's timers, with the same aliases in the `smol` module
//!   (`grpc_sansio_async_std::smol::Channel`).
//!
//! Both runtimes sit on async-io's reactor, so either works inside the other (and
//! outside both: their executors start their own threads). Their streams already are
//! `futures-io` byte streams; a custom [`Connector`] or [`Server::serve_connection`]
//! takes them boxed (see [`io()`]).
//!
//! ```no_run
//! use bytes::Bytes;
//! use grpc_sansio_async_std::{BytesCodec, CallOptions, Channel, Reply, Request, Server};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // A server with one unary method.
//! let server = Server::builder()
//!     .unary::<BytesCodec, _, _>("/demo.Echo/Unary", |req: Request<Bytes>| async move {
//!         Ok(Reply::new(req.message))
//!     })
//!     .build();
//! let listener = async_std::net::TcpListener::bind("127.0.0.1:50051").await?;
//! let serving = server.clone();
//! async_std::task::spawn(async move { serving.serve(listener).await });
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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use grpc_sansio::channel::target::Address;
#[cfg(feature = "prost")]
pub use grpc_sansio_runtime::ProstCodec;
pub use grpc_sansio_runtime::{
    BearerToken, BoxFuture, BuildError, BytesCodec, CallCredentials, CallInfo, CallKind,
    CallOptions, Code, Codec, Connector, Dialer, Encoding, Halves, Interceptor, Io, Metadata,
    PlainConnector, ProxyConfig, ProxyConnector, Reply, Request, Resolver, Response, Runtime,
    Status,
};
#[cfg(feature = "tls")]
pub use grpc_sansio_runtime::{TlsAcceptor, TlsConfig, TlsConnector, tls};
pub use grpc_sansio_runtime::{codec, driver, intercept, proxy};
#[cfg(feature = "smol")]
pub use smol::Smol;

#[cfg(feature = "smol")]
pub mod smol;

grpc_sansio_runtime::runtime_aliases!(AsyncStd, "async-std");

/// The async-std runtime, as grpc-sansio uses it: async-std's global executor, its
/// TCP sockets and resolver, and async-io's timers. Usable from any thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncStd;

/// A byte stream (TCP, unix, TLS, an in-memory pipe…) as the boxed `futures-io`
/// stream a [`Connector`] returns or [`Server::serve_connection`] takes. async-std's
/// and async-net's streams need no wrapping; this only boxes.
pub fn io<T: Io>(stream: T) -> Box<dyn Io> {
    Box::new(stream)
}

/// A TCP socket whose handles share one socket (async-std's and async-net's are
/// `Clone`) as [`Halves`]: the connection's reader and writer each own a handle,
/// rather than taking turns at a lock.
pub(crate) fn tcp<S: Io + Clone>(stream: S) -> Box<dyn Io> {
    Box::new(Halves::new(stream.clone(), stream))
}

impl Runtime for AsyncStd {
    type Listener = async_std::net::TcpListener;

    fn current() -> Self {
        AsyncStd
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        // Dropping async-std's JoinHandle detaches the task.
        drop(async_std::task::spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        sleep_until(deadline)
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
        async move {
            use async_std::net::ToSocketAddrs;
            Ok((host.as_str(), port).to_socket_addrs().await?.collect())
        }
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Box<dyn Io>, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        // gRPC frames are small and latency-bound.
        let _ = stream.set_nodelay(true);
        Ok((tcp(stream), peer))
    }
}

/// async-io's timer (both runtimes' clock), as a future of `()`.
fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
    let timer = async_io::Timer::at(deadline);
    async move {
        timer.await;
    }
}

/// Opens a plain socket to `address` with async-std: TCP with TCP_NODELAY, or a unix
/// socket (abstract names on Linux).
pub async fn connect_plain(address: &Address) -> io::Result<Box<dyn Io>> {
    use async_std::net::TcpStream;
    let stream = match address {
        Address::Socket(a) => TcpStream::connect(a).await?,
        Address::Name { host, port } => TcpStream::connect((host.as_str(), *port)).await?,
        other => return connect_unix(other).await,
    };
    stream.set_nodelay(true)?;
    Ok(tcp(stream))
}

/// Opens a unix socket (abstract names on Linux), for both runtimes.
///
/// async-io's `Async<UnixStream>` rather than async-std's or async-net's `UnixStream`
/// (which wrap exactly that): their `AsyncWrite` leaves out `poll_write_vectored`, so
/// the writer's frame heads and payloads would each become a write of their own.
async fn connect_unix(address: &Address) -> io::Result<Box<dyn Io>> {
    match address {
        #[cfg(unix)]
        Address::Unix(path) => Ok(io(
            async_io::Async::<std::os::unix::net::UnixStream>::connect(path).await?,
        )),
        #[cfg(target_os = "linux")]
        Address::UnixAbstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
            // Async::new makes the socket non-blocking.
            Ok(io(async_io::Async::new(stream)?))
        }
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("unsupported address {other}"),
        )),
    }
}

/// Accepts TCP connections on `listener` and serves each on `server` after its TLS
/// handshake, until the server shuts down ([`Server::serve_tls`]).
#[cfg(feature = "tls")]
pub async fn serve_tls(
    server: &Server,
    listener: async_std::net::TcpListener,
    acceptor: TlsAcceptor,
) -> io::Result<()> {
    server.serve_tls(listener, acceptor).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSlice;
    use std::time::Duration;

    /// Writes "abc" and "def" in one `write_vectored`; a stream without the forwarding
    /// falls back to writing the first slice only.
    pub(crate) async fn assert_vectored(mut stream: Box<dyn Io>) {
        let bufs = [IoSlice::new(b"abc"), IoSlice::new(b"def")];
        let n = futures_util::io::AsyncWriteExt::write_vectored(&mut stream, &bufs)
            .await
            .unwrap();
        assert_eq!(n, 6);
    }

    /// A TCP stream comes as [`Halves`] (its reader and writer share no lock), and
    /// keeps vectored writes through them.
    pub(crate) async fn assert_tcp_halves(stream: Box<dyn Io>) {
        assert!((*stream).as_any().is::<Halves>(), "TCP in halves");
        assert_vectored(stream).await;
    }

    #[test]
    fn tcp_and_unix_streams_keep_vectored_writes() {
        async_std::task::block_on(async {
            let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let accepting = async_std::task::spawn(async move {
                let (s, _) = AsyncStd.accept(&listener).await.unwrap();
                assert_tcp_halves(s).await;
            });
            assert_tcp_halves(connect_plain(&Address::Socket(addr)).await.unwrap()).await;
            accepting.await;

            let path = std::env::temp_dir().join(format!("gs-async-std-{}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let unix = Address::Unix(path.to_str().unwrap().to_owned());
            assert_vectored(connect_plain(&unix).await.unwrap()).await;
            drop(listener.accept().unwrap());
            std::fs::remove_file(&path).unwrap();
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_unix_names_connect() {
        use std::io::Read;
        use std::os::linux::net::SocketAddrExt;
        let name = format!("gs-async-std-abstract-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        async_std::task::block_on(async {
            let s = connect_plain(&Address::UnixAbstract(name)).await.unwrap();
            assert_vectored(s).await;
        });
        let (mut peer, _) = listener.accept().unwrap();
        let mut got = [0; 6];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdef");
    }

    #[test]
    fn timers_and_lookup() {
        async_std::task::block_on(async {
            let start = Instant::now();
            AsyncStd
                .sleep_until(start + Duration::from_millis(50))
                .await;
            assert!(start.elapsed() >= Duration::from_millis(50));
            // A deadline already passed completes at once.
            AsyncStd.sleep_until(start).await;
            let addrs = AsyncStd.lookup("localhost", 8080).await.unwrap();
            assert!(
                addrs
                    .iter()
                    .all(|a| a.port() == 8080 && a.ip().is_loopback())
            );
            assert!(!addrs.is_empty());
            let err = connect_plain(&Address::Socket(([127, 0, 0, 1], 1).into())).await;
            assert!(err.is_err());
        });
    }
}
