//! Retention against the real stack: months past their tenant's policy are
//! removed from the events table and the rollups, a legal hold keeps what it
//! covers, and every removal and hold is itself in the audit trail.

mod common;

use std::time::{Duration, Instant};

use attest_server::retention::{Month, Removal};
use serde_json::json;

async fn wait_until(server: &common::TestServer, sql: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = server.clickhouse(sql).await;
        if got.trim() == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}\nexpected {expected:?}, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_months_are_removed_except_under_legal_hold_and_each_removal_is_audited() {
    let mut config = common::test_config();
    config.retention.default_months = 12;
    config.retention.tenants.insert("long".into(), 60);
    let server = common::start(config.clone()).await;

    let now = attest_server::ingest::now_ms();
    let seeded = [
        ("a", "2024-01", 2),
        ("a", "2024-02", 3),
        ("a", "2024-03", 1),
        ("long", "2024-03", 2),
    ];
    let mut n = 0;
    for (tenant, month, count) in seeded {
        for i in 0..count {
            n += 1;
            let event = json!({
                "event_id": format!("seed-{n}"),
                "tenant_id": tenant,
                "occurred_at": common::mid_month_ms(month) + i,
                "category": "data_access",
                "action": "document.read",
                "outcome": if i == 0 { "denied" } else { "success" },
                "actor": {"id": "alice", "type": "user"},
                "source_service": "docs",
            });
            let (status, body) = server.post_json(event.to_string()).await;
            assert_eq!(status, 202, "{body}");
        }
    }
    let (status, _) = server
        .post_json(
            json!({"event_id": "recent", "tenant_id": "a", "occurred_at": now, "category": "admin",
                   "action": "x", "outcome": "success", "actor": {"id": "bob", "type": "user"},
                   "source_service": "svc"})
            .to_string(),
        )
        .await;
    assert_eq!(status, 202);
    wait_until(&server, "SELECT uniqExact(event_id) FROM audit_events", "9").await;

    let retention = attest_server::open_retention(&config)
        .await
        .expect("retention opens");
    let hold = retention
        .place_hold("a", "2024-02", "2024-02", "case 2026-117", "counsel")
        .await
        .expect("hold placed");
    let plan = retention.plan(now).await.expect("plan");
    let m = |s| Month::parse(s).unwrap();
    assert_eq!(
        plan.removals,
        [
            Removal::DropMonth {
                month: m("2024-01"),
                tenants: vec![("a".into(), 2)],
            },
            Removal::DeleteTenantMonth {
                month: m("2024-03"),
                tenant: "a".into(),
                events: 1,
            },
        ]
    );
    assert_eq!(plan.held.len(), 1);
    assert_eq!(
        (plan.held[0].month, plan.held[0].hold_id.as_str()),
        (m("2024-02"), hold.hold_id.as_str())
    );

    retention.execute(&plan).await.expect("retention runs");

    // January 2024 is gone from the events table and the rollups (rows are
    // sealed, so each expired tenant's rows are deleted rather than the
    // partition dropped: docs/DESIGN.md, "Retention and legal holds").
    for (table, time_column) in [
        ("audit_events", "event_time"),
        ("audit_counts_per_minute", "minute"),
        ("audit_failures_per_minute", "minute"),
    ] {
        wait_until(
            &server,
            &format!("SELECT count() FROM {table} WHERE toYYYYMM({time_column}) = 202401"),
            "0",
        )
        .await;
    }
    // Tenant a's March is deleted (a background mutation); the held
    // February, the other tenant's March and the recent event remain.
    wait_until(
        &server,
        "SELECT tenant_id, toYYYYMM(event_time) AS m, uniqExact(event_id) FROM audit_events \
         WHERE action != 'retention.delete_month' AND action != 'legal_hold.place' \
         GROUP BY tenant_id, m ORDER BY tenant_id, m FORMAT CSV",
        &format!(
            "\"a\",202402,3\n\"a\",{},1\n\"long\",202403,2",
            Month::of_epoch_ms(now).unwrap().id()
        ),
    )
    .await;
    wait_until(
        &server,
        "SELECT tenant_id, toYYYYMM(minute) AS m, uniqExactMerge(events) FROM audit_counts_per_minute \
         WHERE action = 'document.read' GROUP BY tenant_id, m ORDER BY tenant_id, m FORMAT CSV",
        "\"a\",202402,3\n\"long\",202403,2",
    )
    .await;

    // The removals and the hold are in tenant a's own audit trail.
    wait_until(
        &server,
        "SELECT action, resource_id, outcome, metadata.value[indexOf(metadata.key, 'events')] \
         FROM audit_events WHERE tenant_id = 'a' AND source_service = 'attest' \
         ORDER BY action, resource_id FORMAT CSV",
        &format!(
            "\"legal_hold.place\",\"{}\",\"success\",\"\"\n\
             \"retention.delete_month\",\"2024-01\",\"success\",\"2\"\n\
             \"retention.delete_month\",\"2024-03\",\"success\",\"1\"",
            hold.hold_id
        ),
    )
    .await;

    // Once released, the hold no longer keeps February.
    retention
        .release_hold(&hold.hold_id, "counsel")
        .await
        .expect("hold released");
    let plan = retention.plan(now).await.expect("plan after release");
    assert_eq!(
        plan.removals,
        [Removal::DropMonth {
            month: m("2024-02"),
            tenants: vec![("a".into(), 3)],
        }]
    );
    assert!(plan.held.is_empty());
    server.stop().await;
}

