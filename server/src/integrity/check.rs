//! Re-verifies stored rows against their digests: the chain of each
//! partition, every digest's signature, the leaves under every root, and
//! every sealed row recomputed from what ClickHouse holds now. Each
//! problem names the digest, and where it is about one event, the event.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::checkpoint::Checkpoint;
use super::digest::{Digest, DigestProblem, GENESIS};
use super::encoding::unhex;
use super::keys::KeyRing;
use super::leaf::{leaf_of, Sealed};
use super::merkle;
use super::redaction::{judge_row, RedactionRecord, RowHashes, RowSeal};
use super::retention_record::RetentionRecord;
use super::seal::successor;
use crate::store::{EventRow, LeafRow, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    #[error("digest {digest}: {problem}")]
    Digest {
        digest: String,
        #[serde(serialize_with = "as_text")]
        problem: DigestProblem,
    },
    #[error("digest {missing} is missing: digest {referenced_by} (offsets {first_offset}–{last_offset}) chains to it")]
    MissingDigest {
        missing: String,
        referenced_by: String,
        first_offset: i64,
        last_offset: i64,
    },
    #[error("digest {digest} starts at offset {first_offset}, but the digest before it ends at {previous_last}")]
    NotContiguous {
        digest: String,
        first_offset: i64,
        previous_last: i64,
    },
    #[error("digest {digest} (offsets {first_offset}–{last_offset}) is on no chain and its offsets are not covered by one")]
    OffChain {
        digest: String,
        first_offset: i64,
        last_offset: i64,
    },
    #[error(
        "digest {digest}: its stored leaves ({stored} of {sealed}) do not hash to its signed root"
    )]
    LeavesAltered {
        digest: String,
        stored: usize,
        sealed: u64,
    },
    #[error("event {event_id} of tenant {tenant_id} (offset {offset}, digest {digest}) was changed after it was sealed")]
    EventAltered {
        digest: String,
        tenant_id: String,
        event_id: String,
        offset: i64,
    },
    #[error("event {event_id} of tenant {tenant_id} (offset {offset}, digest {digest}): a stored copy's content_hash column is not the hash of its content, so Search and the dashboards count that copy as another event")]
    IdentityForged {
        digest: String,
        tenant_id: String,
        event_id: String,
        offset: i64,
    },
    #[error("event {event_id} of tenant {tenant_id} (offset {offset}, digest {digest}) is redacted, but its redaction record does not verify: {why}")]
    RedactionInvalid {
        digest: String,
        tenant_id: String,
        event_id: String,
        offset: i64,
        why: String,
    },
    #[error("event {event_id} of tenant {tenant_id} (offset {offset}, digest {digest}) is missing from the table")]
    EventMissing {
        digest: String,
        tenant_id: String,
        event_id: String,
        offset: i64,
    },
    #[error("checkpoint at digest {digest} does not verify: {why}; the chain is walked whole")]
    CheckpointInvalid { digest: String, why: String },
    #[error("retention record of tenant {tenant_id}, month {month}, {topic}[{partition}] does not verify: {why}; the rows it names count as missing")]
    RetentionRecordInvalid {
        topic: String,
        partition: i32,
        tenant_id: String,
        month: u32,
        why: String,
    },
}

impl Problem {
    /// Whether it is about the chain itself (its links, its digests'
    /// signatures, a checkpoint), not about rows: a chain with none of
    /// these may be checkpointed.
    pub fn breaks_chain(&self) -> bool {
        matches!(
            self,
            Problem::Digest { .. }
                | Problem::MissingDigest { .. }
                | Problem::NotContiguous { .. }
                | Problem::OffChain { .. }
                | Problem::CheckpointInvalid { .. }
        )
    }

    /// The problem as (kind, subject), the names docs/INTEGRITY.md and the
    /// independent verifier's output use: the subject is the digest hash,
    /// the event id, or for a retention record `tenant/month`.
    pub fn kind_and_subject(&self) -> (&'static str, String) {
        match self {
            Problem::Digest { digest, .. } => ("bad_digest", digest.clone()),
            Problem::MissingDigest { missing, .. } => ("missing_digest", missing.clone()),
            Problem::NotContiguous { digest, .. } => ("not_contiguous", digest.clone()),
            Problem::OffChain { digest, .. } => ("off_chain", digest.clone()),
            Problem::LeavesAltered { digest, .. } => ("leaves_altered", digest.clone()),
            Problem::EventAltered { event_id, .. } => ("event_altered", event_id.clone()),
            Problem::IdentityForged { event_id, .. } => ("identity_forged", event_id.clone()),
            Problem::EventMissing { event_id, .. } => ("event_missing", event_id.clone()),
            Problem::RedactionInvalid { event_id, .. } => ("bad_redaction", event_id.clone()),
            Problem::RetentionRecordInvalid {
                tenant_id, month, ..
            } => ("bad_retention_record", format!("{tenant_id}/{month}")),
            Problem::CheckpointInvalid { digest, .. } => ("bad_checkpoint", digest.clone()),
        }
    }
}

