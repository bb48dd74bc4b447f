//! The admin gate: the one place that decides whether a console request may
//! do what only admins may (the pipeline page, its server function and its
//! live stream). Server functions reach it through the pipeline source the
//! server scopes to each viewer, routes through the `Admin` extractor in
//! `crate::http`; both call [`require_admin`], so the rule is stated once.
//!
//! An admin action is recorded, before it is answered, as an audit event in
//! Attest's own trail (`SYSTEM_TENANT`), like sign-ins: a page that shows how
//! the pipeline of every tenant is doing is itself worth a record. An action
//! that cannot be recorded is not done (the caller answers 503), as for
//! exports.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::session::Role;
use tracing::info;

use super::{Viewer, SYSTEM_TENANT};
use crate::event::{Category, Outcome, Resource};
use crate::ingest::{internal_event, Ingest, IngestError};

/// The viewer is signed in, but not as an admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this page is for admins; an operator can grant it with `attest access grant --role admin`"
)]
pub struct NotAdmin;

/// The rule: only a viewer whose grant has the admin role.
pub fn require_admin(viewer: &Viewer) -> Result<(), NotAdmin> {
    if viewer.role == Role::Admin {
        Ok(())
    } else {
        Err(NotAdmin)
    }
}

/// The viewer may read but not change anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an auditor reads and changes nothing; this needs an analyst or admin grant")]
pub struct ReadOnly;

/// The rule for every console write (saved searches, detection rules):
/// anyone but an auditor. Admin actions pass [`require_admin`] as well.
pub fn require_writer(viewer: &Viewer) -> Result<(), ReadOnly> {
    if viewer.role.may_write() {
        Ok(())
    } else {
        Err(ReadOnly)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    #[error(transparent)]
    NotAdmin(#[from] NotAdmin),
    #[error("cannot record the admin action in Attest's trail, so it was not done: {0}")]
    Unrecorded(#[source] IngestError),
}

/// Admits admins to an action after recording it.
#[derive(Clone)]
pub struct AdminGate {
    /// `None` when the console runs without sign-in: there is no one to
    /// record, as for exports in that mode.
    recorder: Option<Arc<Ingest>>,
}

impl AdminGate {
    pub fn new(recorder: Option<Arc<Ingest>>) -> AdminGate {
        AdminGate { recorder }
    }

    /// `action` is the audit event's action (`pipeline.view`), `resource`
    /// what it concerns.
    pub async fn admit(
        &self,
        viewer: &Viewer,
        action: &str,
        resource: &str,
    ) -> Result<(), AdminRefusal> {
        let resource = Resource {
            kind: "pipeline".into(),
            id: resource.to_owned(),
        };
        self.admit_with(viewer, action, resource, BTreeMap::new())
            .await
    }

    /// [`AdminGate::admit`] for an action that says what it acts on and
    /// how (which dead letters, the written reason): `details` become the
    /// event's metadata, beside the viewer's access id.
    pub async fn admit_with(
        &self,
        viewer: &Viewer,
        action: &str,
        resource: Resource,
        details: BTreeMap<String, String>,
    ) -> Result<(), AdminRefusal> {
        if let Err(refused) = require_admin(viewer) {
            info!(access_id = %viewer.access_id, action, "admin action refused to a non-admin");
            return Err(refused.into());
        }
        let Some(ingest) = &self.recorder else {
            return Ok(());
        };
        let mut metadata = details;
        metadata.insert("access_id".to_owned(), viewer.access_id.clone());
        let event = internal_event(
            SYSTEM_TENANT,
            Category::Admin,
            action,
            Outcome::Success,
            resource,
            &viewer.name,
            metadata,
        );
        ingest
            .record(event)
            .await
            .map(|_| ())
            .map_err(AdminRefusal::Unrecorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_pass() {
        let mut viewer = Viewer::nobody();
        viewer.signed_in = true;
        assert_eq!(require_admin(&viewer), Err(NotAdmin));
        viewer.all_tenants = true;
        assert_eq!(
            require_admin(&viewer),
            Err(NotAdmin),
            "all tenants is not admin"
        );
        viewer.role = Role::Admin;
        assert_eq!(require_admin(&viewer), Ok(()));
        assert!(NotAdmin.to_string().contains("--role admin"));
        viewer.role = Role::Auditor;
        assert_eq!(
            require_admin(&viewer),
            Err(NotAdmin),
            "auditors are not admins"
        );
    }

    #[test]
    fn auditors_write_nothing() {
        let mut viewer = Viewer::nobody();
        assert_eq!(require_writer(&viewer), Ok(()));
        viewer.role = Role::Admin;
        assert_eq!(require_writer(&viewer), Ok(()));
        viewer.role = Role::Auditor;
        assert_eq!(require_writer(&viewer), Err(ReadOnly));
    }
}
