//! The RFC 9113 frame codec: a streaming [`FrameDecoder`] that validates every frame
//! rule of §4 and §6, and an encoder ([`Frame::encode`]).
//!
//! The decoder raises each rejection with the error class RFC 9113 §5.4 prescribes
//! ([`FrameError::Connection`] or [`FrameError::Stream`]). It checks what can be checked
//! from the bytes alone; rules that depend on stream or connection state (stream states,
//! push being enabled, flow-control windows, HPACK) are the connection's.
//!
//! Nothing here trusts the peer: no peer input can panic the decoder, make it loop, or
//! make it allocate beyond its configured limits, and payloads are handed out as
//! zero-copy slices of the input buffer wherever the wire layout allows.

mod data;
mod decoder;
mod error;
mod goaway;
mod head;
mod headers;
mod padding;
mod ping;
mod preface;
mod priority;
mod rst_stream;
mod settings;
mod stream_id;
mod unknown;
mod window_update;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_util;

use bytes::{BufMut, BytesMut};

pub use crate::error_code::ErrorCode;
pub use data::Data;
pub use decoder::{
    DEFAULT_MAX_CONTINUATION_FRAMES, DEFAULT_MAX_HEADER_BLOCK_SIZE, DEFAULT_MAX_HEADER_LIST_SIZE,
    DecoderConfig, FrameDecoder, HEADER_BLOCK_SLACK,
};
pub use error::{EncodeError, FrameError};
pub use goaway::GoAway;
pub use head::{FrameHeader, HEADER_LEN, flags, kind};
pub use headers::{Headers, PushPromise, encode_continuation};
pub use ping::Ping;
pub use preface::{PREFACE, PrefaceCheck, check_preface};
pub use priority::{Priority, PrioritySpec};
pub use rst_stream::RstStream;
pub use settings::{
    SETTINGS_ENABLE_PUSH, SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE,
    Settings,
};
pub use stream_id::StreamId;
pub use unknown::Unknown;
pub use window_update::WindowUpdate;

/// Initial SETTINGS_MAX_FRAME_SIZE, and the smallest value allowed (§6.5.2): 2^14.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// Largest SETTINGS_MAX_FRAME_SIZE allowed (§6.5.2): 2^24-1, the Length field's limit.
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;

/// Initial flow-control window of streams and the connection (§6.9.2).
pub const DEFAULT_INITIAL_WINDOW_SIZE: u32 = 65_535;

/// Largest flow-control window, and largest WINDOW_UPDATE increment (§6.9.1): 2^31-1.
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// A decoded frame, or one to encode.
///
/// CONTINUATION has no variant: the decoder folds CONTINUATION frames into the
/// [`Headers`] or [`PushPromise`] they continue, and the encoder emits them as needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// DATA (§6.1).
    Data(Data),
    /// HEADERS with its complete field block (§6.2).
    Headers(Headers),
    /// PRIORITY (§6.3).
    Priority(Priority),
    /// RST_STREAM (§6.4).
    RstStream(RstStream),
    /// SETTINGS (§6.5).
    Settings(Settings),
    /// PUSH_PROMISE with its complete field block (§6.6).
    PushPromise(PushPromise),
    /// PING (§6.7).
    Ping(Ping),
    /// GOAWAY (§6.8).
    GoAway(GoAway),
    /// WINDOW_UPDATE (§6.9).
    WindowUpdate(WindowUpdate),
    /// A type RFC 9113 does not define, for the caller to discard (§4.1).
    Unknown(Unknown),
}

impl Frame {
    /// The stream in the frame header; [`StreamId::ZERO`] for connection-level frames.
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream_id,
            Frame::Headers(f) => f.stream_id,
            Frame::Priority(f) => f.stream_id,
            Frame::RstStream(f) => f.stream_id,
            Frame::PushPromise(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Unknown(f) => f.stream_id,
            Frame::Settings(_) | Frame::Ping(_) | Frame::GoAway(_) => StreamId::ZERO,
        }
    }

    /// The frame type code.
    pub fn kind(&self) -> u8 {
        match self {
            Frame::Data(_) => kind::DATA,
            Frame::Headers(_) => kind::HEADERS,
            Frame::Priority(_) => kind::PRIORITY,
            Frame::RstStream(_) => kind::RST_STREAM,
            Frame::Settings(_) => kind::SETTINGS,
            Frame::PushPromise(_) => kind::PUSH_PROMISE,
            Frame::Ping(_) => kind::PING,
            Frame::GoAway(_) => kind::GOAWAY,
            Frame::WindowUpdate(_) => kind::WINDOW_UPDATE,
            Frame::Unknown(f) => f.kind,
        }
    }

    /// Encodes the whole frame, copying payloads into `dst`. HEADERS and PUSH_PROMISE
    /// whose block exceeds `max_frame_size` (the PEER's SETTINGS_MAX_FRAME_SIZE) are
    /// split into CONTINUATION frames.
    ///
    /// Refuses, with `dst` untouched, what the peer's decoder would refuse: DATA (or any
    /// other frame) over `max_frame_size`, stream 0 for stream frames, out-of-range
    /// settings or window increments. A frame that encodes decodes back to itself.
    /// For zero-copy DATA see [`Data::encode_head`].
    pub fn encode(&self, dst: &mut BytesMut, max_frame_size: u32) -> Result<(), EncodeError> {
        match self {
            Frame::Data(f) => f.encode(dst, max_frame_size),
            Frame::Headers(f) => f.encode(dst, max_frame_size),
            Frame::Priority(f) => f.encode(dst, max_frame_size),
            Frame::RstStream(f) => f.encode(dst, max_frame_size),
            Frame::Settings(f) => f.encode(dst, max_frame_size),
            Frame::PushPromise(f) => f.encode(dst, max_frame_size),
            Frame::Ping(f) => f.encode(dst, max_frame_size),
            Frame::GoAway(f) => f.encode(dst, max_frame_size),
            Frame::WindowUpdate(f) => f.encode(dst, max_frame_size),
            Frame::Unknown(f) => f.encode(dst, max_frame_size),
        }
    }
}

macro_rules! frame_from {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Frame {
            fn from(frame: $variant) -> Frame {
                Frame::$variant(frame)
            }
        }
    )*};
}
frame_from!(
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Unknown
);

/// Appends `header` exactly as given (its `len` need not match) followed by `payload`:
/// for building malformed frames in tests.
pub fn encode_raw(header: &FrameHeader, payload: &[u8], dst: &mut BytesMut) {
    header.encode(dst);
    dst.put_slice(payload);
}

/// Refuses a payload of `len` octets that exceeds `max_frame_size` or the Length field.
fn check_fits(kind: u8, len: usize, max_frame_size: u32) -> Result<(), EncodeError> {
    if len > max_frame_size.min(MAX_MAX_FRAME_SIZE) as usize {
        return Err(EncodeError::PayloadTooLarge {
            kind,
            len,
            max_frame_size,
        });
    }
    Ok(())
}