fn as_text<S: serde::Serializer>(p: &DigestProblem, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

/// One partition's findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub digests: usize,
    pub events: usize,
    /// Digests left off the chain by a writer that lost its partition or
    /// crashed before committing, whose rows a chain digest seals again.
    pub superseded: usize,
    /// Sealed events stored redacted under a valid redaction record: not
    /// problems, named so that nobody mistakes them for tampering.
    pub redacted: Vec<Redacted>,
    /// Sealed events whose own row is gone because it was an exact
    /// re-send of a row stored at another offset, which the table kept
    /// when it merged the two: nothing is lost (docs/INTEGRITY.md, 8).
    pub folded: Vec<Folded>,
    /// Sealed events removed by retention under a valid retention record
    /// (docs/INTEGRITY.md, 15): counted, not listed (whole months).
    pub expired: usize,
    /// Each chain's walk: where it ended and whether its links and
    /// signatures held (what a new checkpoint may vouch for).
    pub chains: Vec<ChainWalk>,
    pub problems: Vec<(String, i32, Problem)>,
}

/// One chain as this check walked it.
#[derive(Debug, Clone, Serialize)]
pub struct ChainWalk {
    pub topic: String,
    pub partition: i32,
    /// The newest digest on the chain, if it has any.
    pub head: Option<Digest>,
    /// The checkpoint the walk stopped at (`None`: walked to the start).
    pub from_checkpoint: Option<String>,
    /// No missing or unchained digest, no gap, every signature valid.
    pub whole: bool,
}

impl ChainWalk {
    /// The committed head a new checkpoint may vouch for: the chain was
    /// walked whole, and not just from a checkpoint at that very digest.
    pub fn checkpoint_due(&self) -> Option<&Digest> {
        self.head.as_ref().filter(|h| {
            self.whole && self.from_checkpoint.as_deref() != Some(h.digest_hash.as_str())
        })
    }
}

/// A sealed leaf whose row the table merged into another stored copy of
/// the same event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Folded {
    pub digest: String,
    pub tenant_id: String,
    pub event_id: String,
    pub offset: i64,
    /// Where the copy that stands for it is stored.
    pub kept_partition: i32,
    pub kept_offset: i64,
}

/// A sealed event that verifies as redacted (docs/INTEGRITY.md, 14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redacted {
    pub digest: String,
    pub tenant_id: String,
    pub event_id: String,
    pub offset: i64,
    pub request_id: String,
    pub fields: Vec<String>,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        self.digests += other.digests;
        self.events += other.events;
        self.superseded += other.superseded;
        self.redacted.extend(other.redacted);
        self.folded.extend(other.folded);
        self.expired += other.expired;
        self.chains.extend(other.chains);
        self.problems.extend(other.problems);
    }
}

/// Orders a partition's digests into its chain, newest first, from `head`
/// (the committed head when known, else the digest reaching furthest),
/// back to the start or to `anchor` (a checkpoint's digest, included).
/// Returns the chain and the problems of its links.
pub fn chain<'a>(
    digests: &'a [Digest],
    head: Option<&str>,
    anchor: Option<&str>,
) -> (Vec<&'a Digest>, Vec<Problem>) {
    let by_hash: HashMap<&str, &Digest> = digests
        .iter()
        .map(|d| (d.digest_hash.as_str(), d))
        .collect();
    let mut problems = Vec::new();
    let mut visited: HashSet<&str> = HashSet::new();
    let furthest = |below: i64, visited: &HashSet<&str>| {
        digests
            .iter()
            .filter(|d| d.last_offset < below && !visited.contains(d.digest_hash.as_str()))
            .max_by(|a, b| {
                a.last_offset
                    .cmp(&b.last_offset)
                    .then_with(|| b.digest_hash.cmp(&a.digest_hash))
            })
    };
    let mut out: Vec<&Digest> = Vec::new();
    let mut current = match head.and_then(|h| by_hash.get(h).copied()) {
        Some(d) => Some(d),
        None => furthest(i64::MAX, &visited),
    };
    while let Some(d) = current {
        if !visited.insert(d.digest_hash.as_str()) {
            break;
        }
        if let Some(newer) = out.last() {
            if newer.prev_hash == d.digest_hash
                && newer.first_offset != d.last_offset.saturating_add(1)
            {
                problems.push(Problem::NotContiguous {
                    digest: newer.digest_hash.clone(),
                    first_offset: newer.first_offset,
                    previous_last: d.last_offset,
                });
            }
        }
        out.push(d);
        if d.prev_hash == GENESIS || anchor == Some(d.digest_hash.as_str()) {
            current = None;
            continue;
        }
        current = match by_hash.get(d.prev_hash.as_str()) {
            Some(prev) => Some(*prev),
            None => {
                problems.push(Problem::MissingDigest {
                    missing: d.prev_hash.clone(),
                    referenced_by: d.digest_hash.clone(),
                    first_offset: d.first_offset,
                    last_offset: d.last_offset,
                });
                // Go on with what is older than the break.
                furthest(d.first_offset, &visited)
            }
        };
    }
    (out, problems)
}

