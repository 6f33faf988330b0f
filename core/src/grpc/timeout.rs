//! The `grpc-timeout` header (PROTOCOL-HTTP2.md, "Timeout"): at most eight ASCII digits
//! followed by one unit letter, `H`ours, `M`inutes, `S`econds, `m`illiseconds,
//! `u` (microseconds) or `n`anoseconds.

use std::fmt;
use std::time::Duration;

/// The largest value eight digits can write.
const MAX_VALUE: u64 = 99_999_999;

/// The units, finest first, with their length in nanoseconds.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// Writes a remaining time as a `grpc-timeout` value.
///
/// The finest unit whose count fits in eight digits is used, so the server sees the
/// deadline as precisely as the header allows, and the count is rounded up: a server
/// must never give up before the client does. A deadline already reached is `"0n"` (the
/// caller may still send it; the server then fails the call with DEADLINE_EXCEEDED).
/// Beyond 99,999,999 hours (about 11,400 years) the value is clamped to that.
pub fn encode_timeout(remaining: Duration) -> String {
    let nanos = remaining.as_nanos();
    if nanos == 0 {
        return "0n".to_owned();
    }
    for (unit, len) in UNITS {
        let count = nanos.div_ceil(u128::from(len));
        if count <= u128::from(MAX_VALUE) {
            return format!("{count}{}", char::from(unit));
        }
    }
    format!("{MAX_VALUE}H")
}

/// Why a `grpc-timeout` value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutError {
    /// The value was empty.
    Empty,
    /// The last byte is not one of `H M S m u n`.
    InvalidUnit,
    /// No digits before the unit.
    MissingDigits,
    /// More than the eight digits the spec allows.
    TooManyDigits,
    /// A byte before the unit is not an ASCII digit.
    InvalidDigit,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutError::Empty => "grpc-timeout is empty",
            TimeoutError::InvalidUnit => "grpc-timeout unit is not one of H M S m u n",
            TimeoutError::MissingDigits => "grpc-timeout has no digits",
            TimeoutError::TooManyDigits => "grpc-timeout has more than 8 digits",
            TimeoutError::InvalidDigit => "grpc-timeout value is not a decimal number",
        })
    }
}

impl std::error::Error for TimeoutError {}

