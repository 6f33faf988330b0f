//! Calls through a tiny HTTP CONNECT proxy written here: the tunnel, Basic
//! credentials, a refusing proxy, tunnel bytes arriving with the proxy's 200, the
//! no_proxy bypass, and TLS inside the tunnel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{TestRuntime, listen, spawn, timeout};
use bytes::Bytes;
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use grpc_sansio::channel::target::Address;
use grpc_sansio_runtime::Io;
use grpc_sansio_runtime::{
    BytesCodec, CallOptions, Channel, Code, ProxyConfig, ProxyConnector, Reply, Request, Server,
    Status,
};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// 200, then a plain tunnel.
    Tunnel,
    /// Waits for the target's first bytes and sends them in the same write as the 200.
    Piggyback,
    /// 407 Proxy Authentication Required.
    Refuse,
}

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    tunnels: AtomicUsize,
    /// Target bytes sent in the same write as the 200.
    piggybacked: AtomicUsize,
    /// Every request head.
    heads: Mutex<Vec<String>>,
}

async fn start_proxy<R: TestRuntime>(mode: Mode) -> (String, Arc<Seen>) {
    let (listener, addr) = listen::<R>().await;
    let addr = addr.to_string();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    spawn::<R, _>(async move {
        loop {
            let (client, _) = R::current().accept(&listener).await.unwrap();
            spawn::<R, _>(proxy_one::<R>(client, mode, s.clone()));
        }
    });
    (addr, seen)
}

async fn proxy_one<R: TestRuntime>(mut client: Box<dyn Io>, mode: Mode, seen: Arc<Seen>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing past the head may be consumed here.
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    seen.heads.lock().unwrap().push(head.clone());
    if mode == Mode::Refuse {
        let _ = client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
        return;
    }
    let target = head.split(' ').nth(1).unwrap().to_owned();
    let address = match target.parse() {
        Ok(socket) => Address::Socket(socket),
        Err(_) => {
            let (host, port) = target.rsplit_once(':').unwrap();
            Address::Name {
                host: host.to_owned(),
                port: port.parse().unwrap(),
            }
        }
    };
    let Ok(mut upstream) = R::current().connect(&address).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    seen.tunnels.fetch_add(1, Ordering::SeqCst);
    let mut reply = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    if mode == Mode::Piggyback {
        // The server speaks first (its SETTINGS): send that with the 200.
        let mut buf = vec![0u8; 16 * 1024];
        let n = timeout::<R, _>(Duration::from_secs(5), upstream.read(&mut buf))
            .await
            .expect("the server sends its preface first")
            .unwrap();
        reply.extend_from_slice(&buf[..n]);
        seen.piggybacked.fetch_add(n, Ordering::SeqCst);
    }
    if client.write_all(&reply).await.is_err() {
        return;
    }
    let (client_in, mut client_out) = client.split();
    let (upstream_in, mut upstream_out) = upstream.split();
    let _ = futures_util::future::join(
        futures_util::io::copy(client_in, &mut upstream_out),
        futures_util::io::copy(upstream_in, &mut client_out),
    )
    .await;
}

async fn start_server<R: TestRuntime>() -> String {
    let (listener, addr) = listen::<R>().await;
    let addr = addr.to_string();
    let server = Server::<R>::builder()
        .unary::<BytesCodec, _, _>("/test.Echo/Unary", |req: Request<Bytes>| async move {
            Ok(Reply::new(req.message))
        })
        .build();
    spawn::<R, _>(async move { server.serve(listener).await });
    addr
}

fn channel<R: TestRuntime>(target: &str, config: ProxyConfig) -> Channel<R> {
    Channel::<R>::builder(format!("passthrough:///{target}"))
        .connector(Arc::new(ProxyConnector::tcp(config)))
        .connect_lazy()
        .unwrap()
}

