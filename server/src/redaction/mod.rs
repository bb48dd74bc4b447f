//! Governed redaction (README "Redaction", docs/INTEGRITY.md section 14):
//! personal data erased from stored events without the erasure looking like
//! tampering, and never by one person alone.
//!
//! An admin requests it (a tenant's events by id, or every event of one
//! actor, and the fields to erase, with a reason); a *different* admin
//! approves it; only then is each event rewritten: a signed redaction
//! record first, then the redacted row, then the original row deleted and
//! the rollups of its minute rebuilt. Request, approval and execution are
//! audit events of the tenant's own trail (`source_service` "attest"), as
//! legal holds are. Every step can run again: a run stopped anywhere (a
//! crash between the insert and the delete, say) is finished by executing
//! the approved request again (`attest redaction execute`, or
//! `POST /api/v1/redactions/{id}/execute`).

pub mod fields;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use crate::config::KafkaConfig;
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, new_event_id, now_ms, Ingest, IngestError};
use crate::integrity::check::leaves_problem;
use crate::integrity::encoding::unhex;
use crate::integrity::keys::{KeyError, SigningKey};
use crate::integrity::leaf::Sealed;
use crate::integrity::redaction::{judge_row, RedactionRecord, RowHashes, RowSeal, Unsigned};
use crate::integrity::KeyRing;
use crate::store::{ApprovalRow, EventRow, LeafRow, RequestRow, Store, StoreError};
pub use fields::Field;

/// How many events one request may cover: a subject with more is erased in
/// several requests (each one approved), so that an approver can still
/// read what they approve.
pub const MAX_EVENTS: usize = 10_000;

/// How long one run waits for ClickHouse to finish a delete (a mutation,
/// asynchronous on 18.16) before it stops; running it again goes on.
const MUTATION_WAIT: Duration = Duration::from_secs(300);

/// How many records, and how many redacted rows, one insert carries: a
/// subject's thousands of events are a few inserts, not one per row.
const WRITE_CHUNK: usize = 10_000;

/// How long an approver waits after storing its approval before it
/// executes: an approval stored by another admin in another process at
/// the same moment is then visible, and both runs pick the same one
/// (docs/INTEGRITY.md section 14).
const APPROVAL_SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RedactionError {
    /// Bad input, naming the field of the request at fault.
    #[error("`{field}`: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("no redaction request with id {0:?}")]
    NotFound(String),
    /// The request is not in a state that allows this, or the person may
    /// not do it (the requester approving their own request).
    #[error("{0}")]
    Refused(String),
    /// An event is not sealed, or its offset not committed, yet: the
    /// writer may still deliver its record again and re-insert the
    /// original.
    #[error("{0}")]
    NotSealed(String),
    /// An event does not verify against its seal: redacting it would sign
    /// a change nobody can account for.
    #[error("{0}")]
    Unverified(String),
    #[error("cannot record the audit event for this step, so it was not done: {0}")]
    Record(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Kafka(#[from] crate::integrity::seal::HeadsError),
}

fn invalid(field: &'static str, problem: impl Into<String>) -> RedactionError {
    RedactionError::Invalid {
        field,
        problem: problem.into(),
    }
}

/// Who acts: the console name and a stable identity (the grant's access id
/// in the console, `cli:<name>` from the command line). Two actions are by
/// the same person when either matches.
#[derive(Debug, Clone)]
pub struct Who {
    pub name: String,
    pub id: String,
}

impl Who {
    pub fn operator(name: &str) -> Who {
        Who {
            name: name.to_owned(),
            id: format!("cli:{name}"),
        }
    }

    /// Whether this person made the request (and so may not approve it).
    pub fn requested(&self, request: &RequestView) -> bool {
        self.id == request.requested_by_id || self.name == request.requested_by
    }
}

/// What an admin asks for.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = RedactionRequestNew)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub tenant_id: String,
    /// The events, by id; or, instead,
    #[serde(default)]
    pub event_ids: Vec<String>,
    /// every event of this actor (the data subject).
    #[serde(default)]
    pub actor_id: Option<String>,
    /// `actor.ip`, `actor.id`, `metadata.<key>`, … (see [`fields`]).
    pub fields: Vec<String>,
    pub reason: String,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = RedactionState)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    Executed,
}

impl State {
    pub fn of(r: &RequestRow) -> State {
        if r.executed_at > 0 {
            State::Executed
        } else if r.approved_at > 0 {
            State::Approved
        } else {
            State::Pending
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "approved" => Some(State::Approved),
            "executed" => Some(State::Executed),
            _ => None,
        }
    }
}

