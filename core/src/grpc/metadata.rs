//! Custom metadata (PROTOCOL-HTTP2.md, "Custom-Metadata"): the application's own header
//! fields, ASCII or binary.
//!
//! Keys are 1 or more bytes of `0-9 a-z _ - .`. A key ending in `-bin` holds any bytes,
//! sent as base64; any other key holds printable ASCII (`0x20..=0x7E`).
//!
//! Keys the library or HTTP/2 itself owns are reserved ([`is_reserved_key`]). The same
//! rule decides what may be sent and what is handed over on receipt, so an application
//! can always echo the metadata it received.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;

use crate::ascii;
use crate::h2::Header;
use crate::hpack::Field;

/// The suffix that marks a binary key.
const BINARY_SUFFIX: &[u8] = b"-bin";

/// Decodes what any gRPC peer may send: padded or not (the spec says implementations MUST
/// accept both), and with stray bits in the last symbol, which Go's decoder (and so
/// grpc-go) ignores too.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// gRPC keys that are not the library's: applications and plugins (retry pushback, tracing,
/// census tags) set and read them as ordinary metadata, as grpc-go lets them.
const GRPC_KEYS_FOR_APPLICATIONS: [&[u8]; 4] = [
    b"grpc-previous-rpc-attempts",
    b"grpc-retry-pushback-ms",
    b"grpc-tags-bin",
    b"grpc-trace-bin",
];

/// Keys outside `grpc-` that are not metadata: the gRPC call definition's own fields, and
/// what RFC 9113 §8.2.2 forbids in HTTP/2 (connection-specific fields) or §8.3.1 ties to
/// `:authority` (`host`).
const RESERVED_KEYS: [&[u8]; 9] = [
    b"content-type",
    b"te",
    b"user-agent",
    b"host",
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// Keys whose values are credentials: sent so that no HPACK table, ours or a proxy's,
/// keeps them (RFC 7541 §7.1.3).
const SENSITIVE_KEYS: [&[u8]; 2] = [b"authorization", b"proxy-authorization"];

/// True for keys that are not custom metadata.
///
/// That is pseudo-header fields (`:path`), `content-type`, `te`, `user-agent`, `host`,
/// the HTTP/1 connection-specific fields, and every `grpc-` key except
/// `grpc-previous-rpc-attempts`, `grpc-retry-pushback-ms`, `grpc-tags-bin` and
/// `grpc-trace-bin`. PROTOCOL-HTTP2.md reserves all other `grpc-` names for gRPC.
///
/// grpc-go's `isReservedHeader` lists fewer keys (pseudo-headers, `content-type`,
/// `user-agent`, `te`, `grpc-message-type`, `grpc-encoding`, `grpc-message`,
/// `grpc-status`, `grpc-timeout`) and hands `user-agent` and `:authority` to applications
/// on receipt; here the call layer reports those itself.
pub fn is_reserved_key(key: &[u8]) -> bool {
    if key.first() == Some(&b':') {
        return true;
    }
    if key.starts_with(b"grpc-") {
        return !GRPC_KEYS_FOR_APPLICATIONS.contains(&key);
    }
    RESERVED_KEYS.contains(&key)
}

/// True for keys whose values are binary (`-bin`).
pub fn is_binary_key(key: &[u8]) -> bool {
    key.ends_with(BINARY_SUFFIX)
}

/// Checks a key: not empty, only `0-9 a-z _ - .`, not reserved.
pub fn validate_key(key: &[u8]) -> Result<(), MetadataError> {
    if key.is_empty() {
        return Err(MetadataError::EmptyKey);
    }
    if let Some(&byte) = key.iter().find(|&&b| !is_key_byte(b)) {
        return Err(MetadataError::InvalidKey {
            key: lossy(key),
            byte,
        });
    }
    if is_reserved_key(key) {
        return Err(MetadataError::ReservedKey { key: lossy(key) });
    }
    Ok(())
}

/// Checks a value for an ASCII (non-`-bin`) key: only `0x20..=0x7E`, and no space at
/// either end (PROTOCOL-HTTP2.md says such values "may be stripped", so they would not
/// arrive as sent). Empty values are allowed, as HTTP allows them.
pub fn validate_ascii_value(key: &[u8], value: &[u8]) -> Result<(), MetadataError> {
    if let Some(&byte) = value.iter().find(|&&b| !is_ascii_value_byte(b)) {
        return Err(MetadataError::InvalidValue {
            key: lossy(key),
            byte,
        });
    }
    if value.first() == Some(&b' ') || value.last() == Some(&b' ') {
        return Err(MetadataError::SurroundingWhitespace { key: lossy(key) });
    }
    Ok(())
}

/// Encodes a binary value for the wire: standard base64 without padding, as the spec
/// says senders should.
pub fn encode_binary_value(value: &[u8]) -> Bytes {
    Bytes::from(STANDARD_NO_PAD.encode(value))
}

/// Decodes one binary value from the wire, padded or not. Does not split on `,`: this is
/// for fields that carry exactly one value, such as `grpc-status-details-bin`.
pub fn decode_binary_value(value: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    LENIENT_BASE64.decode(value)
}

/// Why a metadata key or value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// The key is empty.
    EmptyKey,
    /// The key has a byte outside `0-9 a-z _ - .` (upper case and `:` included).
    InvalidKey {
        /// The key, lossily as text.
        key: String,
        /// The first offending byte.
        byte: u8,
    },
    /// The key belongs to gRPC or HTTP/2 ([`is_reserved_key`]).
    ReservedKey {
        /// The key.
        key: String,
    },
    /// An ASCII value has a byte outside `0x20..=0x7E`; binary data needs a `-bin` key.
    InvalidValue {
        /// The key the value was for.
        key: String,
        /// The first offending byte.
        byte: u8,
    },
    /// An ASCII value starts or ends with a space.
    SurroundingWhitespace {
        /// The key the value was for.
        key: String,
    },
    /// A received `-bin` value is not base64.
    InvalidBase64 {
        /// The key the value was for.
        key: String,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::EmptyKey => f.write_str("metadata key is empty"),
            MetadataError::InvalidKey { key, byte } => write!(
                f,
                "metadata key {key:?} has byte 0x{byte:02x}, outside [0-9a-z-_.]"
            ),
            MetadataError::ReservedKey { key } => {
                write!(f, "metadata key {key:?} is reserved for gRPC or HTTP/2")
            }
            MetadataError::InvalidValue { key, byte } => write!(
                f,
                "value of metadata key {key:?} has byte 0x{byte:02x}, outside printable ASCII \
                 (binary values need a key ending in -bin)"
            ),
            MetadataError::SurroundingWhitespace { key } => write!(
                f,
                "value of metadata key {key:?} starts or ends with a space"
            ),
            MetadataError::InvalidBase64 { key } => {
                write!(f, "value of metadata key {key:?} is not valid base64")
            }
        }
    }
}

