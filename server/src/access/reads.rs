//! The console's own reads as evidence: every search run, every event
//! detail opened and every saved-search change becomes an audit event in
//! Attest's own trail (`SYSTEM_TENANT`), with the viewer as actor, produced
//! through ingest like every other event Attest records about itself.
//!
//! Recording is off the request path: a page hands its read to a bounded
//! queue ([`ReadLog::note`] never waits) and one task turns the queue into
//! events. Identical reads by one viewer (same action, resource and
//! details) within `console.read_window` of the first become one event
//! whose `count` says how many there were, so an analyst paging back and
//! forth does not flood the trail. When the queue is full, or the events
//! cannot be produced, the reads are counted
//! (`attest_console_reads_unrecorded_total`), logged, and the next event
//! recorded says how many were lost before it (`reads_not_recorded_before`):
//! a gap in the evidence is itself in the evidence.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Viewer, SYSTEM_TENANT};
use crate::event::{AuditEvent, Category, Outcome, Resource};
use crate::ingest::{internal_event, now_ms, Ingest};

/// One read, as the page that did it describes it. Everything in it but
/// `varying` decides whether two reads are the same.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ReadKey {
    action: &'static str,
    access_id: String,
    actor: String,
    resource_kind: String,
    resource_id: String,
    failed: bool,
    details: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Read {
    key: ReadKey,
    /// Details of the first read that later identical ones may change
    /// (a relative window's bounds, the number of results).
    varying: BTreeMap<String, String>,
}

impl Read {
    fn new(
        viewer: &Viewer,
        action: &'static str,
        resource: Resource,
        failed: bool,
        details: BTreeMap<String, String>,
    ) -> Read {
        Read {
            key: ReadKey {
                action,
                access_id: viewer.access_id.clone(),
                actor: viewer.name.clone(),
                resource_kind: resource.kind,
                resource_id: resource.id,
                failed,
                details,
            },
            varying: BTreeMap::new(),
        }
    }

    /// A search run: the query text, the tenants it ran over (`*` for
    /// every tenant), the window as asked and which page.
    pub fn search(
        viewer: &Viewer,
        query: &str,
        tenants: &[String],
        window: String,
        later_page: bool,
    ) -> Read {
        let tenants = if tenants.is_empty() {
            "*".to_owned()
        } else {
            tenants.join(",")
        };
        let details = BTreeMap::from([
            ("query".to_owned(), query.chars().take(1000).collect()),
            ("tenants".to_owned(), tenants.clone()),
            ("window".to_owned(), window),
            (
                "page".to_owned(),
                if later_page { "later" } else { "first" }.to_owned(),
            ),
        ]);
        let resource = Resource {
            kind: "audit_events".into(),
            id: tenants,
        };
        Read::new(viewer, "console.search", resource, false, details)
    }

    /// What the first run found: the rows of its page, whether more
    /// followed, and the bounds the window resolved to.
    pub fn with_results(mut self, rows: usize, more: bool, from_ms: i64, to_ms: i64) -> Read {
        self.varying.insert("results".into(), rows.to_string());
        self.varying.insert("more_results".into(), more.to_string());
        self.varying.insert("from_ms".into(), from_ms.to_string());
        self.varying.insert("to_ms".into(), to_ms.to_string());
        self
    }

    /// An event detail opened; `found` is false for a missing event and
    /// for another tenant's (the page answers both alike).
    pub fn event_view(
        viewer: &Viewer,
        tenant: &str,
        event_id: &str,
        content: Option<&str>,
        found: bool,
    ) -> Read {
        let mut details = BTreeMap::from([("tenant".to_owned(), tenant.to_owned())]);
        if let Some(content) = content {
            details.insert("content_hash_prefix".into(), content.to_owned());
        }
        let resource = Resource {
            kind: "audit_event".into(),
            id: event_id.to_owned(),
        };
        Read::new(viewer, "console.event_view", resource, !found, details)
    }