/// Checks one partition's stored data; `since_ms` limits the row checks
/// to digests sealed since then. A limited check (`since_ms` above
/// `i64::MIN`) walks the chain back to the newest checkpoint that verifies
/// (docs/INTEGRITY.md, 16), so its cost follows what was sealed since; an
/// unlimited one walks the chain whole and checks every signature.
pub async fn check_partition(
    store: &Store,
    keys: &KeyRing,
    topic: &str,
    partition: i32,
    head: Option<&str>,
    since_ms: i64,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let push = |report: &mut Report, p: Problem| {
        report.problems.push((topic.to_owned(), partition, p));
    };
    let anchor = if since_ms == i64::MIN {
        None
    } else {
        let (anchor, problems) = newest_checkpoint(store, keys, topic, partition).await?;
        for p in problems {
            push(&mut report, p);
        }
        anchor
    };
    let digests = match &anchor {
        Some(c) => {
            store
                .digests_of_partition_since(topic, partition, c.last_offset, since_ms)
                .await?
        }
        None => store.digests_of_partition(topic, partition).await?,
    };
    report.digests = digests.len();
    let committed = head;
    if let Some(h) = head {
        if !digests.iter().any(|d| d.digest_hash == h) {
            push(
                &mut report,
                Problem::MissingDigest {
                    missing: h.to_owned(),
                    referenced_by: "the offset committed in Kafka".into(),
                    first_offset: -1,
                    last_offset: -1,
                },
            );
        }
    }
    // A digest stored after the committed head and waiting for its commit
    // (or for the next owner to adopt it) moves the chain on, exactly as
    // the writer adopts it.
    let head = head.map(|committed| standing(&digests, committed));
    let anchor_hash = anchor.as_ref().map(|c| c.digest_hash.as_str());
    let (on_chain, problems) = chain(&digests, head, anchor_hash);
    for p in problems {
        push(&mut report, p);
    }
    let chained: HashSet<&str> = on_chain.iter().map(|d| d.digest_hash.as_str()).collect();
    // Digests up to the checkpoint were walked when it was signed: read
    // again only because they were sealed recently, their rows rechecked.
    let vouched = |d: &Digest| {
        anchor
            .as_ref()
            .is_some_and(|c| d.last_offset <= c.last_offset)
    };
    let spans = merged(
        on_chain
            .iter()
            .map(|d| (d.first_offset, d.last_offset))
            .chain(anchor.as_ref().map(|c| (i64::MIN, c.last_offset))),
    );
    let covered = |first: i64, last: i64| spans.iter().any(|&(a, b)| a <= first && last <= b);
    for d in &digests {
        if chained.contains(d.digest_hash.as_str()) || vouched(d) {
            continue;
        }
        if covered(d.first_offset, d.last_offset) {
            report.superseded += 1;
        } else {
            push(
                &mut report,
                Problem::OffChain {
                    digest: d.digest_hash.clone(),
                    first_offset: d.first_offset,
                    last_offset: d.last_offset,
                },
            );
        }
    }
    // Oldest first: the chain, then what the checkpoint vouched for.
    let walked: Vec<&Digest> = on_chain
        .iter()
        .rev()
        .copied()
        .chain(
            digests
                .iter()
                .filter(|d| vouched(d) && !chained.contains(d.digest_hash.as_str())),
        )
        .collect();
    // Redaction records name their rows by partition and offset, not
    // topic: the rows' own identity picks the right ones.
    let rechecked = || walked.iter().filter(|d| d.sealed_at >= since_ms);
    let records = match (
        rechecked().map(|d| d.first_offset).min(),
        rechecked().map(|d| d.last_offset).max(),
    ) {
        (Some(from), Some(to)) => {
            store
                .redaction_records_in_range(partition, from, to)
                .await?
        }
        _ => Vec::new(),
    };
    let mut expiry = Expiry::default();
    for d in walked.iter().copied() {
        if let Err(problem) = d.check(keys) {
            push(
                &mut report,
                Problem::Digest {
                    digest: d.digest_hash.clone(),
                    problem,
                },
            );
        }
        if d.sealed_at < since_ms {
            continue;
        }
        let leaves = store.leaves_of(d).await?;
        if let Some(p) = leaves_problem(d, &leaves) {
            push(&mut report, p);
        }
        let rows = store.rows_of(d).await?;
        report.events += leaves.len();
        let judged = rows_problems(d, &leaves, &rows, &records, keys);
        for p in judged.problems {
            push(&mut report, p);
        }
        report.redacted.extend(judged.redacted);
        for outcome in judge_unfound(store, keys, d, judged.unfound, &mut expiry).await? {
            match outcome {
                Unfound::Folded(folded) => report.folded.push(folded),
                Unfound::Expired => report.expired += 1,
                Unfound::Missing(missing) => push(&mut report, missing),
            }
        }
    }
    for p in expiry.problems {
        push(&mut report, p);
    }
    // Only the committed head is vouched for: a digest stored past it may
    // still be left off the chain if its writer dies before committing.
    let whole = !report.problems.iter().any(|(_, _, p)| p.breaks_chain());
    let head_digest = committed.and_then(|h| digests.iter().find(|d| d.digest_hash == h));
    report.chains.push(ChainWalk {
        topic: topic.to_owned(),
        partition,
        head: head_digest.cloned(),
        from_checkpoint: anchor.map(|c| c.digest_hash),
        whole,
    });
    Ok(report)
}

