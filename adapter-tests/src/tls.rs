//! TLS end to end over loopback with certificates made by rcgen: unary calls over
//! TLS, ALPN `h2` required, mutual TLS accepted and refused, and a wrong CA.

use std::sync::Arc;
use std::time::Duration;

use crate::{TestRuntime, listen, spawn};
use bytes::Bytes;
use grpc_sansio::grpc::client::Scheme;
use grpc_sansio_runtime::tls::rustls;
use grpc_sansio_runtime::{
    BytesCodec, CallOptions, Channel, Code, Reply, Request, Server, Status, TlsAcceptor, TlsConfig,
    TlsConnector,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA, and a server and a client certificate it signed.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn make_pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    // The IP SAN lets a channel to 127.0.0.1 verify without a name override.
    let server_cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&server_key, &*ca)
        .unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["client.test".into()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &*ca).unwrap();

    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

fn server<R: TestRuntime>() -> Server<R> {
    Server::<R>::builder()
        .unary::<BytesCodec, _, _>("/test.Echo/Unary", |req: Request<Bytes>| async move {
            Ok(Reply::new(req.message))
        })
        .build()
}

/// Serves our server over TLS with `acceptor`; returns the address.
async fn start<R: TestRuntime>(acceptor: TlsAcceptor) -> String {
    let (listener, addr) = listen::<R>().await;
    let addr = addr.to_string();
    let s = server::<R>();
    spawn::<R, _>(async move { s.serve_tls(listener, acceptor).await });
    addr
}

fn channel<R: TestRuntime>(addr: &str, config: TlsConfig) -> Channel<R> {
    Channel::<R>::builder(format!("passthrough:///{addr}"))
        .connector(Arc::new(TlsConnector::new(config)))
        .config(|c| c.scheme = Scheme::Https)
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
pub async fn unary_over_tls<R: TestRuntime>() {
    let pki = make_pki("main");
    let addr = start::<R>(
        TlsAcceptor::new(pki.server_cert.as_bytes(), pki.server_key.as_bytes()).unwrap(),
    )
    .await;
    // Server name from the authority: the IP address 127.0.0.1.
    let ch = channel::<R>(&addr, TlsConfig::new().ca_pem(&pki.ca));
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));

    // Server name overridden to a DNS name of the certificate.
    let ch = channel(
        &addr,
        TlsConfig::new()
            .ca_pem(&pki.ca)
            .server_name_override("localhost"),
    );
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));

    // A name the certificate does not carry fails verification.
    let ch = channel(
        &addr,
        TlsConfig::new()
            .ca_pem(&pki.ca)
            .server_name_override("other.test"),
    );
    let err = call::<R>(&ch).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");
    assert!(err.message.contains("TLS handshake"), "{err:?}");
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn ca_from_file_and_authority_host<R: TestRuntime>() {
    let pki = make_pki("file");
    let addr = start::<R>(
        TlsAcceptor::new(pki.server_cert.as_bytes(), pki.server_key.as_bytes()).unwrap(),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("grpc-sansio-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &pki.ca).unwrap();
    // `localhost:PORT` as authority: the server name is its host, port stripped.
    let port = addr.rsplit_once(':').unwrap().1;
    let ch = Channel::<R>::builder(format!("passthrough:///{addr}"))
        .authority(format!("localhost:{port}"))
        .connector(Arc::new(
            TlsConnector::try_new(TlsConfig::new().ca_file(&ca_file)).unwrap(),
        ))
        .config(|c| c.scheme = Scheme::Https)
        .connect()
        .await
        .unwrap();
    assert_eq!(call::<R>(&ch).await.unwrap(), Bytes::from_static(b"ping"));
    std::fs::remove_dir_all(&dir).ok();

    // Configuration errors: early with try_new, per connection with new.
    assert!(TlsConnector::try_new(TlsConfig::new()).is_err());
    assert!(TlsConnector::try_new(TlsConfig::new().ca_pem("not pem")).is_err());
    let err = call::<R>(&channel::<R>(&addr, TlsConfig::new()))
        .await
        .unwrap_err();
    assert!(err.message.contains("no root certificates"), "{err:?}");
}

/// A rustls server whose ALPN list is `alpn`.
fn acceptor_with_alpn(pki: &Pki, alpn: Vec<Vec<u8>>) -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(pki.server_cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = alpn;
    TlsAcceptor::from_server_config(Arc::new(config))
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn alpn_h2_required<R: TestRuntime>() {
    let pki = make_pki("alpn");
    // No ALPN at all: the handshake succeeds, then we refuse the connection. The
    // first call on a fresh channel waits out the attempt and carries its error.
    let addr = start::<R>(acceptor_with_alpn(&pki, vec![])).await;
    let ch = channel::<R>(&addr, TlsConfig::new().ca_pem(&pki.ca));
    let err = call::<R>(&ch).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");
    assert!(
        err.message
            .contains("TLS handshake: server did not negotiate ALPN h2"),
        "{err:?}"
    );
    let ch = channel::<R>(&addr, TlsConfig::new().ca_pem(&pki.ca));
    let err = ch.wait_ready().await.unwrap_err();
    assert!(err.message.contains("ALPN"), "{err:?}");

    // ALPN without h2: the server's alert says so; the message still names ALPN.
    let addr = start::<R>(acceptor_with_alpn(&pki, vec![b"http/1.1".to_vec()])).await;
    let ch = channel::<R>(&addr, TlsConfig::new().ca_pem(&pki.ca));
    let err = ch.wait_ready().await.unwrap_err();
    assert!(err.message.contains("ALPN"), "{err:?}");
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn mutual_tls<R: TestRuntime>() {
    let pki = make_pki("mtls");
    let acceptor = TlsAcceptor::with_client_ca(
        pki.server_cert.as_bytes(),
        pki.server_key.as_bytes(),
        pki.ca.as_bytes(),
    )
    .unwrap();
    let addr = start::<R>(acceptor).await;

    let with_cert = channel(
        &addr,
        TlsConfig::new()
            .ca_pem(&pki.ca)
            .client_identity(&pki.client_cert, &pki.client_key),
    );
    assert_eq!(
        call::<R>(&with_cert).await.unwrap(),
        Bytes::from_static(b"ping")
    );

    let without = channel::<R>(&addr, TlsConfig::new().ca_pem(&pki.ca));
    let err = call::<R>(&without).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");

    // A certificate from another CA is refused too.
    let other = make_pki("other");
    let wrong_cert = channel(
        &addr,
        TlsConfig::new()
            .ca_pem(&pki.ca)
            .client_identity(&other.client_cert, &other.client_key),
    );
    let err = call::<R>(&wrong_cert).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");
}

/// Instantiated per runtime by [`suite!`](crate::suite).
pub async fn wrong_ca<R: TestRuntime>() {
    let pki = make_pki("server");
    let other = make_pki("other");
    let addr = start::<R>(
        TlsAcceptor::new(pki.server_cert.as_bytes(), pki.server_key.as_bytes()).unwrap(),
    )
    .await;
    let ch = channel::<R>(&addr, TlsConfig::new().ca_pem(&other.ca));
    let err = call::<R>(&ch).await.unwrap_err();
    assert_eq!(err.code, Code::Unavailable, "{err:?}");
    assert!(err.message.contains("TLS handshake"), "{err:?}");
    assert!(err.message.contains("UnknownIssuer"), "{err:?}");
}
