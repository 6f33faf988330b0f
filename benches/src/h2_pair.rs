//! A client and a server [`Connection`] back to back in memory, lean enough to time, and
//! the workloads the h2 benches run over them.
//!
//! Each side's [`Transmit`] is copied into one buffer that the other side's `recv` takes
//! whole. That copy stands in for the socket (a real one costs a kernel copy on each
//! side), so it is counted rather than avoided. Feeding the `Transmit` chunks one by one
//! would not save it: a `Bytes` becomes a `BytesMut` only by copy, and a frame head
//! arriving apart from its payload makes `recv` join the two by copying again. One buffer
//! per batch holds whole frames, so the receiver can slice every DATA payload out of it.
//!
//! Time never moves: every call gets the instant the pair was built with. Nothing here
//! needs timers, and a fixed clock keeps runs comparable (the BDP estimator then sees
//! round trips of zero, which it counts as one nanosecond).

use std::ops::Range;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::StreamId;
use grpc_sansio::h2::{
    Config, Connection, DEFAULT_MAX_WRITE_BATCH, Event, Header, Role, SMALL_PAYLOAD_COPY, Transmit,
};

use crate::{REQUEST_HEADERS, TRAILER_HEADERS};

/// One end of an [`H2Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client connection.
    Client,
    /// The server connection.
    Server,
}

/// What crossed the pair, and which of it was copied.
///
/// Payload bytes count only DATA payloads the application queued or was handed; frame
/// heads and control frames are not payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyCount {
    /// Payload bytes the client queued with `send_data`.
    pub sent: u64,
    /// Of those, bytes the client's `Transmit` carried as slices of the buffer the
    /// application sent (not copied by the connection).
    pub sent_by_reference: u64,
    /// Payload bytes the server delivered in `Event::Data`.
    pub received: u64,
    /// Of those, bytes that were slices of a buffer handed to the server's `recv`.
    pub received_in_place: u64,
    /// DATA frames the server delivered.
    pub frames: u64,
    /// Of those, frames with a payload under [`SMALL_PAYLOAD_COPY`], which the client's
    /// connection copies by design.
    pub small_frames: u64,
    /// Batches the client wrote (rounds of the transfer).
    pub batches: u64,
    /// Bytes the pair itself copied from a `Transmit` into a receive buffer: payload and
    /// framing, both directions.
    pub driver_copied: u64,
}

/// Two connected [`Connection`]s and the batches between them.
#[derive(Debug)]
pub struct H2Pair {
    /// The client end.
    pub client: Connection,
    /// The server end.
    pub server: Connection,
    /// The one instant every call is made at.
    pub now: Instant,
    /// Each side's batch not yet handed to the other, indexed by [`Side`].
    pending: [Transmit; 2],
    /// The buffer batches are copied into; each delivery splits its bytes off, so the
    /// allocation is reused once the receiver drops what it sliced out.
    wire: BytesMut,
    /// Bytes copied into `wire`.
    copied: u64,
}

impl H2Pair {
    /// A pair with the given configurations, its handshake done and its events drained.
    pub fn connected(client: Config, server: Config, now: Instant) -> H2Pair {
        let mut pair = H2Pair {
            client: Connection::new(Role::Client, client, now),
            server: Connection::new(Role::Server, server, now),
            now,
            pending: [Transmit::new(), Transmit::new()],
            wire: BytesMut::new(),
            copied: 0,
        };
        // Preface and SETTINGS each way, then the ACKs.
        while pair.flush(Side::Client) + pair.flush(Side::Server) > 0 {}
        while pair.client.poll_event().is_some() || pair.server.poll_event().is_some() {}
        assert!(
            pair.client.is_connected() && pair.server.is_connected(),
            "handshake did not complete"
        );
        pair
    }

    /// One `poll_transmit` of `side`, appended to its pending batch. Returns the bytes
    /// added (0 when it has nothing to send, or the batch is already full).
    pub fn poll(&mut self, side: Side) -> usize {
        let (conn, pending) = match side {
            Side::Client => (&mut self.client, &mut self.pending[0]),
            Side::Server => (&mut self.server, &mut self.pending[1]),
        };
        conn.poll_transmit(self.now, pending)
    }

    /// The batch `side` has written and the other side not yet received.
    pub fn pending(&self, side: Side) -> &Transmit {
        &self.pending[side as usize]
    }

