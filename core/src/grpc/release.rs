//! Which received bytes a call may give back to HTTP/2 flow control, and when.
//!
//! A complete message holds its bytes' window until the application takes it, so a
//! reader that stops taking messages stops the sender (the peer runs out of window)
//! instead of making us buffer without bound. Bytes of a message still being assembled
//! are released as they arrive: holding them could deadlock a message larger than the
//! window, and the decoder bounds them by the receive limit anyway.

use super::message::PREFIX_LEN;

/// What the current chunk carried over, and what became free.
///
/// The caller keeps each queued message's hold next to the message (so no second
/// queue is needed) and reports it back with [`on_delivered`](Self::on_delivered).
#[derive(Debug, Default)]
pub(crate) struct ReleaseLedger {
    /// Bytes of the chunk being processed that belong to a message begun in an earlier
    /// chunk, and were released then.
    carried: usize,
    /// Bytes freed by delivered messages, not yet taken.
    released: usize,
}

impl ReleaseLedger {
    /// A DATA chunk is about to be decoded; `partial` bytes of an unfinished message
    /// were buffered (and released) before it.
    pub(crate) fn start_chunk(&mut self, partial: usize) {
        self.carried = partial;
    }

    /// The decoder completed a message of `body_len` bytes (as on the wire) from the
    /// current chunk; returns how many of the chunk's bytes it holds.
    pub(crate) fn on_message(&mut self, body_len: usize) -> usize {
        let wire = PREFIX_LEN + body_len;
        let earlier = self.carried.min(wire);
        self.carried -= earlier;
        wire - earlier
    }

    /// The application took a message that held `hold` bytes.
    pub(crate) fn on_delivered(&mut self, hold: usize) {
        self.released += hold;
    }

    /// Bytes that became free since the last call.
    pub(crate) fn take_released(&mut self) -> usize {
        std::mem::take(&mut self.released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_in_one_chunk_holds_all_its_bytes_until_delivered() {
        let mut l = ReleaseLedger::default();
        l.start_chunk(0);
        let hold = l.on_message(10);
        assert_eq!(hold, 15);
        assert_eq!(l.take_released(), 0);
        l.on_delivered(hold);
        assert_eq!(l.take_released(), 15);
        assert_eq!(l.take_released(), 0);
    }

    #[test]
    fn bytes_released_while_assembling_are_not_held_again() {
        let mut l = ReleaseLedger::default();
        // 8 bytes of a 5 + 10 byte message arrived (and were released) earlier.
        l.start_chunk(8);
        let a = l.on_message(10);
        assert_eq!(a, 7);
        // A second message completed in the same chunk holds all of its bytes.
        let b = l.on_message(3);
        assert_eq!(b, 8);
        l.on_delivered(a);
        l.on_delivered(b);
        assert_eq!(l.take_released(), 15);
    }
}