/// A request as the API and the CLI show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = RedactionRequest)]
pub struct RequestView {
    pub request_id: String,
    pub tenant_id: String,
    pub state: State,
    /// Set while the request is pending or approved; emptied once it is
    /// executed (it is the personal data being erased).
    pub subject_actor_id: String,
    pub event_ids: Vec<String>,
    pub fields: Vec<String>,
    pub reason: String,
    pub requested_by: String,
    /// The requester's identity (see [`Who`]), to tell whether a viewer
    /// may approve; not shown.
    #[serde(skip)]
    #[schema(ignore)]
    pub requested_by_id: String,
    pub requested_at: i64,
    pub approved_by: String,
    pub approved_at: i64,
    pub executed_at: i64,
}

impl From<&RequestRow> for RequestView {
    fn from(r: &RequestRow) -> RequestView {
        let mut ids: Vec<String> = r.event_ids.clone();
        ids.sort();
        ids.dedup();
        RequestView {
            request_id: r.request_id.clone(),
            tenant_id: r.tenant_id.clone(),
            state: State::of(r),
            subject_actor_id: r.subject_actor_id.clone(),
            event_ids: ids,
            fields: r.fields.clone(),
            reason: r.reason.clone(),
            requested_by: r.requested_by.clone(),
            requested_by_id: r.requested_by_id.clone(),
            requested_at: r.requested_at,
            approved_by: r.approved_by.clone(),
            approved_at: r.approved_at,
            executed_at: r.executed_at,
        }
    }
}

/// What one run of an approved request did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = RedactionExecution)]
pub struct Execution {
    pub request: RequestView,
    /// Rows of the request redacted, by this run or an earlier one (0 when
    /// the request was already executed and nothing ran).
    pub redacted: usize,
    /// Rows that already held the marker in every field named.
    pub unchanged: usize,
    /// Events of the request no longer stored as they were when it was
    /// made (removed by retention, or changed): not touched.
    pub missing: Vec<String>,
}

pub struct Redactions {
    store: Store,
    ingest: Arc<Ingest>,
    /// `integrity.key_dir`: the records are signed with the current key;
    /// seals are checked against the published ones.
    key_dir: PathBuf,
    /// `kafka`: an event's chain is its category's topic
    /// (`topic_prefix`), and the writers' group (`consumer_group`) must
    /// have committed past its offset.
    kafka: KafkaConfig,
    /// One approval or execution at a time in this process: two admins
    /// clicking at once see the request's state one after the other, so
    /// the second finds it approved or executed. (Processes do not share
    /// it; a run repeated elsewhere reuses the records and rows the first
    /// stored, so it stays correct, only slower.)
    running: tokio::sync::Mutex<()>,
}

/// A row with its content hash as stored.
struct Stored {
    row: EventRow,
    hash: String,
}

impl Stored {
    fn new(row: EventRow) -> Stored {
        let hash = Sealed::from(&row).content_hash();
        Stored { row, hash }
    }
}

