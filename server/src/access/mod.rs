//! Console access: who may sign in to the console, and which tenants'
//! events they may see.
//!
//! An access key reads `atc_<key id>_<secret>`; it is granted with
//! `attest access grant`, shown once, and only its SHA-256 is stored, as
//! for ingest keys (`crate::keys`). Signing in exchanges the key for a
//! session cookie that names the access id and an expiry, signed with
//! HMAC-SHA256. Each request checks the signature, the expiry and that the
//! grant is still valid, so a revocation ends its sessions within
//! `console.access_refresh`, on every instance, without shared state.
//!
//! Every store call the console makes goes through [`ScopedStore`], which
//! narrows it to the viewer's tenants on the server: a page or a crafted
//! request cannot widen it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use app::dashboard_model::{Panel, PanelData, SeriesBy, TimeSeries, Timeline, TopActors};
use app::model::{Activity, EventFilter};
use app::search_model::{EventDetail, Facets, SavedSearch, SearchPage, SearchQuery};
use app::search_state::{SearchParams, TimeWindow};
use app::session::{Role, ViewerInfo};
use app::store::{EventStore, StoreError as ConsoleError};
use tracing::{info, warn};

use crate::event::{Category, Outcome, Resource};
use crate::ingest::validate::{identifier, MAX_ID};
use crate::ingest::{internal_event, now_ms, Ingest, IngestError};
use crate::keys::{mint, StoredKey};
use crate::store::{AccessRow, Store, StoreError};

mod admin;
mod reads;
mod sessions;
mod turns;

pub use admin::{require_admin, require_writer, AdminGate, AdminRefusal, NotAdmin, ReadOnly};
pub use reads::{Read, ReadLog};
pub use sessions::{session_cookie, SessionError, Sessions};
pub use turns::{ReadTurns, ViewerTurns};

const PREFIX: &str = "atc_";

/// The session cookie's name.
pub const COOKIE: &str = "attest_session";

/// Attest's own tenant: console sign-ins and grants that concern no single
/// tenant are recorded in its trail.
pub const SYSTEM_TENANT: &str = "attest";

#[async_trait::async_trait]
impl StoredKey for AccessRow {
    const PREFIX: &'static str = PREFIX;
    fn id(&self) -> &str {
        &self.access_id
    }
    fn secret_sha256(&self) -> &str {
        &self.secret_sha256
    }
    fn is_revoked(&self) -> bool {
        self.revoked_at != 0
    }
    async fn load_all(store: &Store) -> Result<Vec<Self>, StoreError> {
        store.console_access().await
    }
    async fn load(store: &Store, id: &str) -> Result<Option<Self>, StoreError> {
        store.console_access_by_id(id).await
    }
}

/// Who is looking, and what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub access_id: String,
    pub name: String,
    /// Sorted; ignored when `all_tenants`.
    pub tenants: Vec<String>,
    pub all_tenants: bool,
    pub signed_in: bool,
    pub role: Role,
}

impl Viewer {
    /// Everyone, when the console runs without sign-in: that mode is for
    /// throwaway local runs, where whoever reaches the console already
    /// sees every tenant, so the admin pages are theirs too.
    pub fn unrestricted() -> Viewer {
        Viewer {
            access_id: String::new(),
            name: "anonymous".into(),
            tenants: Vec::new(),
            all_tenants: true,
            signed_in: false,
            role: Role::Admin,
        }
    }

    /// No one: what a request is scoped to if it somehow arrives without
    /// a viewer. It sees nothing.
    pub fn nobody() -> Viewer {
        Viewer {
            access_id: String::new(),
            name: "nobody".into(),
            tenants: Vec::new(),
            all_tenants: false,
            signed_in: false,
            role: Role::Analyst,
        }
    }

