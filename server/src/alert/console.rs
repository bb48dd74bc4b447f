//! The alerts as one console request's viewer may see them: through the
//! admin gate, like the pipeline. Viewing is recorded as an admin action;
//! so is every change of thresholds, before it is stored.

use std::sync::Arc;

use app::alerts_model::{AlertsSource, AlertsView, RuleSettings};
use app::store::StoreError as ConsoleError;
use tracing::{error, info};

use super::{Alerts, DELIVERY_ROWS, HISTORY_ROWS};
use crate::access::{require_admin, AdminGate, AdminRefusal, Viewer};
use crate::ingest::now_ms;
use crate::store::RulesRow;

pub struct ScopedAlerts {
    pub alerts: Arc<Alerts>,
    pub gate: AdminGate,
    pub viewer: Viewer,
}

impl ScopedAlerts {
    async fn admit(&self, action: &str) -> Result<(), ConsoleError> {
        match self.gate.admit(&self.viewer, action, "alerts").await {
            Ok(()) => Ok(()),
            Err(AdminRefusal::NotAdmin(not)) => Err(ConsoleError::Forbidden(not.to_string())),
            Err(AdminRefusal::Unrecorded(error)) => {
                Err(ConsoleError::Unavailable(error.to_string()))
            }
        }
    }
}

#[async_trait::async_trait]
impl AlertsSource for ScopedAlerts {
    fn allowed(&self) -> bool {
        require_admin(&self.viewer).is_ok()
    }

    async fn view(&self) -> Result<AlertsView, ConsoleError> {
        self.admit("alerts.view").await?;
        let a = &self.alerts;
        let store = &a.store;
        let (firing, history, deliveries) = tokio::join!(
            store.firing_alerts(),
            store.alert_history(HISTORY_ROWS),
            store.deliveries(DELIVERY_ROWS)
        );
        let (rules, saved) = a
            .rules
            .lock()
            .map(|slot| slot.clone())
            .unwrap_or_else(|_| (a.config.rules.clone(), None));
        let mut view = AlertsView {
            rules,
            webhooks: a.notifier.webhooks(),
            elected: a.elected(),
            ..AlertsView::default()
        };
        if let Some(row) = saved {
            view.rules_changed_by = row.changed_by;
            view.rules_changed_ms = row.changed_ms;
        }
        match (firing, history, deliveries) {
            (Ok(firing), Ok(history), Ok(deliveries)) => {
                view.firing = firing;
                view.history = history;
                view.deliveries = deliveries;
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                error!(error = %e, "cannot read the alerts from ClickHouse");
                // The evaluator's own view is still worth showing: a
                // ClickHouse outage is when this page is opened.
                view.firing = a.live.lock().map(|l| l.clone()).unwrap_or_default();
                view.notice = if view.elected {
                    "ClickHouse does not answer: firing alerts as this process evaluates them; \
                     history and deliveries are recorded once it is back"
                        .into()
                } else {
                    "ClickHouse does not answer, and another process evaluates the alerts: \
                     nothing to show until ClickHouse is back"
                        .into()
                };
            }
        }
        Ok(view)
    }

    async fn save_rules(&self, rules: RuleSettings) -> Result<(), ConsoleError> {
        if let Err(bad) = rules.validate() {
            return Err(ConsoleError::Forbidden(format!(
                "not saved: {bad} (checked again on the server)"
            )));
        }
        self.admit("alerts.rules.change").await?;
        let settings =
            serde_json::to_string(&rules).map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
        let row = RulesRow {
            settings,
            changed_by: self.viewer.name.clone(),
            changed_ms: u64::try_from(now_ms()).unwrap_or(0),
        };
        self.alerts
            .store
            .save_alert_rules(&row)
            .await
            .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
        info!(by = %self.viewer.name, "alert rules changed");
        if let Ok(mut slot) = self.alerts.rules.lock() {
            *slot = (rules, Some(row));
        }
        Ok(())
    }
}
