//! Console access records (`attest_console_access`, migration 0008). The
//! table holds hashes only; see `crate::access` for how keys are made and
//! how a signed-in viewer is scoped.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{QueryTemplate, Store, StoreError};

const COLUMNS: &str =
    "access_id, name, tenants, all_tenants, secret_sha256, created_at, revoked_at";

fn all_access_sql() -> String {
    format!("SELECT {COLUMNS} FROM attest_console_access FINAL ORDER BY created_at, access_id")
}

fn access_by_id_sql() -> String {
    format!("SELECT {COLUMNS} FROM attest_console_access FINAL WHERE access_id = ? LIMIT 1")
}

const INSERT_ACCESS_SQL: &str = "INSERT INTO attest_console_access \
     (access_id, name, tenants, all_tenants, secret_sha256, created_at, revoked_at, version) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

/// The latest version of one console access grant.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct AccessRow {
    pub access_id: String,
    /// Who holds it (a person or a team), shown in the console and
    /// recorded as the actor of what they do there.
    pub name: String,
    /// Tenants whose events it may see; ignored when `all_tenants` is 1.
    pub tenants: Vec<String>,
    pub all_tenants: u8,
    /// Hex SHA-256 of the secret part of the key.
    pub secret_sha256: String,
    /// Epoch seconds.
    pub created_at: u32,
    /// Epoch seconds; 0 while the grant is valid.
    pub revoked_at: u32,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    vec![
        QueryTemplate {
            name: "console_access".into(),
            sql: all_access_sql(),
            params: &[],
        },
        QueryTemplate {
            name: "console_access_by_id".into(),
            sql: access_by_id_sql(),
            params: &["access_id"],
        },
    ]
}

impl Store {
    pub async fn console_access(&self) -> Result<Vec<AccessRow>, StoreError> {
        Ok(self.client.query(&all_access_sql()).fetch_all().await?)
    }

    pub async fn console_access_by_id(
        &self,
        access_id: &str,
    ) -> Result<Option<AccessRow>, StoreError> {
        Ok(self
            .client
            .query(&access_by_id_sql())
            .bind(access_id)
            .fetch_optional()
            .await?)
    }

    /// Stores a new version of a grant; the highest `version` wins.
    pub async fn put_console_access(
        &self,
        access: &AccessRow,
        version: u64,
    ) -> Result<(), StoreError> {
        self.client
            .query(INSERT_ACCESS_SQL)
            .bind(&access.access_id)
            .bind(&access.name)
            .bind(&access.tenants)
            .bind(access.all_tenants)
            .bind(&access.secret_sha256)
            .bind(access.created_at)
            .bind(access.revoked_at)
            .bind(version)
            .execute()
            .await?;
        Ok(())
    }
}