impl Redactions {
    pub fn new(
        store: Store,
        ingest: Arc<Ingest>,
        key_dir: PathBuf,
        kafka: KafkaConfig,
    ) -> Redactions {
        Redactions {
            store,
            ingest,
            key_dir,
            kafka,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// An event's topic (its chain), by its stored category.
    fn topic_of(&self, row: &EventRow) -> Option<String> {
        Category::from_symbol(&row.category)
            .map(|c| crate::topics::for_category(&self.kafka.topic_prefix, c))
    }

    /// The offsets the writers' group committed for the rows' partitions:
    /// a row is safe to rewrite only below it. A row sealed but not yet
    /// committed (a writer that died between its seal and its commit) is
    /// delivered again to the next owner, which would insert the original
    /// once more.
    async fn committed(&self, stored: &[Stored]) -> Result<Committed, RedactionError> {
        let mut partitions: Vec<(String, i32)> = stored
            .iter()
            .filter_map(|s| Some((self.topic_of(&s.row)?, s.row.kafka_partition)))
            .collect();
        partitions.sort();
        partitions.dedup();
        if partitions.is_empty() {
            return Ok(Committed::default());
        }
        let reader = Arc::new(crate::integrity::seal::offsets_reader(
            &self.kafka,
            "attest-redaction",
        )?);
        Ok(Committed(
            crate::integrity::seal::committed(reader, &partitions)
                .await?
                .into_iter()
                .filter_map(|c| Some(((c.topic, c.partition), c.offset?)))
                .collect(),
        ))
    }

    /// Every request, newest version of each, oldest first.
    pub async fn list(&self) -> Result<Vec<RequestView>, RedactionError> {
        Ok(self
            .store
            .redaction_requests()
            .await?
            .iter()
            .map(RequestView::from)
            .collect())
    }

    pub async fn get(&self, request_id: &str) -> Result<RequestView, RedactionError> {
        Ok(RequestView::from(&self.load(request_id).await?))
    }

    async fn load(&self, request_id: &str) -> Result<RequestRow, RedactionError> {
        self.store
            .redaction_request(request_id)
            .await?
            .ok_or_else(|| RedactionError::NotFound(request_id.to_owned()))
    }

    /// Makes a pending request. The events it covers are read now and
    /// must each be sealed and verify; the request is recorded in the
    /// tenant's trail before it is stored.
    pub async fn request(&self, by: &Who, new: NewRequest) -> Result<RequestView, RedactionError> {
        let tenant = new.tenant_id.trim();
        if tenant.is_empty() {
            return Err(invalid("tenant_id", "must not be empty"));
        }
        let fields = fields::parse_list(&new.fields).map_err(|p| invalid("fields", p))?;
        if new.reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "must say why (the erasure request or ticket it answers)",
            ));
        }
        let subject = new
            .actor_id
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let ids: BTreeSet<&str> = new
            .event_ids
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let rows = match (subject, ids.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    "event_ids",
                    "give either event_ids or actor_id, not both",
                ))
            }
            (None, true) => {
                return Err(invalid(
                    "event_ids",
                    "name the events (event_ids) or their actor (actor_id)",
                ))
            }
            (Some(actor), true) => {
                let rows = self
                    .store
                    .rows_of_actor(tenant, actor, MAX_EVENTS as u64 + 1)
                    .await?;
                if rows.is_empty() {
                    return Err(invalid(
                        "actor_id",
                        format!("tenant {tenant} has no stored event of this actor"),
                    ));
                }
                rows
            }
            (None, false) => {
                let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
                let rows = self.store.rows_of_events(tenant, &ids).await?;
                if let Some(absent) = ids
                    .iter()
                    .find(|id| !rows.iter().any(|r| &r.event_id == *id))
                {
                    return Err(invalid(
                        "event_ids",
                        format!("event {absent} of tenant {tenant} is not stored"),
                    ));
                }
                rows
            }
        };
        if rows.len() > MAX_EVENTS {
            return Err(invalid(
                "actor_id",
                format!(
                    "the actor has more than {MAX_EVENTS} events; request them by event_ids in parts"
                ),
            ));
        }
        let stored: Vec<Stored> = rows.into_iter().map(Stored::new).collect();
        // Refused now rather than at execution: an unsealed row may be
        // delivered again by the writer, re-inserting what was erased.
        let keys = KeyRing::load(&self.key_dir)?;
        let records = self.records_for(tenant, &stored).await?;
        let committed = self.committed(&stored).await?;
        let seals = self.seals_of(&stored, &keys).await?;
        for s in &stored {
            sealed_as(
                s,
                &records,
                &keys,
                &committed,
                &seals,
                self.topic_of(&s.row),
            )?;
        }
        let now = now_ms();
        let row = RequestRow {
            request_id: new_event_id(),
            tenant_id: tenant.to_owned(),
            subject_actor_id: subject.unwrap_or_default().to_owned(),
            event_ids: stored.iter().map(|s| s.row.event_id.clone()).collect(),
            content_hashes: stored.iter().map(|s| s.hash.clone()).collect(),
            fields: fields.iter().map(Field::name).collect(),
            reason: new.reason.trim().to_owned(),
            requested_by: by.name.clone(),
            requested_by_id: by.id.clone(),
            requested_at: now,
            approved_by: String::new(),
            approved_by_id: String::new(),
            approved_at: 0,
            executed_at: 0,
            version: now as u64,
        };
        self.record(
            &row,
            "redaction.request",
            by,
            Outcome::Success,
            BTreeMap::new(),
        )
        .await?;
        self.store.put_redaction_request(&row).await?;
        info!(request = %row.request_id, tenant = %row.tenant_id, events = row.event_ids.len(), "redaction requested");
        Ok(RequestView::from(&row))
    }

    /// Approves a pending request (by an admin other than the requester)
    /// and executes it.
    pub async fn approve(&self, request_id: &str, by: &Who) -> Result<Execution, RedactionError> {
        let _one_at_a_time = self.running.lock().await;
        let mut row = self.load(request_id).await?;
        match State::of(&row) {
            State::Pending => {}
            State::Approved => {
                return Err(RedactionError::Refused(format!(
                    "request {request_id} is already approved; execute it to finish it"
                )))
            }
            State::Executed => {
                return Err(RedactionError::Refused(format!(
                    "request {request_id} was already executed"
                )))
            }
        }
        if by.requested(&RequestView::from(&row)) {
            return Err(RedactionError::Refused(format!(
                "{} requested {request_id} and cannot approve it too: a second admin must",
                by.name
            )));
        }
        let now = now_ms();
        row.approved_by = by.name.clone();
        row.approved_by_id = by.id.clone();
        row.approved_at = now;
        row.version = next_version(&row, now);
        self.record(
            &row,
            "redaction.approve",
            by,
            Outcome::Success,
            BTreeMap::new(),
        )
        .await?;
        self.store
            .put_redaction_approval(&ApprovalRow {
                request_id: row.request_id.clone(),
                approved_at: now,
                approved_by_id: by.id.clone(),
                approved_by: by.name.clone(),
            })
            .await?;
        self.store.put_redaction_request(&row).await?;
        info!(request = %request_id, approver = %by.name, "redaction approved");
        // Another admin may have approved in another process at the same
        // moment: waiting lets their approval land before the run picks
        // the one that counts (see `counting_approval`).
        tokio::time::sleep(APPROVAL_SETTLE).await;
        self.run(row, by).await
    }

    /// Executes an approved request, or finishes one a previous run left
    /// half done. A pending request cannot run.
    pub async fn execute(&self, request_id: &str, by: &Who) -> Result<Execution, RedactionError> {
        let _one_at_a_time = self.running.lock().await;
        let row = self.load(request_id).await?;
        match State::of(&row) {
            State::Pending => Err(RedactionError::Refused(format!(
                "request {request_id} is not approved: an admin other than {} must approve it first",
                row.requested_by
            ))),
            State::Executed => Ok(Execution {
                request: RequestView::from(&row),
                redacted: 0,
                unchanged: 0,
                missing: Vec::new(),
            }),
            State::Approved => self.run(row, by).await,
        }
    }

    async fn run(&self, row: RequestRow, by: &Who) -> Result<Execution, RedactionError> {
        match self.finish(&row).await {
            Ok(execution) => Ok(execution),
            Err(error) => {
                warn!(request = %row.request_id, %error, "redaction stopped; executing it again finishes it");
                let details = BTreeMap::from([("error".to_owned(), error.to_string())]);
                if let Err(unrecorded) = self
                    .record(&row, "redaction.execute", by, Outcome::Failure, details)
                    .await
                {
                    warn!(error = %unrecorded, "cannot record the failed redaction run either");
                }
                Err(error)
            }
        }
    }

    /// One run of an approved request. Everything it signs and records is
    /// a function of the request, the approval that counts and the signing
    /// key, never of this run's clock or of who pressed the button: two
    /// runs at once (two processes) write byte-identical records, rows and
    /// execution events, which collapse (docs/INTEGRITY.md section 14).
    async fn finish(&self, loaded: &RequestRow) -> Result<Execution, RedactionError> {
        let mut row = self.counting_approval(loaded).await?;
        let key = SigningKey::load(&self.key_dir)?;
        let keys = KeyRing::load(&self.key_dir)?;
        let dated = execution_date(&row, &key, &keys);
        let (redacted, unchanged, missing) = self.rewrite(&row, &key, &keys, dated).await?;
        let details = BTreeMap::from([
            ("redacted".to_owned(), redacted.to_string()),
            ("unchanged".to_owned(), unchanged.to_string()),
            ("missing".to_owned(), missing.len().to_string()),
        ]);
        // The subject is what is being erased: the executed version keeps
        // the event ids only.
        row.subject_actor_id = String::new();
        row.executed_at = dated;
        row.version = executed_version(loaded, &row, now_ms());
        self.record_execution(&row, details).await?;
        self.store.put_redaction_request(&row).await?;
        if let Err(error) = self.store.compact_redaction_requests().await {
            warn!(%error, "cannot merge the redaction requests' old versions now; ClickHouse merges them later");
        }
        info!(request = %row.request_id, redacted, unchanged, missing = missing.len(), "redaction executed");
        Ok(Execution {
            request: RequestView::from(&row),
            redacted,
            unchanged,
            missing,
        })
    }

    /// The approval a run executes on. Once a record of the request is
    /// stored, the approval it names (a run already signed with it);
    /// before, the earliest stored approval, ties broken by the approver's
    /// identity. Every run reads every stored approval, so two runs that
    /// see the same approvals pick the same one whoever started them.
    async fn counting_approval(&self, loaded: &RequestRow) -> Result<RequestRow, RedactionError> {
        let approvals = self.store.redaction_approvals(&loaded.request_id).await?;
        let mut ids: Vec<String> = loaded.event_ids.clone();
        ids.sort();
        ids.dedup();
        let signed = self
            .store
            .redaction_records_of_events(&loaded.tenant_id, &ids)
            .await?
            .into_iter()
            .filter(|r| r.request_id == loaded.request_id)
            .min_by_key(|r| r.executed_at);
        let chosen = pick_approval(&approvals, signed.as_ref().map(|r| r.approved_by.as_str()))
            .ok_or_else(|| {
                RedactionError::Refused(format!(
                    "request {} has no stored approval",
                    loaded.request_id
                ))
            })?;
        let mut row = loaded.clone();
        row.approved_by = chosen.approved_by.clone();
        row.approved_by_id = chosen.approved_by_id.clone();
        row.approved_at = chosen.approved_at;
        Ok(row)
    }

    /// The rewrite itself: records, redacted rows, deletes, rollups, the
    /// records and rows written [`WRITE_CHUNK`] at a time (records of a
    /// chunk before its rows). Returns (rows of the request redacted, by
    /// this run or an earlier one; rows already holding the marker; event
    /// ids missing).
    async fn rewrite(
        &self,
        row: &RequestRow,
        key: &SigningKey,
        keys: &KeyRing,
        dated: i64,
    ) -> Result<(usize, usize, Vec<String>), RedactionError> {
        let tenant = row.tenant_id.as_str();
        let fields = fields::parse_list(&row.fields).map_err(|p| invalid("fields", p))?;
        let mut ids: Vec<String> = row.event_ids.clone();
        ids.sort();
        ids.dedup();
        let stored: Vec<Stored> = self
            .store
            .rows_of_events(tenant, &ids)
            .await?
            .into_iter()
            .map(Stored::new)
            .collect();
        let records = self.records_for(tenant, &stored).await?;
        let committed = self.committed(&stored).await?;
        let seals = self.seals_of(&stored, keys).await?;
        let targets: BTreeSet<(&str, &str)> = row
            .event_ids
            .iter()
            .map(String::as_str)
            .zip(row.content_hashes.iter().map(String::as_str))
            .collect();
        let mut redacted = 0;
        let mut unchanged = 0;
        let mut writes: Vec<(Option<RedactionRecord>, Option<EventRow>)> = Vec::new();
        let mut deletes: BTreeSet<(String, String)> = BTreeSet::new();
        let mut minutes: BTreeSet<u32> = BTreeSet::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        for s in &stored {
            // A row already rewritten by this request (an earlier run):
            // its event is done, the rollups are rebuilt again below.
            if records.iter().any(|r| {
                r.request_id == row.request_id
                    && r.redacted_hash == s.hash
                    && r.names(
                        tenant,
                        &s.row.event_id,
                        s.row.kafka_partition,
                        s.row.kafka_offset,
                    )
            }) {
                if done.insert(s.row.event_id.as_str()) {
                    redacted += 1;
                }
                minutes.insert(minute_of(s.row.occurred_at));
                continue;
            }
            if !targets.contains(&(s.row.event_id.as_str(), s.hash.as_str())) {
                continue;
            }
            let sealed = sealed_as(s, &records, keys, &committed, &seals, self.topic_of(&s.row))?;
            let out = fields::redacted(&s.row, &fields);
            let out_hash = Sealed::from(&out).content_hash();
            minutes.insert(minute_of(s.row.occurred_at));
            if out_hash == s.hash {
                if done.insert(s.row.event_id.as_str()) {
                    unchanged += 1;
                }
                continue;
            }
            // A run stopped after storing the record signs no second one.
            let recorded = records.iter().any(|r| {
                r.request_id == row.request_id
                    && r.redacted_hash == out_hash
                    && r.names(tenant, &out.event_id, out.kafka_partition, out.kafka_offset)
            });
            let record =
                (!recorded).then(|| self.sign(row, &out, &out_hash, sealed, &fields, key, dated));
            let present = stored.iter().any(|o| {
                o.hash == out_hash
                    && o.row.event_id == out.event_id
                    && o.row.kafka_partition == out.kafka_partition
                    && o.row.kafka_offset == out.kafka_offset
            });
            writes.push((record, (!present).then_some(out)));
            deletes.insert((s.row.event_id.clone(), s.hash.clone()));
            if done.insert(s.row.event_id.as_str()) {
                redacted += 1;
            }
        }
        for chunk in writes.chunks(WRITE_CHUNK) {
            // A redacted row is never stored without the record that
            // explains it: the chunk's records go first.
            let records: Vec<RedactionRecord> =
                chunk.iter().filter_map(|(r, _)| r.clone()).collect();
            self.store.put_redaction_records(&records).await?;
            let rows: Vec<EventRow> = chunk.iter().filter_map(|(_, o)| o.clone()).collect();
            if !rows.is_empty() {
                self.store.insert_events(&rows).await?;
            }
        }
        let deletes: Vec<(String, String)> = deletes.into_iter().collect();
        if !deletes.is_empty() {
            self.store
                .delete_identities(tenant, &deletes, MUTATION_WAIT)
                .await?;
        }
        let minutes: Vec<u32> = minutes.into_iter().collect();
        self.store
            .rebuild_rollups(tenant, &minutes, MUTATION_WAIT)
            .await?;
        let missing = ids
            .iter()
            .filter(|id| !done.contains(id.as_str()))
            .cloned()
            .collect();
        Ok((redacted, unchanged, missing))
    }

    /// The signed record of one redacted row, dated `dated` (see
    /// [`execution_date`]): the same request, approval, row and key give
    /// the same bytes (Ed25519 signatures are deterministic).
    #[allow(clippy::too_many_arguments)]
    fn sign(
        &self,
        row: &RequestRow,
        out: &EventRow,
        out_hash: &str,
        sealed: SealedAs,
        fields: &[Field],
        key: &SigningKey,
        dated: i64,
    ) -> RedactionRecord {
        let mut erased: Vec<String> = fields.iter().map(Field::name).collect();
        erased.extend(sealed.earlier_fields);
        Unsigned {
            request_id: &row.request_id,
            tenant_id: &row.tenant_id,
            event_id: &out.event_id,
            kafka_partition: out.kafka_partition,
            kafka_offset: out.kafka_offset,
            original_hash: &sealed.original_hash,
            redacted_hash: out_hash,
            fields: &erased,
            requested_by: &row.requested_by,
            approved_by: &row.approved_by,
            reason: &row.reason,
            executed_at: dated,
        }
        .sign(key)
    }
    async fn records_for(
        &self,
        tenant: &str,
        stored: &[Stored],
    ) -> Result<Vec<RedactionRecord>, RedactionError> {
        let mut ids: Vec<String> = stored.iter().map(|s| s.row.event_id.clone()).collect();
        ids.sort();
        ids.dedup();
        Ok(self.store.redaction_records_of_events(tenant, &ids).await?)
    }

    /// The digests covering the rows' offsets and their leaves, read once
    /// per partition and per digest (not per row: a subject's thousands of
    /// events share a few digests).
    async fn seals_of(&self, stored: &[Stored], keys: &KeyRing) -> Result<Seals, RedactionError> {
        let mut ranges: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
        for s in stored {
            let Some(topic) = self.topic_of(&s.row) else {
                continue;
            };
            let o = s.row.kafka_offset;
            ranges
                .entry((topic, s.row.kafka_partition))
                .and_modify(|(lo, hi)| {
                    *lo = (*lo).min(o);
                    *hi = (*hi).max(o);
                })
                .or_insert((o, o));
        }
        let mut seals = Seals::default();
        for ((topic, partition), (from, to)) in ranges {
            let digests = self
                .store
                .digests_overlapping(std::slice::from_ref(&topic), partition, from, to)
                .await?;
            let mut covering = Vec::new();
            for d in digests {
                let holds_a_row = stored.iter().any(|s| {
                    s.row.kafka_partition == partition
                        && (d.first_offset..=d.last_offset).contains(&s.row.kafka_offset)
                        && self.topic_of(&s.row).as_deref() == Some(topic.as_str())
                });
                if !holds_a_row {
                    continue;
                }
                let leaves = self.store.leaves_of(&d).await?;
                let valid = leaves_problem(&d, &leaves).is_none() && d.check(keys).is_ok();
                covering.push(SealedDigest {
                    first_offset: d.first_offset,
                    last_offset: d.last_offset,
                    valid,
                    leaves,
                });
            }
            seals.0.insert((topic, partition), covering);
        }
        Ok(seals)
    }
    /// One step as an audit event of the tenant's trail. The subject's
    /// actor id is never in it: it is what the request erases.
    async fn record(
        &self,
        row: &RequestRow,
        action: &str,
        by: &Who,
        outcome: Outcome,
        details: BTreeMap<String, String>,
    ) -> Result<(), RedactionError> {
        self.ingest
            .record(step_event(row, action, by, outcome, details))
            .await?;
        Ok(())
    }

    /// The execution's audit event. Done on the authority of the approval
    /// that counts, it names that approver as its actor, is dated like the
    /// records, and has an id derived from the request: every run of the
    /// request (two processes at once, or a run repeated after a crash)
    /// records the same event, stored once (its identity is its id and
    /// content hash; `received_at` is outside both).
    async fn record_execution(
        &self,
        row: &RequestRow,
        details: BTreeMap<String, String>,
    ) -> Result<(), RedactionError> {
        let approver = Who {
            name: row.approved_by.clone(),
            id: row.approved_by_id.clone(),
        };
        let mut event = step_event(
            row,
            "redaction.execute",
            &approver,
            Outcome::Success,
            details,
        );
        event.event_id = execution_event_id(&row.request_id);
        event.occurred_at = row.executed_at;
        self.ingest.record(event).await?;
        Ok(())
    }
}

