//! Target strings (grpc/grpc `doc/naming.md`) and the authority derived from them.
//!
//! A channel's target is a URI whose scheme picks a resolver: `dns:[//authority/]host[:port]`,
//! `unix:path`, `unix:///abs/path`, `unix-abstract:name`, `ipv4:a[:p],...`, `ipv6:...`,
//! `passthrough:///addr`, or any scheme a user registered a resolver for. A string that
//! is not such a URI, or whose scheme nobody registered, is treated as the endpoint of the
//! default scheme — which is how `localhost:50051` and `[::1]:443` work.
//!
//! The rules follow grpc-go (`ClientConn.initParsedTargetAndResolverBuilder`,
//! `initAuthority`, `resolver.Target.Endpoint`, and the built-in `dns`, `passthrough` and
//! `unix` resolvers), including the URL syntax of Go's `net/url.Parse`, because targets
//! are shared between implementations in configuration files and must mean the same
//! thing in each. `ipv4:` and `ipv6:` come from C-core, as grpc-go has no resolver for
//! them.
//!
//! Deviations, all in the direction of rejecting input grpc-go would accept only to fail
//! later: percent-decoding that yields invalid UTF-8 is an error (Rust strings), and
//! ports must be decimal `u16`s (grpc-go defers to the dialer, which also accepts
//! service names).

use std::fmt;
// Address values only (parsing and printing IP literals): nothing here opens a socket.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The port used when a `dns`, `ipv4` or `ipv6` target names none (naming.md).
pub const DEFAULT_PORT: u16 = 443;

/// A parsed channel target.
///
/// Equality compares the decoded parts, so two spellings of the same target (`%41` and
/// `A` in the path) are equal; [`fmt::Display`] keeps the spelling that was parsed, so
/// that re-parsing it yields the same target even when percent-escapes were involved.
#[derive(Clone, Debug)]
pub struct Target {
    /// The resolver's scheme, lower-cased (URL schemes are case-insensitive, and
    /// resolver lookup in grpc-go relies on that).
    pub scheme: String,
    /// The URL authority (host and port, percent-decoded, user info dropped); for `dns`
    /// it names the DNS server to ask. Empty when absent.
    pub authority: String,
    /// What the resolver resolves: the URL path without its leading `/`, or the opaque
    /// part of `scheme:opaque` (which Go's URL parser leaves percent-encoded).
    pub endpoint: String,
    /// The decoded path with its leading `/`, or the opaque part: `unix` needs the slash
    /// that `endpoint` trims.
    path: String,
    /// Whether the target had the `scheme:opaque` form, which `Display` must keep because
    /// `unix:rel` and `unix:///rel` are different sockets.
    opaque: bool,
    /// The authority as written (validated, user info dropped), for `Display`.
    raw_authority: String,
    /// The path or opaque part as written (query and fragment dropped), for `Display`.
    raw_path: String,
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme
            && self.authority == other.authority
            && self.endpoint == other.endpoint
            && self.path == other.path
            && self.opaque == other.opaque
    }
}

impl Eq for Target {}

impl Target {
    /// Parses a user's target string the way grpc-go's `NewClient`/`Dial` do.
    ///
    /// If `s` is a URL whose (lower-cased) scheme `is_known` accepts, that URL is the
    /// target. Otherwise `"{default_scheme}:///{s}"` is parsed instead, and its scheme
    /// must be known too. grpc-go's `NewClient` uses `dns` as the default scheme, its
    /// deprecated `Dial` uses `passthrough`.
    ///
    /// Parsing only checks URL syntax: whether the endpoint makes sense for the scheme is
    /// the resolver's business ([`static_addresses`], [`dns_host_port`]). So the empty
    /// string parses (as `dns:///`) and fails at resolution, as in grpc-go.
    pub fn parse(
        s: &str,
        default_scheme: &str,
        is_known: &dyn Fn(&str) -> bool,
    ) -> Result<Target, TargetError> {
        if let Ok(url) = Url::parse(s)
            && !url.scheme.is_empty()
            && is_known(&url.scheme)
        {
            return Ok(url.into_target());
        }
        let canonical = format!("{default_scheme}:///{s}");
        let url = Url::parse(&canonical).map_err(|reason| TargetError::InvalidUri {
            target: s.to_owned(),
            reason,
        })?;
        if url.scheme.is_empty() || !is_known(&url.scheme) {
            return Err(TargetError::UnknownDefaultScheme {
                target: s.to_owned(),
                scheme: default_scheme.to_owned(),
            });
        }
        Ok(url.into_target())
    }

    /// The `:authority` for calls on this channel (grpc-go `ClientConn.initAuthority`).
    ///
    /// A non-empty override (grpc-go's `WithAuthority`, or the TLS server name) wins; an
    /// empty one counts as absent, as Go's zero value does. Unix sockets have no host
    /// name, so they use `localhost`. Otherwise the endpoint is the authority, with
    /// `localhost` in front of a bare `:port` (net.Dial's meaning of an empty host) and
    /// characters that RFC 3986 does not allow in an authority percent-encoded.
    pub fn authority_for_call(&self, override_authority: Option<&str>) -> String {
        if let Some(a) = override_authority.filter(|a| !a.is_empty()) {
            return a.to_owned();
        }
        if self.scheme == "unix" || self.scheme == "unix-abstract" {
            return "localhost".to_owned();
        }
        let encoded = encode_authority(&self.endpoint);
        if self.endpoint.starts_with(':') {
            format!("localhost{encoded}")
        } else {
            encoded
        }
    }

