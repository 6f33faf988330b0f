//! Hooks around every call: [`Interceptor`]s (inspect or change a call before it
//! starts, observe how it ended) and [`CallCredentials`] (per-call metadata such as
//! bearer tokens, which by default refuse to travel over plaintext, as grpc-go's
//! `RequireTransportSecurity`).

use std::time::Duration;

use bytes::Bytes;
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::status::Status;

use crate::rt::BoxFuture;

/// Which kind of call an interceptor sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStreaming,
    /// One request, a stream of responses.
    ServerStreaming,
    /// Streams both ways.
    BidiStreaming,
}

/// What an interceptor may see and change before a call starts.
#[derive(Debug)]
pub struct CallInfo<'a> {
    /// `/package.Service/Method`.
    pub path: &'a str,
    /// The kind of call.
    pub kind: CallKind,
    /// The request metadata (add to it to send more).
    pub metadata: &'a mut Metadata,
    /// The call's timeout (lower it to tighten the deadline).
    pub timeout: &'a mut Option<Duration>,
}

/// Runs around every call of a channel, in the order added.
pub trait Interceptor: Send + Sync + 'static {
    /// Before the call starts; an error fails the call with that status without
    /// sending anything.
    fn before(&self, call: &mut CallInfo<'_>) -> Result<(), Status>;

    /// After the call ended with `status` (OK included). The default does nothing.
    fn after(&self, path: &str, kind: CallKind, status: &Status) {
        let _ = (path, kind, status);
    }
}

/// Per-call credentials: metadata computed for each call (grpc-go's
/// `PerRPCCredentials`).
pub trait CallCredentials: Send + Sync + 'static {
    /// The metadata to add for a call to `path` on `authority`. Errors fail the call
    /// (UNAUTHENTICATED is the usual code).
    fn metadata(&self, path: &str, authority: &str) -> BoxFuture<Result<Metadata, Status>>;

    /// Whether these credentials may only be sent over TLS (true by default: a token
    /// over plaintext is a token given away).
    fn require_transport_security(&self) -> bool {
        true
    }
}

/// `authorization: Bearer <token>`, never indexed by HPACK.
#[derive(Clone)]
pub struct BearerToken {
    token: Bytes,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.write_str("BearerToken(…)")
    }
}

impl BearerToken {
    /// Credentials sending `token`.
    pub fn new(token: impl Into<String>) -> BearerToken {
        BearerToken {
            token: Bytes::from(format!("Bearer {}", token.into())),
        }
    }
}

impl CallCredentials for BearerToken {
    fn metadata(&self, _path: &str, _authority: &str) -> BoxFuture<Result<Metadata, Status>> {
        let value = self.token.clone();
        Box::pin(async move {
            let mut md = Metadata::new();
            md.append_sensitive("authorization", value)
                .map_err(|e| Status::unauthenticated(format!("invalid token: {e}")))?;
            Ok(md)
        })
    }
}
