//! RFC 7541 HPACK codec (being written).
