//! One event's seal, checked when the event detail page asks
//! (docs/INTEGRITY.md, section 13): the event as ClickHouse holds it now is
//! hashed to its leaf and compared with the leaf its digest sealed; the
//! digest's stored leaves must hash to its signed root, and the signature
//! must hold under a published key. The digest's place in its chain is not
//! walked here (that reads the partition's digests whole); the scheduled
//! check and `attest verify` do that.

use std::path::PathBuf;
use std::sync::Arc;

use app::integrity_model::{EventSeal, EventSeals, RedactionNote, SealPlace, SealVerdict};
use app::search_model::EventDetail;
use app::store::StoreError as ConsoleError;

use super::check::leaves_problem;
use super::encoding::{hex, unhex};
use super::leaf::Sealed;
use super::redaction::{judge_row, RedactionRecord, RowHashes, RowSeal};
use super::{Digest, KeyRing};
use crate::access::Viewer;
use crate::event::Category;
use crate::store::{LeafRow, Store};

/// What the check needs besides the store, from the configuration.
#[derive(Clone)]
pub struct SealCheck {
    /// `integrity.key_dir`: the published keys, read on every check (a
    /// rotation adds keys).
    pub key_dir: PathBuf,
    /// `kafka.topic_prefix`: an event's chain is its topic's partition.
    pub topic_prefix: String,
    /// `integrity.seal`: whether the writers seal at all.
    pub sealing_on: bool,
}

/// The leaf of the event as stored now.
pub fn stored_leaf(event: &EventDetail) -> String {
    let (keys, values): (Vec<String>, Vec<String>) = event.metadata.iter().cloned().unzip();
    hex(&sealed(event, &keys, &values).leaf())
}

/// The content hash of the event as stored now.
pub fn stored_hash(event: &EventDetail) -> String {
    let (keys, values): (Vec<String>, Vec<String>) = event.metadata.iter().cloned().unzip();
    sealed(event, &keys, &values).content_hash()
}

fn sealed<'a>(event: &'a EventDetail, keys: &'a [String], values: &'a [String]) -> Sealed<'a> {
    Sealed {
        event_id: &event.event_id,
        tenant_id: &event.tenant_id,
        occurred_at: event.occurred_at,
        received_at: event.received_at,
        category: &event.category,
        action: &event.action,
        outcome: &event.outcome,
        actor_id: &event.actor_id,
        actor_type: &event.actor_type,
        actor_ip: &event.actor_ip,
        actor_user_agent: &event.actor_user_agent,
        resource_type: &event.resource_type,
        resource_id: &event.resource_id,
        source_service: &event.source_service,
        request_id: &event.request_id,
        metadata_key: keys,
        metadata_value: values,
        schema_id: event.schema_id,
        kafka_partition: event.kafka_partition,
        kafka_offset: event.kafka_offset,
    }
}

/// A digest covering the event's place, with its stored leaves.
pub struct Covering {
    pub digest: Digest,
    pub leaves: Vec<LeafRow>,
    /// Whether the digest is on the chain of the topic the event's stored
    /// category names (a changed category moves the event to another
    /// chain, where its leaf is not).
    pub own_topic: bool,
}

