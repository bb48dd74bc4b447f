//! The analysts' search against the real stack: events posted over HTTP,
//! searched through the store, the server functions and the export.

mod common;
mod search_support;

use app::model::TimeRange;
use app::search_model::QueryLimit;
use app::search_state::TimeWindow;
use app::store::{EventStore, StoreError};
use attest_server::store::SearchLimits;
use serde_json::json;

use search_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_query_language_feature_finds_exactly_the_expected_events() {
    let server = common::start(common::test_config()).await;
    let seeded_at = attest_server::ingest::now_ms();
    seed(&server, &investigation(seeded_at)).await;
    let store = store(&server);
    // Windows end now; times in queries are the seeded events' own.
    let now = attest_server::ingest::now_ms();
    let ms = |minutes: i64| (seeded_at - minutes * MINUTE).to_string();

    let all = [
        "billing-admin-eu",
        "billing-admin-us",
        "login-alice",
        "login-bob-fail",
        "login-mallory-fail",
        "logout-alice",
        "report-export-dave",
        "report-read-dave",
        "role-grant-carol",
        "role-grant-svc",
        "user-delete-denied",
    ];
    let cases: Vec<(String, Vec<&str>)> = vec![
        (String::new(), all.to_vec()),
        ("*".into(), all.to_vec()),
        (
            "action:user.login".into(),
            vec!["login-alice", "login-bob-fail", "login-mallory-fail"],
        ),
        (
            "action=user.login".into(),
            vec!["login-alice", "login-bob-fail", "login-mallory-fail"],
        ),
        (
            "action:user.*".into(),
            vec![
                "login-alice",
                "login-bob-fail",
                "login-mallory-fail",
                "logout-alice",
                "user-delete-denied",
            ],
        ),
        (
            "outcome:FAILURE".into(),
            vec!["login-bob-fail", "login-mallory-fail"],
        ),
        (
            "category:admin".into(),
            vec!["billing-admin-eu", "billing-admin-us", "user-delete-denied"],
        ),
        (
            "actor:alice@example.com".into(),
            vec!["login-alice", "logout-alice"],
        ),
        (
            "actor.id:*@contractor.example".into(),
            vec!["report-export-dave", "report-read-dave"],
        ),
        ("actor.type:service".into(), vec!["role-grant-svc"]),
        (
            "category:permission_change -actor.type:service".into(),
            vec!["role-grant-carol"],
        ),
        (
            "ip:10.0.*".into(),
            vec!["login-alice", "login-bob-fail", "logout-alice"],
        ),
        ("actor.ip:2001:db8::1".into(), vec!["user-delete-denied"]),
        ("actor.user_agent:*Firefox*".into(), vec!["login-alice"]),
        (
            "resource.id:\"q3 report.pdf\" category:data_access".into(),
            vec!["report-export-dave", "report-read-dave"],
        ),
        (
            "resource.type:role".into(),
            vec!["role-grant-carol", "role-grant-svc"],
        ),
        ("resource:u-42".into(), vec!["user-delete-denied"]),
        (
            "source:billing metadata.region:eu-*".into(),
            vec!["billing-admin-eu"],
        ),
        (
            "service:billing".into(),
            vec!["billing-admin-eu", "billing-admin-us"],
        ),
        ("metadata.region:eu-west-1".into(), vec!["login-alice"]),
        ("metadata.Region:eu-west-1".into(), vec![]),
        (
            "request_id:req-7f3a9c".into(),
            vec!["login-alice", "role-grant-svc"],
        ),
        ("event_id:logout-alice".into(), vec!["logout-alice"]),
        ("export".into(), vec!["report-export-dave"]),
        ("EXPORT".into(), vec!["report-export-dave"]),
        (
            "\"q3 report\"".into(),
            vec!["report-export-dave", "report-read-dave"],
        ),
        ("ZÜRICH".into(), vec!["login-mallory-fail"]),
        (
            "user*login".into(),
            vec!["login-alice", "login-bob-fail", "login-mallory-fail"],
        ),
        (
            "outcome:denied (action:user.* OR action:role.*)".into(),
            vec!["role-grant-carol", "user-delete-denied"],
        ),
        (
            "NOT (category:authentication OR category:admin)".into(),
            vec![
                "report-export-dave",
                "report-read-dave",
                "role-grant-carol",
                "role-grant-svc",
            ],
        ),
        (
            "action:role.grant OR action:plan.change outcome:success".into(),
            vec![
                "billing-admin-eu",
                "billing-admin-us",
                "role-grant-carol",
                "role-grant-svc",
            ],
        ),
        ("schema_id:1".into(), all.to_vec()),
        ("schema_id>1".into(), vec![]),
        (
            format!("occurred_at>={}", ms(45)),
            vec![
                "login-alice",
                "login-bob-fail",
                "login-mallory-fail",
                "logout-alice",
            ],
        ),
        (
            format!("occurred_at<{}", ms(100)),
            vec!["user-delete-denied"],
        ),
        (format!("occurred_at:{}", ms(50)), vec!["role-grant-svc"]),
        ("received_at>=2000-01-01".into(), all.to_vec()),
        ("received_at<2000-01-02".into(), vec![]),
    ];
    for (q, expected) in &cases {
        let found = ids(&store, query(q, Some("acme"), last_day()), now).await;
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(found, expected, "query {q:?}");
    }

    // Every tenant: alice's sign-in at globex is there too, with its tenant.
    let everywhere = ids(
        &store,
        query("actor:alice@example.com", None, last_day()),
        now,
    )
    .await;
    assert_eq!(everywhere, ["globex-login", "login-alice", "logout-alice"]);
    // The window decides too.
    let week = ids(
        &store,
        query(
            "actor:alice@example.com",
            Some("acme"),
            TimeWindow::Last(TimeRange::Last7Days),
        ),
        now,
    )
    .await;
    assert_eq!(week, ["login-alice", "logout-alice", "old-login"]);
    let quarter_hour = ids(
        &store,
        query("", Some("acme"), TimeWindow::Last(TimeRange::Last15Minutes)),
        now,
    )
    .await;
    assert_eq!(quarter_hour, ["login-alice"]);
    let between = TimeWindow::Between {
        from_ms: seeded_at - 35 * MINUTE,
        to_ms: seeded_at - 15 * MINUTE,
    };
    assert_eq!(
        ids(&store, query("", Some("acme"), between), now).await,
        ["login-bob-fail", "login-mallory-fail"]
    );

    // Newest first, and every column the table shows is there.
    let page = EventStore::search(&store, &query("", Some("acme"), last_day()), now)
        .await
        .unwrap();
    let order: Vec<&str> = page.hits.iter().map(|h| h.event_id.as_str()).collect();
    assert_eq!(
        order[..3],
        ["login-alice", "login-bob-fail", "login-mallory-fail"]
    );
    let alice = &page.hits[0];
    assert_eq!(
        (
            alice.actor_ip.as_str(),
            alice.actor_user_agent.as_str(),
            alice.request_id.as_str()
        ),
        ("10.0.0.5", "Mozilla/5.0 Firefox/128", "req-7f3a9c")
    );
    assert!(alice.received_at >= alice.occurred_at);

    // A query that does not parse names the position, and reaches nothing.
    for (bad, position) in [("actr:bob", 0), ("tenant:acme", 0), ("action:\"abc", 7)] {
        match EventStore::search(&store, &query(bad, Some("acme"), last_day()), now).await {
            Err(StoreError::BadQuery(error)) => assert_eq!(error.position, position, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_detail_has_every_field_and_stays_inside_its_tenant() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let events = investigation(now);
    seed(&server, &events).await;
    let store = store(&server);
    let at = now - 10 * MINUTE;

    let detail = EventStore::event_detail(&store, "acme", "login-alice", Some(at), None)
        .await
        .unwrap()
        .expect("found by time");
    let without_time = EventStore::event_detail(&store, "acme", "login-alice", None, None)
        .await
        .unwrap();
    assert_eq!(without_time.as_ref(), Some(&detail));
    assert_eq!(detail.occurred_at, at);
    assert_eq!(detail.actor_user_agent, "Mozilla/5.0 Firefox/128");
    assert_eq!(detail.request_id, "req-7f3a9c");
    assert_eq!(
        detail.metadata,
        [("region".to_string(), "eu-west-1".to_string())]
    );
    assert_eq!(detail.schema_id, 1);
    let stored = server
        .clickhouse("SELECT kafka_partition, kafka_offset, received_at, content_hash FROM audit_events WHERE event_id = 'login-alice' FORMAT TSV")
        .await;
    assert_eq!(
        stored.trim(),
        format!(
            "{}\t{}\t{}\t{}",
            detail.kafka_partition, detail.kafka_offset, detail.received_at, detail.content_hash
        )
    );
    assert_eq!(detail.same_id.len(), 1, "one event with this id");

    // Another tenant's id, a wrong time or an unknown id: nothing.
    assert_eq!(
        EventStore::event_detail(&store, "globex", "login-alice", None, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        EventStore::event_detail(&store, "acme", "login-alice", Some(at + 1), None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        EventStore::event_detail(&store, "acme", "nope", None, None)
            .await
            .unwrap(),
        None
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facet_counts_equal_a_direct_distinct_count() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let categories = ["authentication", "data_access", "admin", "system"];
    let outcomes = ["success", "success", "failure", "denied"];
    let events: Vec<serde_json::Value> = (0..300)
        .map(|i: i64| {
            with(
                event(&format!("f-{i}"), if i % 10 == 0 { "globex" } else { "acme" }, now - i * 7_000),
                json!({
                    "category": categories[(i % 4) as usize],
                    "action": format!("action.{}", i % 13),
                    "outcome": outcomes[(i % 7 % 4) as usize],
                    "actor": {"id": format!("user-{}", i * i % 23), "ip": format!("10.0.0.{}", i % 17)},
                    "resource": {"type": format!("type-{}", i % 3), "id": format!("r-{i}")},
                    "source_service": format!("svc-{}", i % 5),
                }),
            )
        })
        .collect();
    // A third of them twice: copies in storage must not count twice.
    let mut posted = events.clone();
    posted.extend(events.iter().step_by(3).cloned());
    keep_duplicates(&server).await;
    seed(&server, &posted).await;
    assert_eq!(
        server.row_count().await,
        posted.len() as u64,
        "copies are stored"
    );
    let store = store(&server);
    // Searches count what was received up to their moment: after seeding.
    let now = attest_server::ingest::now_ms();

    for (q, condition) in [
        ("", "1"),
        ("outcome:failure", "outcome = 'failure'"),
        (
            "-category:admin action:action.1*",
            "category != 'admin' AND match(action, '^action\\\\.1.*$')",
        ),
    ] {
        let facets = EventStore::facets(&store, &query(q, Some("acme"), last_day()), now)
            .await
            .unwrap();
        let filter = format!("tenant_id = 'acme' AND {condition}");
        let total = server
            .clickhouse(&format!(
                "SELECT uniqExact(event_id) FROM audit_events WHERE {filter}"
            ))
            .await;
        assert_eq!(facets.total.to_string(), total.trim(), "total for {q:?}");
        assert_eq!(facets.fields.len(), 7);
        for counts in &facets.fields {
            let column = counts.field.column();
            let direct = server
                .clickhouse(&format!(
                    "SELECT {column}, uniqExact(event_id) AS n FROM audit_events WHERE {filter} \
                     GROUP BY {column} ORDER BY n DESC, {column} LIMIT 10 FORMAT TSV"
                ))
                .await;
            let got: Vec<Vec<String>> = counts
                .values
                .iter()
                .map(|v| vec![v.value.clone(), v.events.to_string()])
                .collect();
            assert_eq!(got, tsv_lines(&direct), "{column} for {q:?}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_reported_by_name() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let events: Vec<_> = (0..50)
        .map(|i| event(&format!("l-{i}"), "acme", now - i * 1_000))
        .collect();
    seed(&server, &events).await;
    let search = query("", Some("acme"), last_day());
    let now = attest_server::ingest::now_ms();

    let tight_reads = store(&server).with_search_limits(SearchLimits {
        max_rows_to_read: 10,
        ..SearchLimits::default()
    });
    match EventStore::search(&tight_reads, &search, now).await {
        Err(StoreError::Limit(QueryLimit::RowsToRead { rows: 10 })) => {}
        other => panic!("{other:?}"),
    }
    let tight_results = store(&server).with_search_limits(SearchLimits {
        max_result_rows: 5,
        ..SearchLimits::default()
    });
    match EventStore::search(&tight_results, &search, now).await {
        Err(StoreError::Limit(limit @ QueryLimit::ResultRows { rows: 5 })) => {
            assert!(limit.to_string().contains("narrow the time range"));
        }
        other => panic!("{other:?}"),
    }
    // An export too large is refused before it starts.
    let refused = tight_results
        .export(&search, attest_server::store::ExportFormat::Csv, now)
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Limit(QueryLimit::ResultRows { rows: 5 }))
    ));
    server.stop().await;
}

/// The tenant choice of a viewer of all tenants lists exactly the tenants
/// `audit_events` holds, from the list migration 0028 keeps instead of a
/// DISTINCT over every stored event: tenants stored before its view existed
/// (the migration's backfill, run again here on an emptied list) and a
/// tenant whose first event arrives afterwards (the view).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_choice_lists_every_tenant_with_events() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    seed_direct(
        &server,
        &[
            event("t-1", "acme", now),
            event("t-2", "globex", now),
            event("t-3", "acme", now),
        ],
    )
    .await;
    let store = store(&server);
    let stored = || async {
        let text = server
            .clickhouse("SELECT DISTINCT tenant_id FROM audit_events ORDER BY tenant_id FORMAT TSV")
            .await;
        tsv_lines(&text)
            .into_iter()
            .map(|row| row[0].clone())
            .collect::<Vec<_>>()
    };
    let listed = EventStore::tenants(&store).await.expect("tenants");
    assert!(listed.iter().any(|t| t == "acme") && listed.iter().any(|t| t == "globex"));
    assert_eq!(listed, stored().await);

    server.clickhouse("TRUNCATE TABLE attest_tenants").await;
    let emptied = EventStore::tenants(&store).await.expect("tenants");
    assert!(!emptied.iter().any(|t| t == "acme"), "{emptied:?}");
    let migration = attest_server::store::migrations::MIGRATIONS
        .iter()
        .find(|m| m.name == "tenant_list")
        .expect("migration 0028");
    for statement in migration.statements() {
        server.clickhouse(&statement).await;
    }
    assert_eq!(
        EventStore::tenants(&store).await.expect("tenants"),
        stored().await
    );

    seed_direct(&server, &[event("t-4", "initech", now)]).await;
    let listed = EventStore::tenants(&store).await.expect("tenants");
    assert!(listed.iter().any(|t| t == "initech"), "{listed:?}");
    assert_eq!(listed, stored().await);
    server.stop().await;
}
