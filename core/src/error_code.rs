//! HTTP/2 error codes (RFC 9113 §7), carried by RST_STREAM and GOAWAY.

use std::fmt;

/// An HTTP/2 error code.
///
/// The fourteen codes RFC 9113 §7 defines have their own variants. Any other value a peer
/// sends is kept in [`ErrorCode::Unknown`]: the RFC says unknown codes must not trigger
/// special behaviour, and they may be treated as [`ErrorCode::InternalError`], but the
/// original number is still worth logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0x0: graceful shutdown or no error.
    NoError,
    /// 0x1: unspecific protocol violation.
    ProtocolError,
    /// 0x2: unexpected internal error.
    InternalError,
    /// 0x3: the peer violated flow control.
    FlowControlError,
    /// 0x4: SETTINGS were not acknowledged in time.
    SettingsTimeout,
    /// 0x5: a frame arrived on a half-closed stream.
    StreamClosed,
    /// 0x6: a frame had an invalid size.
    FrameSizeError,
    /// 0x7: the stream was refused before any application processing.
    RefusedStream,
    /// 0x8: the stream is no longer needed.
    Cancel,
    /// 0x9: the header compression context cannot be maintained.
    CompressionError,
    /// 0xa: the connection made for a CONNECT request was reset.
    ConnectError,
    /// 0xb: the peer is behaving in a way that might generate excessive load.
    EnhanceYourCalm,
    /// 0xc: the transport lacks minimum security requirements.
    InadequateSecurity,
    /// 0xd: HTTP/1.1 is required instead of HTTP/2.
    Http11Required,
    /// A code RFC 9113 does not define, kept as received.
    Unknown(u32),
}

impl ErrorCode {
    /// The numeric value on the wire.
    pub const fn code(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Unknown(n) => n,
        }
    }

    /// The name RFC 9113 gives the code (`"PROTOCOL_ERROR"`), or `"UNKNOWN"`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Unknown(_) => "UNKNOWN",
        }
    }
}

impl From<u32> for ErrorCode {
    fn from(n: u32) -> Self {
        match n {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        code.code()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(n) => write!(f, "UNKNOWN(0x{n:x})"),
            known => f.write_str(known.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_code_round_trips_with_its_rfc_number_and_name() {
        let table = [
            (0x0, "NO_ERROR"),
            (0x1, "PROTOCOL_ERROR"),
            (0x2, "INTERNAL_ERROR"),
            (0x3, "FLOW_CONTROL_ERROR"),
            (0x4, "SETTINGS_TIMEOUT"),
            (0x5, "STREAM_CLOSED"),
            (0x6, "FRAME_SIZE_ERROR"),
            (0x7, "REFUSED_STREAM"),
            (0x8, "CANCEL"),
            (0x9, "COMPRESSION_ERROR"),
            (0xa, "CONNECT_ERROR"),
            (0xb, "ENHANCE_YOUR_CALM"),
            (0xc, "INADEQUATE_SECURITY"),
            (0xd, "HTTP_1_1_REQUIRED"),
        ];
        for (n, name) in table {
            let code = ErrorCode::from(n);
            assert_eq!(code.code(), n);
            assert_eq!(code.name(), name);
            assert_eq!(code.to_string(), name);
            assert!(!matches!(code, ErrorCode::Unknown(_)));
        }
    }

    #[test]
    fn unknown_codes_are_kept_not_rejected() {
        let code = ErrorCode::from(0xdead_beef);
        assert_eq!(code, ErrorCode::Unknown(0xdead_beef));
        assert_eq!(u32::from(code), 0xdead_beef);
        assert_eq!(code.to_string(), "UNKNOWN(0xdeadbeef)");
        assert_eq!(ErrorCode::from(0xe), ErrorCode::Unknown(0xe));
    }
}
