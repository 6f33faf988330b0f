//! The HTTP/2 connection state machine: bytes and time in, bytes and events out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::bdp::BdpEstimator;
use super::config::{
    ASSUMED_PEER_MAX_CONCURRENT_STREAMS, Config, Role, SHUTDOWN_PING_TIMEOUT, SMALL_PAYLOAD_COPY,
};
use super::event::{
    CONNECTION_CLOSED_REASON, CloseReason, CommandError, Event, Header, Initiator, StreamReset,
};
use super::flow::{ConnRecvWindow, SendWindow};
use super::keepalive::{
    ClientKeepalive, ClientKeepaliveAction, KEEPALIVE_PING_PAYLOAD, PingPolicy, PingVerdict,
    ServerKeepalive, ServerKeepaliveAction, TOO_MANY_PINGS, is_too_many_pings,
    keepalive_time_after_too_many_pings,
};
use super::stats::{ConnectionMemory, ConnectionWindows, StreamWindows};
use super::stream::{Item, RecvPhase, State, Stream, Wait};
use super::transmit::Transmit;
use crate::ErrorCode;
use crate::frame::{
    self, Data, DecoderConfig, Frame, FrameDecoder, FrameError, GoAway, Headers, PrefaceCheck,
    Settings, StreamId, WindowUpdate,
};
use crate::hpack::{self, Field, HeaderField, Indexing};
use crate::id_map::IdMap;
use crate::spares::Spares;

/// Largest stream id (RFC 9113 §5.1.1: 31 bits).
const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// Payload of the PING that ends the first phase of a server's graceful shutdown
/// (grpc-go sends a PING after the first GOAWAY and the real GOAWAY after its ACK, so that
/// streams already in flight when the first GOAWAY left are still accepted).
const SHUTDOWN_PING: [u8; 8] = *b"gsnsshut";

type StreamMap = IdMap<u32, Stream>;

fn goaway(last_stream_id: StreamId, error_code: ErrorCode, debug_data: Bytes) -> GoAway {
    GoAway {
        last_stream_id,
        error_code,
        debug_data,
    }
}

/// Room reserved in the write buffer per `poll_transmit`: the heads of a full batch of
/// 16 KiB DATA frames (16 of them per 256 KiB) or a small call's frames, without
/// reallocating; more grows it as needed.
const WRITE_BUFFER_RESERVE: usize = 1024;

/// Send queues and header lists kept for reuse: one per stream, for bursts of up to 64
/// calls started together. Keeping only the few one call at a time needs left every
/// call past the first few of a burst allocating both.
const BUSY_SPARES: usize = 64;

/// Total capacity of received field lists kept for reuse, and what is left of it once
/// the connection has been idle for [`SPARES_IDLE`].
const BUSY_SPARE_FIELDS: usize = 512;
const IDLE_SPARE_FIELDS: usize = 64;

/// How long after its last stream closed a connection keeps the burst-sized part of
/// its reuse pools. Trimming the moment no stream is open would throw them away
/// between the waves of a busy client, whose streams all end together now and then.
const SPARES_IDLE: Duration = Duration::from_secs(1);

/// The GOAWAY debug text for ping abuse, as gRFC A8 spells it.
const TOO_MANY_PINGS_REASON: &str = "too_many_pings";
const _: () = assert!(TOO_MANY_PINGS_REASON.len() == TOO_MANY_PINGS.len());

/// A control frame waiting for the writer. These go before any stream's frames.
#[derive(Debug)]
enum Control {
    Settings(Settings),
    SettingsAck,
    Ping {
        payload: [u8; 8],
        ack: bool,
    },
    WindowUpdate {
        stream_id: StreamId,
        increment: u32,
    },
    Reset {
        stream_id: StreamId,
        code: ErrorCode,
    },
    GoAway(GoAway),
}

/// How a stream closed, which decides what late frames on it mean (RFC 9113 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// We reset it (or the peer never processed it): frames in flight are ignored.
    Reset,
    /// The peer reset it: it must send nothing more but PRIORITY (a stream error).
    PeerReset,
    /// Both sides sent END_STREAM: more DATA or HEADERS is a connection error.
    Finished,
}

/// Closed streams remembered for judging late frames. Older ones are treated as reset
/// by us (late frames ignored): the memory stays bounded whatever the peer does.
const RECENTLY_CLOSED: usize = 128;

/// How a frame's stream id relates to the streams we know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// A live stream the peer has seen.
    Active,
    /// Once used, now closed (or, for our own ids, skipped).
    Closed,
    /// Never opened: the peer may not send most frames on it.
    Idle,
}

/// One HTTP/2 connection, client or server, with no I/O of its own.
///
/// Drive it like this (the order matters only in that all outputs should be drained
/// after every input):
/// - inputs: [`recv`](Connection::recv) bytes from the socket,
///   [`handle_timeout`](Connection::handle_timeout) when [`poll_timeout`](Connection::poll_timeout)
///   passes, [`recv_eof`](Connection::recv_eof) when the socket closes, and the
///   application's commands ([`open_stream`](Connection::open_stream),
///   [`send_data`](Connection::send_data), …);
/// - outputs: [`poll_transmit`](Connection::poll_transmit) until it returns 0, then
///   [`poll_event`](Connection::poll_event) until `None`, then `poll_timeout` for the
///   next timer; stop reading the socket while [`wants_read`](Connection::wants_read) is
///   false; close the socket once [`is_closed`](Connection::is_closed).
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,

    // Reading.
    inbox: BytesMut,
    /// Server: the client's preface has not been seen yet.
    awaiting_preface: bool,
    /// The peer's first SETTINGS has arrived.
    peer_settings_seen: bool,
    decoder: FrameDecoder,
    hpack_decoder: hpack::Decoder,
    /// Emptied field lists handed back by [`Connection::recycle_fields`], reused for the
    /// next header blocks instead of allocating one per block.
    spare_fields: Vec<Vec<Field>>,
    /// The total capacity of `spare_fields`.
    spare_fields_capacity: usize,
    /// Emptied send queues of closed or idle streams, reused by the next streams: one
    /// per stream of a burst, eight once idle, of a few items each (most gRPC calls
    /// send at most three frames).
    spare_queues: Spares<VecDeque<Item>>,
    /// Emptied header lists of written HEADERS, handed out by
    /// [`Connection::header_list`]: one per stream of a burst, two once idle, of at
    /// most 32 fields.
    spare_headers: Spares<Vec<Header>>,
    /// When to trim the reuse pools: [`SPARES_IDLE`] after the last stream closed.
    spares_trim_at: Option<Instant>,

    // Writing.
    preface_written: bool,
    hpack_encoder: hpack::Encoder,
    control: VecDeque<Control>,
    /// Streams with something writable, served round-robin.
    ready: VecDeque<StreamId>,
    /// Streams with DATA waiting only for connection window.
    conn_blocked: VecDeque<StreamId>,
    /// Frame heads and small frames of the batch being built; the chunks handed out
    /// are split off it.
    out: BytesMut,
    /// Bytes split off `out` since the burst began: above [`WRITE_BUFFER_RESERVE`] the
    /// buffer may have grown, and is not kept once the connection is idle.
    out_burst: usize,
    block_scratch: BytesMut,

    // Our settings.
    /// When each of our unacknowledged SETTINGS frames was written, oldest first (the
    /// peer acknowledges them in order, RFC 9113 §6.5.3).
    settings_inflight: VecDeque<Instant>,
    /// Our first SETTINGS has been handed to the writer.
    settings_written: bool,
    settings_acked: bool,

    // The peer's settings.
    peer_max_frame_size: u32,
    peer_initial_window: u32,
    peer_max_concurrent_streams: u32,
    peer_max_header_list_size: Option<u32>,

    // Windows.
    conn_send: SendWindow,
    conn_recv: ConnRecvWindow,

    // Streams.
    streams: StreamMap,
    /// Next id we would open (client: odd).
    next_local_id: u32,
    /// Highest id the peer has opened.
    last_peer_id: u32,
    /// Our streams counted against the peer's MAX_CONCURRENT_STREAMS.
    local_active: usize,
    /// The peer's streams counted against ours.
    peer_active: usize,
    /// Our streams waiting for the peer's quota, oldest first.
    pending_open: VecDeque<StreamId>,
    ids_exhausted_told: bool,
    /// The last [`RECENTLY_CLOSED`] streams that closed, and how.
    recently_closed: VecDeque<(StreamId, Closed)>,
    /// DATA delivered to the application and not yet released.
    unconsumed: usize,

    // Shutdown.
    goaway_received: Option<StreamId>,
    /// The code and debug data of the peer's first GOAWAY, for the close reason.
    peer_goaway_code: Option<(ErrorCode, Bytes)>,
    /// The last-stream-id of the GOAWAY we sent (final phase).
    goaway_sent: Option<StreamId>,
    /// Server graceful shutdown: first GOAWAY sent, waiting for the PING ACK.
    shutdown_ping_pending: bool,
    /// Set once the connection is over; the final GOAWAY may still be queued.
    closed: Option<CloseReason>,

    // Pings we sent for the application, oldest first, with the time they were written.
    user_pings: VecDeque<([u8; 8], Option<Instant>)>,

    /// The latest time an input carried; commands without a `now` use it.
    now: Instant,
    /// Dynamic window sizing, when enabled.
    bdp: Option<BdpEstimator>,
    client_keepalive: Option<ClientKeepalive>,
    server_keepalive: Option<ServerKeepalive>,
    ping_policy: Option<PingPolicy>,
    /// Server graceful shutdown: when to stop waiting for the shutdown PING's ACK.
    shutdown_ping_deadline: Option<Instant>,
    /// Debug data for the final GOAWAY of a server's graceful shutdown.
    shutdown_debug: Bytes,

    // Flood accounting.
    local_resets: usize,
    empty_frames: usize,
    /// When the peer's most recent resets arrived (at most `max_remote_resets + 1`).
    remote_resets: VecDeque<Instant>,

    events: VecDeque<Event>,
}

