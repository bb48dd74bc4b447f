//! The retention job and legal holds. Removing audit data is itself an
//! auditable act: every removal, and every hold placed or released, is
//! recorded as an audit event of the tenant concerned, through the same
//! ingest path as any service's event.
//!
//! A removal is recorded *before* ClickHouse is asked to remove anything,
//! and a failed removal is recorded again with outcome `failure`: a record
//! of a removal that then failed is recoverable; a removal nobody recorded
//! is not. When rows are sealed, retention first signs which sealed rows
//! it removes (docs/INTEGRITY.md, section 15), so the integrity check can
//! tell them from rows deleted behind Attest's back, and then removes
//! exactly those: the rows below the writers' committed offsets read
//! before signing. A row stored in the meantime (an event sent with an old
//! `occurred_at`) lies at or above them and waits for the next run.

pub mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::RetentionConfig;
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, new_event_id, now_ms, Ingest, IngestError};
use crate::integrity::keys::{KeyError, SigningKey};
use crate::integrity::retention_record::RetentionRecord;
use crate::store::{HoldRow, Store, StoreError};
use crate::write::delivered::{DeliveredError, DeliveredOffsets};
use app::tail::Delivered;
pub use plan::{Held, Hold, Month, Plan, Removal};

fn this_month(now_ms: i64) -> Result<Month, RetentionError> {
    Month::of_epoch_ms(now_ms).ok_or(RetentionError::Partition(now_ms.to_string()))
}

fn owned_counts(counts: &[(&str, u64)]) -> Vec<(String, u64)> {
    counts
        .iter()
        .map(|(tenant, events)| ((*tenant).to_owned(), *events))
        .collect()
}