    fn from_row(row: AccessRow) -> Viewer {
        let role = stored_role(&row.access_id, &row.role);
        let mut tenants = row.tenants;
        // An auditor reads the console's own trail beside their tenants.
        if role == Role::Auditor && row.all_tenants == 0 {
            tenants.push(SYSTEM_TENANT.to_owned());
        }
        tenants.sort();
        tenants.dedup();
        Viewer {
            role,
            access_id: row.access_id,
            name: row.name,
            tenants,
            all_tenants: row.all_tenants != 0,
            signed_in: true,
        }
    }

    pub fn may_see(&self, tenant: &str) -> bool {
        self.all_tenants || self.tenants.iter().any(|t| t == tenant)
    }

    /// What a request really runs over: the tenant asked for if the viewer
    /// may see it; without one, every tenant for a viewer of all, or just
    /// the viewer's tenants (the only one, or `within` for several).
    /// Another tenant is refused with what they may choose.
    ///
    /// Several tenants are asked for as `a,b` (tenant ids cannot hold a
    /// comma): every one must be visible, or the request is refused.
    pub fn scope(&self, requested: Option<&str>) -> Result<Scope, ConsoleError> {
        if let Some(list) = requested.filter(|r| r.contains(',')) {
            let mut wanted: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            wanted.sort();
            wanted.dedup();
            if !wanted.iter().all(|t| self.may_see(t)) {
                return Err(ConsoleError::Forbidden(
                    self.choices("one of those tenants is not"),
                ));
            }
            return match wanted.as_slice() {
                [] => self.scope(None),
                [only] => self.scope(Some(only.as_str())),
                _ => Ok(Scope {
                    tenant: None,
                    within: wanted,
                }),
            };
        }
        match requested {
            Some(tenant) if self.may_see(tenant) => Ok(Scope {
                tenant: Some(tenant.to_owned()),
                within: Vec::new(),
            }),
            Some(_) => Err(ConsoleError::Forbidden(self.choices("that tenant is not"))),
            None if self.all_tenants => Ok(Scope::default()),
            None => match self.tenants.as_slice() {
                [] => Err(ConsoleError::Forbidden(self.choices("no tenant is"))),
                [only] => Ok(Scope {
                    tenant: Some(only.clone()),
                    within: Vec::new(),
                }),
                several => Ok(Scope {
                    tenant: None,
                    within: several.to_vec(),
                }),
            },
        }
    }

    fn choices(&self, what: &str) -> String {
        if self.tenants.is_empty() {
            format!("{what} visible to you: your access covers no tenant")
        } else {
            format!(
                "{what} visible to you; choose one of: {}",
                self.tenants.join(", ")
            )
        }
    }

    pub fn info(&self) -> ViewerInfo {
        ViewerInfo {
            name: self.name.clone(),
            tenants: self.tenants.clone(),
            all_tenants: self.all_tenants,
            signed_in: self.signed_in,
            role: self.role,
        }
    }
}

/// The role a stored grant has: no role row (a grant made before roles
/// existed) is an analyst, and so is a value this version does not know,
/// because a role that cannot be read must not grant more.
pub fn stored_role(access_id: &str, stored: &str) -> Role {
    if stored.is_empty() {
        return Role::Analyst;
    }
    stored.parse().unwrap_or_else(|error| {
        warn!(access_id, %error, "console grant with an unknown role; treated as analyst");
        Role::Analyst
    })
}

/// The tenants one request runs over: `tenant`, or without it the tenants
/// in `within` (empty: every tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub tenant: Option<String>,
    pub within: Vec<String>,
}