/// The newest checkpoint of the chain that verifies, and a problem for
/// each newer one that does not.
async fn newest_checkpoint(
    store: &Store,
    keys: &KeyRing,
    topic: &str,
    partition: i32,
) -> Result<(Option<Checkpoint>, Vec<Problem>), StoreError> {
    let mut problems = Vec::new();
    for c in store.checkpoints_of(topic, partition).await? {
        match c.check(keys) {
            Ok(()) => return Ok((Some(c), problems)),
            Err(why) => problems.push(Problem::CheckpointInvalid {
                digest: c.digest_hash.clone(),
                why: why.to_string(),
            }),
        }
    }
    Ok((None, problems))
}

/// What a sealed leaf without its row at its offset is.
enum Unfound {
    Folded(Folded),
    Expired,
    Missing(Problem),
}

/// The valid retention records of one chain, read per tenant when a leaf
/// of that tenant needs them; each record's signature is checked once.
#[derive(Default)]
struct Expiry {
    by_tenant: HashMap<String, Vec<RetentionRecord>>,
    problems: Vec<Problem>,
}

impl Expiry {
    async fn covers(
        &mut self,
        store: &Store,
        keys: &KeyRing,
        d: &Digest,
        l: &LeafRow,
    ) -> Result<bool, StoreError> {
        if !self.by_tenant.contains_key(&l.tenant_id) {
            let mut valid = Vec::new();
            for r in store
                .retention_records_of(&d.topic, d.partition, &l.tenant_id)
                .await?
            {
                match r.check(keys) {
                    Ok(()) => valid.push(r),
                    Err(why) => self.problems.push(Problem::RetentionRecordInvalid {
                        topic: r.topic.clone(),
                        partition: r.partition,
                        tenant_id: r.tenant_id.clone(),
                        month: r.month,
                        why: why.to_string(),
                    }),
                }
            }
            self.by_tenant.insert(l.tenant_id.clone(), valid);
        }
        Ok(self.by_tenant.get(&l.tenant_id).is_some_and(|records| {
            records
                .iter()
                .any(|r| r.covers(&d.topic, d.partition, &l.tenant_id, l.kafka_offset))
        }))
    }
}

/// The leaves whose rows are not at their offsets: each was removed by
/// retention under a valid record, is folded into another stored copy of
/// its event, or is missing. Retention first: it can name a whole month
/// of leaves and costs a lookup in records read once per chain and
/// tenant, while copies are searched in the table, only for what is left
/// (re-sends, or rows deleted behind Attest's back), a bounded number of
/// ids per query.
async fn judge_unfound(
    store: &Store,
    keys: &KeyRing,
    d: &Digest,
    unfound: Vec<LeafRow>,
    expiry: &mut Expiry,
) -> Result<Vec<Unfound>, StoreError> {
    let mut out = Vec::with_capacity(unfound.len());
    let mut left = Vec::new();
    for l in unfound {
        if expiry.covers(store, keys, d, &l).await? {
            out.push(Unfound::Expired);
        } else {
            left.push(l);
        }
    }
    let mut by_tenant: HashMap<&str, Vec<String>> = HashMap::new();
    for l in left.iter().filter(|l| l.recorded.is_some()) {
        by_tenant
            .entry(l.tenant_id.as_str())
            .or_default()
            .push(l.event_id.clone());
    }
    let mut copies = Vec::new();
    let mut records = Vec::new();
    for (tenant, ids) in by_tenant {
        for chunk in ids.chunks(COPIES_PER_QUERY) {
            copies.extend(store.rows_of_events(tenant, chunk).await?);
            records.extend(store.redaction_records_of_events(tenant, chunk).await?);
        }
    }
    for l in &left {
        out.push(match folded_into(l, &copies, &records, keys) {
            Some(kept) => Unfound::Folded(Folded {
                digest: d.digest_hash.clone(),
                tenant_id: l.tenant_id.clone(),
                event_id: l.event_id.clone(),
                offset: l.kafka_offset,
                kept_partition: kept.kafka_partition,
                kept_offset: kept.kafka_offset,
            }),
            None => Unfound::Missing(Problem::EventMissing {
                digest: d.digest_hash.clone(),
                tenant_id: l.tenant_id.clone(),
                event_id: l.event_id.clone(),
                offset: l.kafka_offset,
            }),
        });
    }
    Ok(out)
}

