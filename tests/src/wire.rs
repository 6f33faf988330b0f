//! The pair's wire as frames: every batch a side writes and every chunk a side reads, in
//! the order they happened, decoded with the crate's own [`FrameDecoder`].
//!
//! For properties stated about what crosses the wire (flow control, concurrency limits)
//! rather than about events. A frame counts as read once its last byte was handed to the
//! receiving connection, which is the earliest the connection could have acted on it.

use bytes::{Bytes, BytesMut};
use grpc_sansio::frame::{self, DecoderConfig, Frame, FrameDecoder, MAX_MAX_FRAME_SIZE};

use crate::pair::Side;

/// One movement of bytes on the pair's wire.
#[derive(Clone, Debug)]
pub enum WireEvent {
    /// `from` wrote these bytes (everything one transmit pass produced).
    Written {
        /// The writer.
        from: Side,
        /// The bytes, in order.
        bytes: Bytes,
    },
    /// These bytes were handed to `to`'s `recv`.
    Delivered {
        /// The reader.
        to: Side,
        /// The bytes, in order.
        bytes: Bytes,
    },
}

/// Whether a side wrote a frame or read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The side wrote it.
    Wrote,
    /// The side read it (all of its bytes were delivered).
    Read,
}

/// A frame as one side saw it.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The side that wrote or read it.
    pub side: Side,
    /// Which of the two.
    pub direction: Direction,
    /// The frame.
    pub frame: Frame,
}

/// Frames from one byte stream, which may be cut anywhere.
#[derive(Debug)]
pub struct FrameReader {
    decoder: FrameDecoder,
    buf: BytesMut,
    preface_left: usize,
}

impl FrameReader {
    /// A reader for one direction of a connection; a client's bytes start with the
    /// preface, which is checked and skipped.
    pub fn new(from_client: bool) -> FrameReader {
        FrameReader {
            // Accept whatever is valid HTTP/2: the limits to check are the test's business.
            decoder: FrameDecoder::new(DecoderConfig {
                max_frame_size: MAX_MAX_FRAME_SIZE,
                max_header_block_size: 1 << 24,
                max_continuation_frames: usize::MAX,
            }),
            buf: BytesMut::new(),
            preface_left: if from_client { frame::PREFACE.len() } else { 0 },
        }
    }

    /// Appends `bytes` and returns the frames they complete.
    ///
    /// # Panics
    /// If the bytes are not valid HTTP/2: a connection must never write such bytes.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Frame> {
        if self.preface_left > 0 {
            let n = self.preface_left.min(bytes.len());
            let done = frame::PREFACE.len() - self.preface_left;
            assert_eq!(
                &bytes[..n],
                &frame::PREFACE[done..done + n],
                "bad client preface"
            );
            self.preface_left -= n;
            bytes = &bytes[n..];
        }
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = self
            .decoder
            .decode(&mut self.buf)
            .unwrap_or_else(|e| panic!("invalid frame on the wire: {e:?}"))
        {
            frames.push(frame);
        }
        frames
    }
}

/// Decodes a [`WireEvent`] log into frames, per side and direction.
#[derive(Debug)]
pub struct WireFrames {
    /// Indexed by `Side as usize`: bytes written by that side.
    written: [FrameReader; 2],
    /// Indexed by `Side as usize`: bytes delivered to that side.
    delivered: [FrameReader; 2],
}

impl Default for WireFrames {
    fn default() -> WireFrames {
        WireFrames::new()
    }
}

impl WireFrames {
    /// A decoder for a pair's wire from its first byte.
    pub fn new() -> WireFrames {
        WireFrames {
            written: [FrameReader::new(true), FrameReader::new(false)],
            delivered: [FrameReader::new(false), FrameReader::new(true)],
        }
    }

    /// The frames one movement of bytes completes.
    pub fn observe(&mut self, event: &WireEvent) -> Vec<Observed> {
        let (side, direction, reader, bytes) = match event {
            WireEvent::Written { from, bytes } => (
                *from,
                Direction::Wrote,
                &mut self.written[*from as usize],
                bytes,
            ),
            WireEvent::Delivered { to, bytes } => (
                *to,
                Direction::Read,
                &mut self.delivered[*to as usize],
                bytes,
            ),
        };
        reader
            .push(bytes)
            .into_iter()
            .map(|frame| Observed {
                side,
                direction,
                frame,
            })
            .collect()
    }
}