/// The verdict from the digests covering the event's partition and offset,
/// in any events topic. A leaf at the event's offset names the event (its
/// tenant and id) as sealed; several digests may hold it (one left by a
/// writer that crashed before committing, and the one sealing the rows
/// again), and the worst finding among them is the verdict.
///
/// A row that differs from its sealed leaf verifies as *redacted* when a
/// valid redaction record explains it (docs/INTEGRITY.md, section 14):
/// `records` are the records naming the event.
pub fn judge(
    event: &EventDetail,
    stored_leaf: &str,
    covering: &[Covering],
    records: &[RedactionRecord],
    keys: &KeyRing,
    sealing_on: bool,
) -> SealVerdict {
    let content_hash = stored_hash(event);
    let row = RowHashes {
        tenant_id: &event.tenant_id,
        event_id: &event.event_id,
        content_hash: &content_hash,
        received_at: event.received_at,
        schema_id: event.schema_id,
        kafka_partition: event.kafka_partition,
        kafka_offset: event.kafka_offset,
    };
    let mut verdict = SealVerdict::Unsealed { sealing_on };
    for c in covering {
        let d = &c.digest;
        let at_offset = c
            .leaves
            .iter()
            .position(|l| l.kafka_offset == event.kafka_offset);
        let Some(index) = at_offset else { continue };
        let leaf = &c.leaves[index];
        let names_it = leaf.event_id == event.event_id && leaf.tenant_id == event.tenant_id;
        // In another topic the same offset is another event; only the
        // event's own chain can say its id or tenant was changed.
        if !names_it && !c.own_topic {
            continue;
        }
        let place = SealPlace {
            digest_hash: d.digest_hash.clone(),
            topic: d.topic.clone(),
            partition: d.partition,
            first_offset: d.first_offset,
            last_offset: d.last_offset,
            row_count: d.row_count,
            leaf_index: u64::from(leaf.position),
            sealed_at: d.sealed_at,
            key_id: d.key_id.clone(),
        };
        let found = if leaves_problem(d, &c.leaves).is_some() {
            SealVerdict::LeavesAltered { place }
        } else if let Err(problem) = d.check(keys) {
            SealVerdict::DigestInvalid {
                place,
                problem: problem.to_string(),
            }
        } else if !names_it || !c.own_topic {
            SealVerdict::Altered { place }
        } else if leaf.leaf == stored_leaf {
            SealVerdict::Verified { place }
        } else {
            match unhex::<32>(&leaf.leaf).map(|sealed| judge_row(&row, &sealed, records, keys)) {
                Some(RowSeal::Intact) => SealVerdict::Verified { place },
                Some(RowSeal::Redacted(r)) => SealVerdict::Redacted {
                    place,
                    redaction: RedactionNote {
                        request_id: r.request_id.clone(),
                        fields: r.fields.clone(),
                        requested_by: r.requested_by.clone(),
                        approved_by: r.approved_by.clone(),
                        reason: r.reason.clone(),
                        executed_at: r.executed_at,
                        key_id: r.key_id.clone(),
                    },
                },
                Some(RowSeal::BadRecord(_, problem)) => SealVerdict::RedactionInvalid {
                    place,
                    problem: problem.to_string(),
                },
                Some(RowSeal::Altered) | None => SealVerdict::Altered { place },
            }
        };
        if found.severity() > verdict.severity() {
            verdict = found;
        }
    }
    // The identity column: a copy inserted with its content intact and
    // another hash matches its sealed leaf (the leaf is computed from the
    // content), yet Search counts it as a second event. A row changed in
    // place differs from its column too, but "altered" says more.
    if !verdict.failed() && event.content_hash != content_hash {
        return SealVerdict::IdentityForged {
            stored_hash: event.content_hash.clone(),
            content_hash,
        };
    }
    verdict
}

/// The check over the store, for one viewer.
pub struct ScopedSeals {
    pub store: Store,
    pub setup: Arc<SealCheck>,
    pub viewer: Viewer,
}

