//! How many dead letters wait, cheaply enough for the pipeline page's
//! every collection: no record of the topic is read to count them.
//!
//! The inbox ([`super::DeadLetterInbox::read`]) reads every record of the
//! dead-letter topic between each partition's low and high watermark and
//! counts those without a row in `attest_dead_letter_actions`. Here the
//! same figure comes from the broker's watermarks (the records retained
//! per partition, `high - low`) minus the handled letters whose offsets lie
//! in `[low, high)` (one grouped ClickHouse query on the table's sorting
//! key, `Store::handled_dead_letters_within`). Handled letters older than
//! `low` have left the topic by retention and are not subtracted, so the
//! figure never goes negative after a purge.
//!
//! Why the two agree: `high - low` is the number of records only when
//! every offset in the range holds one. Attest creates the dead-letter
//! topic itself (`produce::ensure_topics`) with the broker's default
//! `cleanup.policy=delete`, and the writer produces to it with an
//! idempotent, non-transactional producer: no transaction markers take
//! offsets, and retention removes whole segments from the start, so the
//! range stays dense. It would overcount (by the gaps) if an operator made
//! the topic compacted or a transactional producer wrote to it; and the
//! two readings are a moment apart, so a letter that arrives or is handled
//! between them shows in the next collection. The inbox is exact; this is
//! its count as of the last collection.

use app::pipeline_model::DeadLettersHealth;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

use crate::store::{HandledWithin, RetainedRange};

/// One partition's waiting letters, and the offset of the first (oldest)
/// of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionWaiting {
    pub partition: i32,
    pub waiting: u64,
    /// `None` when nothing waits.
    pub first_waiting: Option<i64>,
}

/// Blocking: each partition's retained range of `topic`, from `metadata`
/// the caller already has and one watermark question per partition.
/// `Err` names what could not be read.
pub fn retained(
    consumer: &BaseConsumer,
    metadata: &Metadata,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<Vec<RetainedRange>, String> {
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(format!("topic {topic} is not in the cluster's metadata"));
    };
    let mut ranges = Vec::new();
    for p in found.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(|error| format!("{topic} partition {}: offsets not read: {error}", p.id()))?;
        ranges.push(RetainedRange {
            partition: p.id(),
            low,
            high,
        });
    }
    ranges.sort_by_key(|r| r.partition);
    Ok(ranges)
}

/// Per retained partition: its records minus its handled letters in range.
/// A handled figure for a partition not in `retained` is ignored, and one
/// larger than the range (it cannot be, offsets being distinct; a broker
/// answer is not trusted) leaves 0, never an underflow.
pub fn waiting_per_partition(
    retained: &[RetainedRange],
    handled: &[HandledWithin],
) -> Vec<PartitionWaiting> {
    retained
        .iter()
        .map(|r| {
            let records = u64::try_from(r.high.saturating_sub(r.low)).unwrap_or(0);
            let h = handled.iter().find(|h| h.dlq_partition == r.partition);
            let waiting = records.saturating_sub(h.map_or(0, |h| h.handled));
            // The oldest waiting letter: `low` unless it is handled; then
            // the first offset after the run of handled ones from `low`.
            let first = match h {
                Some(h) if h.handled > 0 && h.lowest <= r.low => {
                    let run = i64::try_from(h.run).unwrap_or(i64::MAX);
                    h.lowest.saturating_add(run)
                }
                _ => r.low,
            };
            PartitionWaiting {
                partition: r.partition,
                waiting,
                first_waiting: (waiting > 0 && first >= r.low && first < r.high).then_some(first),
            }
        })
        .collect()
}

/// The page's figure from the partitions' and the oldest waiting letter's
/// timestamp (epoch ms), if it was read.
pub fn health(
    topic: &str,
    partitions: &[PartitionWaiting],
    oldest_ms: Option<i64>,
    now_ms: i64,
) -> DeadLettersHealth {
    let waiting = partitions
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(p.waiting));
    DeadLettersHealth {
        topic: topic.to_owned(),
        waiting: Some(waiting),
        oldest_age_ms: oldest_ms
            .filter(|_| waiting > 0)
            .map(|ts| now_ms.saturating_sub(ts).max(0)),
        problems: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(partition: i32, low: i64, high: i64) -> RetainedRange {
        RetainedRange {
            partition,
            low,
            high,
        }
    }

    fn handled(partition: i32, handled: u64, lowest: i64, run: u64) -> HandledWithin {
        HandledWithin {
            dlq_partition: partition,
            handled,
            lowest,
            run,
        }
    }

    #[test]
    fn waiting_is_retained_minus_handled_per_partition() {
        let retained = [range(0, 0, 3), range(1, 10, 15), range(2, 7, 7)];
        // Partition 0: nothing handled; 1: offsets 10, 11 and 13 handled;
        // 2: empty; 5: not a partition of the topic (any more).
        let found =
            waiting_per_partition(&retained, &[handled(1, 3, 10, 2), handled(5, 40, 0, 40)]);
        assert_eq!(
            found,
            [
                PartitionWaiting {
                    partition: 0,
                    waiting: 3,
                    first_waiting: Some(0)
                },
                PartitionWaiting {
                    partition: 1,
                    waiting: 2,
                    first_waiting: Some(12)
                },
                PartitionWaiting {
                    partition: 2,
                    waiting: 0,
                    first_waiting: None
                },
            ]
        );
        let page = health("p.dead_letters", &found, Some(1_000), 61_000);
        assert_eq!(page.waiting, Some(5));
        assert_eq!(page.oldest_age_ms, Some(60_000));
    }

    #[test]
    fn the_oldest_waiting_letter_follows_the_handled_ones() {
        // Handled from a later offset: the first retained one waits.
        let found = waiting_per_partition(&[range(0, 4, 9)], &[handled(0, 2, 6, 2)]);
        assert_eq!(found[0].first_waiting, Some(4));
        assert_eq!(found[0].waiting, 3);
        // Handled from the start up to the end: nothing waits.
        let found = waiting_per_partition(&[range(0, 4, 9)], &[handled(0, 5, 4, 5)]);
        assert_eq!((found[0].waiting, found[0].first_waiting), (0, None));
        let page = health("t", &found, Some(1), 2);
        assert_eq!((page.waiting, page.oldest_age_ms), (Some(0), None));
    }

    #[test]
    fn hostile_figures_do_not_underflow() {
        // More handled than retained; a range the wrong way round.
        let found = waiting_per_partition(
            &[range(0, 0, 2), range(1, 9, 3)],
            &[handled(0, 7, 0, 7), handled(1, 1, 3, 1)],
        );
        assert_eq!(found.iter().map(|p| p.waiting).collect::<Vec<_>>(), [0, 0]);
        assert!(found.iter().all(|p| p.first_waiting.is_none()));
        let partitions = [
            PartitionWaiting {
                partition: 0,
                waiting: u64::MAX,
                first_waiting: Some(0),
            },
            PartitionWaiting {
                partition: 1,
                waiting: 1,
                first_waiting: Some(0),
            },
        ];
        let page = health("t", &partitions, Some(i64::MAX), i64::MIN);
        assert_eq!(page.waiting, Some(u64::MAX));
        assert_eq!(page.oldest_age_ms, Some(0), "a clock behind the broker's");
    }
}
