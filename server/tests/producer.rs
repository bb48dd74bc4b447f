//! A producer broken for good is replaced by itself: after a fatal error
//! (the state a broker crash left the idempotent producer in, put there
//! with librdkafka's own test hook), events still get 202, the spool drains
//! with nobody restarting anything, and every event is stored once.

mod common;

use std::time::{Duration, Instant};

use search_support::{event, post_all};

mod search_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_with_a_fatal_error_is_replaced_and_the_spool_drains() {
    let server = common::start(common::test_config()).await;
    let now = attest_server::ingest::now_ms();
    let before: Vec<_> = (0..50)
        .map(|i| event(&format!("before-{i}"), "acme", now))
        .collect();
    post_all(&server, &before).await;
    assert_eq!(server.wait_for_rows(50, Duration::from_secs(60)).await, 50);

    // Idle: readiness shows the fatal state or the watchdog has already
    // replaced the producer; within a few of its rounds it has, unasked.
    server.running.producer().inject_fatal_error_for_tests();
    let (_, ready) = server.get_json("/readyz").await;
    assert!(ready["checks"]["producer"].is_object(), "{ready}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.running.producer().recreated() < 1 {
        assert!(
            Instant::now() < deadline,
            "the idle fatal producer was not replaced"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, ready) = server.get_json("/readyz").await;
    assert_eq!(
        (status, &ready["checks"]["producer"]["ok"]),
        (200, &serde_json::json!(true)),
        "{ready}"
    );

    // Failing sends: the producer is replaced by the send that finds it
    // broken, and what failed meanwhile drains from the spool.
    server.running.producer().inject_fatal_error_for_tests();
    let after: Vec<_> = (0..50)
        .map(|i| event(&format!("after-{i}"), "acme", now))
        .collect();
    post_all(&server, &after).await; // each must get 202 (spooled or sent)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = server.row_count().await;
        let spooled = server
            .metrics_text()
            .await
            .lines()
            .any(|l| l == "attest_spool_pending_events 0");
        if stored >= 100 && spooled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stored {stored} of 100, spool drained: {spooled}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(server.running.producer().recreated() >= 2);
    let ids: Vec<String> = before
        .iter()
        .chain(&after)
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    common::assert_exactly(&server.http, &server.config, &ids).await;
    server.stop().await;
}
