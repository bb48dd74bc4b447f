//! The results table's columns and their names in `?cols=`: the fixed
//! fields of an event, and any metadata key as `metadata.<key>`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::query::{is_metadata_key, metadata_key_of, METADATA_PREFIX};

/// Most metadata columns one view shows. Each is a value the page query
/// fetches per row; a link asking for more keeps the first ones.
pub const MAX_METADATA_COLUMNS: usize = 10;

/// Columns the results table can show: the fixed ones in the order of
/// [`Column::ALL`], then metadata columns in the order they were added.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The value of one metadata key (case-sensitive, as in the query
    /// language); empty when the event has no such key.
    Metadata(String),
}

impl Column {
    /// The fixed columns, in display order.
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

    /// The name used in `?cols=`: `metadata.<key>` for a metadata column,
    /// the field name the query language uses for it too.
    pub fn key(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
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
            Column::Metadata(key) => return Cow::Owned(format!("{METADATA_PREFIX}{key}")),
        })
    }

    pub fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
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
            Column::Metadata(_) => return self.key(),
        })
    }

    /// A column by its `?cols=` name; a metadata key must be one the query
    /// language accepts (`metadata.<key>`, the prefix in any case).
    pub fn from_key(key: &str) -> Option<Column> {
        if let Some(fixed) = Column::ALL.into_iter().find(|c| c.key() == key) {
            return Some(fixed);
        }
        metadata_key_of(key).map(|k| Column::Metadata(k.to_owned()))
    }

    /// A metadata column, if `key` is a metadata key the query language
    /// accepts.
    pub fn metadata(key: &str) -> Option<Column> {
        is_metadata_key(key).then(|| Column::Metadata(key.to_owned()))
    }

    /// The metadata key this column shows, if it is a metadata column.
    pub fn metadata_key(&self) -> Option<&str> {
        match self {
            Column::Metadata(key) => Some(key),
            _ => None,
        }
    }
}

/// The metadata keys among `columns`, in their order: what the page query
/// fetches besides the fixed fields.
pub fn metadata_keys(columns: &[Column]) -> Vec<String> {
    columns
        .iter()
        .filter_map(Column::metadata_key)
        .map(str::to_owned)
        .collect()
}

/// Fixed columns in [`Column::ALL`] order, then the metadata columns in the
/// order given, each once, at most [`MAX_METADATA_COLUMNS`] of them.
fn in_display_order(fixed: impl Fn(&Column) -> bool, metadata: &[&str]) -> Vec<Column> {
    let mut out: Vec<Column> = Column::ALL.into_iter().filter(|c| fixed(c)).collect();
    let mut added = 0;
    for key in metadata {
        if added == MAX_METADATA_COLUMNS {
            break;
        }
        let column = Column::Metadata((*key).to_owned());
        if !out.contains(&column) {
            out.push(column);
            added += 1;
        }
    }
    out
}

/// `time,actor,metadata.ticket,…` → columns in display order. Unknown
/// names and metadata keys the query language would refuse are dropped,
/// so a stale or edited link still opens; nothing usable means the
/// defaults.
pub fn parse_columns(text: Option<&str>) -> Vec<Column> {
    let named: Vec<Column> = text
        .unwrap_or_default()
        .split(',')
        .filter_map(|name| Column::from_key(name.trim()))
        .collect();
    let metadata: Vec<&str> = named.iter().filter_map(Column::metadata_key).collect();
    let chosen = in_display_order(|c| named.contains(c), &metadata);
    if chosen.is_empty() {
        Column::DEFAULT.to_vec()
    } else {
        chosen
    }
}

