//! TLS with rustls (ring provider): [`TlsConnector`] for channels, [`TlsAcceptor`] and
//! [`Server::serve_tls`](crate::server::Server::serve_tls) for servers. ALPN `h2` is offered by the client and required of the
//! server, as gRPC over TLS requires (grpc-go enforces it too).
//!
//! Trust: the roots given to [`TlsConfig`] (PEM bytes or files), plus, with the
//! `tls-webpki-roots` feature, Mozilla's root store from the `webpki-roots` crate
//! (`TlsConfig::webpki_roots`). The operating system's store is not read.
//!
//! A channel over TLS should also send `:scheme https`:
//! `ChannelBuilder::config(|c| c.scheme = Scheme::Https)`.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use grpc_sansio::channel::target::Address;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::driver::{Connector, PlainConnector};
use crate::proxy::split_authority;
use crate::rt::{BoxFuture, Dialer, Io};

pub use futures_rustls;
pub use rustls;

/// The ALPN protocol of gRPC.
const H2: &[u8] = b"h2";

/// The message of a handshake where the server chose no `h2`.
const NO_ALPN: &str = "TLS handshake: server did not negotiate ALPN h2";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(what: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Every certificate of a PEM bundle; an error if there is none, since an empty
/// bundle is always a mistake (a wrong file, a key given for a certificate).
fn certs_from_pem(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{what}: no CERTIFICATE in the PEM")));
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8], what: &str) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| invalid(format!("{what}: private key: {e}")))
}

fn root_store(pems: &[Vec<u8>], what: &str) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for pem in pems {
        for cert in certs_from_pem(pem, what)? {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("{what}: {e}")))?;
        }
    }
    Ok(roots)
}

/// The client's TLS settings, builder style.
#[derive(Clone, Default)]
pub struct TlsConfig {
    ca_pems: Vec<Vec<u8>>,
    ca_files: Vec<PathBuf>,
    #[cfg(feature = "tls-webpki-roots")]
    webpki_roots: bool,
    server_name_override: Option<String>,
    /// (certificate chain PEM, private key PEM)
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for TlsConfig {
    // Never print the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pems", &self.ca_pems.len())
            .field("ca_files", &self.ca_files)
            .field("server_name_override", &self.server_name_override)
            .field("client_identity", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// No roots yet: add some with [`ca_pem`](Self::ca_pem), [`ca_file`](Self::ca_file)
    /// or `webpki_roots`, or every handshake fails.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Trust the CA certificates of this PEM bundle.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> TlsConfig {
        self.ca_pems.push(pem.as_ref().to_vec());
        self
    }

    /// Trust the CA certificates of this PEM file (read when the connector is built).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> TlsConfig {
        self.ca_files.push(path.into());
        self
    }

    /// Trust Mozilla's root store (the `webpki-roots` crate) too.
    #[cfg(feature = "tls-webpki-roots")]
    pub fn webpki_roots(mut self) -> TlsConfig {
        self.webpki_roots = true;
        self
    }

    /// Verify the server as `name` (and send it as SNI) instead of the host of the
    /// channel's `:authority` (grpc-go's `serverNameOverride`).
    pub fn server_name_override(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name_override = Some(name.into());
        self
    }

    /// Present this certificate chain and private key (mutual TLS).
    pub fn client_identity(
        mut self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> TlsConfig {
        self.identity = Some((cert_chain_pem.as_ref().to_vec(), key_pem.as_ref().to_vec()));
        self
    }

    /// The rustls configuration these settings make (ALPN `h2`).
    pub fn client_config(&self) -> io::Result<ClientConfig> {
        let mut pems = self.ca_pems.clone();
        for path in &self.ca_files {
            let pem = std::fs::read(path).map_err(|e| {
                io::Error::new(e.kind(), format!("CA file {}: {e}", path.display()))
            })?;
            pems.push(pem);
        }
        #[allow(unused_mut)]
        let mut roots = root_store(&pems, "CA certificates")?;
        #[cfg(feature = "tls-webpki-roots")]
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if roots.is_empty() {
            return Err(invalid("TLS: no root certificates configured"));
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    certs_from_pem(cert, "client certificate")?,
                    key_from_pem(key, "client certificate")?,
                )
                .map_err(|e| invalid(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![H2.to_vec()];
        Ok(config)
    }
}

/// A [`Connector`] that runs TLS over the streams of another connector (plain TCP by
/// default, or e.g. a [`ProxyConnector`](crate::proxy::ProxyConnector) for TLS inside
/// a proxy tunnel).
#[derive(Clone)]
pub struct TlsConnector {
    /// The configuration, or why it could not be built: [`new`](Self::new) is
    /// infallible, so a bad certificate fails each connection with its reason.
    tls: Result<futures_rustls::TlsConnector, Arc<str>>,
    server_name_override: Option<String>,
    inner: Arc<dyn Connector>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("config_error", &self.tls.as_ref().err())
            .field("server_name_override", &self.server_name_override)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// TLS over TCP with `config`. A configuration that does not build (bad PEM,
    /// unreadable file, no roots) makes every connection fail with the reason; use
    /// [`try_new`](Self::try_new) to find out at once.
    pub fn new(config: TlsConfig) -> TlsConnector {
        let tls = config
            .client_config()
            .map(|c| futures_rustls::TlsConnector::from(Arc::new(c)))
            .map_err(|e| Arc::from(e.to_string()));
        TlsConnector {
            tls,
            server_name_override: config.server_name_override,
            inner: Arc::new(PlainConnector),
        }
    }

    /// [`new`](Self::new), but a configuration that does not build is an error now.
    pub fn try_new(config: TlsConfig) -> io::Result<TlsConnector> {
        let c = TlsConnector::new(config);
        if let Err(e) = &c.tls {
            return Err(invalid(e));
        }
        Ok(c)
    }

    /// TLS with a rustls configuration of your own (custom verifier, key log…). Its
    /// ALPN list is replaced by `h2`.
    pub fn from_client_config(
        config: Arc<ClientConfig>,
        server_name_override: Option<String>,
    ) -> TlsConnector {
        let config = if config.alpn_protocols == [H2] {
            config
        } else {
            let mut c = (*config).clone();
            c.alpn_protocols = vec![H2.to_vec()];
            Arc::new(c)
        };
        TlsConnector {
            tls: Ok(futures_rustls::TlsConnector::from(config)),
            server_name_override,
            inner: Arc::new(PlainConnector),
        }
    }

    /// Runs TLS over the streams `inner` opens instead of plain TCP.
    pub fn over(mut self, inner: Arc<dyn Connector>) -> TlsConnector {
        self.inner = inner;
        self
    }

    /// Runs the client handshake on `io` for the channel authority `authority`.
    pub async fn handshake(&self, io: Box<dyn Io>, authority: &str) -> io::Result<Box<dyn Io>> {
        let tls = self.tls.as_ref().map_err(invalid)?;
        let name = match &self.server_name_override {
            Some(n) => n.as_str(),
            None => split_authority(authority).0,
        };
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| invalid(format!("TLS: server name {name:?}: {e}")))?;
        let stream = tls.connect(name, io).await.map_err(handshake_error)?;
        if stream.get_ref().1.alpn_protocol() != Some(H2) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, NO_ALPN));
        }
        Ok(Box::new(stream))
    }
}

