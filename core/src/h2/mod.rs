//! One HTTP/2 connection, client or server role, as a sans-IO state machine.
//!
//! [`Connection`] is grpc-go's `http2Client`/`http2Server` with its control buffer and
//! loopy writer folded into one deterministic value: bytes and time go in through
//! `recv`/`handle_timeout` and the application's commands; frames to write come out of
//! `poll_transmit`, and what happened comes out of `poll_event`.

mod config;
mod connection;
mod event;
mod stream;
mod transmit;

// BDP estimation and keepalive are written ahead of their wiring into `Connection`, and
// part of `flow` serves BDP window growth; the attribute goes once they are wired.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod bdp;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod flow;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod keepalive;

pub use config::{
    ASSUMED_PEER_MAX_CONCURRENT_STREAMS, Config, DEFAULT_MAX_HEADER_LIST_SIZE,
    DEFAULT_MAX_QUEUED_CONTROL_FRAMES, DEFAULT_MAX_WRITE_BATCH,
    DEFAULT_SERVER_MAX_CONCURRENT_STREAMS, DEFAULT_SETTINGS_TIMEOUT, DEFAULT_STREAM_SEND_BUFFER,
    Role, SMALL_PAYLOAD_COPY,
};
pub use connection::Connection;
pub use event::{CloseReason, CommandError, Event, Header, Initiator, StreamReset};
pub use transmit::Transmit;