impl Connection {
    /// A new connection. A client queues its preface, SETTINGS and connection
    /// WINDOW_UPDATE; a server its SETTINGS (its half of the connection preface).
    pub fn new(role: Role, config: Config, now: Instant) -> Connection {
        // Until the peer acknowledges our SETTINGS it may assume the RFC defaults, so the
        // frame size and HPACK table start there and move on the ACK (RFC 9113 §6.5.3).
        let decoder = FrameDecoder::new(DecoderConfig {
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            // The encoded block is never larger than the list it decodes to plus a little
            // (see `frame::HEADER_BLOCK_SLACK`).
            max_header_block_size: config.max_header_list_size as usize + frame::HEADER_BLOCK_SLACK,
            ..DecoderConfig::default()
        });
        let hpack_decoder = hpack::Decoder::new(
            hpack::DEFAULT_HEADER_TABLE_SIZE,
            config.max_header_list_size as usize,
        );
        let mut conn = Connection {
            role,
            inbox: BytesMut::new(),
            awaiting_preface: role == Role::Server,
            peer_settings_seen: false,
            decoder,
            hpack_decoder,
            spare_fields: Vec::new(),
            spare_fields_capacity: 0,
            spare_queues: Spares::with_idle(BUSY_SPARES, 8, 4),
            spare_headers: Spares::with_idle(BUSY_SPARES, 2, 32),
            spares_trim_at: None,
            preface_written: role == Role::Server,
            hpack_encoder: hpack::Encoder::new(),
            control: VecDeque::new(),
            ready: VecDeque::new(),
            conn_blocked: VecDeque::new(),
            out: BytesMut::new(),
            out_burst: 0,
            block_scratch: BytesMut::new(),
            settings_inflight: VecDeque::new(),
            settings_written: false,
            settings_acked: false,
            peer_max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            peer_initial_window: frame::DEFAULT_INITIAL_WINDOW_SIZE,
            peer_max_concurrent_streams: ASSUMED_PEER_MAX_CONCURRENT_STREAMS,
            peer_max_header_list_size: None,
            conn_send: SendWindow::new(frame::DEFAULT_INITIAL_WINDOW_SIZE),
            // Every connection starts at the RFC's window; ours grows by WINDOW_UPDATE.
            conn_recv: ConnRecvWindow::new(frame::DEFAULT_INITIAL_WINDOW_SIZE),
            streams: StreamMap::default(),
            next_local_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            last_peer_id: 0,
            local_active: 0,
            peer_active: 0,
            pending_open: VecDeque::new(),
            ids_exhausted_told: false,
            unconsumed: 0,
            recently_closed: VecDeque::new(),
            goaway_received: None,
            peer_goaway_code: None,
            goaway_sent: None,
            shutdown_ping_pending: false,
            closed: None,
            user_pings: VecDeque::new(),
            events: VecDeque::new(),
            now,
            bdp: config
                .dynamic_window
                .then(|| BdpEstimator::new(config.initial_stream_window)),
            client_keepalive: (role == Role::Client)
                .then(|| ClientKeepalive::new(config.client_keepalive, now)),
            server_keepalive: (role == Role::Server)
                .then(|| ServerKeepalive::new(config.server_keepalive, now, config.random)),
            ping_policy: (role == Role::Server).then(|| PingPolicy::new(config.ping_policy)),
            shutdown_ping_deadline: None,
            shutdown_debug: Bytes::new(),
            local_resets: 0,
            empty_frames: 0,
            remote_resets: VecDeque::new(),
            config,
        };
        conn.queue_initial_settings();
        conn
    }

    fn queue_initial_settings(&mut self) {
        let c = &self.config;
        let settings = Settings {
            // Push is never used by gRPC; a client says so, a server must not send it.
            enable_push: (self.role == Role::Client).then_some(false),
            header_table_size: (c.header_table_size != hpack::DEFAULT_HEADER_TABLE_SIZE as u32)
                .then_some(c.header_table_size),
            max_concurrent_streams: c.max_concurrent_streams,
            initial_window_size: (c.initial_stream_window != frame::DEFAULT_INITIAL_WINDOW_SIZE)
                .then_some(c.initial_stream_window),
            max_frame_size: (c.max_frame_size != frame::DEFAULT_MAX_FRAME_SIZE)
                .then_some(c.max_frame_size),
            max_header_list_size: Some(c.max_header_list_size),
            ..Settings::default()
        };
        self.control.push_back(Control::Settings(settings));
        if let Some(increment) = self
            .conn_recv
            .set_limit(self.config.initial_connection_window)
        {
            self.control.push_back(Control::WindowUpdate {
                stream_id: StreamId::ZERO,
                increment,
            });
        }
    }

    // ----- getters -----

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's preface and first SETTINGS have arrived.
    pub fn is_connected(&self) -> bool {
        self.peer_settings_seen && self.closed.is_none()
    }

    /// The connection is over and everything it had to write has been handed out.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some() && self.control.is_empty() && self.out.is_empty()
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has something to write now:
    /// the preface, a control frame, or a stream with something it may send.
    pub fn wants_transmit(&self) -> bool {
        !self.preface_written
            || !self.control.is_empty()
            || (self.closed.is_none() && !self.ready.is_empty())
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// Whether the owner should read more bytes from the socket now. False while too many
    /// control replies wait to be written (the peer is not reading ours), while the
    /// application holds more undelivered DATA than the connection window, or once closed.
    pub fn wants_read(&self) -> bool {
        self.closed.is_none()
            && self.control.len() < self.config.max_queued_control_frames
            && self.unconsumed <= self.conn_recv.limit() as usize
    }

    /// Control frames waiting to be written (bounded by
    /// [`Config::max_queued_control_frames`] plus what one frame can add).
    pub fn queued_control_frames(&self) -> usize {
        self.control.len()
    }

    /// Streams currently open (ours and the peer's).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The connection's flow-control windows and both sides' initial stream windows.
    pub fn windows(&self) -> ConnectionWindows {
        ConnectionWindows {
            send: self.conn_send.window(),
            recv: i64::from(self.conn_recv.window()),
            recv_limit: self.conn_recv.limit(),
            peer_initial_window: self.peer_initial_window,
            local_initial_window: self.stream_recv_limit(),
            settings_acked: self.settings_acked,
        }
    }

    /// Every open stream's windows, in no particular order (but the same order for the
    /// same history). Streams we opened whose HEADERS have not gone out yet are included.
    pub fn stream_windows(&self) -> impl Iterator<Item = StreamWindows> + '_ {
        self.streams.values().map(|s| StreamWindows {
            stream_id: s.id,
            send: s.send_window.window(),
            recv: s.recv_window.window(),
            recv_limit: s.recv_window.limit(),
            recv_extra: s.recv_window.extra(),
            unconsumed: s.recv_window.unconsumed(),
        })
    }

    /// What the connection buffers: control frames owed, DATA queued to send, DATA
    /// delivered and unreleased, bytes read and unparsed. One pass over the streams.
    pub fn memory(&self) -> ConnectionMemory {
        ConnectionMemory {
            control_frames: self.control.len(),
            send_queued: self.streams.values().map(|s| s.queued_bytes).sum(),
            recv_unconsumed: self.unconsumed,
            recv_unparsed: self.inbox.len(),
        }
    }

    /// Bytes the application may still queue on `stream_id` before its send buffer is
    /// full (0 for unknown streams).
    pub fn send_capacity(&self, stream_id: StreamId) -> usize {
        self.streams.get(&stream_id.value()).map_or(0, |s| {
            self.config
                .stream_send_buffer
                .saturating_sub(s.queued_bytes)
        })
    }

    /// When the reuse pools give back what only a burst of streams needed: a while
    /// after the last stream closed, unless another opens first.
    pub fn spares_trim_at(&self) -> Option<Instant> {
        self.spares_trim_at
    }

    /// The next time [`handle_timeout`](Connection::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        [
            self.settings_deadline(),
            self.shutdown_ping_deadline,
            self.client_keepalive
                .as_ref()
                .and_then(|k| k.poll_timeout()),
            self.server_keepalive
                .as_ref()
                .and_then(|k| k.poll_timeout()),
            self.spares_trim_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn settings_deadline(&self) -> Option<Instant> {
        self.settings_inflight
            .front()
            .and_then(|at| at.checked_add(self.config.settings_timeout))
    }

    /// The keepalive time the next connection to the same peer should use: doubled when
    /// this one ended with the peer's GOAWAY ENHANCE_YOUR_CALM `too_many_pings` (gRFC A8).
    pub fn next_keepalive_time(&self) -> Option<Duration> {
        let time = self.config.client_keepalive.time;
        match &self.peer_goaway_code {
            Some((code, debug_data)) if is_too_many_pings(*code, debug_data) => {
                keepalive_time_after_too_many_pings(time)
            }
            _ => time,
        }
    }

