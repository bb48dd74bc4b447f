//! The detections' tables (migration 0017): rules, every version kept, and
//! firings, each once. Reads narrowed to tenants take them as bound values,
//! as Search does; the scoping itself is the caller's (`detect::console`).

use app::alerts_model::DeliveryAttempt;
use app::detections_model::{DetectionRule, Firing};

use super::{QueryTemplate, Store, StoreError};

/// `tenant` narrowed to `n` bound values, as `queries::tenant_condition`
/// narrows `tenant_id`: none for every tenant, `=` for one, `IN` for
/// several.
fn tenant_condition(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " AND tenant = ?".to_owned(),
        n => format!(" AND tenant IN ({})", vec!["?"; n].join(", ")),
    }
}

const RULE_COLUMNS: &str = "rule_id, tenant, name, query, group_by, threshold, window_minutes, \
     enabled, changed_by, changed_ms";

const RULE_INSERT: &str = "INSERT INTO attest_detection_rules \
     (rule_id, tenant, name, query, group_by, threshold, window_minutes, enabled, deleted, \
     changed_by, changed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The newest version of each rule, less the deleted ones. `tenants` bound
/// values narrow it (0: every tenant).
fn rules_sql(tenants: usize) -> String {
    format!(
        "SELECT {RULE_COLUMNS} FROM (\
         SELECT {RULE_COLUMNS}, deleted FROM attest_detection_rules \
         WHERE 1{} \
         ORDER BY changed_ms DESC, rule_id \
         LIMIT 1 BY rule_id) \
         WHERE deleted = 0 \
         ORDER BY tenant, name, rule_id \
         LIMIT ?",
        tenant_condition(tenants)
    )
}

/// One rule's newest version, whatever its tenant (the caller checks it).
fn rule_sql() -> String {
    format!(
        "SELECT {RULE_COLUMNS} FROM (\
         SELECT {RULE_COLUMNS}, deleted FROM attest_detection_rules \
         WHERE rule_id = ? \
         ORDER BY changed_ms DESC \
         LIMIT 1) \
         WHERE deleted = 0"
    )
}

const FIRING_COLUMNS: &str = "firing_id, rule_id, rule_name, tenant, query, group_by, \
     group_value, window_from_ms, window_to_ms, until_ms, events, threshold, fired_ms";

const FIRING_INSERT: &str = "INSERT INTO attest_detection_firings \
     (firing_id, rule_id, rule_name, tenant, query, group_by, group_value, window_from_ms, \
     window_to_ms, until_ms, events, threshold, fired_ms) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Firings whose window meets `from..=to`, newest first; a firing written
/// twice (not yet collapsed) once.
fn firings_sql(tenants: usize) -> String {
    format!(
        "SELECT {FIRING_COLUMNS} FROM attest_detection_firings \
         WHERE window_to_ms >= ? AND window_from_ms <= ?{} \
         ORDER BY fired_ms DESC, firing_id \
         LIMIT 1 BY firing_id \
         LIMIT ?",
        tenant_condition(tenants)
    )
}

/// Where each value of a rule may next fire: the latest `until` stored.
/// The alias is not `until_ms`: current releases would read the WHERE's
/// `until_ms` as the aggregate.
const UNTIL_SQL: &str = "SELECT group_value, max(until_ms) AS next_ms \
     FROM attest_detection_firings \
     WHERE tenant = ? AND rule_id = ? AND until_ms > ? \
     GROUP BY group_value";

/// Whether a firing is stored already.
const FIRING_EXISTS: &str =
    "SELECT count() AS n FROM attest_detection_firings WHERE tenant = ? AND firing_id = ?";

/// Delivery attempts of detections (their subject says so), newest first.
const DELIVERIES_SQL: &str = "SELECT subject, webhook, attempt, at_ms, status, error, duration_ms \
     FROM attest_webhook_deliveries WHERE subject LIKE ? \
     ORDER BY at_ms DESC, subject, webhook, attempt LIMIT ?";

/// The subject prefix of a detection's deliveries.
pub const DELIVERY_SUBJECT_PREFIX: &str = "detection:";

#[derive(clickhouse::Row, serde::Deserialize)]
struct UntilRow {
    group_value: String,
    next_ms: i64,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: String, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql,
        params,
    };
    vec![
        t(
            "detection_rule_insert",
            RULE_INSERT.into(),
            &[
                "rule_id",
                "tenant",
                "name",
                "query",
                "group_by",
                "threshold",
                "window_minutes",
                "enabled",
                "deleted",
                "changed_by",
                "changed_ms",
            ],
        ),
        t("detection_rules", rules_sql(0), &["limit"]),
        t(
            "detection_rules_for_tenant",
            rules_sql(1),
            &["tenant", "limit"],
        ),
        t("detection_rule", rule_sql(), &["rule_id"]),
        t(
            "detection_firing_insert",
            FIRING_INSERT.into(),
            &[
                "firing_id",
                "rule_id",
                "rule_name",
                "tenant",
                "query",
                "group_by",
                "group_value",
                "window_from_ms",
                "window_to_ms",
                "until_ms",
                "events",
                "threshold",
                "fired_ms",
            ],
        ),
        t(
            "detection_firings",
            firings_sql(0),
            &["from_ms", "to_ms", "limit"],
        ),
        t(
            "detection_firings_for_tenant",
            firings_sql(1),
            &["from_ms", "to_ms", "tenant", "limit"],
        ),
        t(
            "detection_until",
            UNTIL_SQL.into(),
            &["tenant", "rule_id", "since_ms"],
        ),
        t(
            "detection_firing_exists",
            FIRING_EXISTS.into(),
            &["tenant", "firing_id"],
        ),
        t(
            "detection_deliveries",
            DELIVERIES_SQL.into(),
            &["subject_like", "limit"],
        ),
    ]
}

