//! What the Search page asks the store and what comes back: the types that
//! cross the wire between the server and the browser for search.

use serde::{Deserialize, Serialize};

use crate::query::ParseError;
use crate::search_state::{Cursor, SearchParams, Sort, TimeWindow};

/// Rows per page of search results.
pub const SEARCH_PAGE_ROWS: u32 = 100;
/// Values listed per facet.
pub const FACET_VALUES: usize = 10;
/// Values a "count by" lists.
pub const COUNT_BY_VALUES: u32 = 20;
/// Metadata keys the facet panel lists, most frequent first.
pub const METADATA_FACET_KEYS: u32 = 10;
/// Metadata keys the query bar suggests: the most frequent of the last
/// [`RECENT_METADATA_DAYS`] days in the viewer's tenants.
pub const RECENT_METADATA_KEYS: u32 = 50;
pub const RECENT_METADATA_DAYS: i64 = 7;
/// How far "events around this one" looks either side, in ms.
pub const AROUND_MS: i64 = 5 * 60_000;

/// The last millisecond of the year 9999, the end of what RFC 3339 writes.
const MAX_SNAPSHOT_MS: i64 = 253_402_300_799_999;

/// A snapshot moment from a request (`?snapshot=`, a page cursor) checked
/// before any arithmetic sees it: a made-up value must be a 400, never an
/// overflow.
pub fn checked_snapshot(ms: i64) -> Result<i64, SearchError> {
    if (0..=MAX_SNAPSHOT_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(SearchError::BadRequest(format!(
            "snapshot {ms} is not a moment between 1970 and 9999 in epoch milliseconds"
        )))
    }
}

/// A search as the store runs it: the query text (compiled on the server),
/// the tenant, the window and where the page starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    pub q: String,
    pub tenant: Option<String>,
    pub window: TimeWindow,
    pub cursor: Option<Cursor>,
    /// The order of pages and exports; counts, facets and the histogram
    /// do not depend on it.
    #[serde(default)]
    pub sort: Sort,
    pub limit: u32,
    /// Without a `tenant`, only these tenants (empty: every tenant). Set by
    /// the server from the signed-in viewer; never read from a request.
    #[serde(skip)]
    pub within: Vec<String>,
    /// Metadata keys whose values each hit of a page carries: the page's
    /// metadata columns (`cols=metadata.<key>`), each a key the query
    /// language accepts. Only pages (and the live tail) read them.
    #[serde(default)]
    pub metadata_keys: Vec<String>,
}

impl SearchQuery {
    /// The tenants the search runs over; empty means every tenant.
    pub fn tenants(&self) -> Vec<String> {
        crate::model::tenants_of(&self.tenant, &self.within)
    }

    /// Checks what the URL said; the query text itself is checked where it
    /// is compiled.
    pub fn from_params(params: &SearchParams, limit: u32) -> Result<SearchQuery, SearchError> {
        let window = params.window().map_err(SearchError::BadRequest)?;
        let sort = params.sort().map_err(SearchError::BadRequest)?;
        let damaged = || {
            SearchError::BadRequest(
                "this page link is damaged; start again from the newest events".to_string(),
            )
        };
        let cursor = match &params.cursor {
            Some(token) => {
                let cursor = Cursor::decode(token).ok_or_else(damaged)?;
                checked_snapshot(cursor.snapshot_ms).map_err(|_| damaged())?;
                // A page of another order: its position means nothing in
                // this one.
                if cursor.sort != sort {
                    return Err(damaged());
                }
                Some(cursor)
            }
            None => None,
        };
        Ok(SearchQuery {
            q: params.q.clone(),
            tenant: params.tenant.clone(),
            window,
            cursor,
            sort,
            limit,
            within: Vec::new(),
            metadata_keys: crate::search_state::metadata_keys(&params.columns),
        })
    }
}

/// One row of search results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct SearchHit {
    pub event_id: String,
    pub tenant_id: String,
    /// Epoch milliseconds, UTC.
    pub occurred_at: i64,
    pub received_at: i64,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub actor_id: String,
    pub actor_type: String,
    pub actor_ip: String,
    pub actor_user_agent: String,
    pub resource_type: String,
    pub resource_id: String,
    pub source_service: String,
    pub request_id: String,
    /// With tenant and id, the event's identity (docs/DESIGN.md).
    pub content_hash: String,
    /// The event's entries of the metadata keys the search asked for
    /// ([`SearchQuery::metadata_keys`]), in the event's order; only those,
    /// so a page stays small whatever else the events carry.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