    /// Whether the target had the `scheme:opaque` form (no `//` and no leading `/`).
    pub fn is_opaque(&self) -> bool {
        self.opaque
    }

    /// The decoded URL path with its leading `/` kept, or the opaque part: what the
    /// `unix` resolver uses as the socket path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Target {
    /// `scheme://authority/path`, or `scheme:opaque` for opaque targets; grpc-go's
    /// `Target.String` would turn `unix:rel` into `unix:///rel`, another socket.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.opaque {
            write!(f, "{}:{}", self.scheme, self.raw_path)
        } else {
            write!(
                f,
                "{}://{}{}",
                self.scheme, self.raw_authority, self.raw_path
            )
        }
    }
}

/// Why a target string could not be parsed or resolved. Each variant names the target
/// (as given to [`Target::parse`], or in its `Display` form for resolution errors).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// Not a URL even with the default scheme in front (Go `url.Parse` rules).
    InvalidUri {
        /// The target string.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The target needed the default scheme, but no resolver is known for it.
    UnknownDefaultScheme {
        /// The target string.
        target: String,
        /// The default scheme.
        scheme: String,
    },
    /// `unix`, `unix-abstract`, `ipv4` and `ipv6` targets name a local address, so an
    /// authority (`unix://host/path`) is a mistake, most often a missing third slash.
    UnexpectedAuthority {
        /// The target.
        target: String,
        /// The authority found.
        authority: String,
    },
    /// The endpoint, or one entry of an address list, is empty.
    MissingAddress {
        /// The target.
        target: String,
    },
    /// A port is needed but absent, or a colon is followed by nothing.
    MissingPort {
        /// The target.
        target: String,
        /// The address lacking the port.
        address: String,
    },
    /// A port that is not a decimal number in `0..=65535`.
    InvalidPort {
        /// The target.
        target: String,
        /// The port as written.
        port: String,
    },
    /// An address that does not have the form the scheme requires.
    InvalidAddress {
        /// The target.
        target: String,
        /// The offending address.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::InvalidUri { target, reason } => {
                write!(f, "invalid target {target:?}: {reason}")
            }
            TargetError::UnknownDefaultScheme { target, scheme } => write!(
                f,
                "invalid target {target:?}: no resolver for the default scheme {scheme:?}"
            ),
            TargetError::UnexpectedAuthority { target, authority } => write!(
                f,
                "invalid target {target:?}: this scheme takes no authority, found {authority:?}"
            ),
            TargetError::MissingAddress { target } => {
                write!(f, "invalid target {target:?}: missing address")
            }
            TargetError::MissingPort { target, address } => {
                write!(f, "invalid target {target:?}: missing port in {address:?}")
            }
            TargetError::InvalidPort { target, port } => {
                write!(f, "invalid target {target:?}: invalid port {port:?}")
            }
            TargetError::InvalidAddress {
                target,
                address,
                reason,
            } => write!(
                f,
                "invalid target {target:?}: invalid address {address:?}: {reason}"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// An address a transport can connect to, or hand to a dialer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IP address and port.
    Socket(SocketAddr),
    /// A Unix domain socket path, relative or absolute.
    Unix(String),
    /// A name in Linux's abstract socket namespace, without the leading NUL.
    UnixAbstract(String),
    /// A host name and port left for the dialer to resolve: passthrough's contract is
    /// that the name reaches the dialer untouched.
    Name {
        /// The host, without IPv6 brackets.
        host: String,
        /// The port.
        port: u16,
    },
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Socket(sa) => write!(f, "{sa}"),
            Address::Unix(p) => write!(f, "unix:{p}"),
            Address::UnixAbstract(n) => write!(f, "unix-abstract:{n}"),
            Address::Name { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// The addresses of the built-in resolvers that need no I/O: `passthrough`, `unix`,
/// `unix-abstract`, `ipv4` and `ipv6`. `None` for every other scheme (`dns`, custom
/// resolvers), which must be resolved elsewhere.
///
/// * `passthrough`: the endpoint, as an IP socket address if it is one, else a
///   [`Address::Name`]. grpc-go passes the endpoint to `net.Dial` unchanged, which
///   rejects a host without a port, so that is an error here rather than a default
///   port. Also as in grpc-go's dialer, an endpoint `unix:path` / `unix:///path` dials a
///   Unix socket.
/// * `unix`, `unix-abstract`: the path with its leading `/` kept (`endpoint` trims it).
/// * `ipv4`, `ipv6`: C-core's comma-separated lists, port 443 where none is given;
///   IPv6 addresses with a port need brackets.
pub fn static_addresses(target: &Target) -> Option<Result<Vec<Address>, TargetError>> {
    let result = match target.scheme.as_str() {
        "passthrough" => passthrough_address(target).map(|a| vec![a]),
        "unix" | "unix-abstract" => unix_address(target).map(|a| vec![a]),
        "ipv4" => ip_list(target, false),
        "ipv6" => ip_list(target, true),
        _ => return None,
    };
    Some(result)
}

/// Splits a `dns` target's endpoint into host and port (grpc-go's dns resolver
/// `parseTarget`): a bare IP address (IPv6 without brackets too) or a host without a
/// port gets [`DEFAULT_PORT`], `[v6]:port` loses its brackets, and `:port` means
/// `localhost`. A trailing colon is an error rather than a default, since it usually
/// means a port was lost.
pub fn dns_host_port(target: &Target) -> Result<(String, u16), TargetError> {
    let endpoint = target.endpoint.as_str();
    let err_target = || target.to_string();
    if endpoint.is_empty() {
        return Err(TargetError::MissingAddress {
            target: err_target(),
        });
    }
    if parse_ip_with_zone(endpoint) {
        return Ok((endpoint.to_owned(), DEFAULT_PORT));
    }
    let (host, port) = match split_host_port(endpoint) {
        Ok((host, port)) => {
            if port.is_empty() {
                return Err(TargetError::MissingPort {
                    target: err_target(),
                    address: endpoint.to_owned(),
                });
            }
            let host = if host.is_empty() { "localhost" } else { host };
            (host, parse_port(port, &err_target)?)
        }
        Err(_) => {
            let with_port = format!("{endpoint}:{DEFAULT_PORT}");
            match split_host_port(&with_port) {
                Ok(("", _)) => {
                    return Err(TargetError::MissingAddress {
                        target: err_target(),
                    });
                }
                Ok((host, _)) => return Ok((host.to_owned(), DEFAULT_PORT)),
                Err(reason) => {
                    return Err(TargetError::InvalidAddress {
                        target: err_target(),
                        address: endpoint.to_owned(),
                        reason,
                    });
                }
            }
        }
    };
    Ok((host.to_owned(), port))
}

fn passthrough_address(target: &Target) -> Result<Address, TargetError> {
    let endpoint = target.endpoint.as_str();
    let err_target = || target.to_string();
    if endpoint.is_empty() {
        return Err(TargetError::MissingAddress {
            target: err_target(),
        });
    }
    // grpc-go's transport (`ParseDialTarget`) dials `unix:` addresses as Unix sockets,
    // whatever resolver produced them.
    if let Some(("unix", rest)) = endpoint.split_once(':') {
        let path = if !endpoint.contains(":/") {
            Some(rest.to_owned())
        } else if let Ok(url) = Url::parse(endpoint) {
            Some(if url.path.is_empty() {
                url.host
            } else {
                url.path
            })
        } else {
            None
        };
        if let Some(path) = path {
            if path.is_empty() {
                return Err(TargetError::MissingAddress {
                    target: err_target(),
                });
            }
            return Ok(Address::Unix(path));
        }
    }
    if let Ok(sa) = endpoint.parse::<SocketAddr>() {
        return Ok(Address::Socket(sa));
    }
    let (host, port) = split_host_port(endpoint).map_err(|reason| match reason {
        MISSING_PORT => TargetError::MissingPort {
            target: err_target(),
            address: endpoint.to_owned(),
        },
        reason => TargetError::InvalidAddress {
            target: err_target(),
            address: endpoint.to_owned(),
            reason,
        },
    })?;
    if port.is_empty() {
        return Err(TargetError::MissingPort {
            target: err_target(),
            address: endpoint.to_owned(),
        });
    }
    let port = parse_port(port, &err_target)?;
    let host = if host.is_empty() { "localhost" } else { host };
    Ok(Address::Name {
        host: host.to_owned(),
        port,
    })
}

fn unix_address(target: &Target) -> Result<Address, TargetError> {
    if !target.authority.is_empty() {
        return Err(TargetError::UnexpectedAuthority {
            target: target.to_string(),
            authority: target.authority.clone(),
        });
    }
    if target.path.is_empty() {
        return Err(TargetError::MissingAddress {
            target: target.to_string(),
        });
    }
    let path = target.path.clone();
    Ok(if target.scheme == "unix" {
        Address::Unix(path)
    } else {
        Address::UnixAbstract(path)
    })
}

fn ip_list(target: &Target, v6: bool) -> Result<Vec<Address>, TargetError> {
    let err_target = || target.to_string();
    if !target.authority.is_empty() {
        return Err(TargetError::UnexpectedAuthority {
            target: err_target(),
            authority: target.authority.clone(),
        });
    }
    if target.endpoint.is_empty() {
        return Err(TargetError::MissingAddress {
            target: err_target(),
        });
    }
    let invalid = |entry: &str, reason| TargetError::InvalidAddress {
        target: err_target(),
        address: entry.to_owned(),
        reason,
    };
    let mut out = Vec::new();
    for entry in target.endpoint.split(',') {
        if entry.is_empty() {
            return Err(TargetError::MissingAddress {
                target: err_target(),
            });
        }
        let (ip_text, port_text) = if v6 {
            match entry.strip_prefix('[') {
                Some(rest) => match rest.split_once(']') {
                    Some((ip, "")) => (ip, None),
                    Some((ip, tail)) => match tail.strip_prefix(':') {
                        Some(port) => (ip, Some(port)),
                        None => return Err(invalid(entry, "unexpected text after ']'")),
                    },
                    None => return Err(invalid(entry, "missing ']'")),
                },
                None => (entry, None),
            }
        } else {
            match entry.split_once(':') {
                Some((ip, port)) => (ip, Some(port)),
                None => (entry, None),
            }
        };
        let port = match port_text {
            None => DEFAULT_PORT,
            Some("") => {
                return Err(TargetError::MissingPort {
                    target: err_target(),
                    address: entry.to_owned(),
                });
            }
            Some(p) => parse_port(p, &err_target)?,
        };
        let sa = if v6 {
            let ip: Ipv6Addr = ip_text
                .parse()
                .map_err(|_| invalid(entry, "not an IPv6 address"))?;
            SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))
        } else {
            let ip: Ipv4Addr = ip_text
                .parse()
                .map_err(|_| invalid(entry, "not an IPv4 address"))?;
            SocketAddr::V4(SocketAddrV4::new(ip, port))
        };
        out.push(Address::Socket(sa));
    }
    Ok(out)
}

/// A decimal port; Rust's `u16::from_str` would also take a leading `+`.
fn parse_port(port: &str, target: &dyn Fn() -> String) -> Result<u16, TargetError> {
    let invalid = || TargetError::InvalidPort {
        target: target(),
        port: port.to_owned(),
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    port.parse().map_err(|_| invalid())
}

/// Go's `netip.ParseAddr`: an IPv4 or IPv6 address, IPv6 with an optional `%zone`.
fn parse_ip_with_zone(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    match s.split_once('%') {
        Some((ip, zone)) => !zone.is_empty() && ip.parse::<Ipv6Addr>().is_ok(),
        None => false,
    }
}

const MISSING_PORT: &str = "missing port in address";

/// Go's `net.SplitHostPort`: `host:port` or `[host]:port`; the port may be empty.
fn split_host_port(s: &str) -> Result<(&str, &str), &'static str> {
    let Some(colon) = s.rfind(':') else {
        return Err(MISSING_PORT);
    };
    let (host, after_host) = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']').map(|e| e + 1) else {
            return Err("missing ']' in address");
        };
        if end + 1 == s.len() {
            return Err(MISSING_PORT);
        }
        if end + 1 != colon {
            return Err(if s.as_bytes()[end + 1] == b':' {
                "too many colons in address"
            } else {
                MISSING_PORT
            });
        }
        (&s[1..end], end + 1)
    } else {
        let host = &s[..colon];
        if host.contains(':') {
            return Err("too many colons in address");
        }
        (host, 0)
    };
    let open_from = if after_host == 0 { 0 } else { 1 };
    if s[open_from..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if s[after_host..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host, &s[colon + 1..]))
}

