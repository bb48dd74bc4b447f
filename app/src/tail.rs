//! Live tail on the Search page: new events matching the search stream in
//! (server-sent events from `GET /api/search/tail`) above the results.
//!
//! What is shared by the server and the page: where a stream stands
//! ([`TailPosition`], the SSE event id, so a reconnect resumes exactly),
//! what one message carries ([`TailMessage`]), and the page's own state
//! ([`TailFeed`]: newest on top, a cap on rows kept, pause, and a rate
//! limit on rows shown). docs/DESIGN.md ("Live tail") says why the position
//! is a Kafka offset per topic and partition rather than a time.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::search_model::SearchHit;

/// The stream's address; it takes the Search page's own parameters, and
/// `since` (epoch ms) or a `Last-Event-ID` header to say where to start.
pub const TAIL_PATH: &str = "/api/search/tail";
/// Rows the page keeps; older ones fall off the bottom.
pub const KEPT_ROWS: usize = 200;
/// Rows the page adds per second at most; more are counted, and a link
/// opens them in Search.
pub const SHOWN_PER_SECOND: u32 = 20;
/// Rows one poll of the store returns at most; the rest come with the next.
pub const POLL_ROWS: u32 = 500;
/// Topic-partition pairs a position may name: 6 category topics of up to
/// 256 partitions each. A longer one is made up.
const MAX_PARTS: usize = 6 * 256;

/// Where a tail stands: events received after `since_ms` (the search
/// page's snapshot, so the tail continues exactly where the results end),
/// and per category topic and partition the next Kafka offset to deliver.
/// A poll reads only below the writers' committed offsets ([`Delivered`]),
/// below which every row is in ClickHouse, so a row below the next offset
/// was delivered already, and one at or above it was not, how late it
/// reached ClickHouse notwithstanding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TailPosition {
    pub since_ms: i64,
    pub next: BTreeMap<(String, i32), i64>,
}

impl TailPosition {
    pub fn starting(since_ms: i64) -> TailPosition {
        TailPosition {
            since_ms,
            next: BTreeMap::new(),
        }
    }

    /// Marks the row at `offset` of `category`'s topic and `partition` as
    /// delivered. Offsets only move forward.
    pub fn advance(&mut self, category: &str, partition: i32, offset: i64) {
        let next = offset.saturating_add(1);
        let entry = self
            .next
            .entry((category.to_string(), partition))
            .or_insert(0);
        *entry = (*entry).max(next);
    }

    /// Whether the row was delivered already by this position.
    pub fn covers(&self, category: &str, partition: i32, offset: i64) -> bool {
        self.next
            .get(&(category.to_string(), partition))
            .is_some_and(|next| offset < *next)
    }

    /// Takes the rows of one poll (in offset order, each with its Kafka
    /// partition and offset): the ones not delivered yet, each identity
    /// once, and moves past all of them.
    pub fn accept(
        &mut self,
        rows: impl IntoIterator<Item = (SearchHit, i32, i64)>,
    ) -> Vec<SearchHit> {
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        for (hit, partition, offset) in rows {
            if self.covers(&hit.category, partition, offset) {
                continue;
            }
            self.advance(&hit.category, partition, offset);
            if seen.insert(identity(&hit)) {
                fresh.push(hit);
            }
        }
        fresh
    }

    /// `category/partition` keys and their next offsets, as the tail query
    /// binds them (a partition it does not name is read from offset 0).
    pub fn bound(&self) -> (Vec<String>, Vec<i64>) {
        bound_arrays(&self.next)
    }

    /// `since_ms` then `category:partition:next` pairs, the SSE event id.
    pub fn encode(&self) -> String {
        let mut out = self.since_ms.to_string();
        for ((category, partition), next) in &self.next {
            out.push_str(&format!(".{category}:{partition}:{next}"));
        }
        out
    }

    /// The position an id names, or a message naming what is wrong.
    pub fn decode(text: &str) -> Result<TailPosition, String> {
        let mut parts = text.trim().split('.');
        let since_ms = parts
            .next()
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|ms| crate::search_model::checked_snapshot(ms).ok())
            .ok_or_else(|| "the tail position does not start with a moment".to_string())?;
        let mut next = BTreeMap::new();
        for part in parts {
            if next.len() >= MAX_PARTS {
                return Err("the tail position names too many partitions".to_string());
            }
            let mut fields = part.split(':');
            let (Some(category), Some(partition), Some(offset), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("the tail position has a damaged part \"{part}\""));
            };
            let known = crate::query::CATEGORIES.contains(&category);
            let partition = partition.parse::<i32>().ok().filter(|p| *p >= 0);
            let offset = offset.parse::<i64>().ok().filter(|o| *o >= 0);
            match (known, partition, offset) {
                (true, Some(partition), Some(offset)) => {
                    next.insert((category.to_string(), partition), offset);
                }
                _ => return Err(format!("the tail position has a damaged part \"{part}\"")),
            }
        }
        Ok(TailPosition { since_ms, next })
    }
}

