//! SETTINGS frames (RFC 9113 §6.5).

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    DEFAULT_MAX_FRAME_SIZE, EncodeError, ErrorCode, FrameError, FrameHeader, MAX_MAX_FRAME_SIZE,
    MAX_WINDOW_SIZE, StreamId, flags, kind,
};

/// SETTINGS_HEADER_TABLE_SIZE (§6.5.2).
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_ENABLE_PUSH (§6.5.2).
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_MAX_CONCURRENT_STREAMS (§6.5.2).
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// SETTINGS_INITIAL_WINDOW_SIZE (§6.5.2).
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE (§6.5.2).
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
/// SETTINGS_MAX_HEADER_LIST_SIZE (§6.5.2).
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Length of one Identifier + Value pair.
const SETTING_LEN: usize = 6;

/// A SETTINGS frame, or the acknowledgement of one.
///
/// Only the settings RFC 9113 defines are kept; a `None` field was not in the frame.
/// When a frame repeats an identifier the last value wins, since settings are processed
/// in order (§6.5.3). Unknown identifiers are skipped (§6.5.2). The default value is an
/// empty, non-ACK SETTINGS frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Settings {
    /// ACK: this frame acknowledges the peer's SETTINGS; then every other field is `None`.
    pub ack: bool,
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH.
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE, at most [`MAX_WINDOW_SIZE`].
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE, within
    /// [`DEFAULT_MAX_FRAME_SIZE`]..=[`MAX_MAX_FRAME_SIZE`].
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: Option<u32>,
}

impl Settings {
    /// A SETTINGS ACK.
    pub fn ack() -> Settings {
        Settings {
            ack: true,
            ..Settings::default()
        }
    }

