//! Connection backoff (grpc/grpc `doc/connection-backoff.md`), as grpc-go implements it
//! (`backoff.Config`, `internal/backoff.Exponential`, and the per-attempt connect
//! timeout of `addrConn.resetTransport`).
//!
//! Everything here is pure: the caller supplies the randomness for jitter as a `u64`
//! and owns the timers.
//!
//! # Using it for a subchannel
//!
//! At the start of each connection attempt, draw `d = backoff.next_delay(random)`.
//! Give the attempt [`ConnectParams::connect_timeout`]`(d)` to finish; if it fails, wait
//! `d` (from the failure) before the next attempt; once a connection is established,
//! [`Backoff::reset`]. This is grpc-go's order: one backoff value per attempt, used both
//! to stretch the connect timeout and as the wait after the attempt fails.

use std::fmt;
use std::time::Duration;

/// Parameters of the exponential backoff (grpc-go `backoff.Config`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The delay after the first failure (and the delay for retry number 0).
    pub base_delay: Duration,
    /// The factor each further failure multiplies the delay by; should be at least 1.
    pub multiplier: f64,
    /// The relative spread of the randomisation: a delay `d` becomes a value in
    /// `[d × (1 − jitter), d × (1 + jitter)]` (the top is reachable through rounding).
    pub jitter: f64,
    /// The upper bound of the unjittered delay.
    pub max_delay: Duration,
}

impl Default for BackoffConfig {
    /// connection-backoff.md's values, as grpc-go's `backoff.DefaultConfig`: 1 s base,
    /// × 1.6, ±20 % jitter, 120 s cap.
    fn default() -> Self {
        BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(120),
        }
    }
}

/// Why a [`BackoffConfig`] is not acceptable ([`BackoffConfig::validate`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BackoffConfigError {
    /// The multiplier is NaN, infinite, or below 1.0 (delays would shrink).
    InvalidMultiplier(f64),
    /// The jitter is NaN or outside `[0, 1]`.
    InvalidJitter(f64),
    /// The maximum delay is below the base delay.
    MaxBelowBase {
        /// The configured base delay.
        base_delay: Duration,
        /// The configured maximum delay.
        max_delay: Duration,
    },
}

impl fmt::Display for BackoffConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackoffConfigError::InvalidMultiplier(m) => {
                write!(f, "backoff multiplier {m} must be a finite number >= 1.0")
            }
            BackoffConfigError::InvalidJitter(j) => {
                write!(f, "backoff jitter {j} must be within [0, 1]")
            }
            BackoffConfigError::MaxBelowBase {
                base_delay,
                max_delay,
            } => write!(
                f,
                "backoff max delay {max_delay:?} is below the base delay {base_delay:?}"
            ),
        }
    }
}

impl std::error::Error for BackoffConfigError {}

/// How many multiplications [`BackoffConfig::delay`] performs one by one before it
/// switches to `powf` for the remaining retries. Far more than any sane configuration
/// needs to reach its maximum (1.01^1024 ≈ 3·10⁴), so the switch only matters for
/// hostile configurations (a multiplier barely above or at most 1 with a huge retry
/// count), where it bounds the work.
const STEPWISE_LIMIT: u32 = 1024;

impl BackoffConfig {
    /// Checks the configuration: the multiplier must be finite and at least 1.0, the
    /// jitter within `[0, 1]`, and the maximum delay at least the base delay.
    ///
    /// [`delay`](Self::delay) never panics even for configurations this rejects.
    pub fn validate(&self) -> Result<(), BackoffConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(BackoffConfigError::InvalidMultiplier(self.multiplier));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BackoffConfigError::InvalidJitter(self.jitter));
        }
        if self.max_delay < self.base_delay {
            return Err(BackoffConfigError::MaxBelowBase {
                base_delay: self.base_delay,
                max_delay: self.max_delay,
            });
        }
        Ok(())
    }

    /// The delay before the next attempt after `retries` consecutive failures, grpc-go's
    /// `Exponential.Backoff`.
    ///
    /// - `retries == 0` gives `base_delay` exactly: no jitter and no cap (as grpc-go).
    /// - Otherwise the base is multiplied by `multiplier` once per retry while it is
    ///   below `max_delay`, capped at `max_delay`, then scaled by
    ///   `1 + jitter × (2u − 1)` where `u = (random >> 11) / 2⁵³ ∈ [0, 1)`; a
    ///   uniformly random `random` gives a uniform `u`. The result is truncated to whole
    ///   nanoseconds (as grpc-go's conversion to `time.Duration`).
    ///
    /// Hostile configurations are clamped rather than panicking: a negative or NaN
    /// result is zero, a result beyond [`Duration::MAX`] is `Duration::MAX`, and after
    /// 1024 step-by-step multiplications the remaining retries are applied at once with
    /// `powf`, so `retries = u32::MAX` costs no more than a thousand multiplications.
    pub fn delay(&self, retries: u32, random: u64) -> Duration {
        if retries == 0 {
            return self.base_delay;
        }
        let max = self.max_delay.as_nanos() as f64;
        let mut backoff = self.base_delay.as_nanos() as f64;
        let mut left = retries;
        let stepwise_end = retries.saturating_sub(STEPWISE_LIMIT);
        while backoff < max && left > stepwise_end {
            backoff *= self.multiplier;
            left -= 1;
        }
        if backoff < max && left > 0 {
            backoff *= self.multiplier.powf(f64::from(left));
        }
        if backoff > max {
            backoff = max;
        }
        let u = (random >> 11) as f64 / (1u64 << 53) as f64;
        backoff *= 1.0 + self.jitter * (u * 2.0 - 1.0);
        nanos_to_duration(backoff)
    }
}