/// How far the writers' group has committed, per category topic and
/// partition: the next offset it will read, every offset below it inserted
/// into ClickHouse (the writer commits only after its rows are in). A poll
/// reads no row at or above it: two batches insert at once
/// (`writer.inserts_in_flight`), so a partition's younger rows can be
/// visible before its older ones, and a position moved past them would
/// skip the older ones when they land. A partition without a commit is
/// not read yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered(pub BTreeMap<(String, i32), i64>);

impl Delivered {
    /// `category/partition` keys and their committed offsets, as the tail
    /// query binds them (a partition it does not name is read nowhere).
    pub fn bound(&self) -> (Vec<String>, Vec<i64>) {
        bound_arrays(&self.0)
    }
}

/// Keys `category/partition` and their offsets as two arrays the tail query
/// looks a row's partition up in (`indexOf`, then `arrayElement`). The first
/// pair matches no row: an unnamed partition finds index 0 and so offset 0,
/// and the arrays are never empty (an empty array literal has no element
/// type in SQL).
fn bound_arrays(offsets: &BTreeMap<(String, i32), i64>) -> (Vec<String>, Vec<i64>) {
    let mut keys = vec![String::new()];
    let mut values = vec![0];
    for ((category, partition), offset) in offsets {
        keys.push(format!("{category}/{partition}"));
        values.push(*offset);
    }
    (keys, values)
}

/// What one poll of the store found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailBatch {
    /// Oldest first.
    pub hits: Vec<SearchHit>,
    pub position: TailPosition,
    /// The poll was full: more are waiting, ask again at once.
    pub more: bool,
}

/// One message of the stream: the new rows, oldest first, and the position
/// after them (also the message's SSE id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailMessage {
    pub hits: Vec<SearchHit>,
    pub position: String,
}