impl Scope {
    /// The trails an action over this scope is recorded in: each tenant it
    /// covers, or Attest's own for every tenant.
    pub fn trails(&self) -> Vec<String> {
        match (&self.tenant, self.within.as_slice()) {
            (Some(tenant), _) => vec![tenant.clone()],
            (None, []) => vec![SYSTEM_TENANT.to_owned()],
            (None, several) => several.to_vec(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot record the audit event for this change, so it was not made: {0}")]
    Record(#[from] IngestError),
    #[error("`{field}`: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("no valid console access with id {0:?}")]
    Unknown(String),
}

/// A grant as made: the full key is here and nowhere else.
pub struct NewAccess {
    pub key: String,
    pub row: AccessRow,
}

/// Granting, listing and revoking console access (`attest access`). Each
/// change is recorded, before it takes effect, in the trail of every
/// tenant it concerns (Attest's own for a grant of all tenants).
pub struct AccessAdmin {
    store: Store,
    ingest: Arc<Ingest>,
}

impl AccessAdmin {
    pub fn new(store: Store, ingest: Arc<Ingest>) -> AccessAdmin {
        AccessAdmin { store, ingest }
    }

    pub async fn grant(
        &self,
        name: &str,
        tenants: &[String],
        all_tenants: bool,
        role: Role,
        by: &str,
    ) -> Result<NewAccess, AccessAdminError> {
        let invalid = |field, problem: String| AccessAdminError::Invalid { field, problem };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_ID || name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                format!("must be 1 to {MAX_ID} characters without control characters"),
            ));
        }
        if all_tenants != tenants.is_empty() {
            return Err(invalid(
                "tenant",
                "name at least one tenant, or grant all tenants, not both".into(),
            ));
        }
        for tenant in tenants {
            if let Some(problem) = identifier(tenant, MAX_ID) {
                return Err(invalid("tenant", format!("{tenant:?}: {problem}")));
            }
        }
        let mut tenants = tenants.to_vec();
        tenants.sort();
        tenants.dedup();
        let minted = mint(PREFIX);
        let row = AccessRow {
            access_id: minted.id,
            name: name.to_owned(),
            tenants,
            all_tenants: u8::from(all_tenants),
            secret_sha256: minted.secret_sha256,
            created_at: (now_ms() / 1000) as u32,
            revoked_at: 0,
            role: role.as_str().to_owned(),
        };
        self.record(&row, "console_access.grant", by).await?;
        // The role first: should the grant's own row then fail, the role
        // row names an access id that signs no one in.
        let version = u64::try_from(now_ms()).unwrap_or_default();
        self.store
            .put_console_role(&row.access_id, &row.role, version)
            .await?;
        self.store.put_console_access(&row, version).await?;
        info!(access_id = %row.access_id, name, %role, "console access granted");
        Ok(NewAccess {
            key: minted.key,
            row,
        })
    }

    pub async fn list(&self) -> Result<Vec<AccessRow>, AccessAdminError> {
        Ok(self.store.console_access().await?)
    }

    pub async fn revoke(&self, access_id: &str, by: &str) -> Result<AccessRow, AccessAdminError> {
        let mut row = self
            .store
            .console_access_by_id(access_id)
            .await?
            .filter(|a| a.revoked_at == 0)
            .ok_or_else(|| AccessAdminError::Unknown(access_id.to_owned()))?;
        row.revoked_at = (now_ms() / 1000) as u32;
        self.record(&row, "console_access.revoke", by).await?;
        self.store.put_console_access(&row, now_ms() as u64).await?;
        info!(access_id, "console access revoked");
        Ok(row)
    }

    async fn record(
        &self,
        row: &AccessRow,
        action: &str,
        by: &str,
    ) -> Result<(), AccessAdminError> {
        let role = stored_role(&row.access_id, &row.role);
        let mut trails: Vec<&str> = if row.all_tenants != 0 {
            vec![SYSTEM_TENANT]
        } else {
            row.tenants.iter().map(String::as_str).collect()
        };
        // An admin sees Attest itself, beyond any tenant, and an auditor
        // reads its trail: Attest's own trail records that too.
        if matches!(role, Role::Admin | Role::Auditor) && !trails.contains(&SYSTEM_TENANT) {
            trails.push(SYSTEM_TENANT);
        }
        let scope = if row.all_tenants != 0 {
            "*".to_owned()
        } else {
            row.tenants.join(",")
        };
        let events = trails
            .into_iter()
            .map(|tenant| {
                internal_event(
                    tenant,
                    Category::PermissionChange,
                    action,
                    Outcome::Success,
                    Resource {
                        kind: "console_access".into(),
                        id: row.access_id.clone(),
                    },
                    by,
                    BTreeMap::from([
                        ("name".to_owned(), row.name.clone()),
                        ("tenants".to_owned(), scope.clone()),
                        ("role".to_owned(), role.as_str().to_owned()),
                    ]),
                )
            })
            .collect();
        for result in self.ingest.record_all(events).await {
            result?;
        }
        Ok(())
    }
}

/// The store as one viewer may use it: every call narrowed to their
/// tenants before it reaches ClickHouse.
pub struct ScopedStore {
    store: Store,
    viewer: Viewer,
    /// Where searches, event views and saved-search changes are recorded;
    /// `None` when the console runs without sign-in (no one to record, as
    /// for exports in that mode).
    reads: Option<ReadLog>,
    /// The viewer's turns at ClickHouse (`turns.rs`); `None` lets every
    /// read run at once.
    turns: Option<ViewerTurns>,
}

impl ScopedStore {
    pub fn new(store: Store, viewer: Viewer) -> ScopedStore {
        ScopedStore {
            store,
            viewer,
            reads: None,
            turns: None,
        }
    }

