//! Which windows of one rule and group value fire, from per-minute counts.
//!
//! "At least N events within W minutes" is read over whole minutes: a
//! window is W consecutive minutes (epoch minutes, UTC), and it holds the
//! events that occurred in them. Scanning the minutes in order, the first
//! minute whose trailing W minutes reach N fires; the firing starts at the
//! first minute of those W that has an event, so it covers exactly the
//! events it counted. After a firing, nothing before `start + W` counts
//! again: a burst longer than its window fires once per W minutes, not once
//! per minute, and a burst that spans two evaluation ticks fires once,
//! because the second tick starts after the first one's `until`.
//!
//! The result depends only on the counts and on `from` (where counting may
//! start), never on when the evaluation ran: two evaluations that see the
//! same events name the same firing.

use std::collections::VecDeque;

pub const MINUTE_MS: i64 = 60_000;

/// A window that reached the threshold, in epoch minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    /// The first minute counted.
    pub start: i64,
    /// The minute in which the count reached the threshold (counted).
    pub end: i64,
    /// Events counted in `start..=end`.
    pub events: u64,
    /// Nothing of this rule and value fires again before this minute.
    pub until: i64,
}

impl Crossing {
    /// `(from, to)` in epoch ms, both inclusive, as Search takes them.
    pub fn bounds_ms(&self) -> (i64, i64) {
        (
            self.start.saturating_mul(MINUTE_MS),
            self.end
                .saturating_add(1)
                .saturating_mul(MINUTE_MS)
                .saturating_sub(1),
        )
    }

    pub fn until_ms(&self) -> i64 {
        self.until.saturating_mul(MINUTE_MS)
    }
}

/// The epoch minute of `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS)
}

/// The crossings in `counts` (epoch minute, events; ascending minutes, one
/// entry per minute) for `threshold` events within `window` minutes,
/// counting only minutes from `from` on.
pub fn crossings(counts: &[(i64, u64)], threshold: u64, window: i64, from: i64) -> Vec<Crossing> {
    let window = window.max(1);
    let threshold = threshold.max(1);
    let mut found = Vec::new();
    let mut from = from;
    let mut held: VecDeque<(i64, u64)> = VecDeque::new();
    let mut sum: u64 = 0;
    for &(minute, events) in counts {
        if minute < from || events == 0 {
            continue;
        }
        // Minutes that fell out of the trailing window.
        let oldest = minute.saturating_sub(window - 1).max(from);
        while let Some(&(m, n)) = held.front() {
            if m >= oldest {
                break;
            }
            sum = sum.saturating_sub(n);
            held.pop_front();
        }
        held.push_back((minute, events));
        sum = sum.saturating_add(events);
        if sum >= threshold {
            let start = held.front().map_or(minute, |&(m, _)| m);
            let until = start.saturating_add(window);
            found.push(Crossing {
                start,
                end: minute,
                events: sum,
                until,
            });
            from = until;
            held.clear();
            sum = 0;
        }
    }
    found
}

/// The firing's id: the same rule, value and start always give the same
/// id, whichever process computes it (hex of SHA-256, 32 characters).
pub fn firing_id(rule_id: &str, group_value: &str, start_minute: i64) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    // Lengths first, so no two (rule, value) pairs share a byte string.
    for part in [rule_id.as_bytes(), group_value.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(start_minute.to_be_bytes());
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_below_the_threshold_never_fires() {
        assert!(crossings(&[(100, 3), (101, 3), (102, 3)], 10, 5, 0).is_empty());
        // Enough events in all, but never within one window.
        let spread = [(100, 5), (105, 5), (110, 5)];
        assert!(crossings(&spread, 10, 5, 0).is_empty());
    }

    #[test]
    fn a_burst_fires_once_at_the_minute_it_crosses() {
        let found = crossings(&[(100, 4), (101, 4), (103, 4), (104, 40)], 10, 5, 0);
        assert_eq!(
            found,
            [Crossing {
                start: 100,
                end: 103,
                events: 12,
                until: 105
            }]
        );
        // Minute 104 is before `until`: the same burst, no second firing.
        assert_eq!(found[0].bounds_ms(), (6_000_000, 6_239_999));
        assert_eq!(found[0].until_ms(), 6_300_000);
    }

    #[test]
    fn the_window_slides_and_drops_old_minutes() {
        // 6 at 100 and 6 at 105: 105 - 100 = 5 minutes apart, not within
        // a 5-minute window (100..=104).
        assert!(crossings(&[(100, 6), (105, 6)], 10, 5, 0).is_empty());
        // 104 is within it.
        let found = crossings(&[(100, 6), (104, 6)], 10, 5, 0);
        assert_eq!((found[0].start, found[0].end), (100, 104));
        // The window starts at its first counted minute, not at end - W + 1.
        let found = crossings(&[(98, 1), (103, 6), (104, 6)], 10, 5, 0);
        assert_eq!(
            (found[0].start, found[0].end, found[0].events),
            (103, 104, 12)
        );
    }

    #[test]
    fn a_long_burst_fires_once_per_window() {
        let steady: Vec<(i64, u64)> = (0..12).map(|m| (1_000 + m, 20)).collect();
        let found = crossings(&steady, 10, 5, 0);
        let starts: Vec<i64> = found.iter().map(|c| c.start).collect();
        assert_eq!(starts, [1_000, 1_005, 1_010]);
    }

    /// Two ticks: the first sees part of the burst, the second all of it
    /// and starts from what the first stored. One firing, the same one.
    #[test]
    fn a_burst_spanning_two_ticks_fires_once() {
        let all = [(200, 6), (201, 6), (202, 6)];
        // Tick 1, during minute 201: 12 events so far, it fires.
        let first = crossings(&all[..2], 10, 5, 0);
        assert_eq!(first.len(), 1);
        // Tick 2 counts from the first's `until`: nothing more fires.
        assert!(crossings(&all, 10, 5, first[0].until).is_empty());
        // Without the stored `until`, tick 2 finds the same start, so the
        // same firing id: storage keeps it once.
        let again = crossings(&all, 10, 5, 0);
        assert_eq!(again[0].start, first[0].start);
        assert_eq!(
            firing_id("r", "mallory", again[0].start),
            firing_id("r", "mallory", first[0].start)
        );
        // A tick whose look-back starts mid-burst cannot re-fire it.
        assert!(crossings(&all, 10, 5, 201.max(first[0].until)).is_empty());
    }

    #[test]
    fn counting_starts_at_from() {
        assert!(crossings(&[(100, 9), (101, 9)], 10, 5, 101).is_empty());
        assert_eq!(crossings(&[(100, 9), (101, 9)], 10, 5, 100).len(), 1);
    }

    #[test]
    fn a_window_of_one_minute_and_a_threshold_of_one() {
        let found = crossings(&[(7, 1), (8, 1)], 1, 1, 0);
        assert_eq!(found.len(), 2);
        assert_eq!((found[1].start, found[1].until), (8, 9));
    }

    #[test]
    fn firing_ids_are_stable_and_distinct() {
        let id = firing_id("rule-1", "mallory", 29_000_000);
        assert_eq!(id.len(), 32);
        assert_eq!(id, firing_id("rule-1", "mallory", 29_000_000));
        assert_ne!(id, firing_id("rule-1", "mallory", 29_000_001));
        assert_ne!(id, firing_id("rule-1", "alice", 29_000_000));
        assert_ne!(firing_id("ab", "c", 1), firing_id("a", "bc", 1));
    }

    #[test]
    fn minutes_of_instants_before_1970_round_down() {
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 1);
        assert_eq!(minute_of(-1), -1);
    }
}
