//! Every process on the pipeline page (docs/DESIGN.md, "Every process on
//! the pipeline page"): each `attest serve` and `attest writer` reports its
//! own status every `trends.sample_every` into `attest_process_status`
//! (migration 0019): who it is, its writer's state and last error, the
//! partitions the writer group gives its writer, its spool. The page and
//! the alert rules read the newest report of each process
//! ([`Reporter::processes`]); the serving process adds itself as it is now.
//!
//! A writer is told apart in the group by its consumer's `client.id`,
//! `attest-writer/<process id>` (`app::pipeline_model::procs::writer_client_id`),
//! which start-up puts in `kafka.writer_client_id`.

use std::sync::Arc;
use std::time::Duration;

use app::pipeline_model::procs::{partition_label, writer_client_id};
use app::pipeline_model::{GroupMember, ProcessStatus, ProcessesHealth, WriterState};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ready::Readiness;
use crate::config::{redact_url, KafkaConfig};
use crate::ingest::now_ms;
use crate::metrics::Metrics;
use crate::store::{StatusRow, Store};

/// How long a process that stopped reporting stays listed (as silent).
pub const SHOWN_FOR: Duration = Duration::from_secs(3600);
/// The group coordinator's answer, per report or page.
const GROUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Reading the reports, for a page or an alert round.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest error text kept in a report.
const MAX_ERROR_CHARS: usize = 500;

/// Who this process is, for its lifetime.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `<host>/<pid>/<uuid v7>`: new at every start, so a restarted
    /// process is a new row and the old one goes silent.
    pub process: String,
    pub host: String,
    pub roles: Vec<String>,
    pub started_at_ms: i64,
}

