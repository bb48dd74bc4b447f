//! One batch of rows on its way to ClickHouse, and the Kafka offsets that
//! become safe to commit once it is inserted.

use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};

use crate::store::EventRow;

/// The Kafka message a row was decoded from, kept (moved, not copied) so
/// that a row ClickHouse rejects can be dead-lettered exactly as it arrived.
pub struct Origin(OwnedMessage);

impl Origin {
    pub fn new(message: OwnedMessage) -> Origin {
        Origin(message)
    }

    pub fn topic(&self) -> &str {
        self.0.topic()
    }

    pub fn partition(&self) -> i32 {
        self.0.partition()
    }

    pub fn offset(&self) -> i64 {
        self.0.offset()
    }

    pub fn key(&self) -> &[u8] {
        self.0.key().unwrap_or_default()
    }

    pub fn payload(&self) -> &[u8] {
        self.0.payload().unwrap_or_default()
    }

    fn heap_bytes(&self) -> usize {
        self.payload().len() + self.key().len() + self.topic().len()
    }

    #[cfg(test)]
    pub(crate) fn for_test(
        topic: &str,
        partition: i32,
        offset: i64,
        key: &[u8],
        payload: Vec<u8>,
    ) -> Origin {
        Origin(OwnedMessage::new(
            Some(payload),
            Some(key.to_vec()),
            topic.to_owned(),
            rdkafka::message::Timestamp::NotAvailable,
            partition,
            offset,
            None,
        ))
    }
}

/// A message that becomes no row: it goes to the dead-letter topic with
/// the batch's flush, before the batch's offsets are committed.
pub struct SetAside {
    /// Stable reason code (`attest.dlq.reason`).
    pub reason: &'static str,
    /// Why, for a human (`attest.dlq.detail`).
    pub detail: String,
    pub origin: Origin,
}

#[derive(Default)]
pub struct Batch {
    set_aside: Vec<SetAside>,
    rows: Vec<EventRow>,
    /// `origins[i]` is where `rows[i]` came from.
    origins: Vec<Origin>,
    /// Per (topic, partition), sorted: the offset of the next message to
    /// read, which is what Kafka expects as a committed offset (last
    /// consumed + 1). A sorted list, not a map keyed by an owned topic
    /// name: a batch sees a handful of partitions and every message looks
    /// its own up.
    next_offsets: Vec<(String, i32, i64)>,
    /// `first_offsets[i]`: the first offset consumed of `next_offsets[i]`'s
    /// partition (what a digest's range starts at).
    first_offsets: Vec<i64>,
    opened: Option<Instant>,
    /// What the rows and their origins hold on the heap, roughly: the
    /// batch's memory, bounded by `writer.max_bytes`.
    bytes: usize,
}

