//! Detections: analysts' rules over the audit events ("≥ 10 failed logins
//! per actor within 5 minutes"), kept per tenant in ClickHouse, evaluated
//! every `detections.evaluate_every` by the one process the alerts election
//! chose (`crate::alert`'s Kafka-elected leadership, reused), each firing
//! stored once and delivered through `crate::notify`.
//!
//! Firing once is two guards, both needed (docs/DESIGN.md, "Detections"):
//! only the elected process evaluates, and a firing's id is made from the
//! rule, the group value and the window's first minute (`window`), so the
//! window that an evaluation finds does not depend on when or where it
//! ran; a firing already stored is not stored or delivered again, and the
//! next evaluation counts only after the stored firing's `until`.

pub mod console;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;

use app::detections_model::{DetectionRule, Firing};
use app::search_state::TimeWindow;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::alert::{Alerts, Leadership};
use crate::config::DetectionsConfig;
use crate::ingest::{now_ms, Ingest};
use crate::metrics::Metrics;
use crate::notify::{Message, Notifier};
use crate::store::{Store, DELIVERY_SUBJECT_PREFIX};
use window::{crossings, firing_id, minute_of, Crossing, MINUTE_MS};

/// Rules one evaluation reads; past it, the log says so.
const MAX_RULES: u32 = 1_000;

