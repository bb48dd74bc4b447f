//! The interface the console's server functions read through. The server
//! crate implements it over ClickHouse and provides it as context, so pages
//! know what they can ask for, not where the answer lives.

use std::sync::Arc;

use crate::model::{Activity, EventFilter, EventPage};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store could not answer; the detail is for logs only.
    #[error("the event store is unavailable")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Newest events first, bounded by the filter's time range.
    async fn recent_events(
        &self,
        filter: &EventFilter,
        now_ms: i64,
    ) -> Result<EventPage, StoreError>;

    /// Distinct events per time bucket and outcome, and the actors with the
    /// most failed or denied attempts, from the per-minute rollups.
    async fn activity(&self, filter: &EventFilter, now_ms: i64) -> Result<Activity, StoreError>;

    /// Tenants that have any events, for the tenant selector.
    async fn tenants(&self) -> Result<Vec<String>, StoreError>;
}

/// What the server puts into Leptos context.
#[derive(Clone)]
pub struct SharedStore(pub Arc<dyn EventStore>);