    /// Records this viewer's reads in `reads`.
    pub fn recording(self, reads: Option<ReadLog>) -> ScopedStore {
        ScopedStore { reads, ..self }
    }

    /// Runs this viewer's scans of the events a few at a time
    /// (`console.reads_at_once`), shared with their other requests.
    pub fn taking_turns(self, turns: &ReadTurns) -> ScopedStore {
        let turns = Some(turns.of(&self.viewer.access_id));
        ScopedStore { turns, ..self }
    }

    /// Waits for this viewer's turn; the scan runs while it is held.
    async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match &self.turns {
            Some(turns) => turns.take().await,
            None => None,
        }
    }

    /// Narrows `query` to the viewer's tenants, then runs `scan` with it
    /// in the viewer's turn: the shape of every read of the events that
    /// is not recorded.
    async fn scan<'a, T, F, R>(&'a self, query: &SearchQuery, scan: F) -> Result<T, ConsoleError>
    where
        F: FnOnce(&'a Store, SearchQuery) -> R,
        R: Future<Output = Result<T, ConsoleError>>,
    {
        let scoped = self.query(query)?;
        let _turn = self.turn().await;
        scan(&self.store, scoped).await
    }

    fn note(&self, read: impl FnOnce() -> Read) {
        if let Some(reads) = &self.reads {
            reads.note(read());
        }
    }

    /// A live tail opened over `query`: recorded as one search run (its
    /// polls are the same search), or refused like a search.
    pub fn note_tail(&self, query: &SearchQuery) -> Result<(), ConsoleError> {
        let scoped = self.query(query)?;
        self.note(|| {
            Read::search(
                &self.viewer,
                &scoped.q,
                &scoped.tenants(),
                format!("tail, {}", window_text(scoped.window)),
                false,
            )
        });
        Ok(())
    }

    /// Auditors change nothing: every write below answers 403 for them.
    fn writable(&self) -> Result<(), ConsoleError> {
        require_writer(&self.viewer).map_err(|refused| ConsoleError::Forbidden(refused.to_string()))
    }

    fn query(&self, query: &SearchQuery) -> Result<SearchQuery, ConsoleError> {
        let Scope { tenant, within } = self.viewer.scope(query.tenant.as_deref())?;
        Ok(SearchQuery {
            tenant,
            within,
            ..query.clone()
        })
    }

    fn filter(&self, filter: &EventFilter) -> Result<EventFilter, ConsoleError> {
        let Scope { tenant, within } = self.viewer.scope(filter.tenant.as_deref())?;
        Ok(EventFilter {
            tenant,
            within,
            ..filter.clone()
        })
    }

    /// A saved search is visible when the tenant it searches is, or when it
    /// names none (it then runs over what the viewer may see).
    fn visible(&self, params: &SearchParams) -> bool {
        params
            .tenant
            .as_deref()
            .is_none_or(|tenant| self.viewer.may_see(tenant))
    }
}

