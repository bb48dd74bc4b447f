//! The Dashboard against the real stack: on 100,000 generated events in
//! three tenants, every panel's numbers equal a count of the generated
//! events (and of the raw table) for the same filters, re-delivered copies
//! included; the bars' Search links (a fixed sample, see `sampled_bars`)
//! find exactly the bar's value; and a viewer of one tenant gets nothing of
//! another from the dashboard's server functions.
//!
//! The events are inserted straight into ClickHouse through the writer's
//! own insert (`Store::insert_events`, as `seed_direct` does) rather than
//! through Kafka: what is under test is how the panels count what is
//! stored, duplicates included, and the writer's path has its own tests.
//! Re-delivery is a second insert of the same rows, as a writer that
//! crashed before committing its offsets leaves it.

mod common;
mod console_support;
mod search_support;

use std::collections::BTreeMap;

use app::dashboard_model::{actor_href, series_href, SeriesBy, TimeSeries};
use app::model::TimeRange;
use app::search_model::SearchQuery;
use app::search_state::{SearchParams, TimeWindow};
use app::store::EventStore;
use serde_json::{json, Value};

use console_support::{grant, Browser};
use search_support::*;

/// One logical event as the test generated it: what the panels must count.
#[derive(Clone, Debug)]
struct Made {
    id: String,
    tenant: String,
    at: i64,
    category: &'static str,
    outcome: &'static str,
    actor: String,
    action: &'static str,
}

impl Made {
    fn json(&self) -> Value {
        with(
            event(&self.id, &self.tenant, self.at),
            json!({
                "category": self.category,
                "outcome": self.outcome,
                "action": self.action,
                "actor": {"id": self.actor},
            }),
        )
    }
}

const CATEGORIES: [&str; 4] = [
    "authentication",
    "data_access",
    "admin",
    "permission_change",
];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

/// `count` events over the last six days for `tenant`, spread over
/// categories, outcomes and seven actors; `mallory` fails a lot. Nothing
/// happens from 20 to 30 minutes ago: the last hour has empty buckets,
/// which the chart must draw as zero.
fn generate(tenant: &str, run: &str, now: i64, count: usize) -> Vec<Made> {
    // Spread evenly over about six days, whatever the count.
    let step = 6 * 24 * 60 * MINUTE / count.max(1) as i64;
    let mut out = Vec::with_capacity(count);
    let mut i = 0i64;
    while out.len() < count {
        i += 1;
        let at = now - MINUTE - (i - 1) * step;
        if (20 * MINUTE..30 * MINUTE).contains(&(now - at)) {
            continue;
        }
        let n = i as usize;
        let mallory = n.is_multiple_of(11);
        out.push(Made {
            id: format!("{run}-{i}"),
            tenant: tenant.to_owned(),
            at,
            category: CATEGORIES[n % CATEGORIES.len()],
            outcome: if mallory { "failure" } else { OUTCOMES[n % 3] },
            actor: if mallory {
                format!("mallory-{run}")
            } else {
                format!("actor-{}-{run}", n % 7)
            },
            action: "user.login",
        });
    }
    out
}

/// The buckets whose links the test follows: every bar would take minutes
/// of Search calls at 100,000 events, so a fixed sample that always holds
/// the first and last non-empty bucket of each key, the largest bar of the
/// chart, and every seventh bucket between them.
fn sampled_bars(series: &TimeSeries) -> Vec<(usize, usize)> {
    let mut largest = (0, 0, 0u64);
    let mut bars = Vec::new();
    for (k, counts) in series.counts.iter().enumerate() {
        let filled: Vec<usize> = (0..counts.len()).filter(|b| counts[*b] > 0).collect();
        let (Some(first), Some(last)) = (filled.first(), filled.last()) else {
            continue;
        };
        for b in &filled {
            if b == first || b == last || b.is_multiple_of(7) {
                bars.push((k, *b));
            }
            if counts[*b] > largest.2 {
                largest = (k, *b, counts[*b]);
            }
        }
    }
    if largest.2 > 0 && !bars.contains(&(largest.0, largest.1)) {
        bars.push((largest.0, largest.1));
    }
    bars
}

