//! The scheduled integrity check: on the process the alerts election picks
//! (one checker, like the detections), every `integrity.check_every` it
//! re-verifies the chains and signatures whole and the rows sealed within
//! `integrity.check_recent`, and every `integrity.full_check_every` all
//! rows. Each problem not reported before becomes an audit event of
//! Attest itself (tenant `attest`, action `integrity.mismatch`), and
//! `attest_integrity_problems` says how many the last check found. After
//! each check it signs a checkpoint at the committed head of every chain
//! found whole, where the next limited checks stop walking
//! (docs/INTEGRITY.md, 16).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::check::{check_all, Problem};
use super::checkpoint::Checkpoint;
use super::keys::SigningKey;
use super::KeyRing;
use crate::access::SYSTEM_TENANT;
use crate::alert::leader::Leadership;
use crate::config::{IntegrityConfig, KafkaConfig};
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, now_ms, Ingest};
use crate::metrics::Metrics;
use crate::store::Store;

/// Most problems recorded as audit events per check: a mass change must
/// not flood the trail; the rest are counted and logged.
const MAX_RECORDED: usize = 100;

pub struct IntegrityJob {
    config: IntegrityConfig,
    kafka: KafkaConfig,
    store: Store,
    ingest: Arc<Ingest>,
    leadership: Arc<Leadership>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_full_ms: Option<i64>,
    /// Problems already recorded, by their text: recorded once, again only
    /// after they were gone for a check.
    reported: HashSet<String>,
}

impl IntegrityJob {
    pub fn new(
        config: IntegrityConfig,
        kafka: KafkaConfig,
        store: Store,
        ingest: Arc<Ingest>,
        leadership: Arc<Leadership>,
        metrics: Arc<Metrics>,
    ) -> Arc<IntegrityJob> {
        Arc::new(IntegrityJob {
            config,
            kafka,
            store,
            ingest,
            leadership,
            metrics,
            state: Mutex::default(),
        })
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        crate::periodic::every(self.config.check_every, stop, || self.round()).await;
    }

    async fn round(&self) {
        if !self.leadership.elected() {
            return;
        }
        let now = now_ms();
        let full = self.state.lock().map_or(true, |s| {
            s.last_full_ms
                .is_none_or(|at| now.saturating_sub(at) >= millis(self.config.full_check_every))
        });
        let since = if full {
            i64::MIN
        } else {
            now.saturating_sub(millis(self.config.check_recent))
        };
        // Reloaded every round: a rotation adds keys.
        let keys = match KeyRing::load(&self.config.key_dir) {
            Ok(keys) => keys,
            Err(error) => {
                warn!(%error, "integrity check skipped: the published keys cannot be read");
                return;
            }
        };
        let report = match check_all(&self.store, &keys, &self.kafka, since).await {
            Ok(report) => report,
            Err(error) => {
                warn!(%error, "integrity check could not run; trying again next round");
                return;
            }
        };
        self.metrics.integrity_checks.inc();
        self.metrics
            .integrity_problems
            .set(i64::try_from(report.problems.len()).unwrap_or(i64::MAX));
        let texts: Vec<String> = report
            .problems
            .iter()
            .map(|(t, p, problem)| format!("{t}[{p}]: {problem}"))
            .collect();
        let new: Vec<usize> = {
            let mut state = super::seal::lock(&self.state);
            if full {
                state.last_full_ms = Some(now);
            }
            let fresh = (0..texts.len())
                .filter(|&i| !state.reported.contains(&texts[i]))
                .collect();
            // A problem no longer found is forgotten, so a recurrence is
            // recorded again.
            state.reported = texts.iter().cloned().collect();
            fresh
        };
        info!(
            digests = report.digests,
            events = report.events,
            problems = report.problems.len(),
            full,
            "integrity check done"
        );
        self.checkpoint(&report, now).await;
        if new.len() > MAX_RECORDED {
            warn!(
                new = new.len(),
                recorded = MAX_RECORDED,
                "more new integrity problems than one check records as audit events"
            );
        }
        for &i in new.iter().take(MAX_RECORDED) {
            let (topic, partition, problem) = &report.problems[i];
            warn!(problem = %texts[i], "integrity problem");
            if let Err(error) = self.ingest.record(event(topic, *partition, problem)).await {
                warn!(%error, "cannot record an integrity problem as an audit event; it stays in the log and the metric");
            }
        }
    }
}

impl IntegrityJob {
    /// Signs and stores the checkpoints the check earned
    /// ([`Checkpoint::for_whole_chains`]).
    async fn checkpoint(&self, report: &super::check::Report, now: i64) {
        if !report.chains.iter().any(|c| c.checkpoint_due().is_some()) {
            return;
        }
        let key = match SigningKey::load(&self.config.key_dir) {
            Ok(key) => key,
            Err(error) => {
                warn!(%error, "no checkpoint signed: the next checks walk the chains whole");
                return;
            }
        };
        let checkpoints = Checkpoint::for_whole_chains(report, &key, now);
        if let Err(error) = self.store.insert_checkpoints(&checkpoints).await {
            warn!(%error, "checkpoints could not be stored: the next checks walk back further");
        }
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The audit event of one problem: the digest (or the retention record)
/// as its resource, the event (when the problem is about one) and the
/// wording in its metadata.
fn event(topic: &str, partition: i32, problem: &Problem) -> crate::event::AuditEvent {
    let (digest, event) = match problem {
        Problem::Digest { digest, .. }
        | Problem::NotContiguous { digest, .. }
        | Problem::OffChain { digest, .. }
        | Problem::LeavesAltered { digest, .. } => (digest.clone(), None),
        Problem::MissingDigest { missing, .. } => (missing.clone(), None),
        Problem::CheckpointInvalid { digest, .. } => (digest.clone(), None),
        Problem::RetentionRecordInvalid {
            tenant_id, month, ..
        } => (format!("retention:{tenant_id}/{month}"), None),
        Problem::EventAltered {
            digest,
            tenant_id,
            event_id,
            ..
        }
        | Problem::EventMissing {
            digest,
            tenant_id,
            event_id,
            ..
        }
        | Problem::IdentityForged {
            digest,
            tenant_id,
            event_id,
            ..
        }
        | Problem::RedactionInvalid {
            digest,
            tenant_id,
            event_id,
            ..
        } => (digest.clone(), Some((tenant_id.clone(), event_id.clone()))),
    };
    let mut metadata = BTreeMap::from([
        ("topic".to_owned(), topic.to_owned()),
        ("partition".to_owned(), partition.to_string()),
        ("problem".to_owned(), problem.to_string()),
    ]);
    if let Some((tenant, id)) = event {
        metadata.insert("event_tenant".to_owned(), tenant);
        metadata.insert("event_id".to_owned(), id);
    }
    internal_event(
        SYSTEM_TENANT,
        Category::Admin,
        "integrity.mismatch",
        Outcome::Failure,
        Resource {
            kind: "digest".into(),
            id: digest,
        },
        "attest-integrity-check",
        metadata,
    )
}