    // ----- inputs -----

    /// Bytes arrived from the peer. Hand over the buffer they were read into: DATA
    /// payloads are delivered as slices of it, without copying.
    pub fn recv(&mut self, data: BytesMut, now: Instant) {
        self.now = self.now.max(now);
        if self.closed.is_some() {
            return;
        }
        if self.inbox.is_empty() {
            self.inbox = data;
        } else if self.awaiting_preface || continues(&self.inbox, &data) {
            // Zero-copy when `data` continues the inbox's buffer (`unsplit` checks),
            // a copy of a few preface bytes otherwise.
            self.inbox.unsplit(data);
        } else {
            self.join(data, now);
            return;
        }
        self.process_inbox(now);
    }

    /// `data` is a new buffer while the inbox holds the start of a frame: copies only
    /// the bytes that frame lacks, so the rest of `data` is decoded where it lies.
    /// (Appending all of `data` to the inbox would copy a whole read, up to the
    /// runtime's 256 KiB region, each time the reader moves to a new region.)
    fn join(&mut self, mut data: BytesMut, now: Instant) {
        let lacking = match frame_lacks(&self.inbox, &data) {
            // The inbox holds whole frames processing stopped before (the peer owes us
            // reading its replies): they must be decoded first, so `data` goes behind.
            0 => {
                self.inbox.unsplit(data);
                return self.process_inbox(now);
            }
            n => n,
        };
        let taken = lacking.min(data.len());
        if self.inbox.capacity() - self.inbox.len() < taken {
            // One allocation for the whole frame, however many reads it takes to come
            // (sized to fit `taken` alone, each read would copy the frame so far again).
            // A length past what we accept is refused once decoded, so it is not
            // reserved: the reservation never exceeds our largest frame.
            let limit = frame::HEADER_LEN
                + self
                    .config
                    .max_frame_size
                    .max(frame::DEFAULT_MAX_FRAME_SIZE) as usize;
            let mut joined =
                BytesMut::with_capacity(self.inbox.len() + lacking.min(limit).max(taken));
            joined.extend_from_slice(&self.inbox);
            self.inbox = joined;
        }
        // Not `split_to`: on a buffer not yet shared that allocates a shared header.
        self.inbox.extend_from_slice(&data[..taken]);
        data.advance(taken);
        self.process_inbox(now);
        if data.is_empty() || self.closed.is_some() {
            return;
        }
        if self.inbox.is_empty() {
            self.inbox = data;
        } else {
            self.inbox.unsplit(data);
        }
        self.process_inbox(now);
    }

    /// [`recv`](Connection::recv) for bytes in a borrowed slice (copied).
    pub fn recv_slice(&mut self, data: &[u8], now: Instant) {
        self.recv(BytesMut::from(data), now);
    }

    /// The transport closed (EOF or an I/O error).
    pub fn recv_eof(&mut self) {
        if self.closed.is_some() {
            return;
        }
        // A peer that sent GOAWAY before closing told us why; report that.
        let reason = match self.peer_goaway_code.clone() {
            Some((code, debug_data)) => CloseReason::GoAway { code, debug_data },
            None => CloseReason::TransportClosed,
        };
        // Nothing can be written to a closed transport.
        self.control.clear();
        self.finish(reason, ErrorCode::Cancel);
    }

