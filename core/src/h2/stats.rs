//! Read-only views of a connection's flow-control windows and buffered bytes, for
//! monitoring, channelz-like pages and simulation invariants. Taking one changes nothing.

use crate::frame::StreamId;

/// A connection's flow-control state as this side sees it (RFC 9113 §5.2, §6.9), from
/// [`Connection::windows`](super::Connection::windows).
///
/// Windows are signed: a stream window may go negative after a
/// SETTINGS_INITIAL_WINDOW_SIZE decrease (§6.9.2). The connection windows never do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionWindows {
    /// Octets we may still send on the connection (the peer's connection window as its
    /// WINDOW_UPDATEs so far allow). Only WINDOW_UPDATE and our DATA move it.
    pub send: i64,
    /// Octets the peer may still send on the connection once the WINDOW_UPDATEs we
    /// queued reach it.
    pub recv: i64,
    /// The connection receive window restored after each update (grows with BDP
    /// estimation). Every connection starts at 65,535 whatever this is, so `recv` may
    /// exceed a smaller limit until the peer has used the difference.
    pub recv_limit: u32,
    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE in force: the send window a new stream
    /// starts with (65,535 until the peer's SETTINGS arrive).
    pub peer_initial_window: u32,
    /// The receive window a new stream starts with: our SETTINGS_INITIAL_WINDOW_SIZE, or
    /// the RFC default 65,535 when larger until our SETTINGS is acknowledged (the peer
    /// may use the default until then, §6.9.3).
    pub local_initial_window: u32,
    /// Our first SETTINGS has been acknowledged.
    pub settings_acked: bool,
}

/// One open stream's flow-control state, from
/// [`Connection::stream_windows`](super::Connection::stream_windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamWindows {
    /// The stream.
    pub stream_id: StreamId,
    /// Octets we may still send on it; negative after the peer lowered its
    /// SETTINGS_INITIAL_WINDOW_SIZE below what we had already sent (§6.9.2).
    pub send: i64,
    /// Octets the peer may still send on it once our frames in flight reach it;
    /// negative only after we lowered our initial window below what the peer had sent.
    pub recv: i64,
    /// The receive window we restore as the application consumes data.
    pub recv_limit: u32,
    /// Credit granted past `recv_limit` so a message larger than the window can
    /// arrive whole, not yet paid back by consumption: the peer was advertised at most
    /// `recv_limit + recv_extra`.
    pub recv_extra: u32,
    /// Octets received on it and not yet consumed by the application.
    pub unconsumed: u32,
}

/// What a connection holds in memory for the peer and the application, from
/// [`Connection::memory`](super::Connection::memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionMemory {
    /// Control frames waiting to be written (SETTINGS ACKs, PING ACKs, RST_STREAMs,
    /// WINDOW_UPDATEs); reading stops at `Config::max_queued_control_frames`.
    pub control_frames: usize,
    /// DATA octets the application queued and the writer has not sent yet, over every
    /// stream (held back by windows or the batch size).
    pub send_queued: usize,
    /// DATA octets delivered to the application and not yet released; reading stops
    /// once this passes the connection receive window.
    pub recv_unconsumed: usize,
    /// Octets read from the socket and not yet parsed into frames (a partial frame, or
    /// frames held back while control replies are queued).
    pub recv_unparsed: usize,
}

impl ConnectionMemory {
    /// Every buffered octet: queued for sending, received and unconsumed, unparsed.
    pub fn bytes(&self) -> usize {
        self.send_queued + self.recv_unconsumed + self.recv_unparsed
    }
}
