//! The rules: which of them hold for one round of figures. Pure, apart
//! from the few figures that need history (the lag's moving average, how
//! long the spool has held events, the dead-letter count over a window),
//! which [`Observer`] keeps between rounds.

use std::collections::VecDeque;

use app::alerts_model::{
    RuleSettings, RULE_CLICKHOUSE_DOWN, RULE_DEAD_LETTERS, RULE_INTEGRITY, RULE_KAFKA, RULE_PARTS,
    RULE_SPOOL, RULE_WRITER_LAG, RULE_WRITER_STALLED,
};
use app::pipeline_model::PipelineSnapshot;

/// A rule whose condition holds now, and what it found, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub summary: String,
}

/// A time-weighted moving average over the last `window` ms of a figure
/// sampled at irregular times. Each sample holds until the next one (the
/// lag is read every round; between rounds the last reading is the best
/// knowledge). The average is known only once a sample at or before the
/// window's start exists: a spike at start-up is not averaged over the few
/// seconds seen so far, which would fire on it.
#[derive(Debug, Default)]
pub struct MovingAverage {
    /// `(epoch ms, value)`, oldest first.
    samples: VecDeque<(i64, i64)>,
}

impl MovingAverage {
    pub fn push(&mut self, at_ms: i64, value: i64) {
        if let Some(&(last, _)) = self.samples.back() {
            if at_ms < last {
                // A clock step backwards: the history no longer lines up.
                self.samples.clear();
            }
        }
        self.samples.push_back((at_ms, value));
    }

    /// Forgets everything (a gap in sampling, or a new window length).
    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// The average over `[now - window, now]`, or `None` until the
    /// samples cover the whole window.
    pub fn average(&mut self, now_ms: i64, window_ms: i64) -> Option<i64> {
        let start = now_ms.saturating_sub(window_ms);
        // Keep the last sample at or before the window's start: it says
        // what the figure was when the window began.
        while self.samples.len() >= 2 && self.samples[1].0 <= start {
            self.samples.pop_front();
        }
        let &(first, _) = self.samples.front()?;
        if first > start || window_ms <= 0 {
            return None;
        }
        let mut weighted: i128 = 0;
        for (i, &(at, value)) in self.samples.iter().enumerate() {
            let from = at.max(start);
            let until = self
                .samples
                .get(i + 1)
                .map_or(now_ms, |&(next, _)| next)
                .min(now_ms);
            if until > from {
                weighted += i128::from(value) * i128::from(until - from);
            }
        }
        i64::try_from(weighted / i128::from(window_ms)).ok()
    }
}

/// What one process keeps between rounds to judge the rules over time.
#[derive(Debug, Default)]
pub struct Observer {
    lag: MovingAverage,
    lag_window_ms: i64,
    /// Since when this process's spool has held events.
    spool_since_ms: Option<i64>,
    /// `(epoch ms, messages on the dead-letter topic)`, oldest first.
    dead_letters: VecDeque<(i64, i64)>,
}

/// The figures of one round.
pub struct Round<'a> {
    pub now_ms: i64,
    pub snapshot: &'a PipelineSnapshot,
    /// Messages ever written to the dead-letter topic (sum of its end
    /// offsets); `None` when the broker did not say.
    pub dead_letters: Option<i64>,
    /// Problems the last integrity check of this process found
    /// (`integrity::job`, which runs where the rules are evaluated).
    pub integrity_problems: i64,
}

