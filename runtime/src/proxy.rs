//! HTTP CONNECT proxies: [`ProxyConnector`] opens a tunnel through a proxy and hands
//! the tunnel to the channel as its byte stream, so HTTP/2 (or TLS, when a
//! [`TlsConnector`](crate::tls::TlsConnector) wraps it) runs end to end inside it.
//!
//! [`ProxyConfig::from_env`] reads the environment as grpc-go does (which uses Go's
//! `http.ProxyFromEnvironment` for an `https` URL), with gRPC C-core's `grpc_proxy`
//! first:
//!
//! - the proxy: the first non-empty of `grpc_proxy`, `HTTPS_PROXY`, `https_proxy`.
//!   grpc-go reads the `https` variables for plaintext and TLS targets alike, so
//!   `http_proxy` is never used;
//! - the exclusions: the first non-empty of `no_grpc_proxy`, `NO_PROXY`, `no_proxy`;
//!   see [`NoProxy`] for the syntax. As Go does, `localhost` and loopback IPs are never
//!   proxied when the configuration comes from the environment.
//!
//! The proxy URL is `[http://][user[:password]@]host[:port]` (port 80 by default, as
//! Go's `net/http`); `user:password` (percent-decoded) becomes
//! `Proxy-Authorization: Basic …`. `https://` proxies (TLS to the proxy itself) are not
//! supported, as in grpc-go: the CONNECT exchange is plaintext; TLS to the target runs
//! inside the tunnel.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use grpc_sansio::channel::target::Address;

use crate::driver::{Connector, PlainConnector};
use crate::rt::{BoxFuture, Dialer, Io};

/// The most bytes of response head we read from a proxy before giving up: a proxy
/// that never ends its headers must not make us buffer without limit.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// Where the proxy is, how to authenticate, and which hosts bypass it.
#[derive(Clone)]
pub struct ProxyConfig {
    host: String,
    port: u16,
    credentials: Credentials,
    no_proxy: NoProxy,
}

impl fmt::Debug for ProxyConfig {
    // The password must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("proxy", &self.proxy_authority())
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyConfig {
    /// A proxy given by URL (`http://user:pass@proxy:3128`, or just `proxy:3128`),
    /// used for every TCP target; add exclusions with [`no_proxy`](Self::no_proxy).
    pub fn explicit(url: &str) -> io::Result<ProxyConfig> {
        let (host, port, credentials) = parse_proxy_url(url)?;
        Ok(ProxyConfig {
            host,
            port,
            credentials,
            no_proxy: NoProxy::default(),
        })
    }

    /// The proxy the process environment asks for (see the [module docs](self)), or
    /// `None` when there is none or its URL does not parse (logged as a warning, since
    /// silently connecting directly is what Go does too).
    pub fn from_env() -> Option<ProxyConfig> {
        ProxyConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `var` instead of
    /// the process environment (tests, or configuration from elsewhere).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<ProxyConfig> {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        let url = first(&["grpc_proxy", "HTTPS_PROXY", "https_proxy"])?;
        let mut config = match ProxyConfig::explicit(&url) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("ignoring the proxy from the environment: {e}");
                return None;
            }
        };
        config.no_proxy =
            NoProxy::parse(&first(&["no_grpc_proxy", "NO_PROXY", "no_proxy"]).unwrap_or_default());
        config.no_proxy.skip_loopback = true;
        Some(config)
    }

    /// Hosts that are reached directly (a `NO_PROXY`-style list, see [`NoProxy`]);
    /// replaces any list set before.
    pub fn no_proxy(mut self, list: &str) -> ProxyConfig {
        let skip_loopback = self.no_proxy.skip_loopback;
        self.no_proxy = NoProxy::parse(list);
        self.no_proxy.skip_loopback = skip_loopback;
        self
    }

    /// The proxy's `host:port` (IPv6 in brackets).
    pub fn proxy_authority(&self) -> String {
        Address::Name {
            host: self.host.clone(),
            port: self.port,
        }
        .to_string()
    }

    /// Whether a channel whose `:authority` is `authority` goes through the proxy.
    pub fn uses_proxy_for(&self, authority: &str) -> bool {
        let (host, port) = split_authority(authority);
        !self.no_proxy.matches(host, port)
    }

    /// The address the proxy hop connects to: an IP as a socket address, a name left
    /// for the inner connector to resolve.
    fn proxy_address(&self) -> Address {
        match self.host.parse::<IpAddr>() {
            Ok(ip) => Address::Socket((ip, self.port).into()),
            Err(_) => Address::Name {
                host: self.host.clone(),
                port: self.port,
            },
        }
    }
}

