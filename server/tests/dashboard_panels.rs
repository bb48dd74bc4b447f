//! Dashboard panels 4–9 against the real stack: on 100,000 generated
//! events in three tenants, each panel's numbers equal the test's own count
//! of the generated events (and the raw table's) for the same filters, with
//! re-delivered copies stored; every row and cell's Search link finds
//! exactly its value; and a viewer of one tenant gets nothing of another
//! from the panel server function. Seeded as `dashboard.rs` seeds, for the
//! reason given there.

mod common;
mod console_support;
mod search_support;

use std::collections::{BTreeMap, BTreeSet};

use app::dashboard_model::{
    cell_href, change_href, new_actor_href, value_href, Breakdown, HeatMap, NewActors, Panel,
    PanelData, TopField,
};
use app::model::TimeRange;
use app::search_model::SearchQuery;
use app::search_state::{SearchParams, TimeWindow};
use app::store::EventStore;
use serde_json::{json, Value};

use console_support::{grant, Browser};
use search_support::*;

const DAY: i64 = 24 * 60 * MINUTE;

#[derive(Clone, Debug)]
struct Made {
    id: String,
    tenant: String,
    at: i64,
    category: &'static str,
    outcome: &'static str,
    actor: String,
    action: String,
    ip: &'static str,
    service: &'static str,
    privileged: bool,
}

impl Made {
    fn json(&self) -> Value {
        let mut actor = json!({"id": self.actor});
        if !self.ip.is_empty() {
            actor["ip"] = json!(self.ip);
        }
        let mut fields = json!({
            "category": self.category,
            "outcome": self.outcome,
            "action": self.action,
            "actor": actor,
            "source_service": self.service,
        });
        if self.privileged {
            fields["metadata"] = json!({"privileged": "true"});
        }
        with(event(&self.id, &self.tenant, self.at), fields)
    }

    fn failed(&self) -> bool {
        self.outcome != "success"
    }

    fn field(&self, field: TopField) -> String {
        match field {
            TopField::Ip => self.ip.to_owned(),
            TopField::Service => self.service.to_owned(),
            TopField::Action => self.action.clone(),
            TopField::Actor => self.actor.clone(),
            TopField::Tenant => self.tenant.clone(),
        }
    }
}

const CATEGORIES: [&str; 6] = [
    "authentication",
    "data_access",
    "data_modification",
    "permission_change",
    "admin",
    "system",
];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];
const IPS: [&str; 5] = ["10.0.0.1", "10.0.0.2", "203.0.113.9", "", "2001:db8::7"];
const SERVICES: [&str; 4] = ["sso", "billing", "iam", "docs"];

/// `count` events over the last 20 days: older actors act throughout, a
/// few new ones only start inside the last week or day.
fn generate(tenant: &str, run: &str, now: i64, count: i64) -> Vec<Made> {
    // Back from a minute ago, evenly over 20 days whatever the count.
    let step = 20 * DAY / count.max(1);
    (0..count)
        .map(|i| {
            let n = i as usize;
            let at = now - MINUTE - i * step;
            let age_days = (now - at) / DAY;
            // Actors "new-k" act only in their last k days, every 13th event.
            let actor = if n.is_multiple_of(13) && age_days < 6 {
                format!("new-{}-{run}", age_days.min(3))
            } else {
                format!("actor-{}-{run}", n % 9)
            };
            Made {
                id: format!("{run}-{i}"),
                tenant: tenant.to_owned(),
                at,
                category: CATEGORIES[n % CATEGORIES.len()],
                outcome: OUTCOMES[(n / 2) % 3],
                actor,
                action: format!("act.{}", n % 7),
                ip: IPS[n % IPS.len()],
                service: SERVICES[(n / 3) % SERVICES.len()],
                privileged: n.is_multiple_of(17),
            }
        })
        .collect()
}

fn matches(q: &str, e: &Made) -> bool {
    match q {
        "" => true,
        "service:billing OR actor:actor-3-*" => {
            e.service == "billing" || e.actor.starts_with("actor-3-")
        }
        "actor:nobody-at-all" => false,
        other => panic!("the test knows no query {other}"),
    }
}

fn in_panel(panel: Panel, e: &Made) -> bool {
    match panel {
        Panel::FailureSources => e.failed(),
        Panel::Changes => e.category == "permission_change",
        Panel::Privileged => e.category == "admin" || e.privileged,
        Panel::NewActors | Panel::Heatmap | Panel::Tenants => true,
    }
}

/// Top 10 by count, ties by value, empty values left out.
fn top(events: &[&Made], field: TopField) -> Vec<(String, u64)> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        let v = e.field(field);
        if !v.is_empty() {
            *counts.entry(v).or_default() += 1;
        }
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(10);
    v
}