/// grpc-go's `encodeAuthority`: percent-encodes what RFC 3986 §3.2 does not allow in an
/// authority, byte by byte.
fn encode_authority(s: &str) -> String {
    let keep = |c: u8| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b'@'
            )
    };
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The parts of Go's `url.URL` that gRPC uses. Query and fragment are validated (Go
/// rejects a target with a bad escape there) and dropped.
struct Url {
    scheme: String,
    raw_host: String,
    host: String,
    raw_path: String,
    path: String,
    opaque: bool,
}

impl Url {
    fn into_target(self) -> Target {
        Target {
            endpoint: self.path.strip_prefix('/').unwrap_or(&self.path).to_owned(),
            scheme: self.scheme,
            authority: self.host,
            path: self.path,
            opaque: self.opaque,
            raw_authority: self.raw_host,
            raw_path: self.raw_path,
        }
    }

    /// Go's `url.Parse` (RFC 3986 with Go's leniencies), minus what gRPC ignores.
    fn parse(raw: &str) -> Result<Url, &'static str> {
        let (u, fragment) = match raw.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (raw, None),
        };
        if u.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("invalid control character in URL");
        }
        let (scheme, rest) = split_scheme(u)?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = match rest.strip_suffix('?') {
            Some(r) if !r.contains('?') => r,
            _ => rest.split_once('?').map_or(rest, |(r, _)| r),
        };
        let mut url = Url {
            scheme,
            raw_host: String::new(),
            host: String::new(),
            raw_path: String::new(),
            path: String::new(),
            opaque: false,
        };
        if let Some(f) = fragment {
            unescape(f, Mode::Other)?;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                // Go keeps a rootless path as written, without decoding it.
                url.opaque = true;
                url.raw_path = rest.to_owned();
                url.path = rest.to_owned();
                return Ok(url);
            }
            let first_segment = rest.split('/').next().unwrap_or("");
            if first_segment.contains(':') {
                return Err("first path segment in URL cannot contain colon");
            }
        }
        let mut path = rest;
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let authority = &rest[2..];
            let (authority, tail) = match authority.find('/') {
                Some(i) => authority.split_at(i),
                None => (authority, ""),
            };
            path = tail;
            let (raw_host, host) = parse_authority(authority)?;
            url.raw_host = raw_host.to_owned();
            url.host = host;
        }
        url.raw_path = path.to_owned();
        url.path = into_utf8(unescape(path, Mode::Other)?)?;
        Ok(url)
    }
}