#[async_trait::async_trait]
impl EventStore for ScopedStore {
    async fn activity(&self, filter: &EventFilter, now_ms: i64) -> Result<Activity, ConsoleError> {
        let scoped = self.filter(filter)?;
        let _turn = self.turn().await;
        EventStore::activity(&self.store, &scoped, now_ms).await
    }

    async fn tenants(&self) -> Result<Vec<String>, ConsoleError> {
        if self.viewer.all_tenants {
            EventStore::tenants(&self.store).await
        } else {
            // Their tenants whether or not events arrived yet: the list is
            // what they may choose, not what the table holds.
            Ok(self.viewer.tenants.clone())
        }
    }

    /// A search run is recorded with what it found (only this one: the
    /// facets, counts and charts beside it are the same search).
    async fn search(&self, query: &SearchQuery, now_ms: i64) -> Result<SearchPage, ConsoleError> {
        let scoped = self.query(query)?;
        let turn = self.turn().await;
        let page = EventStore::search(&self.store, &scoped, now_ms).await?;
        drop(turn);
        self.note(|| {
            Read::search(
                &self.viewer,
                &scoped.q,
                &scoped.tenants(),
                window_text(scoped.window),
                scoped.cursor.is_some(),
            )
            .with_results(
                page.hits.len(),
                page.next_cursor.is_some(),
                page.from_ms,
                page.to_ms,
            )
        });
        Ok(page)
    }

