//! The alerts' tables (migration 0016): state changes, webhook delivery
//! attempts and the rule thresholds saved from the console. Written one
//! row per statement: alerts are rare, and every statement is in the
//! `attest sql` catalogue with its values bound by the client.

use app::alerts_model::{AlertChange, DeliveryAttempt, FiringAlert};
use clickhouse::Row;
use serde::Deserialize;

use super::{QueryTemplate, Store, StoreError};

const CHANGE_INSERT: &str = "INSERT INTO attest_alert_changes \
     (alert_id, rule, state, summary, at_ms) VALUES (?, ?, ?, ?, ?)";

/// Alerts with a firing row and no resolved one. Grouping reads a row
/// written twice (not yet collapsed) once.
const FIRING: &str = "SELECT alert_id, any(rule) AS rule, \
     anyIf(summary, state = 'firing') AS summary, \
     minIf(at_ms, state = 'firing') AS since_ms \
     FROM attest_alert_changes GROUP BY alert_id \
     HAVING countIf(state = 'resolved') = 0 AND countIf(state = 'firing') > 0 \
     ORDER BY since_ms, alert_id";

const HISTORY: &str = "SELECT alert_id, rule, state, summary, at_ms \
     FROM attest_alert_changes ORDER BY at_ms DESC, alert_id, state \
     LIMIT 1 BY alert_id, state LIMIT ?";

const DELIVERY_INSERT: &str = "INSERT INTO attest_webhook_deliveries \
     (subject, webhook, attempt, at_ms, status, error, duration_ms) \
     VALUES (?, ?, ?, ?, ?, ?, ?)";

const DELIVERIES: &str = "SELECT subject, webhook, attempt, at_ms, status, error, duration_ms \
     FROM attest_webhook_deliveries ORDER BY at_ms DESC, subject, webhook, attempt LIMIT ?";

const RULES_INSERT: &str =
    "INSERT INTO attest_alert_rules (settings, changed_by, changed_ms) VALUES (?, ?, ?)";

const RULES: &str = "SELECT settings, changed_by, changed_ms FROM attest_alert_rules \
     ORDER BY changed_ms DESC LIMIT 1";

/// The newest thresholds saved from the console.
#[derive(Debug, Clone, Row, Deserialize)]
pub struct RulesRow {
    /// `RuleSettings` as JSON.
    pub settings: String,
    pub changed_by: String,
    pub changed_ms: u64,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: &str, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql: sql.into(),
        params,
    };
    vec![
        t(
            "alert_change_insert",
            CHANGE_INSERT,
            &["alert_id", "rule", "state", "summary", "at_ms"],
        ),
        t("alert_firing", FIRING, &[]),
        t("alert_history", HISTORY, &["limit"]),
        t(
            "alert_delivery_insert",
            DELIVERY_INSERT,
            &[
                "subject",
                "webhook",
                "attempt",
                "at_ms",
                "status",
                "error",
                "duration_ms",
            ],
        ),
        t("alert_deliveries", DELIVERIES, &["limit"]),
        t(
            "alert_rules_insert",
            RULES_INSERT,
            &["settings", "changed_by", "changed_ms"],
        ),
        t("alert_rules", RULES, &[]),
    ]
}

impl Store {
    pub async fn record_alert_change(&self, change: &AlertChange) -> Result<(), StoreError> {
        self.client
            .query(CHANGE_INSERT)
            .bind(&change.alert_id)
            .bind(&change.rule)
            .bind(&change.state)
            .bind(&change.summary)
            .bind(change.at_ms)
            .execute()
            .await?;
        Ok(())
    }

    pub async fn firing_alerts(&self) -> Result<Vec<FiringAlert>, StoreError> {
        Ok(self.client.query(FIRING).fetch_all().await?)
    }

    pub async fn alert_history(&self, limit: u32) -> Result<Vec<AlertChange>, StoreError> {
        Ok(self.client.query(HISTORY).bind(limit).fetch_all().await?)
    }

    pub async fn record_delivery(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.client
            .query(DELIVERY_INSERT)
            .bind(&attempt.subject)
            .bind(&attempt.webhook)
            .bind(attempt.attempt)
            .bind(attempt.at_ms)
            .bind(attempt.status)
            .bind(&attempt.error)
            .bind(attempt.duration_ms)
            .execute()
            .await?;
        Ok(())
    }

    pub async fn deliveries(&self, limit: u32) -> Result<Vec<DeliveryAttempt>, StoreError> {
        Ok(self
            .client
            .query(DELIVERIES)
            .bind(limit)
            .fetch_all()
            .await?)
    }

    pub async fn save_alert_rules(&self, row: &RulesRow) -> Result<(), StoreError> {
        self.client
            .query(RULES_INSERT)
            .bind(&row.settings)
            .bind(&row.changed_by)
            .bind(row.changed_ms)
            .execute()
            .await?;
        Ok(())
    }

    pub async fn alert_rules(&self) -> Result<Option<RulesRow>, StoreError> {
        Ok(self.client.query(RULES).fetch_optional().await?)
    }
}
