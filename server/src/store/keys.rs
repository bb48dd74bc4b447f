//! API key records in ClickHouse. The table holds hashes only; see
//! `crate::keys` for how secrets are made and checked.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{QueryTemplate, Store, StoreError};

const COLUMNS: &str =
    "key_id, tenant_id, source_service, categories, secret_sha256, description, created_at, revoked_at";

fn all_keys_sql() -> String {
    format!("SELECT {COLUMNS} FROM attest_api_keys FINAL ORDER BY created_at, key_id")
}

fn key_by_id_sql() -> String {
    format!("SELECT {COLUMNS} FROM attest_api_keys FINAL WHERE key_id = ? LIMIT 1")
}

const INSERT_KEY_SQL: &str = "INSERT INTO attest_api_keys \
     (key_id, tenant_id, source_service, categories, secret_sha256, description, created_at, revoked_at, version) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The latest version of one key.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct KeyRow {
    pub key_id: String,
    pub tenant_id: String,
    pub source_service: String,
    /// Categories the key may send; empty means all.
    pub categories: Vec<String>,
    /// Hex SHA-256 of the secret part of the key.
    pub secret_sha256: String,
    pub description: String,
    /// Epoch seconds.
    pub created_at: u32,
    /// Epoch seconds; 0 while the key is valid.
    pub revoked_at: u32,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    vec![
        QueryTemplate {
            name: "api_keys".into(),
            sql: all_keys_sql(),
            params: &[],
        },
        QueryTemplate {
            name: "api_key_by_id".into(),
            sql: key_by_id_sql(),
            params: &["key_id"],
        },
    ]
}

impl Store {
    pub async fn api_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        Ok(self.client.query(&all_keys_sql()).fetch_all().await?)
    }

    pub async fn api_key(&self, key_id: &str) -> Result<Option<KeyRow>, StoreError> {
        Ok(self
            .client
            .query(&key_by_id_sql())
            .bind(key_id)
            .fetch_optional()
            .await?)
    }

    /// Stores a new version of a key; the highest `version` wins.
    pub async fn put_api_key(&self, key: &KeyRow, version: u64) -> Result<(), StoreError> {
        self.client
            .query(INSERT_KEY_SQL)
            .bind(&key.key_id)
            .bind(&key.tenant_id)
            .bind(&key.source_service)
            .bind(&key.categories)
            .bind(&key.secret_sha256)
            .bind(&key.description)
            .bind(key.created_at)
            .bind(key.revoked_at)
            .bind(version)
            .execute()
            .await?;
        Ok(())
    }
}
