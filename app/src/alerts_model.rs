//! Pipeline alerts as the server evaluates them (`server/src/alert/`) and
//! the alerts page shows and edits them: the rules' thresholds, firing
//! alerts, their history and every webhook delivery attempt.
//!
//! The thresholds are one serializable struct used three ways: as the
//! `[alerts.rules]` section of the server's configuration (the defaults),
//! as what an admin saves from the console (which then overrides them),
//! and as what the page's form edits. [`RuleSettings::validate`] is the one
//! check all three pass through.

use serde::{Deserialize, Serialize};

/// Every rule's name, as stored with its alerts and sent to webhooks.
pub const RULE_WRITER_LAG: &str = "writer_lag";
pub const RULE_KAFKA: &str = "kafka_unhealthy";
pub const RULE_CLICKHOUSE_DOWN: &str = "clickhouse_down";
pub const RULE_PARTS: &str = "parts_near_limit";
pub const RULE_DEAD_LETTERS: &str = "dead_letters_growing";
pub const RULE_SPOOL: &str = "spool_not_empty";
pub const RULE_WRITER_STALLED: &str = "writer_stalled";
pub const RULE_INTEGRITY: &str = "integrity_problems";

/// The thresholds of every rule. Seconds and percents as whole numbers, so
/// a form field and a TOML value read the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    /// Writer lag in time (age of the oldest event not yet in ClickHouse),
    /// averaged over `window_s`, above `threshold_s`.
    pub writer_lag: LagRule,
    /// A broker down or a partition below `min.insync.replicas`.
    pub kafka_unhealthy: Toggle,
    /// The ClickHouse node does not answer its probe.
    pub clickhouse_down: Toggle,
    /// A partition's active parts at `percent` % of `parts_to_throw_insert`.
    pub parts_near_limit: PartsRule,
    /// The dead-letter topic received messages within the last `window_s`.
    pub dead_letters_growing: WindowRule,
    /// This process's spool has held events for longer than `after_s`.
    pub spool_not_empty: AfterRule,
    /// The writer is not running, or made no progress while events wait
    /// (the watchdog's judgement, `writer.stall_after`).
    pub writer_stalled: Toggle,
    /// The scheduled integrity check found stored events or digests
    /// changed or missing (`attest_integrity_problems` above 0).
    pub integrity_problems: Toggle,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LagRule {
    pub enabled: bool,
    pub threshold_s: u64,
    pub window_s: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartsRule {
    pub enabled: bool,
    pub percent: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowRule {
    pub enabled: bool,
    pub window_s: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AfterRule {
    pub enabled: bool,
    pub after_s: u64,
}

impl Default for LagRule {
    fn default() -> Self {
        LagRule {
            enabled: true,
            threshold_s: 60,
            window_s: 300,
        }
    }
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

impl Default for PartsRule {
    fn default() -> Self {
        PartsRule {
            enabled: true,
            percent: 80,
        }
    }
}

impl Default for WindowRule {
    fn default() -> Self {
        WindowRule {
            enabled: true,
            window_s: 600,
        }
    }
}

impl Default for AfterRule {
    fn default() -> Self {
        AfterRule {
            enabled: true,
            after_s: 300,
        }
    }
}

/// A threshold out of range: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct BadRule {
    pub field: &'static str,
    pub problem: String,
}

/// A week: longer windows would keep a day's samples for nothing.
const MAX_SECONDS: u64 = 7 * 24 * 3600;

impl RuleSettings {
    /// The one check for thresholds, from configuration or the console.
    pub fn validate(&self) -> Result<(), BadRule> {
        let seconds = |field: &'static str, value: u64, min: u64| {
            if value < min || value > MAX_SECONDS {
                Err(BadRule {
                    field,
                    problem: format!("{value}: must be between {min} and {MAX_SECONDS} seconds"),
                })
            } else {
                Ok(())
            }
        };
        seconds("writer_lag.threshold_s", self.writer_lag.threshold_s, 1)?;
        seconds("writer_lag.window_s", self.writer_lag.window_s, 1)?;
        seconds(
            "dead_letters_growing.window_s",
            self.dead_letters_growing.window_s,
            1,
        )?;
        seconds("spool_not_empty.after_s", self.spool_not_empty.after_s, 1)?;
        if !(1..=100).contains(&self.parts_near_limit.percent) {
            return Err(BadRule {
                field: "parts_near_limit.percent",
                problem: format!(
                    "{}: must be between 1 and 100",
                    self.parts_near_limit.percent
                ),
            });
        }
        Ok(())
    }
}

/// An alert that is firing now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct FiringAlert {
    pub alert_id: String,
    pub rule: String,
    pub summary: String,
    /// Epoch ms when it started firing.
    pub since_ms: u64,
}

/// One state change of an alert: `firing` or `resolved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct AlertChange {
    pub alert_id: String,
    pub rule: String,
    pub state: String,
    pub summary: String,
    pub at_ms: u64,
}

