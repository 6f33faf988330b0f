//! A scripted peer: hand-built frames into one [`Connection`], and the frames it writes
//! back decoded for assertions. For tests of one rule at a time.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::{
    self, DecoderConfig, Frame, FrameDecoder, Headers, MAX_MAX_FRAME_SIZE, Settings, StreamId,
};
use grpc_sansio::h2::{Config, Connection, Event, Role, Transmit};
use grpc_sansio::hpack::{self, HeaderField};

/// One real [`Connection`] and a fake peer that speaks raw frames to it.
pub struct Scripted {
    /// The connection under test.
    pub conn: Connection,
    /// The virtual time.
    pub now: Instant,
    /// The peer's HPACK encoder, for header blocks sent to `conn`.
    pub encoder: hpack::Encoder,
    /// The peer's HPACK decoder, for header blocks `conn` writes.
    pub decoder: hpack::Decoder,
    frames: FrameDecoder,
    written: BytesMut,
    preface_pending: bool,
}

impl Scripted {
    /// A connection of `role` with `config`, before any handshake.
    pub fn raw(role: Role, config: Config) -> Scripted {
        let now = Instant::now();
        Scripted {
            conn: Connection::new(role, config, now),
            now,
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(4096, 1 << 20),
            frames: FrameDecoder::new(DecoderConfig {
                max_frame_size: MAX_MAX_FRAME_SIZE,
                max_header_block_size: 1 << 24,
                max_continuation_frames: usize::MAX,
            }),
            written: BytesMut::new(),
            preface_pending: role == Role::Client,
        }
    }

    /// A connection of `role` that has finished its handshake with the scripted peer
    /// (both SETTINGS exchanged and acknowledged); what it wrote so far is discarded.
    pub fn connected(role: Role, config: Config) -> Scripted {
        let mut s = Scripted::raw(role, config);
        if role == Role::Server {
            s.send_bytes(frame::PREFACE);
        }
        s.send(Frame::Settings(Settings::default()));
        let written = s.written();
        assert!(
            written
                .iter()
                .any(|f| matches!(f, Frame::Settings(s) if !s.ack)),
            "no SETTINGS from the connection: {written:?}"
        );
        s.send(Frame::Settings(Settings::ack()));
        s.written();
        s.events();
        s
    }

    /// Delivers raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.conn.recv(BytesMut::from(bytes), self.now);
    }

    /// Delivers one frame (split into CONTINUATION frames at 16 KiB if it must be).
    pub fn send(&mut self, frame: Frame) {
        let mut buf = BytesMut::new();
        frame
            .encode(&mut buf, frame::DEFAULT_MAX_FRAME_SIZE)
            .expect("test frames are valid");
        self.conn.recv(buf, self.now);
    }

    /// A HEADERS frame whose block the peer's encoder made from `fields`.
    pub fn headers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) -> Frame {
        let mut block = BytesMut::new();
        self.encoder.encode(
            fields
                .iter()
                .map(|(n, v)| HeaderField::new(n.as_bytes(), v.as_bytes())),
            &mut block,
        );
        Frame::Headers(Headers {
            end_stream,
            ..Headers::new(StreamId::new(id), block.freeze())
        })
    }

    /// Everything the connection writes now, decoded (the client preface skipped).
    pub fn written(&mut self) -> Vec<Frame> {
        let mut out = Transmit::new();
        while self.conn.poll_transmit(self.now, &mut out) > 0 {
            out.copy_to(&mut self.written);
            out.clear();
        }
        if self.preface_pending && self.written.len() >= frame::PREFACE.len() {
            assert_eq!(&self.written[..frame::PREFACE.len()], frame::PREFACE);
            let _ = self.written.split_to(frame::PREFACE.len());
            self.preface_pending = false;
        }
        let mut frames = Vec::new();
        while let Some(frame) = self
            .frames
            .decode(&mut self.written)
            .expect("the connection writes valid frames")
        {
            frames.push(frame);
        }
        frames
    }

    /// The header list of a HEADERS frame the connection wrote, decoded.
    pub fn decode_headers(&mut self, frame: &Frame) -> Vec<(String, String)> {
        let Frame::Headers(h) = frame else {
            panic!("not HEADERS: {frame:?}")
        };
        let mut out = Vec::new();
        self.decoder
            .decode(&h.header_block, |f| {
                out.push((
                    String::from_utf8_lossy(&f.name).into_owned(),
                    String::from_utf8_lossy(&f.value).into_owned(),
                ))
            })
            .expect("valid block");
        out
    }

    /// Events emitted so far.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Advances the clock and fires due timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.conn.poll_timeout().is_some_and(|t| t <= self.now) {
            self.conn.handle_timeout(self.now);
        }
    }
}

/// A DATA frame.
pub fn data(id: u32, payload: &'static [u8], end_stream: bool) -> Frame {
    Frame::Data(frame::Data {
        end_stream,
        ..frame::Data::new(StreamId::new(id), Bytes::from_static(payload))
    })
}
