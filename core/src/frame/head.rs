//! The 9-octet frame header (RFC 9113 §4.1), frame type codes and flag bits.

use bytes::{BufMut, BytesMut};

use super::StreamId;

/// Length of the fixed frame header that precedes every payload.
pub const HEADER_LEN: usize = 9;

/// The largest value the 24-bit Length field can hold.
pub(crate) const MAX_LENGTH_FIELD: u32 = (1 << 24) - 1;

/// Frame type codes (RFC 9113 §6). Any other value is an extension type.
pub mod kind {
    /// DATA (§6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (§6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (§6.3).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (§6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (§6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (§6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (§6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (§6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (§6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (§6.10).
    pub const CONTINUATION: u8 = 0x9;

    /// True for the types RFC 9113 defines; everything above is an extension.
    pub const fn is_known(kind: u8) -> bool {
        kind <= CONTINUATION
    }
}

/// Flag bits. Each is meaningful only for the frame types its doc names; the decoder
/// ignores every other bit (§4.1) and the encoder never sets one.
pub mod flags {
    /// DATA, HEADERS: last frame the sender will send on the stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: this frame is an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: this frame ends the field block.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length octet and padding are present.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the Exclusive, Stream Dependency and Weight fields are present.
    pub const PRIORITY: u8 = 0x20;
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// Payload length: 24 bits on the wire, header not included.
    pub len: u32,
    /// Frame type; see [`kind`].
    pub kind: u8,
    /// Flag bits; see [`flags`].
    pub flags: u8,
    /// Stream the frame belongs to, reserved bit dropped.
    pub stream_id: StreamId,
}

impl FrameHeader {
    /// Parses the fixed header. Every 9-octet input is a valid header: limits on the
    /// length and stream id depend on the frame type and are the decoder's job.
    pub fn parse(buf: &[u8; HEADER_LEN]) -> FrameHeader {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *buf;
        FrameHeader {
            len: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            stream_id: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
        }
    }

    /// True when all bits of `flag` are set.
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }

    /// Appends the 9 header octets. Only the low 24 bits of `len` fit the wire field;
    /// callers keep `len` within [`MAX_MAX_FRAME_SIZE`](super::MAX_MAX_FRAME_SIZE)
    /// ([`Frame::encode`](super::Frame::encode) checks it).
    pub fn encode(&self, dst: &mut BytesMut) {
        debug_assert!(
            self.len <= MAX_LENGTH_FIELD,
            "frame length {} overflows 24 bits",
            self.len
        );
        let [_, l0, l1, l2] = self.len.to_be_bytes();
        let [s0, s1, s2, s3] = self.stream_id.value().to_be_bytes();
        dst.put_slice(&[l0, l1, l2, self.kind, self.flags, s0, s1, s2, s3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_masks_the_reserved_bit() {
        let head = FrameHeader {
            len: 0x01_02_03,
            kind: kind::HEADERS,
            flags: flags::END_HEADERS | flags::PADDED,
            stream_id: StreamId::new(0x7fff_fffe),
        };
        let mut buf = BytesMut::new();
        head.encode(&mut buf);
        assert_eq!(&buf[..], &[1, 2, 3, 1, 0x0c, 0x7f, 0xff, 0xff, 0xfe]);
        let parsed = FrameHeader::parse(&<[u8; 9]>::try_from(&buf[..]).unwrap());
        assert_eq!(parsed, head);

        // §4.1: the reserved bit MUST be ignored when receiving.
        let reserved = FrameHeader::parse(&[0, 0, 0, 0, 0, 0x80, 0, 0, 3]);
        assert_eq!(reserved.stream_id, StreamId::new(3));
    }

    #[test]
    fn length_field_is_24_bits() {
        let head = FrameHeader::parse(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]);
        assert_eq!(head.len, MAX_LENGTH_FIELD);
        assert!(head.has(0));
        assert!(!kind::is_known(0x0a));
        assert!(kind::is_known(kind::CONTINUATION));
    }
}