async fn call<R: TestRuntime>(channel: &Channel<R>) -> Result<Bytes, Status> {
    channel
        .unary::<BytesCodec>(
            "/test.Echo/Unary",
            Bytes::from_static(b"ping"),
            CallOptions::new().timeout(Duration::from_secs(10)),
        )
        .await
        .map(|r| r.message)
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn unary_through_proxy<R: TestRuntime>() {
    let server = start_server::<R>().await;
    let (proxy, seen) = start_proxy::<R>(Mode::Tunnel).await;
    let config = ProxyConfig::explicit(&format!("http://user:pa%3Ass@{proxy}")).unwrap();
    let ch = channel::<R>(&server, config);
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 1);
    let head = seen.heads.lock().unwrap()[0].clone();
    assert!(
        head.starts_with(&format!("CONNECT {server} HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(head.contains(&format!("\r\nHost: {server}\r\n")), "{head}");
    // base64("user:pa:ss")
    assert!(
        head.contains("\r\nProxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n"),
        "{head}"
    );

    // A passthrough name reaches the proxy as a name, unresolved.
    let port = server.rsplit_once(':').unwrap().1;
    let ch = channel::<R>(
        &format!("localhost:{port}"),
        ProxyConfig::explicit(&proxy).unwrap(),
    );
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    let head = seen.heads.lock().unwrap()[1].clone();
    assert!(
        head.starts_with(&format!("CONNECT localhost:{port} HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(!head.contains("Proxy-Authorization"), "{head}");
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn proxy_refusal_is_unavailable<R: TestRuntime>() {
    let server = start_server::<R>().await;
    let (proxy, seen) = start_proxy::<R>(Mode::Refuse).await;
    let ch = channel::<R>(&server, ProxyConfig::explicit(&proxy).unwrap());
    let err = call::<R>(&ch).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");
    assert!(err.message.contains("407"), "{err:?}");
    assert!(
        err.message
            .contains("proxy CONNECT refused: HTTP 407 Proxy Authentication Required"),
        "{err:?}"
    );
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 0);
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn bytes_with_the_200_are_kept<R: TestRuntime>() {
    let server = start_server::<R>().await;
    let (proxy, seen) = start_proxy::<R>(Mode::Piggyback).await;
    let ch = channel::<R>(&server, ProxyConfig::explicit(&proxy).unwrap());
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    assert!(seen.piggybacked.load(Ordering::SeqCst) > 0);
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn no_proxy_bypasses<R: TestRuntime>() {
    let server = start_server::<R>().await;
    let (proxy, seen) = start_proxy::<R>(Mode::Tunnel).await;
    let config = ProxyConfig::explicit(&proxy)
        .unwrap()
        .no_proxy("example.com, 127.0.0.0/8");
    let ch = channel::<R>(&server, config);
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 0);
    assert!(seen.heads.lock().unwrap().is_empty());
}

/// TLS to the target inside the tunnel: the proxy sees only ciphertext.
pub async fn tls_inside_the_tunnel<R: TestRuntime>() {
    use grpc_sansio::grpc::client::Scheme;
    use grpc_sansio_runtime::{TlsAcceptor, TlsConfig, TlsConnector};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let acceptor = TlsAcceptor::new(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();

    let (listener, server_addr) = listen::<R>().await;
    let server_addr = server_addr.to_string();
    let server = Server::<R>::builder()
        .unary::<BytesCodec, _, _>("/test.Echo/Unary", |req: Request<Bytes>| async move {
            Ok(Reply::new(req.message))
        })
        .build();
    spawn::<R, _>(async move { server.serve_tls(listener, acceptor).await });

    let (proxy, seen) = start_proxy::<R>(Mode::Tunnel).await;
    let connector = TlsConnector::new(TlsConfig::new().ca_pem(ca.pem())).over(Arc::new(
        ProxyConnector::tcp(ProxyConfig::explicit(&proxy).unwrap()),
    ));
    let ch = Channel::<R>::builder(format!("passthrough:///{server_addr}"))
        .connector(Arc::new(connector))
        .config(|c| c.scheme = Scheme::Https)
        .connect_lazy()
        .unwrap();
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    assert_eq!(seen.tunnels.load(Ordering::SeqCst), 1);
}
