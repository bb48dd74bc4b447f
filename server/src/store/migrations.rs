//! Versioned, idempotent schema migrations, applied at start-up and recorded
//! in `attest_schema_migrations`. A migration may require a minimum server
//! version (`-- requires: 20.1` on its first line): on an older server it is
//! skipped, not recorded, and applies once the server is upgraded.
//! Processes sharing a database take turns (`migration_lock`).

use std::time::Duration;

use clickhouse::Client;
use tracing::{info, warn};

use super::migration_lock::MigrationLock;
use super::StoreError;

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "audit_events",
        sql: include_str!("../../migrations/0001_audit_events.sql"),
    },
    Migration {
        version: 2,
        name: "actor_index",
        sql: include_str!("../../migrations/0002_actor_index.sql"),
    },
    Migration {
        version: 3,
        name: "modern_types",
        sql: include_str!("../../migrations/0003_modern_types.sql"),
    },
    Migration {
        version: 4,
        name: "rollups",
        sql: include_str!("../../migrations/0004_rollups.sql"),
    },
    Migration {
        version: 5,
        name: "legal_holds",
        sql: include_str!("../../migrations/0005_legal_holds.sql"),
    },
    Migration {
        version: 6,
        name: "api_keys",
        sql: include_str!("../../migrations/0006_api_keys.sql"),
    },
    Migration {
        version: 7,
        name: "saved_searches",
        sql: include_str!("../../migrations/0007_saved_searches.sql"),
    },
    Migration {
        version: 8,
        name: "console_access",
        sql: include_str!("../../migrations/0008_console_access.sql"),
    },
    Migration {
        version: 9,
        name: "event_identity",
        sql: include_str!("../../migrations/0009_event_identity.sql"),
    },
    // 0009 rebuilt the events table from the portable core, so the
    // version-gated extras apply to it again: at once where they had
    // applied to the old table, after the upgrade where they wait.
    Migration {
        version: 10,
        name: "actor_index_after_identity",
        sql: include_str!("../../migrations/0002_actor_index.sql"),
    },
    Migration {
        version: 11,
        name: "modern_types_after_identity",
        sql: include_str!("../../migrations/0003_modern_types.sql"),
    },
    Migration {
        version: 12,
        name: "console_sign_outs",
        sql: include_str!("../../migrations/0012_console_sign_outs.sql"),
    },
    Migration {
        version: 13,
        name: "saved_search_owner",
        sql: include_str!("../../migrations/0013_saved_search_owner.sql"),
    },
    Migration {
        version: 14,
        name: "console_roles",
        sql: include_str!("../../migrations/0014_console_roles.sql"),
    },
    Migration {
        version: 15,
        name: "dead_letter_actions",
        sql: include_str!("../../migrations/0015_dead_letter_actions.sql"),
    },
    Migration {
        version: 16,
        name: "alerts",
        sql: include_str!("../../migrations/0016_alerts.sql"),
    },
    Migration {
        version: 17,
        name: "detections",
        sql: include_str!("../../migrations/0017_detections.sql"),
    },
    Migration {
        version: 18,
        name: "pipeline_trends",
        sql: include_str!("../../migrations/0018_pipeline_trends.sql"),
    },
    Migration {
        version: 19,
        name: "process_status",
        sql: include_str!("../../migrations/0019_process_status.sql"),
    },
    Migration {
        version: 20,
        name: "integrity",
        sql: include_str!("../../migrations/0020_integrity.sql"),
    },
    Migration {
        version: 21,
        name: "integrity_leaf_sets",
        sql: include_str!("../../migrations/0021_integrity_leaf_sets.sql"),
    },
    Migration {
        version: 22,
        name: "redactions",
        sql: include_str!("../../migrations/0022_redactions.sql"),
    },
    Migration {
        version: 23,
        name: "integrity_leaf_recorded",
        sql: include_str!("../../migrations/0023_integrity_leaf_recorded.sql"),
    },
    Migration {
        version: 24,
        name: "retention_records",
        sql: include_str!("../../migrations/0024_retention_records.sql"),
    },
    Migration {
        version: 25,
        name: "integrity_checkpoints",
        sql: include_str!("../../migrations/0025_integrity_checkpoints.sql"),
    },
    Migration {
        version: 26,
        name: "redaction_approvals",
        sql: include_str!("../../migrations/0026_redaction_approvals.sql"),
    },
    Migration {
        version: 27,
        name: "content_hash_from_the_writer",
        sql: include_str!("../../migrations/0027_content_hash_from_the_writer.sql"),
    },
    Migration {
        version: 28,
        name: "tenant_list",
        sql: include_str!("../../migrations/0028_tenant_list.sql"),
    },
];

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS attest_schema_migrations \
     (version UInt32, name String, applied_at DateTime) \
     ENGINE = MergeTree() ORDER BY version";

impl Migration {
    /// The `(major, minor)` from a `-- requires: X.Y` first line.
    pub fn requires(&self) -> Option<(u32, u32)> {
        let first = self.sql.lines().next()?;
        let spec = first.strip_prefix("-- requires:")?.trim();
        parse_version(spec)
    }