    async fn newer_events(
        &self,
        query: &SearchQuery,
        snapshot_ms: i64,
        now_ms: i64,
    ) -> Result<u64, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::newer_events(store, &q, snapshot_ms, now_ms).await
        })
        .await
    }

    async fn facets(&self, query: &SearchQuery, now_ms: i64) -> Result<Facets, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::facets(store, &q, now_ms).await
        })
        .await
    }

    async fn metadata_values(
        &self,
        query: &SearchQuery,
        key: &str,
        now_ms: i64,
    ) -> Result<app::search_model::MetadataValues, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::metadata_values(store, &q, key, now_ms).await
        })
        .await
    }

    /// Narrowed like facets: the tenant asked for if the viewer may see it,
    /// else exactly the viewer's tenants (every tenant only for a grant of
    /// all). The store caches per exact tenant list, so no viewer is
    /// answered from another scope's entry.
    async fn recent_metadata_keys(
        &self,
        tenant: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<app::search_model::MetadataKey>, ConsoleError> {
        let Scope { tenant, within } = self.viewer.scope(tenant)?;
        let tenants = match tenant {
            Some(one) => vec![one],
            None => within,
        };
        // A turn only if the keys are read: an answer from the store's
        // cache does not scan.
        self.store
            .recent_metadata_keys(&tenants, now_ms, self.turn())
            .await
    }

    /// Narrowed like a search, on every poll of the stream; the stream
    /// ends after a few minutes and the browser's reconnect passes the
    /// session check again, so a narrowed grant narrows the tail too.
    async fn tail(
        &self,
        query: &SearchQuery,
        position: &app::tail::TailPosition,
        delivered: &app::tail::Delivered,
        now_ms: i64,
    ) -> Result<app::tail::TailBatch, ConsoleError> {
        EventStore::tail(
            &self.store,
            &self.query(query)?,
            position,
            delivered,
            now_ms,
        )
        .await
    }

    async fn time_series(
        &self,
        query: &SearchQuery,
        by: SeriesBy,
        now_ms: i64,
    ) -> Result<TimeSeries, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::time_series(store, &q, by, now_ms).await
        })
        .await
    }

    async fn count_by(
        &self,
        query: &SearchQuery,
        field: app::search_model::CountField,
        now_ms: i64,
    ) -> Result<app::search_model::CountBy, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::count_by(store, &q, field, now_ms).await
        })
        .await
    }

    async fn timeline(
        &self,
        query: &SearchQuery,
        tz: &str,
        now_ms: i64,
    ) -> Result<Timeline, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::timeline(store, &q, tz, now_ms).await
        })
        .await
    }

    async fn top_actors(
        &self,
        query: &SearchQuery,
        now_ms: i64,
    ) -> Result<TopActors, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::top_actors(store, &q, now_ms).await
        })
        .await
    }

    async fn dashboard_panel(
        &self,
        query: &SearchQuery,
        panel: Panel,
        tz: &str,
        now_ms: i64,
    ) -> Result<PanelData, ConsoleError> {
        self.scan(query, |store, q| async move {
            EventStore::dashboard_panel(store, &q, panel, tz, now_ms).await
        })
        .await
    }

    async fn event_detail(
        &self,
        tenant: &str,
        event_id: &str,
        at_ms: Option<i64>,
        content: Option<&str>,
    ) -> Result<Option<EventDetail>, ConsoleError> {
        // Another tenant's event is answered like a missing one, so ids
        // cannot be probed across tenants.
        let detail = if self.viewer.may_see(tenant) {
            EventStore::event_detail(&self.store, tenant, event_id, at_ms, content).await?
        } else {
            None
        };
        self.note(|| Read::event_view(&self.viewer, tenant, event_id, content, detail.is_some()));
        Ok(detail)
    }

    /// The viewer's own saved searches, and of those only the ones whose
    /// tenant the viewer may still see (a grant can be narrowed later).
    async fn saved_searches(&self) -> Result<Vec<SavedSearch>, ConsoleError> {
        let own = self.store.saved_searches(&self.viewer.access_id).await?;
        Ok(own
            .into_iter()
            .filter(|s| self.visible(&s.params))
            .collect())
    }

    async fn save_search(
        &self,
        name: &str,
        params: &SearchParams,
        now_ms: i64,
    ) -> Result<SavedSearch, ConsoleError> {
        self.writable()?;
        if !self.visible(params) {
            return Err(ConsoleError::Forbidden(
                self.viewer.choices("that tenant is not"),
            ));
        }
        let saved = self
            .store
            .save_search(&self.viewer.access_id, name, params, now_ms)
            .await?;
        self.note(|| {
            let details = BTreeMap::from([
                ("name".to_owned(), saved.name.clone()),
                ("search".to_owned(), saved.params.query_string()),
            ]);
            Read::saved_search(&self.viewer, "saved_search.create", &saved.id, details)
        });
        Ok(saved)
    }

    async fn delete_saved_search(&self, id: &str) -> Result<(), ConsoleError> {
        self.writable()?;
        self.store
            .delete_saved_search(&self.viewer.access_id, id)
            .await?;
        self.note(|| Read::saved_search(&self.viewer, "saved_search.delete", id, BTreeMap::new()));
        Ok(())
    }
}

