//! `metadata.*` keys in Search (issue 17), against the real stack: a
//! page's hits carry the values of its metadata columns and nothing else;
//! the metadata facets (keys, then one key's values) count exactly like
//! the other facets, re-delivered copies included, and a value's count is
//! what Search finds with `metadata.<key>:"value"` added; the query bar's
//! recent keys never show a viewer another tenant's keys, through the
//! store and through the server function; "Count by" a metadata key counts
//! like its facet, with a row for the events without the key, within the
//! viewer's tenants.

mod common;
mod console_support;
mod search_support;

use std::time::Duration;

use app::search_model::{
    CountBy, CountField, MetadataKey, COUNT_BY_VALUES, FACET_VALUES, RECENT_METADATA_DAYS,
};
use app::session::Role;
use app::store::{EventStore, StoreError};
use attest_server::access::{ScopedStore, Viewer};
use serde_json::{json, Value};

use console_support::{grant, Browser};
use search_support::*;

/// acme: tickets on most events (two share one), regions on some, a key no
/// query can name, a key only acme has; globex: keys of its own.
fn seeded(now: i64) -> Vec<Value> {
    let at = |minutes: i64| now - minutes * MINUTE;
    let mut events = Vec::new();
    for (n, ticket) in ["SEC-1", "SEC-1", "SEC-2", "SEC-3", "SEC-1", "SEC-4"]
        .into_iter()
        .enumerate()
    {
        let mut metadata = json!({"ticket": ticket});
        if n % 2 == 0 {
            metadata["region"] = json!(if n == 0 { "eu-west-1" } else { "us-east-1" });
        }
        if n == 1 {
            metadata["needs review"] = json!("yes");
            metadata["acme_only"] = json!("x");
        }
        events.push(with(
            event(&format!("meta-{n}"), "acme", at(n as i64 + 1)),
            json!({ "metadata": metadata }),
        ));
    }
    events.push(event("no-metadata", "acme", at(9)));
    events.push(with(
        event("globex-1", "globex", at(2)),
        json!({"metadata": {"ticket": "SEC-1", "globex_only": "secret-value"}}),
    ));
    events
}

/// A console page as the server renders it (no script runs).
async fn page_html(server: &common::TestServer, path: &str) -> String {
    server
        .http
        .get(format!("{}{path}", server.base_url))
        .send()
        .await
        .expect("attest reachable")
        .text()
        .await
        .unwrap_or_default()
}

