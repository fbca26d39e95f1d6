//! When and how long the JumpCloud client waits before repeating a call: exponential backoff
//! with full jitter under a cap, and `Retry-After` (SPEC §5).

use std::time::{Duration, SystemTime};

use rand::Rng as _;

/// The longest `Retry-After` honoured; a longer one is cut to this (a misconfigured proxy must
/// not park the enrollment for a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// When and how often a failed call is retried inside the client. The engine retries
/// [`JcError::Transient`] on its own afterwards, so the client gives up early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter); doubles each retry.
    pub base: Duration,
    /// Upper bound of one backoff (SPEC §5: 60 s).
    pub cap: Duration,
    /// Give up when the next wait would end later than this after the call started.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// For one Mac's enrollment: 6 attempts within 2 minutes, then the engine takes over.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// For many Macs sharing one tenant's rate limit: slower start, more patience.
    pub fn fleet() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(600),
        }
    }

    /// For tests against local servers: millisecond backoffs.
    pub fn fast() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(10),
            max_elapsed: Duration::from_secs(60),
        }
    }

    /// The upper bound of the wait before retry number `retry` (0-based): `min(cap, base·2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// "Full jitter" backoff: uniformly random in `[0, ceiling(retry)]`, which spreads a fleet
    /// of clients instead of having them retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        uniform_up_to(self.ceiling(retry))
    }

    /// The wait before retry number `retry` after the server said `Retry-After: retry_after`:
    /// never less than `retry_after`, plus a random share of up to `min(retry_after,
    /// ceiling(retry))`. A rate-limited API tells every client it throttled in the same second
    /// the same whole number of seconds; honouring it to the millisecond brings them all back
    /// at once, where most are throttled again while the tokens of the quiet time in between
    /// are lost (a full bucket does not fill further). The jitter spreads them over the window
    /// after the one they were given.
    pub fn after_retry_after(&self, retry_after: Duration, retry: u32) -> Duration {
        retry_after + uniform_up_to(retry_after.min(self.ceiling(retry)))
    }
}

/// Uniformly random in `[0, max]`.
fn uniform_up_to(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::rng().random_range(0..=nanos))
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past means "now". `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(0), Duration::from_millis(500));
        assert_eq!(p.ceiling(3), Duration::from_secs(4));
        assert_eq!(p.ceiling(20), Duration::from_secs(60));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(60));
        let samples: Vec<Duration> = (0..200).map(|_| p.backoff(4)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_secs(8)));
        // Full jitter spreads: not all samples are in the top half.
        assert!(samples.iter().any(|d| *d < Duration::from_secs(4)));
        assert!(samples.iter().any(|d| *d >= Duration::from_secs(4)));
    }

    #[test]
    fn retry_after_is_a_lower_bound_with_bounded_jitter() {
        let p = RetryPolicy::fleet();
        let window = Duration::from_secs(1);
        let waits: Vec<Duration> = (0..200).map(|_| p.after_retry_after(window, 0)).collect();
        assert!(waits.iter().all(|w| *w >= window && *w <= 2 * window));
        // Spread, not lockstep: some come back early in the next second, some late.
        assert!(waits.iter().any(|w| *w < Duration::from_millis(1500)));
        assert!(waits.iter().any(|w| *w >= Duration::from_millis(1500)));
        // The jitter is bounded by the backoff ceiling too (millisecond test policies).
        let fast = RetryPolicy::fast();
        let w = fast.after_retry_after(window, 0);
        assert!(w >= window && w <= window + fast.ceiling(0), "{w:?}");
        assert_eq!(p.after_retry_after(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_795_595_400);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 08:30:42 GMT", now),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
