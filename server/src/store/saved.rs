//! Saved searches (`attest_saved_searches`, migration 0007): a name and
//! the Search page's parameters, as JSON. Version 1 of an id is the save,
//! version 2 its deletion; reads take each id's newest version.

use app::search_model::SavedSearch;
use app::search_state::SearchParams;
use app::store::StoreError as ConsoleError;
use tracing::{error, warn};

use super::queries::QueryTemplate;
use super::Store;

/// How many saved searches the page lists.
const MAX_LISTED: u32 = 500;

const SAVED_VERSION: u64 = 1;
const DELETED_VERSION: u64 = 2;

pub(crate) const INSERT_SQL: &str = "INSERT INTO attest_saved_searches \
     (search_id, name, params, created_at, deleted, version) VALUES (?, ?, ?, ?, ?, ?)";

pub(crate) const LIST_SQL: &str = "SELECT search_id, argMax(name, version) AS name, \
     argMax(params, version) AS params, min(created_at) AS created_at \
     FROM attest_saved_searches GROUP BY search_id \
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
    pub async fn saved_searches(&self) -> Result<Vec<SavedSearch>, ConsoleError> {
        let rows: Vec<SavedRow> = self
            .client
            .query(LIST_SQL)
            .bind(MAX_LISTED)
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

    /// Stores the search from its newest page: a saved cursor would pin an
    /// old snapshot forever.
    pub async fn save_search(
        &self,
        name: &str,
        params: &SearchParams,
        now_ms: i64,
    ) -> Result<SavedSearch, ConsoleError> {
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

    pub async fn delete_saved_search(&self, id: &str) -> Result<(), ConsoleError> {
        self.client
            .query(INSERT_SQL)
            .bind(id)
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
            params: &["limit"],
        },
    ]
}
