//! Which received bytes a call may give back to HTTP/2 flow control, and when.
//!
//! A complete message holds its bytes' window until the application takes it, so a
//! reader that stops taking messages stops the sender (the peer runs out of window)
//! instead of making us buffer without bound. Bytes of a message still being assembled
//! are released as they arrive: holding them could deadlock a message larger than the
//! window, and the decoder bounds them by the receive limit anyway.

use std::collections::VecDeque;

use super::message::PREFIX_LEN;

/// The held bytes of each queued message, in queue order, and what became free.
#[derive(Debug, Default)]
pub(crate) struct ReleaseLedger {
    /// Bytes each undelivered message still holds.
    holds: VecDeque<usize>,
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
        let hold = wire - earlier;
        self.holds.push_back(hold);
        hold
    }

    /// The application took the oldest queued message.
    pub(crate) fn on_delivered(&mut self) {
        if let Some(hold) = self.holds.pop_front() {
            self.released += hold;
        }
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
        assert_eq!(l.on_message(10), 15);
        assert_eq!(l.take_released(), 0);
        l.on_delivered();
        assert_eq!(l.take_released(), 15);
        assert_eq!(l.take_released(), 0);
    }

    #[test]
    fn bytes_released_while_assembling_are_not_held_again() {
        let mut l = ReleaseLedger::default();
        // 8 bytes of a 5 + 10 byte message arrived (and were released) earlier.
        l.start_chunk(8);
        assert_eq!(l.on_message(10), 7);
        // A second message completed in the same chunk holds all of its bytes.
        assert_eq!(l.on_message(3), 8);
        l.on_delivered();
        l.on_delivered();
        assert_eq!(l.take_released(), 15);
    }

    #[test]
    fn delivering_with_nothing_queued_frees_nothing() {
        let mut l = ReleaseLedger::default();
        l.on_delivered();
        assert_eq!(l.take_released(), 0);
    }
}