    /// A saved search created (`saved_search.create`) or deleted.
    pub fn saved_search(
        viewer: &Viewer,
        action: &'static str,
        id: &str,
        details: BTreeMap<String, String>,
    ) -> Read {
        let resource = Resource {
            kind: "saved_search".into(),
            id: id.to_owned(),
        };
        Read::new(viewer, action, resource, false, details)
    }
}

/// Reads waiting in their window: the first of each kind, how many.
struct Pending {
    read: Read,
    count: u64,
    first_ms: i64,
    last_ms: i64,
    due: Instant,
    /// Reads lost before this one, named in its event.
    lost_before: u64,
}

/// Collapses identical reads within a window; pure, so it is tested
/// without a clock or a broker.
struct Collapser {
    window: Duration,
    max_pending: usize,
    pending: BTreeMap<ReadKey, Pending>,
}

impl Collapser {
    fn new(window: Duration, max_pending: usize) -> Collapser {
        Collapser {
            window,
            max_pending,
            pending: BTreeMap::new(),
        }
    }

    /// Adds a read; `lost_before` (reads lost since the last event) goes on
    /// the first new event.
    fn add(&mut self, read: Read, at: Instant, at_ms: i64, lost_before: u64) -> u64 {
        if let Some(pending) = self.pending.get_mut(&read.key) {
            pending.count = pending.count.saturating_add(1);
            pending.last_ms = at_ms;
            return lost_before;
        }
        self.pending.insert(
            read.key.clone(),
            Pending {
                read,
                count: 1,
                first_ms: at_ms,
                last_ms: at_ms,
                due: at + self.window,
                lost_before,
            },
        );
        0
    }

    /// Whether so many different reads wait that they must go now: the
    /// map is bounded like the queue.
    fn full(&self) -> bool {
        self.pending.len() >= self.max_pending
    }

    fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.due).min()
    }

    /// Takes the reads whose window has closed (all of them with `None`).
    fn take_due(&mut self, now: Option<Instant>) -> Vec<Pending> {
        let due: Vec<ReadKey> = self
            .pending
            .iter()
            .filter(|(_, p)| now.is_none_or(|now| p.due <= now))
            .map(|(k, _)| k.clone())
            .collect();
        due.iter().filter_map(|k| self.pending.remove(k)).collect()
    }
}

