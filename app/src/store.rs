//! The interface the console's server functions read through. The server
//! crate implements it over ClickHouse and provides it as context, so pages
//! know what they can ask for, not where the answer lives.

use std::sync::Arc;

use crate::dashboard_model::{Panel, PanelData, SeriesBy, TimeSeries, Timeline, TopActors};
use crate::model::{Activity, EventFilter};
use crate::pipeline_model::PipelineSnapshot;
use crate::query::ParseError;
use crate::search_model::{
    EventDetail, Facets, QueryLimit, SavedSearch, SearchError, SearchPage, SearchQuery,
};
use crate::search_state::SearchParams;
use crate::trends_model::{TrendWindow, Trends};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store could not answer; the detail is for logs only.
    #[error("the event store is unavailable")]
    Unavailable(String),
    /// The search text does not parse.
    #[error("query error {0}")]
    BadQuery(ParseError),
    /// The store refused the search as too expensive.
    #[error("{0}")]
    Limit(QueryLimit),
    /// The signed-in viewer may not see what was asked for; the message
    /// says what they may see instead.
    #[error("{0}")]
    Forbidden(String),
    /// A field of what was sent is wrong; the message names it.
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for SearchError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => SearchError::Unavailable,
            StoreError::BadQuery(e) => SearchError::BadQuery(e),
            StoreError::Limit(limit) => SearchError::Limit(limit),
            StoreError::Forbidden(message) => SearchError::Forbidden(message),
            StoreError::Invalid(message) => SearchError::BadRequest(message),
        }
    }
}

#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Distinct events per time bucket and outcome, and the actors with the
    /// most failed or denied attempts, from the per-minute rollups.
    async fn activity(&self, filter: &EventFilter, now_ms: i64) -> Result<Activity, StoreError>;

    /// Tenants that have any events, for the tenant selector.
    async fn tenants(&self) -> Result<Vec<String>, StoreError>;

    /// One page of events matching a search, newest first. Without a cursor
    /// the page is the newest and its snapshot is `now_ms`.
    async fn search(&self, query: &SearchQuery, now_ms: i64) -> Result<SearchPage, StoreError>;

    /// Events matching the search (its cursor aside) that arrived after
    /// `snapshot_ms`.
    async fn newer_events(
        &self,
        query: &SearchQuery,
        snapshot_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError>;

    /// Events matching the search (its cursor aside) that `position` has
    /// not delivered: received after its moment, past its Kafka offsets
    /// and below the writers' committed ones (`delivered`), at most
    /// [`POLL_ROWS`](crate::tail::POLL_ROWS) of them in offset order, with
    /// the position after them.
    async fn tail(
        &self,
        query: &SearchQuery,
        position: &crate::tail::TailPosition,
        delivered: &crate::tail::Delivered,
        now_ms: i64,
    ) -> Result<crate::tail::TailBatch, StoreError>;

    /// Top values per facet field over every event the search matches.
    async fn facets(&self, query: &SearchQuery, now_ms: i64) -> Result<Facets, StoreError>;

    /// The [`FACET_VALUES`](crate::search_model::FACET_VALUES) most
    /// frequent values of metadata key `key` over every event the search
    /// matches, counted like the facets. `key` must be one the query
    /// language accepts, else [`StoreError::Invalid`].
    async fn metadata_values(
        &self,
        query: &SearchQuery,
        key: &str,
        now_ms: i64,
    ) -> Result<crate::search_model::MetadataValues, StoreError>;

    /// The metadata keys of the last
    /// [`RECENT_METADATA_DAYS`](crate::search_model::RECENT_METADATA_DAYS)
    /// days, most frequent first, at most
    /// [`RECENT_METADATA_KEYS`](crate::search_model::RECENT_METADATA_KEYS),
    /// in `tenant` (`None`: every tenant the store may see), for the query
    /// bar's suggestions. Answers may be a little stale (cached briefly).
    async fn recent_metadata_keys(
        &self,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<crate::search_model::MetadataKey>, StoreError>;

    /// The [`COUNT_BY_VALUES`](crate::search_model::COUNT_BY_VALUES) most
    /// frequent values of `field` (a fixed field or a metadata key) over
    /// every event the search matches, counted like the facets.
    async fn count_by(
        &self,
        query: &SearchQuery,
        field: crate::search_model::CountField,
        now_ms: i64,
    ) -> Result<crate::search_model::CountBy, StoreError>;

    /// Distinct events per time bucket and `by` over what the search
    /// matches (its cursor aside), every bucket of the window present.
    async fn time_series(
        &self,
        query: &SearchQuery,
        by: SeriesBy,
        now_ms: i64,
    ) -> Result<TimeSeries, StoreError>;

    /// Panels 1, 2 and 8 (events by category and by outcome over time,
    /// weekday × hour in `tz`) from one reading of what the search
    /// matches (its cursor aside).
    async fn timeline(
        &self,
        query: &SearchQuery,
        tz: &str,
        now_ms: i64,
    ) -> Result<Timeline, StoreError>;

    /// The actors with the most matching events, and with the most failed
    /// or denied ones.
    async fn top_actors(&self, query: &SearchQuery, now_ms: i64) -> Result<TopActors, StoreError>;

    /// One of the dashboard's panels 4–9 over what the search matches (its
    /// cursor aside); `tz` ("UTC" or an IANA name) places the heatmap.
    async fn dashboard_panel(
        &self,
        query: &SearchQuery,
        panel: Panel,
        tz: &str,
        now_ms: i64,
    ) -> Result<PanelData, StoreError>;

    /// Everything stored about one event, with every other event of the
    /// tenant sent with the same id. Several may share an id: `content`,
    /// a prefix of one's content hash, and `at_ms`, its `occurred_at`, say
    /// which to show; without them, the first received. `None` when no
    /// event matches.
    async fn event_detail(
        &self,
        tenant: &str,
        event_id: &str,
        at_ms: Option<i64>,
        content: Option<&str>,
    ) -> Result<Option<EventDetail>, StoreError>;

    /// Every saved search, by name.
    async fn saved_searches(&self) -> Result<Vec<SavedSearch>, StoreError>;

    /// Saves `params` (without its cursor) under a checked name.
    async fn save_search(
        &self,
        name: &str,
        params: &SearchParams,
        now_ms: i64,
    ) -> Result<SavedSearch, StoreError>;

    /// Deleting an id that does not exist (any more) is not an error.
    async fn delete_saved_search(&self, id: &str) -> Result<(), StoreError>;
}

/// What the server puts into Leptos context.
#[derive(Clone)]
pub struct SharedStore(pub Arc<dyn EventStore>);

/// The pipeline's figures, for the admin page. The server provides it per
/// request, already scoped to the viewer by its admin gate: `allowed` and
/// `snapshot` answer from the same decision, so the page can set its
/// status before it renders and the data is refused below the page.
#[async_trait::async_trait]
pub trait PipelineSource: Send + Sync + 'static {
    /// Whether this request's viewer may see the pipeline.
    fn allowed(&self) -> bool;

    /// The figures now (recorded as an admin action), or `Forbidden` for
    /// anyone but an admin.
    async fn snapshot(&self) -> Result<PipelineSnapshot, StoreError>;

    /// The sampled figures over `window`, or `Forbidden` for anyone but an
    /// admin.
    async fn trends(&self, window: TrendWindow) -> Result<Trends, StoreError>;
}

/// What the server puts into Leptos context for the pipeline page.
#[derive(Clone)]
pub struct SharedPipeline(pub Arc<dyn PipelineSource>);