impl SearchHit {
    /// The hit's value of the column results are ordered by, as the page
    /// query orders by it (`store::search::sql::sort_expr`); `None` for
    /// time, whose value is `occurred_at`.
    pub fn sort_value(&self, column: crate::search_state::SortColumn) -> Option<String> {
        use crate::search_state::SortColumn as S;
        Some(match column {
            S::Time => return None,
            S::Tenant => self.tenant_id.clone(),
            S::Category => self.category.clone(),
            S::Action => self.action.clone(),
            S::Outcome => self.outcome.clone(),
            S::Actor => self.actor_id.clone(),
            S::ActorType => self.actor_type.clone(),
            S::Ip => self.actor_ip.clone(),
            S::UserAgent => self.actor_user_agent.clone(),
            S::Resource => format!("{}/{}", self.resource_type, self.resource_id),
            S::Source => self.source_service.clone(),
            S::RequestId => self.request_id.clone(),
            S::EventId => self.event_id.clone(),
        })
    }

    /// The value of one metadata key, if the event has it (and it was
    /// asked for).
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One page of results, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// The window searched, inclusive, epoch ms.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Only events received up to this moment are in the pages of this
    /// search; the first page sets it.
    pub snapshot_ms: i64,
    /// The page after this one, when there is one.
    pub next_cursor: Option<String>,
    /// Events matching the same filters that arrived after the snapshot.
    pub newer: u64,
}

/// The fields the facet panel counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FacetField {
    Category,
    Action,
    Outcome,
    Actor,
    ResourceType,
    Source,
    ActorIp,
}

impl FacetField {
    pub const ALL: [FacetField; 7] = [
        FacetField::Category,
        FacetField::Action,
        FacetField::Outcome,
        FacetField::Actor,
        FacetField::ResourceType,
        FacetField::Source,
        FacetField::ActorIp,
    ];

    /// The `audit_events` column, which is also how the facet query names it.
    pub fn column(self) -> &'static str {
        match self {
            FacetField::Category => "category",
            FacetField::Action => "action",
            FacetField::Outcome => "outcome",
            FacetField::Actor => "actor_id",
            FacetField::ResourceType => "resource_type",
            FacetField::Source => "source_service",
            FacetField::ActorIp => "actor_ip",
        }
    }

    /// The query-language field a click adds.
    pub fn query_field(self) -> &'static str {
        match self {
            FacetField::Category => "category",
            FacetField::Action => "action",
            FacetField::Outcome => "outcome",
            FacetField::Actor => "actor",
            FacetField::ResourceType => "resource.type",
            FacetField::Source => "source",
            FacetField::ActorIp => "actor.ip",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FacetField::Category => "Category",
            FacetField::Action => "Action",
            FacetField::Outcome => "Outcome",
            FacetField::Actor => "Actor",
            FacetField::ResourceType => "Resource type",
            FacetField::Source => "Source service",
            FacetField::ActorIp => "Actor IP",
        }
    }

    pub fn from_column(column: &str) -> Option<FacetField> {
        FacetField::ALL.into_iter().find(|f| f.column() == column)
    }

    /// By its query-language name (`actor`, `actor.ip`), as the URL's
    /// `count_by` names it.
    pub fn from_query_field(name: &str) -> Option<FacetField> {
        FacetField::ALL
            .into_iter()
            .find(|f| f.query_field() == name)
    }
}

/// What "Count by" counts: one of the fixed fields, or a metadata key (one
/// [`crate::query::is_metadata_key`] accepts, so its values can be clicked
/// into a query that parses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CountField {
    Field(FacetField),
    Metadata(String),
}

impl CountField {
    /// By its query-language name, as the URL's `count_by` and the server
    /// function's `field` give it: `actor`, `actor.ip`, `metadata.ticket`
    /// (the prefix in any case, the key as the query language checks it).
    pub fn from_query_field(name: &str) -> Option<CountField> {
        if let Some(field) = FacetField::from_query_field(name) {
            return Some(CountField::Field(field));
        }
        crate::query::metadata_key_of(name).map(|key| CountField::Metadata(key.to_owned()))
    }

    /// The query-language field a value's link adds, and the name
    /// [`CountField::from_query_field`] reads back.
    pub fn query_field(&self) -> String {
        match self {
            CountField::Field(field) => field.query_field().to_owned(),
            CountField::Metadata(key) => format!("{}{key}", crate::query::METADATA_PREFIX),
        }
    }

    pub fn label(&self) -> String {
        match self {
            CountField::Field(field) => field.label().to_owned(),
            CountField::Metadata(_) => self.query_field(),
        }
    }
}

