//! The pipeline page's live stream (`GET /api/pipeline/events`, server-sent
//! events, admins only) and the admin-scoped source its server function
//! reads. Both go through the admin gate in `crate::access`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use app::pipeline_model::PipelineSnapshot;
use app::store::{PipelineSource, StoreError as ConsoleError};
use app::trends_model::{TrendWindow, Trends};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;

use super::ApiError;
use crate::access::{require_admin, AdminGate, AdminRefusal, Viewer};
use crate::health::pipeline::PipelineCollector;

/// How often the stream sends a snapshot.
const EVERY: Duration = Duration::from_secs(3);
/// A stream ends after this long and the browser opens a new one, which
/// passes the session check again: a revoked grant or a role taken away
/// stops the figures within this time, without the stream having to ask.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// A route's admin, or 403: the extractor form of [`require_admin`].
pub struct Admin(pub Viewer);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Admin, ApiError> {
        // `require_viewer` put it there; without it the request sees nothing.
        let viewer = parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .unwrap_or_else(Viewer::nobody);
        require_admin(&viewer).map_err(|not| ApiError::AdminOnly(not.to_string()))?;
        Ok(Admin(viewer))
    }
}

#[derive(Clone)]
pub struct PipelineRoutes {
    pub collector: Arc<PipelineCollector>,
    pub gate: AdminGate,
}

pub fn router(state: PipelineRoutes) -> Router {
    Router::new()
        .route("/api/pipeline/events", get(stream))
        .with_state(state)
}

async fn stream(
    State(state): State<PipelineRoutes>,
    Admin(viewer): Admin,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    state
        .gate
        .admit(&viewer, "pipeline.watch", "pipeline")
        .await?;
    let collector = state.collector.clone();
    let started = tokio::time::Instant::now();
    let snapshots = futures::stream::unfold(true, move |first| {
        let collector = collector.clone();
        async move {
            if !first {
                tokio::time::sleep(EVERY).await;
            }
            if started.elapsed() >= STREAM_LIFETIME {
                return None;
            }
            let snapshot = collector.snapshot().await;
            Some((Ok(snapshot_event(&snapshot)), false))
        }
    });
    Ok(Sse::new(snapshots).keep_alive(KeepAlive::default()))
}

fn snapshot_event(snapshot: &PipelineSnapshot) -> Event {
    match Event::default().event("snapshot").json_data(snapshot) {
        Ok(event) => event,
        // A snapshot is plain data; should it ever fail to serialize, the
        // page keeps its last figures and the log says why.
        Err(error) => {
            tracing::error!(%error, "cannot serialize a pipeline snapshot");
            Event::default().comment("snapshot unavailable")
        }
    }
}

/// The pipeline as one request's viewer may see it: through the gate.
pub struct ScopedPipeline {
    pub collector: Arc<PipelineCollector>,
    pub store: crate::store::Store,
    /// `trends.sample_every`, for the charts' buckets.
    pub sample_every: Duration,
    pub gate: AdminGate,
    pub viewer: Viewer,
}

impl ScopedPipeline {
    /// The admin gate, in the console's error terms.
    async fn admit(&self, action: &str) -> Result<(), ConsoleError> {
        match self.gate.admit(&self.viewer, action, "pipeline").await {
            Ok(()) => Ok(()),
            Err(AdminRefusal::NotAdmin(not)) => Err(ConsoleError::Forbidden(not.to_string())),
            Err(AdminRefusal::Unrecorded(error)) => {
                Err(ConsoleError::Unavailable(error.to_string()))
            }
        }
    }
}

#[async_trait::async_trait]
impl PipelineSource for ScopedPipeline {
    fn allowed(&self) -> bool {
        require_admin(&self.viewer).is_ok()
    }

    async fn snapshot(&self) -> Result<PipelineSnapshot, ConsoleError> {
        self.admit("pipeline.view").await?;
        Ok(self.collector.snapshot().await)
    }

    async fn trends(&self, window: TrendWindow) -> Result<Trends, ConsoleError> {
        self.admit("pipeline.trends").await?;
        crate::trends::read(&self.store, self.sample_every, window)
            .await
            .map_err(|error| ConsoleError::Unavailable(error.to_string()))
    }
}
