//! Console access records (`attest_console_access`, migration 0008). The
//! table holds hashes only; see `crate::access` for how keys are made and
//! how a signed-in viewer is scoped.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::{QueryTemplate, Store, StoreError};

const COLUMNS: &str =
    "access_id, name, tenants, all_tenants, secret_sha256, created_at, revoked_at";

/// Every grant with its role. The role lives in its own table (migration
/// 0014); a grant without a role row reads '' there, which is an analyst.
/// `ANY LEFT JOIN … USING` with aliased subqueries is how 18.16 and the
/// current ClickHouse (which requires the aliases) both join; each side is
/// reduced to its latest version first.
fn access_sql(filter: &str) -> String {
    format!(
        "SELECT {COLUMNS}, role FROM \
         (SELECT {COLUMNS} FROM attest_console_access FINAL {filter}) AS grants \
         ANY LEFT JOIN \
         (SELECT access_id, argMax(role, version) AS role FROM attest_console_roles \
          GROUP BY access_id) AS roles \
         USING access_id"
    )
}

fn all_access_sql() -> String {
    format!("{} ORDER BY created_at, access_id", access_sql(""))
}

fn access_by_id_sql() -> String {
    format!("{} LIMIT 1", access_sql("WHERE access_id = ?"))
}

const INSERT_ACCESS_SQL: &str = "INSERT INTO attest_console_access \
     (access_id, name, tenants, all_tenants, secret_sha256, created_at, revoked_at, version) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

const INSERT_ROLE_SQL: &str =
    "INSERT INTO attest_console_roles (access_id, role, version) VALUES (?, ?, ?)";

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
    /// `admin`, `analyst` or `auditor`; empty (no role row) and anything unknown are
    /// read as analyst by `crate::access`.
    pub role: String,
}

const SIGNED_OUT_SQL: &str =
    "SELECT DISTINCT session_id FROM attest_console_sign_outs WHERE expires_at > ?";

const INSERT_SIGN_OUT_SQL: &str = "INSERT INTO attest_console_sign_outs \
     (session_id, access_id, signed_out_at, expires_at) VALUES (?, ?, ?, ?)";

/// A console session ended by its owner before it expired.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct SignOutRow {
    pub session_id: String,
    pub access_id: String,
    /// Epoch milliseconds.
    pub signed_out_at: i64,
    /// When the session would have expired (epoch ms); after that the row
    /// is no longer read.
    pub expires_at: i64,
}

pub(crate) fn templates() -> Vec<QueryTemplate> {
    vec![
        QueryTemplate {
            name: "console_signed_out_sessions".into(),
            sql: SIGNED_OUT_SQL.into(),
            params: &["now_ms"],
        },
        QueryTemplate {
            name: "console_sign_out".into(),
            sql: INSERT_SIGN_OUT_SQL.into(),
            params: &["session_id", "access_id", "signed_out_at", "expires_at"],
        },
        QueryTemplate {
            name: "console_role".into(),
            sql: INSERT_ROLE_SQL.into(),
            params: &["access_id", "role", "version"],
        },
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

    /// Session ids signed out whose session has not expired at `now_ms`.
    pub async fn signed_out_sessions(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .client
            .query(SIGNED_OUT_SQL)
            .bind(now_ms)
            .fetch_all::<String>()
            .await?)
    }

    pub async fn record_sign_out(&self, row: &SignOutRow) -> Result<(), StoreError> {
        self.client
            .query(INSERT_SIGN_OUT_SQL)
            .bind(&row.session_id)
            .bind(&row.access_id)
            .bind(row.signed_out_at)
            .bind(row.expires_at)
            .execute()
            .await?;
        Ok(())
    }

    /// Stores a grant's role; the highest `version` wins.
    pub async fn put_console_role(
        &self,
        access_id: &str,
        role: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        self.client
            .query(INSERT_ROLE_SQL)
            .bind(access_id)
            .bind(role)
            .bind(version)
            .execute()
            .await?;
        Ok(())
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