/// The test's own reading of the few queries it runs.
fn matches(q: &str, e: &Made) -> bool {
    match q {
        "" => true,
        "category:authentication" => e.category == "authentication",
        "outcome:failure OR actor.id:actor-3-*" => {
            e.outcome == "failure" || e.actor.starts_with("actor-3-")
        }
        other => panic!("the test knows no query {other}"),
    }
}

fn key_of(e: &Made, by: SeriesBy) -> &'static str {
    match by {
        SeriesBy::Category => e.category,
        SeriesBy::Outcome => e.outcome,
    }
}

fn search_query(params: &SearchParams) -> SearchQuery {
    SearchQuery::from_params(params, 100).expect("a link Search reads")
}

/// The parameters a Search link carries, as Search reads them.
fn link_params(href: &str) -> SearchParams {
    let query = href.split_once('?').map_or("", |(_, q)| q);
    let pairs: Vec<(String, String)> = url_pairs(query);
    SearchParams::from_lookup(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_equals_the_raw_count_and_every_bar_opens_exactly_its_events() {
    let server = common::start(common::test_config()).await;
    keep_duplicates(&server).await;
    let run = common::unique()[..12].to_owned();
    let (acme, globex) = (format!("dash-acme-{run}"), format!("dash-globex-{run}"));
    let initech = format!("dash-initech-{run}");
    let now = attest_server::ingest::now_ms();
    // 100,000 generated events in three tenants of different sizes.
    let mut made = generate(&acme, &run, now, 60_000);
    made.extend(generate(&globex, &format!("g{run}"), now, 25_000));
    made.extend(generate(&initech, &format!("i{run}"), now, 15_000));
    assert_eq!(made.len(), 100_000);
    // A different event sent with a used id is a second event.
    let mut second = made[5].clone();
    second.action = "user.logout";
    made.push(second);
    let events: Vec<Value> = made.iter().map(Made::json).collect();
    seed_direct(&server, &events).await;
    // A batch written twice after a writer crash: every tenth event again.
    let again: Vec<Value> = events.iter().step_by(10).cloned().collect();
    seed_direct(&server, &again).await;
    let stored: u64 = server
        .clickhouse(&format!(
            "SELECT count() FROM audit_events WHERE tenant_id = '{acme}'"
        ))
        .await
        .trim()
        .parse()
        .unwrap();
    let acme_made = made.iter().filter(|e| e.tenant == acme).count() as u64;
    assert!(stored > acme_made, "the copies are stored: {stored}");

    let store = store(&server);
    let asked_at = attest_server::ingest::now_ms();
    for range in [
        TimeRange::LastHour,
        TimeRange::Last24Hours,
        TimeRange::Last7Days,
    ] {
        for q in [
            "",
            "category:authentication",
            "outcome:failure OR actor.id:actor-3-*",
        ] {
            let params = SearchParams {
                q: q.to_owned(),
                tenant: Some(acme.clone()),
                range,
                ..SearchParams::default()
            };
            let query = search_query(&params);
            let (from, to) = TimeWindow::Last(range).bounds(asked_at);
            let inside: Vec<&Made> = made
                .iter()
                .filter(|e| e.tenant == acme && (from..=to).contains(&e.at) && matches(q, e))
                .collect();
            for by in [SeriesBy::Category, SeriesBy::Outcome] {
                let series = store.time_series(&query, by, asked_at).await.unwrap();
                check_series(&series, by, &inside, q, range);
                assert_eq!(
                    series.total(),
                    inside.len() as u64,
                    "{range:?} {q:?} {by:?}"
                );
            }
            // Panels 1, 2 and 8 from the page's one query equal their own
            // queries (a zone at +05:45 for the heatmap: quarter hours).
            let zone = "Asia/Kathmandu";
            let timeline = store.timeline(&query, zone, asked_at).await.unwrap();
            for (got, by) in [
                (&timeline.categories, SeriesBy::Category),
                (&timeline.outcomes, SeriesBy::Outcome),
            ] {
                let own = store.time_series(&query, by, asked_at).await.unwrap();
                assert_eq!(*got, own, "{range:?} {q:?} {by:?}");
            }
            let heat = store
                .dashboard_panel(&query, app::dashboard_model::Panel::Heatmap, zone, asked_at)
                .await
                .unwrap();
            assert_eq!(
                app::dashboard_model::PanelData::HeatMap(timeline.heat),
                heat,
                "{range:?} {q:?}"
            );

            // The raw table, counted by identity, agrees with the test.
            let raw = raw_count(&server, &acme, from, to, q).await;
            assert_eq!(raw, inside.len() as u64, "raw {range:?} {q:?}");

            let top = store.top_actors(&query, asked_at).await.unwrap();
            assert_eq!(top.total, inside.len() as u64);
            let failed: Vec<&&Made> = inside.iter().filter(|e| e.outcome != "success").collect();
            assert_eq!(top.failures, failed.len() as u64, "{range:?} {q:?}");
            let expect_top = |events: &[&Made]| {
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for e in events {
                    *counts.entry(e.actor.clone()).or_default() += 1;
                }
                let mut v: Vec<(String, u64)> = counts.into_iter().collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                v.truncate(10);
                v
            };
            let got = |rows: &[app::dashboard_model::ActorCount]| {
                rows.iter()
                    .map(|r| (r.actor_id.clone(), r.events))
                    .collect::<Vec<_>>()
            };
            assert_eq!(got(&top.by_events), expect_top(&inside));
            let failed_refs: Vec<&Made> = failed.iter().map(|e| **e).collect();
            assert_eq!(got(&top.by_failures), expect_top(&failed_refs));

            // The first actor's bars open Search over exactly their events.
            if range == TimeRange::Last24Hours {
                for (rows, failures) in [(&top.by_events, false), (&top.by_failures, true)] {
                    let Some(first) = rows.first() else { continue };
                    let link = link_params(&actor_href(&params, &top, &first.actor_id, failures));
                    let facets = EventStore::facets(&store, &search_query(&link), asked_at)
                        .await
                        .unwrap();
                    assert_eq!(facets.total, first.events, "{q:?} failures={failures}");
                }
                // And the sampled bars of the category chart do too.
                let series = store
                    .time_series(&query, SeriesBy::Category, asked_at)
                    .await
                    .unwrap();
                let bars = sampled_bars(&series);
                assert!(bars.len() >= 3, "{q:?}: {bars:?}");
                for (k, b) in bars {
                    let key = &series.keys[k];
                    let value = series.counts[k][b];
                    let link = link_params(&series_href(&params, &series, key, b));
                    let found = EventStore::facets(&store, &search_query(&link), asked_at)
                        .await
                        .unwrap()
                        .total;
                    assert_eq!(found, value, "{q:?} {key} bucket {b}");
                }
            }
        }
    }
    server.stop().await;
}

fn check_series(series: &TimeSeries, by: SeriesBy, inside: &[&Made], q: &str, range: TimeRange) {
    let mut want: BTreeMap<(i64, &str), u64> = BTreeMap::new();
    for e in inside {
        *want
            .entry((series.bucket.start_of(e.at), key_of(e, by)))
            .or_default() += 1;
    }
    // Every bucket of the window is there, in order, one bucket apart.
    assert!(series
        .starts
        .windows(2)
        .all(|w| w[1] - w[0] == series.bucket.width_ms()));
    for (k, key) in series.keys.iter().enumerate() {
        for (b, start) in series.starts.iter().enumerate() {
            let expected = want.get(&(*start, key.as_str())).copied().unwrap_or(0);
            assert_eq!(
                series.counts[k][b], expected,
                "{range:?} {q:?} {by:?} {key} at {start}"
            );
        }
    }
}

/// Distinct identities in the raw table for the test's queries, written
/// in SQL by hand rather than by the query compiler.
async fn raw_count(server: &common::TestServer, tenant: &str, from: i64, to: i64, q: &str) -> u64 {
    let condition = match q {
        "" => "1",
        "category:authentication" => "category = 'authentication'",
        "outcome:failure OR actor.id:actor-3-*" => {
            "(outcome = 'failure' OR startsWith(actor_id, 'actor-3-'))"
        }
        other => panic!("no raw SQL for {other}"),
    };
    server
        .clickhouse(&format!(
            "SELECT count() FROM (SELECT DISTINCT tenant_id, event_id, content_hash \
             FROM audit_events WHERE tenant_id = '{tenant}' AND occurred_at >= {from} \
             AND occurred_at <= {to} AND {condition})"
        ))
        .await
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_one_tenant_gets_nothing_of_another_from_the_dashboard() {
    let mut config = common::test_config();
    config.console.require_login = true;
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    let with_actor = |id: &str, tenant: &str, actor: &str| {
        with(
            event(id, tenant, now - MINUTE),
            json!({"outcome": "failure", "actor": {"id": actor}}),
        )
    };
    seed(
        &server,
        &[
            with_actor("a-1", "acme", "alice"),
            with_actor("a-2", "acme", "alice"),
            with_actor("g-1", "globex", "gus-of-globex"),
            with_actor("g-2", "globex", "gus-of-globex"),
            with_actor("g-3", "globex", "gus-of-globex"),
        ],
    )
    .await;
    let key = grant(
        &config,
        &["--name", "alice@acme.example", "--tenant", "acme"],
    );
    let mut browser = Browser::new(&server.base_url);
    // Signed out: nothing at all.
    let (status, _) = browser.call("dashboard/actors", &[]).await;
    assert_eq!(status, 401);
    browser.sign_in(&key, "/dashboard").await;

    let page = browser.get("/dashboard").await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("gus-of-globex"),
        "the first paint shows globex"
    );
    assert!(html.contains("alice"), "the first paint draws the panels");
    // Panels 1, 2 and 8, drawn from the page's one timeline query.
    for by in ["category", "outcome"] {
        // The chart's description, not the panel's text about it.
        assert!(
            ["minute", "hour", "day", "week"]
                .iter()
                .any(|b| html.contains(&format!("one bar per {b}, stacked by {by}."))),
            "the chart by {by} in the first paint"
        );
    }
    assert!(
        html.contains("Events by weekday and hour (UTC)"),
        "the heatmap in the first paint"
    );

    // Panels 1, 2 and 8 (the page's one query): her own tenant, or no
    // tenant (then hers): acme's two events. Granting and signing in are
    // recorded in acme's own trail: the query keeps to the seeded logins.
    let sum = |counts: &serde_json::Value| -> u64 {
        counts
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c.as_array().unwrap().iter().map(|n| n.as_u64().unwrap()))
            .sum()
    };
    let login = ("q", "action:user.login");
    for form in [vec![login], vec![login, ("tenant", "acme")]] {
        let (status, timeline) = browser.call("dashboard/timeline", &form).await;
        assert_eq!(status, 200, "{timeline}");
        assert!(!timeline.to_string().contains("globex"), "{timeline}");
        assert_eq!(
            sum(&timeline["categories"]["counts"]),
            2,
            "{form:?}: {timeline}"
        );
        assert_eq!(
            sum(&timeline["outcomes"]["counts"]),
            2,
            "{form:?}: {timeline}"
        );
        assert_eq!(sum(&timeline["heat"]["counts"]), 2, "{form:?}: {timeline}");
    }
    // Another tenant is refused, not answered empty.
    let (status, answer) = browser
        .call("dashboard/timeline", &[("tenant", "globex")])
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = browser
        .call("dashboard/timeline", &[("tz", "Mars/Olympus")])
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("tz"), "{answer}");

    let (status, actors) = browser
        .call("dashboard/actors", &[("q", "action:user.login")])
        .await;
    assert_eq!(status, 200, "{actors}");
    let text = actors.to_string();
    assert!(!text.contains("gus-of-globex"), "{text}");
    assert_eq!(actors["total"], 2);
    assert_eq!(actors["by_failures"][0]["actor_id"], "alice");
    let (status, _) = browser
        .call("dashboard/actors", &[("tenant", "globex")])
        .await;
    assert_eq!(status, 403);
    // A query cannot reach past the tenant either.
    let (status, actors) = browser
        .call(
            "dashboard/actors",
            &[("q", "tenant:globex OR actor:gus-of-globex")],
        )
        .await;
    assert!(
        !actors.to_string().contains("gus-of-globex"),
        "{status}: {actors}"
    );
    server.stop().await;
}

