//! The Rust client (`attest-client`) against a real server: what it queues
//! is stored once, a re-send with the same event_id is stored once, an
//! invalid event comes back naming its field, and a refused key is not
//! retried. (The broker restart: sdk/testing/restart.py.)

mod common;

use std::time::Duration;

use attest_client::{Client, Config, Error};
use serde_json::{json, Value};

fn event(n: usize) -> Value {
    json!({
        "occurred_at": attest_server::ingest::now_ms(),
        "category": "data_access",
        "action": "invoice.view",
        "outcome": "success",
        "actor": {"id": format!("user-{n}"), "type": "user", "ip": "10.0.0.1"},
        "resource": {"type": "invoice", "id": format!("inv-{n}")},
        "metadata": {"n": n.to_string()},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_stores_each_event_once_and_names_bad_fields() {
    let mut config = common::test_config();
    config.ingest.require_api_key = true;
    let server = common::start(config.clone()).await;
    let key = attest_server::open_keys(&config)
        .await
        .expect("key admin")
        .create("sdk-rust", "sdk-tests", &[], "rust client test", "test")
        .await
        .expect("key")
        .key;

    let mut settings = Config::new(&server.base_url).api_key(&key);
    settings.batch_size = 40;
    settings.linger = Duration::from_millis(50);
    let client = Client::new(settings).expect("client");

    // Queued one by one and in a batch; then a given id sent twice, as a
    // retry after a lost answer would.
    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(client.send(event(n)).await.expect("queued"));
    }
    ids.extend(
        client
            .send_batch((100..250).map(event))
            .await
            .expect("queued"),
    );
    client.flush().await.expect("all stored");
    let mut given = event(250);
    given["event_id"] = json!("given-id-1");
    let first = client.send_now([&given]).await.expect("stored");
    let second = client.send_now([&given]).await.expect("stored again");
    assert_eq!(first, ["given-id-1"]);
    assert_eq!(first, second);
    ids.push("given-id-1".to_owned());
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 251);

    // An invalid event: at once, and from the background.
    let mut bad = event(251);
    bad["actor"]["ip"] = json!("not-an-ip");
    let error = client
        .send_now([event(252), bad.clone()])
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("actor.ip"), "{error}");
    assert!(error.to_string().contains("actor.ip"), "{error}");
    let bad_id = client.send(&bad).await.expect("queued");
    match client.flush().await {
        Err(Error::Invalid(errors)) => {
            assert_eq!(errors[0].field_path, "actor.ip");
            assert_eq!(errors[0].event_id.as_deref(), Some(bad_id.as_str()));
        }
        other => panic!("expected the invalid event back, got {other:?}"),
    }
    client.close().await.expect("closed");

    // The client's events and the key's creation.
    common::wait_for_distinct(
        &server.http,
        &server.config,
        ids.len() as u64 + 1,
        Duration::from_secs(60),
    )
    .await;
    // Creating the key is an audit event of its own, in the same trail.
    let own = server
        .clickhouse("SELECT event_id FROM audit_events WHERE source_service = 'attest' FORMAT TSV")
        .await;
    ids.extend(own.lines().map(str::to_owned));
    common::assert_exactly(&server.http, &server.config, &ids).await;

    // A key Attest does not know: refused at once, not retried for minutes.
    let stranger = Client::new(Config::new(&server.base_url).api_key("ak_unknown")).unwrap();
    match stranger.send_now([event(1)]).await {
        Err(Error::Refused { status: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    server.stop().await;
}
