//! Shared driver for the `client_connection` and `server_connection` targets: hostile
//! bytes into one `Connection` after a valid handshake, interleaved with time advances
//! and application commands the input chooses.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::{self, Frame, Settings};
use grpc_sansio::h2::{Config, Connection, Event, Header, Role, Transmit};

/// Runs one input against a connection of `role`.
pub fn run(role: Role, data: &[u8]) {
    let mut now = Instant::now();
    let mut conn = Connection::new(role, Config::for_role(role), now);
    let mut handshake = BytesMut::new();
    if role == Role::Server {
        handshake.extend_from_slice(frame::PREFACE);
    }
    Frame::Settings(Settings::default())
        .encode(&mut handshake, frame::DEFAULT_MAX_FRAME_SIZE)
        .expect("valid settings");
    conn.recv(handshake, now);

    let mut out = Transmit::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op >> 5 {
            // Bytes from the peer: the next (op & 0x1f) * 8 + 1 bytes.
            0..=3 => {
                let n = (usize::from(op & 0x1f) * 8 + 1).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                if conn.wants_read() {
                    conn.recv(BytesMut::from(chunk), now);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(op & 0x1f) * 500);
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now);
                }
            }
            5 if role == Role::Client => {
                let _ = conn.open_stream(
                    vec![Header::new(":method", "POST"), Header::new(":path", "/a/b")],
                    op & 1 == 1,
                );
            }
            5 => conn.shutdown(),
            _ => {
                // Send on the newest stream the connection knows, or ping.
                let id = frame::StreamId::new(u32::from(op & 0x0f) * 2 + 1);
                if op & 0x10 == 0 {
                    let _ = conn.send_data(id, Bytes::from_static(&[0; 3000]), false);
                } else {
                    let _ = conn.ping(*b"fuzzping");
                }
            }
        }
        while conn.poll_transmit(now, &mut out) > 0 {
            out.clear();
        }
        while let Some(event) = conn.poll_event() {
            if let Event::Data {
                stream_id, data, ..
            } = event
            {
                conn.release_data(stream_id, data.len())
                    .expect("delivered data can be released");
            }
        }
        if conn.is_closed() {
            break;
        }
    }
}
