//! RFC 9113 frame codec (being written).