/// Go's `getScheme`: a scheme is letters, then letters, digits, `+`, `-`, `.`, before
/// the first `:`; anything else means there is no scheme.
fn split_scheme(u: &str) -> Result<(&str, &str), &'static str> {
    for (i, c) in u.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme"),
            b':' => return Ok((&u[..i], &u[i + 1..])),
            _ => return Ok(("", u)),
        }
    }
    Ok(("", u))
}

/// Go's `parseAuthority`: returns the host as written (user info removed) and decoded.
fn parse_authority(authority: &str) -> Result<(&str, String), &'static str> {
    let (userinfo, raw_host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let host = parse_host(raw_host)?;
    if let Some(userinfo) = userinfo {
        let valid = userinfo.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'-' | b'.'
                        | b'_'
                        | b':'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b'%'
                        | b'@'
                )
        });
        if !valid {
            return Err("invalid userinfo");
        }
        unescape(userinfo, Mode::Other)?;
    }
    Ok((raw_host, host))
}

/// Go's `parseHost`, including the Go 1.25.2 rule (CVE-2025-47912) that brackets
/// enclose an IPv6 address and nothing else.
fn parse_host(host: &str) -> Result<String, &'static str> {
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host");
        };
        if !valid_optional_port(&host[close + 1..]) {
            return Err("invalid port after host");
        }
        let zone = host[..close].find("%25");
        let ip_end = zone.unwrap_or(close);
        let ip = into_utf8(unescape(&host[1..ip_end], Mode::Host)?)?;
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err("brackets in host must enclose an IPv6 address");
        }
        if let Some(zone) = zone {
            let mut out = unescape(&host[..zone], Mode::Host)?;
            out.extend(unescape(&host[zone..close], Mode::Zone)?);
            out.extend(unescape(&host[close..], Mode::Host)?);
            return into_utf8(out);
        }
    } else if let Some(colon) = host.rfind(':')
        && !valid_optional_port(&host[colon..])
    {
        return Err("invalid port after host");
    }
    into_utf8(unescape(host, Mode::Host)?)
}