/// Converts a nanosecond count to a `Duration`, truncating; NaN and negatives become
/// zero and values beyond the range become [`Duration::MAX`].
fn nanos_to_duration(nanos: f64) -> Duration {
    if nanos.is_nan() || nanos <= 0.0 {
        Duration::ZERO
    } else if nanos < u64::MAX as f64 {
        // In range, so the cast truncates toward zero exactly like grpc-go's conversion.
        Duration::from_nanos(nanos as u64)
    } else {
        Duration::try_from_secs_f64(nanos / 1e9).unwrap_or(Duration::MAX)
    }
}

/// Parameters for establishing connections (grpc-go `grpc.ConnectParams`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnectParams {
    /// The backoff between connection attempts.
    pub backoff: BackoffConfig,
    /// The least time a connection attempt is given to complete.
    pub min_connect_timeout: Duration,
}

impl Default for ConnectParams {
    /// The default backoff and connection-backoff.md's 20 s minimum connect timeout.
    fn default() -> Self {
        ConnectParams {
            backoff: BackoffConfig::default(),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

impl ConnectParams {
    /// The time a connection attempt may take when its backoff delay (the value
    /// [`Backoff::next_delay`] returned for this attempt) is `backoff_delay`:
    /// `max(min_connect_timeout, backoff_delay)`, as grpc-go's `resetTransport`, so
    /// attempts get longer as failures accumulate.
    pub fn connect_timeout(&self, backoff_delay: Duration) -> Duration {
        self.min_connect_timeout.max(backoff_delay)
    }
}

/// The backoff state of one connection: a [`BackoffConfig`] and the count of
/// consecutive failures so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    config: BackoffConfig,
    retries: u32,
}

impl Backoff {
    /// A fresh state: the next delay is the base delay.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff { config, retries: 0 }
    }

    /// The configuration.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// The delay for the current retry count ([`BackoffConfig::delay`]), then counts one
    /// more retry (saturating at `u32::MAX`).
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let delay = self.config.delay(self.retries, random);
        self.retries = self.retries.saturating_add(1);
        delay
    }

    /// Forgets the failures, after a successful connection: the next delay is the base
    /// delay again.
    pub fn reset(&mut self) {
        self.retries = 0;
    }

    /// How many delays have been handed out since creation or the last reset.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `random` values giving u = 0 (factor 1 − jitter), u = 0.5 (factor exactly 1) and
    /// u just below 1 (factor just below 1 + jitter).
    const LOW: u64 = 0;
    const MID: u64 = 1 << 63;
    const HIGH: u64 = u64::MAX;

    fn close(actual: Duration, expected_secs: f64) -> bool {
        // Allow a nanosecond or two for floating-point rounding before truncation.
        (actual.as_secs_f64() - expected_secs).abs() <= 2e-9 * expected_secs.max(1.0)
    }

    #[test]
    fn defaults_match_grpc_go() {
        let c = BackoffConfig::default();
        assert_eq!(c.base_delay, Duration::from_secs(1));
        assert_eq!(c.multiplier, 1.6);
        assert_eq!(c.jitter, 0.2);
        assert_eq!(c.max_delay, Duration::from_secs(120));
        assert_eq!(c.validate(), Ok(()));
        let p = ConnectParams::default();
        assert_eq!(p.min_connect_timeout, Duration::from_secs(20));
        assert_eq!(p.backoff, c);
    }

