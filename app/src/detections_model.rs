//! Detections: rules over the audit events themselves ("at least N matching
//! events per actor within W minutes"), evaluated by the server
//! (`server/src/detect/`), shown on `/detections` and in the dashboard's
//! Detections panel, and delivered to webhooks.
//!
//! A rule is a Search query, a group-by field and a threshold, kept per
//! tenant. [`RuleInput::validate`] is the one check a rule passes through,
//! in the page and again on the server; its errors name the field.

use serde::{Deserialize, Serialize};

use crate::alerts_model::DeliveryAttempt;
use crate::query::{and_term, Precision, Timestamp};
use crate::search_state::SearchParams;

/// What a rule counts per: one firing per value of this field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    Actor,
    SourceIp,
    Resource,
    Service,
}

impl GroupBy {
    pub const ALL: [GroupBy; 4] = [
        GroupBy::Actor,
        GroupBy::SourceIp,
        GroupBy::Resource,
        GroupBy::Service,
    ];

    /// As stored, sent to webhooks and posted by the form.
    pub fn param(self) -> &'static str {
        match self {
            GroupBy::Actor => "actor",
            GroupBy::SourceIp => "ip",
            GroupBy::Resource => "resource",
            GroupBy::Service => "service",
        }
    }

    pub fn from_param(text: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.param() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Actor => "actor",
            GroupBy::SourceIp => "source IP",
            GroupBy::Resource => "resource",
            GroupBy::Service => "service",
        }
    }

    /// The `audit_events` column grouped by.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Actor => "actor_id",
            GroupBy::SourceIp => "actor_ip",
            GroupBy::Resource => "resource_id",
            GroupBy::Service => "source_service",
        }
    }

    /// The Search field that selects one value of it (the same column).
    pub fn query_field(self) -> &'static str {
        match self {
            GroupBy::Actor => "actor",
            GroupBy::SourceIp => "ip",
            GroupBy::Resource => "resource",
            GroupBy::Service => "service",
        }
    }
}

/// Limits of a rule: a window beyond a day is a report, not a detection,
/// and a threshold beyond a million is never crossed by a burst.
pub const MAX_WINDOW_MINUTES: u64 = 24 * 60;
pub const MAX_THRESHOLD: u64 = 1_000_000;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_QUERY_CHARS: usize = 2_000;

/// A rule as the console sends it; `rule_id` empty for a new one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInput {
    pub rule_id: String,
    pub tenant: String,
    pub name: String,
    pub query: String,
    pub group_by: String,
    pub threshold: u64,
    pub window_minutes: u64,
    pub enabled: bool,
}

/// A rule field out of range: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct BadRuleInput {
    pub field: &'static str,
    pub problem: String,
}

