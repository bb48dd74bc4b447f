//! Listing and acting on dead letters.
//!
//! Order of an action, and why: (1) the admin gate records it in Attest's
//! trail, naming the letters (an action that cannot be recorded is not
//! done); (2) a redrive sends each letter back and waits for the broker's
//! acknowledgement; (3) only then are the letters written down as handled.
//! A crash between (2) and (3) leaves a sent letter in the inbox, never a
//! handled letter unsent: sending it again is harmless, as the table keeps
//! one row per event identity (same event_id, same content). A discard has
//! no step (2): its row is the discard.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use app::dead_letters_model::{
    discard_reason, page_bounds, ActionReport, InboxCounts, InboxPage, InboxQuery, LetterId,
    Selection,
};
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::recheck::{offsets_for_audit, view, Recheck};
use super::{read_all, DeadLetter, DlqError, MAX_PER_ACTION};
use crate::access::{require_admin, AdminGate, AdminRefusal, Viewer};
use crate::config::KafkaConfig;
use crate::event::{AuditEvent, Resource};
use crate::ingest::now_ms;
use crate::produce::EventProducer;
use crate::registry::{wire, Registry};
use crate::store::{DeadLetterAction, HandledLetter, Store};
use crate::topics;

/// How long reading the whole dead-letter topic may take.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

const REDRIVEN: &str = "redriven";
const DISCARDED: &str = "discarded";

/// One dead letter, what was done with it, and how it fares today.
pub struct Letter {
    pub letter: DeadLetter,
    /// The first action on it; `None` while it waits.
    pub handled: Option<HandledLetter>,
    pub recheck: Recheck,
}

impl Letter {
    pub fn id(&self) -> LetterId {
        LetterId {
            partition: self.letter.partition,
            offset: self.letter.offset,
        }
    }
}

/// The dead-letter topic as read at `read_at_ms`, oldest letter first.
pub struct Inbox {
    pub topic: String,
    pub read_at_ms: i64,
    pub letters: Vec<Letter>,
}

impl Inbox {
    pub fn waiting(&self) -> impl Iterator<Item = &Letter> {
        self.letters.iter().filter(|l| l.handled.is_none())
    }

    /// One page of waiting letters and the counts.
    pub fn page(&self, query: &InboxQuery) -> InboxPage {
        let mut counts = InboxCounts::default();
        let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
        for l in &self.letters {
            match l.handled.as_ref().map(|h| h.action.as_str()) {
                None => {
                    counts.waiting += 1;
                    counts.ready += u64::from(l.recheck.is_ready());
                    *by_reason.entry(l.letter.reason.clone()).or_default() += 1;
                }
                Some(REDRIVEN) => counts.redriven += 1,
                Some(_) => counts.discarded += 1,
            }
        }
        counts.by_reason = by_reason.into_iter().collect();
        let reason = query.reason.clone().filter(|r| !r.is_empty());
        let matching: Vec<&Letter> = self
            .waiting()
            .filter(|l| reason.as_ref().is_none_or(|r| *r == l.letter.reason))
            .collect();
        counts.matching = u64::try_from(matching.len()).unwrap_or(u64::MAX);
        let (start, end, pages) = page_bounds(matching.len(), query.page, query.per_page);
        let per_page = query
            .per_page
            .clamp(1, app::dead_letters_model::MAX_PER_PAGE);
        InboxPage {
            topic: self.topic.clone(),
            read_at_ms: self.read_at_ms,
            counts,
            letters: matching[start..end]
                .iter()
                .map(|l| view(&l.letter, &l.recheck))
                .collect(),
            page: query.page.clamp(1, pages),
            pages,
            per_page,
            reason,
        }
    }

    fn find(&self, id: LetterId) -> Option<&Letter> {
        self.letters.iter().find(|l| l.id() == id)
    }

    /// The letters `which` names that can be acted on now, and why the
    /// others cannot. `need_ready`: only letters that decode and validate
    /// (a redrive); a discard takes any waiting letter.
    fn choose(
        &self,
        which: &Selection,
        need_ready: bool,
    ) -> (Vec<&Letter>, Vec<(LetterId, String)>) {
        let mut chosen: Vec<&Letter> = Vec::new();
        let mut skipped = Vec::new();
        let candidates: Vec<Result<&Letter, LetterId>> = match which {
            Selection::Letters(ids) => ids.iter().map(|id| self.find(*id).ok_or(*id)).collect(),
            Selection::AllReady { reason } => self
                .waiting()
                .filter(|l| reason.as_ref().is_none_or(|r| *r == l.letter.reason))
                .map(Ok)
                .collect(),
        };
        for candidate in candidates {
            match candidate {
                Err(id) => skipped.push((id, "not in the dead-letter topic".to_owned())),
                Ok(l) => match (&l.handled, l.recheck.why_not()) {
                    (Some(h), _) => {
                        skipped.push((l.id(), format!("already {} by {}", h.action, h.actor)))
                    }
                    (None, Some(why)) if need_ready => skipped.push((l.id(), why)),
                    (None, _) => chosen.push(l),
                },
            }
        }
        (chosen, skipped)
    }
}

