//! Self-checking messages: every message the simulator sends carries the call's tag, a
//! sequence number and a checksum, so a receiver can tell a corrupted, duplicated,
//! reordered or foreign message from a good one.
//!
//! Layout: `tag: u64 | seq: u32 | payload | fnv1a32(tag | seq | payload): u32`, all
//! big-endian. The payload is a pattern derived from `(tag, seq)`, so the expected
//! message can be rebuilt from its coordinates alone.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes a message has besides its payload.
pub const OVERHEAD: usize = 16;

/// FNV-1a, 32 bits.
pub fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The message number `seq` of the call tagged `tag`, with `payload` bytes.
pub fn encode(tag: u64, seq: u32, payload: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(payload + OVERHEAD);
    b.put_u64(tag);
    b.put_u32(seq);
    let mix = (tag as u32) ^ seq.rotate_left(8);
    b.extend((0..payload).map(|i| (mix.wrapping_add(i as u32).wrapping_mul(31) >> 3) as u8));
    let sum = fnv1a(&b);
    b.put_u32(sum);
    b.freeze()
}

/// A server-streaming request: "send `count` messages of `payload` bytes each".
pub fn encode_stream_request(tag: u64, count: u32, payload: u32) -> Bytes {
    let mut b = BytesMut::with_capacity(24);
    b.put_u64(tag);
    b.put_u32(0);
    b.put_u32(count);
    b.put_u32(payload);
    let sum = fnv1a(&b);
    b.put_u32(sum);
    b.freeze()
}

/// A checked message's coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The call's tag.
    pub tag: u64,
    /// Its number in the call's stream.
    pub seq: u32,
    /// Payload length.
    pub payload: usize,
}

/// Checks a message's framing and checksum; returns its coordinates or what is wrong.
pub fn decode(m: &[u8]) -> Result<Header, String> {
    if m.len() < OVERHEAD {
        return Err(format!("message of {} bytes is too short", m.len()));
    }
    let body = &m[..m.len() - 4];
    let sum = u32::from_be_bytes(m[m.len() - 4..].try_into().expect("4 bytes"));
    if fnv1a(body) != sum {
        return Err(format!("checksum mismatch in a {}-byte message", m.len()));
    }
    Ok(Header {
        tag: u64::from_be_bytes(m[..8].try_into().expect("8 bytes")),
        seq: u32::from_be_bytes(m[8..12].try_into().expect("4 bytes")),
        payload: m.len() - OVERHEAD,
    })
}

/// The `(count, payload)` of a server-streaming request.
pub fn decode_stream_request(m: &[u8]) -> Result<(u64, u32, u32), String> {
    let h = decode(m)?;
    if h.payload != 8 {
        return Err(format!("stream request with a {}-byte payload", h.payload));
    }
    let count = u32::from_be_bytes(m[12..16].try_into().expect("4 bytes"));
    let size = u32::from_be_bytes(m[16..20].try_into().expect("4 bytes"));
    Ok((h.tag, count, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let m = encode(7, 3, 100);
        assert_eq!(
            decode(&m),
            Ok(Header {
                tag: 7,
                seq: 3,
                payload: 100
            })
        );
        let mut bad = m.to_vec();
        bad[20] ^= 1;
        assert!(decode(&bad).is_err());
        let r = encode_stream_request(9, 5, 33);
        assert_eq!(decode_stream_request(&r), Ok((9, 5, 33)));
    }
}
