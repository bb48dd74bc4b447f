//! The results table's columns and their names in `?cols=`.

use serde::{Deserialize, Serialize};

/// Columns the results table can show, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Column {
    Time,
    Received,
    Tenant,
    Category,
    Action,
    Outcome,
    Actor,
    ActorType,
    Ip,
    UserAgent,
    Resource,
    Source,
    RequestId,
    EventId,
}

impl Column {
    pub const ALL: [Column; 14] = [
        Column::Time,
        Column::Received,
        Column::Tenant,
        Column::Category,
        Column::Action,
        Column::Outcome,
        Column::Actor,
        Column::ActorType,
        Column::Ip,
        Column::UserAgent,
        Column::Resource,
        Column::Source,
        Column::RequestId,
        Column::EventId,
    ];

    /// What an analyst scans first: who did what to which resource, when,
    /// from where.
    pub const DEFAULT: [Column; 9] = [
        Column::Time,
        Column::Tenant,
        Column::Category,
        Column::Action,
        Column::Outcome,
        Column::Actor,
        Column::Ip,
        Column::Resource,
        Column::Source,
    ];

    /// The name used in `?cols=`.
    pub fn key(self) -> &'static str {
        match self {
            Column::Time => "time",
            Column::Received => "received",
            Column::Tenant => "tenant",
            Column::Category => "category",
            Column::Action => "action",
            Column::Outcome => "outcome",
            Column::Actor => "actor",
            Column::ActorType => "actor_type",
            Column::Ip => "ip",
            Column::UserAgent => "user_agent",
            Column::Resource => "resource",
            Column::Source => "source",
            Column::RequestId => "request_id",
            Column::EventId => "event_id",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Column::Time => "Time (UTC)",
            Column::Received => "Received (UTC)",
            Column::Tenant => "Tenant",
            Column::Category => "Category",
            Column::Action => "Action",
            Column::Outcome => "Outcome",
            Column::Actor => "Actor",
            Column::ActorType => "Actor type",
            Column::Ip => "IP",
            Column::UserAgent => "User agent",
            Column::Resource => "Resource",
            Column::Source => "Source",
            Column::RequestId => "Request",
            Column::EventId => "Event id",
        }
    }

    pub fn from_key(key: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.key() == key)
    }
}

/// `time,actor,…` → columns in display order. Unknown names are dropped so a
/// stale link still opens; nothing known means the defaults.
pub fn parse_columns(text: Option<&str>) -> Vec<Column> {
    let named: Vec<&str> = text.unwrap_or_default().split(',').map(str::trim).collect();
    let chosen: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|c| named.contains(&c.key()))
        .collect();
    if chosen.is_empty() {
        Column::DEFAULT.to_vec()
    } else {
        chosen
    }
}

/// Shows or hides one column, keeping at least one visible.
pub fn toggle_column(columns: &[Column], column: Column) -> Vec<Column> {
    let shown = columns.contains(&column);
    let next: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|c| {
            if *c == column {
                !shown
            } else {
                columns.contains(c)
            }
        })
        .collect();
    if next.is_empty() {
        columns.to_vec()
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_toggle_but_never_vanish() {
        let only_time = toggle_column(&Column::DEFAULT, Column::Tenant);
        assert!(!only_time.contains(&Column::Tenant));
        assert_eq!(toggle_column(&[Column::Time], Column::Time), [Column::Time]);
        assert_eq!(
            toggle_column(&[Column::EventId], Column::Time),
            [Column::Time, Column::EventId]
        );
        assert_eq!(parse_columns(Some("nope")), Column::DEFAULT);
        for c in Column::ALL {
            assert_eq!(Column::from_key(c.key()), Some(c));
        }
    }
}
