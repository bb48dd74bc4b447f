//! Every Attest process as the pipeline page shows it: what each one last
//! reported about itself (`attest_process_status`, written by every
//! `attest serve` and `attest writer` every `trends.sample_every`), which
//! of them went silent, and how their writers compare with what the
//! writer group's coordinator says it gave them.
//!
//! Pure: the judgements (silent, the cross-check, the largest spool) are
//! tested here without a broker or a database.

use serde::{Deserialize, Serialize};

/// Reports missed before a process shows as silent (it may have died).
pub const SILENT_AFTER_INTERVALS: i64 = 3;

/// The writer consumer's `client.id` of process `process`: how a member
/// of the writer group is matched to the process that reported it.
pub fn writer_client_id(process: &str) -> String {
    format!("attest-writer/{process}")
}

/// A writer's state, as its own process judges it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriterState {
    /// The process runs no writer.
    #[default]
    None,
    Running,
    /// ClickHouse pushes back (too many parts, memory, a timed-out insert):
    /// the writer holds its partitions paused and tries again.
    Paused,
    /// An insert failed for another reason; the writer retries with backoff.
    BackingOff,
    /// No progress for `writer.stall_after` while its partitions have lag.
    Stalled,
    Stopped,
}

impl WriterState {
    /// As stored in `attest_process_status.writer_state`.
    pub fn code(self) -> &'static str {
        match self {
            WriterState::None => "",
            WriterState::Running => "running",
            WriterState::Paused => "paused",
            WriterState::BackingOff => "backing_off",
            WriterState::Stalled => "stalled",
            WriterState::Stopped => "stopped",
        }
    }

    /// An unknown code (a newer version's) reads as `None`: shown, not
    /// judged.
    pub fn from_code(code: &str) -> WriterState {
        match code {
            "running" => WriterState::Running,
            "paused" => WriterState::Paused,
            "backing_off" => WriterState::BackingOff,
            "stalled" => WriterState::Stalled,
            "stopped" => WriterState::Stopped,
            _ => WriterState::None,
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            WriterState::None => "no writer",
            WriterState::Running => "running",
            WriterState::Paused => "paused for backpressure",
            WriterState::BackingOff => "backing off after an error",
            WriterState::Stalled => "stalled",
            WriterState::Stopped => "stopped",
        }
    }

    pub fn ok(self) -> bool {
        matches!(self, WriterState::None | WriterState::Running)
    }
}

/// One process, as it last reported (or, for the process serving the
/// page, as it is now).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// Stable for the process's lifetime, new at every start.
    pub process: String,
    pub host: String,
    /// `console`, `ingest`, `writer`.
    pub roles: Vec<String>,
    pub version: String,
    pub started_at_ms: i64,
    pub reported_at_ms: i64,
    /// How often it reports (its `trends.sample_every`).
    pub interval_ms: i64,
    /// The process serving this page.
    pub this_process: bool,
    /// No report for [`SILENT_AFTER_INTERVALS`] intervals.
    pub silent: bool,
    pub writer: WriterState,
    /// The state in words, with the error it is backing off from.
    pub writer_detail: String,
    /// The last insert error, credentials removed; empty if none.
    pub last_error: String,
    pub last_insert_ms: Option<i64>,
    /// `topic/partition` its writer held when it reported.
    pub partitions: Vec<String>,
    /// What the group gives it now; `None` when the group was not read.
    pub group_partitions: Option<Vec<String>>,
    pub spool_events: i64,
    /// Age of its oldest spooled event at the report; `None` when empty.
    pub spool_oldest_age_ms: Option<i64>,
}

/// A member of the writer group, as the group coordinator lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// `topic/partition`, sorted.
    pub partitions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessesHealth {
    /// Writers first, then by process id.
    pub processes: Vec<ProcessStatus>,
    /// Members of the writer group that no reporting process claims: a
    /// writer whose reports do not arrive, or a consumer that is not
    /// Attest's.
    pub unclaimed_members: Vec<GroupMember>,
    /// The group's members were read (the cross-check is meaningful).
    pub group_read: bool,
    /// Why the list may be partial (ClickHouse or the group not read).
    pub problems: Vec<String>,
}

/// No report for [`SILENT_AFTER_INTERVALS`] intervals of its own.
pub fn is_silent(reported_at_ms: i64, interval_ms: i64, now_ms: i64) -> bool {
    let allowed = interval_ms.max(1).saturating_mul(SILENT_AFTER_INTERVALS);
    now_ms.saturating_sub(reported_at_ms) > allowed
}