/// One step as an audit event of the tenant's trail. The subject's actor
/// id is never in it: it is what the request erases.
fn step_event(
    row: &RequestRow,
    action: &str,
    by: &Who,
    outcome: Outcome,
    mut details: BTreeMap<String, String>,
) -> crate::event::AuditEvent {
    details.insert("fields".into(), row.fields.join(","));
    details.insert("events".into(), row.event_ids.len().to_string());
    details.insert("reason".into(), row.reason.clone());
    details.insert("requested_by".into(), row.requested_by.clone());
    if !row.approved_by.is_empty() {
        details.insert("approved_by".into(), row.approved_by.clone());
    }
    details.insert(
        "by_subject".into(),
        (!row.subject_actor_id.is_empty()).to_string(),
    );
    details.insert("access_id".into(), by.id.clone());
    internal_event(
        &row.tenant_id,
        Category::Admin,
        action,
        outcome,
        Resource {
            kind: "redaction_request".into(),
            id: row.request_id.clone(),
        },
        &by.name,
        details,
    )
}

/// The row's seal: a valid digest of its own chain holds a leaf naming
/// it, and the row verifies against that leaf (intact, or redacted before
/// under a valid record). Returns the content hash sealed and the fields
/// an earlier redaction erased.
fn sealed_as(
    s: &Stored,
    records: &[RedactionRecord],
    keys: &KeyRing,
    committed: &Committed,
    seals: &Seals,
    topic: Option<String>,
) -> Result<SealedAs, RedactionError> {
    let r = &s.row;
    let not_sealed = || {
        RedactionError::NotSealed(format!(
            "event {} of tenant {} is not sealed yet (its digest is written seconds after \
             the row; if this lasts, run `attest integrity check`): try again shortly",
            r.event_id, r.tenant_id
        ))
    };
    let topic = topic.ok_or_else(not_sealed)?;
    if !committed.past(&topic, r.kafka_partition, r.kafka_offset) {
        return Err(RedactionError::NotSealed(format!(
            "event {} of tenant {} is not committed by the writers yet (offset {} of \
             {topic}[{}]): it could be delivered again and re-insert what is erased; try \
             again shortly",
            r.event_id, r.tenant_id, r.kafka_offset, r.kafka_partition
        )));
    }
    let digests = seals
        .0
        .get(&(topic, r.kafka_partition))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut sealed_any = false;
    for d in digests
        .iter()
        .filter(|d| (d.first_offset..=d.last_offset).contains(&r.kafka_offset))
    {
        let Some(leaf) = d.leaves.iter().find(|l| {
            l.kafka_offset == r.kafka_offset
                && l.event_id == r.event_id
                && l.tenant_id == r.tenant_id
        }) else {
            continue;
        };
        sealed_any = true;
        if !d.valid {
            continue;
        }
        let Some(sealed_leaf) = unhex::<32>(&leaf.leaf) else {
            continue;
        };
        let hashes = RowHashes {
            tenant_id: &r.tenant_id,
            event_id: &r.event_id,
            content_hash: &s.hash,
            received_at: r.received_at,
            schema_id: r.schema_id,
            kafka_partition: r.kafka_partition,
            kafka_offset: r.kafka_offset,
        };
        match judge_row(&hashes, &sealed_leaf, records, keys) {
            RowSeal::Intact => {
                return Ok(SealedAs {
                    original_hash: s.hash.clone(),
                    earlier_fields: Vec::new(),
                })
            }
            RowSeal::Redacted(record) => {
                return Ok(SealedAs {
                    original_hash: record.original_hash.clone(),
                    earlier_fields: record.fields.clone(),
                })
            }
            RowSeal::BadRecord(..) | RowSeal::Altered => {}
        }
    }
    if sealed_any {
        Err(RedactionError::Unverified(format!(
            "event {} of tenant {} does not verify against its seal: it was changed after it \
             was written, and redacting it would hide that. Run `attest integrity check`",
            r.event_id, r.tenant_id
        )))
    } else {
        Err(not_sealed())
    }
}

