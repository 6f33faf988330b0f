//! A client and a server [`Connection`] wired together in memory, under a virtual clock.
//!
//! Bytes cross in chunks of seeded random sizes, so every run with the same seed is the
//! same run; time only moves when a test says so. This is the start of the simulator.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::h2::{Config, Connection, Event, Role, Transmit};

use crate::rng::SimRng;
use crate::wire::WireEvent;

/// Which side of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client connection.
    Client,
    /// The server connection.
    Server,
}

/// Two connected [`Connection`]s and the wire between them.
pub struct Pair {
    /// The client end.
    pub client: Connection,
    /// The server end.
    pub server: Connection,
    /// The virtual time.
    pub now: Instant,
    /// Events the client emitted, in order, not yet taken by the test.
    pub client_events: Vec<Event>,
    /// Events the server emitted.
    pub server_events: Vec<Event>,
    /// Release every DATA payload as soon as it is delivered (an application that keeps
    /// up); off to simulate a slow reader.
    pub auto_release: bool,
    /// Largest chunk delivered at once.
    pub max_chunk: usize,
    rng: SimRng,
    to_server: BytesMut,
    to_client: BytesMut,
    /// Bytes each side has written so far.
    pub written: [usize; 2],
    /// EOF delivered to the other side after each side closed.
    eof_sent: [bool; 2],
    /// Every write and delivery since the last [`take_wire`](Pair::take_wire), once
    /// [`record_wire`](Pair::record_wire) was called.
    wire_log: Option<Vec<WireEvent>>,
}

/// Rounds of `drive` without quiescence after which the pair is declared livelocked.
const MAX_ROUNDS: usize = 1_000_000;

impl Pair {
    /// A pair with default configurations, chunking seeded by `seed`.
    pub fn new(seed: u64) -> Pair {
        Pair::with_configs(seed, Config::client(), Config::server())
    }

    /// A pair with the given configurations.
    pub fn with_configs(seed: u64, client: Config, server: Config) -> Pair {
        // The only clock read: a base point; everything after it is virtual.
        let now = Instant::now();
        Pair {
            client: Connection::new(Role::Client, client, now),
            server: Connection::new(Role::Server, server, now),
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
            auto_release: true,
            max_chunk: 4096,
            rng: SimRng::new(seed),
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            written: [0, 0],
            eof_sent: [false, false],
            wire_log: None,
        }
    }

    /// Starts keeping a copy of every batch written and every chunk delivered, for
    /// observers of the frames themselves (see [`crate::wire`]). Call it before the first
    /// `drive` to see the whole connection.
    pub fn record_wire(&mut self) {
        self.wire_log.get_or_insert_with(Vec::new);
    }

    /// The wire movements recorded since the last call, in the order they happened.
    pub fn take_wire(&mut self) -> Vec<WireEvent> {
        self.wire_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Moves bytes and events until neither side has anything more to do.
    pub fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            progress |= self.transmit(Side::Client);
            progress |= self.transmit(Side::Server);
            progress |= self.deliver(Side::Server);
            progress |= self.deliver(Side::Client);
            progress |= self.collect();
            progress |= self.propagate_close();
            if !progress {
                return;
            }
        }
        panic!("pair did not quiesce after {MAX_ROUNDS} rounds");
    }

    /// Advances the virtual clock by `d`, fires due timers, and drives.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let now = self.now;
        for conn in [&mut self.client, &mut self.server] {
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
        }
        self.drive();
    }

    /// The connection of `side`.
    pub fn conn(&mut self, side: Side) -> &mut Connection {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Takes the events `side` emitted so far.
    pub fn take_events(&mut self, side: Side) -> Vec<Event> {
        match side {
            Side::Client => std::mem::take(&mut self.client_events),
            Side::Server => std::mem::take(&mut self.server_events),
        }
    }

    fn transmit(&mut self, side: Side) -> bool {
        let now = self.now;
        let mut out = Transmit::new();
        let (conn, wire) = match side {
            Side::Client => (&mut self.client, &mut self.to_server),
            Side::Server => (&mut self.server, &mut self.to_client),
        };
        let start = wire.len();
        let mut total = 0;
        while conn.poll_transmit(now, &mut out) > 0 {
            total += out.len();
            out.copy_to(wire);
            out.clear();
        }
        if total > 0
            && let Some(log) = &mut self.wire_log
        {
            log.push(WireEvent::Written {
                from: side,
                bytes: Bytes::copy_from_slice(&wire[start..]),
            });
        }
        self.written[side as usize] += total;
        total > 0
    }

    fn deliver(&mut self, to: Side) -> bool {
        let now = self.now;
        let chunk_max = self.max_chunk;
        let (conn, wire) = match to {
            Side::Server => (&mut self.server, &mut self.to_server),
            Side::Client => (&mut self.client, &mut self.to_client),
        };
        let mut delivered = false;
        while !wire.is_empty() && conn.wants_read() {
            let n = self.rng.range(1, chunk_max).min(wire.len());
            // Half the reads land in a buffer of their own, as a reader's do when it
            // moves to a new region, so frames straddle separate buffers too.
            let chunk = if self.rng.percent(50) {
                wire.split_to(n)
            } else {
                let own = BytesMut::from(&wire[..n]);
                bytes::Buf::advance(wire, n);
                own
            };
            if let Some(log) = &mut self.wire_log {
                log.push(WireEvent::Delivered {
                    to,
                    bytes: Bytes::copy_from_slice(&chunk),
                });
            }
            conn.recv(chunk, now);
            delivered = true;
        }
        if !wire.is_empty() && conn.is_closed() {
            // Nobody reads a closed connection's socket.
            wire.clear();
        }
        delivered
    }

    /// A closed connection's socket closes: once its last bytes are delivered, the other
    /// side reads EOF.
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
        for side in [Side::Client, Side::Server] {
            let auto = self.auto_release;
            let (conn, events) = match side {
                Side::Client => (&mut self.client, &mut self.client_events),
                Side::Server => (&mut self.server, &mut self.server_events),
            };
            while let Some(event) = conn.poll_event() {
                if auto
                    && let Event::Data {
                        stream_id, data, ..
                    } = &event
                {
                    conn.release_data(*stream_id, data.len())
                        .expect("releasing delivered data");
                }
                events.push(event);
                progress = true;
            }
        }
        progress
    }
}