    /// Hands `from`'s pending batch to the other side. Returns the address range of the
    /// buffer given to `recv`, for telling slices of it from copies; `None` when there
    /// was nothing to deliver.
    pub fn deliver(&mut self, from: Side) -> Option<Range<usize>> {
        let pending = &mut self.pending[from as usize];
        if pending.is_empty() {
            return None;
        }
        self.copied += pending.len() as u64;
        pending.copy_to(&mut self.wire);
        pending.clear();
        let batch = self.wire.split();
        let range = address_range(&batch);
        let to = match from {
            Side::Client => &mut self.server,
            Side::Server => &mut self.client,
        };
        to.recv(batch, self.now);
        Some(range)
    }

    /// Polls `from` and delivers its batches until it has nothing more to send. Returns
    /// the bytes moved.
    pub fn flush(&mut self, from: Side) -> usize {
        let mut moved = 0;
        loop {
            let n = self.poll(from);
            if n == 0 && self.pending(from).is_empty() {
                return moved;
            }
            moved += n;
            self.deliver(from);
        }
    }

    /// Bytes the pair has copied into receive buffers so far.
    pub fn driver_copied(&self) -> u64 {
        self.copied
    }

    /// The two connections, with the pair's own buffers dropped: what is left allocated
    /// is held by the connections alone.
    pub fn into_connections(self) -> (Connection, Connection) {
        (self.client, self.server)
    }
}

/// The addresses `bytes` occupies.
fn address_range(bytes: &[u8]) -> Range<usize> {
    let start = bytes.as_ptr() as usize;
    start..start + bytes.len()
}

/// `inner` lies within `outer` (it was sliced out of it, not copied).
fn is_within(inner: &[u8], outer: &Range<usize>) -> bool {
    let r = address_range(inner);
    outer.start <= r.start && r.end <= outer.end
}

fn header_list(fields: &[(&'static [u8], &'static [u8])]) -> Vec<Header> {
    fields
        .iter()
        .map(|&(name, value)| Header::new(Bytes::from_static(name), Bytes::from_static(value)))
        .collect()
}

/// The request headers of a unary gRPC call ([`REQUEST_HEADERS`]).
pub fn request_headers() -> Vec<Header> {
    header_list(REQUEST_HEADERS)
}

/// The response headers of a successful gRPC call.
pub fn response_headers() -> Vec<Header> {
    header_list(&[(b":status", b"200"), (b"content-type", b"application/grpc")])
}

/// The trailers of a successful gRPC call ([`TRAILER_HEADERS`]).
pub fn trailer_headers() -> Vec<Header> {
    header_list(TRAILER_HEADERS)
}

/// A trailers-only response: status 200 and `grpc-status 0` in one HEADERS that ends the
/// stream.
pub fn trailers_only() -> Vec<Header> {
    header_list(&[
        (b":status", b"200"),
        (b"content-type", b"application/grpc"),
        (b"grpc-status", b"0"),
    ])
}

/// A 16-byte gRPC message: the 5-byte length prefix and 11 bytes of body.
pub fn small_message() -> Bytes {
    Bytes::from_static(b"\x00\x00\x00\x00\x0bhello world")
}

/// A payload source of `len` patterned bytes, already shared so that slicing it only
/// bumps a reference count.
pub fn payload_source(len: usize) -> Bytes {
    let source = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
    // `Bytes::from(Vec)` allocates its shared header on the first clone; pay that here.
    drop(source.clone());
    source
}

