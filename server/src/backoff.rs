//! The one retry delay policy: start at `initial`, double after every
//! failed attempt up to `max`, start again after a success. Each wait is
//! jittered over the upper half of the delay ("full jitter on half"), so
//! processes that failed together (every writer when ClickHouse restarts,
//! every server when a webhook receiver is down) do not retry together,
//! while no wait is shorter than half the policy's delay.
//!
//! Used by the writer (inserts, dead letters, the schema registry), the
//! spool's forwarder, webhook delivery and read routing (a ClickHouse node
//! out of rotation, `store::nodes`).

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// The delay before jitter that the next wait is drawn from.
    next: Duration,
    jitter: bool,
}

impl Backoff {
    /// `initial` is clamped to `max`, so a misordered pair still waits.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.min(max);
        Backoff {
            initial,
            max,
            next: initial,
            jitter: true,
        }
    }

    /// The same policy with waits of exactly the delay. Only for a loop
    /// that runs once per process against its own resource (the spool's
    /// forwarder), where there is nobody to desynchronise from.
    pub fn without_jitter(self) -> Backoff {
        Backoff {
            jitter: false,
            ..self
        }
    }

    /// How long to wait before the next attempt; each call doubles the
    /// delay behind the next one, up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = delay.saturating_mul(2).min(self.max);
        if self.jitter {
            jitter(delay)
        } else {
            delay
        }
    }

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// A wait drawn uniformly from `[delay / 2, delay]`.
fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half.saturating_add(Duration::from_millis(
        rand::thread_rng().gen_range(0..=spread),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let d = Duration::from_millis(400);
        for _ in 0..100 {
            let j = jitter(d);
            assert!(j >= d / 2 && j <= d, "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn doubles_up_to_max_and_resets() {
        let mut b = Backoff::new(200 * MS, 1000 * MS).without_jitter();
        let waits: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), 200 * MS);
    }

    #[test]
    fn jittered_waits_follow_the_same_delays() {
        let mut b = Backoff::new(200 * MS, 1000 * MS);
        for delay in [200, 400, 800, 1000, 1000] {
            let wait = b.next_delay();
            let delay = delay * MS;
            assert!(wait >= delay / 2 && wait <= delay, "{wait:?} for {delay:?}");
        }
    }

    #[test]
    fn never_overflows_and_clamps_initial() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(1)).without_jitter();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        let mut huge = Backoff::new(Duration::MAX / 2, Duration::MAX).without_jitter();
        for _ in 0..4 {
            assert!(huge.next_delay() <= Duration::MAX);
        }
    }
}