/// Event ids per search for stored copies: a statement of bounded size
/// even when a mass deletion leaves thousands of leaves without rows.
const COPIES_PER_QUERY: usize = 1_000;

/// The stored copy a sealed leaf without its row was folded into, if any:
/// a row of the same tenant and event id whose content hash (or, if it is
/// redacted, the original hash of its valid redaction record) gives the
/// sealed leaf again with the received_at and schema_id the set recorded
/// at the leaf's own partition and offset. Only an exact copy of what was
/// sealed can: the content hash covers everything the sender said.
pub fn folded_into<'a>(
    l: &LeafRow,
    copies: &'a [EventRow],
    records: &[RedactionRecord],
    keys: &KeyRing,
) -> Option<&'a EventRow> {
    let recorded = l.recorded?;
    let sealed = unhex::<32>(&l.leaf)?;
    let leaf = |content_hash: &str| {
        leaf_of(
            content_hash,
            recorded.received_at,
            recorded.schema_id,
            l.partition,
            l.kafka_offset,
        )
    };
    copies
        .iter()
        .filter(|c| c.tenant_id == l.tenant_id && c.event_id == l.event_id)
        .find(|c| {
            let own = Sealed::from(*c).content_hash();
            leaf(&own) == sealed
                || records.iter().any(|r| {
                    r.names(&c.tenant_id, &c.event_id, c.kafka_partition, c.kafka_offset)
                        && r.redacted_hash == own
                        && leaf(&r.original_hash) == sealed
                        && r.check(keys).is_ok()
                })
        })
}

/// Where a chain stands: its committed head, moved on over every stored
/// digest that extends it (stored, its commit not yet made), as a new
/// owner of the partition would adopt them. A head that is not stored
/// stays as it is, for the check to name it missing.
pub fn standing<'a>(digests: &'a [Digest], committed: &'a str) -> &'a str {
    let mut tip = committed;
    let mut after = digests
        .iter()
        .find(|d| d.digest_hash == committed)
        .map(|d| d.last_offset);
    while let Some(next) = after.and_then(|a| successor(digests, tip, a)) {
        tip = next.digest_hash.as_str();
        after = Some(next.last_offset);
    }
    tip
}