/// A dashboard's panels take turns at ClickHouse per viewer
/// (`console.reads_at_once`): while a viewer's turns are taken, their
/// scans wait, in the order asked, and then all answer; another viewer's
/// scan runs meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_panels_take_turns_and_another_viewer_does_not_wait() {
    use app::dashboard_model::Panel;
    use app::session::Role;
    use attest_server::access::{ReadTurns, ScopedStore, Viewer};
    use std::sync::Arc;
    use std::time::Duration;

    let server = common::start(common::test_config()).await;
    let tenant = format!("turns-{}", &common::unique()[..12]);
    let now = attest_server::ingest::now_ms();
    let events: Vec<Value> = (0..5)
        .map(|n| event(&format!("turn-{n}"), &tenant, now - (n + 1) * MINUTE))
        .collect();
    seed(&server, &events).await;
    // After seeding: a panel counts what was received up to its `now`.
    let now = attest_server::ingest::now_ms();
    let viewer = |access_id: &str| Viewer {
        access_id: access_id.into(),
        name: access_id.into(),
        tenants: vec![tenant.clone()],
        all_tenants: false,
        signed_in: true,
        role: Role::Analyst,
    };
    let turns = ReadTurns::new(1);
    let alice =
        Arc::new(ScopedStore::new(store(&server), viewer("a11ce0000000000a")).taking_turns(&turns));
    let bob = ScopedStore::new(store(&server), viewer("b0b0000000000000b")).taking_turns(&turns);
    let query = search_query(&SearchParams {
        tenant: Some(tenant.clone()),
        range: TimeRange::Last24Hours,
        ..SearchParams::default()
    });

    // Alice's one turn is taken (as by a long panel query of hers).
    let held = turns.of("a11ce0000000000a").take().await;
    assert!(held.is_some());
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiting = Vec::new();
    for (n, panel) in [Panel::Tenants, Panel::Heatmap, Panel::NewActors]
        .into_iter()
        .enumerate()
    {
        let (alice, query, order) = (alice.clone(), query.clone(), order.clone());
        let mut asked = Box::pin(async move {
            let data = EventStore::dashboard_panel(&*alice, &query, panel, "UTC", now).await;
            order.lock().unwrap().push(n);
            data
        });
        // Polled once here, so each is queued for a turn before the next
        // asks (as the page's resources ask, one after another), however
        // busy the machine is; then it waits in a task of its own.
        assert!(futures::poll!(&mut asked).is_pending());
        waiting.push(tokio::spawn(asked));
    }
    let series = {
        let (alice, query) = (alice.clone(), query.clone());
        tokio::spawn(async move {
            EventStore::time_series(&*alice, &query, SeriesBy::Category, now).await
        })
    };
    // Bob is not queued behind her.
    let bobs = tokio::time::timeout(
        Duration::from_secs(60),
        EventStore::time_series(&bob, &query, SeriesBy::Outcome, now),
    )
    .await
    .expect("bob's panel waited for alice's turn")
    .unwrap();
    assert_eq!(bobs.counts.iter().flatten().sum::<u64>(), 5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        order.lock().unwrap().is_empty() && !series.is_finished(),
        "alice's panels ran while her turn was taken"
    );

    drop(held);
    for panel in waiting {
        let data = tokio::time::timeout(Duration::from_secs(60), panel)
            .await
            .expect("a waiting panel never got its turn")
            .unwrap();
        data.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        vec![0, 1, 2],
        "not in the order asked"
    );
    let series = series.await.unwrap().unwrap();
    assert_eq!(series.counts.iter().flatten().sum::<u64>(), 5);
    server.stop().await;
}