/// A `NO_PROXY` list, matched as Go's `golang.org/x/net/http/httpproxy` does.
///
/// Comma-separated entries, case-insensitive, blanks ignored:
/// - `*` alone: nothing is proxied;
/// - `example.com`: that host and its subdomains (`a.example.com`);
/// - `.example.com` or `*.example.com`: subdomains only;
/// - `10.0.0.1`, `::1`: that IP; `10.0.0.0/8`, `fd00::/8`: IPs in that CIDR block;
/// - any host or IP entry may carry a port (`example.com:8443`, `[::1]:50051`), which
///   must then match the authority's port too.
///
/// Entries are matched against the host of the channel's `:authority`, not against
/// resolved addresses (a DNS name only matches name entries, an IP only IP entries).
#[derive(Clone, Debug, Default)]
pub struct NoProxy {
    all: bool,
    ips: Vec<(IpAddr, Option<String>)>,
    cidrs: Vec<(IpAddr, u8)>,
    /// (`.suffix`, port, whether the bare host matches too).
    domains: Vec<(String, Option<String>, bool)>,
    /// `localhost` and loopback IPs bypass the proxy (Go's environment behaviour).
    skip_loopback: bool,
}

impl NoProxy {
    /// Parses a comma-separated list; malformed entries are ignored, as Go does.
    pub fn parse(list: &str) -> NoProxy {
        let mut np = NoProxy::default();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                np.all = true;
                continue;
            }
            if let Some((ip, bits)) = entry.split_once('/') {
                if let (Ok(ip), Ok(bits)) = (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    if bits <= max {
                        np.cidrs.push((ip, bits));
                    }
                }
                continue;
            }
            // A port is split off only when what remains is still a valid host:
            // a bare IPv6 address has colons of its own.
            let (host, port) = if entry.parse::<IpAddr>().is_ok() {
                (entry.as_str(), None)
            } else {
                let (h, p) = split_authority(&entry);
                (h, p.map(str::to_owned))
            };
            if host.is_empty() {
                continue;
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                np.ips.push((ip, port));
                continue;
            }
            let host = host.strip_prefix('*').unwrap_or(host);
            let (suffix, exact_too) = match host.strip_prefix('.') {
                Some(_) => (host.to_owned(), false),
                None => (format!(".{host}"), true),
            };
            if suffix.len() > 1 {
                np.domains.push((suffix, port, exact_too));
            }
        }
        np
    }

    /// Whether `host` (no brackets) with `port` bypasses the proxy.
    pub fn matches(&self, host: &str, port: Option<&str>) -> bool {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        if self.skip_loopback && (host == "localhost" || ip.is_some_and(|ip| ip.is_loopback())) {
            return true;
        }
        if self.all {
            return true;
        }
        let port_ok = |want: &Option<String>| want.as_deref().is_none_or(|w| Some(w) == port);
        if let Some(ip) = ip {
            return self.ips.iter().any(|(i, p)| *i == ip && port_ok(p))
                || self
                    .cidrs
                    .iter()
                    .any(|(net, bits)| in_cidr(ip, *net, *bits));
        }
        self.domains.iter().any(|(suffix, p, exact_too)| {
            (host.ends_with(suffix.as_str()) || (*exact_too && host == suffix[1..])) && port_ok(p)
        })
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    // A shift by the full width would overflow: /0 matches everything of the family.
    shift >= width || (ip >> shift) == (net >> shift)
}

/// Splits an authority into host (IPv6 brackets removed) and port, if it has one.
pub(crate) fn split_authority(authority: &str) -> (&str, Option<&str>) {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (host, after.strip_prefix(':').filter(|p| !p.is_empty()));
    }
    match authority.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address, no port.
        Some((host, port)) if !host.contains(':') => (host, Some(port).filter(|p| !p.is_empty())),
        _ => (authority, None),
    }
}

