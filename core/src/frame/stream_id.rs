//! Stream identifiers (RFC 9113 §5.1.1).

use std::fmt;

/// A 31-bit HTTP/2 stream identifier.
///
/// The wire field is 32 bits with a reserved top bit that senders must leave clear and
/// receivers must ignore (§4.1), so every constructor masks it off: a `StreamId` can never
/// carry it, and the encoder can write the value unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(u32);

/// The reserved bit that shares a 32-bit field with a 31-bit stream id or increment.
pub(crate) const RESERVED_BIT: u32 = 1 << 31;

impl StreamId {
    /// Stream 0: the connection itself (§5.1.1).
    pub const ZERO: StreamId = StreamId(0);

    /// The largest stream id, 2^31-1.
    pub const MAX: StreamId = StreamId(!RESERVED_BIT);

    /// A stream id from a 32-bit value, dropping the reserved bit.
    pub const fn new(id: u32) -> StreamId {
        StreamId(id & !RESERVED_BIT)
    }

    /// The id as a number, always below 2^31.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// True for stream 0, which addresses the connection rather than a stream.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True for odd ids, which only clients open (§5.1.1).
    pub const fn is_client_initiated(self) -> bool {
        self.0 & 1 == 1
    }

    /// True for non-zero even ids, which only servers open (§5.1.1).
    pub const fn is_server_initiated(self) -> bool {
        self.0 != 0 && self.0 & 1 == 0
    }
}

impl From<u32> for StreamId {
    fn from(id: u32) -> StreamId {
        StreamId::new(id)
    }
}

impl From<StreamId> for u32 {
    fn from(id: StreamId) -> u32 {
        id.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_masks_the_reserved_bit_per_section_4_1() {
        assert_eq!(StreamId::new(0x8000_0001).value(), 1);
        assert_eq!(StreamId::new(u32::MAX), StreamId::MAX);
        assert_eq!(StreamId::MAX.value(), (1 << 31) - 1);
    }

    #[test]
    fn parity_tells_who_opened_the_stream() {
        assert!(StreamId::new(1).is_client_initiated());
        assert!(!StreamId::new(2).is_client_initiated());
        assert!(StreamId::new(2).is_server_initiated());
        assert!(!StreamId::ZERO.is_server_initiated());
        assert!(!StreamId::ZERO.is_client_initiated());
        assert!(StreamId::ZERO.is_zero());
        assert_eq!(StreamId::from(7u32), StreamId::new(7));
        assert_eq!(u32::from(StreamId::new(7)), 7);
        assert_eq!(StreamId::new(7).to_string(), "7");
    }
}