impl From<FacetField> for CountField {
    fn from(field: FacetField) -> Self {
        CountField::Field(field)
    }
}

/// "Count by a field": the most frequent values of one field over every
/// event the search matches, counted exactly like the facets (distinct
/// event identities), so each count is what Search finds with the value
/// added to the query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountBy {
    pub field: CountField,
    /// Distinct matching events, all values together.
    pub total: u64,
    /// Most events first, ties by value; at most [`COUNT_BY_VALUES`].
    pub values: Vec<FacetValue>,
    /// For a metadata key, the matching events without it (every event
    /// has each fixed field, so `None` there): with the events that have
    /// it, exactly `total`.
    pub without_key: Option<u64>,
    pub snapshot_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetValue {
    pub value: String,
    /// Distinct events with this value.
    pub events: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetCounts {
    pub field: FacetField,
    /// Most events first, at most [`FACET_VALUES`].
    pub values: Vec<FacetValue>,
}

/// The facet panel: top values per field over every matching event, not
/// only the page shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    /// Distinct matching events.
    pub total: u64,
    pub fields: Vec<FacetCounts>,
    /// The most common metadata keys of the matching events, at most
    /// [`METADATA_FACET_KEYS`]; each one's values are counted when the
    /// panel opens it ([`MetadataValues`]).
    #[serde(default)]
    pub metadata: Vec<MetadataKey>,
    /// The moment counted up to; a metadata key's values are counted as of
    /// it too, so they add up to the key's count.
    #[serde(default)]
    pub snapshot_ms: i64,
}

/// A metadata key and the distinct events that carry it. Only keys the
/// query language can name (`metadata.<key>`) are listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataKey {
    pub key: String,
    pub events: u64,
}

/// The most frequent values of one metadata key over every matching
/// event, counted like the facets, at most [`FACET_VALUES`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataValues {
    pub key: String,
    pub values: Vec<FacetValue>,
}

/// Everything stored about one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    pub event_id: String,
    pub tenant_id: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub category: String,
    pub action: String,
    pub outcome: String,
    pub actor_id: String,
    pub actor_type: String,
    pub actor_ip: String,
    pub actor_user_agent: String,
    pub resource_type: String,
    pub resource_id: String,
    pub source_service: String,
    pub request_id: String,
    /// In the order the event listed them.
    pub metadata: Vec<(String, String)>,
    pub schema_id: u32,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// SHA-256 of what the sender said; with tenant and id, the event's
    /// identity (docs/DESIGN.md, "Event identity").
    pub content_hash: String,
    /// Every event of this tenant sent with this id, this one included,
    /// first received first. More than one is a conflict the page flags.
    pub same_id: Vec<SameIdEvent>,
}

/// Most events sent with one id that the detail page lists.
pub const MAX_SAME_ID: usize = 100;

/// One of the events sent with one id, enough to tell them apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SameIdEvent {
    pub content_hash: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub action: String,
    pub actor_id: String,
    pub source_service: String,
}

/// Hex digits of a content hash that a detail link carries (`?h=`): 64
/// bits tell apart the few events that share one id.
pub const HASH_PREFIX_CHARS: usize = 16;

/// Whether `prefix` is a content-hash prefix a link may carry: lower-case
/// hex, 1 to 64 digits.
pub fn is_hash_prefix(prefix: &str) -> bool {
    (1..=64).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A search kept under a name, to run again later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSearch {
    pub id: String,
    pub name: String,
    /// What it searches; never a cursor, so it always opens at the newest.
    pub params: SearchParams,
    /// Epoch seconds.
    pub created_at: u32,
}

/// Longest name of a saved search, in characters.
pub const MAX_SAVED_NAME_CHARS: usize = 100;

/// The name to store, or why it cannot be one.
pub fn saved_search_name(name: &str) -> Result<String, SearchError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(SearchError::BadRequest("give the search a name".into()));
    }
    if name.chars().count() > MAX_SAVED_NAME_CHARS {
        return Err(SearchError::BadRequest(format!(
            "a name has at most {MAX_SAVED_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(SearchError::BadRequest(
            "a name cannot hold control characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// A ClickHouse limit a search ran into. Each one protects the cluster from
/// one analyst's query; the way out is always a narrower search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QueryLimit {
    #[error(
        "the search ran longer than its {seconds} s limit; narrow the time range or add terms"
    )]
    ExecutionTime { seconds: u64 },
    #[error(
        "the search would read more than {rows} rows, its limit; narrow the time range, pick a tenant or add terms"
    )]
    RowsToRead { rows: u64 },
    #[error("the search matches more than {rows} events, the most one export or page may hold; narrow the time range or add terms")]
    ResultRows { rows: u64 },
    #[error(
        "the search needed more memory than ClickHouse allows; narrow the time range or add terms"
    )]
    Memory,
    #[error("you keep {max} saved searches, the most one access key may; delete one first")]
    SavedSearches { max: u32 },
}