/// Client to server, `total` payload bytes split evenly over `streams` concurrent
/// streams, each queued as slices of `source` up to what the stream's send buffer
/// takes. The server releases every DATA payload at once and ends each stream with a
/// trailers-only response once its request is complete. With `count`, records what was
/// copied (checking every chunk and payload costs a little, so the timed runs pass
/// `None`).
pub fn bulk_transfer(
    pair: &mut H2Pair,
    streams: usize,
    total: usize,
    source: &Bytes,
    mut count: Option<&mut CopyCount>,
) {
    assert!(
        streams > 0 && total.is_multiple_of(streams),
        "total must split evenly"
    );
    let source_range = address_range(source);
    let mut left: Vec<(StreamId, usize)> = (0..streams)
        .map(|_| {
            let id = pair
                .client
                .open_stream(request_headers(), false)
                .expect("open a stream");
            (id, total / streams)
        })
        .collect();
    let mut finished = 0;
    while finished < streams {
        // The application keeps every send buffer full while the writer fills one batch,
        // as one that produces faster than the socket drains would.
        loop {
            for (id, left) in left.iter_mut().filter(|(_, left)| *left > 0) {
                let n = pair.client.send_capacity(*id).min(*left).min(source.len());
                if n > 0 {
                    *left -= n;
                    pair.client
                        .send_data(*id, source.slice(..n), *left == 0)
                        .expect("queue DATA");
                    if let Some(count) = count.as_deref_mut() {
                        count.sent += n as u64;
                    }
                }
            }
            if pair.poll(Side::Client) == 0
                || pair.pending(Side::Client).len() >= DEFAULT_MAX_WRITE_BATCH
            {
                break;
            }
        }
        if let Some(count) = count.as_deref_mut() {
            count.batches += 1;
            count.sent_by_reference += pair
                .pending(Side::Client)
                .chunks()
                .iter()
                .filter(|chunk| is_within(chunk, &source_range))
                .map(|chunk| chunk.len() as u64)
                .sum::<u64>();
        }
        let delivered = pair.deliver(Side::Client);
        while let Some(event) = pair.server.poll_event() {
            if let Event::Data {
                stream_id,
                data,
                end_stream,
            } = event
            {
                if let Some(count) = count.as_deref_mut() {
                    count.frames += 1;
                    count.small_frames += u64::from(data.len() < SMALL_PAYLOAD_COPY);
                    count.received += data.len() as u64;
                    if delivered.as_ref().is_some_and(|r| is_within(&data, r)) {
                        count.received_in_place += data.len() as u64;
                    }
                }
                pair.server
                    .release_data(stream_id, data.len())
                    .expect("release delivered DATA");
                if end_stream {
                    pair.server
                        .send_headers(stream_id, trailers_only(), true)
                        .expect("answer the stream");
                }
            }
        }
        let returned = pair.flush(Side::Server);
        while let Some(event) = pair.client.poll_event() {
            if let Event::Headers {
                end_stream: true, ..
            } = event
            {
                finished += 1;
            }
        }
        assert!(
            delivered.is_some() || returned > 0 || finished == streams,
            "bulk transfer stalled"
        );
    }
    if let Some(count) = count {
        count.driver_copied = pair.driver_copied();
    }
}

/// `calls` unary calls, at most `in_flight` at once: each request is [`request_headers`]
/// and one [`small_message`] ending the stream; each response is [`response_headers`],
/// one `small_message` and [`trailer_headers`]. Both sides release DATA as it arrives.
pub fn unary_calls(pair: &mut H2Pair, calls: usize, in_flight: usize) {
    let request = request_headers();
    let response = response_headers();
    let trailers = trailer_headers();
    let message = small_message();
    let (mut opened, mut done) = (0, 0);
    while done < calls {
        while opened - done < in_flight && opened < calls {
            let id = pair
                .client
                .open_stream(request.clone(), false)
                .expect("open a stream");
            pair.client
                .send_data(id, message.clone(), true)
                .expect("queue the request");
            opened += 1;
        }
        let mut moved = pair.flush(Side::Client);
        while let Some(event) = pair.server.poll_event() {
            if let Event::Data {
                stream_id,
                data,
                end_stream,
            } = event
            {
                pair.server
                    .release_data(stream_id, data.len())
                    .expect("release delivered DATA");
                if end_stream {
                    let server = &mut pair.server;
                    server
                        .send_headers(stream_id, response.clone(), false)
                        .and_then(|()| server.send_data(stream_id, message.clone(), false))
                        .and_then(|()| server.send_headers(stream_id, trailers.clone(), true))
                        .expect("answer the call");
                }
            }
        }
        moved += pair.flush(Side::Server);
        while let Some(event) = pair.client.poll_event() {
            match event {
                Event::Data {
                    stream_id, data, ..
                } => pair
                    .client
                    .release_data(stream_id, data.len())
                    .expect("release delivered DATA"),
                Event::Trailers { .. } => done += 1,
                Event::StreamReset { stream_id, reset } => {
                    panic!("stream {stream_id:?} reset: {reset:?}")
                }
                _ => {}
            }
        }
        assert!(moved > 0, "unary calls stalled");
    }
}

/// Opens `n` streams and leaves them idle: request headers one way, response headers the
/// other, no DATA, nothing ended. The server must allow `n` concurrent streams.
pub fn open_idle_streams(pair: &mut H2Pair, n: usize) {
    let request = request_headers();
    let response = response_headers();
    for _ in 0..n {
        pair.client
            .open_stream(request.clone(), false)
            .expect("open a stream");
    }
    pair.flush(Side::Client);
    let mut accepted = 0;
    while let Some(event) = pair.server.poll_event() {
        if let Event::Headers { stream_id, .. } = event {
            pair.server
                .send_headers(stream_id, response.clone(), false)
                .expect("answer the stream");
            accepted += 1;
        }
    }
    assert_eq!(accepted, n, "the server did not accept every stream");
    pair.flush(Side::Server);
    let mut answered = 0;
    while let Some(event) = pair.client.poll_event() {
        if matches!(event, Event::Headers { .. }) {
            answered += 1;
        }
    }
    assert_eq!(answered, n, "the client did not see every response");
}