/// Reads the dead-letter topic and acts on its letters.
pub struct DeadLetterInbox {
    kafka: KafkaConfig,
    topic: String,
    event_topics: Vec<String>,
    registry: Arc<Registry>,
    producer: EventProducer,
    store: Store,
    /// One action at a time in this process, so two clicks on one letter
    /// do not both send it (across processes a second send is harmless).
    acting: Mutex<()>,
}

impl DeadLetterInbox {
    pub fn new(
        kafka: KafkaConfig,
        registry: Arc<Registry>,
        producer: EventProducer,
        store: Store,
    ) -> DeadLetterInbox {
        DeadLetterInbox {
            topic: topics::dead_letters(&kafka.topic_prefix),
            event_topics: topics::event_topics(&kafka.topic_prefix),
            kafka,
            registry,
            producer,
            store,
            acting: Mutex::new(()),
        }
    }

    /// The dead-letter topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Every letter, handled or waiting, checked against today's contract.
    /// Not gated: the command line calls it for an operator, the console
    /// only through [`DeadLetterInbox::view`].
    pub async fn read(&self) -> Result<Inbox, DlqError> {
        let kafka = self.kafka.clone();
        let mut letters =
            tokio::task::spawn_blocking(move || read_all(&kafka, READ_TIMEOUT)).await??;
        letters.sort_by_key(|l| (l.timestamp_ms, l.partition, l.offset));
        let handled: BTreeMap<(i32, i64), HandledLetter> = self
            .store
            .handled_dead_letters(&self.topic)
            .await
            .map_err(DlqError::Store)?
            .into_iter()
            .map(|h| ((h.dlq_partition, h.dlq_offset), h))
            .collect();
        // A schema registered in the external registry since: learn it, so
        // its letters show as ready. One question per unknown id.
        let mut asked = HashSet::new();
        for l in &letters {
            if let Ok((id, _)) = wire::unframe(&l.payload) {
                if asked.insert(id) {
                    if let Err(error) = self.registry.fetch(id).await {
                        warn!(%error, id, "cannot ask the registry for a dead letter's schema");
                    }
                }
            }
        }
        let now = now_ms();
        let letters = letters
            .into_iter()
            .map(|letter| Letter {
                handled: handled.get(&(letter.partition, letter.offset)).cloned(),
                recheck: Recheck::of(&self.registry, &letter.payload, now),
                letter,
            })
            .collect();
        Ok(Inbox {
            topic: self.topic.clone(),
            read_at_ms: now,
            letters,
        })
    }

    /// One page of the inbox for an admin, recorded as an admin action:
    /// the previews show events of every tenant.
    pub async fn view(
        &self,
        gate: &AdminGate,
        viewer: &Viewer,
        query: &InboxQuery,
    ) -> Result<InboxPage, DlqError> {
        gate.admit_with(
            viewer,
            "dead_letters.view",
            self.resource(),
            BTreeMap::new(),
        )
        .await?;
        Ok(self.read().await?.page(query))
    }