/// Why a search was not answered, as the browser sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SearchError {
    /// The query text does not parse; the position points into it.
    #[error("query error {0}")]
    BadQuery(ParseError),
    /// Another parameter (time bounds, page link) is wrong.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Limit(QueryLimit),
    #[error("the event store is unavailable; try again shortly")]
    Unavailable,
    /// Outside what the signed-in viewer may see.
    #[error("{0}")]
    Forbidden(String),
    /// The request or its answer did not make it across.
    #[error("{0}")]
    Transport(String),
}

impl leptos::server_fn::error::FromServerFnError for SearchError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            // The request's own arguments (a field given twice, a number that
            // is not one): the caller's mistake, a 400, not the server's.
            E::Args(message) | E::MissingArg(message) => {
                let error = SearchError::BadRequest(format!("bad request parameters: {message}"));
                // Runs on the server inside the request when its arguments
                // do not decode; the function body that would set the status
                // never runs.
                #[cfg(feature = "ssr")]
                crate::pages::search::set_api_status(error.status());
                error
            }
            other => SearchError::Transport(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
impl SearchError {
    /// The HTTP status a server function answers with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            SearchError::BadQuery(_) | SearchError::BadRequest(_) => http::StatusCode::BAD_REQUEST,
            SearchError::Limit(_) => http::StatusCode::UNPROCESSABLE_ENTITY,
            SearchError::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            SearchError::Forbidden(_) => http::StatusCode::FORBIDDEN,
            SearchError::Transport(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_snapshots_are_bad_requests_not_overflows() {
        for ms in [i64::MIN, -1, MAX_SNAPSHOT_MS + 1, i64::MAX] {
            assert!(
                matches!(checked_snapshot(ms), Err(SearchError::BadRequest(_))),
                "{ms}"
            );
            let cursor = Cursor {
                sort: Sort::default(),
                value: None,
                snapshot_ms: ms,
                occurred_at: i64::MIN,
                event_id: "e".into(),
                tenant_id: "t".into(),
                content_hash: "00".into(),
            };
            let params = SearchParams {
                cursor: Some(cursor.encode()),
                ..SearchParams::default()
            };
            assert!(matches!(
                SearchQuery::from_params(&params, 10),
                Err(SearchError::BadRequest(_))
            ));
        }
        assert_eq!(checked_snapshot(1_795_435_200_000), Ok(1_795_435_200_000));
        let last = TimeWindow::Last(crate::model::TimeRange::default());
        assert_eq!(last.bounds(i64::MIN).0, i64::MIN);
    }

    #[test]
    fn a_cursor_of_another_order_or_an_unknown_order_is_refused() {
        use crate::search_state::{SortColumn, SortDir};
        let by_actor = Sort {
            column: SortColumn::Actor,
            dir: SortDir::Asc,
        };
        let cursor = |sort: Sort, value: Option<&str>| Cursor {
            sort,
            value: value.map(str::to_owned),
            snapshot_ms: 1_795_435_200_000,
            occurred_at: 1_795_435_100_000,
            event_id: "e".into(),
            tenant_id: "t".into(),
            content_hash: "0".repeat(64),
        };
        let params = |sort: Option<&str>, dir: Option<&str>, token: String| SearchParams {
            sort: sort.map(str::to_owned),
            dir: dir.map(str::to_owned),
            cursor: Some(token),
            ..SearchParams::default()
        };
        let own = cursor(by_actor, Some("alice"));
        let query =
            SearchQuery::from_params(&params(Some("actor"), None, own.encode()), 10).unwrap();
        assert_eq!((query.sort, query.cursor), (by_actor, Some(own.clone())));
        let damaged = |p: SearchParams| match SearchQuery::from_params(&p, 10) {
            Err(SearchError::BadRequest(m)) => m.contains("damaged"),
            _ => false,
        };
        // The same position under another direction, another column, or
        // the default order; and a default cursor under a sorted URL.
        assert!(damaged(params(Some("actor"), Some("desc"), own.encode())));
        assert!(damaged(params(Some("outcome"), None, own.encode())));
        assert!(damaged(params(None, None, own.encode())));
        let newest = cursor(Sort::default(), None).encode();
        assert!(damaged(params(Some("actor"), None, newest.clone())));
        assert!(SearchQuery::from_params(&params(None, None, newest), 10).is_ok());
        // An unknown order: its own error, naming the parameter.
        match SearchQuery::from_params(&params(Some("nope"), None, own.encode()), 10) {
            Err(SearchError::BadRequest(m)) => assert!(m.starts_with("sort: "), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn facet_fields_parse_as_query_fields() {
        for field in FacetField::ALL {
            let value = match field {
                FacetField::Category => "admin",
                FacetField::Outcome => "denied",
                _ => "x",
            };
            let term = crate::query::and_term("", field.query_field(), value, false);
            assert!(crate::query::parse(&term).is_ok(), "{term}");
            assert_eq!(FacetField::from_column(field.column()), Some(field));
        }
    }

    #[test]
    fn count_fields_are_query_fields() {
        for field in FacetField::ALL {
            let counted = CountField::from(field);
            assert_eq!(
                CountField::from_query_field(&counted.query_field()),
                Some(counted.clone())
            );
            assert_eq!(counted.label(), field.label());
        }
        let ticket = CountField::Metadata("ticket".into());
        assert_eq!(ticket.query_field(), "metadata.ticket");
        assert_eq!(ticket.label(), "metadata.ticket");
        assert_eq!(
            CountField::from_query_field("metadata.ticket"),
            Some(ticket.clone())
        );
        // The prefix in any case, the key exact, as the query language reads it.
        assert_eq!(
            CountField::from_query_field("Metadata.ticket"),
            Some(ticket)
        );
        assert_eq!(
            CountField::from_query_field("metadata.Ticket"),
            Some(CountField::Metadata("Ticket".into()))
        );
        assert_eq!(
            CountField::from_query_field("metadata.k8s.io-zone_1"),
            Some(CountField::Metadata("k8s.io-zone_1".into()))
        );
        for bad in [
            "",
            "nonsense",
            "actor_id",
            "metadata.",
            "metadata.a'b",
            "metadata.needs review",
            "metadata.é",
            "ticket",
        ] {
            assert_eq!(CountField::from_query_field(bad), None, "{bad:?}");
        }
        // Each value of a metadata key can be clicked into a query that parses.
        let term = crate::query::and_term("", "metadata.k8s.io-zone_1", "a \"b\" *", false);
        assert!(crate::query::parse(&term).is_ok(), "{term}");
    }

    #[test]
    fn hash_prefixes_are_lower_case_hex() {
        assert!(is_hash_prefix("0123456789abcdef"));
        assert!(is_hash_prefix(&"f".repeat(64)));
        for bad in ["", "ABC", "0x1", "ab'", "é", &"a".repeat(65)] {
            assert!(!is_hash_prefix(bad), "{bad}");
        }
    }

    #[test]
    fn params_become_a_query_or_a_clear_error() {
        let params = SearchParams {
            q: "actor:bob".into(),
            cursor: Some(format!("1.2.61.62.{}", "0".repeat(64))),
            ..SearchParams::default()
        };
        let query = SearchQuery::from_params(&params, 5).unwrap();
        assert_eq!(query.cursor.map(|c| c.event_id), Some("b".to_string()));

        let damaged = SearchParams {
            cursor: Some("nonsense".into()),
            ..SearchParams::default()
        };
        assert!(matches!(
            SearchQuery::from_params(&damaged, 5),
            Err(SearchError::BadRequest(m)) if m.contains("damaged")
        ));
        let backwards = SearchParams {
            from: Some("2026-03-02".into()),
            to: Some("2026-03-01".into()),
            ..SearchParams::default()
        };
        assert!(SearchQuery::from_params(&backwards, 5).is_err());
    }

    #[test]
    fn saved_search_names_are_checked() {
        assert_eq!(saved_search_name("  bob's reads ").unwrap(), "bob's reads");
        assert!(saved_search_name(" ").is_err());
        assert!(saved_search_name("a\nb").is_err());
        assert!(saved_search_name(&"x".repeat(MAX_SAVED_NAME_CHARS)).is_ok());
        assert!(saved_search_name(&"x".repeat(MAX_SAVED_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn limit_messages_say_what_to_do() {
        for limit in [
            QueryLimit::ExecutionTime { seconds: 10 },
            QueryLimit::RowsToRead { rows: 1 },
            QueryLimit::ResultRows { rows: 1 },
            QueryLimit::Memory,
        ] {
            assert!(
                limit.to_string().contains("narrow the time range"),
                "{limit}"
            );
        }
    }
}