fn link_params(href: &str) -> SearchParams {
    let query = href.split_once('?').map_or("", |(_, q)| q);
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    SearchParams::from_lookup(|key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
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

/// What Search finds behind a link.
async fn found(store: &attest_server::store::Store, href: &str, at: i64) -> u64 {
    let query = SearchQuery::from_params(&link_params(href), 100).expect("a link Search reads");
    EventStore::facets(store, &query, at)
        .await
        .unwrap_or_else(|e| panic!("{href}: {e}"))
        .total
}

/// Local weekday (Monday 0) and hour, computed here with jiff's calendar
/// rather than the panel's quarter-hour slots.
fn local(zone: &jiff::tz::TimeZone, ms: i64) -> (usize, usize) {
    let z = jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(zone.clone());
    (
        z.weekday().to_monday_zero_offset() as usize,
        z.hour() as usize,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panels_four_to_nine_equal_the_raw_count_and_their_links_find_their_values() {
    let server = common::start(common::test_config()).await;
    keep_duplicates(&server).await;
    let run = common::unique()[..10].to_owned();
    let (acme, globex) = (format!("pan-acme-{run}"), format!("pan-globex-{run}"));
    let now = attest_server::ingest::now_ms();
    let initech = format!("pan-initech-{run}");
    // 100,000 generated events in three tenants of different sizes.
    let mut made = generate(&acme, &run, now, 65_000);
    made.extend(generate(&globex, &format!("g{run}"), now, 20_000));
    made.extend(generate(&initech, &format!("i{run}"), now, 15_000));
    assert_eq!(made.len(), 100_000);
    let events: Vec<Value> = made.iter().map(Made::json).collect();
    seed_direct(&server, &events).await;
    // A batch written twice after a writer crash.
    let again: Vec<Value> = events.iter().step_by(7).cloned().collect();
    seed_direct(&server, &again).await;
    let stored: u64 = server
        .clickhouse("SELECT count() FROM audit_events")
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(
        stored > made.len() as u64,
        "the copies are stored: {stored}"
    );

    let store = store(&server);
    let at = attest_server::ingest::now_ms();
    for range in [TimeRange::Last24Hours, TimeRange::Last7Days] {
        // The last matches nothing: every panel answers zero, each of its
        // lists empty (no grouping row at all comes back).
        for q in [
            "",
            "service:billing OR actor:actor-3-*",
            "actor:nobody-at-all",
        ] {
            for tenant in [Some(acme.clone()), None] {
                let params = SearchParams {
                    q: q.to_owned(),
                    tenant: tenant.clone(),
                    range,
                    ..SearchParams::default()
                };
                let query = SearchQuery::from_params(&params, 100).unwrap();
                let (from, to) = TimeWindow::Last(range).bounds(at);
                let scoped: Vec<&Made> = made
                    .iter()
                    .filter(|e| tenant.as_ref().is_none_or(|t| *t == e.tenant))
                    .collect();
                let inside: Vec<&Made> = scoped
                    .iter()
                    .copied()
                    .filter(|e| (from..=to).contains(&e.at) && matches(q, e))
                    .collect();
                let what = format!("{range:?} {q:?} {tenant:?}");
                let follow_links = range == TimeRange::Last7Days;

                // 4, 6, 9: totals and top-N lists.
                for panel in [Panel::FailureSources, Panel::Privileged, Panel::Tenants] {
                    let PanelData::Breakdown(b) = store
                        .dashboard_panel(&query, panel, "UTC", at)
                        .await
                        .unwrap()
                    else {
                        panic!("{panel:?} answered another shape")
                    };
                    let mine: Vec<&Made> = inside
                        .iter()
                        .copied()
                        .filter(|e| in_panel(panel, e))
                        .collect();
                    assert_eq!(b.total, mine.len() as u64, "{panel:?} total {what}");
                    assert_eq!(b.lists.len(), panel.fields().len());
                    for list in &b.lists {
                        let got: Vec<(String, u64)> = list
                            .rows
                            .iter()
                            .map(|r| (r.value.clone(), r.events))
                            .collect();
                        assert_eq!(
                            got,
                            top(&mine, list.field),
                            "{panel:?} {:?} {what}",
                            list.field
                        );
                    }
                    if follow_links {
                        check_breakdown_links(&store, &params, &b, at).await;
                    }
                }
                // The raw table, by tenant, agrees with the tenants panel.
                if q.is_empty() && tenant.is_none() {
                    let raw = server
                        .clickhouse(&format!(
                            "SELECT tenant_id, uniqExact(tenant_id, event_id, content_hash) \
                             FROM audit_events WHERE occurred_at >= {from} AND occurred_at <= {to} \
                             GROUP BY tenant_id ORDER BY tenant_id"
                        ))
                        .await;
                    let want: Vec<String> = top(&inside, TopField::Tenant)
                        .into_iter()
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .map(|(t, n)| format!("{t}\t{n}"))
                        .collect();
                    assert_eq!(raw.trim().lines().collect::<Vec<_>>(), want, "raw {what}");
                }

                // 5: changes, newest first.
                let PanelData::Changes(c) = store
                    .dashboard_panel(&query, Panel::Changes, "UTC", at)
                    .await
                    .unwrap()
                else {
                    panic!("changes answered another shape")
                };
                let mut changes: Vec<&Made> = inside
                    .iter()
                    .copied()
                    .filter(|e| in_panel(Panel::Changes, e))
                    .collect();
                assert_eq!(c.total, changes.len() as u64, "changes {what}");
                // Search's page order: newest first, then the id.
                changes.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
                let want: Vec<&str> = changes.iter().take(20).map(|e| e.id.as_str()).collect();
                let got: Vec<&str> = c.newest.iter().map(|h| h.event_id.as_str()).collect();
                assert_eq!(got, want, "changes {what}");
                if follow_links {
                    for hit in c.newest.iter().take(3) {
                        assert_eq!(found(&store, &change_href(&params, hit), at).await, 1);
                    }
                }

                // 7: actors whose first event in their tenant is in the window.
                let PanelData::NewActors(n) = store
                    .dashboard_panel(&query, Panel::NewActors, "UTC", at)
                    .await
                    .unwrap()
                else {
                    panic!("new actors answered another shape")
                };
                check_new_actors(&n, &scoped, &inside, &what);
                if follow_links {
                    for row in &n.rows {
                        assert_eq!(
                            found(&store, &new_actor_href(&params, &n, row), at).await,
                            row.events,
                            "{} {what}",
                            row.actor_id
                        );
                    }
                }

                // 8: weekday × hour, in UTC and in a zone with DST.
                for zone in ["UTC", "America/New_York"] {
                    let PanelData::HeatMap(map) = store
                        .dashboard_panel(&query, Panel::Heatmap, zone, at)
                        .await
                        .unwrap()
                    else {
                        panic!("heatmap answered another shape")
                    };
                    let tz = jiff::tz::TimeZone::get(zone).unwrap();
                    let mut want = vec![vec![0u64; 24]; 7];
                    for e in &inside {
                        let (d, h) = local(&tz, e.at);
                        want[d][h] += 1;
                    }
                    assert_eq!(map.counts, want, "heatmap {zone} {what}");
                    if follow_links && zone == "America/New_York" && q.is_empty() {
                        check_cells(&store, &params, &map, at).await;
                    }
                }
            }
        }
    }
    // An unknown zone is refused with a message naming it.
    let query = SearchQuery::from_params(&SearchParams::default(), 100).unwrap();
    let refused = store
        .dashboard_panel(&query, Panel::Heatmap, "Mars/Olympus", at)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("Mars/Olympus"), "{refused}");
    server.stop().await;
}

fn check_new_actors(n: &NewActors, scoped: &[&Made], inside: &[&Made], what: &str) {
    let from = n.from_ms;
    let seen_before: BTreeSet<(&str, &str)> = scoped
        .iter()
        .filter(|e| e.at < from)
        .map(|e| (e.tenant.as_str(), e.actor.as_str()))
        .collect();
    // (tenant, actor) → (first matching event, matching events)
    let mut fresh: BTreeMap<(String, String), (i64, u64)> = BTreeMap::new();
    for e in inside {
        if seen_before.contains(&(e.tenant.as_str(), e.actor.as_str())) {
            continue;
        }
        let entry = fresh
            .entry((e.tenant.clone(), e.actor.clone()))
            .or_insert((i64::MAX, 0));
        entry.0 = entry.0.min(e.at);
        entry.1 += 1;
    }
    assert_eq!(n.total, fresh.len() as u64, "new actors {what}");
    let mut want: Vec<(String, String, i64, u64)> = fresh
        .into_iter()
        .map(|((t, a), (first, events))| (t, a, first, events))
        .collect();
    want.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    want.truncate(10);
    let got: Vec<(String, String, i64, u64)> = n
        .rows
        .iter()
        .map(|r| {
            (
                r.tenant_id.clone(),
                r.actor_id.clone(),
                r.first_ms,
                r.events,
            )
        })
        .collect();
    assert_eq!(got, want, "new actors {what}");
    // The generator makes new actors in every window this test asks (when
    // the query matches anything).
    assert!(n.total > 0 || inside.is_empty(), "{what}");
}

async fn check_breakdown_links(
    store: &attest_server::store::Store,
    params: &SearchParams,
    b: &Breakdown,
    at: i64,
) {
    for list in &b.lists {
        for row in list.rows.iter().take(3) {
            let href = value_href(params, b, list.field, &row.value);
            assert_eq!(
                found(store, &href, at).await,
                row.events,
                "{:?} {:?} {}",
                b.panel,
                list.field,
                row.value
            );
        }
    }
}

async fn check_cells(
    store: &attest_server::store::Store,
    params: &SearchParams,
    map: &HeatMap,
    at: i64,
) {
    let mut checked = 0;
    for d in 0..7 {
        for h in 0..24 {
            let Some(href) = cell_href(params, map, d, h) else {
                assert!(map.intervals[d][h].is_empty());
                continue;
            };
            // Every cell, empty ones too: Search finds nothing there.
            assert_eq!(
                found(store, &href, at).await,
                map.count(d, h),
                "cell {d} {h}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 24, "a week names every cell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_of_one_tenant_gets_nothing_of_another_from_any_panel() {
    let mut config = common::test_config();
    config.console.require_login = true;
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    let made = |id: &str, tenant: &str, actor: &str, category: &str| {
        with(
            event(id, tenant, now - 2 * MINUTE),
            json!({
                "outcome": "failure",
                "category": category,
                "actor": {"id": actor, "ip": if tenant == "acme" { "10.1.1.1" } else { "198.51.100.77" }},
                "source_service": format!("svc-{tenant}"),
                "action": "user.login",
            }),
        )
    };
    seed(
        &server,
        &[
            made("a-1", "acme", "alice", "admin"),
            made("a-2", "acme", "alice", "permission_change"),
            made("g-1", "globex", "gus-of-globex", "admin"),
            made("g-2", "globex", "gus-of-globex", "permission_change"),
            made("g-3", "globex", "gus-of-globex", "authentication"),
        ],
    )
    .await;
    let key = grant(
        &config,
        &["--name", "alice@acme.example", "--tenant", "acme"],
    );
    let mut browser = Browser::new(&server.base_url);
    let (status, _) = browser
        .call("dashboard/panel", &[("panel", "changes")])
        .await;
    assert_eq!(status, 401, "signed out: nothing");
    browser.sign_in(&key, "/dashboard").await;
    let page = browser.get("/dashboard").await;
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("gus-of-globex") && !html.contains("198.51.100.77"),
        "the first paint shows globex"
    );
    assert!(
        html.contains("svc-acme"),
        "the first paint draws panels 4–9"
    );

    for panel in Panel::ALL {
        let p = panel.param();
        for form in [vec![("panel", p)], vec![("panel", p), ("tenant", "acme")]] {
            let (status, answer) = browser.call("dashboard/panel", &form).await;
            assert_eq!(status, 200, "{form:?}: {answer}");
            let text = answer.to_string();
            for theirs in ["globex", "gus-of-globex", "198.51.100.77"] {
                assert!(!text.contains(theirs), "{p} shows {theirs}: {text}");
            }
        }
        let (status, answer) = browser
            .call("dashboard/panel", &[("panel", p), ("tenant", "globex")])
            .await;
        assert_eq!(status, 403, "{p}: {answer}");
        let (_, answer) = browser
            .call(
                "dashboard/panel",
                &[
                    ("panel", p),
                    ("q", "actor:gus-of-globex OR ip:198.51.100.77"),
                ],
            )
            .await;
        assert!(!answer.to_string().contains("globex"), "{p}: {answer}");
    }
    // Her tenant's numbers are there: the panels are not just empty.
    let (_, answer) = browser
        .call(
            "dashboard/panel",
            &[("panel", "failure-sources"), ("q", "action:user.login")],
        )
        .await;
    assert_eq!(answer["Breakdown"]["total"], 2, "{answer}");
    // Several tenants at once: only when every one is hers.
    let (status, answer) = browser
        .call(
            "dashboard/panel",
            &[("panel", "tenants"), ("tenant", "acme,globex")],
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let both = grant(
        &config,
        &[
            "--name",
            "bo@both.example",
            "--tenant",
            "acme",
            "--tenant",
            "globex",
        ],
    );
    let mut bo = Browser::new(&server.base_url);
    bo.sign_in(&both, "/dashboard").await;
    let (status, answer) = bo
        .call(
            "dashboard/panel",
            &[
                ("panel", "tenants"),
                ("tenant", "globex,acme"),
                ("q", "action:user.login"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["Breakdown"]["lists"][0]["rows"],
        json!([{"value": "globex", "events": 3}, {"value": "acme", "events": 2}])
    );
    let (status, answer) = bo
        .call(
            "dashboard/panel",
            &[("panel", "tenants"), ("tenant", "acme,initech")],
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, _) = browser
        .call("dashboard/panel", &[("panel", "nonsense")])
        .await;
    assert_eq!(status, 400);
    let (status, answer) = browser
        .call(
            "dashboard/panel",
            &[("panel", "heatmap"), ("tz", "Mars/Olympus")],
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    server.stop().await;
}
