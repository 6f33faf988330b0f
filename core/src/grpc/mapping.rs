//! How HTTP-level outcomes become gRPC statuses: the HTTP status table (grpc/grpc
//! `doc/http-grpc-status-mapping.md`), the RST_STREAM table (PROTOCOL-HTTP2.md "Errors",
//! as grpc-go's `http2ErrConvTab` applies it), and the `content-type` test that tells a
//! gRPC response from anything else.

use std::fmt::Write as _;

use super::code::Code;
use super::status::Status;
use crate::ErrorCode;

/// The gRPC code for a response that carried this HTTP status and no `grpc-status`.
///
/// The table of http-grpc-status-mapping.md: 400 and 431 INTERNAL, 401 UNAUTHENTICATED,
/// 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429, 502, 503 and 504 UNAVAILABLE, anything
/// else (200 included: a real success carries `grpc-status: 0`) UNKNOWN. grpc-go's
/// `HTTPStatusConvTab` lacks the 431 row and so says UNKNOWN for it. Informational 1xx
/// responses are not final and must be skipped before this is asked.
pub const fn code_from_http_status(http_status: u16) -> Code {
    match http_status {
        400 | 431 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// The status for a response that carried this HTTP status and no `grpc-status`, worded
/// as grpc-go words it: "unexpected HTTP status code received from server: 404 (Not
/// Found)". A status with no registered reason phrase has no parenthesis (grpc-go prints
/// an empty one).
pub fn status_from_http_status(http_status: u16) -> Status {
    let mut message = format!("unexpected HTTP status code received from server: {http_status}");
    if let Some(reason) = reason_phrase(http_status) {
        let _ = write!(message, " ({reason})");
    }
    Status::new(code_from_http_status(http_status), message)
}

/// The status for a response that is not gRPC: its `content-type` is missing or not
/// `application/grpc…` ([`content_type_is_grpc`]). Give the raw `:status` and
/// `content-type` values (`None` when absent).
///
/// As grpc-go's client does, the code comes from the HTTP status
/// ([`code_from_http_status`]), or is INTERNAL when `:status` is absent or not three
/// digits, and the message names both problems, for example "unexpected HTTP status code
/// received from server: 503 (Service Unavailable); malformed header: missing HTTP
/// content-type". The caller handles 1xx responses first (they are not final).
pub fn status_from_non_grpc_response(
    http_status: Option<&[u8]>,
    content_type: Option<&[u8]>,
) -> Status {
    let (code, mut message) = match http_status {
        None => (
            Code::Internal,
            "malformed header: missing HTTP status".to_owned(),
        ),
        Some(raw) => match parse_http_status(raw) {
            Some(n) => {
                let status = status_from_http_status(n);
                (status.code, status.message)
            }
            None => {
                let raw = String::from_utf8_lossy(raw);
                return Status::internal(format!("malformed http-status: {raw:?}"));
            }
        },
    };
    match content_type {
        None => message.push_str("; malformed header: missing HTTP content-type"),
        Some(ct) if !content_type_is_grpc(ct) => {
            let ct = String::from_utf8_lossy(ct);
            let _ = write!(message, "; received unexpected content-type {ct:?}");
        }
        Some(_) => {}
    }
    Status::new(code, message)
}

/// Reads a `:status` value: exactly three ASCII digits (RFC 9113 §8.3.2, RFC 9110 §15).
pub fn parse_http_status(value: &[u8]) -> Option<u16> {
    match *value {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// The gRPC code for a stream the peer reset with this HTTP/2 error code.
///
/// grpc-go's `http2ErrConvTab`: REFUSED_STREAM is UNAVAILABLE (nothing was processed, the
/// call may be retried), CANCEL is CANCELLED, FLOW_CONTROL_ERROR and ENHANCE_YOUR_CALM
/// are RESOURCE_EXHAUSTED, INADEQUATE_SECURITY is PERMISSION_DENIED, every other defined
/// code INTERNAL (NO_ERROR too: a server that finished properly sends `grpc-status`), and
/// a code HTTP/2 does not define UNKNOWN. PROTOCOL-HTTP2.md's own table differs on
/// FLOW_CONTROL_ERROR (INTERNAL) and gives STREAM_CLOSED no row.
///
/// With `deadline_passed`, CANCEL is DEADLINE_EXCEEDED instead: a server cancels a call
/// whose deadline it saw expire, and the spec asks clients to report that as the
/// deadline, not as a cancellation.
pub const fn code_from_h2_error(code: ErrorCode, deadline_passed: bool) -> Code {
    match code {
        ErrorCode::NoError
        | ErrorCode::ProtocolError
        | ErrorCode::InternalError
        | ErrorCode::SettingsTimeout
        | ErrorCode::StreamClosed
        | ErrorCode::FrameSizeError
        | ErrorCode::CompressionError
        | ErrorCode::ConnectError
        | ErrorCode::Http11Required => Code::Internal,
        ErrorCode::FlowControlError | ErrorCode::EnhanceYourCalm => Code::ResourceExhausted,
        ErrorCode::RefusedStream => Code::Unavailable,
        ErrorCode::Cancel if deadline_passed => Code::DeadlineExceeded,
        ErrorCode::Cancel => Code::Cancelled,
        ErrorCode::InadequateSecurity => Code::PermissionDenied,
        ErrorCode::Unknown(_) => Code::Unknown,
    }
}

/// The status of a call whose stream the peer reset with RST_STREAM, worded as grpc-go
/// words it: "stream terminated by RST_STREAM with error code: REFUSED_STREAM" (or
/// "unknown error code 0x2a" for a code HTTP/2 does not define).
pub fn status_from_rst_stream(code: ErrorCode, deadline_passed: bool) -> Status {
    let message = match code {
        ErrorCode::Unknown(n) => {
            format!("stream terminated by RST_STREAM with error code: unknown error code 0x{n:x}")
        }
        known => format!(
            "stream terminated by RST_STREAM with error code: {}",
            known.name()
        ),
    };
    Status::new(code_from_h2_error(code, deadline_passed), message)
}

/// The base gRPC media type.
const GRPC_MEDIA_TYPE: &[u8] = b"application/grpc";

/// True when a `content-type` value is gRPC's: `application/grpc` alone, or followed by
/// `+` (a subtype such as `+proto`) or `;` (parameters).
///
/// The media type is compared without regard to ASCII case, since RFC 9110 §8.3.1 makes
/// type and subtype case-insensitive (grpc-java lower-cases too); grpc-go compares it as
/// sent. Anything else after `application/grpc` (`application/grpcx`, a space) is not
/// gRPC.
pub fn content_type_is_grpc(content_type: &[u8]) -> bool {
    grpc_content_subtype(content_type).is_some()
}

/// The content-subtype of a gRPC `content-type`: `proto` for `application/grpc+proto`,
/// empty for `application/grpc` and `application/grpc;…` (the default, protobuf), `None`
/// when the value is not gRPC ([`content_type_is_grpc`]).
///
/// Parameters after `;` are not part of the subtype, and surrounding spaces are trimmed.
/// The subtype is returned as sent; codec names are conventionally lower case.
pub fn grpc_content_subtype(content_type: &[u8]) -> Option<&[u8]> {
    let (base, rest) = content_type.split_at_checked(GRPC_MEDIA_TYPE.len())?;
    if !base.eq_ignore_ascii_case(GRPC_MEDIA_TYPE) {
        return None;
    }
    match rest {
        [] | [b';', ..] => Some(&[]),
        [b'+', subtype @ ..] => {
            let end = subtype
                .iter()
                .position(|&b| b == b';')
                .unwrap_or(subtype.len());
            Some(subtype[..end].trim_ascii())
        }
        _ => None,
    }
}

/// Go's `http.StatusText`, for the message grpc-go writes.
const fn reason_phrase(http_status: u16) -> Option<&'static str> {
    Some(match http_status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_table() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (431, Code::Internal),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (200, Code::Unknown),
            (204, Code::Unknown),
            (302, Code::Unknown),
            (402, Code::Unknown),
            (405, Code::Unknown),
            (415, Code::Unknown),
            (500, Code::Unknown),
            (501, Code::Unknown),
            (505, Code::Unknown),
            (599, Code::Unknown),
            (0, Code::Unknown),
            (u16::MAX, Code::Unknown),
        ];
        for (http_status, code) in table {
            assert_eq!(code_from_http_status(http_status), code, "{http_status}");
            assert_eq!(status_from_http_status(http_status).code, code);
        }
    }

    #[test]
    fn http_status_messages_follow_grpc_go() {
        let table = [
            (
                404,
                "unexpected HTTP status code received from server: 404 (Not Found)",
            ),
            (
                200,
                "unexpected HTTP status code received from server: 200 (OK)",
            ),
            (
                503,
                "unexpected HTTP status code received from server: 503 (Service Unavailable)",
            ),
            (
                431,
                "unexpected HTTP status code received from server: 431 (Request Header Fields Too Large)",
            ),
            (599, "unexpected HTTP status code received from server: 599"),
        ];
        for (http_status, message) in table {
            assert_eq!(status_from_http_status(http_status).message, message);
        }
    }

    #[test]
    fn non_grpc_responses_name_every_problem() {
        type Row = (Option<&'static [u8]>, Option<&'static [u8]>, Status);
        let table: [Row; 7] = [
            (
                Some(b"404"),
                None,
                Status::unimplemented(
                    "unexpected HTTP status code received from server: 404 (Not Found); \
                     malformed header: missing HTTP content-type",
                ),
            ),
            (
                Some(b"200"),
                Some(b"text/html"),
                Status::unknown(
                    "unexpected HTTP status code received from server: 200 (OK); \
                     received unexpected content-type \"text/html\"",
                ),
            ),
            (
                Some(b"503"),
                Some(b"application/grpc"),
                Status::unavailable(
                    "unexpected HTTP status code received from server: 503 (Service Unavailable)",
                ),
            ),
            (
                None,
                None,
                Status::internal(
                    "malformed header: missing HTTP status; \
                     malformed header: missing HTTP content-type",
                ),
            ),
            (
                None,
                Some(b"application/json"),
                Status::internal(
                    "malformed header: missing HTTP status; \
                     received unexpected content-type \"application/json\"",
                ),
            ),
            (
                Some(b"20"),
                None,
                Status::internal("malformed http-status: \"20\""),
            ),
            (
                Some(b"abc"),
                None,
                Status::internal("malformed http-status: \"abc\""),
            ),
        ];
        for (http_status, content_type, expected) in table {
            assert_eq!(
                status_from_non_grpc_response(http_status, content_type),
                expected
            );
        }
    }

    #[test]
    fn http_status_parsing_takes_exactly_three_digits() {
        let table: [(&[u8], Option<u16>); 8] = [
            (b"200", Some(200)),
            (b"000", Some(0)),
            (b"999", Some(999)),
            (b"", None),
            (b"20", None),
            (b"2000", None),
            (b"2x0", None),
            (b" 200", None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_http_status(value), expected, "{value:?}");
        }
    }

    #[test]
    fn rst_stream_table() {
        let table = [
            (ErrorCode::NoError, Code::Internal),
            (ErrorCode::ProtocolError, Code::Internal),
            (ErrorCode::InternalError, Code::Internal),
            (ErrorCode::FlowControlError, Code::ResourceExhausted),
            (ErrorCode::SettingsTimeout, Code::Internal),
            (ErrorCode::StreamClosed, Code::Internal),
            (ErrorCode::FrameSizeError, Code::Internal),
            (ErrorCode::RefusedStream, Code::Unavailable),
            (ErrorCode::Cancel, Code::Cancelled),
            (ErrorCode::CompressionError, Code::Internal),
            (ErrorCode::ConnectError, Code::Internal),
            (ErrorCode::EnhanceYourCalm, Code::ResourceExhausted),
            (ErrorCode::InadequateSecurity, Code::PermissionDenied),
            (ErrorCode::Http11Required, Code::Internal),
            (ErrorCode::Unknown(0xe), Code::Unknown),
            (ErrorCode::Unknown(u32::MAX), Code::Unknown),
        ];
        for (h2, code) in table {
            assert_eq!(code_from_h2_error(h2, false), code, "{h2}");
            let after_deadline = if h2 == ErrorCode::Cancel {
                Code::DeadlineExceeded
            } else {
                code
            };
            assert_eq!(code_from_h2_error(h2, true), after_deadline, "{h2}");
            assert_eq!(status_from_rst_stream(h2, false).code, code);
            assert_eq!(status_from_rst_stream(h2, true).code, after_deadline);
        }
    }

    #[test]
    fn rst_stream_messages_follow_grpc_go() {
        let table = [
            (
                ErrorCode::RefusedStream,
                "stream terminated by RST_STREAM with error code: REFUSED_STREAM",
            ),
            (
                ErrorCode::Cancel,
                "stream terminated by RST_STREAM with error code: CANCEL",
            ),
            (
                ErrorCode::Http11Required,
                "stream terminated by RST_STREAM with error code: HTTP_1_1_REQUIRED",
            ),
            (
                ErrorCode::Unknown(0x2a),
                "stream terminated by RST_STREAM with error code: unknown error code 0x2a",
            ),
        ];
        for (h2, message) in table {
            assert_eq!(status_from_rst_stream(h2, false).message, message);
        }
    }

    #[test]
    fn content_type_table() {
        let table: [(&[u8], Option<&[u8]>); 17] = [
            (b"application/grpc", Some(b"")),
            (b"application/grpc+proto", Some(b"proto")),
            (b"application/grpc+json", Some(b"json")),
            (b"application/grpc+", Some(b"")),
            (b"application/grpc;", Some(b"")),
            (b"application/grpc; charset=utf-8", Some(b"")),
            (b"application/grpc+proto; charset=utf-8", Some(b"proto")),
            (b"Application/GRPC+proto", Some(b"proto")),
            (b"APPLICATION/GRPC", Some(b"")),
            (b"application/grpcx", None),
            (b"application/grpc-web", None),
            (b"application/grpc proto", None),
            (b" application/grpc", None),
            (b"application/grp", None),
            (b"application/json", None),
            (b"text/html; charset=utf-8", None),
            (b"", None),
        ];
        for (content_type, subtype) in table {
            let shown = String::from_utf8_lossy(content_type);
            assert_eq!(grpc_content_subtype(content_type), subtype, "{shown:?}");
            assert_eq!(
                content_type_is_grpc(content_type),
                subtype.is_some(),
                "{shown:?}"
            );
        }
    }

    #[test]
    fn every_reason_phrase_belongs_to_a_three_digit_status() {
        for n in 0..=u16::MAX {
            if reason_phrase(n).is_some() {
                assert!((100..600).contains(&n), "{n}");
            }
        }
    }
}