impl RuleInput {
    /// The one check of a rule; the group-by it names.
    pub fn validate(&self) -> Result<GroupBy, BadRuleInput> {
        let bad = |field, problem: String| Err(BadRuleInput { field, problem });
        let tenant = self.tenant.trim();
        if tenant.is_empty() {
            return bad("tenant", "choose the tenant the rule watches".into());
        }
        if tenant.contains(',') || tenant.chars().any(char::is_control) || tenant.len() > 100 {
            return bad("tenant", format!("{tenant:?} is not one tenant id"));
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return bad("name", format!("must be 1 to {MAX_NAME_CHARS} characters"));
        }
        if name.chars().any(char::is_control) {
            return bad("name", "cannot hold control characters".into());
        }
        if self.query.chars().count() > MAX_QUERY_CHARS {
            return bad("query", format!("at most {MAX_QUERY_CHARS} characters"));
        }
        if let Err(error) = crate::query::parse(&self.query) {
            return bad("query", error.to_string());
        }
        let Some(group_by) = GroupBy::from_param(&self.group_by) else {
            return bad(
                "group_by",
                format!(
                    "{:?} is not one of actor, ip, resource, service",
                    self.group_by
                ),
            );
        };
        if self.threshold == 0 || self.threshold > MAX_THRESHOLD {
            return bad(
                "threshold",
                format!("must be between 1 and {MAX_THRESHOLD} events"),
            );
        }
        if self.window_minutes == 0 || self.window_minutes > MAX_WINDOW_MINUTES {
            return bad(
                "window_minutes",
                format!("must be between 1 and {MAX_WINDOW_MINUTES} minutes"),
            );
        }
        Ok(group_by)
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct DetectionRule {
    pub rule_id: String,
    pub tenant: String,
    pub name: String,
    pub query: String,
    pub group_by: String,
    pub threshold: u64,
    pub window_minutes: u64,
    pub enabled: u8,
    pub changed_by: String,
    pub changed_ms: u64,
}

impl DetectionRule {
    pub fn group(&self) -> Option<GroupBy> {
        GroupBy::from_param(&self.group_by)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled != 0
    }

    /// "≥ 10 events per actor within 5 min".
    pub fn condition(&self) -> String {
        let per = match self.group() {
            Some(g) => g.label(),
            None => self.group_by.as_str(),
        };
        format!(
            "≥ {} events per {per} within {} min",
            self.threshold, self.window_minutes
        )
    }
}

/// One detection: a rule's threshold crossed by one group value within one
/// window. Stored once, under a firing id made from the rule, the value and
/// the window's start (see `server/src/detect/window.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct Firing {
    pub firing_id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub tenant: String,
    pub query: String,
    pub group_by: String,
    pub group_value: String,
    /// The events counted occurred within `window_from_ms..=window_to_ms`.
    pub window_from_ms: i64,
    pub window_to_ms: i64,
    /// No further firing of this rule and value starts before this.
    pub until_ms: i64,
    pub events: u64,
    pub threshold: u64,
    pub fired_ms: u64,
}

impl Firing {
    /// The rule's query narrowed to the group value.
    pub fn search_query(&self) -> String {
        let field = GroupBy::from_param(&self.group_by).map_or("actor", GroupBy::query_field);
        and_term(&self.query, field, &self.group_value, false)
    }

    /// Search showing exactly the events this firing counted: its tenant,
    /// the rule's query and value, its window to the millisecond.
    pub fn search_href(&self) -> String {
        let at = |ms| {
            Timestamp {
                ms,
                precision: Precision::Millis,
            }
            .to_string()
        };
        SearchParams {
            q: self.search_query(),
            tenant: Some(self.tenant.clone()),
            from: Some(at(self.window_from_ms)),
            to: Some(at(self.window_to_ms)),
            ..SearchParams::from_lookup(|_| None)
        }
        .href()
    }
}

/// Everything the detections page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectionsView {
    /// Rules of the tenants the viewer may see, by tenant and name.
    pub rules: Vec<DetectionRule>,
    /// Newest first.
    pub firings: Vec<Firing>,
    /// Attempts to deliver those firings, newest first.
    pub deliveries: Vec<DeliveryAttempt>,
    /// Names of the configured webhooks.
    pub webhooks: Vec<String>,
    /// The tenants a new rule may watch (empty: any, for a viewer of all).
    pub tenants: Vec<String>,
}

/// The detections as one request's viewer may see and change them; the
/// server provides it per request, scoped to the viewer's tenants.
#[cfg(feature = "ssr")]
#[async_trait::async_trait]
pub trait DetectionsSource: Send + Sync + 'static {
    /// Rules, firings and deliveries of `tenant` (or of every tenant the
    /// viewer may see).
    async fn view(&self, tenant: Option<&str>) -> Result<DetectionsView, crate::store::StoreError>;

    /// Firings whose window meets `from_ms..=to_ms`, of `tenant` (one, a
    /// comma list, or every tenant the viewer may see).
    async fn firings(
        &self,
        tenant: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Firing>, crate::store::StoreError>;

    /// Creates (empty `rule_id`) or replaces a rule; recorded as an audit
    /// event before it is stored. The rule's id.
    async fn save(&self, input: RuleInput) -> Result<String, crate::store::StoreError>;

    /// Pauses or resumes a rule; recorded like a save.
    async fn set_enabled(
        &self,
        rule_id: &str,
        enabled: bool,
    ) -> Result<(), crate::store::StoreError>;

    /// Deletes a rule (its firings stay); recorded like a save.
    async fn delete(&self, rule_id: &str) -> Result<(), crate::store::StoreError>;
}