impl std::error::Error for MetadataError {}

/// One key and value, in the order added.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// Validated, so ASCII.
    key: Bytes,
    /// For `-bin` keys the decoded bytes; otherwise validated printable ASCII.
    value: Bytes,
    /// Sent as a never-indexed HPACK literal.
    sensitive: bool,
}

/// Custom metadata: an ordered list of keys and values, where a key may repeat.
///
/// Every entry is valid: the mutators check keys and values, and
/// [`from_fields`](Metadata::from_fields) keeps only what could be sent back. Values of
/// `-bin` keys are held decoded. Keys are case-sensitive and always lower case, so a
/// lookup with upper-case letters finds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<Entry>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// The number of values (a key with three values counts three).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a value after all others, keeping any the key already has.
    pub fn append(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        let entry = Entry::checked(key, value.into(), None)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Like [`append`](Metadata::append), and the value is never put in an HPACK table
    /// (for credentials; `authorization` and `proxy-authorization` always are).
    pub fn append_sensitive(
        &mut self,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), MetadataError> {
        let entry = Entry::checked(key, value.into(), Some(true))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Sets the key's only value: replaces its first value in place and removes the
    /// others, or appends when it has none. Nothing changes if the key or value is invalid.
    pub fn insert(&mut self, key: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        let entry = Entry::checked(key, value.into(), None)?;
        match self.position(key) {
            Some(first) => {
                self.entries[first] = entry;
                let key = key.as_bytes();
                let mut index = 0;
                self.entries.retain(|e| {
                    index += 1;
                    index - 1 <= first || e.key != key
                });
            }
            None => self.entries.push(entry),
        }
        Ok(())
    }

    /// The key's first value (decoded, for `-bin` keys).
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.position(key).map(|i| &self.entries[i].value)
    }

    /// The key's first value as text, for ASCII keys; `None` for `-bin` keys.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        if is_binary_key(key.as_bytes()) {
            return None;
        }
        self.get(key)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// All the key's values, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.key == key.as_bytes())
            .map(|e| &e.value)
    }

    /// True when the key has at least one value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Removes all the key's values and returns the first.
    pub fn remove(&mut self, key: &str) -> Option<Bytes> {
        let first = self.position(key)?;
        let value = self.entries.remove(first).value;
        self.entries.retain(|e| e.key != key.as_bytes());
        Some(value)
    }

    /// Every key and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.entries.iter().map(|e| (e.key_str(), &e.value))
    }

    /// Appends the header fields that carry this metadata, in order: `-bin` values as
    /// unpadded base64, sensitive values marked so.
    pub fn to_headers(&self, out: &mut Vec<Header>) {
        out.reserve(self.entries.len());
        for e in &self.entries {
            let value = if is_binary_key(&e.key) {
                encode_binary_value(&e.value)
            } else {
                e.value.clone()
            };
            out.push(Header {
                name: e.key.clone(),
                value,
                sensitive: e.sensitive,
            });
        }
    }

    /// The metadata in received header fields.
    ///
    /// Fields that are not custom metadata are skipped: pseudo-headers, reserved keys
    /// ([`is_reserved_key`]) and keys with bytes outside `0-9 a-z _ - .`. ASCII values have
    /// spaces and tabs at either end stripped, and one with a byte outside
    /// `0x20..=0x7E` is dropped (the spec says not to fail the call for a value HTTP
    /// allows). ASCII values are not split on `,`.
    ///
    /// A `-bin` value is split on `,` (the spec requires it: an intermediary may have
    /// joined repeated fields) and each part decoded, padded or not, as its own value.
    /// A part that is not base64 fails the whole block with
    /// [`MetadataError::InvalidBase64`]: grpc-go ends the call with INTERNAL then.
    ///
    /// A field the peer sent never-indexed stays sensitive, so a proxy forwards it the
    /// same way.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = &'a Field>,
    ) -> Result<Metadata, MetadataError> {
        let mut md = Metadata::new();
        for field in fields {
            let key = &field.name;
            if key.is_empty() || is_reserved_key(key) || !ascii::all(key, is_key_byte) {
                continue;
            }
            let sensitive = field.never_indexed || SENSITIVE_KEYS.contains(&&key[..]);
            if is_binary_key(key) {
                for part in field.value.split(|&b| b == b',') {
                    let decoded = decode_binary_value(trim_ows(part))
                        .map_err(|_| MetadataError::InvalidBase64 { key: lossy(key) })?;
                    md.entries.push(Entry {
                        key: key.clone(),
                        value: Bytes::from(decoded),
                        sensitive,
                    });
                }
            } else {
                let value = trim_ows(&field.value);
                if !ascii::all(value, is_ascii_value_byte) {
                    continue;
                }
                md.entries.push(Entry {
                    key: key.clone(),
                    value: field.value.slice_ref(value),
                    sensitive,
                });
            }
        }
        Ok(md)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key.as_bytes())
    }
}