/// A token bucket: `per_second` rows a second, and up to that many at once
/// after a quiet spell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    per_second: u32,
    tokens: f64,
    at_ms: Option<i64>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            tokens: f64::from(per_second),
            at_ms: None,
        }
    }

    /// Whether one more row may be shown at `now_ms`.
    pub fn admit(&mut self, now_ms: i64) -> bool {
        let cap = f64::from(self.per_second);
        if let Some(at) = self.at_ms {
            // A clock that goes back refills nothing.
            let elapsed = now_ms.saturating_sub(at).max(0) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * cap).min(cap);
        }
        self.at_ms = Some(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The identity of a row (docs/DESIGN.md, "Event identity").
fn identity(hit: &SearchHit) -> (String, String, String) {
    (
        hit.tenant_id.clone(),
        hit.event_id.clone(),
        hit.content_hash.clone(),
    )
}

/// What the page shows of a tail.
#[derive(Clone, Debug)]
pub struct TailFeed {
    /// Newest first, at most [`KEPT_ROWS`].
    pub rows: VecDeque<SearchHit>,
    pub paused: bool,
    /// Received while paused; shown on resume (the newest [`KEPT_ROWS`]).
    held: Vec<SearchHit>,
    /// How many arrived while paused.
    pub held_count: u64,
    /// How many the rate limit kept off the page since the tail started.
    pub over_limit: u64,
    limit: RateLimit,
    /// Identities of the rows kept or held, so a copy sent again (a
    /// sender's retry at a later offset) is shown once.
    seen: HashSet<(String, String, String)>,
}

impl Default for TailFeed {
    fn default() -> Self {
        TailFeed::new(SHOWN_PER_SECOND)
    }
}

impl TailFeed {
    pub fn new(per_second: u32) -> TailFeed {
        TailFeed {
            rows: VecDeque::new(),
            paused: false,
            held: Vec::new(),
            held_count: 0,
            over_limit: 0,
            limit: RateLimit::new(per_second),
            seen: HashSet::new(),
        }
    }

    /// Takes one message's rows (oldest first) at `now_ms`.
    pub fn receive(&mut self, hits: Vec<SearchHit>, now_ms: i64) {
        for hit in hits {
            if !self.seen.insert(identity(&hit)) {
                continue;
            }
            if self.paused {
                self.held_count = self.held_count.saturating_add(1);
                self.held.push(hit);
                if self.held.len() > KEPT_ROWS {
                    let gone = self.held.remove(0);
                    self.seen.remove(&identity(&gone));
                }
            } else if self.limit.admit(now_ms) {
                self.show(hit);
            } else {
                self.over_limit = self.over_limit.saturating_add(1);
                self.seen.remove(&identity(&hit));
            }
        }
    }

    fn show(&mut self, hit: SearchHit) {
        self.rows.push_front(hit);
        while self.rows.len() > KEPT_ROWS {
            if let Some(gone) = self.rows.pop_back() {
                self.seen.remove(&identity(&gone));
            }
        }
    }

    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Shows what arrived while paused (the rate limit does not apply: the
    /// analyst asked for them) and counts anew.
    pub fn resume(&mut self) {
        self.paused = false;
        self.held_count = 0;
        for hit in std::mem::take(&mut self.held) {
            self.show(hit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str) -> SearchHit {
        SearchHit {
            event_id: id.into(),
            tenant_id: "acme".into(),
            occurred_at: 1,
            received_at: 2,
            category: "authentication".into(),
            action: "user.login".into(),
            outcome: "success".into(),
            actor_id: "a".into(),
            actor_type: "user".into(),
            actor_ip: String::new(),
            actor_user_agent: String::new(),
            resource_type: String::new(),
            resource_id: String::new(),
            source_service: "sso".into(),
            request_id: String::new(),
            content_hash: "ab".into(),
            metadata: Vec::new(),
        }
    }

    #[test]
    fn a_position_resumes_where_it_stood() {
        let mut p = TailPosition::starting(1_000);
        p.advance("authentication", 1, 41);
        p.advance("authentication", 1, 7);
        p.advance("data_access", 0, 0);
        assert!(p.covers("authentication", 1, 41));
        assert!(!p.covers("authentication", 1, 42));
        assert!(!p.covers("authentication", 0, 0));
        assert!(p.covers("data_access", 0, 0));
        let id = p.encode();
        assert_eq!(id, "1000.authentication:1:42.data_access:0:1");
        assert_eq!(TailPosition::decode(&id), Ok(p.clone()));
        assert_eq!(
            p.bound(),
            (
                vec![
                    String::new(),
                    "authentication/1".into(),
                    "data_access/0".into()
                ],
                vec![0, 42, 1]
            )
        );
        assert_eq!(TailPosition::decode("5"), Ok(TailPosition::starting(5)));
    }

    #[test]
    fn accepting_skips_what_was_delivered_and_repeats() {
        let mut p = TailPosition::starting(0);
        let first = p.accept(vec![(hit("1"), 0, 5), (hit("2"), 1, 3), (hit("1"), 0, 6)]);
        assert_eq!(first.len(), 2);
        assert_eq!(p.encode(), "0.authentication:0:7.authentication:1:4");
        // The same rows again (a poll that overlaps) give nothing; a row
        // further on is new.
        let again = p.accept(vec![(hit("1"), 0, 5), (hit("2"), 1, 3), (hit("3"), 1, 4)]);
        assert_eq!(again, vec![hit("3")]);
        // Resumed from its id, a stream skips the same rows.
        let mut resumed = TailPosition::decode(&p.encode()).unwrap();
        assert!(resumed.accept(vec![(hit("3"), 1, 4)]).is_empty());
    }

    #[test]
    fn a_made_up_position_is_refused() {
        for bad in [
            "",
            "x",
            "-5",
            "1.nope:0:1",
            "1.authentication:-1:1",
            "1.authentication:0:-1",
            "1.authentication:0",
            "1.authentication:0:1:2",
            "99999999999999999999",
        ] {
            assert!(TailPosition::decode(bad).is_err(), "{bad}");
        }
        let long: String = (0..=MAX_PARTS)
            .map(|n| format!(".authentication:{n}:1"))
            .collect();
        let long = format!("1{long}");
        assert!(TailPosition::decode(&long).is_err());
    }

    #[test]
    fn the_rate_limit_admits_its_rate_and_refills() {
        let mut limit = RateLimit::new(3);
        let admitted = (0..10).filter(|_| limit.admit(0)).count();
        assert_eq!(admitted, 3);
        assert!(!limit.admit(100));
        // A third of a second refills one.
        assert!(limit.admit(434));
        assert!(!limit.admit(434));
        // A long pause refills no more than the rate.
        assert_eq!((0..10).filter(|_| limit.admit(60_000)).count(), 3);
        // A clock going back refills nothing and does not panic.
        assert!(!limit.admit(0));
    }

    #[test]
    fn the_feed_keeps_newest_first_counts_over_the_limit_and_drops_copies() {
        let mut feed = TailFeed::new(2);
        feed.receive(vec![hit("1"), hit("2"), hit("3"), hit("2")], 0);
        let ids: Vec<&str> = feed.rows.iter().map(|h| h.event_id.as_str()).collect();
        assert_eq!(ids, ["2", "1"]);
        assert_eq!(feed.over_limit, 1);
        feed.receive(vec![hit("1")], 5_000);
        assert_eq!(feed.rows.len(), 2);
        let mut many = TailFeed::new(u32::MAX);
        many.receive((0..KEPT_ROWS + 5).map(|n| hit(&n.to_string())).collect(), 0);
        assert_eq!(many.rows.len(), KEPT_ROWS);
        assert_eq!(many.rows[0].event_id, (KEPT_ROWS + 4).to_string());
    }

    #[test]
    fn paused_rows_are_counted_then_shown_on_resume() {
        let mut feed = TailFeed::new(1);
        feed.pause();
        feed.receive(vec![hit("1"), hit("2"), hit("3")], 0);
        assert!(feed.rows.is_empty());
        assert_eq!(feed.held_count, 3);
        assert_eq!(feed.over_limit, 0);
        feed.resume();
        assert_eq!(feed.held_count, 0);
        let ids: Vec<&str> = feed.rows.iter().map(|h| h.event_id.as_str()).collect();
        assert_eq!(ids, ["3", "2", "1"]);
    }
}
