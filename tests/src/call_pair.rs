//! A gRPC [`ClientTransport`] and [`ServerTransport`] wired together in memory, under a
//! virtual clock, with seeded chunking: the call-level sibling of [`crate::pair`].

use std::time::{Duration, Instant};

use bytes::BytesMut;
use grpc_sansio::grpc::client::{ClientEvent, RequestHeaders, Scheme};
use grpc_sansio::grpc::server::{RequestHead, ServerEvent};
use grpc_sansio::grpc::transport::{
    CallId, ClientTransport, ClientTransportEvent, MessageLimits, ServerTransport,
    ServerTransportEvent,
};
use grpc_sansio::h2::{Config, Transmit};

use crate::rng::SimRng;

/// Rounds of `drive` without quiescence after which the pair is declared livelocked.
const MAX_ROUNDS: usize = 1_000_000;

/// Two connected transports and the wire between them.
pub struct CallPair {
    /// The client end.
    pub client: ClientTransport,
    /// The server end.
    pub server: ServerTransport,
    /// The virtual time.
    pub now: Instant,
    /// Events the client emitted, not yet taken.
    pub client_events: Vec<ClientTransportEvent>,
    /// Events the server emitted, not yet taken.
    pub server_events: Vec<ServerTransportEvent>,
    /// Largest chunk delivered at once.
    pub max_chunk: usize,
    /// Bytes each side wrote: `[client, server]`.
    pub written: [usize; 2],
    rng: SimRng,
    to_server: BytesMut,
    to_client: BytesMut,
    eof_sent: [bool; 2],
}

impl CallPair {
    /// Default configurations and limits, chunking seeded by `seed`.
    pub fn new(seed: u64) -> CallPair {
        CallPair::with(
            seed,
            Config::client(),
            Config::server(),
            MessageLimits::default(),
            MessageLimits::default(),
        )
    }

    /// The given connection configurations and message limits.
    pub fn with(
        seed: u64,
        client: Config,
        server: Config,
        client_limits: MessageLimits,
        server_limits: MessageLimits,
    ) -> CallPair {
        // The only clock read: a base point; everything after it is virtual.
        let now = Instant::now();
        CallPair {
            client: ClientTransport::new(client, client_limits, now),
            server: ServerTransport::new(server, server_limits, now),
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
            max_chunk: 4096,
            written: [0, 0],
            rng: SimRng::new(seed),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            eof_sent: [false, false],
        }
    }

    /// Request headers for `path` on this pair's (fictional) authority.
    pub fn request(path: &str) -> RequestHeaders {
        RequestHeaders::new(Scheme::Http, "test.local:50051", path.to_owned())
    }

    /// Starts a call and drives until the server has seen it; returns both ends' ids
    /// and the request head.
    pub fn start(&mut self, headers: &RequestHeaders) -> (CallId, CallId, RequestHead) {
        let id = self
            .client
            .start_call(headers, self.now)
            .expect("call starts");
        self.drive();
        let (server_id, head) = self.accept().expect("server saw the call");
        (id, server_id, head)
    }

    /// Takes the oldest `NewCall` the server reported.
    pub fn accept(&mut self) -> Option<(CallId, RequestHead)> {
        let at = self
            .server_events
            .iter()
            .position(|e| matches!(e, ServerTransportEvent::NewCall { .. }))?;
        match self.server_events.remove(at) {
            ServerTransportEvent::NewCall { call, head } => Some((call, *head)),
            _ => unreachable!("position found a NewCall"),
        }
    }

    /// Every event the client call has now.
    pub fn client_call(&mut self, id: CallId) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.client.poll_call(id)).collect()
    }

    /// Every event the server call has now.
    pub fn server_call(&mut self, id: CallId) -> Vec<ServerEvent> {
        std::iter::from_fn(|| self.server.poll_call(id)).collect()
    }

    /// Moves bytes and events until neither side has anything more to do.
    pub fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            progress |= self.transmit(true);
            progress |= self.transmit(false);
            progress |= self.deliver(false);
            progress |= self.deliver(true);
            progress |= self.collect();
            progress |= self.propagate_close();
            if !progress {
                return;
            }
        }
        panic!("call pair did not quiesce after {MAX_ROUNDS} rounds");
    }

    /// Advances the virtual clock by `d`, fires due timers on both sides, and drives.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        self.drive();
    }

    fn transmit(&mut self, client: bool) -> bool {
        let now = self.now;
        let mut out = Transmit::new();
        let mut total = 0;
        loop {
            let n = if client {
                self.client.poll_transmit(now, &mut out)
            } else {
                self.server.poll_transmit(now, &mut out)
            };
            if n == 0 {
                break;
            }
            total += out.len();
            let wire = if client {
                &mut self.to_server
            } else {
                &mut self.to_client
            };
            out.copy_to(wire);
            out.clear();
        }
        self.written[usize::from(!client)] += total;
        total > 0
    }

    fn deliver(&mut self, to_client: bool) -> bool {
        let now = self.now;
        let mut delivered = false;
        loop {
            let (wants, closed, wire) = if to_client {
                (
                    self.client.wants_read(),
                    self.client.is_closed(),
                    &mut self.to_client,
                )
            } else {
                (
                    self.server.wants_read(),
                    self.server.is_closed(),
                    &mut self.to_server,
                )
            };
            if wire.is_empty() {
                break;
            }
            if closed {
                // Nobody reads a closed connection's socket.
                wire.clear();
                break;
            }
            if !wants {
                break;
            }
            let n = self.rng.range(1, self.max_chunk).min(wire.len());
            let chunk = wire.split_to(n);
            if to_client {
                self.client.recv(chunk, now);
            } else {
                self.server.recv(chunk, now);
            }
            delivered = true;
        }
        delivered
    }

    fn propagate_close(&mut self) -> bool {
        let mut progress = false;
        if self.client.is_closed() && self.to_server.is_empty() && !self.eof_sent[0] {
            self.eof_sent[0] = true;
            self.server.recv_eof();
            progress = true;
        }
        if self.server.is_closed() && self.to_client.is_empty() && !self.eof_sent[1] {
            self.eof_sent[1] = true;
            self.client.recv_eof();
            progress = true;
        }
        progress
    }

    fn collect(&mut self) -> bool {
        let mut progress = false;
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
            progress = true;
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
            progress = true;
        }
        progress
    }
}