/// `topic/partition`, as statuses and members list partitions.
pub fn partition_label(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

impl ProcessesHealth {
    /// Marks the silent, fills each writer's partitions as the group gives
    /// them (`members`, when read) and lists the members nobody claims.
    pub fn judge(&mut self, members: Option<&[GroupMember]>, now_ms: i64) {
        for p in &mut self.processes {
            p.silent = !p.this_process && is_silent(p.reported_at_ms, p.interval_ms, now_ms);
        }
        self.processes.sort_by(|a, b| {
            let writer = |p: &ProcessStatus| p.writer == WriterState::None;
            (writer(a), a.silent, &a.process).cmp(&(writer(b), b.silent, &b.process))
        });
        let Some(members) = members else {
            self.group_read = false;
            return;
        };
        self.group_read = true;
        for p in &mut self.processes {
            if p.writer == WriterState::None {
                continue;
            }
            let id = writer_client_id(&p.process);
            let mut given: Vec<String> = members
                .iter()
                .filter(|m| m.client_id == id)
                .flat_map(|m| m.partitions.iter().cloned())
                .collect();
            given.sort();
            p.group_partitions = Some(given);
        }
        let claimed = |m: &GroupMember| {
            self.processes
                .iter()
                .any(|p| !p.silent && writer_client_id(&p.process) == m.client_id)
        };
        self.unclaimed_members = members.iter().filter(|m| !claimed(m)).cloned().collect();
    }

    /// The largest spool among the processes heard from recently: `(process,
    /// events)`. Silent processes do not count: their figure is stale, and
    /// a process that died with a spool holds it until it starts again.
    pub fn largest_spool(&self) -> Option<(&str, i64)> {
        self.processes
            .iter()
            .filter(|p| !p.silent)
            .max_by_key(|p| p.spool_events)
            .map(|p| (p.process.as_str(), p.spool_events))
    }
}

impl ProcessStatus {
    /// The group gives this writer other partitions than it reported:
    /// a rebalance since its report, or a writer that is not in the group.
    pub fn group_disagrees(&self) -> bool {
        match &self.group_partitions {
            Some(given) => {
                let mut reported = self.partitions.clone();
                reported.sort();
                !self.silent && *given != reported
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(id: &str, reported_at_ms: i64, writer: WriterState) -> ProcessStatus {
        ProcessStatus {
            process: id.into(),
            reported_at_ms,
            interval_ms: 10_000,
            writer,
            ..ProcessStatus::default()
        }
    }

    fn member(client: &str, partitions: &[&str]) -> GroupMember {
        GroupMember {
            member_id: format!("{client}-m"),
            client_id: client.into(),
            host: "/10.0.0.1".into(),
            partitions: partitions.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn states_round_trip_and_unknown_codes_are_not_judged() {
        for s in [
            WriterState::None,
            WriterState::Running,
            WriterState::Paused,
            WriterState::BackingOff,
            WriterState::Stalled,
            WriterState::Stopped,
        ] {
            assert_eq!(WriterState::from_code(s.code()), s);
        }
        assert_eq!(WriterState::from_code("rebalancing"), WriterState::None);
        assert!(!WriterState::Paused.ok());
        assert_eq!(WriterState::Paused.words(), "paused for backpressure");
    }

    #[test]
    fn silent_after_three_of_its_own_intervals() {
        assert!(!is_silent(0, 10_000, 30_000));
        assert!(is_silent(0, 10_000, 30_001));
        assert!(is_silent(0, 0, 4), "a zero interval counts as 1 ms");
        assert!(!is_silent(i64::MAX, i64::MAX, i64::MIN), "no overflow");
    }

    #[test]
    fn the_group_is_compared_with_each_writer() {
        let now = 100_000;
        let mut health = ProcessesHealth {
            processes: vec![
                process("b", now - 1_000, WriterState::Running),
                process("a", now - 5_000, WriterState::Running),
                process("dead", now - 60_000, WriterState::Running),
                process("console", now - 1_000, WriterState::None),
            ],
            ..ProcessesHealth::default()
        };
        health.processes[0].partitions = vec!["t/1".into()];
        health.processes[1].partitions = vec!["t/0".into()];
        let members = [
            member(&writer_client_id("a"), &["t/0"]),
            member(&writer_client_id("b"), &["t/1", "t/2"]),
            member(&writer_client_id("dead"), &[]),
            member("attest-writer", &["t/3"]),
        ];
        health.judge(Some(&members), now);
        let order: Vec<(&str, bool)> = health
            .processes
            .iter()
            .map(|p| (p.process.as_str(), p.silent))
            .collect();
        assert_eq!(
            order,
            [
                ("a", false),
                ("b", false),
                ("dead", true),
                ("console", false)
            ]
        );
        assert!(!health.processes[0].group_disagrees());
        assert!(health.processes[1].group_disagrees(), "b now holds t/2 too");
        assert!(!health.processes[2].group_disagrees(), "silent: not judged");
        assert_eq!(health.processes[3].group_partitions, None);
        let unclaimed: Vec<&str> = health
            .unclaimed_members
            .iter()
            .map(|m| m.client_id.as_str())
            .collect();
        assert_eq!(
            unclaimed,
            [writer_client_id("dead").as_str(), "attest-writer"]
        );
        assert!(health.group_read);

        let mut unread = health.clone();
        unread.judge(None, now);
        assert!(!unread.group_read);
    }

    #[test]
    fn the_largest_spool_is_of_a_process_heard_from_recently() {
        let now = 100_000;
        let mut a = process("a", now, WriterState::None);
        a.spool_events = 5;
        let mut dead = process("dead", 0, WriterState::None);
        dead.spool_events = 500;
        let mut health = ProcessesHealth {
            processes: vec![a, dead],
            ..ProcessesHealth::default()
        };
        health.judge(None, now);
        assert_eq!(health.largest_spool(), Some(("a", 5)));
        assert_eq!(ProcessesHealth::default().largest_spool(), None);
    }
}
