//! Migrations when several processes share a database, on the real
//! ClickHouse: they take turns, a lock left by a dead process expires, and a
//! table rebuild interrupted between its two renames is put right.

mod common;

use std::time::Duration;

use attest_server::store::Store;

/// One statement over ClickHouse's HTTP interface. A connection reset
/// before any answer is tried again for a few seconds: the fault tests
/// before this binary restart ClickHouse, and a server still starting can
/// accept a connection and drop it (seen once in a full run). An answer
/// that is an error still fails at once.
async fn sql(http: &reqwest::Client, url: &str, database: &str, statement: &str) -> String {
    let mut attempts = 0;
    let response = loop {
        let sent = http
            .post(url)
            .query(&[("database", database)])
            .body(statement.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) => break response,
            Err(error) if attempts < 10 && (error.is_connect() || error.is_request()) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("clickhouse reachable: {error}"),
        }
    };
    let status = response.status();
    let text = response.text().await.expect("body");
    assert!(status.is_success(), "{statement}: {text}");
    text
}

/// Versions in the ledger, each as often as it was recorded.
async fn ledger(http: &reqwest::Client, url: &str, database: &str) -> Vec<u32> {
    sql(
        http,
        url,
        database,
        "SELECT version FROM attest_schema_migrations ORDER BY version FORMAT TSV",
    )
    .await
    .lines()
    .map(|l| l.parse().expect("a version"))
    .collect()
}

/// Four processes' worth of stores start on one new database at once (the
/// fault tests start two writers together; their rebuilds used to drop each
/// other's scratch tables and leave no `audit_events`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_starting_together_migrate_once() {
    let config = common::test_config();
    let http = reqwest::Client::new();
    let (url, db) = (&config.clickhouse.url, &config.clickhouse.database);

    let starts: Vec<_> = (0..4)
        .map(|_| {
            let store = Store::new(&config.clickhouse);
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for start in starts {
        start.await.expect("task").expect("every store migrates");
    }

    let versions = ledger(&http, url, db).await;
    let mut distinct = versions.clone();
    distinct.dedup();
    assert_eq!(versions, distinct, "each migration recorded once");
    assert!(
        versions.contains(&9),
        "the identity rebuild ran: {versions:?}"
    );
    let tables = sql(&http, url, db, "SHOW TABLES FORMAT TSV").await;
    assert!(tables.lines().any(|t| t == "audit_events"), "{tables}");
    assert!(
        !tables.contains("attest_migration_lock") && !tables.contains("_identity_"),
        "no lock or scratch table left: {tables}"
    );
    common::drop_database(&http, &config).await;
}

/// A live holder makes others wait; a silent one is taken over.
#[tokio::test]
async fn a_held_lock_waits_and_a_dead_holders_lock_expires() {
    let config = common::test_config();
    let http = reqwest::Client::new();
    let (url, db) = (&config.clickhouse.url, &config.clickhouse.database);
    sql(
        &http,
        url,
        "default",
        &format!("CREATE DATABASE IF NOT EXISTS {db}"),
    )
    .await;
    let create =
        "CREATE TABLE attest_migration_lock (holder String, heartbeat DateTime) ENGINE = Log";

    // Alive: a heartbeat just now. The store waits for it.
    sql(&http, url, db, create).await;
    sql(
        &http,
        url,
        db,
        "INSERT INTO attest_migration_lock VALUES ('another process', now())",
    )
    .await;
    let store = Store::new(&config.clickhouse);
    let waiting = tokio::time::timeout(Duration::from_secs(3), store.migrate()).await;
    assert!(
        waiting.is_err(),
        "migrated while another process held the lock"
    );
    assert!(
        ledger_missing(&http, url, db).await,
        "nothing was migrated while waiting"
    );

    // Dead: its newest heartbeat is two minutes old (the lease is one).
    sql(&http, url, db, "DROP TABLE attest_migration_lock").await;
    sql(&http, url, db, create).await;
    sql(
        &http,
        url,
        db,
        "INSERT INTO attest_migration_lock VALUES ('a process that died', now() - 120)",
    )
    .await;
    tokio::time::timeout(Duration::from_secs(60), store.migrate())
        .await
        .expect("the stale lock is taken over")
        .expect("migrates");
    assert!(ledger(&http, url, db).await.contains(&9));
    let tables = sql(&http, url, db, "SHOW TABLES FORMAT TSV").await;
    assert!(!tables.contains("attest_migration_lock"), "{tables}");
    common::drop_database(&http, &config).await;
}

async fn ledger_missing(http: &reqwest::Client, url: &str, db: &str) -> bool {
    let tables = sql(http, url, db, "SHOW TABLES FORMAT TSV").await;
    !tables.lines().any(|t| t == "attest_schema_migrations")
}

/// The rebuild's swap is two renames: a process killed between them left
/// `audit_events` renamed to `audit_events_identity_old`. The next start
/// puts it back and keeps every row.
#[tokio::test]
async fn a_rebuild_interrupted_between_its_renames_is_put_right() {
    let config = common::test_config();
    let http = reqwest::Client::new();
    let (url, db) = (&config.clickhouse.url, &config.clickhouse.database);
    let store = Store::new(&config.clickhouse);
    store.migrate().await.expect("migrates");
    sql(
        &http,
        url,
        db,
        "INSERT INTO audit_events (event_id, tenant_id, occurred_at, received_at, category, action, \
         outcome, actor_id, actor_type, source_service) \
         VALUES ('kept', 't', 1764547200000, 1764547200000, 'admin', 'a', 'success', 'u', 'user', 's')",
    )
    .await;

    // The ledger as it was before the rebuild was recorded, and the swap's
    // first rename done, its second not.
    sql(
        &http,
        url,
        db,
        "CREATE TABLE ledger_before AS attest_schema_migrations",
    )
    .await;
    sql(
        &http,
        url,
        db,
        "INSERT INTO ledger_before SELECT * FROM attest_schema_migrations WHERE version < 9",
    )
    .await;
    sql(&http, url, db, "DROP TABLE attest_schema_migrations").await;
    sql(
        &http,
        url,
        db,
        "RENAME TABLE ledger_before TO attest_schema_migrations, audit_events TO audit_events_identity_old",
    )
    .await;

    store.migrate().await.expect("the next start migrates");
    let kept = sql(
        &http,
        url,
        db,
        "SELECT event_id FROM audit_events FORMAT TSV",
    )
    .await;
    assert_eq!(kept.trim(), "kept");
    assert!(ledger(&http, url, db).await.contains(&9));
    common::drop_database(&http, &config).await;
}
