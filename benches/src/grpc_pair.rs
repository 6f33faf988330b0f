//! A gRPC client and server transport back to back in memory, and the call workloads
//! the grpc benches run over them. Delivery works as in [`crate::h2_pair`]: each
//! side's batch is copied into one buffer (the socket stand-in) that the other side's
//! `recv` takes whole, and time never moves.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use grpc_sansio::grpc::client::{ClientEvent, RequestHeaders, Scheme};
use grpc_sansio::grpc::metadata::Metadata;
use grpc_sansio::grpc::server::ServerEvent;
use grpc_sansio::grpc::status::Status;
use grpc_sansio::grpc::transport::{
    CallId, ClientTransport, ClientTransportEvent, MessageLimits, ServerTransport,
    ServerTransportEvent,
};
use grpc_sansio::h2::{Config, Transmit};

/// Two connected transports.
#[derive(Debug)]
pub struct GrpcPair {
    /// The client end.
    pub client: ClientTransport,
    /// The server end.
    pub server: ServerTransport,
    /// The one instant every call is made at.
    pub now: Instant,
    out: Transmit,
    wire: BytesMut,
}

impl GrpcPair {
    /// A pair with the given configurations, its handshake done and its events drained.
    pub fn connected(client: Config, server: Config, now: Instant) -> GrpcPair {
        let mut pair = GrpcPair {
            client: ClientTransport::new(client, MessageLimits::default(), now),
            server: ServerTransport::new(server, MessageLimits::default(), now),
            now,
            out: Transmit::new(),
            wire: BytesMut::new(),
        };
        while pair.flush_client() + pair.flush_server() > 0 {}
        while pair.client.poll_event().is_some() || pair.server.poll_event().is_some() {}
        assert!(
            pair.client.connection().is_connected() && pair.server.connection().is_connected(),
            "handshake did not complete"
        );
        pair
    }

    /// Moves everything the client has to send to the server; returns the bytes moved.
    pub fn flush_client(&mut self) -> usize {
        let mut moved = 0;
        while self.client.poll_transmit(self.now, &mut self.out) > 0 {
            moved += self.out.len();
            self.out.copy_to(&mut self.wire);
            self.out.clear();
            self.server.recv(self.wire.split(), self.now);
        }
        moved
    }

    /// Moves everything the server has to send to the client; returns the bytes moved.
    pub fn flush_server(&mut self) -> usize {
        let mut moved = 0;
        while self.server.poll_transmit(self.now, &mut self.out) > 0 {
            moved += self.out.len();
            self.out.copy_to(&mut self.wire);
            self.out.clear();
            self.client.recv(self.wire.split(), self.now);
        }
        moved
    }
}

/// The request headers every bench call uses.
pub fn request() -> RequestHeaders {
    RequestHeaders::new(
        Scheme::Http,
        "localhost:50051",
        "/grpc.testing.TestService/UnaryCall",
    )
}

/// A 16-byte message body.
pub fn message16() -> Bytes {
    Bytes::from_static(b"0123456789abcdef")
}

/// `calls` unary calls with 16-byte messages each way, at most `in_flight` at once:
/// the client starts a call and sends its one message; the server reads it, answers
/// with one message and an OK status (headers, message and trailers); the client reads
/// headers, message and status. Returns the response bytes the client read.
pub fn unary_calls(pair: &mut GrpcPair, calls: usize, in_flight: usize) -> usize {
    let headers = request();
    let message = message16();
    let ok = Status::ok();
    let no_metadata = Metadata::new();
    let (mut started, mut done, mut read) = (0, 0, 0);
    while done < calls {
        while started - done < in_flight && started < calls {
            let id = pair
                .client
                .start_call(&headers, pair.now)
                .expect("start a call");
            pair.client
                .send_message(id, message.clone(), true)
                .expect("send the request");
            started += 1;
        }
        let mut moved = pair.flush_client();
        while let Some(event) = pair.server.poll_event() {
            let call = match event {
                ServerTransportEvent::NewCall { call, .. } => call,
                ServerTransportEvent::CallReadable(call) => call,
                _ => continue,
            };
            serve_unary(pair, call, &message, &ok, &no_metadata);
        }
        moved += pair.flush_server();
        while let Some(event) = pair.client.poll_event() {
            if let ClientTransportEvent::CallReadable(id) = event {
                while let Some(event) = pair.client.poll_call(id) {
                    match event {
                        ClientEvent::Message(m) => read += m.len(),
                        ClientEvent::Status(status, _) => {
                            assert!(status.is_ok(), "call failed: {status:?}");
                            done += 1;
                        }
                        ClientEvent::Headers(_) => {}
                    }
                }
            }
        }
        assert!(moved > 0, "unary calls stalled");
    }
    read
}

/// Answers a unary call once its request is complete.
fn serve_unary(
    pair: &mut GrpcPair,
    call: CallId,
    message: &Bytes,
    ok: &Status,
    metadata: &Metadata,
) {
    while let Some(event) = pair.server.poll_call(call) {
        match event {
            ServerEvent::Message(_) => {}
            ServerEvent::HalfClosed => {
                pair.server
                    .send_message(call, message.clone())
                    .expect("send the response");
                pair.server
                    .finish(call, ok, metadata)
                    .expect("finish the call");
                return;
            }
            ServerEvent::Failed(status) => panic!("request failed: {status:?}"),
        }
    }
}

/// One server-streaming call: `total` bytes in messages of `message_len` bytes (slices
/// of `source`, which must be at least that long), sent as fast as the send buffer
/// takes them and read by the client as they arrive. Returns the bytes the client read.
pub fn server_streaming(
    pair: &mut GrpcPair,
    total: usize,
    message_len: usize,
    source: &Bytes,
) -> usize {
    let id = pair
        .client
        .start_call(&request(), pair.now)
        .expect("start the call");
    pair.client
        .send_message(id, message16(), true)
        .expect("send the request");
    pair.flush_client();
    let call = loop {
        match pair.server.poll_event() {
            Some(ServerTransportEvent::NewCall { call, .. }) => break call,
            Some(_) => {}
            None => panic!("the server saw no call"),
        }
    };
    while pair.server.poll_call(call).is_some() {}
    let message = source.slice(..message_len);
    let (mut sent, mut read, mut finished) = (0, 0, false);
    loop {
        while sent < total && pair.server.send_capacity(call) > 0 {
            pair.server
                .send_message(call, message.clone())
                .expect("send a message");
            sent += message_len;
        }
        if sent >= total && !finished {
            pair.server
                .finish(call, &Status::ok(), &Metadata::new())
                .expect("finish the call");
            finished = true;
        }
        let mut moved = pair.flush_server();
        while let Some(event) = pair.client.poll_event() {
            if event != ClientTransportEvent::CallReadable(id) {
                continue;
            }
            while let Some(event) = pair.client.poll_call(id) {
                match event {
                    ClientEvent::Message(m) => read += m.len(),
                    ClientEvent::Status(status, _) => {
                        assert!(status.is_ok(), "stream failed: {status:?}");
                        return read;
                    }
                    ClientEvent::Headers(_) => {}
                }
            }
        }
        while pair.server.poll_event().is_some() {}
        moved += pair.flush_client();
        assert!(moved > 0, "server streaming stalled");
    }
}
