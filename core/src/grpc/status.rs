//! The outcome of a call: a [`Code`], a message and optional details, carried in the
//! `grpc-status`, `grpc-message` and `grpc-status-details-bin` trailers.

use std::fmt;

use bytes::Bytes;

use super::code::Code;
use super::metadata::{decode_binary_value, encode_binary_value};
use super::percent::{decode_grpc_message, encode_grpc_message};
use crate::h2::Header;

/// The status a call ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// What kind of outcome.
    pub code: Code,
    /// A human-readable description for developers (sent percent-encoded).
    pub message: String,
    /// The raw bytes of `grpc-status-details-bin`: by convention a serialized
    /// `google.rpc.Status` protobuf, which this layer does not interpret. Empty for none.
    pub details: Bytes,
}

/// Defines `Status::$name(message)` for one code.
macro_rules! status_constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with no details.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: Bytes::new(),
        }
    }

    /// A status with details (see [`Status::details`]).
    pub fn with_details(
        code: Code,
        message: impl Into<String>,
        details: impl Into<Bytes>,
    ) -> Status {
        Status {
            code,
            message: message.into(),
            details: details.into(),
        }
    }

    /// Success: [`Code::Ok`], no message, no details.
    pub fn ok() -> Status {
        Status::new(Code::Ok, String::new())
    }

    /// True when the code is [`Code::Ok`].
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    status_constructors! {
        /// A [`Code::Cancelled`] status.
        cancelled => Cancelled,
        /// A [`Code::Unknown`] status.
        unknown => Unknown,
        /// A [`Code::InvalidArgument`] status.
        invalid_argument => InvalidArgument,
        /// A [`Code::DeadlineExceeded`] status.
        deadline_exceeded => DeadlineExceeded,
        /// A [`Code::NotFound`] status.
        not_found => NotFound,
        /// A [`Code::AlreadyExists`] status.
        already_exists => AlreadyExists,
        /// A [`Code::PermissionDenied`] status.
        permission_denied => PermissionDenied,
        /// A [`Code::ResourceExhausted`] status.
        resource_exhausted => ResourceExhausted,
        /// A [`Code::FailedPrecondition`] status.
        failed_precondition => FailedPrecondition,
        /// A [`Code::Aborted`] status.
        aborted => Aborted,
        /// A [`Code::OutOfRange`] status.
        out_of_range => OutOfRange,
        /// A [`Code::Unimplemented`] status.
        unimplemented => Unimplemented,
        /// A [`Code::Internal`] status.
        internal => Internal,
        /// A [`Code::Unavailable`] status.
        unavailable => Unavailable,
        /// A [`Code::DataLoss`] status.
        data_loss => DataLoss,
        /// A [`Code::Unauthenticated`] status.
        unauthenticated => Unauthenticated,
    }

    /// Appends the trailer fields for this status: `grpc-status`, then `grpc-message`
    /// (percent-encoded) when there is a message, then `grpc-status-details-bin` (unpadded
    /// base64) when there are details. grpc-go always sends `grpc-message`, even empty;
    /// an absent one reads the same everywhere and costs nothing.
    pub fn to_headers(&self, out: &mut Vec<Header>) {
        out.push(Header::new("grpc-status", self.code.grpc_status_value()));
        if !self.message.is_empty() {
            let value = encode_grpc_message(&self.message).into_owned();
            out.push(Header::new("grpc-message", value));
        }
        if !self.details.is_empty() {
            out.push(Header::new(
                "grpc-status-details-bin",
                encode_binary_value(&self.details),
            ));
        }
    }

    /// The status carried by received trailers (or a Trailers-Only response), from the raw
    /// values of `grpc-status`, `grpc-message` and `grpc-status-details-bin` (the first of
    /// each, `None` when absent). Never fails: a peer's mistake becomes a status.
    ///
    /// - `grpc-status` absent: [`Code::Unknown`] (as grpc-go), with the received message,
    ///   or "missing grpc-status" when there is none.
    /// - `grpc-status` not a number: [`Code::Unknown`], "malformed grpc-status: …" (grpc-go
    ///   says the same, and resets the stream with PROTOCOL_ERROR).
    /// - a number gRPC does not define: [`Code::Unknown`] with the received message.
    /// - `grpc-status-details-bin` not base64: [`Code::Internal`], "malformed
    ///   grpc-status-details-bin" (grpc-go fails the call the same way).
    pub fn from_header_values(
        grpc_status: Option<&[u8]>,
        grpc_message: Option<&[u8]>,
        grpc_status_details_bin: Option<&[u8]>,
    ) -> Status {
        let details = match grpc_status_details_bin.map(decode_binary_value) {
            None => Bytes::new(),
            Some(Ok(details)) => Bytes::from(details),
            Some(Err(_)) => {
                return Status::internal("malformed grpc-status-details-bin: not base64");
            }
        };
        let message = grpc_message
            .map(|m| decode_grpc_message(m).into_owned())
            .unwrap_or_default();
        let code = match grpc_status.map(Code::from_grpc_status) {
            Some(Ok(code)) => code,
            Some(Err(_)) => {
                let raw = grpc_status.map(String::from_utf8_lossy).unwrap_or_default();
                return Status::unknown(format!("malformed grpc-status: {raw:?}"));
            }
            None if message.is_empty() => {
                return Status::with_details(Code::Unknown, "missing grpc-status", details);
            }
            None => Code::Unknown,
        };
        Status {
            code,
            message,
            details,
        }
    }
}