/// One attempt to deliver a message to a webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct DeliveryAttempt {
    /// What was delivered (`alert:<id>:firing`).
    pub subject: String,
    /// The webhook's configured name (never its URL or secret).
    pub webhook: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: u64,
    /// The HTTP status answered; 0 when there was no answer.
    pub status: u16,
    /// Why it failed, or "" when it was delivered.
    pub error: String,
    pub duration_ms: u64,
}

impl DeliveryAttempt {
    pub fn delivered(&self) -> bool {
        self.error.is_empty() && (200..300).contains(&self.status)
    }
}

/// Everything the alerts page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsView {
    pub firing: Vec<FiringAlert>,
    /// Newest first.
    pub history: Vec<AlertChange>,
    /// Newest first.
    pub deliveries: Vec<DeliveryAttempt>,
    /// The thresholds in force.
    pub rules: RuleSettings,
    /// Who last changed them in the console, and when; empty while the
    /// configured defaults apply.
    pub rules_changed_by: String,
    pub rules_changed_ms: u64,
    /// Names of the configured webhooks.
    pub webhooks: Vec<String>,
    /// The process that answered is the elected evaluator.
    pub elected: bool,
    /// What the page should say first (ClickHouse unavailable…), or "".
    pub notice: String,
}

/// The alerts as one request's viewer may see them. The server provides
/// it per request, scoped by its admin gate, like the pipeline source.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait AlertsSource: Send + Sync + 'static {
    fn allowed(&self) -> bool;

    /// Recorded as an admin action; `Forbidden` for anyone else.
    async fn view(&self) -> Result<AlertsView, crate::store::StoreError>;

    /// Validates, records the change as an admin action, then stores it.
    async fn save_rules(&self, rules: RuleSettings) -> Result<(), crate::store::StoreError>;
}

#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct SharedAlerts(pub std::sync::Arc<dyn AlertsSource>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_field() {
        RuleSettings::default().validate().expect("defaults");
        let mut r = RuleSettings::default();
        r.writer_lag.window_s = 0;
        assert_eq!(r.validate().unwrap_err().field, "writer_lag.window_s");
        let mut r = RuleSettings::default();
        r.parts_near_limit.percent = 101;
        assert_eq!(r.validate().unwrap_err().field, "parts_near_limit.percent");
        let mut r = RuleSettings::default();
        r.spool_not_empty.after_s = MAX_SECONDS + 1;
        assert!(r
            .validate()
            .unwrap_err()
            .to_string()
            .contains("spool_not_empty.after_s"));
    }

    #[test]
    fn settings_round_trip_and_fill_defaults() {
        let partial: RuleSettings =
            serde_json::from_str(r#"{"writer_lag":{"threshold_s":5}}"#).expect("parses");
        assert_eq!(partial.writer_lag.threshold_s, 5);
        assert_eq!(partial.writer_lag.window_s, 300);
        assert!(partial.clickhouse_down.enabled);
        let text = serde_json::to_string(&partial).expect("serializes");
        assert_eq!(
            serde_json::from_str::<RuleSettings>(&text).expect("back"),
            partial
        );
    }
}