/// Decoded `user`, `password` of a proxy URL.
type Credentials = Option<(String, String)>;

/// Parses `[http://][user[:password]@]host[:port][/]`.
fn parse_proxy_url(url: &str) -> io::Result<(String, u16, Credentials)> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("proxy URL {url:?}: {why}"),
        )
    };
    let rest = match url.trim().split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "scheme {scheme:?} is not supported (only http CONNECT proxies)"
            )));
        }
        None => url.trim(),
    };
    let rest = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let credentials = userinfo.map(|u| {
        let (user, password) = u.split_once(':').unwrap_or((u, ""));
        (percent_decode(user), percent_decode(password))
    });
    let (host, port) = split_authority(hostport);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        None => 80,
    };
    Ok((host.to_owned(), port, credentials))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Byte-wise hex digits: slicing the str could split a multi-byte character.
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (
                char::from(b[i + 1]).to_digit(16),
                char::from(b[i + 2]).to_digit(16),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding, for `Proxy-Authorization: Basic` (too small a need
/// for a dependency).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Connects through an HTTP CONNECT proxy (grpc-go's proxy dialer). Targets the
/// configuration excludes, and unix-socket addresses, go to the inner connector
/// directly.
#[derive(Clone)]
pub struct ProxyConnector {
    config: ProxyConfig,
    inner: Arc<dyn Connector>,
}

impl fmt::Debug for ProxyConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ProxyConnector {
    /// Tunnels through the proxy of `config`; `inner` opens the connection to the
    /// proxy (and the direct connections of excluded targets): usually
    /// [`PlainConnector`].
    pub fn new(config: ProxyConfig, inner: Arc<dyn Connector>) -> ProxyConnector {
        ProxyConnector { config, inner }
    }

    /// [`new`](Self::new) over plain TCP.
    pub fn tcp(config: ProxyConfig) -> ProxyConnector {
        ProxyConnector::new(config, Arc::new(PlainConnector))
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }
}

impl Connector for ProxyConnector {
    fn connect(
        &self,
        address: &Address,
        authority: &str,
        dialer: &Dialer,
    ) -> BoxFuture<io::Result<Box<dyn Io>>> {
        // Only TCP destinations can be tunnelled (Go skips the proxy for the rest).
        let target = match address {
            Address::Socket(_) | Address::Name { .. } => address.to_string(),
            _ => return self.inner.connect(address, authority, dialer),
        };
        if !self.config.uses_proxy_for(authority) {
            return self.inner.connect(address, authority, dialer);
        }
        let proxy = self.config.proxy_authority();
        let hop = self
            .inner
            .connect(&self.config.proxy_address(), &proxy, dialer);
        let credentials = self.config.credentials.clone();
        Box::pin(async move {
            let io = hop.await.map_err(|e| {
                io::Error::new(e.kind(), format!("connecting to proxy {proxy}: {e}"))
            })?;
            let creds = credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            http_connect(io, &target, creds).await
        })
    }
}

/// Runs the CONNECT exchange on `io` (already connected to the proxy) for `target`
/// (`host:port`), with Basic credentials if given, and returns the tunnel. Bytes the
/// proxy sent after its response head are kept and read first.
pub async fn http_connect(
    mut io: Box<dyn Io>,
    target: &str,
    credentials: Option<(&str, &str)>,
) -> io::Result<Box<dyn Io>> {
    let mut request = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: grpc-sansio/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some((user, password)) = credentials {
        let token = base64(format!("{user}:{password}").as_bytes());
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await?;
    io.flush().await?;

    let mut buf = vec![0u8; MAX_RESPONSE_HEAD];
    let mut len = 0;
    loop {
        let n = io.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "proxy closed the connection during CONNECT",
            ));
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(head)) => {
                let code = response.code.unwrap_or(0);
                if !(200..300).contains(&code) {
                    let reason = response.reason.unwrap_or("");
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        format!("proxy CONNECT refused: HTTP {code} {reason}")
                            .trim_end()
                            .to_owned(),
                    ));
                }
                if head == len {
                    return Ok(io);
                }
                // The proxy may send the target's first bytes with its 200.
                let prefix = Bytes::copy_from_slice(&buf[head..len]);
                return Ok(Box::new(Prefixed { prefix, io }));
            }
            Ok(httparse::Status::Partial) if len < buf.len() => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "proxy CONNECT: response head larger than {MAX_RESPONSE_HEAD} bytes or \
                         more than 64 headers"
                    ),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("proxy CONNECT: malformed response: {e}"),
                ));
            }
        }
    }
}

