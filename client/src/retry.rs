//! When to try a request again. Pure, so the policy is unit-tested.

use std::time::Duration;

const LONGEST: Duration = Duration::from_secs(3600);

/// Statuses after which the same request may succeed later.
pub(crate) fn retryable(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// The wait before retry number `attempt` (1 for the first retry): doubling
/// from `base` up to `max`, jittered into its upper half so that clients
/// told to wait at once do not all come back at once, and never shorter
/// than the server's `Retry-After`.
pub(crate) fn delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let doubled = base.saturating_mul(2u32.saturating_pow(attempt.min(30)));
    // No wait is longer than an hour, whatever the configuration says
    // (which also keeps the float arithmetic below in range).
    let capped = doubled.min(max).min(LONGEST);
    let jittered = capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(after) => jittered.max(after),
        None => jittered,
    }
}

/// Seconds from a `Retry-After` header (Attest sends delta-seconds).
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: f64 = value?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_and_honours_retry_after() {
        assert_eq!(delay(1, 100 * MS, 10_000 * MS, None, 1.0), 200 * MS);
        assert_eq!(delay(3, 100 * MS, 10_000 * MS, None, 1.0), 800 * MS);
        assert_eq!(delay(20, 100 * MS, 10_000 * MS, None, 1.0), 10_000 * MS);
        assert_eq!(delay(1, 100 * MS, 10_000 * MS, None, 0.0), 100 * MS);
        assert_eq!(
            delay(1, 100 * MS, 10_000 * MS, Some(Duration::from_secs(5)), 1.0),
            Duration::from_secs(5)
        );
        assert_eq!(
            delay(u32::MAX, Duration::MAX, Duration::MAX, None, 1.0),
            LONGEST
        );
    }

    #[test]
    fn reads_retry_after_seconds() {
        assert_eq!(parse_retry_after(Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(Some(" 1.5 ")), Some(1500 * MS));
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
        assert!(retryable(429) && retryable(503) && !retryable(400) && !retryable(500));
    }
}