/// Who retention events name as their actor.
const ACTOR_ID: &str = "attest-retention";

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot record the audit event for this change, so it was not made: {0}")]
    Record(#[from] IngestError),
    #[error("ClickHouse reported a partition named {0:?}, which is not a month")]
    Partition(String),
    #[error(
        "cannot sign the record of the sealed rows it would remove, so nothing was removed: {0}"
    )]
    Sign(#[from] KeyError),
    #[error("cannot read how far the writers have committed, so nothing was removed: {0}")]
    Committed(#[from] DeliveredError),
    #[error("`{field}`: {problem}")]
    InvalidHold {
        field: &'static str,
        problem: String,
    },
    #[error("no legal hold with id {0:?}")]
    UnknownHold(String),
}

pub struct Retention {
    store: Store,
    ingest: Arc<Ingest>,
    policy: RetentionConfig,
    delivered: Arc<DeliveredOffsets>,
    signing: Option<RecordSigning>,
}

/// A removal ready to be carried out: its records (when rows are sealed)
/// name the rows below `below`, and [`Retention::remove`] removes no other
/// row of the events table.
#[derive(Debug)]
pub struct PreparedRemoval {
    removal: Removal,
    below: Delivered,
}

/// Where retention finds the integrity key and the topics' names, when the
/// writers seal what they write.
pub struct RecordSigning {
    pub key_dir: PathBuf,
    pub topic_prefix: String,
}

impl Retention {
    pub fn new(
        store: Store,
        ingest: Arc<Ingest>,
        policy: RetentionConfig,
        delivered: Arc<DeliveredOffsets>,
    ) -> Retention {
        Retention {
            store,
            ingest,
            policy,
            delivered,
            signing: None,
        }
    }

    /// Signs a retention record of the sealed rows before each removal.
    pub fn signing_records(mut self, signing: RecordSigning) -> Retention {
        self.signing = Some(signing);
        self
    }

    /// Reads the writers' committed offsets and, when rows are sealed,
    /// signs and stores which rows of each tenant of `removal` lie below
    /// them: one record per tenant, topic and partition. The offsets are
    /// read first, so every row below them is already in the table when
    /// the records are made. The key is read once per removal, so a
    /// rotation is followed. Public with [`Retention::remove`] so a test
    /// can store a row between the two; [`Retention::execute`] does both.
    pub async fn prepare(&self, removal: &Removal) -> Result<PreparedRemoval, RetentionError> {
        let below = self.delivered.now().await?;
        if let Some(signing) = &self.signing {
            let key = SigningKey::load(&signing.key_dir)?;
            for (tenant, _) in removal.tenants() {
                self.sign_tenant(signing, &key, tenant, removal.month(), &below)
                    .await?;
            }
        }
        Ok(PreparedRemoval {
            removal: removal.clone(),
            below,
        })
    }

    /// Removes what `prepared` names: each tenant's rows of the month
    /// below its committed offsets, and their counts from the rollups.
    /// Unsealed, a month whose every tenant expired is dropped whole,
    /// which is cheaper; sealed, a row a record does not name must stay.
    pub async fn remove(&self, prepared: &PreparedRemoval) -> Result<(), RetentionError> {
        let month = prepared.removal.month();
        if self.drops_partition(&prepared.removal) {
            self.store.drop_month(month.id()).await?;
            return Ok(());
        }
        let tenants: Vec<&str> = prepared
            .removal
            .tenants()
            .into_iter()
            .map(|(tenant, _)| tenant)
            .collect();
        self.store
            .delete_tenants_between(
                &tenants,
                month.start_s(),
                month.next().start_s(),
                &prepared.below,
            )
            .await?;
        Ok(())
    }

    fn drops_partition(&self, removal: &Removal) -> bool {
        self.signing.is_none() && matches!(removal, Removal::DropMonth { .. })
    }

    async fn sign_tenant(
        &self,
        signing: &RecordSigning,
        key: &SigningKey,
        tenant: &str,
        month: Month,
        below: &Delivered,
    ) -> Result<(), RetentionError> {
        let places = self
            .store
            .places_between(tenant, month.start_s(), month.next().start_s(), below)
            .await?;
        let executed_at = now_ms();
        let mut records = Vec::with_capacity(places.len());
        for place in places {
            // Every stored category is one of the contract's (validated on
            // the way in); a row of another is left out of every record,
            // so the check names it rather than hide it.
            let Some(category) = Category::from_symbol(&place.category) else {
                warn!(category = %place.category, %tenant, %month, "rows of an unknown category are not in the retention record");
                continue;
            };
            records.push(RetentionRecord::sign(
                key,
                &crate::topics::for_category(&signing.topic_prefix, category),
                place.kafka_partition,
                tenant,
                month.id(),
                place.offsets,
                executed_at,
            ));
        }
        self.store.insert_retention_records(&records).await?;
        Ok(())
    }

    /// Works out what the policy removes now; `execute` carries it out.
    pub async fn plan(&self, now_ms: i64) -> Result<Plan, RetentionError> {
        let now = this_month(now_ms)?;
        let mut contents = Vec::new();
        for partition in self.store.months_with_events().await? {
            let month =
                Month::parse(&partition).ok_or_else(|| RetentionError::Partition(partition))?;
            if month >= now {
                continue;
            }
            contents.push(self.contents(month).await?);
        }
        let holds = self.active_holds().await?;
        Ok(plan::plan(&contents, &self.policy, &holds, now))
    }

    async fn contents(&self, month: Month) -> Result<plan::MonthContents, RetentionError> {
        let tenants = self
            .store
            .tenants_between(month.start_s(), month.next().start_s())
            .await?;
        Ok(plan::MonthContents { month, tenants })
    }

    /// Carries out the plan month by month. Each month is planned again
    /// from fresh reads just before anything is removed: a hold placed
    /// since the plan was made keeps its months, a late event of a tenant
    /// whose policy keeps the month stops a whole-month drop, and the
    /// count recorded is the count removed: late events included, rows
    /// still above the writers' committed offsets left to the run that
    /// removes them. Stops at the first removal that cannot be recorded
    /// or carried out.
    pub async fn execute(&self, plan: &Plan) -> Result<(), RetentionError> {
        for held in &plan.held {
            info!(month = %held.month, tenant = %held.tenant, hold = %held.hold_id, "kept under legal hold");
        }
        let mut months: Vec<Month> = plan.removals.iter().map(Removal::month).collect();
        months.dedup();
        for month in months {
            let now = this_month(now_ms())?;
            let holds = self.active_holds().await?;
            let fresh = plan::plan(&[self.contents(month).await?], &self.policy, &holds, now);
            for held in &fresh.held {
                info!(%month, tenant = %held.tenant, hold = %held.hold_id, "kept under legal hold (seen just before removal)");
            }
            self.carry_out(&fresh.removals).await?;
        }
        Ok(())
    }

    async fn carry_out(&self, removals: &[Removal]) -> Result<(), RetentionError> {
        for removal in removals {
            let month = removal.month();
            let method = if self.drops_partition(removal) {
                "drop_partition"
            } else {
                "delete_rows"
            };
            let planned = owned_counts(&removal.tenants());
            let counted = async {
                let prepared = self.prepare(removal).await?;
                let counts = self.counts_removed(&prepared).await?;
                Ok::<_, RetentionError>((prepared, counts))
            }
            .await;
            let (prepared, counts) = match counted {
                Ok(done) => done,
                Err(error) => {
                    // Nothing was removed; the record says what was not.
                    self.record_removals(&planned, month, method, Some(&error))
                        .await?;
                    return Err(error);
                }
            };
            self.record_removals(&counts, month, method, None).await?;
            if let Err(error) = self.remove(&prepared).await {
                warn!(%error, %month, "retention removal failed; it is retried on the next run");
                self.record_removals(&counts, month, method, Some(&error))
                    .await?;
                return Err(error);
            }
            info!(%month, method, tenants = counts.len(), "retention removed a month");
        }
        Ok(())
    }

    /// How many events of each tenant `prepared` removes, so that the
    /// counts its records give add up, run after run, to what was removed:
    /// a partition dropped whole takes every row the fresh plan counted;
    /// a delete takes only the rows below the committed offsets, and a
    /// tenant with none there is recorded with 0.
    async fn counts_removed(
        &self,
        prepared: &PreparedRemoval,
    ) -> Result<Vec<(String, u64)>, RetentionError> {
        let planned = prepared.removal.tenants();
        if self.drops_partition(&prepared.removal) {
            return Ok(owned_counts(&planned));
        }
        let month = prepared.removal.month();
        let tenants: Vec<&str> = planned.iter().map(|(tenant, _)| *tenant).collect();
        let below: BTreeMap<String, u64> = self
            .store
            .delivered_tenants_between(
                &tenants,
                month.start_s(),
                month.next().start_s(),
                &prepared.below,
            )
            .await?
            .into_iter()
            .collect();
        Ok(tenants
            .into_iter()
            .map(|tenant| (tenant.to_owned(), below.get(tenant).copied().unwrap_or(0)))
            .collect())
    }

    /// One audit event per tenant: the removal about to be made (`failed`
    /// is `None`), or one that failed and is retried on the next run.
    async fn record_removals(
        &self,
        counts: &[(String, u64)],
        month: Month,
        method: &str,
        failed: Option<&RetentionError>,
    ) -> Result<(), RetentionError> {
        let (outcome, detail) = match failed {
            None => (Outcome::Success, None),
            Some(error) => (Outcome::Failure, Some(error.to_string())),
        };
        for (tenant, events) in counts {
            self.record_removal(tenant, month, *events, method, outcome, detail.as_deref())
                .await?;
        }
        Ok(())
    }

    /// Plans and executes every `interval` until `stop`.
    pub async fn run(self, interval: Duration, stop: CancellationToken) {
        info!(interval_s = interval.as_secs(), "retention job started");
        crate::periodic::every(interval, stop, || async {
            match self.plan(now_ms()).await {
                Ok(plan) => {
                    if let Err(error) = self.execute(&plan).await {
                        warn!(%error, "retention run failed");
                    }
                }
                Err(error) => warn!(%error, "retention could not plan"),
            }
        })
        .await;
    }

    async fn record_removal(
        &self,
        tenant: &str,
        month: Month,
        events: u64,
        method: &str,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<(), RetentionError> {
        let mut metadata = BTreeMap::from([
            ("month".to_owned(), month.to_string()),
            ("method".to_owned(), method.to_owned()),
            ("events".to_owned(), events.to_string()),
            (
                "policy_months".to_owned(),
                self.policy.months_for(tenant).to_string(),
            ),
        ]);
        if let Some(error) = error {
            metadata.insert("error".into(), error.to_owned());
        }
        let event = internal_event(
            tenant,
            Category::System,
            "retention.delete_month",
            outcome,
            Resource {
                kind: "audit_month".into(),
                id: month.to_string(),
            },
            ACTOR_ID,
            metadata,
        );
        self.ingest.record(event).await?;
        Ok(())
    }

    /// Holds in force now: the latest version of each, not released. A
    /// hold whose months do not parse fails the whole read: retention then
    /// removes nothing (fails closed) rather than ignore what it cannot read.
    pub async fn active_holds(&self) -> Result<Vec<Hold>, RetentionError> {
        let rows = self.store.legal_holds().await?;
        rows.into_iter()
            .filter(|h| h.released_at == 0)
            .map(|h| {
                let month = |m: u32| {
                    Month::parse(&m.to_string()).ok_or_else(|| RetentionError::InvalidHold {
                        field: "months",
                        problem: format!(
                            "hold {} has month {m}, which is not a month; retention removes \
                             nothing until it is fixed",
                            h.hold_id
                        ),
                    })
                };
                Ok(Hold {
                    from: month(h.from_month)?,
                    to: month(h.to_month)?,
                    hold_id: h.hold_id,
                    tenant_id: h.tenant_id,
                    reason: h.reason,
                })
            })
            .collect()
    }

    /// Every hold, released ones included, for `attest hold list`.
    pub async fn all_holds(&self) -> Result<Vec<HoldRow>, RetentionError> {
        Ok(self.store.legal_holds().await?)
    }

    /// Places a hold, recorded as an audit event of its tenant first.
    pub async fn place_hold(
        &self,
        tenant: &str,
        from: &str,
        to: &str,
        reason: &str,
        placed_by: &str,
    ) -> Result<HoldRow, RetentionError> {
        let invalid = |field, problem: &str| RetentionError::InvalidHold {
            field,
            problem: problem.to_owned(),
        };
        if tenant.trim().is_empty() {
            return Err(invalid("tenant", "must not be empty"));
        }
        let from =
            Month::parse(from).ok_or_else(|| invalid("from", "must be a month as YYYY-MM"))?;
        let to = Month::parse(to).ok_or_else(|| invalid("to", "must be a month as YYYY-MM"))?;
        if to < from {
            return Err(invalid("to", "must not be before `from`"));
        }
        if reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "must say why (a case or ticket reference)",
            ));
        }
        let now = now_ms();
        let hold = HoldRow {
            hold_id: new_event_id(),
            tenant_id: tenant.to_owned(),
            from_month: from.id(),
            to_month: to.id(),
            reason: reason.to_owned(),
            created_at: (now / 1000) as u32,
            released_at: 0,
        };
        self.record_hold(&hold, "legal_hold.place", placed_by)
            .await?;
        self.store.put_legal_hold(&hold, now as u64).await?;
        Ok(hold)
    }

    /// Releases a hold; its history stays in the table and the audit trail.
    pub async fn release_hold(
        &self,
        hold_id: &str,
        released_by: &str,
    ) -> Result<HoldRow, RetentionError> {
        let mut hold = self
            .store
            .legal_holds()
            .await?
            .into_iter()
            .find(|h| h.hold_id == hold_id && h.released_at == 0)
            .ok_or_else(|| RetentionError::UnknownHold(hold_id.to_owned()))?;
        let now = now_ms();
        hold.released_at = (now / 1000) as u32;
        self.record_hold(&hold, "legal_hold.release", released_by)
            .await?;
        self.store.put_legal_hold(&hold, now as u64).await?;
        Ok(hold)
    }

    async fn record_hold(
        &self,
        hold: &HoldRow,
        action: &str,
        by: &str,
    ) -> Result<(), RetentionError> {
        let metadata = BTreeMap::from([
            ("from_month".to_owned(), hold.from_month.to_string()),
            ("to_month".to_owned(), hold.to_month.to_string()),
            ("reason".to_owned(), hold.reason.clone()),
        ]);
        let event = internal_event(
            &hold.tenant_id,
            Category::Admin,
            action,
            Outcome::Success,
            Resource {
                kind: "legal_hold".into(),
                id: hold.hold_id.clone(),
            },
            by,
            metadata,
        );
        self.ingest.record(event).await?;
        Ok(())
    }
}