impl Default for Status {
    fn default() -> Status {
        Status::ok()
    }
}

impl From<Code> for Status {
    fn from(code: Code) -> Status {
        Status::new(code, String::new())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_helper_builds_its_code() {
        type Helper = fn(&'static str) -> Status;
        let table: [(Helper, Code); 16] = [
            (Status::cancelled, Code::Cancelled),
            (Status::unknown, Code::Unknown),
            (Status::invalid_argument, Code::InvalidArgument),
            (Status::deadline_exceeded, Code::DeadlineExceeded),
            (Status::not_found, Code::NotFound),
            (Status::already_exists, Code::AlreadyExists),
            (Status::permission_denied, Code::PermissionDenied),
            (Status::resource_exhausted, Code::ResourceExhausted),
            (Status::failed_precondition, Code::FailedPrecondition),
            (Status::aborted, Code::Aborted),
            (Status::out_of_range, Code::OutOfRange),
            (Status::unimplemented, Code::Unimplemented),
            (Status::internal, Code::Internal),
            (Status::unavailable, Code::Unavailable),
            (Status::data_loss, Code::DataLoss),
            (Status::unauthenticated, Code::Unauthenticated),
        ];
        for (make, code) in table {
            let status = make("why");
            assert_eq!(status, Status::new(code, "why"));
            assert!(status.details.is_empty());
            assert!(!status.is_ok());
        }
        assert!(Status::ok().is_ok());
        assert_eq!(Status::ok(), Status::default());
        assert_eq!(Status::from(Code::Aborted), Status::new(Code::Aborted, ""));
    }

    #[test]
    fn display_shows_the_canonical_name_and_the_message() {
        assert_eq!(Status::ok().to_string(), "OK");
        assert_eq!(
            Status::deadline_exceeded("too slow").to_string(),
            "DEADLINE_EXCEEDED: too slow"
        );
        let err: Box<dyn std::error::Error> = Box::new(Status::internal("x"));
        assert_eq!(err.to_string(), "INTERNAL: x");
    }

    #[test]
    fn to_headers_writes_status_message_and_details() {
        let table = [
            (Status::ok(), vec![Header::new("grpc-status", "0")]),
            (
                Status::not_found("no such key"),
                vec![
                    Header::new("grpc-status", "5"),
                    Header::new("grpc-message", "no such key"),
                ],
            ),
            (
                Status::with_details(Code::Unauthenticated, "100% bad\n", &b"\x08\x10"[..]),
                vec![
                    Header::new("grpc-status", "16"),
                    Header::new("grpc-message", "100%25 bad%0A"),
                    Header::new("grpc-status-details-bin", "CBA"),
                ],
            ),
        ];
        for (status, headers) in table {
            let mut out = Vec::new();
            status.to_headers(&mut out);
            assert_eq!(out, headers, "{status}");
        }
    }

    #[test]
    fn from_header_values_reads_every_case() {
        type Row = (
            Option<&'static [u8]>,
            Option<&'static [u8]>,
            Option<&'static [u8]>,
            Status,
        );
        let table: [Row; 10] = [
            (Some(b"0"), None, None, Status::ok()),
            (
                Some(b"4"),
                Some(b"late"),
                None,
                Status::deadline_exceeded("late"),
            ),
            (
                Some(b"13"),
                Some(b"caf%C3%A9 %zz"),
                None,
                Status::internal("café %zz"),
            ),
            (
                Some(b"3"),
                Some(b"bad"),
                Some(b"CBA="),
                Status::with_details(Code::InvalidArgument, "bad", &b"\x08\x10"[..]),
            ),
            (
                Some(b"17"),
                Some(b"future"),
                None,
                Status::unknown("future"),
            ),
            (None, None, None, Status::unknown("missing grpc-status")),
            (None, Some(b"odd"), None, Status::unknown("odd")),
            (
                Some(b"abc"),
                Some(b"m"),
                None,
                Status::unknown("malformed grpc-status: \"abc\""),
            ),
            (
                Some(b""),
                None,
                None,
                Status::unknown("malformed grpc-status: \"\""),
            ),
            (
                Some(b"0"),
                None,
                Some(b"!!"),
                Status::internal("malformed grpc-status-details-bin: not base64"),
            ),
        ];
        for (grpc_status, grpc_message, details, expected) in table {
            assert_eq!(
                Status::from_header_values(grpc_status, grpc_message, details),
                expected
            );
        }
    }

    #[test]
    fn to_headers_and_from_header_values_round_trip() {
        for code in Code::ALL {
            let sent = Status::with_details(code, "msg ünïcode 100%", &b"\0\xff"[..]);
            let mut out = Vec::new();
            sent.to_headers(&mut out);
            let find = |name: &str| {
                out.iter()
                    .find(|h| h.name == name.as_bytes())
                    .map(|h| &h.value[..])
            };
            let received = Status::from_header_values(
                find("grpc-status"),
                find("grpc-message"),
                find("grpc-status-details-bin"),
            );
            assert_eq!(received, sent);
        }
    }
}
