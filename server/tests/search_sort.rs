//! Search results ordered by a column (`sort=`, `dir=`) against the real
//! stack: walking every page with a small page size gives exactly the whole
//! result in (column, newest first, identity) order, no row twice and none
//! missing, even with hundreds of rows sharing one value; the snapshot is
//! kept; counts do not change with the order; a cursor of another order is
//! refused; and an export comes in the order shown.

mod common;
mod search_support;

use std::cmp::Ordering;

use app::search_model::{SearchHit, SearchPage, SearchQuery};
use app::search_state::{Cursor, SearchParams, Sort, SortColumn, SortDir};
use app::store::EventStore;
use serde_json::{json, Value};

use search_support::*;

const ACTORS: [&str; 5] = ["carol", "alice", "erin", "bob", "dave"];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

/// Every hit of a search's pages, in page order, each page checked to keep
/// the first page's snapshot.
fn concatenated(pages: &[SearchPage]) -> Vec<SearchHit> {
    let snapshot = pages[0].snapshot_ms;
    assert!(pages.iter().all(|p| p.snapshot_ms == snapshot));
    pages.iter().flat_map(|p| p.hits.clone()).collect()
}

/// The order the pages must have: the column in its direction, then the
/// newest first, then the identity descending, as the default order.
fn expected_order(sort: Sort, a: &SearchHit, b: &SearchHit) -> Ordering {
    let by_value = match sort.column {
        SortColumn::Time => a.occurred_at.cmp(&b.occurred_at),
        column => a.sort_value(column).cmp(&b.sort_value(column)),
    };
    let by_value = match sort.dir {
        SortDir::Asc => by_value,
        SortDir::Desc => by_value.reverse(),
    };
    by_value.then_with(|| {
        (&b.occurred_at, &b.event_id, &b.tenant_id, &b.content_hash).cmp(&(
            &a.occurred_at,
            &a.event_id,
            &a.tenant_id,
            &a.content_hash,
        ))
    })
}