    /// Time passed: fire whatever timers are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.closed.is_some() {
            return;
        }
        if self.spares_trim_at.is_some_and(|at| now >= at) {
            // Idle a while: keep only what one call at a time needs.
            self.spares_trim_at = None;
            self.spare_queues.trim();
            self.spare_headers.trim();
            self.trim_spare_fields(IDLE_SPARE_FIELDS);
        }
        if self.settings_deadline().is_some_and(|d| now >= d) {
            return self.connection_error(
                ErrorCode::SettingsTimeout,
                "SETTINGS not acknowledged in time",
            );
        }
        if self.shutdown_ping_deadline.is_some_and(|d| now >= d) {
            self.finish_shutdown();
        }
        // Each policy returns one action per call; ask until it has none.
        while let Some(action) = self
            .client_keepalive
            .as_mut()
            .and_then(|k| k.handle_timeout(now))
        {
            match action {
                ClientKeepaliveAction::SendPing => self.control.push_back(Control::Ping {
                    payload: KEEPALIVE_PING_PAYLOAD,
                    ack: false,
                }),
                ClientKeepaliveAction::Close => {
                    // The peer is unreachable: close without a GOAWAY, as grpc-go does.
                    self.control.clear();
                    return self.finish(CloseReason::KeepaliveTimeout, ErrorCode::Cancel);
                }
            }
        }
        while let Some(action) = self
            .server_keepalive
            .as_mut()
            .and_then(|k| k.handle_timeout(now))
        {
            match action {
                ServerKeepaliveAction::SendPing => self.control.push_back(Control::Ping {
                    payload: KEEPALIVE_PING_PAYLOAD,
                    ack: false,
                }),
                ServerKeepaliveAction::Close => {
                    self.control.clear();
                    return self.finish(CloseReason::KeepaliveTimeout, ErrorCode::Cancel);
                }
                ServerKeepaliveAction::StartGracefulShutdown { reason } => {
                    self.start_shutdown(Bytes::from_static(reason.debug_data()));
                }
                ServerKeepaliveAction::ForceClose => {
                    // The grace period is over: streams still open are cut off.
                    self.control.clear();
                    return self.finish(
                        CloseReason::Local {
                            code: ErrorCode::NoError,
                            reason: "max connection age grace elapsed",
                        },
                        ErrorCode::Cancel,
                    );
                }
            }
        }
    }

    // ----- commands -----

    /// Opens a stream with its request headers (client only). The stream id is assigned
    /// now; the HEADERS go out once the peer's MAX_CONCURRENT_STREAMS allows.
    pub fn open_stream(
        &mut self,
        headers: Vec<Header>,
        end_stream: bool,
    ) -> Result<StreamId, CommandError> {
        if self.role != Role::Client {
            return Err(CommandError::NotAClient);
        }
        self.check_open()?;
        if self.goaway_received.is_some() || self.goaway_sent.is_some() {
            return Err(CommandError::Draining);
        }
        if self.next_local_id > MAX_STREAM_ID {
            return Err(CommandError::StreamIdsExhausted);
        }
        self.check_header_list(&headers)?;
        let id = StreamId::new(self.next_local_id);
        self.next_local_id += 2;
        if self.next_local_id > MAX_STREAM_ID && !self.ids_exhausted_told {
            self.ids_exhausted_told = true;
            self.events.push_back(Event::StreamIdsExhausted);
        }
        let mut stream = Stream::new(
            id,
            State::Idle,
            self.peer_initial_window,
            self.stream_recv_limit(),
        );
        stream.queue = self.spare_queues.take();
        stream.headers_queued = true;
        stream.send_finished = end_stream;
        stream.queue.push_back(Item::Headers {
            fields: headers,
            end_stream,
        });
        self.streams.insert(id.value(), stream);
        self.spares_trim_at = None;
        self.pending_open.push_back(id);
        self.note_stream_count();
        self.grant_quota();
        Ok(id)
    }

    /// Sends response headers (server), or trailers (either side) when headers were
    /// already sent: trailers must have `end_stream`.
    pub fn send_headers(
        &mut self,
        stream_id: StreamId,
        headers: Vec<Header>,
        end_stream: bool,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        self.check_header_list(&headers)?;
        let stream = self.sendable_stream(stream_id)?;
        if stream.headers_queued && !end_stream {
            return Err(CommandError::HeadersAlreadySent);
        }
        stream.headers_queued = true;
        stream.send_finished = end_stream;
        stream.queue.push_back(Item::Headers {
            fields: headers,
            end_stream,
        });
        self.schedule(stream_id);
        Ok(())
    }

    /// Queues DATA. The bytes are accepted whatever the send buffer holds (data accepted
    /// is never dropped); check [`send_capacity`](Connection::send_capacity) to apply
    /// back-pressure, and wait for [`Event::StreamWritable`] when it is 0.
    pub fn send_data(
        &mut self,
        stream_id: StreamId,
        data: Bytes,
        end_stream: bool,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        let limit = self.config.stream_send_buffer;
        let stream = self.sendable_stream(stream_id)?;
        if !stream.headers_queued {
            // A server must answer with HEADERS first; RFC 9113 §8.1.
            return Err(CommandError::HeadersNotSent);
        }
        if data.is_empty() && !end_stream {
            return Ok(());
        }
        stream.queued_bytes += data.len();
        stream.send_finished = end_stream;
        if stream.queued_bytes >= limit {
            stream.wants_writable = true;
        }
        stream.queue.push_back(Item::Data { data, end_stream });
        self.schedule(stream_id);
        Ok(())
    }

    /// Resets a stream with `code` (CANCEL when the application gives up).
    pub fn reset(&mut self, stream_id: StreamId, code: ErrorCode) -> Result<(), CommandError> {
        self.check_open()?;
        let Some(stream) = self.streams.get(&stream_id.value()) else {
            return Err(CommandError::UnknownStream);
        };
        let never_sent = stream.state == State::Idle;
        self.close_stream(stream_id, Closed::Reset);
        if !never_sent {
            self.control.push_back(Control::Reset { stream_id, code });
        }
        Ok(())
    }

    /// Resets the stream with `code` once our END_STREAM on it has been written, if the
    /// peer has not finished sending by then: a server that completes its response
    /// before the request ended tells the client to stop (RFC 9113 §8.1, NO_ERROR). The
    /// reset follows the final frames instead of overtaking them.
    pub fn reset_after_end(
        &mut self,
        stream_id: StreamId,
        code: ErrorCode,
    ) -> Result<(), CommandError> {
        self.check_open()?;
        let Some(stream) = self.streams.get_mut(&stream_id.value()) else {
            return Err(CommandError::UnknownStream);
        };
        if stream.state == State::HalfClosedLocal && stream.queue.is_empty() {
            // Everything went out already: reset now.
            self.close_stream(stream_id, Closed::Reset);
            self.control.push_back(Control::Reset { stream_id, code });
        } else {
            stream.reset_after_end = Some(code);
        }
        Ok(())
    }

    /// The application consumed `n` bytes of DATA delivered on `stream_id`: reopens the
    /// flow-control window (a WINDOW_UPDATE goes out once a quarter of it is free).
    pub fn release_data(&mut self, stream_id: StreamId, n: usize) -> Result<(), CommandError> {
        if n > self.unconsumed {
            return Err(CommandError::ReleaseTooLarge);
        }
        self.unconsumed -= n;
        let Some(stream) = self.streams.get_mut(&stream_id.value()) else {
            // The stream ended; the connection window was already released on receipt.
            return Ok(());
        };
        let n = u32::try_from(n).map_err(|_| CommandError::ReleaseTooLarge)?;
        if n > stream.recv_window.unconsumed() {
            return Err(CommandError::ReleaseTooLarge);
        }
        if let Some(increment) = stream.recv_window.release(n)
            && stream.recv_phase != RecvPhase::Done
        {
            self.control.push_back(Control::WindowUpdate {
                stream_id,
                increment,
            });
        }
        Ok(())
    }

    /// The application waits for a message of `n` bytes on `stream_id`, possibly larger
    /// than the stream window: lets the peer send all of it now rather than in
    /// window-sized rounds (grpc-go's maybeAdjust). The extra credit is paid back as the
    /// data is consumed.
    pub fn request_read(&mut self, stream_id: StreamId, n: u32) -> Result<(), CommandError> {
        let Some(stream) = self.streams.get_mut(&stream_id.value()) else {
            return Err(CommandError::UnknownStream);
        };
        if let Some(increment) = stream.recv_window.request_read(n) {
            self.control.push_back(Control::WindowUpdate {
                stream_id,
                increment,
            });
        }
        Ok(())
    }

    /// Moves the next stream id we would open forward, for tests of id exhaustion (a
    /// real connection needs a billion streams to get there). Ids only grow, and they
    /// keep our parity.
    #[doc(hidden)]
    pub fn skip_stream_ids_to(&mut self, id: u32) {
        if id > self.next_local_id && id % 2 == self.next_local_id % 2 {
            self.next_local_id = id;
        }
    }

    /// Sends a PING; [`Event::PingAck`] reports its round-trip time.
    pub fn ping(&mut self, payload: [u8; 8]) -> Result<(), CommandError> {
        self.check_open()?;
        self.user_pings.push_back((payload, None));
        self.control.push_back(Control::Ping {
            payload,
            ack: false,
        });
        Ok(())
    }

    /// Graceful shutdown: no new streams, the open ones finish, then the connection
    /// closes. A server does it in two phases (GOAWAY with the largest id and a PING,
    /// then GOAWAY with the real last id after the ACK) so requests already in flight are
    /// not lost.
    pub fn shutdown(&mut self) {
        self.start_shutdown(Bytes::new());
    }

    fn start_shutdown(&mut self, debug: Bytes) {
        if self.closed.is_some() || self.goaway_sent.is_some() || self.shutdown_ping_pending {
            return;
        }
        if let Some(keepalive) = &mut self.server_keepalive {
            keepalive.on_shutdown_started();
        }
        match self.role {
            Role::Client => {
                // We accept no server-initiated streams, so the last id is 0.
                self.send_goaway(StreamId::ZERO, ErrorCode::NoError, debug);
                self.fail_pending_open("connection shutting down");
                self.maybe_finish_draining();
            }
            Role::Server => {
                self.control.push_back(Control::GoAway(goaway(
                    StreamId::new(MAX_STREAM_ID),
                    ErrorCode::NoError,
                    debug.clone(),
                )));
                self.control.push_back(Control::Ping {
                    payload: SHUTDOWN_PING,
                    ack: false,
                });
                self.shutdown_ping_pending = true;
                self.shutdown_debug = debug;
                self.shutdown_ping_deadline = self.now.checked_add(SHUTDOWN_PING_TIMEOUT);
            }
        }
    }

    /// The second phase of a server's shutdown: the real last stream id.
    fn finish_shutdown(&mut self) {
        self.shutdown_ping_pending = false;
        self.shutdown_ping_deadline = None;
        let last = StreamId::new(self.last_peer_id);
        let debug = std::mem::take(&mut self.shutdown_debug);
        self.send_goaway(last, ErrorCode::NoError, debug);
        self.maybe_finish_draining();
    }

    /// Closes at once with GOAWAY `code`; every open stream is reset.
    pub fn close(&mut self, code: ErrorCode, reason: &'static str) {
        if self.closed.is_none() {
            self.connection_error(code, reason);
        }
    }

    // ----- outputs -----

    /// Hands back the field list of a [`Event::Headers`] or [`Event::Trailers`] once
    /// read, so the next header block decodes into it rather than into a new
    /// allocation. The lists kept hold at most 512 fields in all, 64 once the
    /// connection has been idle a while.
    pub fn recycle_fields(&mut self, mut fields: Vec<Field>) {
        // A read can hold the headers and trailers of many responses, all decoded
        // before the application reads the first, so many lists are kept while streams
        // are open; their total capacity is bounded, and trimmed once none is open.
        let capacity = fields.capacity();
        if capacity > 0 && self.spare_fields_capacity + capacity <= BUSY_SPARE_FIELDS {
            fields.clear();
            self.spare_fields_capacity += capacity;
            self.spare_fields.push(fields);
        }
    }

    /// Frees kept field lists until their total capacity is at most `max`.
    fn trim_spare_fields(&mut self, max: usize) {
        while self.spare_fields_capacity > max {
            let Some(fields) = self.spare_fields.pop() else {
                break;
            };
            self.spare_fields_capacity -= fields.capacity();
        }
        // The list of lists itself, once a burst has grown it.
        if self.spare_fields.capacity() > 16 && self.spare_fields.len() < 4 {
            self.spare_fields.shrink_to_fit();
        }
    }

    /// An empty header list to fill for [`open_stream`](Self::open_stream) or
    /// [`send_headers`](Self::send_headers): one of those already written when there is
    /// one, so that sending headers allocates nothing in steady state.
    pub fn header_list(&mut self) -> Vec<Header> {
        self.spare_headers.take()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The loopy writer: appends what should be written next to `out` (control frames
    /// first, then streams round-robin, DATA cut to the windows and the peer's max frame
    /// size), up to the configured batch size. Returns the bytes added; 0 when idle.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Transmit) -> usize {
        self.now = self.now.max(now);
        let start = out.len();
        let budget = self.config.max_write_batch;
        // One allocation for the frame heads and small frames of the whole batch: the
        // chunks split off it share it, instead of each 9-byte head getting its own. Only
        // when there is something to write: owners poll until a call returns 0, and that
        // last, idle call allocated and freed a buffer every time (an allocation per
        // unary call on each side).
        if self.wants_transmit() {
            self.out.reserve(WRITE_BUFFER_RESERVE);
        }
        if !self.preface_written {
            self.preface_written = true;
            self.out.extend_from_slice(frame::PREFACE);
        }
        while self.batched(out) < budget {
            let Some(control) = self.control.pop_front() else {
                break;
            };
            self.write_control(control, now);
        }
        if self.closed.is_none() {
            while self.batched(out) < budget {
                let Some(id) = self.ready.pop_front() else {
                    break;
                };
                self.write_stream(id, out);
            }
        }
        if !self.out.is_empty() {
            self.out_burst += self.out.len();
            out.push(self.out.split().freeze());
        }
        if out.len() == start {
            // Idle. A buffer that stayed at its first reserve is kept: once the writer
            // has dropped the batch, the next burst's `reserve` takes it back in place,
            // rather than allocating (and sharing) a fresh one per burst, two
            // allocations per unary call. One that grew is given back.
            if self.out_burst > WRITE_BUFFER_RESERVE {
                self.out = BytesMut::new();
            }
            self.out_burst = 0;
        }
        // Frames held back while replies were queued can be read now.
        if self.closed.is_none()
            && !self.inbox.is_empty()
            && self.control.len() < self.config.max_queued_control_frames
        {
            self.process_inbox(now);
        }
        out.len() - start
    }

    fn batched(&self, out: &Transmit) -> usize {
        out.len() + self.out.len()
    }

    fn write_control(&mut self, control: Control, now: Instant) {
        let max = self.peer_max_frame_size;
        let frame = match control {
            Control::Settings(settings) => {
                self.settings_written = true;
                self.settings_inflight.push_back(now);
                Frame::Settings(settings)
            }
            Control::SettingsAck => Frame::Settings(Settings::ack()),
            Control::Ping { payload, ack } => {
                if !ack && payload == BdpEstimator::PING_PAYLOAD {
                    if let Some(bdp) = &mut self.bdp {
                        bdp.on_ping_sent(now);
                    }
                } else if !ack
                    && let Some(entry) = self
                        .user_pings
                        .iter_mut()
                        .find(|(p, at)| *p == payload && at.is_none())
                {
                    entry.1 = Some(now);
                }
                Frame::Ping(frame::Ping { ack, payload })
            }
            Control::WindowUpdate {
                stream_id,
                increment,
            } => Frame::WindowUpdate(WindowUpdate::new(stream_id, increment)),
            Control::Reset { stream_id, code } => {
                Frame::RstStream(frame::RstStream::new(stream_id, code))
            }
            Control::GoAway(goaway) => Frame::GoAway(goaway),
        };
        // Control frames are built valid and small; an encode error would be our bug, and
        // dropping the frame is safer than panicking in a peer-driven path.
        let _ = frame.encode(&mut self.out, max);
    }

    fn write_stream(&mut self, id: StreamId, out: &mut Transmit) {
        let conn_window = self.conn_send.available();
        let max_frame = self.peer_max_frame_size;
        if let Some(policy) = &mut self.ping_policy {
            // Sending HEADERS or DATA clears ping strikes (grpc-go's resetPingStrikes).
            policy.on_data_or_headers_sent();
        }
        let Some(stream) = self.streams.get_mut(&id.value()) else {
            return;
        };
        stream.scheduled = false;
        let mut closed = false;
        // Headers (not flow-controlled) go out as they come; then at most one DATA frame,
        // so every ready stream gets a turn before this one sends again.
        loop {
            match stream.queue.front_mut() {
                None => break,
                Some(Item::Headers { .. }) => {
                    let Some(Item::Headers { fields, end_stream }) = stream.queue.pop_front()
                    else {
                        break;
                    };
                    if stream.state == State::Idle {
                        stream.state = State::Open;
                    }
                    self.block_scratch.clear();
                    self.hpack_encoder.encode(
                        fields.iter().map(|h| HeaderField {
                            name: &h.name,
                            value: &h.value,
                            indexing: if h.sensitive {
                                Indexing::Never
                            } else {
                                Indexing::Auto
                            },
                        }),
                        &mut self.block_scratch,
                    );
                    let headers = Headers {
                        end_stream,
                        ..Headers::new(id, self.block_scratch.split().freeze())
                    };
                    let _ = Frame::Headers(headers).encode(&mut self.out, max_frame);
                    if self.role == Role::Client {
                        // Only the client transport draws lists (for requests): a
                        // server's would sit unused.
                        self.spare_headers.put(fields);
                    }
                    if end_stream {
                        closed = stream.on_end_stream_sent();
                        break;
                    }
                }
                Some(Item::Data { .. }) => {
                    // One DATA frame carries as many queued chunks as fit the windows and
                    // the peer's max frame size: a message queued as its 5-octet prefix
                    // and its body (kept apart so the body is not copied), or a last
                    // message and the END_STREAM after it, go out as one frame, not as
                    // two the peer must each decode and account.
                    let limit = stream
                        .send_window
                        .available()
                        .min(conn_window)
                        .min(max_frame);
                    let limit = limit as usize;
                    let (mut whole, mut partial, mut total, mut end) = (0, 0, 0, false);
                    for item in &stream.queue {
                        let Item::Data { data, end_stream } = item else {
                            break;
                        };
                        let room = limit - total;
                        if data.len() > room {
                            partial = room;
                            total += room;
                            break;
                        }
                        total += data.len();
                        whole += 1;
                        if *end_stream {
                            end = true;
                            break;
                        }
                    }
                    if total == 0 && !end {
                        // Blocked on a window: `schedule` below parks it where the right
                        // WINDOW_UPDATE will find it.
                        break;
                    }
                    frame::FrameHeader {
                        len: total as u32,
                        kind: frame::kind::DATA,
                        flags: if end { frame::flags::END_STREAM } else { 0 },
                        stream_id: id,
                    }
                    .encode(&mut self.out);
                    for _ in 0..whole {
                        if let Some(Item::Data { data, .. }) = stream.queue.pop_front() {
                            push_payload(&mut self.out, out, data);
                        }
                    }
                    if partial > 0
                        && let Some(Item::Data { data, .. }) = stream.queue.front_mut()
                    {
                        push_payload(&mut self.out, out, data.split_to(partial));
                    }
                    let n32 = total as u32;
                    stream.send_window.consume(n32);
                    self.conn_send.consume(n32);
                    stream.queued_bytes -= total;
                    if end {
                        closed = stream.on_end_stream_sent();
                    }
                    if stream.wants_writable && stream.queued_bytes < self.config.stream_send_buffer
                    {
                        stream.wants_writable = false;
                        self.events
                            .push_back(Event::StreamWritable { stream_id: id });
                    }
                    break;
                }
            }
        }
        if closed {
            self.close_stream(id, Closed::Finished);
            return;
        }
        if stream.state == State::HalfClosedLocal
            && stream.queue.is_empty()
            && let Some(code) = stream.reset_after_end
        {
            self.close_stream(id, Closed::Reset);
            self.control.push_back(Control::Reset {
                stream_id: id,
                code,
            });
            return;
        }
        if stream.queue.is_empty() && stream.queue.capacity() > 0 {
            // A long-lived stream that has sent everything should not keep its queue's
            // memory while idle: it goes to the next stream, or is freed.
            self.spare_queues.put(std::mem::take(&mut stream.queue));
        }
        self.schedule(id);
    }

    // ----- reading -----

    fn process_inbox(&mut self, now: Instant) {
        if self.awaiting_preface {
            match frame::check_preface(&self.inbox) {
                PrefaceCheck::Complete => {
                    let _ = self.inbox.split_to(frame::PREFACE.len());
                    self.awaiting_preface = false;
                }
                PrefaceCheck::Partial => return,
                PrefaceCheck::Invalid => {
                    // RFC 9113 §3.4: the peer is not speaking HTTP/2; a GOAWAY may be
                    // omitted, and an HTTP/1.1 client would not understand one. Not even
                    // our SETTINGS goes out.
                    self.control.clear();
                    self.finish(CloseReason::BadPreface, ErrorCode::ProtocolError);
                    return;
                }
            }
        }
        // Stop while the peer owes us reading its replies: the rest stays in the inbox
        // until the writer drains the queue (see `poll_transmit`).
        while self.closed.is_none() && self.control.len() < self.config.max_queued_control_frames {
            match self.decoder.decode(&mut self.inbox) {
                Ok(Some(frame)) => self.handle_frame(frame, now),
                Ok(None) => break,
                Err(FrameError::Connection { code, reason }) => {
                    self.connection_error(code, reason);
                }
                Err(FrameError::Stream {
                    stream_id,
                    code,
                    reason,
                }) => self.stream_error(stream_id, code, reason),
            }
        }
        if self.inbox.is_empty() {
            // An empty view still pins the caller's whole read buffer (and stops its
            // reuse); a fresh buffer costs nothing until the next partial frame.
            self.inbox = BytesMut::new();
        }
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) {
        if let Some(k) = &mut self.client_keepalive {
            k.on_read(now);
        }
        if let Some(k) = &mut self.server_keepalive {
            k.on_read(now);
        }
        if !self.peer_settings_seen {
            // RFC 9113 §3.4: the preface ends with a SETTINGS frame.
            match &frame {
                Frame::Settings(s) if !s.ack => {}
                _ => {
                    return self
                        .connection_error(ErrorCode::ProtocolError, "first frame is not SETTINGS");
                }
            }
        }
        match frame {
            Frame::Data(data) => self.on_data(data),
            Frame::Headers(headers) => self.on_headers(headers),
            Frame::Priority(_) => {} // RFC 9113 §5.3.2: deprecated, ignored.
            Frame::RstStream(rst) => self.on_rst_stream(rst.stream_id, rst.error_code),
            Frame::Settings(settings) => self.on_settings(settings),
            Frame::PushPromise(_) => self.connection_error(
                ErrorCode::ProtocolError,
                // §8.4: we sent ENABLE_PUSH 0 (client) or are a server, which never
                // receives PUSH_PROMISE.
                "PUSH_PROMISE when push is disabled",
            ),
            Frame::Ping(ping) => self.on_ping(ping, now),
            Frame::GoAway(goaway) => self.on_goaway(goaway),
            Frame::WindowUpdate(wu) => self.on_window_update(wu),
            Frame::Unknown(_) => {} // §5.5: ignored.
        }
    }

    fn known(&self, id: StreamId) -> Known {
        if let Some(stream) = self.streams.get(&id.value()) {
            // Our own stream whose HEADERS the peer has not seen is idle to it.
            return if stream.state == State::Idle {
                Known::Idle
            } else {
                Known::Active
            };
        }
        let ours = match self.role {
            Role::Client => id.is_client_initiated(),
            Role::Server => id.is_server_initiated(),
        };
        let used = if ours {
            id.value() < self.next_local_id
        } else {
            id.value() <= self.last_peer_id
        };
        if used { Known::Closed } else { Known::Idle }
    }

    fn on_data(&mut self, data: Data) {
        let id = data.stream_id;
        let flow_len = data.flow_controlled_len();
        if data.payload.is_empty() && !data.end_stream && !self.count_empty_frame() {
            return;
        }
        let bdp_ping = self.bdp.as_mut().is_some_and(|b| b.on_data(flow_len));
        // Connection-level accounting first, whatever the stream's fate (§6.9).
        match self.conn_recv.on_data(flow_len) {
            Err(_) => {
                return self.connection_error(
                    ErrorCode::FlowControlError,
                    "DATA beyond the connection window",
                );
            }
            Ok(Some(increment)) => self.control.push_back(Control::WindowUpdate {
                stream_id: StreamId::ZERO,
                increment,
            }),
            Ok(None) => {}
        }
        if bdp_ping {
            // grpc-go sends what the connection owes before a BDP ping, so that proxies
            // do not take a ping-per-read pattern for abuse.
            if let Some(increment) = self.conn_recv.flush() {
                self.control.push_back(Control::WindowUpdate {
                    stream_id: StreamId::ZERO,
                    increment,
                });
            }
            self.control.push_back(Control::Ping {
                payload: BdpEstimator::PING_PAYLOAD,
                ack: false,
            });
        }
        match self.known(id) {
            Known::Idle => {
                return self.connection_error(ErrorCode::ProtocolError, "DATA on an idle stream");
            }
            Known::Closed => return self.late_frame(id, "DATA on a closed stream"),
            Known::Active => {}
        }
        let Some(stream) = self.streams.get_mut(&id.value()) else {
            return;
        };
        if !stream.can_recv() {
            // §5.1: half-closed (remote) accepts only WINDOW_UPDATE, PRIORITY, RST_STREAM.
            return self.stream_error(id, ErrorCode::StreamClosed, "DATA after END_STREAM");
        }
        if stream.recv_phase == RecvPhase::AwaitingHeaders {
            return self.stream_error(id, ErrorCode::ProtocolError, "DATA before HEADERS");
        }
        if stream.recv_window.on_data(flow_len).is_err() {
            return self.stream_error(
                id,
                ErrorCode::FlowControlError,
                "DATA beyond the stream window",
            );
        }
        let padding = flow_len - data.payload.len() as u32;
        if padding > 0
            && let Some(increment) = stream.recv_window.release(padding)
        {
            self.control.push_back(Control::WindowUpdate {
                stream_id: id,
                increment,
            });
        }
        let closed = data.end_stream && stream.on_end_stream_received();
        self.unconsumed += data.payload.len();
        if !data.payload.is_empty() || data.end_stream {
            self.events.push_back(Event::Data {
                stream_id: id,
                data: data.payload,
                end_stream: data.end_stream,
            });
        }
        if closed {
            self.close_stream(id, Closed::Finished);
        }
    }

    fn on_headers(&mut self, headers: Headers) {
        let id = headers.stream_id;
        if headers.header_block.is_empty() && !headers.end_stream && !self.count_empty_frame() {
            return;
        }
        // Decode first, always: the HPACK table must see every block (RFC 9113 §4.3).
        // A new list sized for a usual response's fields (a block holds at least a byte
        // per field), rather than grown in steps.
        let mut fields: Vec<Field> = match self.spare_fields.pop() {
            Some(fields) => {
                self.spare_fields_capacity -= fields.capacity();
                fields
            }
            None => Vec::with_capacity(headers.header_block.len().min(8)),
        };
        let decoded = self
            .hpack_decoder
            .decode(&headers.header_block, |f| fields.push(f));
        if let Err(err) = decoded
            && err.is_connection_error()
        {
            return self.connection_error(ErrorCode::CompressionError, "HPACK decoding failed");
        }
        let too_large = decoded.is_err();
        if let Err(FrameError::Stream { code, reason, .. }) = headers.check_priority() {
            return self.reset_peer_stream(id, code, reason);
        }
        match self.known(id) {
            Known::Active => self.on_stream_headers(id, fields, headers.end_stream, too_large),
            // Decoded above, so HPACK stays in step whatever the verdict.
            Known::Closed => self.late_frame(id, "HEADERS on a closed stream"),
            Known::Idle => {
                let peer_initiated = match self.role {
                    Role::Client => id.is_server_initiated(),
                    Role::Server => id.is_client_initiated(),
                };
                if self.role == Role::Client || !peer_initiated {
                    // A client only receives HEADERS on streams it opened; §8.4 push
                    // would be the only way for a server to start one.
                    return self.connection_error(
                        ErrorCode::ProtocolError,
                        "HEADERS on a stream we never opened",
                    );
                }
                self.accept_stream(id, fields, headers.end_stream, too_large);
            }
        }
    }

    /// A server's new stream.
    fn accept_stream(
        &mut self,
        id: StreamId,
        fields: Vec<Field>,
        end_stream: bool,
        too_large: bool,
    ) {
        // Ids only grow (§5.1.1); `known` said idle, so id > last_peer_id.
        self.last_peer_id = id.value();
        if self.goaway_sent.is_some_and(|last| id > last) {
            // §6.8: streams above our GOAWAY's last id are ignored.
            return;
        }
        if too_large {
            return self.refuse(id, ErrorCode::ProtocolError);
        }
        if self
            .config
            .max_concurrent_streams
            .is_some_and(|max| self.peer_active >= max as usize)
        {
            // §5.1.2: over our limit: REFUSED_STREAM, so the client may retry elsewhere.
            return self.refuse(id, ErrorCode::RefusedStream);
        }
        let mut stream = Stream::new(
            id,
            State::Open,
            self.peer_initial_window,
            self.stream_recv_limit(),
        );
        stream.queue = self.spare_queues.take();
        stream.counted = true;
        stream.recv_phase = RecvPhase::Body;
        if end_stream {
            stream.on_end_stream_received();
        }
        self.peer_active += 1;
        self.streams.insert(id.value(), stream);
        self.spares_trim_at = None;
        self.note_stream_count();
        self.events.push_back(Event::Headers {
            stream_id: id,
            fields,
            end_stream,
        });
    }

    /// Resets a stream we never accepted: the application never hears of it.
    fn refuse(&mut self, id: StreamId, code: ErrorCode) {
        if !self.count_local_reset() {
            return;
        }
        self.control.push_back(Control::Reset {
            stream_id: id,
            code,
        });
    }

    fn on_stream_headers(
        &mut self,
        id: StreamId,
        fields: Vec<Field>,
        end_stream: bool,
        too_large: bool,
    ) {
        let Some(stream) = self.streams.get_mut(&id.value()) else {
            return;
        };
        if !stream.can_recv() {
            return self.stream_error(id, ErrorCode::StreamClosed, "HEADERS after END_STREAM");
        }
        if too_large {
            return self.stream_error(id, ErrorCode::ProtocolError, "header list too large");
        }
        let event = match stream.recv_phase {
            RecvPhase::AwaitingHeaders => {
                stream.recv_phase = RecvPhase::Body;
                Event::Headers {
                    stream_id: id,
                    fields,
                    end_stream,
                }
            }
            RecvPhase::Body if end_stream => Event::Trailers {
                stream_id: id,
                fields,
            },
            // gRPC over HTTP/2 (and RFC 9113 §8.1): HEADERS only open or end a stream.
            _ => {
                return self.stream_error(
                    id,
                    ErrorCode::ProtocolError,
                    "HEADERS in the middle of a stream",
                );
            }
        };
        let closed = end_stream && stream.on_end_stream_received();
        self.events.push_back(event);
        if closed {
            self.close_stream(id, Closed::Finished);
        }
    }

    fn on_rst_stream(&mut self, id: StreamId, code: ErrorCode) {
        match self.known(id) {
            Known::Idle => {
                self.connection_error(ErrorCode::ProtocolError, "RST_STREAM on an idle stream")
            }
            Known::Closed => {}
            Known::Active => {
                if !self.is_local(id) && !self.count_remote_reset() {
                    return;
                }
                self.close_stream(id, Closed::PeerReset);
                self.events.push_back(Event::StreamReset {
                    stream_id: id,
                    reset: StreamReset {
                        code,
                        initiator: Initiator::Remote,
                        unprocessed: code == ErrorCode::RefusedStream,
                        reason: "peer reset the stream",
                    },
                });
            }
        }
    }

    fn on_settings(&mut self, settings: Settings) {
        if settings.ack {
            // An ACK we did not ask for is harmless; ignore it.
            if self.settings_inflight.pop_front().is_some() && !self.settings_acked {
                // Our initial SETTINGS is in force now.
                self.settings_acked = true;
                self.decoder.set_max_frame_size(self.config.max_frame_size);
                self.hpack_decoder
                    .set_max_table_size(self.config.header_table_size as usize);
                // Streams opened before the ACK were given the RFC default window;
                // a smaller configured window now applies to them too (the peer has
                // already moved them by the difference, §6.9.2). Without this their
                // WINDOW_UPDATEs wait for a quarter of the old, larger limit, which
                // the peer can never send: both sides stall.
                self.set_stream_limits(self.config.initial_stream_window);
            }
            return;
        }
        if settings.enable_push == Some(true) && self.role == Role::Client {
            // RFC 9113 §6.5.2: a server must not enable push.
            return self.connection_error(ErrorCode::ProtocolError, "server sent ENABLE_PUSH 1");
        }
        if let Some(size) = settings.header_table_size {
            self.hpack_encoder.set_peer_max_table_size(size as usize);
        }
        if let Some(size) = settings.max_frame_size {
            self.peer_max_frame_size = size;
        }
        if let Some(size) = settings.max_header_list_size {
            self.peer_max_header_list_size = Some(size);
        }
        if let Some(new) = settings.initial_window_size {
            let old = self.peer_initial_window;
            self.peer_initial_window = new;
            let mut overflow = false;
            let mut reschedule = Vec::new();
            for stream in self.streams.values_mut() {
                // §6.9.2: applies to every stream's send window, possibly making it negative.
                if stream.send_window.adjust_initial(old, new).is_err() {
                    overflow = true;
                }
                if new > old {
                    reschedule.push(stream.id);
                }
            }
            if overflow {
                return self.connection_error(
                    ErrorCode::FlowControlError,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                );
            }
            reschedule.sort();
            for id in reschedule {
                self.schedule(id);
            }
        }
        // The first SETTINGS without a limit means "unlimited" (RFC 9113 §6.5.2): the
        // 100 assumed until now gives way, as grpc-go's isFirst handling does.
        let max_streams = settings
            .max_concurrent_streams
            .or((!self.peer_settings_seen).then_some(u32::MAX));
        if let Some(max) = max_streams {
            self.peer_max_concurrent_streams = max;
            // grpc-go's streamsQuotaAvailable: waiting streams go as soon as quota rises.
            self.grant_quota();
        }
        self.control.push_back(Control::SettingsAck);
        if !self.peer_settings_seen {
            self.peer_settings_seen = true;
            self.events.push_back(Event::Connected);
        }
        self.events.push_back(Event::RemoteSettings(settings));
    }

    fn on_ping(&mut self, ping: frame::Ping, now: Instant) {
        if !ping.ack {
            let active = self.streams.len();
            if let Some(PingVerdict::GoAway { code, .. }) =
                self.ping_policy.as_mut().map(|p| p.on_ping(now, active))
            {
                // gRFC A8: the client doubles its keepalive time when it sees this.
                return self.connection_error(code, TOO_MANY_PINGS_REASON);
            }
            self.control.push_back(Control::Ping {
                payload: ping.payload,
                ack: true,
            });
            return;
        }
        if ping.payload == SHUTDOWN_PING && self.shutdown_ping_pending {
            return self.finish_shutdown();
        }
        if ping.payload == KEEPALIVE_PING_PAYLOAD {
            if let Some(k) = &mut self.client_keepalive {
                k.on_ping_ack(now);
            }
            if let Some(k) = &mut self.server_keepalive {
                k.on_ping_ack(now);
            }
            return;
        }
        if ping.payload == BdpEstimator::PING_PAYLOAD {
            if let Some(window) = self.bdp.as_mut().and_then(|b| b.on_ping_ack(now)) {
                self.grow_windows(window);
            }
            return;
        }
        if let Some(pos) = self
            .user_pings
            .iter()
            .position(|(p, at)| *p == ping.payload && at.is_some())
            && let Some((payload, Some(sent))) = self.user_pings.remove(pos)
        {
            self.events.push_back(Event::PingAck {
                payload,
                rtt: now.saturating_duration_since(sent),
            });
        }
    }

    fn on_goaway(&mut self, goaway: GoAway) {
        let last = goaway.last_stream_id;
        if self.role == Role::Client && !last.is_zero() && !last.is_client_initiated() {
            // grpc-go: an even last-stream-id from a server names a stream a client never
            // opens; treat it as the protocol error it is.
            return self.connection_error(
                ErrorCode::ProtocolError,
                "GOAWAY last-stream-id is not a client stream",
            );
        }
        if let Some(prev) = self.goaway_received {
            if last > prev {
                // §6.8: the id may only stay or shrink across GOAWAYs.
                return self
                    .connection_error(ErrorCode::ProtocolError, "GOAWAY last-stream-id increased");
            }
        } else {
            self.events.push_back(Event::GoAway {
                last_stream_id: last,
                code: goaway.error_code,
                debug_data: goaway.debug_data.clone(),
            });
        }
        if self.peer_goaway_code.is_none() {
            self.peer_goaway_code = Some((goaway.error_code, goaway.debug_data.clone()));
        }
        self.goaway_received = Some(last);
        // Our streams above `last` were never processed: they may be retried elsewhere.
        let mut doomed: Vec<StreamId> = self
            .streams
            .values()
            .filter(|s| self.is_local(s.id) && s.id > last)
            .map(|s| s.id)
            .collect();
        doomed.sort();
        for id in doomed {
            self.close_stream(id, Closed::Reset);
            self.events.push_back(Event::StreamReset {
                stream_id: id,
                reset: StreamReset {
                    code: goaway.error_code,
                    initiator: Initiator::Remote,
                    unprocessed: true,
                    reason: "stream above the peer's GOAWAY last-stream-id",
                },
            });
        }
        self.fail_pending_open("peer sent GOAWAY before the stream started");
        self.maybe_finish_draining();
    }

    fn on_window_update(&mut self, wu: WindowUpdate) {
        if wu.stream_id.is_zero() {
            if self.conn_send.increase(wu.increment).is_err() {
                return self.connection_error(
                    ErrorCode::FlowControlError,
                    "connection window above 2^31-1",
                );
            }
            if self.conn_send.available() > 0 {
                let blocked: Vec<StreamId> = self.conn_blocked.drain(..).collect();
                for id in blocked {
                    if let Some(s) = self.streams.get_mut(&id.value()) {
                        s.scheduled = false;
                    }
                    self.schedule(id);
                }
            }
            return;
        }
        match self.known(wu.stream_id) {
            Known::Idle => {
                // §5.1: WINDOW_UPDATE on an idle stream is a connection PROTOCOL_ERROR.
                self.connection_error(ErrorCode::ProtocolError, "WINDOW_UPDATE on an idle stream")
            }
            Known::Closed => {}
            Known::Active => {
                let Some(stream) = self.streams.get_mut(&wu.stream_id.value()) else {
                    return;
                };
                if stream.send_window.increase(wu.increment).is_err() {
                    return self.stream_error(
                        wu.stream_id,
                        ErrorCode::FlowControlError,
                        "stream window above 2^31-1",
                    );
                }
                self.schedule(wu.stream_id);
            }
        }
    }

    /// The BDP estimate outgrew our windows: raise the connection window with a
    /// WINDOW_UPDATE and every stream's with SETTINGS_INITIAL_WINDOW_SIZE (§6.9.2 makes
    /// the peer apply the difference to open streams), as grpc-go's updateFlowControl.
    fn grow_windows(&mut self, window: u32) {
        if let Some(increment) = self.conn_recv.set_limit(window) {
            self.control.push_back(Control::WindowUpdate {
                stream_id: StreamId::ZERO,
                increment,
            });
        }
        self.config.initial_stream_window = window;
        self.set_stream_limits(window);
        self.control.push_back(Control::Settings(Settings {
            initial_window_size: Some(window),
            ..Settings::default()
        }));
    }

    /// Every open stream's receive limit becomes `window`; the WINDOW_UPDATEs that makes
    /// due go out in stream order.
    fn set_stream_limits(&mut self, window: u32) {
        let mut owed = Vec::new();
        for stream in self.streams.values_mut() {
            if let Some(increment) = stream.recv_window.set_limit(window) {
                owed.push((stream.id, increment));
            }
        }
        owed.sort();
        for (stream_id, increment) in owed {
            self.control.push_back(Control::WindowUpdate {
                stream_id,
                increment,
            });
        }
    }

    /// Keepalive policies care whether any stream is open.
    fn note_stream_count(&mut self) {
        let (now, n) = (self.now, self.streams.len());
        if let Some(k) = &mut self.client_keepalive {
            k.on_stream_count(now, n);
        }
        if let Some(k) = &mut self.server_keepalive {
            k.on_stream_count(now, n);
        }
    }

    /// DATA or HEADERS on a closed stream: RFC 9113 §5.1 decides by how it closed.
    fn late_frame(&mut self, id: StreamId, what: &'static str) {
        let how = self
            .recently_closed
            .iter()
            .rev()
            .find(|(closed, _)| *closed == id)
            .map(|&(_, how)| how);
        match how {
            Some(Closed::PeerReset) => self.stream_error(id, ErrorCode::StreamClosed, what),
            Some(Closed::Finished) => self.connection_error(ErrorCode::StreamClosed, what),
            // We reset it, or it closed too long ago to tell: frames the peer sent before
            // it saw our RST_STREAM must be ignored.
            Some(Closed::Reset) | None => {}
        }
    }

    // ----- stream bookkeeping -----

    fn is_local(&self, id: StreamId) -> bool {
        match self.role {
            Role::Client => id.is_client_initiated(),
            Role::Server => id.is_server_initiated(),
        }
    }

    fn stream_recv_limit(&self) -> u32 {
        if self.settings_acked {
            self.config.initial_stream_window
        } else {
            // Until our SETTINGS is acknowledged the peer may use the RFC default.
            self.config
                .initial_stream_window
                .max(frame::DEFAULT_INITIAL_WINDOW_SIZE)
        }
    }

    fn check_open(&self) -> Result<(), CommandError> {
        if self.closed.is_some() {
            Err(CommandError::Closed)
        } else {
            Ok(())
        }
    }

    fn check_header_list(&self, headers: &[Header]) -> Result<(), CommandError> {
        if let Some(max) = self.peer_max_header_list_size {
            let size: usize = headers.iter().map(Header::list_size).sum();
            if size > max as usize {
                return Err(CommandError::HeaderListTooLarge);
            }
        }
        Ok(())
    }

    fn sendable_stream(&mut self, id: StreamId) -> Result<&mut Stream, CommandError> {
        let stream = self
            .streams
            .get_mut(&id.value())
            .ok_or(CommandError::UnknownStream)?;
        if stream.send_finished {
            return Err(CommandError::SendClosed);
        }
        Ok(stream)
    }

    /// Puts a stream where its next write will be found: on the writer's ready list if
    /// it can write now, on the connection-blocked list if only the connection window
    /// stops it (a connection WINDOW_UPDATE wakes that list). A stream waiting for its own
    /// window is woken by its WINDOW_UPDATE or a SETTINGS change instead.
    fn schedule(&mut self, id: StreamId) {
        let conn_window = self.conn_send.available();
        // Our streams wait for the peer's quota; the peer's were counted on arrival.
        let local = self.is_local(id);
        let Some(stream) = self.streams.get_mut(&id.value()) else {
            return;
        };
        if stream.scheduled || (local && !stream.counted) {
            return;
        }
        match stream.wait(conn_window) {
            Wait::Ready => self.ready.push_back(id),
            Wait::ConnWindow => self.conn_blocked.push_back(id),
            Wait::Nothing | Wait::StreamWindow => return,
        }
        stream.scheduled = true;
    }

    /// Lets waiting streams go while the peer's concurrency quota allows.
    fn grant_quota(&mut self) {
        while self.local_active < self.peer_max_concurrent_streams as usize {
            let Some(id) = self.pending_open.pop_front() else {
                break;
            };
            if let Some(stream) = self.streams.get_mut(&id.value()) {
                stream.counted = true;
                self.local_active += 1;
                self.schedule(id);
            }
        }
    }

    /// Removes a stream, returning its quota.
    fn close_stream(&mut self, id: StreamId, how: Closed) {
        let Some(mut stream) = self.streams.remove(&id.value()) else {
            return;
        };
        self.spare_queues.put(std::mem::take(&mut stream.queue));
        if stream.state != State::Idle {
            if self.recently_closed.len() == RECENTLY_CLOSED {
                self.recently_closed.pop_front();
            }
            self.recently_closed.push_back((id, how));
        }
        self.note_stream_count();
        if self.streams.is_empty() {
            self.spares_trim_at = self.now.checked_add(SPARES_IDLE);
        }
        self.pending_open.retain(|&p| p != id);
        if stream.counted {
            if self.is_local(id) {
                self.local_active -= 1;
                self.grant_quota();
            } else {
                self.peer_active -= 1;
            }
        }
        self.maybe_finish_draining();
    }

    /// We reset a peer's stream that we never accepted or that just broke a rule.
    fn reset_peer_stream(&mut self, id: StreamId, code: ErrorCode, reason: &'static str) {
        if self.known(id) == Known::Idle && !self.is_local(id) {
            self.last_peer_id = id.value();
        }
        self.stream_error(id, code, reason);
    }

    /// RFC 9113 §5.4.2: RST_STREAM and forget the stream.
    fn stream_error(&mut self, id: StreamId, code: ErrorCode, reason: &'static str) {
        if !self.count_local_reset() {
            return;
        }
        if self.streams.contains_key(&id.value()) {
            self.close_stream(id, Closed::Reset);
            self.events.push_back(Event::StreamReset {
                stream_id: id,
                reset: StreamReset {
                    code,
                    initiator: Initiator::Local,
                    unprocessed: false,
                    reason,
                },
            });
        }
        self.control.push_back(Control::Reset {
            stream_id: id,
            code,
        });
    }

    /// Counts a frame that carries nothing and ends nothing (empty non-final DATA or
    /// HEADERS): only a flood sends many (h2's limit). False, and GOAWAY, past the limit.
    fn count_empty_frame(&mut self) -> bool {
        self.empty_frames += 1;
        if self.empty_frames > self.config.max_empty_frames {
            self.connection_error(ErrorCode::EnhanceYourCalm, "too many empty frames");
            return false;
        }
        true
    }

    /// Counts a reset of one of the peer's own streams (rapid reset, CVE-2023-44487):
    /// more than `max_remote_resets` within `remote_reset_window` ends the connection.
    fn count_remote_reset(&mut self) -> bool {
        let now = self.now;
        self.remote_resets.push_back(now);
        if self.remote_resets.len() > self.config.max_remote_resets {
            let oldest = self.remote_resets.pop_front().unwrap_or(now);
            if now.saturating_duration_since(oldest) < self.config.remote_reset_window {
                self.connection_error(ErrorCode::EnhanceYourCalm, "too many stream resets");
                return false;
            }
        }
        true
    }

    /// Counts a reset we send because of the peer; false (and GOAWAY) past the limit.
    fn count_local_reset(&mut self) -> bool {
        self.local_resets += 1;
        if self.local_resets > self.config.max_local_resets {
            self.connection_error(ErrorCode::EnhanceYourCalm, "too many stream errors");
            return false;
        }
        true
    }

    fn fail_pending_open(&mut self, reason: &'static str) {
        let pending: Vec<StreamId> = self.pending_open.drain(..).collect();
        for id in pending {
            if self.streams.remove(&id.value()).is_some() {
                self.events.push_back(Event::StreamReset {
                    stream_id: id,
                    reset: StreamReset {
                        code: ErrorCode::RefusedStream,
                        initiator: Initiator::Local,
                        unprocessed: true,
                        reason,
                    },
                });
            }
        }
    }

    fn send_goaway(&mut self, last: StreamId, code: ErrorCode, debug: Bytes) {
        self.goaway_sent = Some(last);
        self.control
            .push_back(Control::GoAway(goaway(last, code, debug)));
    }

    /// After a GOAWAY either way, the connection ends once no stream is left.
    fn maybe_finish_draining(&mut self) {
        if self.closed.is_some() || !self.streams.is_empty() || self.shutdown_ping_pending {
            return;
        }
        if self.goaway_sent.is_some() {
            self.finish(
                CloseReason::Local {
                    code: ErrorCode::NoError,
                    reason: "graceful shutdown",
                },
                ErrorCode::NoError,
            );
        } else if self.goaway_received.is_some() {
            let (code, debug_data) = self
                .peer_goaway_code
                .clone()
                .unwrap_or((ErrorCode::NoError, Bytes::new()));
            self.finish(CloseReason::GoAway { code, debug_data }, ErrorCode::NoError);
        }
    }

    /// RFC 9113 §5.4.1: GOAWAY with the last peer stream we processed, then close.
    fn connection_error(&mut self, code: ErrorCode, reason: &'static str) {
        if self.closed.is_some() {
            return;
        }
        // Replies still queued are moot; the GOAWAY should leave at once. Only our
        // first SETTINGS, if it has not gone out yet, stays ahead of it: RFC 9113 §3.4
        // makes it the first frame of the connection, whatever follows.
        let first_settings_pending = !self.settings_written;
        self.control
            .retain(|c| first_settings_pending && matches!(c, Control::Settings(_)));
        self.control.push_back(Control::GoAway(goaway(
            StreamId::new(self.last_peer_id),
            code,
            Bytes::from_static(reason.as_bytes()),
        )));
        self.finish(CloseReason::Local { code, reason }, code);
    }

    /// Ends the connection: every open stream is reset, then `Closed` is reported.
    fn finish(&mut self, reason: CloseReason, stream_code: ErrorCode) {
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(stream) = self.streams.remove(&id) {
                self.events.push_back(Event::StreamReset {
                    stream_id: stream.id,
                    reset: StreamReset {
                        code: stream_code,
                        initiator: Initiator::Local,
                        unprocessed: stream.state == State::Idle,
                        reason: CONNECTION_CLOSED_REASON,
                    },
                });
            }
        }
        self.pending_open.clear();
        self.ready.clear();
        self.conn_blocked.clear();
        self.events.push_back(Event::Closed {
            reason: reason.clone(),
        });
        self.closed = Some(reason);
    }
}
/// True when `next` starts where `inbox` ends in memory (a later read from the same
/// region), which `BytesMut::unsplit` joins without copying.
fn continues(inbox: &BytesMut, next: &BytesMut) -> bool {
    inbox.as_ptr().wrapping_add(inbox.len()) == next.as_ptr()
}