    #[test]
    fn sequence_without_jitter() {
        // u = 0.5: 1.6^n seconds, by hand, capped at 120 s from n = 11 (1.6^11 ≈ 175.9).
        let expected = [
            1.0,
            1.6,
            2.56,
            4.096,
            6.5536,
            10.48576,
            16.777216,
            26.8435456,
            42.94967296,
            68.719476736,
            109.9511627776,
            120.0,
            120.0,
            120.0,
        ];
        let mut b = Backoff::new(BackoffConfig::default());
        for (n, &secs) in expected.iter().enumerate() {
            let d = b.next_delay(MID);
            assert!(close(d, secs), "retry {n}: {d:?} != {secs}s");
        }
        assert_eq!(b.retries(), expected.len() as u32);
    }

    #[test]
    fn sequence_with_fixed_randoms() {
        let c = BackoffConfig::default();
        // Retry 0 is the base delay, never jittered.
        assert_eq!(c.delay(0, LOW), Duration::from_secs(1));
        assert_eq!(c.delay(0, HIGH), Duration::from_secs(1));
        // u = 0: factor 0.8.
        assert!(close(c.delay(1, LOW), 1.6 * 0.8));
        assert!(close(c.delay(2, LOW), 2.56 * 0.8));
        assert!(close(c.delay(20, LOW), 120.0 * 0.8));
        // u = 0.75 (random = 3 << 62): factor 1 + 0.2 × 0.5 = 1.1.
        assert!(close(c.delay(1, 3 << 62), 1.6 * 1.1));
        assert!(close(c.delay(3, 3 << 62), 4.096 * 1.1));
        // u = 0.25: factor 0.9.
        assert!(close(c.delay(2, 1 << 62), 2.56 * 0.9));
        // u → 1: factor → 1.2 (it rounds to exactly 1.2 in f64).
        let top = c.delay(20, HIGH);
        assert!(
            top <= Duration::from_secs(144) && close(top, 144.0),
            "{top:?}"
        );
        // The low 11 bits of `random` are ignored.
        assert_eq!(c.delay(5, MID), c.delay(5, MID | 0x7ff));
    }

    #[test]
    fn caps_at_max() {
        let c = BackoffConfig {
            base_delay: Duration::from_millis(100),
            multiplier: 10.0,
            jitter: 0.0,
            max_delay: Duration::from_secs(5),
        };
        assert_eq!(c.delay(1, LOW), Duration::from_secs(1));
        assert_eq!(c.delay(2, LOW), Duration::from_secs(5));
        assert_eq!(c.delay(1000, HIGH), Duration::from_secs(5));
        assert_eq!(c.delay(u32::MAX, HIGH), Duration::from_secs(5));
    }

    #[test]
    fn reset_after_success_returns_to_base() {
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..5 {
            b.next_delay(MID);
        }
        assert!(b.next_delay(MID) > Duration::from_secs(10));
        b.reset();
        assert_eq!(b.retries(), 0);
        assert_eq!(b.next_delay(HIGH), Duration::from_secs(1));
        assert!(close(b.next_delay(MID), 1.6));
    }

    #[test]
    fn retries_saturate() {
        let mut b = Backoff::new(BackoffConfig::default());
        b.retries = u32::MAX;
        assert!(close(b.next_delay(MID), 120.0));
        assert_eq!(b.retries(), u32::MAX);
    }

    #[test]
    fn connect_timeout_is_max_of_minimum_and_backoff() {
        let p = ConnectParams::default();
        assert_eq!(
            p.connect_timeout(Duration::from_secs(1)),
            Duration::from_secs(20)
        );
        assert_eq!(
            p.connect_timeout(Duration::from_secs(42)),
            Duration::from_secs(42)
        );
        let mut b = Backoff::new(p.backoff);
        let timeouts: Vec<_> = (0..12)
            .map(|_| p.connect_timeout(b.next_delay(MID)))
            .collect();
        assert_eq!(timeouts[0], Duration::from_secs(20));
        assert!(close(timeouts[7], 26.8435456));
    }

