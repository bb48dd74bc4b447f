//! Firing and resolved: each rule's alert moves through
//! quiet → pending → firing → resolving → quiet. A condition must hold for
//! `fire_after` before the alert fires and be gone for `resolve_after`
//! before it resolves, so one bad probe does not page anyone and a
//! flapping condition does not page them twice. Only the two edges that
//! matter to a person (firing, resolved) come out as [`Change`]s.

use std::collections::BTreeMap;

use super::rules::Finding;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Pending { since_ms: i64 },
    Firing(Firing),
    Resolving { alert: Firing, since_ms: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub alert_id: String,
    pub summary: String,
    pub since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Fired {
        rule: &'static str,
        alert: Firing,
    },
    Resolved {
        rule: &'static str,
        alert: Firing,
        at_ms: i64,
    },
}

/// Every rule's phase; rules in none are quiet.
#[derive(Debug, Default)]
pub struct Book {
    phases: BTreeMap<&'static str, Phase>,
}

impl Book {
    /// Takes over alerts that were firing under a previous evaluator, so
    /// they are neither fired again nor forgotten unresolved.
    pub fn adopt(&mut self, rule: &'static str, alert: Firing) {
        self.phases.insert(rule, Phase::Firing(alert));
    }

    pub fn firing(&self) -> impl Iterator<Item = (&'static str, &Firing)> {
        self.phases.iter().filter_map(|(rule, phase)| match phase {
            Phase::Firing(a) | Phase::Resolving { alert: a, .. } => Some((*rule, a)),
            Phase::Pending { .. } => None,
        })
    }

    /// One round: what holds now (`found`) against what held before.
    /// `new_id` names a newly firing alert.
    pub fn update(
        &mut self,
        found: &[Finding],
        now_ms: i64,
        fire_after_ms: i64,
        resolve_after_ms: i64,
        mut new_id: impl FnMut() -> String,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for finding in found {
            let phase = self.phases.remove(finding.rule);
            let next = match phase {
                None => Phase::Pending { since_ms: now_ms },
                Some(Phase::Pending { since_ms }) => Phase::Pending { since_ms },
                Some(Phase::Firing(mut alert)) | Some(Phase::Resolving { mut alert, .. }) => {
                    // The figures in the summary move; the alert stays one.
                    alert.summary = finding.summary.clone();
                    Phase::Firing(alert)
                }
            };
            let next = match next {
                Phase::Pending { since_ms } if now_ms.saturating_sub(since_ms) >= fire_after_ms => {
                    let alert = Firing {
                        alert_id: new_id(),
                        summary: finding.summary.clone(),
                        since_ms: now_ms,
                    };
                    changes.push(Change::Fired {
                        rule: finding.rule,
                        alert: alert.clone(),
                    });
                    Phase::Firing(alert)
                }
                other => other,
            };
            self.phases.insert(finding.rule, next);
        }
        let gone: Vec<&'static str> = self
            .phases
            .keys()
            .copied()
            .filter(|rule| !found.iter().any(|f| f.rule == *rule))
            .collect();
        for rule in gone {
            let Some(phase) = self.phases.remove(rule) else {
                continue;
            };
            match phase {
                Phase::Pending { .. } => {}
                Phase::Firing(alert) => {
                    let resolving = Phase::Resolving {
                        alert,
                        since_ms: now_ms,
                    };
                    self.settle(rule, resolving, now_ms, resolve_after_ms, &mut changes);
                }
                resolving @ Phase::Resolving { .. } => {
                    self.settle(rule, resolving, now_ms, resolve_after_ms, &mut changes);
                }
            }
        }
        changes
    }