#[derive(Debug, thiserror::Error)]
enum EvaluateError {
    #[error("the rule's group_by {0:?} is not one this version knows")]
    GroupBy(String),
    #[error("cannot count the rule's events: {0}")]
    Count(app::store::StoreError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub struct Detections {
    config: DetectionsConfig,
    store: Store,
    ingest: Arc<Ingest>,
    leadership: Arc<Leadership>,
    notifier: Notifier,
    metrics: Arc<Metrics>,
}

impl Detections {
    /// Starts the webhook workers; [`Detections::run`] evaluates. Delivery
    /// attempts are recorded beside the alerts' (one table, one outbox).
    pub fn start(
        config: DetectionsConfig,
        store: Store,
        ingest: Arc<Ingest>,
        alerts: &Alerts,
        metrics: Arc<Metrics>,
        stop: &CancellationToken,
    ) -> Arc<Detections> {
        let notifier = Notifier::start(
            &config.webhooks,
            &config.delivery,
            alerts.attempt_log(),
            metrics.clone(),
            stop.clone(),
        );
        Arc::new(Detections {
            config,
            store,
            ingest,
            leadership: alerts.leadership(),
            notifier,
            metrics,
        })
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        crate::periodic::every(self.config.evaluate_every, stop, || self.round()).await;
    }

    pub fn webhooks(&self) -> Vec<String> {
        self.notifier.webhooks()
    }

    async fn round(&self) {
        if !self.leadership.elected() {
            return;
        }
        let rules = match self.store.detection_rules(&[], MAX_RULES).await {
            Ok(rules) => rules,
            Err(error) => {
                warn!(%error, "cannot read the detection rules; evaluating none this round");
                return;
            }
        };
        if rules.len() >= MAX_RULES as usize {
            warn!(
                max = MAX_RULES,
                "more detection rules than one round evaluates"
            );
        }
        let now = now_ms();
        for rule in rules.iter().filter(|r| r.is_enabled()) {
            if let Err(error) = self.evaluate(rule, now).await {
                warn!(rule_id = %rule.rule_id, tenant = %rule.tenant, %error, "detection rule not evaluated");
            }
        }
    }

    /// Counts the rule's events over its window plus `lateness`, finds
    /// the windows that cross its threshold, and stores and delivers each
    /// that is not stored yet.
    async fn evaluate(&self, rule: &DetectionRule, now: i64) -> Result<(), EvaluateError> {
        let group = rule
            .group()
            .ok_or_else(|| EvaluateError::GroupBy(rule.group_by.clone()))?;
        let window = i64::try_from(rule.window_minutes).unwrap_or(1).max(1);
        let lateness = i64::try_from(self.config.lateness.as_millis() / 60_000).unwrap_or(0);
        let first_minute = minute_of(now)
            .saturating_sub(window)
            .saturating_sub(lateness);
        let from_ms = first_minute.saturating_mul(MINUTE_MS);
        let counts = self
            .store
            .detection_counts(
                &rule.tenant,
                &rule.query,
                group,
                TimeWindow::Between {
                    from_ms,
                    to_ms: now,
                },
                now,
            )
            .await
            .map_err(EvaluateError::Count)?;
        if counts.is_empty() {
            return Ok(());
        }
        let until: HashMap<String, i64> = self
            .store
            .detection_until(&rule.tenant, &rule.rule_id, from_ms)
            .await?
            .into_iter()
            .map(|(value, ms)| (value, ms.div_euclid(MINUTE_MS)))
            .collect();
        // The rows come ordered by value, then minute.
        let mut rows = counts.as_slice();
        while let Some(first) = rows.first() {
            let value = first.group_value.clone();
            let len = rows
                .iter()
                .position(|r| r.group_value != value)
                .unwrap_or(rows.len());
            let (these, rest) = rows.split_at(len);
            rows = rest;
            let minutes: Vec<(i64, u64)> = these.iter().map(|r| (r.minute_n, r.events)).collect();
            let from = until
                .get(&value)
                .copied()
                .unwrap_or(first_minute)
                .max(first_minute);
            for crossing in crossings(&minutes, rule.threshold, window, from) {
                self.fire(rule, &value, crossing).await?;
            }
        }
        Ok(())
    }

    async fn fire(
        &self,
        rule: &DetectionRule,
        value: &str,
        crossing: Crossing,
    ) -> Result<(), EvaluateError> {
        let id = firing_id(&rule.rule_id, value, crossing.start);
        if self.store.firing_exists(&rule.tenant, &id).await? {
            return Ok(());
        }
        // Counting took a while: another process may be elected by now,
        // and it stores what it finds itself.
        if !self.leadership.elected() {
            return Ok(());
        }
        let (window_from_ms, window_to_ms) = crossing.bounds_ms();
        let firing = Firing {
            firing_id: id,
            rule_id: rule.rule_id.clone(),
            rule_name: rule.name.clone(),
            tenant: rule.tenant.clone(),
            query: rule.query.clone(),
            group_by: rule.group_by.clone(),
            group_value: value.to_owned(),
            window_from_ms,
            window_to_ms,
            until_ms: crossing.until_ms(),
            events: crossing.events,
            threshold: rule.threshold,
            fired_ms: u64::try_from(now_ms()).unwrap_or(0),
        };
        // Stored first: a firing that cannot be stored is found again by
        // the next evaluation, and delivered then, once.
        self.store.record_firing(&firing).await?;
        self.metrics.detections_fired.inc();
        info!(firing_id = %firing.firing_id, rule_id = %rule.rule_id, tenant = %rule.tenant,
              group_value = %value, events = firing.events, "detection fired");
        self.notifier
            .deliver(&message(&firing, rule.window_minutes));
        Ok(())
    }
}

/// What a webhook receives for one firing.
pub fn message(f: &Firing, window_minutes: u64) -> Message {
    let per = match app::detections_model::GroupBy::from_param(&f.group_by) {
        Some(g) => g.label(),
        None => f.group_by.as_str(),
    };
    let summary = format!(
        "{}: {} events for {per} {} within {window_minutes} min (threshold {}) in tenant {}",
        f.rule_name, f.events, f.group_value, f.threshold, f.tenant
    );
    Message {
        subject: format!("{DELIVERY_SUBJECT_PREFIX}{}", f.firing_id),
        json: json!({
            "source": "attest",
            "type": "detection",
            "firing_id": f.firing_id,
            "rule_id": f.rule_id,
            "rule": f.rule_name,
            "tenant": f.tenant,
            "query": f.query,
            "group_by": f.group_by,
            "group_value": f.group_value,
            "events": f.events,
            "threshold": f.threshold,
            "window_minutes": window_minutes,
            "window_from_ms": f.window_from_ms,
            "window_to_ms": f.window_to_ms,
            "fired_at_ms": f.fired_ms,
            "search": f.search_href(),
            "summary": summary,
        }),
        text: format!("[DETECTION] Attest {summary}"),
        colour: "#d00000",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_firing_and_links_to_search() {
        let firing = Firing {
            firing_id: "abc".into(),
            rule_id: "r1".into(),
            rule_name: "Brute force".into(),
            tenant: "acme".into(),
            query: "outcome:failure".into(),
            group_by: "actor".into(),
            group_value: "mallory".into(),
            window_from_ms: 0,
            window_to_ms: 299_999,
            until_ms: 300_000,
            events: 50,
            threshold: 10,
            fired_ms: 1,
        };
        let m = message(&firing, 5);
        assert_eq!(m.subject, "detection:abc");
        assert_eq!(m.json["events"], 50);
        assert_eq!(m.json["group_value"], "mallory");
        assert!(m.json["search"]
            .as_str()
            .is_some_and(|s| s.starts_with("/search?q=")));
        assert!(m.text.contains("50 events for actor mallory within 5 min"));
    }
}
