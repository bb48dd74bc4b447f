//! Search, second pass (issue 17), against the real stack: networks, IP
//! addresses as free text, lower-case operators and relative times find
//! exactly the expected events; the histogram's buckets add up to the
//! result count; count-by equals a direct GROUP BY.

mod common;
mod search_support;

use std::collections::BTreeMap;

use app::dashboard_model::SeriesBy;
use app::model::TimeRange;
use app::search_model::{FacetField, COUNT_BY_VALUES};
use app::search_state::TimeWindow;
use app::store::EventStore;
use serde_json::json;

use search_support::*;

/// The investigation's events, and more addresses to tell networks apart:
/// neighbours just outside each network, an IPv6 address written in full
/// upper case, and an IPv4-mapped IPv6 address. (Ingest refuses text that
/// is no address, so none is stored.)
fn seeded(now: i64) -> Vec<serde_json::Value> {
    let mut events = investigation(now);
    let at = |minutes: i64| now - minutes * MINUTE;
    for (id, minutes, ip, outcome) in [
        ("net-in-low", 12, "198.51.100.0", "failure"),
        ("net-in-high", 14, "198.51.100.255", "failure"),
        ("net-out-next", 16, "198.51.101.0", "success"),
        ("net-out-prev", 18, "198.51.99.255", "denied"),
        ("v6-upper-full", 22, "2001:DB8:0:0:0:0:0:2", "success"),
        ("v6-outside", 24, "2001:db9::1", "failure"),
        ("v6-mapped", 26, "::ffff:198.51.100.7", "success"),
    ] {
        events.push(with(
            event(id, "acme", at(minutes)),
            json!({"outcome": outcome, "actor": {"id": format!("{id}@example.com"), "ip": ip}}),
        ));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_addresses_operators_and_relative_times_find_exactly_the_expected_events() {
    let server = common::start(common::test_config()).await;
    let seeded_at = attest_server::ingest::now_ms();
    seed(&server, &seeded(seeded_at)).await;
    let store = store(&server);
    let now = attest_server::ingest::now_ms();

    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("ip:198.51.100.0/24", vec!["net-in-high", "net-in-low"]),
        (
            "actor.ip:198.51.100.77/23",
            vec!["net-in-high", "net-in-low", "net-out-next"],
        ),
        ("ip:10.0.0.0/24", vec!["login-alice", "logout-alice"]),
        (
            "ip:10.0.0.0/16",
            vec!["login-alice", "login-bob-fail", "logout-alice"],
        ),
        ("ip:203.0.113.66/32", vec!["login-mallory-fail"]),
        (
            "ip:0.0.0.0/0",
            vec![
                "login-alice",
                "login-bob-fail",
                "login-mallory-fail",
                "logout-alice",
                "net-in-high",
                "net-in-low",
                "net-out-next",
                "net-out-prev",
            ],
        ),
        (
            "ip:2001:db8::/32",
            vec!["user-delete-denied", "v6-upper-full"],
        ),
        ("ip:2001:db8::2/128", vec!["v6-upper-full"]),
        (
            "ip:::/0",
            vec!["user-delete-denied", "v6-outside", "v6-upper-full"],
        ),
        ("-ip:10.0.0.0/8 ip:10.*", vec![]),
        // Quoted, the value is the text itself.
        ("ip:\"198.51.100.0/24\"", vec![]),
        // Free text finds addresses, whole or in part.
        ("203.0.113.66", vec!["login-mallory-fail"]),
        ("10.0.1", vec!["login-bob-fail"]),
        ("\"2001:db8\"", vec!["user-delete-denied", "v6-upper-full"]),
        ("\"2001:DB8:0\"", vec!["v6-upper-full"]),
        // Lower-case operators are operators.
        (
            "action:user.login and outcome:failure",
            vec![
                "login-bob-fail",
                "login-mallory-fail",
                "net-in-high",
                "net-in-low",
                "v6-outside",
            ],
        ),
        (
            "outcome:denied or actor:bob@example.com",
            vec![
                "login-bob-fail",
                "net-out-prev",
                "role-grant-carol",
                "user-delete-denied",
            ],
        ),
        (
            "category:permission_change not actor.type:service",
            vec!["role-grant-carol"],
        ),
        // Relative times count from the search's moment; the seeded events
        // are 10, 12, 14 … minutes before `seeded_at`.
        (
            "occurred_at>=now-15m -ip:10.0.0.0/8",
            vec!["net-in-high", "net-in-low"],
        ),
    ];
    for (q, expected) in cases {
        let found = ids(&store, query(q, Some("acme"), last_day()), now).await;
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        expected.sort();
        assert_eq!(found, expected, "{q}");
    }

    // A window relative to the search: from a week ago midnight to now.
    let params = app::search_state::SearchParams {
        from: Some("now-7d/d".into()),
        tenant: Some("acme".into()),
        q: "ip:198.51.100.0/24".into(),
        ..Default::default()
    };
    let relative = params.window().expect("a relative window");
    assert!(matches!(relative, TimeWindow::Relative { .. }));
    let found = ids(&store, query(&params.q, Some("acme"), relative), now).await;
    assert_eq!(found, ["net-in-high", "net-in-low"]);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_buckets_add_up_to_the_result_count() {
    let server = common::start(common::test_config()).await;
    let seeded_at = attest_server::ingest::now_ms();
    seed(&server, &seeded(seeded_at)).await;
    // Copies of a re-delivered event stay stored; each event counts once.
    keep_duplicates(&server).await;
    seed(&server, &seeded(seeded_at)[..3]).await;
    let store = store(&server);
    let now = attest_server::ingest::now_ms();

    let windows = [
        last_day(),
        TimeWindow::Last(TimeRange::LastHour),
        TimeWindow::Last(TimeRange::Last7Days),
        TimeWindow::Between {
            from_ms: seeded_at - 25 * MINUTE,
            to_ms: seeded_at - 11 * MINUTE,
        },
    ];
    let queries = [
        "",
        "outcome:failure or outcome:denied",
        "ip:198.51.100.0/24",
        "alice",
        "category:admin -outcome:denied",
        "occurred_at>=now-20m",
        "nothing-matches-this",
    ];
    let mut nonzero = 0;
    for window in windows {
        for tenant in [Some("acme"), None] {
            for q in queries {
                let search = query(q, tenant, window);
                let series = EventStore::time_series(&store, &search, SeriesBy::Outcome, now)
                    .await
                    .unwrap_or_else(|e| panic!("{q}: {e}"));
                let found = ids(&store, search.clone(), now).await;
                let facets = EventStore::facets(&store, &search, now).await.unwrap();
                let context = format!("{q:?} {tenant:?} {window:?}");
                assert_eq!(series.total(), found.len() as u64, "{context}");
                assert_eq!(series.total(), facets.total, "{context}");
                // Each outcome's bars are what Search finds for that outcome.
                for outcome in ["success", "failure", "denied"] {
                    let narrowed = app::query::and_term(q, "outcome", outcome, false);
                    let by_outcome = ids(&store, query(&narrowed, tenant, window), now).await;
                    assert_eq!(
                        series.total_of(outcome),
                        by_outcome.len() as u64,
                        "{context} {outcome}"
                    );
                }
                // Every bar lies in the window, oldest first.
                assert!(series.starts.windows(2).all(|w| w[0] < w[1]), "{context}");
                nonzero += usize::from(series.total() > 0);
            }
        }
    }
    // Most combinations match something: the sums are not all 0 = 0.
    assert!(nonzero >= 30, "{nonzero}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_by_equals_a_direct_group_by() {
    let server = common::start(common::test_config()).await;
    let seeded_at = attest_server::ingest::now_ms();
    let mut events = seeded(seeded_at);
    // More than 20 actors, so the top 20 is a real cut, with ties.
    for n in 0..30 {
        for k in 0..(n % 4 + 1) {
            events.push(with(
                event(
                    &format!("bulk-{n}-{k}"),
                    "acme",
                    seeded_at - (n + 1) * MINUTE,
                ),
                json!({"outcome": if k % 2 == 0 { "failure" } else { "success" },
                       "actor": {"id": format!("user-{n:02}"), "ip": format!("192.0.2.{n}")}}),
            ));
        }
    }
    seed(&server, &events).await;
    keep_duplicates(&server).await;
    seed(&server, &events[..5]).await;
    let store = store(&server);
    let now = attest_server::ingest::now_ms();
    let first_sixteen: Vec<String> = (0..16).map(|n| format!("'192.0.2.{n}'")).collect();
    let in_network = format!("actor_ip IN ({})", first_sixteen.join(", "));

    for (q, condition) in [
        ("", "1"),
        ("outcome:failure", "outcome = 'failure'"),
        ("ip:192.0.2.0/28", in_network.as_str()),
    ] {
        for field in FacetField::ALL {
            let search = query(q, Some("acme"), last_day());
            let counted = EventStore::count_by(&store, &search, field.into(), now)
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            let (from, to) = last_day().bounds(now);
            let column = field.column();
            let direct = server
                .clickhouse(&format!(
                    "SELECT {column}, uniqExact(tenant_id, event_id, content_hash) AS n \
                     FROM audit_events \
                     WHERE tenant_id = 'acme' AND occurred_at >= {from} AND occurred_at <= {to} \
                     AND received_at <= {now} AND ({condition}) \
                     GROUP BY {column} ORDER BY n DESC, {column} LIMIT {COUNT_BY_VALUES} \
                     FORMAT TSV"
                ))
                .await;
            let direct: Vec<(String, u64)> = tsv_lines(&direct)
                .into_iter()
                .map(|row| (row[0].clone(), row[1].parse().expect("a count")))
                .collect();
            let got: Vec<(String, u64)> = counted
                .values
                .iter()
                .map(|v| (v.value.clone(), v.events))
                .collect();
            assert_eq!(got, direct, "{q:?} by {column}");
            assert!(!got.is_empty(), "{q:?} by {column}");
            let found = ids(&store, search.clone(), now).await;
            assert_eq!(counted.total, found.len() as u64, "{q:?}");
            // With fewer than 20 values, they add up to every event.
            let sum: u64 = counted.values.iter().map(|v| v.events).sum();
            if counted.values.len() < COUNT_BY_VALUES as usize {
                assert_eq!(sum, counted.total, "{q:?} by {column}");
            }
        }
    }
    // The actors are cut at 20.
    let actors = EventStore::count_by(
        &store,
        &query("", Some("acme"), last_day()),
        FacetField::Actor.into(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(actors.values.len(), COUNT_BY_VALUES as usize);
    let tally: BTreeMap<&str, u64> = actors
        .values
        .iter()
        .map(|v| (v.value.as_str(), v.events))
        .collect();
    assert_eq!(tally.get("user-27"), Some(&4));

    server.stop().await;
}
