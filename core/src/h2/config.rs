//! Connection configuration and the defaults behind it.

use std::time::Duration;

use super::keepalive::{ClientKeepaliveConfig, EnforcementPolicy, ServerKeepaliveConfig};
use crate::frame::DEFAULT_INITIAL_WINDOW_SIZE;
use crate::hpack::DEFAULT_ENCODER_TABLE_CAP;

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the preface, opens odd-numbered streams.
    Client,
    /// Validates the preface, accepts odd-numbered streams.
    Server,
}

/// Header list size we advertise by default (SETTINGS_MAX_HEADER_LIST_SIZE): 16 KiB, as
/// gRPC's C core does. gRPC metadata is small; a larger list is a mistake or an attack,
/// and every byte of it is held in memory while the block is decoded.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// Largest frame payload we accept by default (SETTINGS_MAX_FRAME_SIZE): 64 KiB, four
/// times the RFC's initial 16 KiB, which grpc-go and h2 keep. A sender splits large
/// messages into frames of this size, and each frame costs it (and us) a pass through
/// the framing code and the flow-control bookkeeping: with tonic's server streaming
/// 1 MiB messages, 64 KiB frames halved its CPU per megabyte and nearly doubled the
/// throughput our client received. A frame is buffered whole before it is decoded, so
/// this is also the most a partial frame holds; larger frames bought nothing more.
pub(crate) const DEFAULT_RECEIVE_MAX_FRAME_SIZE: u32 = 64 * 1024;

/// How many streams a server lets a client open at once by default. grpc-go's default is
/// unlimited, which is what made it fall to the rapid-reset attack; 100 is the RFC's
/// recommended minimum (RFC 9113 §6.5.2) and what most servers advertise.
pub const DEFAULT_SERVER_MAX_CONCURRENT_STREAMS: u32 = 100;

/// What a client assumes the server allows until the server's SETTINGS say otherwise.
pub const ASSUMED_PEER_MAX_CONCURRENT_STREAMS: u32 = 100;

/// How long the peer has to acknowledge our SETTINGS before SETTINGS_TIMEOUT.
pub const DEFAULT_SETTINGS_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes [`Connection::poll_transmit`](super::Connection::poll_transmit) hands out
/// per call: large enough that one write carries many frames, small enough that a writer
/// task does not hold a huge batch while the connection has more urgent frames to send.
pub const DEFAULT_MAX_WRITE_BATCH: usize = 256 * 1024;

/// Control frames we owe the peer (SETTINGS ACK, PING ACK, RST_STREAM) above which we stop
/// reading: a peer that floods requests for replies but never reads them must not make
/// our queue grow without bound (grpc-go throttles the same way).
pub const DEFAULT_MAX_QUEUED_CONTROL_FRAMES: usize = 100;

/// Bytes an application may queue on one stream before it is told to wait: grpc-go's
/// default write quota.
pub const DEFAULT_STREAM_SEND_BUFFER: usize = 64 * 1024;

/// Payloads smaller than this are copied into the write buffer rather than handed to the
/// writer as a separate chunk: an extra iovec costs more than copying a few hundred bytes.
pub const SMALL_PAYLOAD_COPY: usize = 1024;

/// Streams we may reset because the peer broke a rule before we give up on the peer
/// (hyperium/h2's figure): a peer that makes us emit this many RST_STREAMs is attacking
/// or broken, and each reset costs us a frame and bookkeeping.
pub const DEFAULT_MAX_LOCAL_RESETS: usize = 1024;

/// Frames that carry nothing and end nothing (zero-length DATA, or HEADERS with an empty
/// block, without END_STREAM) accepted per connection (h2's figure for DATA): each costs
/// a frame's processing, so only a flood sends many.
pub const DEFAULT_MAX_EMPTY_FRAMES: usize = 100;

/// Streams the peer may reset within [`DEFAULT_REMOTE_RESET_WINDOW`] (the rapid-reset
/// attack, CVE-2023-44487, opens and cancels streams faster than a server can serve
/// them): ten per second on average is far above any honest client's cancel rate.
pub const DEFAULT_MAX_REMOTE_RESETS: usize = 100;

/// The period over which [`DEFAULT_MAX_REMOTE_RESETS`] is counted.
pub const DEFAULT_REMOTE_RESET_WINDOW: Duration = Duration::from_secs(10);