/// Reads a received `grpc-timeout` value.
///
/// Accepts one to eight ASCII digits and a unit; zero is accepted (it is what an expired
/// deadline is sent as). No sign, spaces or other bytes. grpc-go answers a malformed
/// value with an INTERNAL status ("malformed grpc-timeout").
pub fn decode_timeout(value: &[u8]) -> Result<Duration, TimeoutError> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(TimeoutError::Empty);
    };
    let Some(&(_, unit_nanos)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(TimeoutError::InvalidUnit);
    };
    if digits.is_empty() {
        return Err(TimeoutError::MissingDigits);
    }
    if digits.len() > 8 {
        return Err(TimeoutError::TooManyDigits);
    }
    let mut count: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(TimeoutError::InvalidDigit);
        }
        count = count * 10 + u64::from(d - b'0');
    }
    // 99,999,999 hours is 3.6e20 ns, past u64 nanoseconds: build from whole seconds.
    let duration = if unit_nanos >= 1_000_000_000 {
        Duration::from_secs(count.saturating_mul(unit_nanos / 1_000_000_000))
    } else {
        Duration::from_nanos(count.saturating_mul(unit_nanos))
    };
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const US: u128 = 1_000;
    const MS: u128 = 1_000_000;
    const S: u128 = 1_000_000_000;
    const MIN: u128 = 60 * S;
    const HOUR: u128 = 3_600 * S;

    fn from_nanos(n: u128) -> Duration {
        Duration::new(
            u64::try_from(n / S).unwrap_or(u64::MAX),
            u32::try_from(n % S).unwrap_or(0),
        )
    }

    #[test]
    fn encoding_picks_the_finest_unit_whose_count_fits_in_eight_digits() {
        let table: [(u128, &str); 19] = [
            (0, "0n"),
            (1, "1n"),
            (1_500_000, "1500000n"),
            (99_999_999, "99999999n"),
            (100_000_000, "100000u"),
            (S, "1000000u"),
            (99_999_999 * US, "99999999u"),
            (100_000_000 * US, "100000m"),
            (99_999_999 * MS, "99999999m"),
            (100_000_000 * MS, "100000S"),
            (99_999_999 * S, "99999999S"),
            (100_000_000 * S, "1666667M"),
            (99_999_999 * MIN, "99999999M"),
            (100_000_000 * MIN, "1666667H"),
            (99_999_999 * HOUR, "99999999H"),
            // Past what eight digits of hours can say: clamped, not wrapped or widened.
            (100_000_000 * HOUR, "99999999H"),
            (u128::from(u64::MAX) * S + 999_999_999, "99999999H"),
            (3_600 * S, "3600000m"),
            (HOUR * 30_000, "1800000M"),
        ];
        for (n, wire) in table {
            assert_eq!(encode_timeout(from_nanos(n)), wire, "{n} ns");
        }
    }

    #[test]
    fn encoding_rounds_up_so_the_server_never_gives_up_first() {
        let table: [(u128, &str); 7] = [
            (100_000_001, "100001u"),
            (S + 1, "1000001u"),
            (99_999_999 * US + 1, "100000m"),
            (99_999_999 * MS + 1, "100000S"),
            (99_999_999 * S + 1, "1666667M"),
            (99_999_999 * MIN + 1, "1666667H"),
            (99_999_999 * HOUR - 1, "99999999H"),
        ];
        for (n, wire) in table {
            assert_eq!(encode_timeout(from_nanos(n)), wire, "{n} ns");
        }
    }

    #[test]
    fn every_unit_decodes_to_its_length() {
        let table: [(&[u8], Duration); 12] = [
            (b"0n", Duration::ZERO),
            (b"1n", Duration::from_nanos(1)),
            (b"1u", Duration::from_micros(1)),
            (b"1m", Duration::from_millis(1)),
            (b"1S", Duration::from_secs(1)),
            (b"1M", Duration::from_secs(60)),
            (b"1H", Duration::from_secs(3_600)),
            (b"00000007S", Duration::from_secs(7)),
            (b"99999999n", Duration::from_nanos(99_999_999)),
            (b"99999999u", Duration::from_micros(99_999_999)),
            (b"99999999m", Duration::from_millis(99_999_999)),
            (b"99999999H", Duration::from_secs(99_999_999 * 3_600)),
        ];
        for (wire, expected) in table {
            assert_eq!(
                decode_timeout(wire),
                Ok(expected),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        let table: [(&[u8], TimeoutError); 14] = [
            (b"", TimeoutError::Empty),
            (b"S", TimeoutError::MissingDigits),
            (b"1", TimeoutError::InvalidUnit),
            (b"10", TimeoutError::InvalidUnit),
            (b"1s", TimeoutError::InvalidUnit),
            (b"1h", TimeoutError::InvalidUnit),
            (b"1 S", TimeoutError::InvalidDigit),
            (b" 1S", TimeoutError::InvalidDigit),
            (b"1S ", TimeoutError::InvalidUnit),
            (b"+1S", TimeoutError::InvalidDigit),
            (b"-1S", TimeoutError::InvalidDigit),
            (b"1.5S", TimeoutError::InvalidDigit),
            (b"123456789n", TimeoutError::TooManyDigits),
            (b"000000000S", TimeoutError::TooManyDigits),
        ];
        for (wire, err) in table {
            assert_eq!(
                decode_timeout(wire),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    fn unit_length(wire: &str) -> u128 {
        match wire.as_bytes().last() {
            Some(b'n') => 1,
            Some(b'u') => US,
            Some(b'm') => MS,
            Some(b'S') => S,
            Some(b'M') => MIN,
            _ => HOUR,
        }
    }

    proptest! {
        #[test]
        fn encoding_round_trips_to_at_most_one_unit_more(n in 0u128..(99_999_999 * HOUR)) {
            let wire = encode_timeout(from_nanos(n));
            prop_assert!(wire.len() >= 2 && wire.len() <= 9, "{}", wire);
            let back = decode_timeout(wire.as_bytes());
            prop_assert!(back.is_ok(), "{}", wire);
            let back = back.unwrap_or_default().as_nanos();
            prop_assert!(back >= n, "{} decoded to {} < {}", wire, back, n);
            prop_assert!(back - n < unit_length(&wire), "{} is more than a unit above {}", wire, n);
        }

        #[test]
        fn small_durations_round_trip_exactly(n in 0u128..100_000_000) {
            let wire = encode_timeout(from_nanos(n));
            prop_assert_eq!(decode_timeout(wire.as_bytes()), Ok(from_nanos(n)));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(wire in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = decode_timeout(&wire);
        }

        #[test]
        fn any_eight_digit_value_with_a_unit_decodes(count in 0u64..=99_999_999, unit in 0usize..6) {
            let (letter, len) = UNITS[unit];
            let wire = format!("{count}{}", char::from(letter));
            let back = decode_timeout(wire.as_bytes());
            prop_assert_eq!(back.map(|d| d.as_nanos()), Ok(u128::from(count) * u128::from(len)));
        }
    }
}