impl Observer {
    /// The last moving average of the writer lag, for `/metrics`.
    pub fn judge(
        &mut self,
        rules: &RuleSettings,
        round: &Round<'_>,
    ) -> (Vec<Finding>, Option<i64>) {
        let now = round.now_ms;
        let s = round.snapshot;
        let mut found = Vec::new();

        // Writer lag in time, averaged. A round where the lag could not be
        // read adds no sample; the broker being away is its own rule.
        let window_ms = secs_ms(rules.writer_lag.window_s);
        if window_ms != self.lag_window_ms {
            self.lag.clear();
            self.lag_window_ms = window_ms;
        }
        if s.kafka.reachable {
            self.lag.push(now, s.kafka.total.max_lag_ms.max(0));
        }
        let average = self.lag.average(now, window_ms);
        if let Some(avg) = average {
            let threshold = secs_ms(rules.writer_lag.threshold_s);
            if rules.writer_lag.enabled && avg > threshold {
                found.push(Finding {
                    rule: RULE_WRITER_LAG,
                    summary: format!(
                        "the writer is on average {} s behind over the last {} s (threshold {} s)",
                        avg / 1000,
                        rules.writer_lag.window_s,
                        rules.writer_lag.threshold_s
                    ),
                });
            }
        }

        if rules.kafka_unhealthy.enabled {
            if let Some(summary) = kafka_problem(s) {
                found.push(Finding {
                    rule: RULE_KAFKA,
                    summary,
                });
            }
        }

        if rules.clickhouse_down.enabled && !s.clickhouse.up {
            let why = s.clickhouse.problems.first().cloned().unwrap_or_default();
            found.push(Finding {
                rule: RULE_CLICKHOUSE_DOWN,
                summary: format!("ClickHouse node {} is down: {why}", s.clickhouse.node),
            });
        }

        if rules.parts_near_limit.enabled {
            if let Some(limit) = s.clickhouse.parts_to_throw_insert.filter(|&l| l > 0) {
                let at = limit.saturating_mul(rules.parts_near_limit.percent) / 100;
                let worst = s
                    .clickhouse
                    .partitions
                    .iter()
                    .max_by_key(|p| p.active_parts);
                if let Some(p) = worst.filter(|p| p.active_parts >= at) {
                    found.push(Finding {
                        rule: RULE_PARTS,
                        summary: format!(
                            "partition {} has {} active parts; inserts fail at {limit} \
                             (parts_to_throw_insert)",
                            p.partition, p.active_parts
                        ),
                    });
                }
            }
        }

        if let Some(count) = round.dead_letters {
            if self.dead_letters.back().is_some_and(|&(_, c)| count < c) {
                // Fewer than before: the topic was recreated; start over.
                self.dead_letters.clear();
            }
            self.dead_letters.push_back((now, count));
        }
        let window_ms = secs_ms(rules.dead_letters_growing.window_s);
        while self.dead_letters.len() >= 2 && self.dead_letters[1].0 <= now - window_ms {
            self.dead_letters.pop_front();
        }
        if let (Some(&(_, first)), Some(&(_, last))) =
            (self.dead_letters.front(), self.dead_letters.back())
        {
            let new = last.saturating_sub(first);
            if rules.dead_letters_growing.enabled && new > 0 {
                found.push(Finding {
                    rule: RULE_DEAD_LETTERS,
                    summary: format!(
                        "{new} messages went to the dead-letter topic in the last {} s",
                        rules.dead_letters_growing.window_s
                    ),
                });
            }
        }

        let (pending, whose) = largest_spool(s);
        self.spool_since_ms = if pending > 0 {
            Some(self.spool_since_ms.unwrap_or(now))
        } else {
            None
        };
        if let Some(since) = self.spool_since_ms {
            let held = now.saturating_sub(since);
            if rules.spool_not_empty.enabled && held >= secs_ms(rules.spool_not_empty.after_s) {
                found.push(Finding {
                    rule: RULE_SPOOL,
                    summary: format!(
                        "{pending} accepted events have waited in the spool{whose} for {} s: \
                         the broker is not taking them",
                        held / 1000
                    ),
                });
            }
        }

        if rules.writer_stalled.enabled && writer_stalled(s) {
            found.push(Finding {
                rule: RULE_WRITER_STALLED,
                summary: s.writer.state.clone(),
            });
        }

        if rules.integrity_problems.enabled && round.integrity_problems > 0 {
            found.push(Finding {
                rule: RULE_INTEGRITY,
                summary: format!(
                    "the integrity check found {} problem(s): stored events or digests were \
                     changed or removed after sealing; each is an integrity.mismatch event of \
                     tenant attest, and `attest integrity check` lists them",
                    round.integrity_problems
                ),
            });
        }
        (found, average)
    }
}

/// The largest spool of the processes heard from recently (their reports,
/// `health::procs`), and whose it is in words: every ingest process's spool
/// counts, not only the evaluator's. The evaluator's own figure is read now
/// and stands in when the reports cannot be read (ClickHouse down).
fn largest_spool(s: &PipelineSnapshot) -> (i64, String) {
    let local = s.spool.pending_events;
    match s.processes.largest_spool() {
        Some((process, events)) if events > local => (events, format!(" of process {process}")),
        _ => (local, String::new()),
    }
}