impl Identity {
    pub fn new(roles: &[&str]) -> Identity {
        let host = host_name();
        Identity {
            process: format!(
                "{host}/{}/{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ),
            host,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            started_at_ms: now_ms(),
        }
    }

    /// The writer consumer's `client.id` for this process.
    pub fn writer_client_id(&self) -> String {
        writer_client_id(&self.process)
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Reports this process's status, and reads everyone's.
pub struct Reporter {
    identity: Identity,
    kafka: KafkaConfig,
    store: Store,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    every: Duration,
    /// Whether reports are written (`trends.enabled`); without them the
    /// page shows only the process serving it.
    enabled: bool,
    /// For the group's member list; made once, reused every round.
    group_client: Option<Arc<BaseConsumer>>,
}

impl Reporter {
    pub fn new(
        identity: Identity,
        kafka: KafkaConfig,
        store: Store,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        every: Duration,
        enabled: bool,
    ) -> Reporter {
        // Only a reporting process asks the group (the page asks it with
        // its own client, `health::pipeline`).
        let group_client = enabled
            .then(|| {
                ClientConfig::new()
                    .set("bootstrap.servers", &kafka.brokers)
                    .create::<BaseConsumer>()
                    .map_err(
                        |error| warn!(%error, "cannot create a client to read the writer group"),
                    )
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        Reporter {
            identity,
            kafka,
            store,
            metrics,
            readiness,
            every,
            enabled,
            group_client,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Reports every `every` until `stop` (when enabled).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        if !self.enabled {
            return;
        }
        crate::periodic::every(self.every, stop, || self.report()).await;
    }

    async fn report(&self) {
        let members = match &self.group_client {
            Some(client) => read_group(client.clone(), &self.kafka.consumer_group).await,
            None => Err("no client".into()),
        };
        let mut status = self.status_now(now_ms());
        match members {
            Ok(members) => status.partitions = self.own_partitions(&members),
            // The report goes out without partitions; the page reads the
            // group itself and shows what it gives this writer.
            Err(error) => debug!(%error, "writer group not read for the status report"),
        }
        // Bounded by the interval: a hung insert must not hold back the
        // next report.
        let row = row_of(&status);
        let insert = self.store.insert_status(&row);
        match tokio::time::timeout(self.every.max(READ_TIMEOUT), insert).await {
            Ok(Ok(())) => {}
            // ClickHouse down: the page and the alerts read nothing from it
            // either, and fall back to the serving process's own figures.
            Ok(Err(error)) => warn!(%error, "cannot write this process's status report"),
            Err(_) => warn!("this process's status report was not written in time"),
        }
    }

    /// The partitions the group gives this process's writer.
    fn own_partitions(&self, members: &[GroupMember]) -> Vec<String> {
        if !self.has_writer() {
            return Vec::new();
        }
        let id = self.identity.writer_client_id();
        let mut own: Vec<String> = members
            .iter()
            .filter(|m| m.client_id == id)
            .flat_map(|m| m.partitions.iter().cloned())
            .collect();
        own.sort();
        own
    }

    fn has_writer(&self) -> bool {
        self.identity.roles.iter().any(|r| r == "writer")
    }

    /// This process as it is now (partitions not filled in).
    pub fn status_now(&self, now: i64) -> ProcessStatus {
        let writer = self.readiness.writer_report();
        let oldest = self.metrics.spool_oldest_pending_ms();
        ProcessStatus {
            process: self.identity.process.clone(),
            host: self.identity.host.clone(),
            roles: self.identity.roles.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at_ms: self.identity.started_at_ms,
            reported_at_ms: now,
            interval_ms: i64::try_from(self.every.as_millis()).unwrap_or(i64::MAX),
            this_process: true,
            silent: false,
            writer: writer.as_ref().map_or(WriterState::None, |w| w.state),
            writer_detail: writer
                .as_ref()
                .map(|w| redact_text(&w.detail))
                .unwrap_or_default(),
            last_error: writer
                .as_ref()
                .and_then(|w| w.last_error.as_deref())
                .map(redact_text)
                .unwrap_or_default(),
            last_insert_ms: writer.as_ref().and_then(|w| w.last_insert_ms),
            partitions: Vec::new(),
            group_partitions: None,
            spool_events: self.metrics.spool_pending_events.get(),
            spool_oldest_age_ms: (oldest > 0).then(|| now.saturating_sub(oldest).max(0)),
        }
    }

    /// The newest report of every process heard from in the last
    /// [`SHOWN_FOR`]; why not, in words, when they cannot be read.
    pub async fn others(&self) -> Result<Vec<ProcessStatus>, String> {
        if !self.enabled {
            return Err(
                "process reports are off (trends.enabled is false): only this process is shown"
                    .into(),
            );
        }
        let now = now_ms();
        let since = now.saturating_sub(i64::try_from(SHOWN_FOR.as_millis()).unwrap_or(0));
        match tokio::time::timeout(READ_TIMEOUT, self.store.latest_statuses(since)).await {
            Ok(Ok(rows)) => Ok(statuses_of(rows, now)),
            Ok(Err(error)) => Err(format!(
                "the other processes' reports could not be read ({}); only this process is \
                 shown, and the spool alert sees only its spool",
                redact_text(&error.to_string())
            )),
            Err(_) => Err(format!(
                "the other processes' reports did not come within {} s; only this process is \
                 shown, and the spool alert sees only its spool",
                READ_TIMEOUT.as_secs()
            )),
        }
    }

    /// `others` with this process as it is now, judged against the
    /// group's `members` (when read).
    pub fn processes(
        &self,
        others: Result<Vec<ProcessStatus>, String>,
        members: Option<&[GroupMember]>,
    ) -> ProcessesHealth {
        let now = now_ms();
        let mut health = ProcessesHealth::default();
        let mut me = self.status_now(now);
        if let Some(members) = members {
            me.partitions = self.own_partitions(members);
        }
        match others {
            Ok(others) => health.processes = others,
            Err(problem) => health.problems.push(problem),
        }
        health.processes.retain(|p| p.process != me.process);
        health.processes.push(me);
        health.judge(members, now);
        health
    }
}

/// What one report stores.
fn row_of(s: &ProcessStatus) -> StatusRow {
    let ms = |v: i64| u64::try_from(v).unwrap_or(0);
    StatusRow {
        at_ms: ms(s.reported_at_ms),
        process: s.process.clone(),
        host: s.host.clone(),
        roles: s.roles.clone(),
        version: s.version.clone(),
        started_at_ms: ms(s.started_at_ms),
        interval_ms: ms(s.interval_ms),
        writer_state: s.writer.code().to_owned(),
        writer_detail: clip(&s.writer_detail),
        last_error: clip(&s.last_error),
        last_insert_ms: s.last_insert_ms.map_or(0, ms),
        partitions: s.partitions.clone(),
        spool_events: s.spool_events,
        spool_oldest_ms: s
            .spool_oldest_age_ms
            .map_or(0, |age| ms(s.reported_at_ms.saturating_sub(age))),
    }
}

/// The stored reports as the page shows them; ages are as of `now`.
fn statuses_of(rows: Vec<StatusRow>, now: i64) -> Vec<ProcessStatus> {
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    rows.into_iter()
        .map(|r| ProcessStatus {
            reported_at_ms: ms(r.at_ms),
            started_at_ms: ms(r.started_at_ms),
            interval_ms: ms(r.interval_ms),
            this_process: false,
            silent: false,
            writer: WriterState::from_code(&r.writer_state),
            // Redacted when written; again here, as the table may hold
            // rows of another version.
            writer_detail: redact_text(&r.writer_detail),
            last_error: redact_text(&r.last_error),
            last_insert_ms: (r.last_insert_ms > 0).then(|| ms(r.last_insert_ms)),
            group_partitions: None,
            spool_events: r.spool_events,
            spool_oldest_age_ms: (r.spool_oldest_ms > 0)
                .then(|| now.saturating_sub(ms(r.spool_oldest_ms)).max(0)),
            process: r.process,
            host: r.host,
            roles: r.roles,
            version: r.version,
            partitions: r.partitions,
        })
        .collect()
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// `text` with the credentials of any URL in it removed: insert errors may
/// quote the ClickHouse URL, which may carry `user:password@`.
pub fn redact_text(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            if word.contains("://") {
                let trimmed = word.trim_end();
                let tail = &word[trimmed.len()..];
                // The URL may sit inside quotes or brackets: redact from
                // its scheme on.
                let start = trimmed
                    .find("://")
                    .and_then(|i| trimmed[..i].rfind(|c: char| !c.is_ascii_alphanumeric()))
                    .map_or(0, |i| i + 1);
                format!(
                    "{}{}{tail}",
                    &trimmed[..start],
                    redact_url(&trimmed[start..])
                )
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// The writer group's members with their partitions, from the group
/// coordinator. Blocking in librdkafka: off the async workers.
pub async fn read_group(
    client: Arc<BaseConsumer>,
    group: &str,
) -> Result<Vec<GroupMember>, String> {
    let group = group.to_owned();
    let listed = tokio::time::timeout(
        GROUP_TIMEOUT + Duration::from_secs(1),
        tokio::task::spawn_blocking(move || members_of(&client, &group, GROUP_TIMEOUT)),
    )
    .await;
    match listed {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", GROUP_TIMEOUT.as_secs())),
    }
}

/// Blocking: the members of `group`, as [`read_group`].
pub fn members_of(
    client: &BaseConsumer,
    group: &str,
    timeout: Duration,
) -> Result<Vec<GroupMember>, String> {
    let list = client
        .fetch_group_list(Some(group), timeout)
        .map_err(|e| e.to_string())?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(Vec::new());
    };
    let mut members: Vec<GroupMember> = info
        .members()
        .iter()
        .map(|m| {
            let mut partitions: Vec<String> = m
                .assignment()
                .map(|bytes| parse_assignment(bytes).unwrap_or_default())
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, p)| partition_label(&topic, p))
                .collect();
            partitions.sort();
            GroupMember {
                member_id: m.id().to_owned(),
                client_id: m.client_id().to_owned(),
                host: m.client_host().to_owned(),
                partitions,
            }
        })
        .collect();
    members.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(members)
}

/// The partitions in a consumer group member's assignment, as the
/// `consumer` protocol encodes it (Kafka's `ConsumerProtocolAssignment`,
/// every version so far): `version: i16`, then an `i32` count of topics,
/// each a string (`i16` length, bytes) and an `i32` count of `i32`
/// partitions; user data follows and is not read. Every length is checked
/// against what is left: the bytes come from the network.
pub fn parse_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, &'static str> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
            if self.0.len() < n {
                return Err("assignment cut short");
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn i16(&mut self) -> Result<i16, &'static str> {
            let b = self.take(2)?;
            Ok(i16::from_be_bytes([b[0], b[1]]))
        }
        fn i32(&mut self) -> Result<i32, &'static str> {
            let b = self.take(4)?;
            Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        fn count(&mut self) -> Result<usize, &'static str> {
            // -1 is a null array: nothing.
            Ok(usize::try_from(self.i32()?.max(0)).unwrap_or(0))
        }
    }
    let mut r = Reader(bytes);
    if bytes.is_empty() {
        // A member that has not been given anything yet.
        return Ok(Vec::new());
    }
    let _version = r.i16()?;
    let topics = r.count()?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let len = usize::try_from(r.i16()?.max(0)).unwrap_or(0);
        let topic = std::str::from_utf8(r.take(len)?)
            .map_err(|_| "topic name is not UTF-8")?
            .to_owned();
        let partitions = r.count()?;
        if partitions > r.0.len() / 4 {
            return Err("assignment cut short");
        }
        for _ in 0..partitions {
            out.push((topic.clone(), r.i32()?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            b.extend_from_slice(topic.as_bytes());
            b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                b.extend_from_slice(&p.to_be_bytes());
            }
        }
        // User data: null.
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b
    }

    #[test]
    fn assignments_are_read_and_hostile_ones_refused() {
        let bytes = assignment(&[("p.auth", &[0, 2]), ("p.data", &[1])]);
        assert_eq!(
            parse_assignment(&bytes),
            Ok(vec![
                ("p.auth".into(), 0),
                ("p.auth".into(), 2),
                ("p.data".into(), 1)
            ])
        );
        assert_eq!(parse_assignment(&[]), Ok(Vec::new()));
        assert_eq!(parse_assignment(&assignment(&[])), Ok(Vec::new()));
        for cut in 1..bytes.len() - 4 {
            assert!(parse_assignment(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A count far beyond the bytes is refused before any allocation.
        let mut huge = assignment(&[("t", &[])]);
        let at = 2 + 4 + 2 + 1;
        huge[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_assignment(&huge).is_err());
    }

    #[test]
    fn credentials_in_error_text_are_removed() {
        let text = "ClickHouse request failed: error sending request for url \
                    (http://default:s3cret@ch-1:8123/?database=a): connection refused";
        let shown = redact_text(text);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("(http://<redacted>@ch-1:8123/"), "{shown}");
        assert!(shown.ends_with("connection refused"), "{shown}");
        assert_eq!(
            redact_text("Code: 252. Too many parts"),
            "Code: 252. Too many parts"
        );
    }

    #[test]
    fn a_report_round_trips_through_its_row() {
        let status = ProcessStatus {
            process: "h/1/u".into(),
            host: "h".into(),
            roles: vec!["writer".into()],
            version: "0.1.0".into(),
            started_at_ms: 1_000,
            reported_at_ms: 50_000,
            interval_ms: 10_000,
            writer: WriterState::BackingOff,
            writer_detail: "backing off".into(),
            last_error: "Code: 210".into(),
            last_insert_ms: Some(40_000),
            partitions: vec!["t/0".into()],
            spool_events: 3,
            spool_oldest_age_ms: Some(2_000),
            ..ProcessStatus::default()
        };
        let row = row_of(&status);
        assert_eq!(row.spool_oldest_ms, 48_000);
        assert_eq!(row.writer_state, "backing_off");
        let back = statuses_of(vec![row], 60_000).remove(0);
        assert_eq!(back.spool_oldest_age_ms, Some(12_000), "aged as of now");
        assert_eq!(
            ProcessStatus {
                spool_oldest_age_ms: Some(2_000),
                ..back
            },
            status
        );
    }
}