    #[test]
    fn validate_rejects_bad_configs() {
        let ok = BackoffConfig::default();
        let with = |f: fn(&mut BackoffConfig)| {
            let mut c = ok;
            f(&mut c);
            c.validate()
        };
        assert!(matches!(
            with(|c| c.multiplier = f64::NAN),
            Err(BackoffConfigError::InvalidMultiplier(_))
        ));
        assert!(matches!(
            with(|c| c.multiplier = 0.99),
            Err(BackoffConfigError::InvalidMultiplier(_))
        ));
        assert!(matches!(
            with(|c| c.multiplier = -2.0),
            Err(BackoffConfigError::InvalidMultiplier(_))
        ));
        assert!(matches!(
            with(|c| c.multiplier = f64::INFINITY),
            Err(BackoffConfigError::InvalidMultiplier(_))
        ));
        assert_eq!(with(|c| c.multiplier = 1.0), Ok(()));
        assert_eq!(
            with(|c| c.jitter = 1.5),
            Err(BackoffConfigError::InvalidJitter(1.5))
        );
        assert_eq!(
            with(|c| c.jitter = -0.1),
            Err(BackoffConfigError::InvalidJitter(-0.1))
        );
        assert!(with(|c| c.jitter = f64::NAN).is_err());
        assert_eq!(with(|c| c.jitter = 0.0), Ok(()));
        assert_eq!(with(|c| c.jitter = 1.0), Ok(()));
        let err = with(|c| c.max_delay = Duration::from_millis(10)).unwrap_err();
        assert!(matches!(err, BackoffConfigError::MaxBelowBase { .. }));
        assert!(err.to_string().contains("below the base delay"), "{err}");
        assert_eq!(with(|c| c.max_delay = c.base_delay), Ok(()));
    }

    #[test]
    fn hostile_configs_do_not_panic() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ];
        let floats = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            0.5,
            1.0,
            1.0 + f64::EPSILON,
            1.6,
            1e300,
            f64::MAX,
        ];
        for &base_delay in &durations {
            for &max_delay in &durations {
                for &multiplier in &floats {
                    for &jitter in &floats {
                        let c = BackoffConfig {
                            base_delay,
                            multiplier,
                            jitter,
                            max_delay,
                        };
                        for retries in [0, 1, 2, 1023, 1024, 1025, u32::MAX] {
                            for random in [LOW, MID, HIGH] {
                                let _ = c.delay(retries, random);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn clamping_of_hostile_results() {
        let c = BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: f64::NAN,
            jitter: 0.2,
            max_delay: Duration::from_secs(10),
        };
        assert_eq!(c.delay(3, MID), Duration::ZERO);
        let c = BackoffConfig {
            jitter: 5.0,
            multiplier: 2.0,
            ..c
        };
        // Factor 1 + 5 × (−1) = −4: clamped to zero.
        assert_eq!(c.delay(3, LOW), Duration::ZERO);
        let c = BackoffConfig {
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            multiplier: 2.0,
            jitter: 1.0,
        };
        assert_eq!(c.delay(3, HIGH), Duration::MAX);
        // A multiplier of 1 with a huge retry count stays at the base, quickly.
        let c = BackoffConfig {
            multiplier: 1.0,
            jitter: 0.0,
            ..BackoffConfig::default()
        };
        assert_eq!(c.delay(u32::MAX, MID), Duration::from_secs(1));
        // A multiplier just above 1 still reaches the cap through the `powf` tail.
        let c = BackoffConfig {
            multiplier: 1.0001,
            ..c
        };
        assert_eq!(c.delay(u32::MAX, MID), Duration::from_secs(120));
    }

    proptest! {
        #[test]
        fn jitter_bounds(retries in 0u32..64, random: u64) {
            let c = BackoffConfig::default();
            let d = c.delay(retries, random);
            let unjittered = c.delay(retries, MID).as_secs_f64();
            let secs = d.as_secs_f64();
            prop_assert!(secs >= unjittered * 0.8 - 1e-9, "{secs} < 0.8 × {unjittered}");
            prop_assert!(secs <= unjittered * 1.2 + 1e-9, "{secs} > 1.2 × {unjittered}");
            prop_assert!(d <= c.max_delay.mul_f64(1.2));
        }

        #[test]
        fn delay_never_panics(
            base in any::<u64>(),
            max in any::<u64>(),
            multiplier in any::<f64>(),
            jitter in any::<f64>(),
            retries: u32,
            random: u64,
        ) {
            let c = BackoffConfig {
                base_delay: Duration::from_nanos(base),
                multiplier,
                jitter,
                max_delay: Duration::from_nanos(max),
            };
            let _ = c.delay(retries, random);
        }

        #[test]
        fn valid_configs_stay_within_bounds(
            base_ms in 0u64..10_000,
            extra_ms in 0u64..1_000_000,
            multiplier in 1.0f64..10.0,
            jitter in 0.0f64..=1.0,
            retries: u32,
            random: u64,
        ) {
            let c = BackoffConfig {
                base_delay: Duration::from_millis(base_ms),
                multiplier,
                jitter,
                max_delay: Duration::from_millis(base_ms + extra_ms),
            };
            prop_assert_eq!(c.validate(), Ok(()));
            let d = c.delay(retries, random);
            prop_assert!(d.as_secs_f64() <= c.max_delay.as_secs_f64() * (1.0 + jitter) + 1e-9);
        }
    }
}
