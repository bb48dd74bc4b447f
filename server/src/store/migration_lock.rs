//! One process migrates a database at a time.
//!
//! Two processes started together (two replicas of a deployment, a writer
//! and a console) used to run the pending migrations side by side. Most
//! statements are idempotent, so that looked safe, but a table rebuild is a
//! sequence: drop the scratch table, create it, fill it, swap it in. When
//! one process dropped the scratch table the other had just filled, the
//! other's swap renamed the live table away and found nothing to put in its
//! place: `audit_events` was gone and every later attempt failed. Seen in
//! the fault tests, where two writers start at once.
//!
//! ClickHouse has no locks, but `CREATE TABLE` without `IF NOT EXISTS` is
//! atomic: of several processes creating the lock table, one succeeds and
//! the others get TABLE_ALREADY_EXISTS and wait. The holder writes a
//! heartbeat row every quarter of the lease; a lock whose newest heartbeat
//! (or, before the first one, whose creation) is older than the lease was
//! left by a process that died, and is taken over by renaming it away (a
//! rename of one name succeeds once, so two waiters cannot both take over
//! the same stale lock). The holder drops the table when it is done.
//!
//! A narrow race remains, accepted: a waiter that judged a lock stale, then
//! lost the CPU while another waiter took it over and created a fresh one,
//! renames the fresh one away. It needs a holder that died, two waiters
//! and that interleaving; the rebuild steps themselves survive being
//! interrupted (see `migrations::repair_interrupted_swaps`).

use std::time::Duration;

use clickhouse::{Client, Row};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::{QueryTemplate, StoreError};

const TABLE: &str = "attest_migration_lock";
/// ClickHouse's TABLE_ALREADY_EXISTS: another process holds the lock.
const ALREADY_EXISTS: u32 = 57;
/// UNKNOWN_TABLE: the lock went away while we looked at it.
const UNKNOWN_TABLE: u32 = 60;

const CREATE_SQL: &str =
    "CREATE TABLE attest_migration_lock (holder String, heartbeat DateTime) ENGINE = Log";
const BEAT_SQL: &str = "INSERT INTO attest_migration_lock (holder, heartbeat) VALUES (?, now())";
/// Seconds since the newest heartbeat (now, as a huge age, when none yet).
const HOLDER_SQL: &str = "SELECT argMax(holder, heartbeat) AS holder, \
     toInt64(toUInt32(now())) - toInt64(toUInt32(max(heartbeat))) AS age_s \
     FROM attest_migration_lock";
/// Seconds since the lock table was created.
const CREATED_SQL: &str =
    "SELECT toInt64(toUInt32(now())) - toInt64(toUInt32(metadata_modification_time)) AS age_s \
     FROM system.tables WHERE database = currentDatabase() AND name = 'attest_migration_lock'";

pub(crate) fn templates() -> Vec<QueryTemplate> {
    let t = |name: &str, sql: &str, params: &'static [&'static str]| QueryTemplate {
        name: name.into(),
        sql: sql.into(),
        params,
    };
    vec![
        t("migration_lock_create", CREATE_SQL, &[]),
        t("migration_lock_beat", BEAT_SQL, &["holder"]),
        t("migration_lock_holder", HOLDER_SQL, &[]),
        t("migration_lock_created", CREATED_SQL, &[]),
    ]
}

#[derive(Row, Deserialize)]
struct Holder {
    holder: String,
    age_s: i64,
}

#[derive(Row, Deserialize)]
struct Created {
    age_s: i64,
}

/// Held until [`MigrationLock::release`]; a holder that dies without it
/// leaves a lock that expires after the lease.
pub struct MigrationLock {
    client: Client,
    holder: String,
    heartbeat: JoinHandle<()>,
}

impl MigrationLock {
    /// Waits until this process holds the lock. `lease` is how long a
    /// silent holder keeps it.
    pub async fn acquire(client: &Client, lease: Duration) -> Result<MigrationLock, StoreError> {
        let holder = format!(
            "pid {} / {}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        let mut waiting_for = None;
        loop {
            match client.query(CREATE_SQL).execute().await {
                Ok(()) => break,
                Err(error) if code(&error) == Some(ALREADY_EXISTS) => {}
                Err(error) => return Err(error.into()),
            }
            let (other, age) = current_holder(client).await?;
            if age > lease {
                take_over_stale(client, &other, age).await?;
                continue;
            }
            if waiting_for.as_ref() != Some(&other) {
                info!(holder = %other, "another process is migrating the database; waiting for it");
                waiting_for = Some(other);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        beat(client, &holder).await?;
        let heartbeat = {
            let (client, holder) = (client.clone(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 4).await;
                    if let Err(error) = beat(&client, &holder).await {
                        warn!(%error, "cannot renew the migration lock; another process may take it over");
                    }
                }
            })
        };
        Ok(MigrationLock {
            client: client.clone(),
            holder,
            heartbeat,
        })
    }

    /// Lets the next process migrate. The lock is dropped only while it is
    /// still ours: one taken over after a lost lease belongs to another.
    pub async fn release(self) -> Result<(), StoreError> {
        self.heartbeat.abort();
        let (holder, _) = current_holder(&self.client).await?;
        if holder == self.holder {
            self.client
                .query(&format!("DROP TABLE IF EXISTS {TABLE}"))
                .execute()
                .await?;
        } else {
            warn!(holder = %holder, "the migration lock was taken over while this process held it");
        }
        Ok(())
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        // A migration that failed returns without `release`: stop renewing,
        // so the lock expires and another process (or our retry) goes on.
        self.heartbeat.abort();
    }
}

async fn beat(client: &Client, holder: &str) -> Result<(), StoreError> {
    client.query(BEAT_SQL).bind(holder).execute().await?;
    Ok(())
}

/// Who holds the lock and how long it has been silent. A lock without a
/// heartbeat yet is as old as its table; one that vanished meanwhile reads
/// as free (the next CREATE decides).
async fn current_holder(client: &Client) -> Result<(String, Duration), StoreError> {
    let holder = match client.query(HOLDER_SQL).fetch_one::<Holder>().await {
        Ok(h) => h,
        Err(error) if code(&error) == Some(UNKNOWN_TABLE) => {
            return Ok((String::new(), Duration::ZERO))
        }
        Err(error) => return Err(error.into()),
    };
    let age_s = if holder.holder.is_empty() {
        let created: Vec<Created> = client.query(CREATED_SQL).fetch_all().await?;
        created.first().map_or(0, |c| c.age_s)
    } else {
        holder.age_s
    };
    Ok((
        holder.holder,
        Duration::from_secs(u64::try_from(age_s).unwrap_or(0)),
    ))
}

/// Renames the stale lock away; of several waiters doing this at once, the
/// one whose rename succeeds drops it, the others find it gone and retry.
async fn take_over_stale(client: &Client, holder: &str, age: Duration) -> Result<(), StoreError> {
    let aside = format!("{TABLE}_stale_{}", uuid::Uuid::now_v7().simple());
    match client
        .query(&format!("RENAME TABLE {TABLE} TO {aside}"))
        .execute()
        .await
    {
        Ok(()) => {
            warn!(holder = %holder, silent_s = age.as_secs(), "taking over a migration lock its holder left");
            client
                .query(&format!("DROP TABLE IF EXISTS {aside}"))
                .execute()
                .await?;
            Ok(())
        }
        Err(error) if code(&error) == Some(UNKNOWN_TABLE) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn code(error: &clickhouse::error::Error) -> Option<u32> {
    match error {
        clickhouse::error::Error::BadResponse(text) => super::exception_code(text),
        _ => None,
    }
}