/// The digests of one (topic, partition) that cover some of the rows.
#[derive(Default)]
struct Seals(std::collections::HashMap<(String, i32), Vec<SealedDigest>>);

struct SealedDigest {
    first_offset: i64,
    last_offset: i64,
    /// Its leaves match it and its signature checks.
    valid: bool,
    leaves: Vec<LeafRow>,
}

/// The approval that counts among those stored: the one named by the
/// records already signed (`signed_by`), else the earliest, ties broken by
/// the approver's identity. A pure function of what is stored, so every
/// process that reads the same approvals picks the same one.
fn pick_approval<'a>(
    approvals: &'a [ApprovalRow],
    signed_by: Option<&str>,
) -> Option<&'a ApprovalRow> {
    let order = |a: &&ApprovalRow| (a.approved_at, a.approved_by_id.clone());
    let approvals = approvals.iter().filter(|a| a.approved_at > 0);
    match signed_by {
        Some(name) => approvals
            .clone()
            .filter(|a| a.approved_by == name)
            .min_by_key(order)
            .or_else(|| approvals.min_by_key(order)),
        None => approvals.min_by_key(order),
    }
}

/// The date of an execution, in every record it signs and in its audit
/// event: the time of the approval that counts, so that every run of the
/// request signs the same bytes; or, when the signing key was made after
/// that approval (rotated between approval and execution), the key's
/// start, so that the record is inside its key's validity (section 6).
fn execution_date(row: &RequestRow, key: &SigningKey, keys: &KeyRing) -> i64 {
    let start = keys.get(key.id()).map_or(0, |k| k.not_before);
    row.approved_at.max(start)
}

