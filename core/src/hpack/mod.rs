//! HPACK, the HTTP/2 header compression format (RFC 7541).
//!
//! - [`Decoder`] turns header blocks from the peer into [`Field`]s. It is built for hostile
//!   input: every malformed block is an error value, never a panic; nothing is allocated
//!   for a length before the bytes are there; the dynamic table owns copies of its entries
//!   and holds no more than its accounted size; the header list limit is enforced while
//!   decoding; and each field costs time in proportion to its own bytes.
//! - [`Encoder`] turns [`HeaderField`]s into header blocks, indexing repeated fields in a
//!   dynamic table that mirrors the peer's, so a repeated gRPC request costs a few bytes.
//!
//! Both sides share the static table and the Huffman code of RFC 7541 Appendices A and B;
//! the Huffman decoder is a state machine computed at compile time from the code list.

mod decoder;
mod encoder;
mod huffman;
mod integer;
mod static_table;
mod table;

#[cfg(test)]
mod tests;

pub use decoder::{DecodeError, Decoder, Field, FieldRef};
pub use encoder::{DEFAULT_ENCODER_TABLE_CAP, Encoder, HeaderField, Indexing};
pub use table::ENTRY_OVERHEAD;

/// The initial SETTINGS_HEADER_TABLE_SIZE of HTTP/2 (RFC 9113 §6.5.2), which both sides
/// assume until the peer's SETTINGS say otherwise.
pub const DEFAULT_HEADER_TABLE_SIZE: usize = 4096;