/// A stream whose first reads return `prefix`: bytes already read off `io`.
struct Prefixed {
    prefix: Bytes,
    io: Box<dyn Io>,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.len());
            buf[..n].copy_from_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    // Forwarded so the driver's vectored writes stay vectored.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matching() {
        let np = NoProxy::parse(
            "example.com, .internal, *.corp.net, 10.1.2.3, 192.168.0.0/16, [fd00::1]:8443, \
             svc.local:50051, ",
        );
        assert!(np.matches("example.com", Some("443")));
        assert!(np.matches("API.Example.com", None));
        assert!(!np.matches("notexample.com", None));
        assert!(np.matches("a.internal", None));
        assert!(!np.matches("internal", None));
        assert!(np.matches("x.corp.net", None));
        assert!(!np.matches("corp.net", None));
        assert!(np.matches("10.1.2.3", Some("1")));
        assert!(!np.matches("10.1.2.4", None));
        assert!(np.matches("192.168.7.9", None));
        assert!(!np.matches("192.169.0.1", None));
        assert!(np.matches("fd00::1", Some("8443")));
        assert!(!np.matches("fd00::1", Some("443")));
        assert!(np.matches("svc.local", Some("50051")));
        assert!(!np.matches("svc.local", Some("50052")));
        // Loopback is proxied unless the config came from the environment.
        assert!(!np.matches("localhost", None));
        assert!(NoProxy::parse("*").matches("anything.at.all", None));
        assert!(NoProxy::parse(" * ").matches("10.0.0.1", None));
        assert!(!NoProxy::parse("").matches("example.com", None));
    }

    #[test]
    fn config_from_vars() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(ProxyConfig::from_vars(env(&[("http_proxy", "p:1")])).is_none());
        let c = ProxyConfig::from_vars(env(&[
            ("https_proxy", "http://u%40x:p%3Aw@proxy.example:3128"),
            ("NO_PROXY", "example.com"),
        ]))
        .unwrap();
        assert_eq!(c.proxy_authority(), "proxy.example:3128");
        assert_eq!(c.credentials, Some(("u@x".to_owned(), "p:w".to_owned())));
        assert!(!c.uses_proxy_for("a.example.com:443"));
        assert!(c.uses_proxy_for("example.org:443"));
        assert!(!c.uses_proxy_for("localhost:50051"));
        assert!(!c.uses_proxy_for("127.0.0.1:50051"));
        assert!(!c.uses_proxy_for("[::1]:50051"));
        // grpc_proxy wins; an empty variable counts as unset.
        let c = ProxyConfig::from_vars(env(&[
            ("grpc_proxy", "first:1"),
            ("HTTPS_PROXY", "second:2"),
            ("NO_PROXY", ""),
            ("no_proxy", "*"),
        ]))
        .unwrap();
        assert_eq!(c.proxy_authority(), "first:1");
        assert!(!c.uses_proxy_for("example.org:443"));
        assert!(ProxyConfig::from_vars(env(&[("grpc_proxy", "https://p:1")])).is_none());
        assert_eq!(
            ProxyConfig::explicit("[::1]").unwrap().proxy_authority(),
            "[::1]:80"
        );
        assert!(ProxyConfig::explicit("socks5://p:1").is_err());
    }

    #[test]
    fn authority_splitting() {
        assert_eq!(split_authority("a.b:443"), ("a.b", Some("443")));
        assert_eq!(split_authority("a.b"), ("a.b", None));
        assert_eq!(split_authority("[::1]:80"), ("::1", Some("80")));
        assert_eq!(split_authority("[::1]"), ("::1", None));
        assert_eq!(split_authority("::1"), ("::1", None));
    }

    #[test]
    fn base64_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