/// Prefixes handshake errors, and says what a "no application protocol" alert means
/// (the server speaks ALPN but not `h2`).
fn handshake_error(e: io::Error) -> io::Error {
    let no_alpn = matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(
            rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
                | rustls::Error::NoApplicationProtocol
        )
    );
    if no_alpn {
        io::Error::new(io::ErrorKind::InvalidData, format!("{NO_ALPN} ({e})"))
    } else {
        io::Error::new(e.kind(), format!("TLS handshake: {e}"))
    }
}

impl Connector for TlsConnector {
    fn connect(
        &self,
        address: &Address,
        authority: &str,
        dialer: &Dialer,
    ) -> BoxFuture<io::Result<Box<dyn Io>>> {
        let io = self.inner.connect(address, authority, dialer);
        let this = self.clone();
        let authority = authority.to_owned();
        Box::pin(async move { this.handshake(io.await?, &authority).await })
    }
}

/// The server side: the certificate, the key, optionally the CAs client certificates
/// must chain to, and ALPN `h2`.
#[derive(Clone)]
pub struct TlsAcceptor {
    tls: futures_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Serves `cert_chain_pem` (leaf first) with `key_pem`; clients need no
    /// certificate.
    pub fn new(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsAcceptor> {
        TlsAcceptor::build(cert_chain_pem, key_pem, None)
    }

    /// Like [`new`](Self::new), and requires every client to present a certificate
    /// that chains to a CA of `client_ca_pem` (mutual TLS).
    pub fn with_client_ca(
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        client_ca_pem: &[u8],
    ) -> io::Result<TlsAcceptor> {
        TlsAcceptor::build(cert_chain_pem, key_pem, Some(client_ca_pem))
    }

    fn build(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> io::Result<TlsAcceptor> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?;
        let builder = match client_ca {
            Some(pem) => {
                let roots = root_store(&[pem.to_vec()], "client CA certificates")?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| invalid(format!("client CA certificates: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(
                certs_from_pem(cert, "server certificate")?,
                key_from_pem(key, "server certificate")?,
            )
            .map_err(|e| invalid(format!("server certificate: {e}")))?;
        config.alpn_protocols = vec![H2.to_vec()];
        Ok(TlsAcceptor::from_server_config(Arc::new(config)))
    }

    /// A rustls configuration of your own, used as it is: include `h2` in its ALPN
    /// list, or gRPC clients will refuse the connection.
    pub fn from_server_config(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            tls: futures_rustls::TlsAcceptor::from(config),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// Handshakes taking longer than this are dropped (10 s by default), so a client
    /// that stalls mid-handshake holds no task or socket for long.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.handshake_timeout = timeout;
        self
    }

    /// How long a handshake may take before the connection is dropped.
    pub fn handshake_timeout_value(&self) -> Duration {
        self.handshake_timeout
    }

    /// Runs the server handshake on an accepted stream (with no time limit: the
    /// server's accept loop applies [`handshake_timeout`](Self::handshake_timeout)).
    pub async fn accept<S: Io>(&self, io: S) -> io::Result<Box<dyn Io>> {
        match self.tls.accept(io).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(e) => Err(io::Error::new(e.kind(), format!("TLS handshake: {e}"))),
        }
    }
}