/// Shows or hides one column, keeping at least one visible; a metadata
/// column shown anew goes last.
pub fn toggle_column(columns: &[Column], column: &Column) -> Vec<Column> {
    let shown = columns.contains(column);
    let fixed = |c: &Column| {
        if c == column {
            !shown
        } else {
            columns.contains(c)
        }
    };
    let mut metadata: Vec<&str> = columns
        .iter()
        .filter(|c| !(shown && *c == column))
        .filter_map(Column::metadata_key)
        .collect();
    if let (false, Some(key)) = (shown, column.metadata_key()) {
        metadata.push(key);
    }
    let next = in_display_order(fixed, &metadata);
    if next.is_empty() {
        columns.to_vec()
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> Column {
        Column::Metadata(key.into())
    }

    #[test]
    fn columns_toggle_but_never_vanish() {
        let only_time = toggle_column(&Column::DEFAULT, &Column::Tenant);
        assert!(!only_time.contains(&Column::Tenant));
        assert_eq!(
            toggle_column(&[Column::Time], &Column::Time),
            [Column::Time]
        );
        assert_eq!(
            toggle_column(&[Column::EventId], &Column::Time),
            [Column::Time, Column::EventId]
        );
        assert_eq!(parse_columns(Some("nope")), Column::DEFAULT);
        for c in Column::ALL {
            assert_eq!(Column::from_key(&c.key()), Some(c));
        }
    }

    #[test]
    fn metadata_columns_parse_in_order_after_the_fixed_ones() {
        assert_eq!(
            parse_columns(Some("metadata.ticket,time,actor,metadata.Region-1.x_y")),
            [
                Column::Time,
                Column::Actor,
                meta("ticket"),
                meta("Region-1.x_y")
            ]
        );
        // The prefix in any case, as the query language reads it; the key
        // keeps its case, and two cases are two keys.
        assert_eq!(
            parse_columns(Some("METADATA.Ticket,metadata.ticket,metadata.ticket")),
            [meta("Ticket"), meta("ticket")]
        );
        assert_eq!(Column::from_key("metadata.ticket"), Some(meta("ticket")));
        assert_eq!(meta("ticket").key(), "metadata.ticket");
        assert_eq!(meta("ticket").label(), "metadata.ticket");
    }

    #[test]
    fn bad_metadata_keys_are_dropped_not_an_error() {
        // Each one is a key the query language refuses.
        for bad in [
            "metadata.",
            "metadata",
            "metadata.a'b",
            "metadata.ké",
            "metadata.k*",
            "metadata.a b",
            "metadata.<key>",
        ] {
            assert!(crate::query::parse(&format!("{bad}:x")).is_err(), "{bad}");
            assert_eq!(Column::from_key(bad), None, "{bad}");
            assert_eq!(
                parse_columns(Some(&format!("time,{bad}"))),
                [Column::Time],
                "{bad}"
            );
        }
        assert_eq!(parse_columns(Some("metadata.a'b")), Column::DEFAULT);
        assert_eq!(Column::metadata("a'b"), None);
        assert_eq!(Column::metadata("ticket"), Some(meta("ticket")));
        // A link asking for too many keeps the first ones.
        let many: Vec<String> = (0..MAX_METADATA_COLUMNS + 5)
            .map(|n| format!("metadata.k{n}"))
            .collect();
        let parsed = parse_columns(Some(&many.join(",")));
        assert_eq!(parsed.len(), MAX_METADATA_COLUMNS);
        assert_eq!(
            parsed.last(),
            Some(&meta(&format!("k{}", MAX_METADATA_COLUMNS - 1)))
        );
    }

    #[test]
    fn metadata_columns_toggle_and_go_last() {
        let shown = toggle_column(&Column::DEFAULT, &meta("ticket"));
        assert_eq!(shown.len(), Column::DEFAULT.len() + 1);
        assert_eq!(shown.last(), Some(&meta("ticket")));
        let two = toggle_column(&shown, &meta("region"));
        assert_eq!(metadata_keys(&two), ["ticket", "region"]);
        // A fixed column shown later still sorts among the fixed ones.
        let with_id = toggle_column(&two, &Column::EventId);
        assert_eq!(
            &with_id[with_id.len() - 3..],
            [Column::EventId, meta("ticket"), meta("region")]
        );
        let hidden = toggle_column(&with_id, &meta("ticket"));
        assert_eq!(metadata_keys(&hidden), ["region"]);
        // The last column left stays, metadata or not.
        assert_eq!(
            toggle_column(&[meta("ticket")], &meta("ticket")),
            [meta("ticket")]
        );
        assert_eq!(
            toggle_column(&[meta("ticket")], &Column::Time),
            [Column::Time, meta("ticket")]
        );
        // Round trip through the URL.
        let cols: Vec<String> = two.iter().map(|c| c.key().into_owned()).collect();
        assert_eq!(parse_columns(Some(&cols.join(","))), two);
    }
}