/// Go's `validOptionalPort`: empty, or `:` and digits (any number of them).
fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Zone,
    /// Path, user info, fragment: any well-formed escape is fine.
    Other,
}

/// Go's host-mode `shouldEscape`, for ASCII: what may appear literally in a host.
fn host_char_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
}

/// Go's `unescape`, with its per-mode restrictions: a host may only escape non-ASCII
/// bytes (and `%25`), a zone may escape what a host could contain literally.
fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, &'static str> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let hex = |j: usize| {
                bytes
                    .get(j)
                    .and_then(|&h| char::from(h).to_digit(16))
                    .map(|d| d as u8)
            };
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err("invalid URL escape");
            };
            let v = (hi << 4) | lo;
            let is_pct25 = v == b'%';
            match mode {
                Mode::Host if hi < 8 && !is_pct25 => return Err("invalid URL escape in host"),
                Mode::Zone if !is_pct25 && v != b' ' && (v >= 0x80 || !host_char_ok(v)) => {
                    return Err("invalid URL escape in zone");
                }
                _ => {}
            }
            out.push(v);
            i += 3;
        } else {
            if mode != Mode::Other && c < 0x80 && !host_char_ok(c) {
                return Err("invalid character in host name");
            }
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn into_utf8(bytes: Vec<u8>) -> Result<String, &'static str> {
    String::from_utf8(bytes).map_err(|_| "percent-escapes decode to invalid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn known(s: &str) -> bool {
        matches!(
            s,
            "dns" | "unix" | "unix-abstract" | "ipv4" | "ipv6" | "passthrough" | "myscheme"
        )
    }

    fn parse(s: &str, default: &str) -> Result<Target, TargetError> {
        Target::parse(s, default, &known)
    }

    fn sock(s: &str) -> Address {
        Address::Socket(s.parse().unwrap())
    }

    fn name(host: &str, port: u16) -> Address {
        Address::Name {
            host: host.to_owned(),
            port,
        }
    }

    /// What resolution should give: static addresses, a dns split, or neither.
    #[derive(Debug)]
    enum Resolved {
        Static(Vec<Address>),
        Dns(&'static str, u16),
        DnsErr(fn(&TargetError) -> bool),
        StaticErr(fn(&TargetError) -> bool),
        Custom,
    }
    use Resolved::*;

    struct Case {
        input: &'static str,
        default: &'static str,
        scheme: &'static str,
        authority: &'static str,
        endpoint: &'static str,
        call_authority: &'static str,
        resolved: Resolved,
    }

    #[rustfmt::skip]
    fn valid_cases() -> Vec<Case> {
        let c = |input, default, scheme, authority, endpoint, call_authority, resolved| Case {
            input, default, scheme, authority, endpoint, call_authority, resolved,
        };
        vec![
            // dns, explicit.
            c("dns:///foo.googleapis.com:8080", "dns", "dns", "", "foo.googleapis.com:8080", "foo.googleapis.com:8080", Dns("foo.googleapis.com", 8080)),
            c("dns://8.8.8.8/foo:443", "dns", "dns", "8.8.8.8", "foo:443", "foo:443", Dns("foo", 443)),
            c("dns://8.8.8.8:53/host", "dns", "dns", "8.8.8.8:53", "host", "host", Dns("host", 443)),
            c("dns:foo.com", "dns", "dns", "", "foo.com", "foo.com", Dns("foo.com", 443)),
            c("DNS:///Foo:80", "dns", "dns", "", "Foo:80", "Foo:80", Dns("Foo", 80)),
            c("dns:///[::1]:80", "dns", "dns", "", "[::1]:80", "[::1]:80", Dns("::1", 80)),
            c("dns:///[::1]", "dns", "dns", "", "[::1]", "[::1]", Dns("::1", 443)),
            c("dns:///::1", "dns", "dns", "", "::1", "localhost::1", Dns("::1", 443)),
            c("dns:///fe80::1%25eth0", "dns", "dns", "", "fe80::1%eth0", "fe80::1%25eth0", Dns("fe80::1%eth0", 443)),
            c("dns:///:50051", "dns", "dns", "", ":50051", "localhost:50051", Dns("localhost", 50051)),
            c("dns:///foo%20bar:1", "dns", "dns", "", "foo bar:1", "foo%20bar:1", Dns("foo bar", 1)),
            c("dns:///foo?query#frag", "dns", "dns", "", "foo", "foo", Dns("foo", 443)),
            c("dns://[::1]:53/x", "dns", "dns", "[::1]:53", "x", "x", Dns("x", 443)),
            c("dns://user@8.8.8.8/x", "dns", "dns", "8.8.8.8", "x", "x", Dns("x", 443)),
            // Bare targets under dns.
            c("localhost:50051", "dns", "dns", "", "localhost:50051", "localhost:50051", Dns("localhost", 50051)),
            c("localhost", "dns", "dns", "", "localhost", "localhost", Dns("localhost", 443)),
            c("[::1]:50051", "dns", "dns", "", "[::1]:50051", "[::1]:50051", Dns("::1", 50051)),
            c("::1", "dns", "dns", "", "::1", "localhost::1", Dns("::1", 443)),
            c("1.2.3.4", "dns", "dns", "", "1.2.3.4", "1.2.3.4", Dns("1.2.3.4", 443)),
            c(":50051", "dns", "dns", "", ":50051", "localhost:50051", Dns("localhost", 50051)),
            c("/tmp/sock", "dns", "dns", "", "/tmp/sock", "%2Ftmp%2Fsock", Dns("/tmp/sock", 443)),
            c("", "dns", "dns", "", "", "", DnsErr(|e| matches!(e, TargetError::MissingAddress { .. }))),
            c("host:", "dns", "dns", "", "host:", "host:", DnsErr(|e| matches!(e, TargetError::MissingPort { .. }))),
            c("host:http", "dns", "dns", "", "host:http", "host:http", DnsErr(|e| matches!(e, TargetError::InvalidPort { .. }))),
            c("host:99999", "dns", "dns", "", "host:99999", "host:99999", DnsErr(|e| matches!(e, TargetError::InvalidPort { .. }))),
            c("a:b:c", "dns", "dns", "", "a:b:c", "a:b:c", DnsErr(|e| matches!(e, TargetError::InvalidAddress { .. }))),
            // Unknown schemes fall back, the whole string becoming the endpoint.
            c("unknown:///foo", "dns", "dns", "", "unknown:///foo", "unknown:%2F%2F%2Ffoo", DnsErr(|e| matches!(e, TargetError::InvalidPort { .. }))),
            c("unknown:///foo", "passthrough", "passthrough", "", "unknown:///foo", "unknown:%2F%2F%2Ffoo", StaticErr(|e| matches!(e, TargetError::InvalidPort { .. }))),
            // Bare targets under passthrough (grpc-go's Dial).
            c("localhost:50051", "passthrough", "passthrough", "", "localhost:50051", "localhost:50051", Static(vec![name("localhost", 50051)])),
            c("1.2.3.4:80", "passthrough", "passthrough", "", "1.2.3.4:80", "1.2.3.4:80", Static(vec![sock("1.2.3.4:80")])),
            c("[::1]:50051", "passthrough", "passthrough", "", "[::1]:50051", "[::1]:50051", Static(vec![sock("[::1]:50051")])),
            c(":80", "passthrough", "passthrough", "", ":80", "localhost:80", Static(vec![name("localhost", 80)])),
            c("localhost", "passthrough", "passthrough", "", "localhost", "localhost", StaticErr(|e| matches!(e, TargetError::MissingPort { .. }))),
            c("", "passthrough", "passthrough", "", "", "", StaticErr(|e| matches!(e, TargetError::MissingAddress { .. }))),
            // passthrough, explicit.
            c("passthrough:///host.example:1", "dns", "passthrough", "", "host.example:1", "host.example:1", Static(vec![name("host.example", 1)])),
            c("passthrough:///[fe80::1%25eth0]:9", "dns", "passthrough", "", "[fe80::1%eth0]:9", "[fe80::1%25eth0]:9", Static(vec![name("fe80::1%eth0", 9)])),
            c("passthrough:///unix:///tmp/s", "dns", "passthrough", "", "unix:///tmp/s", "unix:%2F%2F%2Ftmp%2Fs", Static(vec![Address::Unix("/tmp/s".into())])),
            c("passthrough:///unix:rel", "dns", "passthrough", "", "unix:rel", "unix:rel", Static(vec![Address::Unix("rel".into())])),
            // unix.
            c("unix:sock.sock", "dns", "unix", "", "sock.sock", "localhost", Static(vec![Address::Unix("sock.sock".into())])),
            c("unix:/tmp/s", "dns", "unix", "", "tmp/s", "localhost", Static(vec![Address::Unix("/tmp/s".into())])),
            c("unix:///tmp/s", "dns", "unix", "", "tmp/s", "localhost", Static(vec![Address::Unix("/tmp/s".into())])),
            c("unix:///tmp/a%20b", "dns", "unix", "", "tmp/a b", "localhost", Static(vec![Address::Unix("/tmp/a b".into())])),
            c("unix:rel%20x", "dns", "unix", "", "rel%20x", "localhost", Static(vec![Address::Unix("rel%20x".into())])),
            c("unix://host/tmp/s", "dns", "unix", "host", "tmp/s", "localhost", StaticErr(|e| matches!(e, TargetError::UnexpectedAuthority { .. }))),
            c("unix:", "dns", "unix", "", "", "localhost", StaticErr(|e| matches!(e, TargetError::MissingAddress { .. }))),
            c("unix:///tmp/s", "dns", "unix", "", "tmp/s", "localhost", Static(vec![Address::Unix("/tmp/s".into())])),
            // unix-abstract.
            c("unix-abstract:name", "dns", "unix-abstract", "", "name", "localhost", Static(vec![Address::UnixAbstract("name".into())])),
            c("unix-abstract:///name", "dns", "unix-abstract", "", "name", "localhost", Static(vec![Address::UnixAbstract("/name".into())])),
            // ipv4.
            c("ipv4:1.2.3.4", "dns", "ipv4", "", "1.2.3.4", "1.2.3.4", Static(vec![sock("1.2.3.4:443")])),
            c("ipv4:1.2.3.4:80,5.6.7.8", "dns", "ipv4", "", "1.2.3.4:80,5.6.7.8", "1.2.3.4:80,5.6.7.8", Static(vec![sock("1.2.3.4:80"), sock("5.6.7.8:443")])),
            c("ipv4:///1.2.3.4:80", "dns", "ipv4", "", "1.2.3.4:80", "1.2.3.4:80", Static(vec![sock("1.2.3.4:80")])),
            c("ipv4:", "dns", "ipv4", "", "", "", StaticErr(|e| matches!(e, TargetError::MissingAddress { .. }))),
            c("ipv4:1.2.3.4,", "dns", "ipv4", "", "1.2.3.4,", "1.2.3.4,", StaticErr(|e| matches!(e, TargetError::MissingAddress { .. }))),
            c("ipv4:1.2.3.4:", "dns", "ipv4", "", "1.2.3.4:", "1.2.3.4:", StaticErr(|e| matches!(e, TargetError::MissingPort { .. }))),
            c("ipv4:1.2.3.4:x", "dns", "ipv4", "", "1.2.3.4:x", "1.2.3.4:x", StaticErr(|e| matches!(e, TargetError::InvalidPort { .. }))),
            c("ipv4:1.2.3", "dns", "ipv4", "", "1.2.3", "1.2.3", StaticErr(|e| matches!(e, TargetError::InvalidAddress { .. }))),
            c("ipv4://h/1.2.3.4", "dns", "ipv4", "h", "1.2.3.4", "1.2.3.4", StaticErr(|e| matches!(e, TargetError::UnexpectedAuthority { .. }))),
            // ipv6.
            c("ipv6:::1", "dns", "ipv6", "", "::1", "localhost::1", Static(vec![sock("[::1]:443")])),
            c("ipv6:[::1]:80,[2001:db8::1]", "dns", "ipv6", "", "[::1]:80,[2001:db8::1]", "[::1]:80,[2001:db8::1]", Static(vec![sock("[::1]:80"), sock("[2001:db8::1]:443")])),
            c("ipv6:[::1]x", "dns", "ipv6", "", "[::1]x", "[::1]x", StaticErr(|e| matches!(e, TargetError::InvalidAddress { .. }))),
            c("ipv6:1.2.3.4", "dns", "ipv6", "", "1.2.3.4", "1.2.3.4", StaticErr(|e| matches!(e, TargetError::InvalidAddress { .. }))),
            // Custom scheme: parsed, resolved elsewhere.
            c("myscheme://auth/endpoint", "dns", "myscheme", "auth", "endpoint", "endpoint", Custom),
            c("myscheme:opaque/x", "dns", "myscheme", "", "opaque/x", "opaque%2Fx", Custom),
        ]
    }

    #[test]
    fn valid_targets() {
        for case in valid_cases() {
            let what = format!("{:?} (default {})", case.input, case.default);
            let t = parse(case.input, case.default).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(t.scheme, case.scheme, "{what}");
            assert_eq!(t.authority, case.authority, "{what}");
            assert_eq!(t.endpoint, case.endpoint, "{what}");
            assert_eq!(t.authority_for_call(None), case.call_authority, "{what}");
            assert_eq!(t.authority_for_call(Some("over")), "over", "{what}");
            assert_eq!(
                t.authority_for_call(Some("")),
                case.call_authority,
                "{what}"
            );
            let reparsed = parse(&t.to_string(), case.default).unwrap();
            assert_eq!(reparsed, t, "{what}: round trip via {t}");
            match case.resolved {
                Static(want) => {
                    let got = static_addresses(&t).expect("static scheme");
                    assert_eq!(
                        got.unwrap_or_else(|e| panic!("{what}: {e}")),
                        want,
                        "{what}"
                    );
                }
                StaticErr(check) => {
                    let err = static_addresses(&t).expect("static scheme").unwrap_err();
                    assert!(check(&err), "{what}: {err:?}");
                }
                Dns(host, port) => {
                    assert!(static_addresses(&t).is_none(), "{what}");
                    assert_eq!(dns_host_port(&t), Ok((host.to_owned(), port)), "{what}");
                }
                DnsErr(check) => {
                    let err = dns_host_port(&t).unwrap_err();
                    assert!(check(&err), "{what}: {err:?}");
                }
                Custom => assert!(static_addresses(&t).is_none(), "{what}"),
            }
        }
    }

    #[test]
    fn invalid_targets() {
        let no_default = |_: &str| false;
        type Check = fn(&TargetError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("dns:///a\nb", |e| {
                matches!(e, TargetError::InvalidUri { .. })
            }),
            ("foo%zz", |e| matches!(e, TargetError::InvalidUri { .. })),
            ("dns:///%ff", |e| {
                matches!(e, TargetError::InvalidUri { .. })
            }),
            ("x#%g0", |e| matches!(e, TargetError::InvalidUri { .. })),
        ];
        for (input, check) in cases {
            let err = parse(input, "dns").unwrap_err();
            assert!(check(&err), "{input:?}: {err:?}");
            assert!(err.to_string().contains("invalid target"), "{err}");
        }
        // A bad authority makes the URL invalid, so (as in grpc-go) the whole string
        // becomes the endpoint of the default scheme, and fails only at resolution.
        for input in [
            "dns://a b/x",
            "dns://[1.2.3.4]/x",
            "dns://[::1/x",
            "dns://h:x/y",
        ] {
            let t = parse(input, "dns").unwrap();
            assert_eq!((t.scheme.as_str(), t.endpoint.as_str()), ("dns", input));
            assert!(dns_host_port(&t).is_err(), "{input:?}");
        }
        // The fallback parse cannot fail on these, so the unknown default shows.
        let err = Target::parse("localhost:1", "dns", &no_default).unwrap_err();
        assert_eq!(
            err,
            TargetError::UnknownDefaultScheme {
                target: "localhost:1".into(),
                scheme: "dns".into()
            }
        );
    }

    #[test]
    fn addresses_display() {
        assert_eq!(sock("1.2.3.4:50051").to_string(), "1.2.3.4:50051");
        assert_eq!(sock("[::1]:443").to_string(), "[::1]:443");
        assert_eq!(Address::Unix("/tmp/s".into()).to_string(), "unix:/tmp/s");
        assert_eq!(
            Address::UnixAbstract("name".into()).to_string(),
            "unix-abstract:name"
        );
        assert_eq!(name("host", 80).to_string(), "host:80");
        assert_eq!(name("fe80::1%eth0", 80).to_string(), "[fe80::1%eth0]:80");
    }

    #[test]
    fn display_keeps_meaning() {
        let t = parse("unix:rel", "dns").unwrap();
        assert_eq!(t.to_string(), "unix:rel");
        assert!(t.is_opaque());
        let t = parse("unix:/abs", "dns").unwrap();
        assert_eq!(t.to_string(), "unix:///abs");
        assert_eq!(t.path(), "/abs");
        let t = parse("dns:///a%41", "dns").unwrap();
        assert_eq!(t.endpoint, "aA");
        assert_eq!(t.to_string(), "dns:///a%41");
        assert_eq!(t, parse("dns:///aA", "dns").unwrap());
    }

    fn check_never_panics(s: &str) {
        for default in ["dns", "passthrough"] {
            if let Ok(t) = parse(s, default) {
                let _ = static_addresses(&t);
                let _ = dns_host_port(&t);
                let _ = t.authority_for_call(None);
                let again =
                    parse(&t.to_string(), default).unwrap_or_else(|e| panic!("{s:?} → {t}: {e}"));
                assert_eq!(again, t, "{s:?} → {t}");
                assert_eq!(again.to_string(), t.to_string());
            }
        }
    }

    proptest! {
        #[test]
        fn parse_is_total_and_display_round_trips(s in ".{0,40}") {
            check_never_panics(&s);
        }

        #[test]
        fn url_like_strings_round_trip(
            s in "([a-zA-Z][a-z0-9+.-]{0,6}:)?(//[a-z0-9@:%\\[\\]._~-]{0,12})?[a-z0-9/:%.,\\[\\]?#@ -]{0,16}"
        ) {
            check_never_panics(&s);
        }
    }
}
