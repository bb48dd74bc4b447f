//! The detections as one console request's viewer may see and change them.
//! Every read is narrowed to the viewer's tenants in the query, like
//! `ScopedStore` narrows Search ([`Viewer::scope`] decides, once); a rule
//! of another tenant answers like one that does not exist, so ids cannot
//! be probed across tenants. Every change is recorded as an audit event in
//! the rule's tenant's trail before it is stored; a change that cannot be
//! recorded is not made (503), as for admin actions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use app::detections_model::{DetectionRule, DetectionsSource, DetectionsView, Firing, RuleInput};
use app::store::StoreError as ConsoleError;
use tracing::info;

use super::Detections;
use crate::access::{require_writer, Scope, Viewer};
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, now_ms};
use crate::store::{RuleVersion, DELIVERY_SUBJECT_PREFIX};

/// How much the page lists.
const RULE_ROWS: u32 = 500;
const FIRING_ROWS: u32 = 200;
const DELIVERY_ROWS: u32 = 500;

pub struct ScopedDetections {
    pub detections: Arc<Detections>,
    pub viewer: Viewer,
}

/// The tenants a scope covers as bound values (empty: every tenant).
fn tenants(scope: Scope) -> Vec<String> {
    match scope.tenant {
        Some(tenant) => vec![tenant],
        None => scope.within,
    }
}

fn unavailable(error: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Unavailable(error.to_string())
}

impl ScopedDetections {
    /// The rule `rule_id` if it is one of the viewer's tenants'.
    async fn own_rule(&self, rule_id: &str) -> Result<DetectionRule, ConsoleError> {
        let rule = self
            .detections
            .store
            .detection_rule(rule_id)
            .await
            .map_err(unavailable)?;
        match rule {
            Some(rule) if self.viewer.may_see(&rule.tenant) => Ok(rule),
            _ => Err(ConsoleError::Forbidden(format!(
                "no detection rule {rule_id:?} among the rules of your tenants"
            ))),
        }
    }

    /// Records `action` on `rule` in its tenant's trail, then stores it.
    async fn change(
        &self,
        action: &str,
        rule: &DetectionRule,
        deleted: bool,
    ) -> Result<(), ConsoleError> {
        require_writer(&self.viewer)
            .map_err(|refused| ConsoleError::Forbidden(refused.to_string()))?;
        let metadata = BTreeMap::from([
            ("access_id".to_owned(), self.viewer.access_id.clone()),
            ("name".to_owned(), rule.name.clone()),
            ("query".to_owned(), rule.query.clone()),
            ("group_by".to_owned(), rule.group_by.clone()),
            ("threshold".to_owned(), rule.threshold.to_string()),
            ("window_minutes".to_owned(), rule.window_minutes.to_string()),
            ("enabled".to_owned(), rule.is_enabled().to_string()),
        ]);
        let event = internal_event(
            &rule.tenant,
            Category::Admin,
            action,
            Outcome::Success,
            Resource {
                kind: "detection_rule".into(),
                id: rule.rule_id.clone(),
            },
            &self.viewer.name,
            metadata,
        );
        self.detections
            .ingest
            .record(event)
            .await
            .map_err(|error| {
                ConsoleError::Unavailable(format!(
                    "cannot record the change in the audit trail, so it was not made: {error}"
                ))
            })?;
        self.detections
            .store
            .put_detection_rule(RuleVersion { rule, deleted })
            .await
            .map_err(unavailable)?;
        info!(rule_id = %rule.rule_id, tenant = %rule.tenant, by = %self.viewer.name, action, "detection rule changed");
        Ok(())
    }

    /// A version time after `previous`: two changes within one
    /// millisecond must still order.
    fn version_after(previous: u64) -> u64 {
        u64::try_from(now_ms())
            .unwrap_or(0)
            .max(previous.saturating_add(1))
    }
}

