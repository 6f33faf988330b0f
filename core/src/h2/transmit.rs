//! The bytes a connection hands its writer: a list of chunks for one vectored write.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes to write, in order, as chunks: frame headers and small frames batched into
/// shared buffers, large DATA payloads as the very `Bytes` the application sent (never
/// copied). Write them with one vectored write, then [`clear`](Transmit::clear).
#[derive(Debug, Default)]
pub struct Transmit {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Transmit {
    /// An empty batch.
    pub fn new() -> Transmit {
        Transmit::default()
    }

    /// Total bytes in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in write order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Takes the chunks out, leaving the batch empty.
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        self.len = 0;
        std::mem::take(&mut self.chunks)
    }

    /// Forgets everything (after it was written).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Copies the batch into one buffer: for tests and for writers without vectored I/O.
    pub fn copy_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.len);
        for chunk in &self.chunks {
            dst.put_slice(chunk);
        }
    }

    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }
}