fn identity(h: &SearchHit) -> (String, String, String) {
    (
        h.tenant_id.clone(),
        h.event_id.clone(),
        h.content_hash.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_pages_exactly_through_many_ties() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let base = now - 10 * MINUTE;
    // 300 events in acme: 5 actors (60 each), 3 outcomes, 30 resources,
    // ten per second so times tie too; 40 in globex with the same ids and
    // times, so even (time, id) ties across tenants; the first 50 stored
    // twice, as a re-delivered batch leaves them.
    let make = |i: usize, tenant: &str| {
        with(
            event(&format!("s-{i:03}"), tenant, base - (i as i64 / 10) * 1_000),
            json!({
                "actor": {"id": ACTORS[i % 5]},
                "outcome": OUTCOMES[i % 3],
                "resource": {"type": if i.is_multiple_of(2) { "user" } else { "role" }, "id": format!("r-{}", i % 15)},
            }),
        )
    };
    let mut events: Vec<Value> = (0..300).map(|i| make(i, "acme")).collect();
    events.extend((0..40).map(|i| make(i, "globex")));
    keep_duplicates(&server).await;
    seed_direct(&server, &events).await;
    seed_direct(&server, &events[..50]).await;
    assert_eq!(server.row_count().await, 390, "copies are stored");
    assert_eq!(distinct_events(&server).await, 340);

    let store = store(&server);

    let orders = [
        (SortColumn::Actor, SortDir::Asc),
        (SortColumn::Outcome, SortDir::Desc),
        (SortColumn::Time, SortDir::Asc),
        (SortColumn::Resource, SortDir::Desc),
        (SortColumn::Tenant, SortDir::Asc),
    ];
    let mut late_events = 0;
    for (n, (column, dir)) in orders.into_iter().enumerate() {
        let sort = Sort { column, dir };
        let mut search = query("", None, last_day());
        search.sort = sort;
        // An odd page size puts page boundaries inside runs of one value.
        search.limit = 7;
        let mut pages: Vec<SearchPage> = Vec::new();
        loop {
            let page = EventStore::search(&store, &search, attest_server::ingest::now_ms())
                .await
                .unwrap();
            assert!(page.hits.len() <= 7);
            let next = page.next_cursor.clone();
            pages.push(page);
            // Events arriving between pages, of every actor: the snapshot
            // keeps them out of this search's pages.
            if pages.len() == 3 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                let late: Vec<Value> = (0..5)
                    .map(|k| {
                        let id = format!("late-{n}-{k}");
                        with(make(1_000 + k, "acme"), json!({ "event_id": id }))
                    })
                    .collect();
                seed_direct(&server, &late).await;
                late_events += late.len();
            }
            match next {
                Some(token) => {
                    let cursor = Cursor::decode(&token).expect("own cursor");
                    assert_eq!(cursor.sort, sort, "the cursor names its order");
                    search.cursor = Some(cursor);
                }
                None => break,
            }
            assert!(pages.len() < 200, "pagination does not end");
        }
        let shown = concatenated(&pages);
        // The whole result unsorted (newest first, as before sorting
        // existed) as of the same snapshot, sorted here.
        let snapshot = pages[0].snapshot_ms;
        let unsorted =
            concatenated(&all_pages(&store, query("", None, last_day()), snapshot).await);
        assert_eq!(unsorted.len(), 340 + late_events - 5, "{sort:?}");
        let mut expected = unsorted.clone();
        expected.sort_by(|a, b| expected_order(sort, a, b));
        let shown_ids: Vec<_> = shown.iter().map(identity).collect();
        let expected_ids: Vec<_> = expected.iter().map(identity).collect();
        assert_eq!(shown.len(), unsorted.len(), "{sort:?}: the unsorted count");
        assert_eq!(
            shown_ids, expected_ids,
            "{sort:?}: every event once, in (column, newest, identity) order"
        );
        assert_eq!(pages.len(), unsorted.len().div_ceil(7), "{sort:?}");
    }

    // The counts are of the same events whatever the order.
    let now = attest_server::ingest::now_ms();
    let mut by_actor = query("", None, last_day());
    by_actor.sort = Sort {
        column: SortColumn::Actor,
        dir: SortDir::Asc,
    };
    let facets_sorted = EventStore::facets(&store, &by_actor, now).await.unwrap();
    let facets_plain = EventStore::facets(&store, &query("", None, last_day()), now)
        .await
        .unwrap();
    assert_eq!(facets_sorted, facets_plain);
    assert_eq!(facets_plain.total, 340 + late_events as u64);

    // Alice, the first actor A to Z: the first page of 100 starts with all
    // her events, newest first among them.
    by_actor.limit = 100;
    let first = EventStore::search(&store, &by_actor, now).await.unwrap();
    let alice: Vec<&SearchHit> = first
        .hits
        .iter()
        .take_while(|h| h.actor_id == "alice")
        .collect();
    // acme's 60, globex's 8, and one of each late batch.
    assert_eq!(alice.len(), 60 + 8 + orders.len());
    assert!(alice
        .windows(2)
        .all(|w| w[0].occurred_at >= w[1].occurred_at));

    // A page link of one order under another is refused like a damaged
    // link, through the server function the page calls; an unknown order
    // names the parameter.
    let token = first.next_cursor.clone().expect("more than a page");
    let sorted = |sort: &str, dir: &str| {
        vec![
            ("cursor", token.clone()),
            ("sort", sort.to_string()),
            ("dir", dir.to_string()),
        ]
    };
    let (status, answer) = server_fn(&server, "search/page", &sorted("actor", "asc")).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server_fn(&server, "search/page", &sorted("outcome", "asc")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("damaged"), "{answer}");
    let (status, answer) = server_fn(&server, "search/page", &sorted("actor", "desc")).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server_fn(&server, "search/page", &[("cursor", token.clone())]).await;
    assert_eq!(status, 400, "the default order refuses it too: {answer}");
    let (status, answer) =
        server_fn(&server, "search/page", &[("sort", "bogus".to_string())]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("sort: unknown column"),
        "{answer}"
    );

    // A saved search keeps the order, and one naming an order that does
    // not exist is not kept.
    let save = |sort: &str| {
        vec![
            ("name", format!("by {sort}")),
            ("q", "outcome:failure".to_string()),
            ("sort", sort.to_string()),
            ("dir", "desc".to_string()),
        ]
    };
    let (status, saved) = server_fn(&server, "search/saved/save", &save("actor")).await;
    assert_eq!(status, 200, "{saved}");
    let kept: SearchParams = serde_json::from_value(saved["params"].clone()).unwrap();
    assert_eq!(
        kept.href(),
        "/search?q=outcome%3Afailure&sort=actor&dir=desc"
    );
    let (status, answer) = server_fn(&server, "search/saved/save", &save("received")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("sort: "), "{answer}");

    // The export of a sorted search comes in the order shown, from the
    // same parameters as the page's URL.
    let params = SearchParams {
        sort: Some("actor".into()),
        dir: Some("asc".into()),
        ..SearchParams::default()
    };
    let query_of = SearchQuery::from_params(&params, 100).unwrap();
    let all = concatenated(&all_pages(&store, query_of, attest_server::ingest::now_ms()).await);
    let mut pairs = vec![("format", "ndjson".to_string())];
    pairs.extend(params.pairs());
    let (status, _, body) = export(&server, &pairs).await;
    assert_eq!(status, 200, "{body}");
    let exported: Vec<(String, String)> = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
        .map(|l| {
            (
                l["tenant_id"].as_str().unwrap().to_owned(),
                l["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let shown: Vec<(String, String)> = all
        .iter()
        .map(|h| (h.tenant_id.clone(), h.event_id.clone()))
        .collect();
    assert_eq!(exported.len(), 340 + late_events);
    assert_eq!(exported, shown, "the export is in the order of the pages");
    let (status, _, body) = export(
        &server,
        &[
            ("format", "csv".to_string()),
            ("sort", "received".to_string()),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("sort: results cannot be ordered by received"),
        "{body}"
    );

    server.stop().await;
}