/// A rule as written: the whole rule, and whether this version deletes it.
pub struct RuleVersion<'a> {
    pub rule: &'a DetectionRule,
    pub deleted: bool,
}

impl Store {
    pub async fn put_detection_rule(&self, version: RuleVersion<'_>) -> Result<(), StoreError> {
        let r = version.rule;
        self.client
            .query(RULE_INSERT)
            .bind(&r.rule_id)
            .bind(&r.tenant)
            .bind(&r.name)
            .bind(&r.query)
            .bind(&r.group_by)
            .bind(r.threshold)
            .bind(r.window_minutes)
            .bind(r.enabled)
            .bind(u8::from(version.deleted))
            .bind(&r.changed_by)
            .bind(r.changed_ms)
            .execute()
            .await?;
        Ok(())
    }

    /// Rules of `tenants` (empty: every tenant).
    pub async fn detection_rules(
        &self,
        tenants: &[String],
        limit: u32,
    ) -> Result<Vec<DetectionRule>, StoreError> {
        let mut query = self.client.query(&rules_sql(tenants.len()));
        for tenant in tenants {
            query = query.bind(tenant);
        }
        Ok(query.bind(limit).fetch_all().await?)
    }

    pub async fn detection_rule(&self, rule_id: &str) -> Result<Option<DetectionRule>, StoreError> {
        Ok(self
            .client
            .query(&rule_sql())
            .bind(rule_id)
            .fetch_optional()
            .await?)
    }

    pub async fn record_firing(&self, f: &Firing) -> Result<(), StoreError> {
        self.client
            .query(FIRING_INSERT)
            .bind(&f.firing_id)
            .bind(&f.rule_id)
            .bind(&f.rule_name)
            .bind(&f.tenant)
            .bind(&f.query)
            .bind(&f.group_by)
            .bind(&f.group_value)
            .bind(f.window_from_ms)
            .bind(f.window_to_ms)
            .bind(f.until_ms)
            .bind(f.events)
            .bind(f.threshold)
            .bind(f.fired_ms)
            .execute()
            .await?;
        Ok(())
    }

    /// Firings of `tenants` (empty: every tenant) whose window meets
    /// `from_ms..=to_ms`.
    pub async fn detection_firings(
        &self,
        tenants: &[String],
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<Firing>, StoreError> {
        let mut query = self
            .client
            .query(&firings_sql(tenants.len()))
            .bind(from_ms)
            .bind(to_ms);
        for tenant in tenants {
            query = query.bind(tenant);
        }
        Ok(query.bind(limit).fetch_all().await?)
    }

    /// Per group value of a rule, where it may next fire, for the values
    /// whose `until` is after `since_ms`.
    pub async fn detection_until(
        &self,
        tenant: &str,
        rule_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<UntilRow> = self
            .client
            .query(UNTIL_SQL)
            .bind(tenant)
            .bind(rule_id)
            .bind(since_ms)
            .fetch_all()
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.group_value, r.next_ms))
            .collect())
    }

    pub async fn firing_exists(&self, tenant: &str, firing_id: &str) -> Result<bool, StoreError> {
        let n: u64 = self
            .client
            .query(FIRING_EXISTS)
            .bind(tenant)
            .bind(firing_id)
            .fetch_one()
            .await?;
        Ok(n > 0)
    }

    /// The newest delivery attempts of detections.
    pub async fn detection_deliveries(
        &self,
        limit: u32,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        Ok(self
            .client
            .query(DELIVERIES_SQL)
            .bind(format!("{DELIVERY_SUBJECT_PREFIX}%"))
            .bind(limit)
            .fetch_all()
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_bound() {
        for (sql, values) in [
            (rules_sql(0), 1),
            (rules_sql(2), 3),
            (firings_sql(0), 3),
            (firings_sql(1), 4),
            (rule_sql(), 1),
        ] {
            assert_eq!(sql.matches('?').count(), values, "{sql}");
            assert!(!sql.contains('\''), "{sql}");
        }
        assert!(firings_sql(1).contains("LIMIT 1 BY firing_id"));
        assert!(rules_sql(0).contains("LIMIT 1 BY rule_id) WHERE deleted = 0"));
        assert!(rules_sql(1).contains("WHERE 1 AND tenant = ?"));
        assert!(firings_sql(2).contains("AND tenant IN (?, ?)"));
        assert!(!firings_sql(2).contains("tenant_id"));
    }
}