/// The audit event for `count` identical reads.
fn event_of(pending: Pending) -> AuditEvent {
    let Pending {
        read,
        count,
        first_ms,
        last_ms,
        lost_before,
        ..
    } = pending;
    let key = read.key;
    let mut metadata = key.details;
    metadata.extend(read.varying);
    metadata.insert("access_id".into(), key.access_id);
    metadata.insert("count".into(), count.to_string());
    metadata.insert("last_at_ms".into(), last_ms.to_string());
    if lost_before > 0 {
        metadata.insert("reads_not_recorded_before".into(), lost_before.to_string());
    }
    let category = if key.action.starts_with("saved_search.") {
        Category::DataModification
    } else {
        Category::DataAccess
    };
    let mut event = internal_event(
        SYSTEM_TENANT,
        category,
        key.action,
        if key.failed {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        Resource {
            kind: key.resource_kind,
            id: key.resource_id,
        },
        &key.actor,
        metadata,
    );
    // The event says when the first of the reads happened.
    event.occurred_at = first_ms;
    event
}

/// Where the console hands its reads; cheap to clone, never waits.
#[derive(Clone)]
pub struct ReadLog {
    queue: mpsc::Sender<Read>,
    lost: Arc<Lost>,
}

/// Reads that never became an event, counted where they were lost.
struct Lost {
    since_last_event: AtomicU64,
    metric: IntCounter,
}

impl Lost {
    fn add(&self, reads: u64, why: &str) {
        self.metric.inc_by(reads);
        let before = self.since_last_event.fetch_add(reads, Ordering::Relaxed);
        // One line per gap, not per read: a flooded queue must not flood
        // the log as well.
        if before == 0 {
            warn!(
                reads,
                why,
                "console reads not recorded in Attest's trail; the next recorded one says how many"
            );
        }
    }

    fn take(&self) -> u64 {
        self.since_last_event.swap(0, Ordering::Relaxed)
    }
}

impl ReadLog {
    /// Starts the task that records reads through `ingest`; it flushes what
    /// it holds when `stop` is cancelled.
    pub fn start(
        ingest: Arc<Ingest>,
        window: Duration,
        capacity: usize,
        unrecorded: IntCounter,
        stop: CancellationToken,
    ) -> ReadLog {
        let (queue, reads) = mpsc::channel(capacity.max(1));
        let lost = Arc::new(Lost {
            since_last_event: AtomicU64::new(0),
            metric: unrecorded,
        });
        tokio::spawn(run(
            reads,
            Collapser::new(window, capacity.max(1)),
            ingest,
            lost.clone(),
            stop,
        ));
        ReadLog { queue, lost }
    }

    /// Hands a read over without waiting; a full queue loses it, counted.
    pub fn note(&self, read: Read) {
        if let Err(error) = self.queue.try_send(read) {
            let why = match error {
                mpsc::error::TrySendError::Full(_) => "the queue is full",
                mpsc::error::TrySendError::Closed(_) => "the recorder has stopped",
            };
            self.lost.add(1, why);
        }
    }
}

async fn run(
    mut reads: mpsc::Receiver<Read>,
    mut collapser: Collapser,
    ingest: Arc<Ingest>,
    lost: Arc<Lost>,
    stop: CancellationToken,
) {
    loop {
        let next_due = collapser.next_due();
        tokio::select! {
            read = reads.recv() => {
                let Some(read) = read else { break };
                let carry = collapser.add(read, Instant::now(), now_ms(), lost.take());
                if carry > 0 {
                    // Collapsed into a waiting read: the count goes on the
                    // next new one.
                    lost.since_last_event.fetch_add(carry, Ordering::Relaxed);
                }
                if collapser.full() {
                    flush(collapser.take_due(None), &ingest, &lost).await;
                }
            }
            () = sleep_until(next_due) => {
                flush(collapser.take_due(Some(Instant::now())), &ingest, &lost).await;
            }
            () = stop.cancelled() => break,
        }
    }
    // What is still queued or waiting is recorded before the task ends.
    reads.close();
    while let Ok(read) = reads.try_recv() {
        collapser.add(read, Instant::now(), now_ms(), 0);
    }
    flush(collapser.take_due(None), &ingest, &lost).await;
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

async fn flush(due: Vec<Pending>, ingest: &Ingest, lost: &Lost) {
    if due.is_empty() {
        return;
    }
    let counts: Vec<(u64, u64)> = due.iter().map(|p| (p.count, p.lost_before)).collect();
    let events: Vec<AuditEvent> = due.into_iter().map(event_of).collect();
    let (mut failed, mut unnamed) = (0u64, 0u64);
    for (result, (count, lost_before)) in ingest.record_all(events).await.into_iter().zip(counts) {
        if let Err(error) = result {
            error!(%error, reads = count, "cannot record console reads in Attest's trail");
            failed = failed.saturating_add(count);
            unnamed = unnamed.saturating_add(lost_before);
        }
    }
    if failed > 0 {
        lost.add(failed, "the events could not be produced");
        // Lost before and already counted: the next event names them.
        lost.since_last_event.fetch_add(unnamed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(name: &str) -> Viewer {
        let mut viewer = Viewer::nobody();
        viewer.access_id = format!("{name}-id");
        viewer.name = name.to_owned();
        viewer
    }

    fn search(who: &str, q: &str) -> Read {
        Read::search(&viewer(who), q, &["acme".into()], "last 24h".into(), false)
            .with_results(3, false, 1, 2)
    }

    #[test]
    fn identical_reads_in_a_window_become_one_event_with_a_count() {
        let window = Duration::from_secs(10);
        let mut collapser = Collapser::new(window, 100);
        let start = Instant::now();
        for i in 0..5 {
            collapser.add(search("alice", "x"), start, 1000 + i, 0);
        }
        collapser.add(search("alice", "y"), start, 1010, 0);
        collapser.add(search("bob", "x"), start, 1011, 0);
        // Different results do not make a different read.
        collapser.add(
            search("alice", "x").with_results(9, true, 5, 6),
            start,
            1012,
            0,
        );
        assert!(collapser.take_due(Some(start)).is_empty(), "window open");
        let mut events: Vec<AuditEvent> = collapser
            .take_due(Some(start + window))
            .into_iter()
            .map(event_of)
            .collect();
        events.sort_by_key(|e| (e.actor.id.clone(), e.metadata["query"].clone()));
        let summary: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                (
                    e.actor.id.clone(),
                    e.metadata["query"].clone(),
                    e.metadata["count"].clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("alice".into(), "x".into(), "6".into()),
                ("alice".into(), "y".into(), "1".into()),
                ("bob".into(), "x".into(), "1".into()),
            ]
        );
        let first = &events[0];
        assert_eq!(first.tenant_id, SYSTEM_TENANT);
        assert_eq!(first.action, "console.search");
        assert_eq!(first.occurred_at, 1000, "when the first read happened");
        assert_eq!(first.metadata["last_at_ms"], "1012");
        assert_eq!(first.metadata["results"], "3", "the first run's");
        assert_eq!(first.metadata["access_id"], "alice-id");
        assert_eq!(first.metadata["tenants"], "acme");
        assert!(collapser.next_due().is_none());
    }

    #[test]
    fn a_new_read_after_the_window_is_a_new_event_and_lost_reads_are_named() {
        let window = Duration::from_secs(1);
        let mut collapser = Collapser::new(window, 100);
        let start = Instant::now();
        assert_eq!(collapser.add(search("alice", "x"), start, 1, 7), 0);
        // Collapsed: the lost count is handed back for the next new read.
        assert_eq!(collapser.add(search("alice", "x"), start, 2, 3), 3);
        let first = collapser.take_due(Some(start + window));
        assert_eq!(first.len(), 1);
        let event = event_of(first.into_iter().next().unwrap());
        assert_eq!(event.metadata["reads_not_recorded_before"], "7");
        collapser.add(search("alice", "x"), start + window, 3, 0);
        let again = collapser.take_due(None);
        assert_eq!(again.len(), 1);
        assert!(!event_of(again.into_iter().next().unwrap())
            .metadata
            .contains_key("reads_not_recorded_before"));
    }

    #[test]
    fn the_collapser_is_bounded_and_views_and_changes_say_what_they_are() {
        let mut collapser = Collapser::new(Duration::from_secs(60), 2);
        let start = Instant::now();
        collapser.add(search("a", "1"), start, 1, 0);
        assert!(!collapser.full());
        collapser.add(search("a", "2"), start, 1, 0);
        assert!(collapser.full());

        let missing = Read::event_view(&viewer("alice"), "globex", "g-1", None, false);
        let event = event_of(Pending {
            read: missing,
            count: 1,
            first_ms: 5,
            last_ms: 5,
            due: start,
            lost_before: 0,
        });
        assert_eq!(event.action, "console.event_view");
        assert_eq!(event.outcome, Outcome::Failure);
        assert_eq!(event.category, Category::DataAccess);
        assert_eq!(event.metadata["tenant"], "globex");
        let resource = event.resource.unwrap();
        assert_eq!(
            (resource.kind.as_str(), resource.id.as_str()),
            ("audit_event", "g-1")
        );

        let saved = Read::saved_search(
            &viewer("alice"),
            "saved_search.create",
            "s-1",
            BTreeMap::from([("name".to_owned(), "logins".to_owned())]),
        );
        let event = event_of(Pending {
            read: saved,
            count: 1,
            first_ms: 5,
            last_ms: 5,
            due: start,
            lost_before: 0,
        });
        assert_eq!(event.category, Category::DataModification);
        assert_eq!(event.outcome, Outcome::Success);
        assert_eq!(event.actor.id, "alice");
    }
}
