//! Our interop client against our interop server, in-process over loopback TCP: the
//! baseline for the tests against other implementations.

use grpc_sansio_interop::client_cases::{self, CASES};
use grpc_sansio_tokio::Channel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_against_our_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(grpc_sansio_interop::server::serve::<grpc_sansio_tokio::Tokio>(listener));
    let channel = Channel::builder(format!("passthrough:///{addr}"))
        .connect_lazy()
        .unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        if let Err(e) = client_cases::run(&channel, case).await {
            failures.push(format!("{case}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

/// The same cases over TLS: rcgen certificates, ALPN h2, the server name from the
/// override (as `--server_host_override` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_against_our_server_over_tls() {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["foo.test.google.fr".to_owned()])
        .unwrap()
        .signed_by(&server_key, &*ca)
        .unwrap();
    let acceptor = grpc_sansio_tokio::TlsAcceptor::new(
        server_cert.pem().as_bytes(),
        server_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(grpc_sansio_interop::server::serve_tls::<
        grpc_sansio_tokio::Tokio,
    >(listener, acceptor));
    let tls = grpc_sansio_tokio::TlsConfig::new()
        .ca_pem(ca.pem())
        .server_name_override("foo.test.google.fr");
    let channel = Channel::builder(format!("passthrough:///{addr}"))
        .authority("foo.test.google.fr")
        .tls(tls)
        .connect_lazy()
        .unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        if let Err(e) = client_cases::run(&channel, case).await {
            failures.push(format!("{case}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases over TLS:\n{}",
        failures.join("\n")
    );
}