/// Offset ranges merged where they touch or overlap, in order: a range is
/// covered by the chain when one merged span holds it.
fn merged(ranges: impl Iterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut ranges: Vec<(i64, i64)> = ranges.collect();
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (first, last) in ranges {
        match out.last_mut() {
            Some(span) if first <= span.1.saturating_add(1) => span.1 = span.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

/// The leaves must be the digest's, all of them, hashing to its root.
pub fn leaves_problem(d: &Digest, leaves: &[LeafRow]) -> Option<Problem> {
    let hashes: Option<Vec<merkle::Hash>> = leaves.iter().map(|l| unhex::<32>(&l.leaf)).collect();
    let in_order = leaves
        .iter()
        .enumerate()
        .all(|(i, l)| l.position as usize == i);
    let ok = in_order
        && leaves.len() as u64 == d.row_count
        && hashes.is_some_and(|h| d.root_bytes() == Some(merkle::root(&h)));
    (!ok).then(|| Problem::LeavesAltered {
        digest: d.digest_hash.clone(),
        stored: leaves.len(),
        sealed: d.row_count,
    })
}

/// What the rows of one digest are.
#[derive(Debug, Default)]
pub struct Judged {
    pub problems: Vec<Problem>,
    pub redacted: Vec<Redacted>,
    /// Leaves with no row at their offset: missing, or folded into another
    /// copy ([`folded_into`] decides, with rows from elsewhere).
    pub unfound: Vec<LeafRow>,
}

/// Every sealed leaf must have its row, unchanged or redacted under a
/// valid record (section 14), and every copy of it the content hash of its
/// own content in its `content_hash` column (section 8, step 4); a row is
/// found by its offset and event id (offsets repeat across topics).
pub fn rows_problems(
    d: &Digest,
    leaves: &[LeafRow],
    rows: &[(EventRow, String)],
    records: &[RedactionRecord],
    keys: &KeyRing,
) -> Judged {
    let mut found: HashMap<(i64, &str), Vec<&(EventRow, String)>> = HashMap::new();
    for stored in rows {
        let r = &stored.0;
        found
            .entry((r.kafka_offset, r.event_id.as_str()))
            .or_default()
            .push(stored);
    }
    let mut problems = Vec::new();
    let mut redacted = Vec::new();
    let mut unfound = Vec::new();
    for l in leaves {
        let named = |l: &LeafRow| {
            (
                d.digest_hash.clone(),
                l.tenant_id.clone(),
                l.event_id.clone(),
                l.kafka_offset,
            )
        };
        match found.get(&(l.kafka_offset, l.event_id.as_str())) {
            None => unfound.push(l.clone()),
            Some(copies) => {
                let Some(sealed) = unhex::<32>(&l.leaf) else {
                    let (digest, tenant_id, event_id, offset) = named(l);
                    problems.push(Problem::EventAltered {
                        digest,
                        tenant_id,
                        event_id,
                        offset,
                    });
                    continue;
                };
                // The worst copy speaks for the event. Apart from that,
                // every copy's stored identity must be its content's hash:
                // the leaf is computed from the content, so a forged
                // column changes no verdict, but Search and the dashboards
                // count distinct identities.
                let mut worst: Option<RowSeal> = None;
                let mut forged = false;
                for (r, stored_hash) in copies.iter().map(|c| (&c.0, &c.1)) {
                    let content_hash = Sealed::from(r).content_hash();
                    forged |= *stored_hash != content_hash;
                    let hashes = RowHashes {
                        tenant_id: &r.tenant_id,
                        event_id: &r.event_id,
                        content_hash: &content_hash,
                        received_at: r.received_at,
                        schema_id: r.schema_id,
                        kafka_partition: r.kafka_partition,
                        kafka_offset: r.kafka_offset,
                    };
                    let seal = judge_row(&hashes, &sealed, records, keys);
                    let rank = |s: &RowSeal| match s {
                        RowSeal::Intact => 0,
                        RowSeal::Redacted(_) => 1,
                        RowSeal::BadRecord(..) => 2,
                        RowSeal::Altered => 3,
                    };
                    if worst.as_ref().is_none_or(|w| rank(&seal) > rank(w)) {
                        worst = Some(seal);
                    }
                }
                if forged {
                    let (digest, tenant_id, event_id, offset) = named(l);
                    problems.push(Problem::IdentityForged {
                        digest,
                        tenant_id,
                        event_id,
                        offset,
                    });
                }
                let (digest, tenant_id, event_id, offset) = named(l);
                match worst {
                    None | Some(RowSeal::Intact) => {}
                    Some(RowSeal::Redacted(record)) => redacted.push(Redacted {
                        digest,
                        tenant_id,
                        event_id,
                        offset,
                        request_id: record.request_id.clone(),
                        fields: record.fields.clone(),
                    }),
                    Some(RowSeal::BadRecord(_, why)) => problems.push(Problem::RedactionInvalid {
                        digest,
                        tenant_id,
                        event_id,
                        offset,
                        why: why.to_string(),
                    }),
                    Some(RowSeal::Altered) => problems.push(Problem::EventAltered {
                        digest,
                        tenant_id,
                        event_id,
                        offset,
                    }),
                }
            }
        }
    }
    Judged {
        problems,
        redacted,
        unfound,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Heads(#[from] super::seal::HeadsError),
}

/// Every sealed partition of the store, each walked from the head its
/// writers committed to Kafka: a chain whose newest digests were deleted
/// from ClickHouse is caught by the head Kafka still holds.
pub async fn check_all(
    store: &Store,
    keys: &KeyRing,
    kafka: &crate::config::KafkaConfig,
    since_ms: i64,
) -> Result<Report, CheckError> {
    let partitions = store.sealed_partitions().await?;
    let heads = committed_heads(kafka, &partitions).await?;
    let mut report = Report::default();
    for (topic, partition) in partitions {
        let head = heads.get(&(topic.clone(), partition)).map(String::as_str);
        report.merge(check_partition(store, keys, &topic, partition, head, since_ms).await?);
    }
    Ok(report)
}

/// The chain head committed with each partition's offset by the writers'
/// group (commit metadata holding a digest hash).
pub async fn committed_heads(
    kafka: &crate::config::KafkaConfig,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), String>, CheckError> {
    let reader = std::sync::Arc::new(super::seal::offsets_reader(
        kafka,
        "attest-integrity-check",
    )?);
    Ok(super::seal::committed(reader, partitions)
        .await?
        .into_iter()
        .filter_map(|c| Some(((c.topic, c.partition), c.head?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::digest::Unsigned;
    use crate::integrity::keys::tests::ring_with_one_key;

    fn linked(key: &crate::integrity::keys::SigningKey, ranges: &[(i64, i64)]) -> Vec<Digest> {
        let mut prev = GENESIS.to_owned();
        ranges
            .iter()
            .map(|(first, last)| {
                let d = Unsigned {
                    topic: "t",
                    partition: 0,
                    first_offset: *first,
                    last_offset: *last,
                    row_count: 1,
                    root: [1; 32],
                    prev_hash: &prev,
                    sealed_at: 1_800_000_000_000,
                }
                .sign(key);
                prev = d.digest_hash.clone();
                d
            })
            .collect()
    }

    /// A stored row at `offset` of the sample event (tenant "acme"),
    /// received at `received_at`.
    fn stored(offset: i64, received_at: i64) -> EventRow {
        let mut event = crate::event::tests::sample();
        event.event_id = "e-1".into();
        event.received_at = received_at;
        EventRow::new(
            event,
            crate::store::Provenance {
                schema_id: 3,
                partition: 0,
                offset,
            },
        )
    }

    /// The leaf sealed for `row`, with what the set records beside it.
    fn sealed_leaf(row: &EventRow) -> LeafRow {
        LeafRow {
            digest_hash: "d".into(),
            topic: "t".into(),
            partition: row.kafka_partition,
            kafka_offset: row.kafka_offset,
            position: 0,
            tenant_id: row.tenant_id.clone(),
            event_id: row.event_id.clone(),
            leaf: crate::integrity::encoding::hex(&Sealed::from(row).leaf()),
            recorded: Some(crate::store::Recorded {
                received_at: row.received_at,
                schema_id: row.schema_id,
            }),
        }
    }

    #[test]
    fn a_copy_whose_stored_identity_is_not_its_content_hash_is_named_apart() {
        let (ring, key, _dir) = ring_with_one_key();
        let d = &linked(&key, &[(5, 5)])[0];
        let row = stored(5, 1_000);
        let mut leaf = sealed_leaf(&row);
        leaf.digest_hash = d.digest_hash.clone();
        let own = Sealed::from(&row).content_hash();
        let judged = rows_problems(
            d,
            &[leaf.clone()],
            &[(row.clone(), own.clone())],
            &[],
            &ring,
        );
        assert!(judged.problems.is_empty(), "{:?}", judged.problems);

        // The same content beside another identity: the content is what
        // was sealed (no alteration), the identity is not its hash.
        let copies = [(row.clone(), own), (row.clone(), "ab".repeat(32))];
        let judged = rows_problems(d, &[leaf], &copies, &[], &ring);
        assert_eq!(
            judged.problems,
            vec![Problem::IdentityForged {
                digest: d.digest_hash.clone(),
                tenant_id: row.tenant_id.clone(),
                event_id: row.event_id.clone(),
                offset: 5,
            }]
        );
        assert_eq!(judged.problems[0].kind_and_subject().0, "identity_forged");
    }

    #[test]
    fn a_resend_merged_into_its_copy_is_folded_not_missing() {
        let (ring, _, _dir) = ring_with_one_key();
        // The first attempt at offset 3, the client's retry at 7 (received
        // later); the table kept the retry's row.
        let gone = stored(3, 1_000);
        let kept = vec![stored(7, 2_000)];
        let leaf = sealed_leaf(&gone);
        let found = folded_into(&leaf, &kept, &[], &ring).map(|r| r.kafka_offset);
        assert_eq!(found, Some(7));

        // Another event under the same id is no copy.
        let mut other = stored(7, 2_000);
        other.action.push('x');
        assert!(folded_into(&leaf, &[other], &[], &ring).is_none());
        // Nor is a copy of another tenant.
        let mut elsewhere = stored(7, 2_000);
        elsewhere.tenant_id = "globex".into();
        assert!(folded_into(&leaf, &[elsewhere], &[], &ring).is_none());
        // A received_at changed in the set no longer gives the sealed leaf.
        let mut forged = leaf.clone();
        forged.recorded = Some(crate::store::Recorded {
            received_at: 1_001,
            schema_id: 3,
        });
        assert!(folded_into(&forged, &kept, &[], &ring).is_none());
        // A set from before migration 0023 records nothing to recompute.
        let mut old = leaf.clone();
        old.recorded = None;
        assert!(folded_into(&old, &kept, &[], &ring).is_none());
    }

    #[test]
    fn a_resend_merged_into_a_redacted_copy_folds_through_a_valid_record() {
        let (ring, key, _dir) = ring_with_one_key();
        let gone = stored(3, 1_000);
        let original = Sealed::from(&gone).content_hash();
        let mut kept = stored(7, 2_000);
        kept.actor_ip = String::new();
        let redacted = Sealed::from(&kept).content_hash();
        // The record names the kept row (tenant acme, e-1, partition 0,
        // offset 7).
        let record = crate::integrity::redaction::tests::record(&key, &original, &redacted);
        let leaf = sealed_leaf(&gone);
        let kept = vec![kept];
        assert!(folded_into(&leaf, &kept, std::slice::from_ref(&record), &ring).is_some());
        assert!(folded_into(&leaf, &kept, &[], &ring).is_none());
        let mut forged = record.clone();
        forged.reason.push('x');
        assert!(folded_into(&leaf, &kept, &[forged], &ring).is_none());
    }

    #[test]
    fn ranges_merge_where_they_touch() {
        let spans = merged([(10, 19), (0, 9), (25, 30), (28, 40)].into_iter());
        assert_eq!(spans, vec![(0, 19), (25, 40)]);
    }

    #[test]
    fn a_whole_chain_has_no_problem() {
        let (_, key, _dir) = ring_with_one_key();
        let ds = linked(&key, &[(0, 9), (10, 19), (20, 29)]);
        let (c, problems) = chain(&ds, None, None);
        assert_eq!(c.len(), 3);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_deleted_digest_is_named_and_the_rest_still_walked() {
        let (_, key, _dir) = ring_with_one_key();
        let mut ds = linked(&key, &[(0, 9), (10, 19), (20, 29)]);
        let gone = ds.remove(1);
        let (c, problems) = chain(&ds, None, None);
        assert_eq!(c.len(), 2);
        assert_eq!(
            problems,
            vec![Problem::MissingDigest {
                missing: gone.digest_hash,
                referenced_by: ds[1].digest_hash.clone(),
                first_offset: 20,
                last_offset: 29,
            }]
        );
    }

    #[test]
    fn a_gap_in_offsets_is_named() {
        let (_, key, _dir) = ring_with_one_key();
        let ds = linked(&key, &[(0, 9), (12, 19)]);
        let (_, problems) = chain(&ds, None, None);
        assert!(matches!(
            problems[..],
            [Problem::NotContiguous {
                first_offset: 12,
                previous_last: 9,
                ..
            }]
        ));
    }

    #[test]
    fn a_walk_from_a_checkpoint_stops_there_and_needs_nothing_older() {
        let (_, key, _dir) = ring_with_one_key();
        let ds = linked(&key, &[(0, 9), (10, 19), (20, 29), (30, 39)]);
        // Only what a checkpointed walk reads: the checkpoint's digest and
        // the newer ones.
        let since = ds[1..].to_vec();
        let (c, problems) = chain(&since, None, Some(&ds[1].digest_hash));
        assert_eq!(
            c.iter().map(|d| d.last_offset).collect::<Vec<_>>(),
            vec![39, 29, 19]
        );
        assert!(problems.is_empty(), "{problems:?}");
        // Without the checkpoint the same digests miss their start.
        let (_, problems) = chain(&since, None, None);
        assert!(matches!(problems[..], [Problem::MissingDigest { .. }]));
        // A digest deleted after the checkpoint is still named.
        let gap = vec![ds[1].clone(), ds[3].clone()];
        let (_, problems) = chain(&gap, None, Some(&ds[1].digest_hash));
        assert!(
            matches!(&problems[..], [Problem::MissingDigest { missing, .. }] if *missing == ds[2].digest_hash),
            "{problems:?}"
        );
    }

    #[test]
    fn a_digest_waiting_for_its_commit_moves_the_chain_on() {
        let (_, key, _dir) = ring_with_one_key();
        let ds = linked(&key, &[(0, 9), (10, 19), (20, 29)]);
        // Kafka still holds the second digest as the head: the third is
        // stored and its commit not yet made.
        let tip = standing(&ds, &ds[1].digest_hash);
        assert_eq!(tip, ds[2].digest_hash);
        let (c, problems) = chain(&ds, Some(tip), None);
        assert_eq!(c.len(), 3);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_fork_left_by_a_crash_is_walked_from_the_committed_head() {
        let (_, key, _dir) = ring_with_one_key();
        let ds = linked(&key, &[(0, 9), (10, 19)]);
        // A digest stored before a crash and never committed, then the
        // same rows sealed again by the writer that took over.
        let orphan = Unsigned {
            topic: "t",
            partition: 0,
            first_offset: 10,
            last_offset: 25,
            row_count: 1,
            root: [2; 32],
            prev_hash: &ds[0].digest_hash,
            sealed_at: 1_800_000_000_000,
        }
        .sign(&key);
        let mut all = ds.clone();
        all.push(orphan);
        // The orphan chains to the first digest, not to the head: not
        // adopted.
        let head = standing(&all, &ds[1].digest_hash);
        assert_eq!(head, ds[1].digest_hash);
        let (c, problems) = chain(&all, Some(head), None);
        assert_eq!(
            c.iter().map(|d| d.last_offset).collect::<Vec<_>>(),
            vec![19, 9]
        );
        assert!(problems.is_empty());
    }
}