impl Batch {
    pub fn push(&mut self, row: EventRow, origin: Origin) {
        self.consumed(origin.topic(), origin.partition(), origin.offset());
        self.bytes = self
            .bytes
            .saturating_add(row.heap_bytes())
            .saturating_add(origin.heap_bytes());
        self.rows.push(row);
        self.origins.push(origin);
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A message that becomes no row; the commit moves past it once the
    /// flush has dead-lettered it.
    pub fn set_aside(&mut self, reason: &'static str, detail: String, origin: Origin) {
        self.consumed(origin.topic(), origin.partition(), origin.offset());
        self.bytes = self
            .bytes
            .saturating_add(origin.heap_bytes() + detail.len());
        self.set_aside.push(SetAside {
            reason,
            detail,
            origin,
        });
    }

    pub fn set_aside_letters(&self) -> &[SetAside] {
        &self.set_aside
    }

    /// Records a message that produced no row (it was dead-lettered), so the
    /// commit moves past it.
    pub fn consumed(&mut self, topic: &str, partition: i32, offset: i64) {
        self.opened.get_or_insert_with(Instant::now);
        let next = offset.saturating_add(1);
        match self
            .next_offsets
            .binary_search_by(|(t, p, _)| (t.as_str(), *p).cmp(&(topic, partition)))
        {
            Ok(at) => {
                let known = &mut self.next_offsets[at].2;
                *known = (*known).max(next);
                if let Some(first) = self.first_offsets.get_mut(at) {
                    *first = (*first).min(offset);
                }
            }
            Err(at) => {
                self.next_offsets
                    .insert(at, (topic.to_owned(), partition, next));
                self.first_offsets.insert(at, offset);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.next_offsets.is_empty()
    }

    pub fn rows(&self) -> &[EventRow] {
        &self.rows
    }

    pub fn origin(&self, row: usize) -> Option<&Origin> {
        self.origins.get(row)
    }

    pub fn offsets(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.next_offsets
            .iter()
            .map(|(t, p, o)| (t.as_str(), *p, *o))
    }

    /// Per partition: (topic, partition, first offset, last offset)
    /// consumed, rows and dead letters alike.
    pub fn ranges(&self) -> impl Iterator<Item = (&str, i32, i64, i64)> {
        self.next_offsets
            .iter()
            .zip(&self.first_offsets)
            .map(|((t, p, next), first)| (t.as_str(), *p, *first, next.saturating_sub(1)))
    }

    /// How long until the batch is due by age; `None` while it is empty.
    pub fn time_left(&self, max_age: Duration, now: Instant) -> Option<Duration> {
        self.opened
            .map(|opened| max_age.saturating_sub(now.duration_since(opened)))
    }

    /// Due when full (by rows or by bytes), or when its oldest message has
    /// waited `max_age`.
    pub fn should_flush(
        &self,
        max_rows: usize,
        max_bytes: usize,
        max_age: Duration,
        now: Instant,
    ) -> bool {
        self.rows.len() >= max_rows
            || self.bytes >= max_bytes
            || self
                .time_left(max_age, now)
                .is_some_and(|left| left.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;
    use crate::store::Provenance;

    fn push(b: &mut Batch, topic: &str, partition: i32, offset: i64) {
        b.push(
            row(),
            Origin::for_test(topic, partition, offset, b"k", vec![offset as u8]),
        );
    }

    fn row() -> EventRow {
        EventRow::new(
            sample(),
            Provenance {
                schema_id: 1,
                partition: 0,
                offset: 0,
            },
        )
    }

    #[test]
    fn empty_batch_is_never_due() {
        let b = Batch::default();
        assert!(b.is_empty());
        assert!(!b.should_flush(1, 1, Duration::ZERO, Instant::now()));
        assert_eq!(b.time_left(Duration::from_secs(1), Instant::now()), None);
    }

    #[test]
    fn due_by_size_or_by_age() {
        let mut b = Batch::default();
        push(&mut b, "t", 0, 10);
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(!b.should_flush(2, usize::MAX, minute, now));
        assert!(b.should_flush(2, usize::MAX, minute, now + Duration::from_secs(61)));
        push(&mut b, "t", 0, 11);
        assert!(b.should_flush(2, usize::MAX, minute, now));
    }

    #[test]
    fn due_by_bytes_with_maximum_size_events() {
        // Events at the contract's limits: 64 metadata values of 8 KiB and
        // an 8 KiB user agent, ~0.5 MiB each with their payload.
        let mut event = sample();
        event.actor.user_agent = Some("u".repeat(8 * 1024));
        event.metadata = (0..64)
            .map(|i| (format!("key{i:02}"), "v".repeat(8 * 1024)))
            .collect();
        let big = EventRow::new(
            event,
            Provenance {
                schema_id: 1,
                partition: 0,
                offset: 0,
            },
        );
        let max_bytes = 4 * 1024 * 1024;
        let mut b = Batch::default();
        let now = Instant::now();
        let mut pushed = 0;
        while !b.should_flush(50_000, max_bytes, Duration::from_secs(60), now) {
            b.push(
                big.clone(),
                Origin::for_test("t", 0, pushed, b"", vec![0; 540 * 1024]),
            );
            pushed += 1;
        }
        assert!(b.bytes() >= max_bytes);
        // Full by bytes after a handful of rows, far below max_rows, and
        // never more than one event past the bound.
        assert!((4..=5).contains(&pushed), "{pushed} rows");
        assert!(b.bytes() < max_bytes + 2 * 1024 * 1024);
    }

    #[test]
    fn commits_the_offset_after_the_last_consumed_message_per_partition() {
        let mut b = Batch::default();
        push(&mut b, "a", 0, 10);
        push(&mut b, "a", 0, 12);
        b.consumed("a", 0, 11); // a dead letter between them
        push(&mut b, "a", 1, 3);
        b.consumed("b", 0, 7);
        let offsets: Vec<_> = b.offsets().collect();
        assert_eq!(offsets, [("a", 0, 13), ("a", 1, 4), ("b", 0, 8)]);
        let ranges: Vec<_> = b.ranges().collect();
        assert_eq!(ranges, [("a", 0, 10, 12), ("a", 1, 3, 3), ("b", 0, 7, 7)]);
        assert_eq!(b.rows().len(), 3);
        let second = b.origin(1).expect("origin of the second row");
        assert_eq!((second.offset(), second.payload()), (12, &[12u8][..]));
        assert!(!b.is_empty());
    }

    #[test]
    fn a_batch_of_only_dead_letters_still_needs_a_commit() {
        let mut b = Batch::default();
        b.consumed("a", 0, 5);
        assert!(!b.is_empty());
        assert!(b.rows().is_empty());
    }
}
