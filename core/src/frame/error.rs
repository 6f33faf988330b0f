//! Decode errors (split by RFC 9113 §5.4 error class) and encode errors.

use std::fmt;

use super::{ErrorCode, StreamId};

/// Why the decoder rejected what the peer sent.
///
/// The variant is the RFC 9113 §5.4 error class, chosen where each check is made:
/// a [`Connection`](FrameError::Connection) error means "send GOAWAY with `code` and
/// close" (the decoder is poisoned and keeps returning it); a
/// [`Stream`](FrameError::Stream) error means "send RST_STREAM on `stream_id`" (the
/// offending frame has been consumed and decoding can go on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The whole connection is unusable (§5.4.1).
    Connection {
        /// Code for the GOAWAY frame.
        code: ErrorCode,
        /// What was wrong, for logs and GOAWAY debug data.
        reason: &'static str,
    },
    /// Only one stream is affected (§5.4.2).
    Stream {
        /// The stream to reset.
        stream_id: StreamId,
        /// Code for the RST_STREAM frame.
        code: ErrorCode,
        /// What was wrong, for logs.
        reason: &'static str,
    },
}

impl FrameError {
    /// A connection error.
    pub const fn connection(code: ErrorCode, reason: &'static str) -> FrameError {
        FrameError::Connection { code, reason }
    }

    /// A stream error on `stream_id`.
    pub const fn stream(stream_id: StreamId, code: ErrorCode, reason: &'static str) -> FrameError {
        FrameError::Stream {
            stream_id,
            code,
            reason,
        }
    }

    /// The error code to send.
    pub const fn code(&self) -> ErrorCode {
        match *self {
            FrameError::Connection { code, .. } | FrameError::Stream { code, .. } => code,
        }
    }

    /// True for a connection error.
    pub const fn is_connection_error(&self) -> bool {
        matches!(self, FrameError::Connection { .. })
    }

    /// The stream to reset, for a stream error.
    pub const fn stream_id(&self) -> Option<StreamId> {
        match *self {
            FrameError::Stream { stream_id, .. } => Some(stream_id),
            FrameError::Connection { .. } => None,
        }
    }

    /// The human-readable reason.
    pub const fn reason(&self) -> &'static str {
        match *self {
            FrameError::Connection { reason, .. } | FrameError::Stream { reason, .. } => reason,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Connection { code, reason } => {
                write!(f, "connection error {code}: {reason}")
            }
            FrameError::Stream {
                stream_id,
                code,
                reason,
            } => {
                write!(f, "stream error {code} on stream {stream_id}: {reason}")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Why a frame could not be encoded.
///
/// The encoder refuses exactly what the decoder would refuse to read back (with a max
/// frame size at least as large), so a frame that encodes always decodes to itself. It
/// does not refuse what only the connection layer can judge (stream states,
/// self-dependency, the promised stream id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// A frame's payload would exceed the peer's max frame size (or the 24-bit length
    /// field). Only field blocks are split into CONTINUATION frames; DATA is the
    /// caller's to split, since doing so changes flow-control accounting.
    PayloadTooLarge {
        /// Frame type.
        kind: u8,
        /// Payload length the frame would need.
        len: usize,
        /// The limit it was checked against.
        max_frame_size: u32,
    },
    /// A frame type that must be sent on a stream was given stream 0.
    StreamIdZero {
        /// Frame type.
        kind: u8,
    },
    /// A SETTINGS value outside its legal range (§6.5.2).
    InvalidSetting {
        /// Setting identifier.
        id: u16,
        /// The rejected value.
        value: u32,
    },
    /// A SETTINGS ACK that carries settings: its payload must be empty (§6.5).
    SettingsAckWithValues,
    /// A WINDOW_UPDATE increment outside 1..=2^31-1 (§6.9).
    InvalidWindowIncrement(u32),
    /// An [`Unknown`](super::Unknown) frame whose type RFC 9113 defines: it would be
    /// read back as that type, not as an unknown frame.
    KnownKindAsUnknown(u8),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::PayloadTooLarge {
                kind,
                len,
                max_frame_size,
            } => write!(
                f,
                "frame type 0x{kind:x} needs a {len}-octet payload, over the max frame size {max_frame_size}"
            ),
            EncodeError::StreamIdZero { kind } => {
                write!(f, "frame type 0x{kind:x} cannot be sent on stream 0")
            }
            EncodeError::InvalidSetting { id, value } => {
                write!(f, "setting 0x{id:x} cannot have the value {value}")
            }
            EncodeError::SettingsAckWithValues => {
                f.write_str("a SETTINGS ACK cannot carry settings")
            }
            EncodeError::InvalidWindowIncrement(n) => {
                write!(f, "window increment {n} is outside 1..=2^31-1")
            }
            EncodeError::KnownKindAsUnknown(kind) => {
                write!(
                    f,
                    "frame type 0x{kind:x} is defined by RFC 9113 and cannot be sent as an unknown frame"
                )
            }
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_report_class_code_and_stream() {
        let conn = FrameError::connection(ErrorCode::ProtocolError, "bad");
        assert!(conn.is_connection_error());
        assert_eq!(conn.code(), ErrorCode::ProtocolError);
        assert_eq!(conn.stream_id(), None);
        assert_eq!(conn.reason(), "bad");
        assert_eq!(conn.to_string(), "connection error PROTOCOL_ERROR: bad");

        let stream = FrameError::stream(StreamId::new(3), ErrorCode::FrameSizeError, "short");
        assert!(!stream.is_connection_error());
        assert_eq!(stream.code(), ErrorCode::FrameSizeError);
        assert_eq!(stream.stream_id(), Some(StreamId::new(3)));
        assert_eq!(
            stream.to_string(),
            "stream error FRAME_SIZE_ERROR on stream 3: short"
        );
    }

    #[test]
    fn encode_errors_display() {
        let e = EncodeError::PayloadTooLarge {
            kind: 0,
            len: 20_000,
            max_frame_size: 16_384,
        };
        assert!(e.to_string().contains("20000"));
        assert!(
            EncodeError::InvalidWindowIncrement(0)
                .to_string()
                .contains('0')
        );
    }
}
