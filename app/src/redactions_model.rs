//! What the redactions page (`/redactions`, admins only) shows and does:
//! the pending redaction requests of the tenants the admin sees, each
//! approved (and so executed) by an admin other than its requester
//! (README "Redaction"). The server provides the source per request,
//! scoped to its viewer.

use serde::{Deserialize, Serialize};

/// One pending request, as the page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRedaction {
    pub request_id: String,
    pub tenant_id: String,
    /// The data subject (actor id) for a request by subject; empty for
    /// one by event ids.
    pub subject_actor_id: String,
    pub events: usize,
    pub fields: Vec<String>,
    pub reason: String,
    pub requested_by: String,
    /// Epoch milliseconds.
    pub requested_at: i64,
    /// The viewer asked for it, so cannot approve it.
    pub yours: bool,
}

/// What an approval did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalReport {
    pub request_id: String,
    /// Rows rewritten.
    pub redacted: usize,
    /// Events of the request no longer stored as they were.
    pub missing: usize,
}

#[cfg(feature = "ssr")]
pub use source::{RedactionSource, SharedRedactions};

#[cfg(feature = "ssr")]
mod source {
    use std::sync::Arc;

    use super::{ApprovalReport, PendingRedaction};
    use crate::search_model::SearchError;

    /// The requests for one request's viewer: refused (`Forbidden`) to
    /// anyone but an admin before anything is read.
    #[async_trait::async_trait]
    pub trait RedactionSource: Send + Sync + 'static {
        fn admitted(&self) -> Result<(), SearchError>;
        async fn pending(&self) -> Result<Vec<PendingRedaction>, SearchError>;
        async fn approve(&self, request_id: String) -> Result<ApprovalReport, SearchError>;
    }

    #[derive(Clone)]
    pub struct SharedRedactions(pub Arc<dyn RedactionSource>);
}
