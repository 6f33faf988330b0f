//! Padding shared by DATA (§6.1), HEADERS (§6.2) and PUSH_PROMISE (§6.6).

use bytes::{Buf, Bytes};

use super::{ErrorCode, FrameError, FrameHeader, flags};

/// Removes the Pad Length octet and the padding from `payload`, leaving the fixed fields
/// (`fixed` octets: HEADERS priority, PUSH_PROMISE promised id) followed by the body.
/// Returns the pad length when the PADDED flag is set.
///
/// Padding content is not checked: §6.1 lets a receiver skip that, and nothing depends on it.
#[inline]
pub(super) fn strip(
    head: &FrameHeader,
    payload: &mut Bytes,
    fixed: usize,
) -> Result<Option<u8>, FrameError> {
    if !head.has(flags::PADDED) {
        if payload.len() < fixed {
            // §4.2: too small to contain mandatory frame data; connection-wide because only
            // HEADERS and PUSH_PROMISE have fixed fields and both carry a field block.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "frame too short for its priority or promised stream fields",
            ));
        }
        return Ok(None);
    }
    let Some(&pad_len) = payload.first() else {
        // §4.2: too small to contain mandatory frame data (the Pad Length octet). Treated as
        // a connection error: a DATA frame's size feeds connection flow control and the
        // other padded types carry a field block.
        return Err(FrameError::connection(
            ErrorCode::FrameSizeError,
            "PADDED frame has no room for its Pad Length octet",
        ));
    };
    payload.advance(1);
    if payload.len() < fixed {
        // §4.2: too small for the mandatory priority (§6.2) or promised id (§6.6) fields.
        return Err(FrameError::connection(
            ErrorCode::FrameSizeError,
            "PADDED frame too short for its priority or promised stream fields",
        ));
    }
    let body = payload.len() - fixed;
    if usize::from(pad_len) > body {
        // §6.1, §6.2, §6.6: padding as long as the frame payload or longer (i.e. longer
        // than what follows the Pad Length octet and fixed fields) is a connection
        // PROTOCOL_ERROR. Padding that exactly fills the rest is legal: an empty body.
        return Err(FrameError::connection(
            ErrorCode::ProtocolError,
            "padding is as long as the frame payload or longer",
        ));
    }
    payload.truncate(payload.len() - usize::from(pad_len));
    Ok(Some(pad_len))
}
