//! The dead-letter inbox as one console request's viewer may use it: the
//! source the page's server functions read through, scoped to the viewer
//! and its admin gate (as `ScopedPipeline` is for the pipeline page).

use std::sync::Arc;

use app::dead_letters_model::{
    ActionReport, DeadLetterSource, InboxPage, InboxQuery, LetterId, Selection,
};
use app::search_model::SearchError;

use crate::access::{require_admin, AdminGate, AdminRefusal, Viewer};
use crate::dlq::{DeadLetterInbox, DlqError};

pub struct ScopedDeadLetters {
    pub inbox: Arc<DeadLetterInbox>,
    pub gate: AdminGate,
    pub viewer: Viewer,
}

/// The one place an inbox error becomes what the page is told: refusals
/// and bad input as they are, failures as "unavailable" (the detail goes
/// to the log, never to the page).
fn for_page(error: DlqError) -> SearchError {
    match error {
        DlqError::Refused(AdminRefusal::NotAdmin(not)) => SearchError::Forbidden(not.to_string()),
        DlqError::BadRequest(message) => SearchError::BadRequest(message),
        other => {
            tracing::error!(error = %other, "dead-letter inbox request failed");
            SearchError::Unavailable
        }
    }
}

#[async_trait::async_trait]
impl DeadLetterSource for ScopedDeadLetters {
    fn admitted(&self) -> Result<(), SearchError> {
        require_admin(&self.viewer).map_err(|not| SearchError::Forbidden(not.to_string()))
    }

    async fn page(&self, query: InboxQuery) -> Result<InboxPage, SearchError> {
        self.inbox
            .view(&self.gate, &self.viewer, &query)
            .await
            .map_err(for_page)
    }

    async fn redrive(&self, which: Selection) -> Result<ActionReport, SearchError> {
        self.inbox
            .redrive(&self.gate, &self.viewer, &which)
            .await
            .map_err(for_page)
    }

    async fn discard(
        &self,
        ids: Vec<LetterId>,
        reason: String,
    ) -> Result<ActionReport, SearchError> {
        self.inbox
            .discard(&self.gate, &self.viewer, &ids, &reason)
            .await
            .map_err(for_page)
    }
}