    /// Resolves an alert whose condition has been gone long enough, or
    /// keeps it resolving.
    fn settle(
        &mut self,
        rule: &'static str,
        phase: Phase,
        now_ms: i64,
        resolve_after_ms: i64,
        changes: &mut Vec<Change>,
    ) {
        match phase {
            Phase::Resolving { alert, since_ms }
                if now_ms.saturating_sub(since_ms) >= resolve_after_ms =>
            {
                changes.push(Change::Resolved {
                    rule,
                    alert,
                    at_ms: now_ms,
                });
            }
            other => {
                self.phases.insert(rule, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &'static str) -> Finding {
        Finding {
            rule,
            summary: format!("{rule} is bad"),
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("a{n}")
        }
    }

    #[test]
    fn fires_after_holding_and_resolves_after_clearing() {
        let mut book = Book::default();
        let mut id = ids();
        let ch = [finding("clickhouse_down")];
        assert!(book.update(&ch, 0, 2_000, 3_000, &mut id).is_empty());
        assert!(book.update(&ch, 1_000, 2_000, 3_000, &mut id).is_empty());
        let fired = book.update(&ch, 2_000, 2_000, 3_000, &mut id);
        assert!(
            matches!(&fired[..], [Change::Fired { rule: "clickhouse_down", alert }] if alert.alert_id == "a1")
        );
        assert!(
            book.update(&ch, 3_000, 2_000, 3_000, &mut id).is_empty(),
            "fires once"
        );
        assert!(
            book.update(&[], 4_000, 2_000, 3_000, &mut id).is_empty(),
            "resolving"
        );
        assert_eq!(book.firing().count(), 1, "still firing while resolving");
        assert!(book.update(&[], 6_000, 2_000, 3_000, &mut id).is_empty());
        let resolved = book.update(&[], 7_000, 2_000, 3_000, &mut id);
        assert!(
            matches!(&resolved[..], [Change::Resolved { alert, at_ms: 7_000, .. }] if alert.alert_id == "a1")
        );
        assert_eq!(book.firing().count(), 0);
    }

    #[test]
    fn a_blip_neither_fires_nor_resolves() {
        let mut book = Book::default();
        let mut id = ids();
        let lag = [finding("writer_lag")];
        book.update(&lag, 0, 5_000, 5_000, &mut id);
        assert!(book.update(&[], 1_000, 5_000, 5_000, &mut id).is_empty());
        assert!(book.update(&lag, 2_000, 5_000, 5_000, &mut id).is_empty());
        assert!(
            book.update(&lag, 6_000, 5_000, 5_000, &mut id).is_empty(),
            "pending restarted at 2 s"
        );
        assert_eq!(book.update(&lag, 7_000, 5_000, 5_000, &mut id).len(), 1);
        // Gone for a moment while firing: no resolve, no second firing.
        assert!(book.update(&[], 8_000, 5_000, 5_000, &mut id).is_empty());
        assert!(book.update(&lag, 9_000, 5_000, 5_000, &mut id).is_empty());
        assert!(book.update(&[], 10_000, 5_000, 5_000, &mut id).is_empty());
        assert!(book.update(&[], 14_000, 5_000, 5_000, &mut id).is_empty());
        assert_eq!(book.update(&[], 15_000, 5_000, 5_000, &mut id).len(), 1);
    }

    #[test]
    fn zero_delays_fire_and_resolve_at_once_and_adopted_alerts_resolve() {
        let mut book = Book::default();
        let mut id = ids();
        assert_eq!(
            book.update(&[finding("kafka_unhealthy")], 0, 0, 0, &mut id)
                .len(),
            1
        );
        book.adopt(
            "writer_stalled",
            Firing {
                alert_id: "old".into(),
                summary: "s".into(),
                since_ms: -5,
            },
        );
        let changes = book.update(&[], 1, 0, 0, &mut id);
        let resolved: Vec<&str> = changes
            .iter()
            .map(|c| match c {
                Change::Resolved { alert, .. } => alert.alert_id.as_str(),
                Change::Fired { .. } => "fired",
            })
            .collect();
        assert_eq!(resolved, ["a1", "old"]);
    }
}
