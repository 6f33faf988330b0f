//! One HTTP/2 connection, client or server role, as a sans-IO state machine.
//!
//! [`Connection`] is grpc-go's `http2Client`/`http2Server` with its control buffer and
//! loopy writer folded into one deterministic value: bytes and time go in through
//! `recv`/`handle_timeout` and the application's commands; frames to write come out of
//! `poll_transmit`, and what happened comes out of `poll_event`.

mod config;
mod connection;
mod event;
mod stats;
mod stream;
mod transmit;

pub(crate) mod bdp;
pub(crate) mod flow;
pub(crate) mod keepalive;

pub use config::{
    ASSUMED_PEER_MAX_CONCURRENT_STREAMS, Config, DEFAULT_MAX_EMPTY_FRAMES,
    DEFAULT_MAX_HEADER_LIST_SIZE, DEFAULT_MAX_LOCAL_RESETS, DEFAULT_MAX_QUEUED_CONTROL_FRAMES,
    DEFAULT_MAX_REMOTE_RESETS, DEFAULT_MAX_WRITE_BATCH, DEFAULT_REMOTE_RESET_WINDOW,
    DEFAULT_SERVER_MAX_CONCURRENT_STREAMS, DEFAULT_SETTINGS_TIMEOUT, DEFAULT_STREAM_SEND_BUFFER,
    Role, SHUTDOWN_PING_TIMEOUT, SMALL_PAYLOAD_COPY,
};
pub use connection::Connection;
pub use event::{
    CONNECTION_CLOSED_REASON, CloseReason, CommandError, Event, Header, Initiator, StreamReset,
};
pub use keepalive::{
    ClientKeepaliveConfig, EnforcementPolicy, ServerKeepaliveConfig,
    keepalive_time_after_too_many_pings,
};
pub use stats::{ConnectionMemory, ConnectionWindows, StreamWindows};
pub use transmit::Transmit;