#[async_trait::async_trait]
impl EventSeals for ScopedSeals {
    async fn event_seal(
        &self,
        tenant: &str,
        event_id: &str,
        at_ms: Option<i64>,
        content: Option<&str>,
    ) -> Result<Option<EventSeal>, ConsoleError> {
        // Another tenant's event is answered like a missing one, as the
        // detail page answers it.
        if !self.viewer.may_see(tenant) {
            return Ok(None);
        }
        // The page shows the event from its own request, but the row is
        // read again here: the check is of what ClickHouse holds now, so a
        // row sent along by the browser would prove nothing.
        let Some(event) = self
            .store
            .event_detail(tenant, event_id, at_ms, content)
            .await?
        else {
            return Ok(None);
        };
        let keys = KeyRing::load(&self.setup.key_dir).map_err(|error| {
            tracing::warn!(%error, "cannot read the published integrity keys");
            ConsoleError::Unavailable(error.to_string())
        })?;
        let own_topic = Category::from_symbol(&event.category)
            .map(|c| crate::topics::for_category(&self.setup.topic_prefix, c));
        // Every events topic has its own offsets: the digests at the
        // event's partition and offset, in all of them, in one read.
        let digests = self
            .store
            .digests_overlapping(
                &crate::topics::event_topics(&self.setup.topic_prefix),
                event.kafka_partition,
                event.kafka_offset,
                event.kafka_offset,
            )
            .await
            .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
        let mut covering = Vec::with_capacity(digests.len());
        for digest in digests {
            let leaves = self
                .store
                .leaves_of(&digest)
                .await
                .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
            covering.push(Covering {
                own_topic: own_topic.as_deref() == Some(digest.topic.as_str()),
                digest,
                leaves,
            });
        }
        let records = self
            .store
            .redaction_records_of_events(&event.tenant_id, std::slice::from_ref(&event.event_id))
            .await
            .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
        let verdict = judge(
            &event,
            &stored_leaf(&event),
            &covering,
            &records,
            &keys,
            self.setup.sealing_on,
        );
        Ok(Some(EventSeal {
            verdict,
            checked_at: crate::ingest::now_ms(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::digest::Unsigned;
    use crate::integrity::keys::tests::ring_with_one_key;
    use crate::integrity::merkle;

    const TOPIC: &str = "attest.events.admin";

    fn event(offset: i64) -> EventDetail {
        let mut e = EventDetail {
            event_id: format!("e-{offset}"),
            tenant_id: "acme".into(),
            occurred_at: 1_800_000_000_000,
            received_at: 1_800_000_000_100,
            category: "admin".into(),
            action: "user.delete".into(),
            outcome: "success".into(),
            actor_id: "alice".into(),
            actor_type: "user".into(),
            actor_ip: "192.0.2.1".into(),
            actor_user_agent: String::new(),
            resource_type: "user".into(),
            resource_id: "bob".into(),
            source_service: "iam".into(),
            request_id: String::new(),
            metadata: vec![("ticket".into(), "T-1".into())],
            schema_id: 1,
            kafka_partition: 0,
            kafka_offset: offset,
            content_hash: String::new(),
            same_id: Vec::new(),
        };
        // As the writer stores it.
        e.content_hash = stored_hash(&e);
        e
    }

    /// A signed digest over events at offsets 10..=13, as the writer
    /// seals them, with its leaves.
    fn sealed(key: &crate::integrity::keys::SigningKey) -> Covering {
        let leaves: Vec<LeafRow> = (10..=13)
            .enumerate()
            .map(|(i, offset)| {
                let e = event(offset);
                LeafRow {
                    digest_hash: String::new(),
                    topic: TOPIC.into(),
                    partition: 0,
                    kafka_offset: offset,
                    position: i as u32,
                    tenant_id: e.tenant_id.clone(),
                    event_id: e.event_id.clone(),
                    leaf: stored_leaf(&e),
                    recorded: None,
                }
            })
            .collect();
        let hashes: Vec<merkle::Hash> = leaves
            .iter()
            .map(|l| super::super::encoding::unhex::<32>(&l.leaf).unwrap())
            .collect();
        let digest = Unsigned {
            topic: TOPIC,
            partition: 0,
            first_offset: 10,
            last_offset: 13,
            row_count: 4,
            root: merkle::root(&hashes),
            prev_hash: super::super::digest::GENESIS,
            sealed_at: 1_800_000_001_000,
        }
        .sign(key);
        Covering {
            digest,
            leaves,
            own_topic: true,
        }
    }

    fn verdict(e: &EventDetail, covering: &[Covering], keys: &KeyRing) -> SealVerdict {
        judge(e, &stored_leaf(e), covering, &[], keys, true)
    }

    #[test]
    fn an_untouched_event_verifies_with_its_place() {
        let (keys, key, _dir) = ring_with_one_key();
        let c = sealed(&key);
        match verdict(&event(12), &[c], &keys) {
            SealVerdict::Verified { place } => {
                assert_eq!(place.leaf_index, 2);
                assert_eq!((place.first_offset, place.last_offset), (10, 13));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_changed_field_is_named_altered() {
        let (keys, key, _dir) = ring_with_one_key();
        let c = sealed(&key);
        let changes: [fn(&mut EventDetail); 4] = [
            |e| e.actor_id = "mallory".into(),
            |e| e.metadata[0].1 = "T-2".into(),
            |e| e.received_at += 1,
            |e| e.event_id = "someone-else".into(),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut e = event(11);
            change(&mut e);
            let v = verdict(&e, std::slice::from_ref(&c), &keys);
            assert!(
                matches!(v, SealVerdict::Altered { .. }),
                "change {i}: {v:?}"
            );
        }
    }

    #[test]
    fn a_copy_under_another_content_hash_is_named_forged_sealed_or_not() {
        let (keys, key, _dir) = ring_with_one_key();
        let c = sealed(&key);
        let mut e = event(12);
        e.content_hash = "ab".repeat(32);
        let v = verdict(&e, std::slice::from_ref(&c), &keys);
        assert!(v.failed(), "{v:?}");
        assert_eq!(
            v,
            SealVerdict::IdentityForged {
                stored_hash: "ab".repeat(32),
                content_hash: event(12).content_hash,
            }
        );
        // Without a digest holding it, too.
        let mut e = event(40);
        e.content_hash = "ab".repeat(32);
        let v = verdict(&e, std::slice::from_ref(&c), &keys);
        assert!(matches!(v, SealVerdict::IdentityForged { .. }), "{v:?}");
        // A field changed in place (its column left as it was) is altered:
        // the verdict that says more.
        let mut e = event(11);
        e.actor_id = "mallory".into();
        let v = verdict(&e, &[c], &keys);
        assert!(matches!(v, SealVerdict::Altered { .. }), "{v:?}");
    }

    #[test]
    fn a_changed_category_is_caught_on_the_chain_that_sealed_it() {
        let (keys, key, _dir) = ring_with_one_key();
        let mut c = sealed(&key);
        // The stored category now names another topic than the digest's.
        c.own_topic = false;
        let mut e = event(11);
        e.category = "system".into();
        let v = verdict(&e, &[c], &keys);
        assert!(matches!(v, SealVerdict::Altered { .. }), "{v:?}");
    }

    #[test]
    fn another_topics_event_at_the_same_offset_is_not_this_one() {
        let (keys, key, _dir) = ring_with_one_key();
        let mut c = sealed(&key);
        c.own_topic = false;
        for l in &mut c.leaves {
            l.event_id = format!("other-{}", l.kafka_offset);
        }
        let v = verdict(&event(11), &[c], &keys);
        assert_eq!(v, SealVerdict::Unsealed { sealing_on: true });
    }

    #[test]
    fn a_redacted_event_is_redacted_and_a_forged_record_is_not() {
        use crate::integrity::redaction::{Unsigned, MARKER};
        let (keys, key, _dir) = ring_with_one_key();
        let c = sealed(&key);
        let original = event(11);
        let mut redacted = original.clone();
        redacted.actor_ip = MARKER.into();
        // A redaction stores the redacted content's hash with the row.
        redacted.content_hash = stored_hash(&redacted);
        let record = Unsigned {
            request_id: "req-1",
            tenant_id: &original.tenant_id,
            event_id: &original.event_id,
            kafka_partition: 0,
            kafka_offset: 11,
            original_hash: &stored_hash(&original),
            redacted_hash: &stored_hash(&redacted),
            fields: &["actor.ip".into()],
            requested_by: "alice",
            approved_by: "bob",
            reason: "erasure",
            executed_at: 1_800_000_002_000,
        }
        .sign(&key);
        let judged = |e: &EventDetail, records: &[RedactionRecord]| {
            judge(
                e,
                &stored_leaf(e),
                std::slice::from_ref(&c),
                records,
                &keys,
                true,
            )
        };
        match judged(&redacted, std::slice::from_ref(&record)) {
            SealVerdict::Redacted { place, redaction } => {
                assert_eq!(place.leaf_index, 1);
                assert_eq!(redaction.fields, vec!["actor.ip".to_owned()]);
                assert_eq!(
                    (
                        redaction.requested_by.as_str(),
                        redaction.approved_by.as_str()
                    ),
                    ("alice", "bob")
                );
            }
            other => panic!("{other:?}"),
        }
        // Without its record, or changed after the redaction: altered.
        assert!(matches!(
            judged(&redacted, &[]),
            SealVerdict::Altered { .. }
        ));
        let mut after = redacted.clone();
        after.action = "user.create".into();
        assert!(matches!(
            judged(&after, std::slice::from_ref(&record)),
            SealVerdict::Altered { .. }
        ));
        // A forged record: the signature fails, and the page says so.
        let mut forged = record.clone();
        forged.approved_by = "alice".into();
        let v = judged(&redacted, std::slice::from_ref(&forged));
        assert!(
            matches!(&v, SealVerdict::RedactionInvalid { problem, .. } if problem.contains("signature")),
            "{v:?}"
        );
        // The untouched event still verifies with a record around.
        assert!(matches!(
            judged(&original, std::slice::from_ref(&record)),
            SealVerdict::Verified { .. }
        ));
    }

    #[test]
    fn changed_leaves_and_bad_signatures_are_told_apart() {
        let (keys, key, _dir) = ring_with_one_key();
        let mut c = sealed(&key);
        c.leaves[0].leaf = "00".repeat(32);
        let v = verdict(&event(12), std::slice::from_ref(&c), &keys);
        assert!(matches!(v, SealVerdict::LeavesAltered { .. }), "{v:?}");

        let mut c = sealed(&key);
        c.digest.row_count = 5;
        let v = verdict(&event(12), std::slice::from_ref(&c), &keys);
        // The count is signed: the leaves no longer match it either, and
        // the leaves' finding is the worse one.
        assert!(matches!(v, SealVerdict::LeavesAltered { .. }), "{v:?}");

        let mut c = sealed(&key);
        c.digest.sealed_at += 1;
        let v = verdict(&event(12), std::slice::from_ref(&c), &keys);
        assert!(
            matches!(&v, SealVerdict::DigestInvalid { problem, .. } if problem.contains("signature")),
            "{v:?}"
        );
    }

    #[test]
    fn the_worst_of_several_digests_is_shown_and_none_means_unsealed() {
        let (keys, key, _dir) = ring_with_one_key();
        let good = sealed(&key);
        let mut bad = sealed(&key);
        bad.digest.sealed_at += 1;
        let v = verdict(&event(12), &[good, bad], &keys);
        assert!(matches!(v, SealVerdict::DigestInvalid { .. }), "{v:?}");
        let v = judge(&event(12), "x", &[], &[], &keys, false);
        assert_eq!(v, SealVerdict::Unsealed { sealing_on: false });
    }
}
