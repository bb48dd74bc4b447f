//! Saved searches against the real ClickHouse: kept, listed by name,
//! deleted, through the store and the server functions the page uses.

mod common;
mod search_support;

use app::model::TimeRange;
use app::search_state::{Column, SearchParams};
use app::store::EventStore;

use search_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_searches_are_kept_listed_and_deleted() {
    let server = common::start(common::test_config()).await;
    let store = store(&server);
    let now = attest_server::ingest::now_ms();

    // Through the store: the cursor is not kept, everything else is.
    let params = SearchParams {
        q: "actor:bob".into(),
        tenant: Some("acme".into()),
        range: TimeRange::Last7Days,
        cursor: Some("1.2.61.62".into()),
        columns: vec![Column::Time, Column::Actor],
        ..SearchParams::default()
    };
    let week = EventStore::save_search(&store, "bob's week", &params, now)
        .await
        .unwrap();
    assert_eq!(week.params.cursor, None);
    assert_eq!(week.params.first_page(), params.first_page());
    assert_eq!(
        EventStore::saved_searches(&store).await.unwrap(),
        std::slice::from_ref(&week)
    );

    // Through the server functions, as the page's forms send them.
    let form = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let (status, alpha) = server_fn(
        &server,
        "search/saved/save",
        &form(&[
            ("name", "  alpha "),
            ("q", "outcome:failure"),
            ("range", "1h"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{alpha}");
    assert_eq!(alpha["name"], "alpha");
    let hostile = "'; DROP TABLE attest_saved_searches; --";
    let (status, _) = server_fn(&server, "search/saved/save", &form(&[("name", hostile)])).await;
    assert_eq!(status, 200);
    for (bad, why) in [
        (form(&[("name", " ")]), "BadRequest"),
        (form(&[("name", "x"), ("q", "actr:bob")]), "BadQuery"),
        (form(&[("name", "x"), ("to", "2026-01-01")]), "BadRequest"),
    ] {
        let (status, answer) = server_fn(&server, "search/saved/save", &bad).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.get(why).is_some(), "{answer}");
    }
    let names = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, list) = server_fn(&server, "search/saved", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(names(&list), [hostile, "alpha", "bob's week"]);

    // Deleting leaves the others; deleting what is gone (or never was) is
    // refused, never a 200 that did nothing.
    let (status, _) = server_fn(&server, "search/saved/delete", &[("id", week.id.clone())]).await;
    assert_eq!(status, 200);
    for id in [week.id.as_str(), "nope"] {
        let (status, answer) =
            server_fn(&server, "search/saved/delete", &form(&[("id", id)])).await;
        assert_eq!(status, 403, "{id}: {answer}");
    }
    let (_, list) = server_fn(&server, "search/saved", &[]).await;
    assert_eq!(names(&list), [hostile, "alpha"]);
    assert_eq!(list[1]["params"]["q"], "outcome:failure");
    server.stop().await;
}