/// Retention as `attest retention run` opens it, and its plan for now.
async fn plan_now(
    config: &attest_server::config::Config,
) -> (
    attest_server::retention::Retention,
    attest_server::retention::Plan,
) {
    let retention = attest_server::open_retention(config)
        .await
        .expect("retention opens");
    let plan = retention
        .plan(attest_server::ingest::now_ms())
        .await
        .expect("plan");
    (retention, plan)
}

/// Posts one event of `tenant` in the middle of `month`.
async fn post_in(server: &common::TestServer, id: &str, tenant: &str, month: &str) {
    common::post_read(server, id, tenant, common::mid_month_ms(month)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_changes_between_plan_and_removal_is_honoured() {
    let mut config = common::test_config();
    config.retention.default_months = 12;
    config.retention.tenants.insert("keep".into(), 0);
    let server = common::start(config.clone()).await;
    post_in(&server, "held-1", "held", "2023-05").await;
    post_in(&server, "late-1", "gone", "2023-06").await;
    wait_until(&server, "SELECT count() FROM audit_events", "2").await;
    // The 'keep' tenant's policy keeps everything; the others are expired.
    let (retention, plan) = plan_now(&config).await;
    assert_eq!(plan.removals.len(), 2, "{plan:?}");

    // After the plan: a hold for May, and a late event in June of a tenant
    // whose policy keeps everything. The plan in hand drops both months.
    retention
        .place_hold("held", "2023-05", "2023-05", "case 9", "counsel")
        .await
        .unwrap();
    post_in(&server, "late-keep", "keep", "2023-06").await;
    wait_until(
        &server,
        "SELECT count() FROM audit_events WHERE event_id = 'late-keep'",
        "1",
    )
    .await;
    retention.execute(&plan).await.unwrap();
    // (Retention's own records, in the tenants' trails, are events too.)
    wait_until(
        &server,
        "SELECT arraySort(groupArray(event_id)) FROM audit_events WHERE action = 'document.read'",
        "['held-1','late-keep']",
    )
    .await;

    // A hold whose months cannot be read stops every removal (fails closed).
    let store = attest_server::store::Store::new(&config.clickhouse);
    let broken = attest_server::store::HoldRow {
        hold_id: "broken".into(),
        tenant_id: "keep".into(),
        from_month: 202313,
        to_month: 202313,
        reason: "typo".into(),
        created_at: 1,
        released_at: 0,
    };
    store.put_legal_hold(&broken, 1).await.unwrap();
    let refused = retention.plan(attest_server::ingest::now_ms()).await;
    let message = refused
        .expect_err("no plan with an unreadable hold")
        .to_string();
    assert!(
        message.contains("broken") && message.contains("202313"),
        "{message}"
    );
    server.stop().await;
}

/// Unsealed rows need no record, so a month whose every tenant expired is
/// dropped as a partition, which is instant, from the events table and
/// both rollups. (Sealed, its rows are deleted below the writers' commits
/// instead: see the first test and `integrity.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsealed_expired_month_is_dropped_whole() {
    let mut config = common::test_config();
    config.integrity.seal = false;
    config.retention.default_months = 12;
    let server = common::start(config.clone()).await;
    post_in(&server, "old-1", "a", "2024-01").await;
    wait_until(&server, "SELECT count() FROM audit_events", "1").await;
    let (retention, plan) = plan_now(&config).await;
    assert!(
        matches!(plan.removals.as_slice(), [Removal::DropMonth { .. }]),
        "{plan:?}"
    );
    retention.execute(&plan).await.unwrap();
    for table in [
        "audit_events",
        "audit_counts_per_minute",
        "audit_failures_per_minute",
    ] {
        wait_until(
            &server,
            &format!(
                "SELECT count() FROM system.parts WHERE database = currentDatabase() \
                 AND table = '{table}' AND partition = '202401' AND active"
            ),
            "0",
        )
        .await;
    }
    server.stop().await;
}

/// A removal's audit event counts what the removal takes. Sealed, that is
/// the rows below the writers' committed offsets (docs/INTEGRITY.md,
/// section 15): a row already in the table but not yet committed (its
/// batch in flight) stays, and is counted by the run that removes it, so
/// the counts of a tenant's records add up to what was removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_records_only_the_rows_it_removes() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.retention.default_months = 12;
    let server = common::start(config.clone()).await;
    post_in(&server, "early-1", "a", "2024-01").await;
    post_in(&server, "early-2", "a", "2024-01").await;
    common::wait_committed(&config, 2).await;
    // A row of the same month in the table far above the committed
    // offset, as a batch inserted and not yet committed is.
    server
        .clickhouse(
            "INSERT INTO audit_events (event_id, tenant_id, occurred_at, received_at, category, \
             action, outcome, actor_id, actor_type, source_service, kafka_partition, kafka_offset) \
             SELECT 'in-flight', tenant_id, occurred_at, received_at, category, action, outcome, \
             actor_id, actor_type, source_service, kafka_partition, 1000000 \
             FROM audit_events WHERE event_id = 'early-1'",
        )
        .await;
    let (retention, plan) = plan_now(&config).await;
    assert_eq!(plan.removals.len(), 1, "{plan:?}");
    retention.execute(&plan).await.expect("retention runs");
    wait_until(
        &server,
        "SELECT arraySort(groupArray(event_id)) FROM audit_events WHERE action = 'document.read'",
        "['in-flight']",
    )
    .await;
    wait_until(
        &server,
        "SELECT resource_id, outcome, metadata.value[indexOf(metadata.key, 'events')] \
         FROM audit_events WHERE action = 'retention.delete_month' FORMAT CSV",
        "\"2024-01\",\"success\",\"2\"",
    )
    .await;
    server.stop().await;
}
