//! grpc-sansio on tokio: the sockets, timers, DNS and tasks around the sans-IO core,
//! and the API a Rust gRPC user expects — a [`Channel`] making the four kinds of call
//! with any [`Codec`], and a [`Server`] serving handlers for them.
//!
//! The adapter decides nothing: every protocol decision is the core's. The API and
//! the connection tasks are written once, runtime-neutral, in `grpc-sansio-runtime`;
//! this crate implements its [`Runtime`] trait with tokio ([`Tokio`]: tokio's tasks,
//! timers — paused test time included — TCP and unix sockets, DNS) and names its types
//! for tokio: [`Channel`] is `grpc_sansio_runtime::Channel<Tokio>`, and so on.
//!
//! Streams of your own (a custom [`Connector`], [`Server::serve_connection`]) are
//! `futures-io` byte streams; wrap a tokio stream with [`io()`].
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

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

pub use compat::TokioIo;
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

mod compat;

grpc_sansio_runtime::runtime_aliases!(Tokio, "tokio");

/// The tokio runtime, as grpc-sansio uses it: the handle of the runtime the channel or
/// server was made in.
#[derive(Clone, Debug)]
pub struct Tokio(tokio::runtime::Handle);

impl Tokio {
    /// A specific runtime (for channels built outside it).
    pub fn new(handle: tokio::runtime::Handle) -> Tokio {
        Tokio(handle)
    }
}

/// A tokio byte stream (TCP, unix, TLS from tokio-rustls, a duplex pipe…) as the
/// `futures-io` stream a [`Connector`] returns or [`Server::serve_connection`] takes.
pub fn io<T>(stream: T) -> Box<dyn Io>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    Box::new(TokioIo(stream))
}

/// A tokio socket's two halves as one stream: the connection's reader and writer each
/// own one, rather than taking turns at a lock (see [`Halves`]).
fn halves<Rd, Wr>(read: Rd, write: Wr) -> Box<dyn Io>
where
    Rd: tokio::io::AsyncRead + Send + Unpin + 'static,
    Wr: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    Box::new(Halves::new(TokioIo(read), TokioIo(write)))
}

/// A TCP socket in halves.
fn tcp(stream: tokio::net::TcpStream) -> Box<dyn Io> {
    let (read, write) = stream.into_split();
    halves(read, write)
}

/// A TCP socket with TCP_NODELAY (gRPC frames are small and latency-bound), in halves.
fn tcp_nodelay(stream: tokio::net::TcpStream) -> io::Result<Box<dyn Io>> {
    stream.set_nodelay(true)?;
    Ok(tcp(stream))
}

impl Runtime for Tokio {
    type Listener = tokio::net::TcpListener;

    fn current() -> Self {
        Tokio(tokio::runtime::Handle::current())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(self.0.spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send + 'static {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
    }

    fn now(&self) -> Instant {
        // tokio's clock, so tests with paused time see the channel's timers move.
        tokio::time::Instant::now().into_std()
    }

    fn yield_now(&self) -> impl Future<Output = ()> + Send + 'static {
        // tokio's own yield defers the wake until the scheduler has run what is ready
        // and looked at its `block_on` future, where a self-wake would not.
        tokio::task::yield_now()
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
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        }
    }

    async fn accept(&self, listener: &Self::Listener) -> io::Result<(Box<dyn Io>, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        // gRPC frames are small and latency-bound.
        let _ = stream.set_nodelay(true);
        Ok((tcp(stream), peer))
    }
}

/// Opens a plain socket to `address`: TCP with TCP_NODELAY, or a unix socket
/// (abstract names on Linux).
pub async fn connect_plain(address: &Address) -> io::Result<Box<dyn Io>> {
    match address {
        Address::Socket(a) => tcp_nodelay(tokio::net::TcpStream::connect(a).await?),
        Address::Name { host, port } => {
            tcp_nodelay(tokio::net::TcpStream::connect((host.as_str(), *port)).await?)
        }
        #[cfg(unix)]
        Address::Unix(path) => {
            let (read, write) = tokio::net::UnixStream::connect(path).await?.into_split();
            Ok(halves(read, write))
        }
        #[cfg(target_os = "linux")]
        Address::UnixAbstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            let std_stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
            std_stream.set_nonblocking(true)?;
            let (read, write) = tokio::net::UnixStream::from_std(std_stream)?.into_split();
            Ok(halves(read, write))
        }
        #[allow(unreachable_patterns)]
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
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
) -> io::Result<()> {
    server.serve_tls(listener, acceptor).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};
    use std::io::IoSlice;

    /// A TCP stream comes as [`Halves`] (its reader and writer share no lock), and
    /// keeps vectored writes through them.
    async fn assert_tcp_halves(stream: &mut Box<dyn Io>) {
        assert!((**stream).as_any().is::<Halves>(), "TCP in halves");
        let bufs = [IoSlice::new(b"abc"), IoSlice::new(b"def")];
        assert_eq!(stream.write_vectored(&bufs).await.unwrap(), 6);
    }

    #[tokio::test]
    async fn tcp_streams_come_in_halves_both_ways() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let (mut s, _) = Tokio::current().accept(&listener).await.unwrap();
            assert_tcp_halves(&mut s).await;
            let mut got = [0u8; 6];
            s.read_exact(&mut got).await.unwrap();
            got
        });
        let mut s = connect_plain(&Address::Socket(addr)).await.unwrap();
        assert_tcp_halves(&mut s).await;
        assert_eq!(&accepting.await.unwrap(), b"abcdef");
        let mut got = [0u8; 6];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdef");
    }
}