/// How many bytes the frame `inbox` begins with lacks, its header read across `inbox`
/// and `next`; 0 when `inbox` holds at least one whole frame.
fn frame_lacks(inbox: &[u8], next: &[u8]) -> usize {
    let mut head = [0u8; frame::HEADER_LEN];
    let have = inbox.len().min(frame::HEADER_LEN);
    head[..have].copy_from_slice(&inbox[..have]);
    let from_next = (frame::HEADER_LEN - have).min(next.len());
    head[have..have + from_next].copy_from_slice(&next[..from_next]);
    if have + from_next < frame::HEADER_LEN {
        // Even the header is not complete yet: take what there is of it.
        return frame::HEADER_LEN - have;
    }
    let whole = frame::HEADER_LEN + frame::FrameHeader::parse(&head).len as usize;
    whole.saturating_sub(inbox.len())
}

/// Appends a DATA payload after its frame head in `buf`: copied there when small (an
/// extra iovec costs more than copying a few hundred bytes), otherwise handed to `out`
/// as its own chunk behind what `buf` holds so far.
fn push_payload(buf: &mut BytesMut, out: &mut Transmit, payload: Bytes) {
    if payload.len() < SMALL_PAYLOAD_COPY {
        buf.extend_from_slice(&payload);
    } else {
        out.push(buf.split().freeze());
        out.push(payload);
    }
}