    /// The settings present, as (identifier, value) pairs in identifier order.
    pub fn pairs(&self) -> impl Iterator<Item = (u16, u32)> + use<> {
        [
            (SETTINGS_HEADER_TABLE_SIZE, self.header_table_size),
            (SETTINGS_ENABLE_PUSH, self.enable_push.map(u32::from)),
            (SETTINGS_MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (SETTINGS_INITIAL_WINDOW_SIZE, self.initial_window_size),
            (SETTINGS_MAX_FRAME_SIZE, self.max_frame_size),
            (SETTINGS_MAX_HEADER_LIST_SIZE, self.max_header_list_size),
        ]
        .into_iter()
        .filter_map(|(id, value)| Some((id, value?)))
    }

    pub(super) fn encode(
        &self,
        dst: &mut BytesMut,
        max_frame_size: u32,
    ) -> Result<(), EncodeError> {
        let count = self.pairs().count();
        if self.ack && count > 0 {
            return Err(EncodeError::SettingsAckWithValues);
        }
        if let Some(value) = self.initial_window_size.filter(|&v| v > MAX_WINDOW_SIZE) {
            return Err(EncodeError::InvalidSetting {
                id: SETTINGS_INITIAL_WINDOW_SIZE,
                value,
            });
        }
        if let Some(value) = self
            .max_frame_size
            .filter(|v| !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(v))
        {
            return Err(EncodeError::InvalidSetting {
                id: SETTINGS_MAX_FRAME_SIZE,
                value,
            });
        }
        let len = count * SETTING_LEN;
        super::check_fits(kind::SETTINGS, len, max_frame_size)?;
        FrameHeader {
            len: len as u32,
            kind: kind::SETTINGS,
            flags: if self.ack { flags::ACK } else { 0 },
            stream_id: StreamId::ZERO,
        }
        .encode(dst);
        for (id, value) in self.pairs() {
            dst.put_u16(id);
            dst.put_u32(value);
        }
        Ok(())
    }

    pub(super) fn decode(head: &FrameHeader, payload: &Bytes) -> Result<Settings, FrameError> {
        if !head.stream_id.is_zero() {
            // §6.5: SETTINGS always apply to the connection.
            return Err(FrameError::connection(
                ErrorCode::ProtocolError,
                "SETTINGS frame on a non-zero stream",
            ));
        }
        if head.has(flags::ACK) {
            if !payload.is_empty() {
                // §6.5: an ACK's payload MUST be empty; connection FRAME_SIZE_ERROR.
                return Err(FrameError::connection(
                    ErrorCode::FrameSizeError,
                    "SETTINGS ACK with a payload",
                ));
            }
            return Ok(Settings::ack());
        }
        if !payload.len().is_multiple_of(SETTING_LEN) {
            // §6.5: a length that is not a multiple of 6 is a connection FRAME_SIZE_ERROR.
            return Err(FrameError::connection(
                ErrorCode::FrameSizeError,
                "SETTINGS frame length is not a multiple of 6",
            ));
        }
        let mut settings = Settings::default();
        let (pairs, _) = payload.as_chunks::<SETTING_LEN>();
        for &[i0, i1, v0, v1, v2, v3] in pairs {
            let value = u32::from_be_bytes([v0, v1, v2, v3]);
            match u16::from_be_bytes([i0, i1]) {
                SETTINGS_HEADER_TABLE_SIZE => settings.header_table_size = Some(value),
                SETTINGS_ENABLE_PUSH => {
                    settings.enable_push = Some(match value {
                        0 => false,
                        1 => true,
                        _ => {
                            // §6.5.2: any value other than 0 or 1 is a connection
                            // PROTOCOL_ERROR.
                            return Err(FrameError::connection(
                                ErrorCode::ProtocolError,
                                "SETTINGS_ENABLE_PUSH is neither 0 nor 1",
                            ));
                        }
                    });
                }
                SETTINGS_MAX_CONCURRENT_STREAMS => settings.max_concurrent_streams = Some(value),
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    if value > MAX_WINDOW_SIZE {
                        // §6.5.2: above 2^31-1 is a connection FLOW_CONTROL_ERROR.
                        return Err(FrameError::connection(
                            ErrorCode::FlowControlError,
                            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    settings.initial_window_size = Some(value);
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                        // §6.5.2: outside 2^14..=2^24-1 is a connection PROTOCOL_ERROR.
                        return Err(FrameError::connection(
                            ErrorCode::ProtocolError,
                            "SETTINGS_MAX_FRAME_SIZE outside 16384..=16777215",
                        ));
                    }
                    settings.max_frame_size = Some(value);
                }
                SETTINGS_MAX_HEADER_LIST_SIZE => settings.max_header_list_size = Some(value),
                // §6.5.2: unknown or unsupported identifiers MUST be ignored.
                _ => {}
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_connection_error, decode_one, raw};
    use super::super::*;
    use bytes::BytesMut;

    fn setting(id: u16, value: u32) -> [u8; 6] {
        let [i0, i1] = id.to_be_bytes();
        let [v0, v1, v2, v3] = value.to_be_bytes();
        [i0, i1, v0, v1, v2, v3]
    }

    #[test]
    fn settings_on_stream_1_is_connection_protocol_error() {
        assert_connection_error(&raw(kind::SETTINGS, 0, 1, &[]), ErrorCode::ProtocolError);
    }

    #[test]
    fn settings_with_length_5_is_connection_frame_size_error() {
        assert_connection_error(
            &raw(kind::SETTINGS, 0, 0, &[0, 1, 0, 0, 0]),
            ErrorCode::FrameSizeError,
        );
    }

    #[test]
    fn settings_ack_with_payload_is_connection_frame_size_error() {
        let wire = raw(
            kind::SETTINGS,
            flags::ACK,
            0,
            &setting(SETTINGS_ENABLE_PUSH, 0),
        );
        assert_connection_error(&wire, ErrorCode::FrameSizeError);
    }

    #[test]
    fn settings_enable_push_2_is_connection_protocol_error() {
        let wire = raw(kind::SETTINGS, 0, 0, &setting(SETTINGS_ENABLE_PUSH, 2));
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn settings_initial_window_size_above_2_pow_31_minus_1_is_connection_flow_control_error() {
        let wire = raw(
            kind::SETTINGS,
            0,
            0,
            &setting(SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW_SIZE + 1),
        );
        assert_connection_error(&wire, ErrorCode::FlowControlError);
        let ok = decode_one(&raw(
            kind::SETTINGS,
            0,
            0,
            &setting(SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW_SIZE),
        ));
        assert!(ok.is_ok());
    }

    #[test]
    fn settings_max_frame_size_16383_is_connection_protocol_error() {
        let wire = raw(
            kind::SETTINGS,
            0,
            0,
            &setting(SETTINGS_MAX_FRAME_SIZE, DEFAULT_MAX_FRAME_SIZE - 1),
        );
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn settings_max_frame_size_2_pow_24_is_connection_protocol_error() {
        let wire = raw(
            kind::SETTINGS,
            0,
            0,
            &setting(SETTINGS_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE + 1),
        );
        assert_connection_error(&wire, ErrorCode::ProtocolError);
    }

    #[test]
    fn settings_unknown_ids_are_skipped_and_the_last_duplicate_wins() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&setting(SETTINGS_HEADER_TABLE_SIZE, 100));
        payload.extend_from_slice(&setting(0x99, 12345));
        payload.extend_from_slice(&setting(SETTINGS_HEADER_TABLE_SIZE, 200));
        payload.extend_from_slice(&setting(SETTINGS_ENABLE_PUSH, 0));
        payload.extend_from_slice(&setting(SETTINGS_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE));
        payload.extend_from_slice(&setting(SETTINGS_MAX_CONCURRENT_STREAMS, 100));
        payload.extend_from_slice(&setting(SETTINGS_MAX_HEADER_LIST_SIZE, 8192));
        let frame = decode_one(&raw(kind::SETTINGS, 0, 0, &payload)).unwrap();
        let expected = Settings {
            header_table_size: Some(200),
            enable_push: Some(false),
            max_frame_size: Some(MAX_MAX_FRAME_SIZE),
            max_concurrent_streams: Some(100),
            max_header_list_size: Some(8192),
            ..Settings::default()
        };
        assert_eq!(frame, Frame::Settings(expected));
    }

    #[test]
    fn settings_ack_round_trips_and_refuses_values() {
        let mut dst = BytesMut::new();
        Frame::Settings(Settings::ack())
            .encode(&mut dst, DEFAULT_MAX_FRAME_SIZE)
            .unwrap();
        assert_eq!(&dst[..], &raw(kind::SETTINGS, flags::ACK, 0, &[])[..]);
        assert_eq!(decode_one(&dst).unwrap(), Frame::Settings(Settings::ack()));

        let mut dst = BytesMut::new();
        let bad = Settings {
            enable_push: Some(false),
            ..Settings::ack()
        };
        assert_eq!(
            Frame::Settings(bad).encode(&mut dst, DEFAULT_MAX_FRAME_SIZE),
            Err(EncodeError::SettingsAckWithValues)
        );
        let bad = Settings {
            max_frame_size: Some(10),
            ..Settings::default()
        };
        assert_eq!(
            Frame::Settings(bad).encode(&mut dst, DEFAULT_MAX_FRAME_SIZE),
            Err(EncodeError::InvalidSetting {
                id: SETTINGS_MAX_FRAME_SIZE,
                value: 10
            })
        );
        assert!(dst.is_empty());
    }
}