/// How long a server waits for the ACK of its shutdown PING before sending the final
/// GOAWAY anyway (grpc-go waits 5 s): a peer that never answers must not keep the
/// connection open.
pub const SHUTDOWN_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration of one [`Connection`](super::Connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Receive window of each stream we advertise (SETTINGS_INITIAL_WINDOW_SIZE).
    pub initial_stream_window: u32,
    /// Receive window of the whole connection.
    pub initial_connection_window: u32,
    /// Grow both windows from BDP estimates (grpc-go's dynamic window). Turn off when the
    /// window sizes are fixed by the user.
    pub dynamic_window: bool,
    /// Largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE).
    pub max_frame_size: u32,
    /// Largest header list we accept (SETTINGS_MAX_HEADER_LIST_SIZE).
    pub max_header_list_size: u32,
    /// Size of the HPACK table we keep for the peer (SETTINGS_HEADER_TABLE_SIZE).
    pub header_table_size: u32,
    /// Streams the peer may open at once (SETTINGS_MAX_CONCURRENT_STREAMS); `None`
    /// leaves it unlimited and unannounced.
    pub max_concurrent_streams: Option<u32>,
    /// How long the peer has to acknowledge our SETTINGS.
    pub settings_timeout: Duration,
    /// Most bytes per `poll_transmit`.
    pub max_write_batch: usize,
    /// Unsent control replies above which reading pauses.
    pub max_queued_control_frames: usize,
    /// Bytes queued on one stream before the application is asked to wait.
    pub stream_send_buffer: usize,
    /// Client keepalive (gRFC A8); off by default.
    pub client_keepalive: ClientKeepaliveConfig,
    /// Server connection management (gRFC A9): idle, age, grace, server pings.
    pub server_keepalive: ServerKeepaliveConfig,
    /// Server rules for client PINGs (ping strikes, ENHANCE_YOUR_CALM).
    pub ping_policy: EnforcementPolicy,
    /// Random input for the max-connection-age jitter (the core has no randomness of its
    /// own; the adapter or simulator supplies it).
    pub random: u64,
    /// RST_STREAMs we may send for peer errors before GOAWAY ENHANCE_YOUR_CALM.
    pub max_local_resets: usize,
    /// Empty non-final DATA/HEADERS frames accepted before GOAWAY ENHANCE_YOUR_CALM.
    pub max_empty_frames: usize,
    /// Peer resets accepted per [`Config::remote_reset_window`] before GOAWAY
    /// ENHANCE_YOUR_CALM.
    pub max_remote_resets: usize,
    /// The period of [`Config::max_remote_resets`].
    pub remote_reset_window: Duration,
}

impl Config {
    /// Defaults for a client.
    pub fn client() -> Config {
        Config {
            initial_stream_window: DEFAULT_INITIAL_WINDOW_SIZE,
            initial_connection_window: DEFAULT_INITIAL_WINDOW_SIZE,
            dynamic_window: true,
            max_frame_size: DEFAULT_RECEIVE_MAX_FRAME_SIZE,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            header_table_size: DEFAULT_ENCODER_TABLE_CAP as u32,
            max_concurrent_streams: None,
            settings_timeout: DEFAULT_SETTINGS_TIMEOUT,
            max_write_batch: DEFAULT_MAX_WRITE_BATCH,
            max_queued_control_frames: DEFAULT_MAX_QUEUED_CONTROL_FRAMES,
            stream_send_buffer: DEFAULT_STREAM_SEND_BUFFER,
            client_keepalive: ClientKeepaliveConfig::default(),
            server_keepalive: ServerKeepaliveConfig::default(),
            ping_policy: EnforcementPolicy::default(),
            random: 0,
            max_local_resets: DEFAULT_MAX_LOCAL_RESETS,
            max_empty_frames: DEFAULT_MAX_EMPTY_FRAMES,
            max_remote_resets: DEFAULT_MAX_REMOTE_RESETS,
            remote_reset_window: DEFAULT_REMOTE_RESET_WINDOW,
        }
    }

    /// Defaults for a server.
    pub fn server() -> Config {
        Config {
            max_concurrent_streams: Some(DEFAULT_SERVER_MAX_CONCURRENT_STREAMS),
            ..Config::client()
        }
    }

    /// Defaults for `role`.
    pub fn for_role(role: Role) -> Config {
        match role {
            Role::Client => Config::client(),
            Role::Server => Config::server(),
        }
    }
}