#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct SharedDetections(pub std::sync::Arc<dyn DetectionsSource>);

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RuleInput {
        RuleInput {
            rule_id: String::new(),
            tenant: "acme".into(),
            name: "Brute force".into(),
            query: "category:authentication outcome:failure".into(),
            group_by: "actor".into(),
            threshold: 10,
            window_minutes: 5,
            enabled: true,
        }
    }

    #[test]
    fn a_good_rule_validates_and_bad_fields_are_named() {
        assert_eq!(input().validate(), Ok(GroupBy::Actor));
        let field = |change: fn(&mut RuleInput)| {
            let mut i = input();
            change(&mut i);
            i.validate().unwrap_err().field
        };
        assert_eq!(field(|i| i.tenant = " ".into()), "tenant");
        assert_eq!(field(|i| i.tenant = "a,b".into()), "tenant");
        assert_eq!(field(|i| i.name = String::new()), "name");
        assert_eq!(field(|i| i.name = "x".repeat(101)), "name");
        assert_eq!(field(|i| i.name = "a\nb".into()), "name");
        assert_eq!(field(|i| i.query = "outcome:(".into()), "query");
        assert_eq!(field(|i| i.query = "nosuchfield:x".into()), "query");
        assert_eq!(field(|i| i.group_by = "country".into()), "group_by");
        assert_eq!(field(|i| i.threshold = 0), "threshold");
        assert_eq!(field(|i| i.threshold = MAX_THRESHOLD + 1), "threshold");
        assert_eq!(field(|i| i.window_minutes = 0), "window_minutes");
        assert_eq!(
            field(|i| i.window_minutes = MAX_WINDOW_MINUTES + 1),
            "window_minutes"
        );
        let mut i = input();
        i.threshold = 0;
        assert!(i
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("threshold: "));
        // An empty query matches every event of the tenant.
        let mut i = input();
        i.query = String::new();
        assert!(i.validate().is_ok());
    }

    #[test]
    fn group_by_round_trips_and_names_columns() {
        for g in GroupBy::ALL {
            assert_eq!(GroupBy::from_param(g.param()), Some(g));
        }
        assert_eq!(GroupBy::SourceIp.column(), "actor_ip");
        assert_eq!(GroupBy::from_param("Actor"), None);
    }

    #[test]
    fn a_firing_links_to_its_events_in_search() {
        let firing = Firing {
            firing_id: "f".into(),
            rule_id: "r".into(),
            rule_name: "Brute force".into(),
            tenant: "acme".into(),
            query: "outcome:failure".into(),
            group_by: "actor".into(),
            group_value: "mallory@acme".into(),
            window_from_ms: 1_795_435_200_000,
            window_to_ms: 1_795_435_499_999,
            until_ms: 1_795_435_500_000,
            events: 50,
            threshold: 10,
            fired_ms: 1_795_435_300_000,
        };
        assert_eq!(
            firing.search_query(),
            "outcome:failure actor:\"mallory@acme\""
        );
        let href = firing.search_href();
        assert!(href.starts_with("/search?q=outcome%3Afailure"), "{href}");
        assert!(href.contains("tenant=acme"), "{href}");
        assert!(href.contains("from=2026-11-23T12%3A00%3A00.000"), "{href}");
        assert!(href.contains("to=2026-11-23T12%3A04%3A59.999"), "{href}");
    }
}