    /// Sends back the selected letters that decode and validate now, each
    /// onto its source topic as ingest writes it; then records them as
    /// redriven.
    pub async fn redrive(
        &self,
        gate: &AdminGate,
        viewer: &Viewer,
        which: &Selection,
    ) -> Result<ActionReport, DlqError> {
        require_admin(viewer).map_err(AdminRefusal::from)?;
        let _one_at_a_time = self.acting.lock().await;
        let inbox = self.read().await?;
        let (chosen, skipped) = inbox.choose(which, true);
        let mut report = ActionReport {
            action: "redrive".into(),
            done: Vec::new(),
            skipped,
        };
        let selection = match which {
            Selection::Letters(_) => "selected".to_owned(),
            Selection::AllReady { reason: None } => "all that now decode".to_owned(),
            Selection::AllReady { reason: Some(r) } => format!("all that now decode, reason {r}"),
        };
        for chunk in chosen.chunks(MAX_PER_ACTION) {
            let ids: Vec<LetterId> = chunk.iter().map(|l| l.id()).collect();
            let details = BTreeMap::from([
                ("letters".to_owned(), offsets_for_audit(&ids)),
                ("count".to_owned(), ids.len().to_string()),
                ("selection".to_owned(), selection.clone()),
            ]);
            gate.admit_with(viewer, "dead_letters.redrive", self.resource(), details)
                .await?;
            let sends = chunk.iter().map(|l| async move {
                let Some(event) = l.recheck.event() else {
                    return Err("does not decode".to_owned());
                };
                self.send_back(&l.letter, event).await.map(|()| event)
            });
            let outcomes = futures::future::join_all(sends).await;
            let mut rows = Vec::new();
            for (l, outcome) in chunk.iter().zip(outcomes) {
                match outcome {
                    Ok(event) => {
                        rows.push(self.action_row(l, REDRIVEN, "", viewer, &event.event_id))
                    }
                    Err(why) => report.skipped.push((l.id(), why)),
                }
            }
            self.store
                .record_dead_letter_actions(&rows)
                .await
                .map_err(|source| DlqError::NotRecorded {
                    sent: rows.len(),
                    source,
                })?;
            report.done.extend(rows.iter().map(|r| LetterId {
                partition: r.dlq_partition,
                offset: r.dlq_offset,
            }));
        }
        info!(by = %viewer.name, redriven = report.done.len(), skipped = report.skipped.len(), "dead letters redriven");
        Ok(report)
    }

    /// Records the letters as discarded with the written reason: they
    /// leave the inbox, and stay in the topic until its retention.
    pub async fn discard(
        &self,
        gate: &AdminGate,
        viewer: &Viewer,
        ids: &[LetterId],
        reason: &str,
    ) -> Result<ActionReport, DlqError> {
        require_admin(viewer).map_err(AdminRefusal::from)?;
        let reason = discard_reason(reason).map_err(DlqError::BadRequest)?;
        if ids.is_empty() {
            return Err(DlqError::BadRequest(
                "ids: select at least one dead letter".into(),
            ));
        }
        let _one_at_a_time = self.acting.lock().await;
        let inbox = self.read().await?;
        let (chosen, skipped) = inbox.choose(&Selection::Letters(ids.to_vec()), false);
        let mut report = ActionReport {
            action: "discard".into(),
            done: Vec::new(),
            skipped,
        };
        for chunk in chosen.chunks(MAX_PER_ACTION) {
            let ids: Vec<LetterId> = chunk.iter().map(|l| l.id()).collect();
            let details = BTreeMap::from([
                ("letters".to_owned(), offsets_for_audit(&ids)),
                ("count".to_owned(), ids.len().to_string()),
                ("reason".to_owned(), reason.clone()),
            ]);
            gate.admit_with(viewer, "dead_letters.discard", self.resource(), details)
                .await?;
            let rows: Vec<DeadLetterAction> = chunk
                .iter()
                .map(|l| {
                    let event_id = l.recheck.event().map(|e| e.event_id.as_str()).unwrap_or("");
                    self.action_row(l, DISCARDED, &reason, viewer, event_id)
                })
                .collect();
            self.store
                .record_dead_letter_actions(&rows)
                .await
                .map_err(DlqError::Store)?;
            report.done.extend(ids);
        }
        info!(by = %viewer.name, discarded = report.done.len(), "dead letters discarded");
        Ok(report)
    }

    /// Produces one letter's record back onto its source topic with the
    /// key and headers ingest gives an event (`EventProducer::send_event`),
    /// and waits for the broker's acknowledgement. The record's bytes are
    /// sent unchanged, so the event keeps its event_id and content.
    pub async fn send_back(&self, letter: &DeadLetter, event: &AuditEvent) -> Result<(), String> {
        // The headers come from the record itself: only an events topic of
        // this deployment is a place to send it.
        if !self.event_topics.contains(&letter.source_topic) {
            return Err("its source is not an events topic of this deployment".into());
        }
        self.producer
            .send_event(
                &letter.source_topic,
                &event.tenant_id,
                &event.event_id,
                &letter.payload,
            )
            .await
            .map(drop)
            .map_err(|error| {
                warn!(%error, partition = letter.partition, offset = letter.offset, "redrive not acknowledged");
                "the broker did not acknowledge it; it is still waiting".to_owned()
            })
    }

    fn resource(&self) -> Resource {
        Resource {
            kind: "dead_letters".into(),
            id: self.topic.clone(),
        }
    }