    /// `(table, column)` from a `-- done-when-column: TABLE.COLUMN` line: a
    /// rebuild whose result is already there (another process just ran it)
    /// is recorded, not run again over the rebuilt table.
    pub fn done_when_column(&self) -> Option<(&'static str, &'static str)> {
        self.sql
            .lines()
            .find_map(|line| line.strip_prefix("-- done-when-column:"))
            .and_then(|spec| spec.trim().split_once('.'))
    }

    /// `(table, old)` of each swap `RENAME TABLE table TO old, new TO table`.
    pub fn swaps(&self) -> Vec<(String, String)> {
        self.statements()
            .iter()
            .filter_map(|s| {
                let pairs = s.strip_prefix("RENAME TABLE ")?;
                let (first, second) = pairs.split_once(',')?;
                let (table, old) = first.trim().split_once(" TO ")?;
                let (_, back) = second.trim().split_once(" TO ")?;
                (back.trim() == table.trim())
                    .then(|| (table.trim().to_owned(), old.trim().to_owned()))
            })
            .collect()
    }

    /// Statements without comments; the HTTP interface runs one per request.
    pub fn statements(&self) -> Vec<String> {
        let without_comments: String = self
            .sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        without_comments
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `"24.8.4.13"` → `(24, 8)`.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// How long a migrating process may stay silent before another takes its
/// lock over: well above a heartbeat interval (a quarter of it), short
/// enough that a crashed deployment is not held up for long.
const LOCK_LEASE: Duration = Duration::from_secs(60);

/// Applies the pending migrations, one process at a time.
pub async fn apply(client: &Client, server_version: (u32, u32)) -> Result<(), StoreError> {
    let lock = MigrationLock::acquire(client, LOCK_LEASE).await?;
    apply_locked(client, server_version).await?;
    lock.release().await
}

async fn apply_locked(client: &Client, server_version: (u32, u32)) -> Result<(), StoreError> {
    client.query(LEDGER).execute().await?;
    let applied: Vec<u32> = client
        .query("SELECT DISTINCT version FROM attest_schema_migrations")
        .fetch_all()
        .await?;
    for m in MIGRATIONS {
        if applied.contains(&m.version) {
            continue;
        }
        if let Some(required) = m.requires() {
            if server_version < required {
                info!(
                    migration = m.name,
                    required = %format!("{}.{}", required.0, required.1),
                    "migration skipped on this ClickHouse version"
                );
                continue;
            }
        }
        // Another process may have applied it meanwhile (two start at once).
        let again: Vec<u32> = client
            .query("SELECT DISTINCT version FROM attest_schema_migrations WHERE version = ?")
            .bind(m.version)
            .fetch_all()
            .await?;
        if !again.is_empty() {
            continue;
        }
        repair_interrupted_swaps(client, m).await?;
        let done = match m.done_when_column() {
            Some((table, column)) => {
                let found: Vec<String> = client
                    .query(
                        "SELECT name FROM system.columns \
                         WHERE database = currentDatabase() AND table = ? AND name = ?",
                    )
                    .bind(table)
                    .bind(column)
                    .fetch_all()
                    .await?;
                !found.is_empty()
            }
            None => false,
        };
        if done {
            info!(
                migration = m.name,
                "migration's result is already in place; recording it"
            );
        } else {
            for statement in m.statements() {
                client.query(&statement).execute().await?;
            }
        }
        client
            .query("INSERT INTO attest_schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
            .bind(m.version)
            .bind(m.name)
            .execute()
            .await?;
        info!(version = m.version, migration = m.name, "migration applied");
    }
    Ok(())
}

/// A swap `RENAME TABLE t TO old, new TO t` is two renames on ClickHouse,
/// not one: a process that dies between them leaves no `t`, the data in
/// `old`, and a rebuild that would fail forever reading `t` (and whose first
/// step would drop `old`). Put `old` back before the rebuild runs again.
async fn repair_interrupted_swaps(client: &Client, m: &Migration) -> Result<(), StoreError> {
    for (table, old) in m.swaps() {
        if !table_exists(client, &table).await? && table_exists(client, &old).await? {
            warn!(
                migration = m.name,
                table, old, "an interrupted rebuild left the table renamed away; putting it back"
            );
            client
                .query(&format!("RENAME TABLE {old} TO {table}"))
                .execute()
                .await?;
        }
    }
    Ok(())
}

pub(crate) fn templates() -> Vec<super::QueryTemplate> {
    vec![super::QueryTemplate {
        name: "migration_table_exists".into(),
        sql: TABLE_EXISTS_SQL.into(),
        params: &["table"],
    }]
}

const TABLE_EXISTS_SQL: &str =
    "SELECT name FROM system.tables WHERE database = currentDatabase() AND name = ?";

async fn table_exists(client: &Client, table: &str) -> Result<bool, StoreError> {
    let found: Vec<String> = client
        .query(TABLE_EXISTS_SQL)
        .bind(table)
        .fetch_all()
        .await?;
    Ok(!found.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_statements_non_empty() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        for m in MIGRATIONS {
            assert!(!m.statements().is_empty(), "{}", m.name);
            for s in m.statements() {
                // A backfill into a rollup of distinct-event states is
                // idempotent by construction: re-counting an event is a no-op.
                let backfill = s.starts_with("INSERT INTO audit_") && s.contains("uniqExactState");
                // A rebuild fills and swaps in a table that the statements
                // before it dropped and created afresh.
                let rebuild = s.starts_with("INSERT INTO audit_") && s.contains("_identity_new")
                    || s.starts_with("RENAME TABLE") && s.contains("_identity_new TO");
                // Leaf sets moved over again, approvals copied again or
                // tenants listed again are the same rows of a ReplacingMergeTree, and collapse.
                let collapsing = s.starts_with("INSERT INTO attest_integrity_leaf_sets")
                    || s.starts_with("INSERT INTO attest_redaction_approvals")
                    || s.starts_with("INSERT INTO attest_tenants ");
                // A column added where 18.16 has no ADD COLUMN IF NOT
                // EXISTS: the migration names it as its done-when-column,
                // so a second run is recorded instead of run.
                let recorded = m.done_when_column().is_some_and(|(table, column)| {
                    s.split_whitespace().take(3).eq(["ALTER", "TABLE", table])
                        && s.contains(&format!("ADD COLUMN {column} "))
                });
                // A column's definition set again is the same definition.
                let redefined = s.starts_with("ALTER TABLE ") && s.contains(" MODIFY COLUMN ");
                assert!(
                    s.contains("IF NOT EXISTS")
                        || s.contains("IF EXISTS")
                        || redefined
                        || backfill
                        || rebuild
                        || collapsing
                        || recorded,
                    "{} must be idempotent: {s}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn the_identity_rebuild_swaps_three_tables() {
        let swaps = MIGRATIONS[8].swaps();
        assert_eq!(
            swaps,
            [
                "audit_events",
                "audit_counts_per_minute",
                "audit_failures_per_minute"
            ]
            .map(|t| (t.to_owned(), format!("{t}_identity_old")))
        );
        assert!(MIGRATIONS[0].swaps().is_empty());
    }

    /// Each rebuild step drops what an interrupted run left before it
    /// creates, and the old table goes only after the swap.
    #[test]
    fn identity_rebuild_is_ordered_to_survive_interruption() {
        let steps = MIGRATIONS[8].statements();
        let at = |prefix: &str| {
            steps
                .iter()
                .position(|s| s.starts_with(prefix))
                .unwrap_or_else(|| panic!("no step {prefix}"))
        };
        for table in [
            "audit_events",
            "audit_counts_per_minute",
            "audit_failures_per_minute",
        ] {
            let new = format!("{table}_identity_new");
            let old = format!("{table}_identity_old");
            let drop_new = at(&format!("DROP TABLE IF EXISTS {new}"));
            let create = at(&format!("CREATE TABLE IF NOT EXISTS {new}"));
            let fill = at(&format!("INSERT INTO {new}"));
            let swap = at(&format!("RENAME TABLE {table} TO {old}"));
            let drop_old: Vec<usize> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| *s == &format!("DROP TABLE IF EXISTS {old}"))
                .map(|(i, _)| i)
                .collect();
            assert!(drop_new < create && create < fill && fill < swap, "{table}");
            assert_eq!(drop_old.len(), 2, "{table}");
            assert!(drop_old[0] < swap && swap < drop_old[1], "{table}");
        }
        // The views are gone before the first swap and back after the last.
        let views = at("CREATE MATERIALIZED VIEW IF NOT EXISTS audit_counts_per_minute_mv");
        assert!(at("DROP TABLE IF EXISTS audit_counts_per_minute_mv") < at("RENAME TABLE"));
        assert!(
            steps[..views]
                .iter()
                .filter(|s| s.starts_with("RENAME"))
                .count()
                == 3
        );
    }

    #[test]
    fn the_identity_rebuild_knows_its_result() {
        let rebuild = MIGRATIONS.iter().find(|m| m.version == 9).expect("0009");
        assert_eq!(
            rebuild.done_when_column(),
            Some(("audit_events", "content_hash"))
        );
        assert_eq!(MIGRATIONS[0].done_when_column(), None);
    }

    #[test]
    fn reads_version_requirements() {
        assert_eq!(MIGRATIONS[0].requires(), None);
        assert_eq!(MIGRATIONS[1].requires(), Some((20, 1)));
        assert_eq!(MIGRATIONS[2].requires(), Some((21, 1)));
        assert_eq!(MIGRATIONS[3].requires(), None);
        assert_eq!(MIGRATIONS[8].requires(), None);
        assert_eq!(MIGRATIONS[9].requires(), Some((20, 1)));
        assert_eq!(MIGRATIONS[10].requires(), Some((21, 1)));
        assert_eq!(parse_version("18.16.1"), Some((18, 16)));
        assert_eq!(parse_version("26.5.1.1"), Some((26, 5)));
        assert!((18, 16) < (20, 1));
    }
}