/// The version of the executed request: above every approval stored (the
/// approvals' versions are their clock times, all before this run's
/// clock) and above the version the run loaded.
fn executed_version(loaded: &RequestRow, row: &RequestRow, now: i64) -> u64 {
    next_version(loaded, now).max(next_version(row, now))
}

/// The execution event's id: derived from the request alone (a UUID of
/// version 8 over SHA-256), so that the event of two runs is one event
/// (docs/DESIGN.md, "Event identity").
fn execution_event_id(request_id: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(format!("attest-redaction-execute\n{request_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The writers' committed offset per (topic, partition): the next offset
/// they will read.
#[derive(Default)]
struct Committed(std::collections::HashMap<(String, i32), i64>);

impl Committed {
    fn past(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.0
            .get(&(topic.to_owned(), partition))
            .is_some_and(|&next| offset < next)
    }
}

/// What a row's seal says it was.
struct SealedAs {
    original_hash: String,
    earlier_fields: Vec<String>,
}

/// A newer version than the stored one, even if the clock went back.
fn next_version(row: &RequestRow, now: i64) -> u64 {
    (now.max(0) as u64).max(row.version.saturating_add(1))
}

/// The start of the event's minute, in epoch seconds (the rollups' key, a
/// `DateTime`: seconds from 1970 to 2106; earlier or later times are
/// clamped as ClickHouse stores them).
fn minute_of(occurred_at_ms: i64) -> u32 {
    let seconds = occurred_at_ms.div_euclid(60_000).saturating_mul(60);
    u32::try_from(seconds.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_is_its_start_in_seconds() {
        assert_eq!(minute_of(1_800_000_059_999), 1_800_000_000);
        assert_eq!(minute_of(1_800_000_060_000), 1_800_000_060);
        assert_eq!(minute_of(-1), 0);
    }

    #[test]
    fn states_follow_the_times() {
        // Requested, not approved yet.
        let mut row = RequestRow {
            request_id: "r".into(),
            tenant_id: "t".into(),
            subject_actor_id: String::new(),
            event_ids: vec![],
            content_hashes: vec![],
            fields: vec![],
            reason: String::new(),
            requested_by: "a".into(),
            requested_by_id: "cli:a".into(),
            requested_at: 1,
            approved_by: String::new(),
            approved_by_id: String::new(),
            approved_at: 0,
            executed_at: 0,
            version: 5,
        };
        assert_eq!(State::of(&row), State::Pending);
        row.approved_at = 2;
        assert_eq!(State::of(&row), State::Approved);
        row.executed_at = 3;
        assert_eq!(State::of(&row), State::Executed);
        assert_eq!(next_version(&row, 2), 6, "never older than the stored one");
        assert_eq!(next_version(&row, 100), 100);
    }

    fn approval(by: &str, at: i64) -> ApprovalRow {
        ApprovalRow {
            request_id: "r".into(),
            approved_at: at,
            approved_by_id: format!("cli:{by}"),
            approved_by: by.into(),
        }
    }

    #[test]
    fn the_earliest_approval_counts_unless_a_record_names_another() {
        let stored = [
            approval("carol", 20),
            approval("bob", 10),
            approval("dave", 10),
        ];
        let pick = |signed| pick_approval(&stored, signed).map(|a| a.approved_by.as_str());
        // In any order read: the earliest, then by identity.
        assert_eq!(pick(None), Some("bob"));
        let reversed: Vec<ApprovalRow> = stored.iter().rev().cloned().collect();
        assert_eq!(
            pick_approval(&reversed, None).map(|a| a.approved_by.as_str()),
            Some("bob")
        );
        // A run already signed with carol's approval: it stays carol's.
        assert_eq!(pick(Some("carol")), Some("carol"));
        assert_eq!(pick(Some("nobody")), Some("bob"));
        assert_eq!(pick_approval(&[approval("x", 0)], None), None, "pending");
    }

    #[test]
    fn an_execution_is_dated_by_its_approval_and_its_event_id_by_its_request() {
        assert_eq!(execution_event_id("r-1"), execution_event_id("r-1"));
        assert_ne!(execution_event_id("r-1"), execution_event_id("r-2"));
        let id = uuid::Uuid::parse_str(&execution_event_id("r-1")).unwrap();
        assert_eq!(id.get_version_num(), 8);
    }
}