    fn action_row(
        &self,
        l: &Letter,
        action: &'static str,
        reason: &str,
        viewer: &Viewer,
        event_id: &str,
    ) -> DeadLetterAction {
        DeadLetterAction {
            dlq_topic: self.topic.clone(),
            dlq_partition: l.letter.partition,
            dlq_offset: l.letter.offset,
            action,
            reason: reason.to_owned(),
            actor: viewer.name.clone(),
            access_id: viewer.access_id.clone(),
            event_id: event_id.to_owned(),
            acted_at: now_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;

    fn letter(offset: i64, reason: &str, payload: Vec<u8>) -> DeadLetter {
        DeadLetter {
            partition: 0,
            offset,
            timestamp_ms: offset,
            reason: reason.into(),
            detail: String::new(),
            source_topic: "p.admin".into(),
            source_partition: 0,
            source_offset: offset,
            key: Vec::new(),
            payload,
        }
    }

    fn inbox() -> Inbox {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let registry = Registry::load(&dir).unwrap();
        let mut good = sample();
        good.occurred_at = now_ms();
        let good = registry.encode(&good).unwrap();
        let handled = |action: &str| HandledLetter {
            dlq_partition: 0,
            dlq_offset: 0,
            action: action.into(),
            reason: String::new(),
            actor: "ops".into(),
            first_acted_at: 1,
        };
        let now = now_ms();
        let make = |offset, reason: &str, payload: &[u8], h: Option<HandledLetter>| Letter {
            recheck: Recheck::of(&registry, payload, now),
            letter: letter(offset, reason, payload.to_vec()),
            handled: h.map(|mut h| {
                h.dlq_offset = offset;
                h
            }),
        };
        Inbox {
            topic: "p.dead_letters".into(),
            read_at_ms: now,
            letters: vec![
                make(0, "bad_framing", b"junk", None),
                make(1, "unknown_schema_id", &good, None),
                make(2, "unknown_schema_id", &good, Some(handled(REDRIVEN))),
                make(3, "bad_framing", b"junk", Some(handled(DISCARDED))),
                make(4, "invalid_event", &good, None),
            ],
        }
    }

    #[test]
    fn the_page_lists_waiting_letters_and_counts_every_kind() {
        let inbox = inbox();
        let page = inbox.page(&InboxQuery::default());
        let ids: Vec<i64> = page.letters.iter().map(|l| l.id.offset).collect();
        assert_eq!(ids, [0, 1, 4], "handled letters are not listed");
        assert_eq!(page.counts.waiting, 3);
        assert_eq!(page.counts.ready, 2);
        assert_eq!(page.counts.redriven, 1);
        assert_eq!(page.counts.discarded, 1);
        assert_eq!(
            page.counts.by_reason,
            [
                ("bad_framing".to_owned(), 1),
                ("invalid_event".to_owned(), 1),
                ("unknown_schema_id".to_owned(), 1)
            ]
        );
        let filtered = inbox.page(&InboxQuery {
            reason: Some("bad_framing".into()),
            ..Default::default()
        });
        assert_eq!(filtered.letters.len(), 1);
        assert_eq!(filtered.counts.matching, 1);
        let second = inbox.page(&InboxQuery {
            page: 2,
            per_page: 2,
            reason: None,
        });
        assert_eq!((second.page, second.pages), (2, 2));
        assert_eq!(second.letters[0].id.offset, 4);
    }

    #[test]
    fn a_redrive_takes_only_waiting_letters_that_decode() {
        let inbox = inbox();
        let id = |offset| LetterId {
            partition: 0,
            offset,
        };
        let (chosen, skipped) =
            inbox.choose(&Selection::Letters(vec![id(0), id(1), id(2), id(9)]), true);
        assert_eq!(chosen.iter().map(|l| l.id()).collect::<Vec<_>>(), [id(1)]);
        let why: Vec<(i64, &str)> = skipped
            .iter()
            .map(|(i, w)| (i.offset, w.as_str()))
            .collect();
        assert_eq!(why[0].0, 0);
        assert!(why[0].1.starts_with("bad_framing"), "{why:?}");
        assert_eq!(why[1], (2, "already redriven by ops"));
        assert_eq!(why[2], (9, "not in the dead-letter topic"));

        let (all, _) = inbox.choose(&Selection::AllReady { reason: None }, true);
        assert_eq!(
            all.iter().map(|l| l.id()).collect::<Vec<_>>(),
            [id(1), id(4)]
        );
        let (none, skipped) = inbox.choose(
            &Selection::AllReady {
                reason: Some("bad_framing".into()),
            },
            true,
        );
        assert!(none.is_empty());
        assert_eq!(skipped.len(), 1, "the failing one is reported");

        // A discard takes any waiting letter, undecodable ones too.
        let (chosen, skipped) = inbox.choose(&Selection::Letters(vec![id(0), id(3)]), false);
        assert_eq!(chosen.iter().map(|l| l.id()).collect::<Vec<_>>(), [id(0)]);
        assert_eq!(skipped[0].1, "already discarded by ops");
    }
}