/// A search's window as the viewer asked for it, so that two runs of the
/// same relative search read as the same search.
fn window_text(window: TimeWindow) -> String {
    match window {
        TimeWindow::Last(range) => format!("last {}", range.param()),
        TimeWindow::Since { from_ms } => format!("since {from_ms}"),
        TimeWindow::Between { from_ms, to_ms } => format!("{from_ms}..{to_ms}"),
        TimeWindow::Relative { from, to: Some(to) } => format!("{from}..{to}"),
        TimeWindow::Relative { from, to: None } => format!("since {from}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(tenants: &[&str], all: bool) -> Viewer {
        Viewer {
            access_id: "0123456789abcdef".into(),
            name: "alice".into(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            all_tenants: all,
            signed_in: true,
            role: Role::Analyst,
        }
    }

    fn one(tenant: &str) -> Scope {
        Scope {
            tenant: Some(tenant.into()),
            within: Vec::new(),
        }
    }

    #[test]
    fn scope_narrows_to_what_the_viewer_may_see() {
        let single = viewer(&["acme"], false);
        assert_eq!(single.scope(Some("acme")).unwrap(), one("acme"));
        assert_eq!(single.scope(None).unwrap(), one("acme"));
        let refused = single.scope(Some("globex")).unwrap_err().to_string();
        assert!(refused.contains("choose one of: acme"), "{refused}");

        let two = viewer(&["acme", "globex"], false);
        assert_eq!(two.scope(Some("globex")).unwrap(), one("globex"));
        let both = two.scope(None).unwrap();
        assert_eq!(both.tenant, None);
        assert_eq!(both.within, ["acme", "globex"]);
        assert_eq!(both.trails(), ["acme", "globex"]);
        let refused = two.scope(Some("initech")).unwrap_err().to_string();
        assert!(refused.contains("acme, globex"), "{refused}");

        let all = viewer(&[], true);
        assert_eq!(all.scope(None).unwrap(), Scope::default());
        assert_eq!(all.scope(None).unwrap().trails(), [SYSTEM_TENANT]);
        assert_eq!(all.scope(Some("any")).unwrap(), one("any"));

        // Several at once: each must be theirs.
        let three = viewer(&["acme", "globex", "initech"], false);
        let two_of = three.scope(Some("initech, acme")).unwrap();
        assert_eq!(two_of.tenant, None);
        assert_eq!(two_of.within, ["acme", "initech"]);
        assert_eq!(three.scope(Some("acme,")).unwrap(), one("acme"));
        assert!(two.scope(Some("acme,initech")).is_err());
        assert_eq!(all.scope(Some("b,a")).unwrap().within, ["a", "b"]);

        let nobody = Viewer::nobody();
        assert!(nobody.scope(None).is_err());
        assert!(nobody.scope(Some("acme")).is_err());
        assert!(!nobody.may_see("acme"));
    }

    #[test]
    fn a_stored_role_that_cannot_be_read_is_an_analyst() {
        assert_eq!(stored_role("a", ""), Role::Analyst);
        assert_eq!(stored_role("a", "analyst"), Role::Analyst);
        assert_eq!(stored_role("a", "admin"), Role::Admin);
        assert_eq!(stored_role("a", "superuser"), Role::Analyst);
        assert_eq!(stored_role("a", "ADMIN"), Role::Analyst);
        assert_eq!(Viewer::nobody().role, Role::Analyst);
        assert_eq!(Viewer::unrestricted().role, Role::Admin);
    }

    #[test]
    fn an_auditor_reads_attest_s_own_trail_beside_their_tenants() {
        let row = |role: &str, tenants: &[&str], all: bool| AccessRow {
            access_id: "0123456789abcdef".into(),
            name: "audit".into(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            all_tenants: u8::from(all),
            secret_sha256: String::new(),
            created_at: 0,
            revoked_at: 0,
            role: role.into(),
        };
        let auditor = Viewer::from_row(row("auditor", &["globex"], false));
        assert_eq!(auditor.tenants, [SYSTEM_TENANT, "globex"]);
        assert!(auditor.may_see(SYSTEM_TENANT) && !auditor.may_see("acme"));
        assert_eq!(auditor.role, Role::Auditor);
        let everything = Viewer::from_row(row("auditor", &[], true));
        assert!(everything.tenants.is_empty() && everything.may_see(SYSTEM_TENANT));
        let analyst = Viewer::from_row(row("analyst", &["globex"], false));
        assert!(!analyst.may_see(SYSTEM_TENANT));
        assert_eq!(stored_role("a", "auditor"), Role::Auditor);
    }
}