impl Entry {
    /// A validated entry; `sensitive` of `None` means "as the key implies".
    fn checked(key: &str, value: Bytes, sensitive: Option<bool>) -> Result<Entry, MetadataError> {
        let key = key.as_bytes();
        validate_key(key)?;
        if !is_binary_key(key) {
            validate_ascii_value(key, &value)?;
        }
        Ok(Entry {
            key: Bytes::copy_from_slice(key),
            value,
            sensitive: sensitive.unwrap_or_else(|| SENSITIVE_KEYS.contains(&key)),
        })
    }

    fn key_str(&self) -> &str {
        // Keys are validated to be ASCII before they are stored, so this never falls back.
        std::str::from_utf8(&self.key).unwrap_or_default()
    }
}

const fn is_key_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'-' | b'_' | b'.')
}

const fn is_ascii_value_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x7e)
}

/// Strips HTTP's optional whitespace (space and tab) at both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(name: &'static str, value: &'static [u8]) -> Field {
        Field {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value),
            never_indexed: false,
        }
    }

    fn pairs(md: &Metadata) -> Vec<(String, Vec<u8>)> {
        md.iter().map(|(k, v)| (k.to_owned(), v.to_vec())).collect()
    }

    #[test]
    fn key_validation_follows_the_header_name_grammar() {
        let table: [(&str, Result<(), MetadataError>); 12] = [
            ("x", Ok(())),
            ("my-key_1.v2", Ok(())),
            ("trace-bin", Ok(())),
            ("authorization", Ok(())),
            ("", Err(MetadataError::EmptyKey)),
            (
                "My-Key",
                Err(MetadataError::InvalidKey {
                    key: "My-Key".into(),
                    byte: b'M',
                }),
            ),
            (
                ":path",
                Err(MetadataError::InvalidKey {
                    key: ":path".into(),
                    byte: b':',
                }),
            ),
            (
                "a b",
                Err(MetadataError::InvalidKey {
                    key: "a b".into(),
                    byte: b' ',
                }),
            ),
            (
                "a/b",
                Err(MetadataError::InvalidKey {
                    key: "a/b".into(),
                    byte: b'/',
                }),
            ),
            (
                "é",
                Err(MetadataError::InvalidKey {
                    key: "é".into(),
                    byte: 0xc3,
                }),
            ),
            (
                "grpc-status",
                Err(MetadataError::ReservedKey {
                    key: "grpc-status".into(),
                }),
            ),
            ("te", Err(MetadataError::ReservedKey { key: "te".into() })),
        ];
        for (key, expected) in table {
            assert_eq!(validate_key(key.as_bytes()), expected, "{key:?}");
        }
    }

    #[test]
    fn reserved_keys_are_the_librarys_and_http2s() {
        let table: [(&str, bool); 26] = [
            (":authority", true),
            (":status", true),
            ("content-type", true),
            ("te", true),
            ("user-agent", true),
            ("host", true),
            ("connection", true),
            ("keep-alive", true),
            ("proxy-connection", true),
            ("transfer-encoding", true),
            ("upgrade", true),
            ("grpc-status", true),
            ("grpc-message", true),
            ("grpc-status-details-bin", true),
            ("grpc-timeout", true),
            ("grpc-encoding", true),
            ("grpc-accept-encoding", true),
            ("grpc-message-type", true),
            ("grpc-future-thing", true),
            ("grpc-previous-rpc-attempts", false),
            ("grpc-retry-pushback-ms", false),
            ("grpc-trace-bin", false),
            ("grpc-tags-bin", false),
            ("grpc", false),
            ("x-grpc-status", false),
            ("authorization", false),
        ];
        for (key, reserved) in table {
            assert_eq!(is_reserved_key(key.as_bytes()), reserved, "{key}");
        }
    }

    #[test]
    fn ascii_value_validation() {
        let table: [(&[u8], Result<(), MetadataError>); 8] = [
            (b"", Ok(())),
            (b"value", Ok(())),
            (b"a b ~!", Ok(())),
            (
                b" lead",
                Err(MetadataError::SurroundingWhitespace { key: "k".into() }),
            ),
            (
                b"trail ",
                Err(MetadataError::SurroundingWhitespace { key: "k".into() }),
            ),
            (
                b"tab\t",
                Err(MetadataError::InvalidValue {
                    key: "k".into(),
                    byte: b'\t',
                }),
            ),
            (
                b"line\nbreak",
                Err(MetadataError::InvalidValue {
                    key: "k".into(),
                    byte: b'\n',
                }),
            ),
            (
                b"\x80",
                Err(MetadataError::InvalidValue {
                    key: "k".into(),
                    byte: 0x80,
                }),
            ),
        ];
        for (value, expected) in table {
            assert_eq!(validate_ascii_value(b"k", value), expected, "{value:?}");
        }
    }

    #[test]
    fn binary_keys_take_any_bytes_and_ascii_keys_refuse_them() {
        let mut md = Metadata::new();
        assert_eq!(md.append("blob-bin", &b"\0\xff\n"[..]), Ok(()));
        assert_eq!(md.get("blob-bin").map(|v| &v[..]), Some(&b"\0\xff\n"[..]));
        assert_eq!(
            md.append("blob", &b"\0"[..]),
            Err(MetadataError::InvalidValue {
                key: "blob".into(),
                byte: 0
            })
        );
        assert_eq!(md.len(), 1);
    }

    #[test]
    fn append_keeps_order_and_repeats() {
        let mut md = Metadata::new();
        assert!(md.is_empty());
        for (k, v) in [("a", "1"), ("b", "2"), ("a", "3")] {
            assert_eq!(md.append(k, v), Ok(()));
        }
        assert_eq!(md.len(), 3);
        assert_eq!(md.get("a").map(|v| &v[..]), Some(&b"1"[..]));
        assert_eq!(md.get_str("a"), Some("1"));
        let all: Vec<&Bytes> = md.get_all("a").collect();
        assert_eq!(all, [&Bytes::from("1"), &Bytes::from("3")]);
        assert_eq!(
            pairs(&md),
            [
                ("a".to_owned(), b"1".to_vec()),
                ("b".to_owned(), b"2".to_vec()),
                ("a".to_owned(), b"3".to_vec()),
            ]
        );
        assert!(md.contains_key("b"));
        assert!(!md.contains_key("A"));
        assert_eq!(md.get("c"), None);
    }

    #[test]
    fn insert_replaces_every_value_in_the_first_ones_place() {
        let mut md = Metadata::new();
        for (k, v) in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("a", "5")] {
            assert_eq!(md.append(k, v), Ok(()));
        }
        assert_eq!(md.insert("a", "new"), Ok(()));
        assert_eq!(
            pairs(&md),
            [
                ("a".to_owned(), b"new".to_vec()),
                ("b".to_owned(), b"2".to_vec()),
                ("c".to_owned(), b"4".to_vec()),
            ]
        );
        assert_eq!(md.insert("d", "6"), Ok(()));
        assert_eq!(md.len(), 4);
        assert!(md.insert("a", "bad\n").is_err());
        assert_eq!(md.get_str("a"), Some("new"));
    }

    #[test]
    fn remove_takes_every_value_and_returns_the_first() {
        let mut md = Metadata::new();
        for (k, v) in [("a", "1"), ("b", "2"), ("a", "3")] {
            assert_eq!(md.append(k, v), Ok(()));
        }
        assert_eq!(md.remove("a"), Some(Bytes::from("1")));
        assert_eq!(md.remove("a"), None);
        assert_eq!(pairs(&md), [("b".to_owned(), b"2".to_vec())]);
    }

    #[test]
    fn get_str_is_none_for_binary_keys() {
        let mut md = Metadata::new();
        assert_eq!(md.append("x-bin", "text"), Ok(()));
        assert_eq!(md.get_str("x-bin"), None);
        assert_eq!(md.get("x-bin"), Some(&Bytes::from("text")));
    }

    #[test]
    fn to_headers_base64s_binary_values_without_padding_and_marks_credentials() {
        let mut md = Metadata::new();
        assert_eq!(md.append("x-id", "42"), Ok(()));
        assert_eq!(md.append("trace-bin", &b"\x01"[..]), Ok(()));
        assert_eq!(md.append("authorization", "Bearer t"), Ok(()));
        assert_eq!(md.append_sensitive("x-api-key", "k"), Ok(()));
        assert_eq!(md.append("empty-bin", Bytes::new()), Ok(()));
        let mut out = Vec::new();
        md.to_headers(&mut out);
        assert_eq!(
            out,
            [
                Header::new("x-id", "42"),
                Header::new("trace-bin", "AQ"),
                Header::sensitive("authorization", "Bearer t"),
                Header::sensitive("x-api-key", "k"),
                Header::new("empty-bin", ""),
            ]
        );
    }

    #[test]
    fn from_fields_skips_what_is_not_custom_metadata() {
        let fields = [
            field(":status", b"200"),
            field("content-type", b"application/grpc"),
            field("grpc-status", b"0"),
            field("grpc-message", b"ok"),
            field("grpc-status-details-bin", b"AAAA"),
            field("user-agent", b"grpc-go/1.0"),
            field("Upper", b"x"),
            field("", b"x"),
            field("x-ok", b"yes"),
            field("grpc-retry-pushback-ms", b"100"),
        ];
        let md = Metadata::from_fields(&fields);
        assert_eq!(
            md.map(|md| pairs(&md)),
            Ok(vec![
                ("x-ok".to_owned(), b"yes".to_vec()),
                ("grpc-retry-pushback-ms".to_owned(), b"100".to_vec()),
            ])
        );
    }

    #[test]
    fn from_fields_strips_surrounding_whitespace_and_drops_unprintable_ascii() {
        let fields = [
            field("a", b"  padded\t"),
            field("b", b"obs-text \x80"),
            field("c", b"tab\tinside"),
            field("d", b""),
            field("e", b"a, b"),
        ];
        let md = Metadata::from_fields(&fields);
        assert_eq!(
            md.map(|md| pairs(&md)),
            Ok(vec![
                ("a".to_owned(), b"padded".to_vec()),
                ("d".to_owned(), b"".to_vec()),
                ("e".to_owned(), b"a, b".to_vec()),
            ])
        );
    }

    #[test]
    fn binary_values_decode_padded_unpadded_and_comma_joined() {
        let table: [(&[u8], &[&[u8]]); 9] = [
            (b"", &[b""]),
            (b"AQ", &[b"\x01"]),
            (b"AQ==", &[b"\x01"]),
            (b"AQI", &[b"\x01\x02"]),
            (b"AQI=", &[b"\x01\x02"]),
            (b"AQID", &[b"\x01\x02\x03"]),
            // Go's decoder, like ours, ignores stray bits in the last symbol.
            (b"AR", &[b"\x01"]),
            (b"AQ,AQI=", &[b"\x01", b"\x01\x02"]),
            (b"AQ , AQID,", &[b"\x01", b"\x01\x02\x03", b""]),
        ];
        for (wire, values) in table {
            let fields = [Field {
                name: Bytes::from_static(b"x-bin"),
                value: Bytes::from_static(wire),
                never_indexed: false,
            }];
            let md = Metadata::from_fields(&fields);
            let got: Result<Vec<Vec<u8>>, _> =
                md.map(|md| md.get_all("x-bin").map(|v| v.to_vec()).collect());
            let expected: Vec<Vec<u8>> = values.iter().map(|v| v.to_vec()).collect();
            assert_eq!(got, Ok(expected), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn invalid_base64_fails_the_block() {
        for wire in [&b"A"[..], b"AQ=x", b"A*==", b"AQ===", b"AQ==,!"] {
            let fields = [
                field("ok", b"1"),
                Field {
                    name: Bytes::from_static(b"x-bin"),
                    value: Bytes::copy_from_slice(wire),
                    never_indexed: false,
                },
            ];
            assert_eq!(
                Metadata::from_fields(&fields),
                Err(MetadataError::InvalidBase64 {
                    key: "x-bin".into()
                }),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn never_indexed_fields_and_credentials_stay_sensitive_when_echoed() {
        let mut secret = field("x-token", b"s3cret");
        secret.never_indexed = true;
        let fields = [
            secret,
            field("authorization", b"Basic x"),
            field("plain", b"p"),
        ];
        let md = Metadata::from_fields(&fields);
        let mut out = Vec::new();
        if let Ok(md) = &md {
            md.to_headers(&mut out);
        }
        assert_eq!(
            out,
            [
                Header::sensitive("x-token", "s3cret"),
                Header::sensitive("authorization", "Basic x"),
                Header::new("plain", "p"),
            ]
        );
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        "[a-z0-9_.-]{1,12}".prop_filter("reserved", |k| !is_reserved_key(k.as_bytes()))
    }

    proptest! {
        #[test]
        fn binary_values_round_trip_through_base64(value in proptest::collection::vec(any::<u8>(), 0..100)) {
            let wire = encode_binary_value(&value);
            prop_assert!(!wire.contains(&b'='));
            prop_assert_eq!(decode_binary_value(&wire).ok(), Some(value.clone()));
            let padded = base64::engine::general_purpose::STANDARD.encode(&value);
            prop_assert_eq!(decode_binary_value(padded.as_bytes()).ok(), Some(value));
        }

        #[test]
        fn metadata_round_trips_through_header_fields(
            entries in proptest::collection::vec(
                (key_strategy(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..20)),
                0..8,
            )
        ) {
            let mut md = Metadata::new();
            for (key, binary, value) in entries {
                if binary {
                    let key = format!("{key}-bin");
                    if is_reserved_key(key.as_bytes()) {
                        continue;
                    }
                    prop_assert_eq!(md.append(&key, value), Ok(()));
                } else {
                    let text: String = value
                        .iter()
                        .map(|b| char::from(0x21 + b % 0x5e))
                        .collect();
                    prop_assert_eq!(md.append(&key, text), Ok(()));
                }
            }
            let mut headers = Vec::new();
            md.to_headers(&mut headers);
            let fields: Vec<Field> = headers
                .into_iter()
                .map(|h| Field { name: h.name, value: h.value, never_indexed: h.sensitive })
                .collect();
            prop_assert_eq!(Metadata::from_fields(&fields), Ok(md));
        }

        #[test]
        fn from_fields_never_panics(
            name in proptest::collection::vec(any::<u8>(), 0..12),
            value in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let fields = [Field { name: Bytes::from(name), value: Bytes::from(value), never_indexed: false }];
            let _ = Metadata::from_fields(&fields);
        }
    }
}