/// The brokers down and the partitions below `min.insync.replicas`.
fn kafka_problem(s: &PipelineSnapshot) -> Option<String> {
    if !s.kafka.reachable {
        return Some(format!(
            "Kafka does not answer: {}",
            s.kafka.problems.first().cloned().unwrap_or_default()
        ));
    }
    let down: Vec<String> = s
        .kafka
        .brokers
        .iter()
        .filter(|b| !b.up)
        .map(|b| {
            if b.address.is_empty() {
                format!("broker {}", b.id)
            } else {
                b.address.clone()
            }
        })
        .collect();
    let below: Vec<String> = s
        .kafka
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.below_min_insync)
                .map(move |p| format!("{}/{}", t.topic, p.partition))
        })
        .collect();
    let mut parts = Vec::new();
    if !down.is_empty() {
        parts.push(format!("brokers down: {}", down.join(", ")));
    }
    if !below.is_empty() {
        parts.push(format!(
            "partitions below min.insync.replicas: {}",
            below.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The watchdog's verdict on this process's writer. Backing off after an
/// insert error is not a stall: ClickHouse is the one at fault, and its
/// own rule says so (the words come from `health::ready::writer_state`).
fn writer_stalled(s: &PipelineSnapshot) -> bool {
    s.writer.in_this_process && !s.writer.ok && !s.writer.state.contains("backing off")
}

fn secs_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::pipeline_model::{BrokerHealth, PartsInPartition};

    #[test]
    fn a_spike_that_drains_inside_the_window_stays_below_the_threshold() {
        let mut avg = MovingAverage::default();
        // One sample a second over 60 s: 50 s of lag for 5 s, else 0.
        for t in 0..=60 {
            let lag = if (20..25).contains(&t) { 50_000 } else { 0 };
            avg.push(t * 1000, lag);
        }
        let a = avg.average(60_000, 60_000).expect("window covered");
        assert_eq!(a, 50_000 * 5 / 60);
        assert!(a < 10_000);
    }

    #[test]
    fn sustained_lag_crosses_and_the_window_must_be_covered() {
        let mut avg = MovingAverage::default();
        avg.push(0, 20_000);
        assert_eq!(avg.average(5_000, 10_000), None, "window not covered yet");
        for t in 1..=10 {
            avg.push(t * 1000, 20_000);
        }
        assert_eq!(avg.average(10_000, 10_000), Some(20_000));
        // Weighted by time: 9 s at 0 then 1 s at 10 s of lag.
        let mut w = MovingAverage::default();
        w.push(0, 0);
        w.push(9_000, 10_000);
        assert_eq!(w.average(10_000, 10_000), Some(1_000));
        // Old samples are dropped but the one at the window's start stays.
        for t in 11..=40 {
            w.push(t * 1000, 0);
        }
        assert_eq!(w.average(40_000, 10_000), Some(0));
        assert!(w.samples.len() <= 12, "{}", w.samples.len());
        w.push(1_000, 5);
        assert_eq!(w.average(2_000, 10_000), None, "a clock step back restarts");
    }

    fn healthy() -> PipelineSnapshot {
        let mut s = PipelineSnapshot::default();
        s.kafka.reachable = true;
        s.clickhouse.up = true;
        s.writer.in_this_process = true;
        s.writer.ok = true;
        s
    }

    fn rules_of(found: &[Finding]) -> Vec<&'static str> {
        found.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn each_rule_fires_on_its_condition_only() {
        let rules = RuleSettings::default();
        let mut o = Observer::default();
        let s = healthy();
        fn round(now_ms: i64, snapshot: &PipelineSnapshot, dead_letters: Option<i64>) -> Round<'_> {
            Round {
                now_ms,
                snapshot,
                dead_letters,
                integrity_problems: 0,
            }
        }
        assert!(o.judge(&rules, &round(0, &s, Some(3))).0.is_empty());

        let mut sick = healthy();
        sick.clickhouse.up = false;
        sick.clickhouse.problems = vec!["connection refused".into()];
        sick.kafka.brokers = vec![BrokerHealth {
            id: 2,
            address: "k2:9092".into(),
            up: false,
            detail: String::new(),
        }];
        sick.clickhouse.parts_to_throw_insert = Some(300);
        sick.clickhouse.partitions = vec![PartsInPartition {
            partition: "202612".into(),
            active_parts: 240,
            near_limit: true,
        }];
        sick.writer.ok = false;
        sick.writer.state = "the writer is stalled: no progress for 60 s".into();
        sick.spool.pending_events = 4;
        let (found, _) = o.judge(&rules, &round(1_000, &sick, Some(5)));
        assert_eq!(
            rules_of(&found),
            [
                RULE_KAFKA,
                RULE_CLICKHOUSE_DOWN,
                RULE_PARTS,
                RULE_DEAD_LETTERS,
                RULE_WRITER_STALLED
            ]
        );
        assert!(found[0].summary.contains("k2:9092"), "{:?}", found[0]);
        assert!(found[1].summary.contains("connection refused"));

        // The spool fires once it has held events for after_s.
        let later = 1_000 + 300_000;
        let (found, _) = o.judge(&rules, &round(later, &sick, Some(5)));
        assert!(rules_of(&found).contains(&RULE_SPOOL));
        // Dead letters stop growing: after the window, no more finding.
        let (found, _) = o.judge(&rules, &round(later + 700_000, &sick, Some(5)));
        assert!(!rules_of(&found).contains(&RULE_DEAD_LETTERS));

        // Backing off is ClickHouse's rule, not a stall; disabled rules are quiet.
        sick.writer.state = "the writer is backing off after an insert error".into();
        let mut quiet = RuleSettings::default();
        quiet.clickhouse_down.enabled = false;
        let (found, _) = o.judge(&quiet, &round(later + 701_000, &sick, Some(5)));
        assert!(!rules_of(&found).contains(&RULE_WRITER_STALLED));
        assert!(!rules_of(&found).contains(&RULE_CLICKHOUSE_DOWN));
    }

    #[test]
    fn integrity_problems_fire_until_a_check_finds_none() {
        let mut rules = RuleSettings::default();
        let mut o = Observer::default();
        let s = healthy();
        let round = |problems: i64| Round {
            now_ms: 0,
            snapshot: &s,
            dead_letters: None,
            integrity_problems: problems,
        };
        assert!(o.judge(&rules, &round(0)).0.is_empty());
        let (found, _) = o.judge(&rules, &round(3));
        assert_eq!(rules_of(&found), [RULE_INTEGRITY]);
        assert!(found[0].summary.contains("3 problem(s)"), "{:?}", found[0]);
        rules.integrity_problems.enabled = false;
        assert!(o.judge(&rules, &round(3)).0.is_empty());
    }

    #[test]
    fn the_spool_rule_sees_the_largest_spool_of_the_processes_heard_from() {
        use app::pipeline_model::ProcessStatus;
        let rules = RuleSettings::default();
        let mut o = Observer::default();
        let mut s = healthy();
        let other = |id: &str, events: i64, silent: bool| ProcessStatus {
            process: id.into(),
            spool_events: events,
            silent,
            ..ProcessStatus::default()
        };
        s.processes.processes = vec![
            other("ingest-2", 40, false),
            other("died", 900, true),
            ProcessStatus {
                this_process: true,
                ..other("me", 0, false)
            },
        ];
        fn round(now_ms: i64, snapshot: &PipelineSnapshot) -> Round<'_> {
            Round {
                now_ms,
                snapshot,
                dead_letters: None,
                integrity_problems: 0,
            }
        }
        assert!(o.judge(&rules, &round(0, &s)).0.is_empty());
        let later = secs_ms(rules.spool_not_empty.after_s);
        let (found, _) = o.judge(&rules, &round(later, &s));
        assert_eq!(rules_of(&found), [RULE_SPOOL]);
        assert!(
            found[0]
                .summary
                .starts_with("40 accepted events have waited in the spool of process ingest-2"),
            "{:?}",
            found[0]
        );
        // Drained: resolved, and a silent process's stale spool does not count.
        s.processes.processes[0].spool_events = 0;
        assert!(o.judge(&rules, &round(later + 1_000, &s)).0.is_empty());
    }

    #[test]
    fn lag_rule_fires_once_the_average_is_above_the_threshold() {
        let mut rules = RuleSettings::default();
        rules.writer_lag.threshold_s = 5;
        rules.writer_lag.window_s = 10;
        let mut o = Observer::default();
        let mut s = healthy();
        s.kafka.total.max_lag_ms = 8_000;
        let mut fired = Vec::new();
        for t in 0..=12 {
            let round = Round {
                now_ms: t * 1000,
                snapshot: &s,
                dead_letters: None,
                integrity_problems: 0,
            };
            let (found, avg) = o.judge(&rules, &round);
            fired.push((t, rules_of(&found).contains(&RULE_WRITER_LAG), avg));
        }
        assert!(fired.iter().take(10).all(|(_, f, _)| !f), "{fired:?}");
        assert!(fired[10].1 && fired[10].2 == Some(8_000), "{fired:?}");
    }
}