#[async_trait::async_trait]
impl DetectionsSource for ScopedDetections {
    async fn view(&self, tenant: Option<&str>) -> Result<DetectionsView, ConsoleError> {
        let tenants = tenants(self.viewer.scope(tenant)?);
        let store = &self.detections.store;
        let (rules, firings, deliveries) = tokio::join!(
            store.detection_rules(&tenants, RULE_ROWS),
            store.detection_firings(&tenants, i64::MIN, i64::MAX, FIRING_ROWS),
            store.detection_deliveries(DELIVERY_ROWS),
        );
        let firings = firings.map_err(unavailable)?;
        // Deliveries carry no tenant: only those of firings listed here,
        // which the scope already narrowed, are shown.
        let shown: HashSet<String> = firings
            .iter()
            .map(|f| format!("{DELIVERY_SUBJECT_PREFIX}{}", f.firing_id))
            .collect();
        Ok(DetectionsView {
            rules: rules.map_err(unavailable)?,
            deliveries: deliveries
                .map_err(unavailable)?
                .into_iter()
                .filter(|d| shown.contains(&d.subject))
                .collect(),
            firings,
            webhooks: self.detections.webhooks(),
            tenants: self.viewer.tenants.clone(),
        })
    }

    async fn firings(
        &self,
        tenant: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Firing>, ConsoleError> {
        let tenants = tenants(self.viewer.scope(tenant)?);
        self.detections
            .store
            .detection_firings(&tenants, from_ms, to_ms, FIRING_ROWS)
            .await
            .map_err(unavailable)
    }

    async fn save(&self, input: RuleInput) -> Result<String, ConsoleError> {
        input
            .validate()
            .map_err(|bad| ConsoleError::Invalid(format!("not saved: {bad}")))?;
        let tenant = input.tenant.trim().to_owned();
        if !self.viewer.may_see(&tenant) {
            return Err(ConsoleError::Forbidden(format!(
                "tenant {tenant:?} is not one of yours: a rule watches a tenant you may see"
            )));
        }
        let (rule_id, action, previous) = if input.rule_id.trim().is_empty() {
            (
                uuid::Uuid::now_v7().simple().to_string(),
                "detection_rule.create",
                0,
            )
        } else {
            let old = self.own_rule(input.rule_id.trim()).await?;
            if old.tenant != tenant {
                return Err(ConsoleError::Invalid(
                    "tenant: a rule stays with its tenant; create a new rule for another".into(),
                ));
            }
            (old.rule_id, "detection_rule.update", old.changed_ms)
        };
        let rule = DetectionRule {
            rule_id: rule_id.clone(),
            tenant,
            name: input.name.trim().to_owned(),
            query: input.query.trim().to_owned(),
            group_by: input.group_by.clone(),
            threshold: input.threshold,
            window_minutes: input.window_minutes,
            enabled: u8::from(input.enabled),
            changed_by: self.viewer.name.clone(),
            changed_ms: Self::version_after(previous),
        };
        self.change(action, &rule, false).await?;
        Ok(rule_id)
    }

    async fn set_enabled(&self, rule_id: &str, enabled: bool) -> Result<(), ConsoleError> {
        let old = self.own_rule(rule_id).await?;
        let rule = DetectionRule {
            enabled: u8::from(enabled),
            changed_by: self.viewer.name.clone(),
            changed_ms: Self::version_after(old.changed_ms),
            ..old
        };
        let action = if enabled {
            "detection_rule.resume"
        } else {
            "detection_rule.pause"
        };
        self.change(action, &rule, false).await
    }

    async fn delete(&self, rule_id: &str) -> Result<(), ConsoleError> {
        let old = self.own_rule(rule_id).await?;
        let rule = DetectionRule {
            changed_by: self.viewer.name.clone(),
            changed_ms: Self::version_after(old.changed_ms),
            ..old
        };
        self.change("detection_rule.delete", &rule, true).await
    }
}