fn keys(found: &[MetadataKey]) -> Vec<(&str, u64)> {
    found.iter().map(|k| (k.key.as_str(), k.events)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_facets_are_exact_under_a_duplicated_delivery() {
    let server = common::start(common::test_config()).await;
    let seeded_at = attest_server::ingest::now_ms();
    let events = seeded(seeded_at);
    seed(&server, &events).await;
    // A re-delivered batch: its copies stay stored, and count once.
    keep_duplicates(&server).await;
    seed(&server, &events[..4]).await;
    let stored: u64 = server
        .clickhouse("SELECT count() FROM audit_events WHERE tenant_id = 'acme'")
        .await
        .trim()
        .parse()
        .expect("a count");
    assert_eq!(stored, 11, "the copies are stored");
    let store = store(&server);
    let now = attest_server::ingest::now_ms();
    let (from, to) = last_day().bounds(now);

    for (q, condition) in [
        ("", "1"),
        ("outcome:success", "outcome = 'success'"),
        (
            "metadata.region:eu-west-1",
            "arrayExists((k, v) -> k = 'region' AND v = 'eu-west-1', metadata.key, metadata.value)",
        ),
    ] {
        let search = query(q, Some("acme"), last_day());
        let facets = EventStore::facets(&store, &search, now).await.unwrap();
        let direct = server
            .clickhouse(&format!(
                "SELECT key, uniqExact(tenant_id, event_id, content_hash) AS n \
                 FROM audit_events ARRAY JOIN metadata.key AS key \
                 WHERE tenant_id = 'acme' AND occurred_at >= {from} AND occurred_at <= {to} \
                 AND received_at <= {now} AND ({condition}) AND key != 'needs review' \
                 GROUP BY key ORDER BY n DESC, key FORMAT TSV"
            ))
            .await;
        let direct: Vec<(String, u64)> = tsv_lines(&direct)
            .into_iter()
            .map(|row| (row[0].clone(), row[1].parse().expect("a count")))
            .collect();
        let got: Vec<(String, u64)> = keys(&facets.metadata)
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect();
        assert_eq!(got, direct, "{q:?}");
        assert_eq!(facets.snapshot_ms, now);

        for key in &facets.metadata {
            let counted = EventStore::metadata_values(&store, &search, &key.key, now)
                .await
                .unwrap();
            assert_eq!(counted.key, key.key);
            let direct = server
                .clickhouse(&format!(
                    "SELECT value, uniqExact(tenant_id, event_id, content_hash) AS n \
                     FROM audit_events ARRAY JOIN metadata.key AS k, metadata.value AS value \
                     WHERE tenant_id = 'acme' AND occurred_at >= {from} AND occurred_at <= {to} \
                     AND received_at <= {now} AND ({condition}) AND k = '{}' \
                     GROUP BY value ORDER BY n DESC, value LIMIT {FACET_VALUES} FORMAT TSV",
                    key.key
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
            assert_eq!(got, direct, "{q:?} metadata.{}", key.key);
            // An event has one value per key: the values add up to the key.
            let sum: u64 = counted.values.iter().map(|v| v.events).sum();
            assert_eq!(sum, key.events, "{q:?} metadata.{}", key.key);
            // A click on a value finds exactly that many events.
            for value in &counted.values {
                let narrowed =
                    app::query::and_term(q, &format!("metadata.{}", key.key), &value.value, false);
                // (A term the query holds already is not added twice.)
                assert!(narrowed.contains(&format!("metadata.{}:", key.key)));
                let found = ids(&store, query(&narrowed, Some("acme"), last_day()), now).await;
                assert_eq!(found.len() as u64, value.events, "{narrowed}");
            }
        }
    }

    // The whole tenant, by name: tickets on six events (four of them
    // stored twice), SEC-1 on three; the key no query can name is left out.
    let search = query("", Some("acme"), last_day());
    let facets = EventStore::facets(&store, &search, now).await.unwrap();
    assert_eq!(
        keys(&facets.metadata),
        [("ticket", 6), ("region", 3), ("acme_only", 1)]
    );
    let tickets = EventStore::metadata_values(&store, &search, "ticket", now)
        .await
        .unwrap();
    let tally: Vec<(&str, u64)> = tickets
        .values
        .iter()
        .map(|v| (v.value.as_str(), v.events))
        .collect();
    assert_eq!(
        tally,
        [("SEC-1", 3), ("SEC-2", 1), ("SEC-3", 1), ("SEC-4", 1)]
    );
    for bad in ["needs review", "", "a'b"] {
        let refused = EventStore::metadata_values(&store, &search, bad, now).await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(m)) if m.starts_with("key:")),
            "{bad:?}: {refused:?}"
        );
    }

    // A page's hits carry the values of the metadata columns asked for,
    // in the event's order, and no other metadata.
    let mut page_query = query("", Some("acme"), last_day());
    let page = EventStore::search(&store, &page_query, now).await.unwrap();
    assert!(page.hits.iter().all(|h| h.metadata.is_empty()));
    page_query.metadata_keys = vec!["ticket".into(), "region".into(), "a'b".into()];
    let page = EventStore::search(&store, &page_query, now).await.unwrap();
    assert_eq!(page.hits.len(), 7, "each event once");
    let by_id = |id: &str| {
        page.hits
            .iter()
            .find(|h| h.event_id == id)
            .unwrap_or_else(|| panic!("{id} on the page"))
            .metadata
            .clone()
    };
    // Ingest stores an event's metadata sorted by key: region, then ticket.
    assert_eq!(
        by_id("meta-0"),
        [
            ("region".to_owned(), "eu-west-1".to_owned()),
            ("ticket".to_owned(), "SEC-1".to_owned())
        ]
    );
    assert_eq!(by_id("meta-1"), [("ticket".to_owned(), "SEC-1".to_owned())]);
    assert!(by_id("no-metadata").is_empty());
    let hit = page.hits.iter().find(|h| h.event_id == "meta-2").unwrap();
    assert_eq!(hit.metadata_value("region"), Some("us-east-1"));
    assert_eq!(hit.metadata_value("needs review"), None);

    // The live tail's rows carry the same columns' values.
    // The tail reads below the writers' commits: once every posted event
    // (and the four sent again) is committed, as the server reads them.
    common::wait_committed(&server.config, events.len() as i64 + 4).await;
    let delivered =
        attest_server::write::delivered::DeliveredOffsets::new(&server.config.kafka, "attest-tail")
            .expect("an offsets reader")
            .now()
            .await
            .expect("the committed offsets");
    let position = app::tail::TailPosition::starting(seeded_at - 1);
    let batch = EventStore::tail(&store, &page_query, &position, &delivered, now)
        .await
        .unwrap();
    let tailed = batch
        .hits
        .iter()
        .find(|h| h.event_id == "meta-0")
        .expect("meta-0 in the tail");
    assert_eq!(tailed.metadata, by_id("meta-0"));
    assert!(batch.hits.iter().all(|h| h
        .metadata
        .iter()
        .all(|(k, _)| k == "ticket" || k == "region")));

    // Through the server function, as the page asks: `cols` as in the URL.
    let (status, answer) = server_fn(
        &server,
        "search/page",
        &[
            ("tenant", "acme".into()),
            ("cols", "time,metadata.ticket".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let hits = answer["hits"].as_array().expect("hits");
    let first = hits
        .iter()
        .find(|h| h["event_id"] == "meta-0")
        .expect("meta-0");
    assert_eq!(first["metadata"], json!([["ticket", "SEC-1"]]));
    let (status, answer) = server_fn(
        &server,
        "search/metadata_values",
        &[("tenant", "acme".into()), ("key", "ticket".into())],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["values"][0], json!({"value": "SEC-1", "events": 3}));
    let (status, answer) = server_fn(
        &server,
        "search/metadata_values",
        &[("tenant", "acme".into()), ("key", "needs review".into())],
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("key:"), "{answer}");
    // The page as the server renders it: the metadata column with each
    // event's value, and the metadata keys among the facets.
    let html = page_html(&server, "/search?tenant=acme&cols=time,metadata.ticket").await;
    assert!(
        html.contains("<th scope=\"col\">metadata.ticket</th>"),
        "{html}"
    );
    assert_eq!(html.matches("data-metadata-key=\"ticket\"").count(), 7);
    assert!(html.contains(">SEC-4</td>"), "{html}");
    assert!(html.contains("data-testid=\"metadata-facets\""), "{html}");
    assert!(html.contains("data-facet=\"metadata.ticket\""), "{html}");
    // The column chooser: the column shown, and the search's other keys.
    assert!(html.contains("id=\"col-metadata.ticket\""), "{html}");
    assert!(html.contains("id=\"col-metadata.region\""), "{html}");

    // Hostile values: a 400 naming what is wrong, or nothing extra; never
    // a 500.
    let (status, answer) = server_fn(
        &server,
        "search/metadata_values",
        &[("key", "ticket".into()), ("snapshot", i64::MIN.to_string())],
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server_fn(
        &server,
        "search/metadata_values",
        &[("key", "ticket') OR 1=1 --".into())],
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server_fn(
        &server,
        "search/page",
        &[
            ("tenant", "acme".into()),
            ("cols", "metadata.x') OR 1=1 --,metadata.ticket'".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let hits = answer["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 7);
    assert!(hits.iter().all(|h| h["metadata"] == json!([])), "{answer}");

    server.stop().await;
}

fn viewer(tenants: &[&str], all: bool) -> Viewer {
    Viewer {
        access_id: "0123456789abcdef".into(),
        name: "tester".into(),
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
        all_tenants: all,
        signed_in: true,
        role: Role::Analyst,
    }
}

fn names(found: &[MetadataKey]) -> Vec<&str> {
    let mut names: Vec<&str> = found.iter().map(|k| k.key.as_str()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_metadata_keys_respect_tenant_scope() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.console.access_refresh = Duration::from_millis(200);
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    let mut events = seeded(now);
    // Older than the recent window: not suggested.
    events.push(with(
        event(
            "acme-old",
            "acme",
            now - (RECENT_METADATA_DAYS + 1) * 86_400_000,
        ),
        json!({"metadata": {"too_old": "1"}}),
    ));
    seed(&server, &events).await;
    let store = store(&server);
    let now = attest_server::ingest::now_ms();

    // Each viewer through their own scoped store; the store's clones share
    // one cache, so an answer cached for one scope must not serve another.
    let acme = ScopedStore::new(store.clone(), viewer(&["acme"], false));
    let globex = ScopedStore::new(store.clone(), viewer(&["globex"], false));
    let everyone = ScopedStore::new(store.clone(), viewer(&[], true));
    let nobody = ScopedStore::new(store.clone(), Viewer::nobody());
    let acme_keys = ["acme_only", "region", "ticket"];
    for _ in 0..2 {
        let seen = EventStore::recent_metadata_keys(&acme, None, now)
            .await
            .unwrap();
        assert_eq!(names(&seen), acme_keys);
        assert_eq!(seen[0].key, "ticket");
        let seen = EventStore::recent_metadata_keys(&globex, None, now)
            .await
            .unwrap();
        assert_eq!(names(&seen), ["globex_only", "ticket"]);
        // Asking for another tenant by name is refused, not answered.
        let refused = EventStore::recent_metadata_keys(&acme, Some("globex"), now).await;
        assert!(
            matches!(refused, Err(StoreError::Forbidden(_))),
            "{refused:?}"
        );
        let refused = EventStore::recent_metadata_keys(&acme, Some("acme,globex"), now).await;
        assert!(
            matches!(refused, Err(StoreError::Forbidden(_))),
            "{refused:?}"
        );
        assert!(EventStore::recent_metadata_keys(&nobody, None, now)
            .await
            .is_err());
        let all = EventStore::recent_metadata_keys(&everyone, None, now)
            .await
            .unwrap();
        assert_eq!(
            names(&all),
            ["acme_only", "globex_only", "region", "ticket"]
        );
        let one = EventStore::recent_metadata_keys(&everyone, Some("globex"), now)
            .await
            .unwrap();
        assert_eq!(names(&one), ["globex_only", "ticket"]);
    }
    // The keys' scan takes one of the viewer's turns; an answer from the
    // cache takes none (it does not scan), so it never queues behind the
    // viewer's other reads.
    let turns = attest_server::access::ReadTurns::new(1);
    let both =
        ScopedStore::new(store.clone(), viewer(&["acme", "globex"], false)).taking_turns(&turns);
    let held = turns.of("0123456789abcdef").take().await;
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        EventStore::recent_metadata_keys(&both, None, now),
    )
    .await;
    assert!(waited.is_err(), "the keys were read without a turn");
    drop(held);
    let read = EventStore::recent_metadata_keys(&both, None, now)
        .await
        .unwrap();
    assert_eq!(
        names(&read),
        ["acme_only", "globex_only", "region", "ticket"]
    );
    let _held = turns.of("0123456789abcdef").take().await;
    let cached = tokio::time::timeout(
        Duration::from_secs(5),
        EventStore::recent_metadata_keys(&both, None, now),
    )
    .await
    .expect("a cached answer waited for a turn")
    .unwrap();
    assert_eq!(names(&cached), names(&read));

    // The metadata facets of a scoped viewer stay in their tenants too.
    let search = query("", None, last_day());
    let facets = EventStore::facets(&acme, &search, now).await.unwrap();
    assert_eq!(names(&facets.metadata), acme_keys);
    let refused = EventStore::metadata_values(
        &acme,
        &query("", Some("globex"), last_day()),
        "globex_only",
        now,
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Forbidden(_))),
        "{refused:?}"
    );

    // Through the console: a signed-in viewer of acme gets acme's keys
    // only, whatever the request names.
    let alice_key = grant(
        &config,
        &["--name", "alice@acme.example", "--tenant", "acme"],
    );
    let mut alice = Browser::new(&server.base_url);
    let (status, answer) = alice.call("search/metadata_keys", &[]).await;
    assert_eq!(status, 401, "{answer}");
    alice.sign_in(&alice_key, "/search").await;
    let (status, answer) = alice.call("search/metadata_keys", &[]).await;
    assert_eq!(status, 200, "{answer}");
    let mut seen: Vec<&str> = answer
        .as_array()
        .unwrap_or_else(|| panic!("keys in {answer}"))
        .iter()
        .filter_map(|k| k["key"].as_str())
        .collect();
    seen.sort();
    assert_eq!(seen, acme_keys);
    assert!(!answer.to_string().contains("globex_only"));
    let (status, answer) = alice
        .call("search/metadata_keys", &[("tenant", "globex")])
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(!answer.to_string().contains("globex_only"));
    let (status, answer) = alice
        .call(
            "search/metadata_values",
            &[("tenant", "globex"), ("key", "globex_only")],
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    assert!(!answer.to_string().contains("secret-value"));

    server.stop().await;
}

fn tally(counted: &CountBy) -> Vec<(&str, u64)> {
    counted
        .values
        .iter()
        .map(|v| (v.value.as_str(), v.events))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_by_a_metadata_key_is_exact_and_scoped() {
    let server = common::start(common::test_config()).await;
    let seeded_at = attest_server::ingest::now_ms();
    let mut events = seeded(seeded_at);
    // An empty ticket is a value like any other; a value over two lines
    // still counts as having the key (`-metadata.note:*` must not find it).
    events.push(with(
        event("meta-empty", "acme", seeded_at - 10 * MINUTE),
        json!({"metadata": {"ticket": ""}}),
    ));
    events.push(with(
        event("meta-lines", "acme", seeded_at - 11 * MINUTE),
        json!({"metadata": {"note": "two\nlines"}}),
    ));
    seed(&server, &events).await;
    // A re-delivered batch: its copies stay stored, and count once.
    keep_duplicates(&server).await;
    seed(&server, &events[..4]).await;
    seed(&server, &events[events.len() - 2..]).await;
    let store = store(&server);
    let now = attest_server::ingest::now_ms();
    let (from, to) = last_day().bounds(now);
    let key = |k: &str| CountField::Metadata(k.to_owned());

    // By hand: acme's nine events, six tickets of which three SEC-1, one
    // empty; three regions; one note. Most first, ties by value.
    let search = query("", Some("acme"), last_day());
    let tickets = EventStore::count_by(&store, &search, key("ticket"), now)
        .await
        .unwrap();
    assert_eq!(tickets.field, key("ticket"));
    assert_eq!(
        tally(&tickets),
        [
            ("SEC-1", 3),
            ("", 1),
            ("SEC-2", 1),
            ("SEC-3", 1),
            ("SEC-4", 1)
        ]
    );
    assert_eq!((tickets.total, tickets.without_key), (9, Some(2)));
    assert_eq!(tickets.snapshot_ms, now);
    let regions = EventStore::count_by(&store, &search, key("region"), now)
        .await
        .unwrap();
    assert_eq!(tally(&regions), [("us-east-1", 2), ("eu-west-1", 1)]);
    assert_eq!((regions.total, regions.without_key), (9, Some(6)));
    let notes = EventStore::count_by(&store, &search, key("note"), now)
        .await
        .unwrap();
    assert_eq!(tally(&notes), [("two\nlines", 1)]);
    assert_eq!(notes.without_key, Some(8));
    // A key no event has: no values, every event without it.
    let absent = EventStore::count_by(&store, &search, key("absent"), now)
        .await
        .unwrap();
    assert_eq!((absent.values.len(), absent.without_key), (0, Some(9)));
    // A fixed field has no "without" row.
    let actors = EventStore::count_by(
        &store,
        &search,
        app::search_model::FacetField::Actor.into(),
        now,
    )
    .await
    .unwrap();
    assert_eq!(actors.without_key, None);
    for bad in ["needs review", "", "a'b"] {
        let refused = EventStore::count_by(&store, &search, key(bad), now).await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(m)) if m.starts_with("field:")),
            "{bad:?}: {refused:?}"
        );
    }

    // Against a direct count, under other queries too; each row's link
    // finds exactly its count, and the rows add up to the total.
    for (q, condition) in [
        ("", "1"),
        ("outcome:success", "outcome = 'success'"),
        (
            "metadata.region:us-east-1 OR metadata.note:*",
            "arrayExists((k, v) -> (k = 'region' AND v = 'us-east-1') OR k = 'note', \
             metadata.key, metadata.value)",
        ),
    ] {
        let search = query(q, Some("acme"), last_day());
        let found = ids(&store, search.clone(), now).await;
        for name in ["ticket", "region", "note"] {
            let counted = EventStore::count_by(&store, &search, key(name), now)
                .await
                .unwrap_or_else(|e| panic!("{q:?} {name}: {e}"));
            let context = format!("{q:?} metadata.{name}");
            if name != "note" {
                let direct = server
                    .clickhouse(&format!(
                        "SELECT value, uniqExact(tenant_id, event_id, content_hash) AS n \
                         FROM audit_events ARRAY JOIN metadata.key AS k, metadata.value AS value \
                         WHERE tenant_id = 'acme' AND occurred_at >= {from} AND occurred_at <= {to} \
                         AND received_at <= {now} AND ({condition}) AND k = '{name}' \
                         GROUP BY value ORDER BY n DESC, value LIMIT {COUNT_BY_VALUES} FORMAT TSV"
                    ))
                    .await;
                let direct: Vec<(String, u64)> = tsv_lines(&direct)
                    .into_iter()
                    .map(|row| (row[0].clone(), row[1].parse().expect("a count")))
                    .collect();
                let got: Vec<(String, u64)> = tally(&counted)
                    .into_iter()
                    .map(|(v, n)| (v.to_owned(), n))
                    .collect();
                assert_eq!(got, direct, "{context}");
            }
            assert_eq!(counted.total, found.len() as u64, "{context}");
            let without = counted.without_key.expect("a key's count has the row");
            let sum: u64 = counted.values.iter().map(|v| v.events).sum();
            assert_eq!(sum + without, counted.total, "{context}");
            let field = format!("metadata.{name}");
            for value in &counted.values {
                let narrowed = app::query::and_term(q, &field, &value.value, false);
                let hits = ids(&store, query(&narrowed, Some("acme"), last_day()), now).await;
                assert_eq!(hits.len() as u64, value.events, "{narrowed}");
            }
            let lacking = app::query::and_without_key(q, name);
            let hits = ids(&store, query(&lacking, Some("acme"), last_day()), now).await;
            assert_eq!(hits.len() as u64, without, "{lacking}");
        }
    }

    // A viewer of acme counts acme's events only, whatever the request
    // names; a viewer of every tenant counts globex's SEC-1 too.
    let acme = ScopedStore::new(store.clone(), viewer(&["acme"], false));
    let everyone = ScopedStore::new(store.clone(), viewer(&[], true));
    let every_tenant = query("", None, last_day());
    let seen = EventStore::count_by(&acme, &every_tenant, key("ticket"), now)
        .await
        .unwrap();
    assert_eq!(seen, tickets);
    let secret = EventStore::count_by(&acme, &every_tenant, key("globex_only"), now)
        .await
        .unwrap();
    assert_eq!((secret.values.len(), secret.without_key), (0, Some(9)));
    let refused = EventStore::count_by(
        &acme,
        &query("", Some("globex"), last_day()),
        key("globex_only"),
        now,
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Forbidden(_))),
        "{refused:?}"
    );
    let all = EventStore::count_by(&everyone, &every_tenant, key("ticket"), now)
        .await
        .unwrap();
    assert_eq!(all.values[0].value, "SEC-1");
    assert_eq!(all.values[0].events, 4);
    assert_eq!((all.total, all.without_key), (10, Some(2)));

    // Through the server function, as the page asks.
    let (status, answer) = server_fn(
        &server,
        "search/count_by",
        &[
            ("tenant", "acme".into()),
            ("field", "metadata.ticket".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["field"], json!({"Metadata": "ticket"}));
    assert_eq!(answer["values"][0], json!({"value": "SEC-1", "events": 3}));
    assert_eq!(
        (answer["total"].as_u64(), answer["without_key"].as_u64()),
        (Some(9), Some(2))
    );
    for bad in [
        "metadata.needs review",
        "metadata.",
        "metadata.x') OR 1=1 --",
        "nonsense",
    ] {
        let (status, answer) = server_fn(
            &server,
            "search/count_by",
            &[("tenant", "acme".into()), ("field", bad.into())],
        )
        .await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer.to_string().contains("field:"), "{bad}: {answer}");
    }

    // The page as the server renders it: the key chosen, its values, the
    // row without it and that row's link.
    let html = page_html(&server, "/search?tenant=acme&count_by=metadata.ticket").await;
    assert!(html.contains("data-field=\"metadata.ticket\""), "{html}");
    assert!(html.contains("<optgroup label=\"Metadata\">"), "{html}");
    assert!(html.contains("value=\"metadata.ticket\""), "{html}");
    assert!(html.contains("data-value=\"SEC-1\""), "{html}");
    assert!(html.contains("data-missing-key=\"ticket\""), "{html}");
    assert!(html.contains("(no metadata.ticket)"), "{html}");
    assert!(
        html.contains("href=\"/search?q=-metadata.ticket%3A%2A&"),
        "{html}"
    );

    server.stop().await;
}
