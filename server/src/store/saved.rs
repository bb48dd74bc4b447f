//! Saved searches (`attest_saved_searches_owned`, migration 0013): a
//! name and the Search page's parameters, as JSON, owned by the console
//! access grant that saved them. Version 1 of an id is the save, version 2
//! its deletion; reads take each id's newest version, of one owner only.

use app::search_model::{QueryLimit, SavedSearch};
use app::search_state::SearchParams;
use app::store::StoreError as ConsoleError;
use tracing::{error, warn};

use super::queries::QueryTemplate;
use super::Store;

/// How many saved searches one access grant may keep (and the page lists).
pub const MAX_PER_OWNER: u32 = 100;

const SAVED_VERSION: u64 = 1;
const DELETED_VERSION: u64 = 2;

pub(crate) const INSERT_SQL: &str = "INSERT INTO attest_saved_searches_owned \
     (search_id, owner, name, params, created_at, deleted, version) \
     VALUES (?, ?, ?, ?, ?, ?, ?)";

/// The owner is filtered before grouping, so the limit counts only the
/// owner's own searches.
pub(crate) const LIST_SQL: &str = "SELECT search_id, argMax(name, version) AS name, \
     argMax(params, version) AS params, min(created_at) AS created_at \
     FROM attest_saved_searches_owned WHERE owner = ? GROUP BY search_id \
     HAVING argMax(deleted, version) = 0 \
     ORDER BY name, search_id LIMIT ?";

#[derive(clickhouse::Row, serde::Deserialize)]
struct SavedRow {
    search_id: String,
    name: String,
    params: String,
    created_at: u32,
}

fn unavailable(error: impl std::fmt::Display) -> ConsoleError {
    error!(%error, "saved searches query failed");
    ConsoleError::Unavailable(error.to_string())
}

impl Store {
    /// The saved searches of one owner (a console access id).
    pub async fn saved_searches(&self, owner: &str) -> Result<Vec<SavedSearch>, ConsoleError> {
        let rows: Vec<SavedRow> = self
            .client
            .query(LIST_SQL)
            .bind(owner)
            .bind(MAX_PER_OWNER)
            .fetch_all()
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(
                |row| match serde_json::from_str::<SearchParams>(&row.params) {
                    Ok(params) => Some(SavedSearch {
                        id: row.search_id,
                        name: row.name,
                        params,
                        created_at: row.created_at,
                    }),
                    // A row this version cannot read stays stored, unlisted.
                    Err(error) => {
                        warn!(id = %row.search_id, %error, "saved search not readable");
                        None
                    }
                },
            )
            .collect())
    }

    /// Stores the search from its newest page (a saved cursor would pin an
    /// old snapshot forever), unless the owner already keeps the most
    /// allowed.
    pub async fn save_search(
        &self,
        owner: &str,
        name: &str,
        params: &SearchParams,
        now_ms: i64,
    ) -> Result<SavedSearch, ConsoleError> {
        if self.saved_searches(owner).await?.len() >= MAX_PER_OWNER as usize {
            return Err(ConsoleError::Limit(QueryLimit::SavedSearches {
                max: MAX_PER_OWNER,
            }));
        }
        let saved = SavedSearch {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            params: params.first_page(),
            created_at: u32::try_from(now_ms.div_euclid(1000)).unwrap_or(u32::MAX),
        };
        let json = serde_json::to_string(&saved.params).map_err(unavailable)?;
        self.client
            .query(INSERT_SQL)
            .bind(&saved.id)
            .bind(owner)
            .bind(&saved.name)
            .bind(json)
            .bind(saved.created_at)
            .bind(0u8)
            .bind(SAVED_VERSION)
            .execute()
            .await
            .map_err(unavailable)?;
        Ok(saved)
    }

    /// Deletes one of the owner's saved searches; another owner's, or an id
    /// that does not exist, is refused (the two look the same).
    pub async fn delete_saved_search(&self, owner: &str, id: &str) -> Result<(), ConsoleError> {
        if !self.saved_searches(owner).await?.iter().any(|s| s.id == id) {
            return Err(ConsoleError::Forbidden(
                "no saved search with that id is yours to delete".into(),
            ));
        }
        self.client
            .query(INSERT_SQL)
            .bind(id)
            .bind(owner)
            .bind("")
            .bind("")
            .bind(0u32)
            .bind(1u8)
            .bind(DELETED_VERSION)
            .execute()
            .await
            .map_err(unavailable)
    }
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    vec![
        QueryTemplate {
            name: "saved_search_insert".into(),
            sql: INSERT_SQL.to_owned(),
            params: &[
                "search_id",
                "owner",
                "name",
                "params",
                "created_at",
                "deleted",
                "version",
            ],
        },
        QueryTemplate {
            name: "saved_searches".into(),
            sql: LIST_SQL.to_owned(),
            params: &["owner", "limit"],
        },
    ]
}
