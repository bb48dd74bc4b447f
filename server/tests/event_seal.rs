//! The event detail page's seal (docs/INTEGRITY.md, section 13), on the
//! real stack: a sealed event reads as verified with its digest; a column
//! changed in ClickHouse behind Attest's back, a digest's signature
//! changed, and a copy inserted under a forged content hash are named on
//! that event's page.

mod common;
mod console_support;

use std::time::Duration;

use console_support::Browser;
use serde_json::Value;

async fn seal_of(browser: &Browser, tenant: &str, id: &str) -> Value {
    let (status, answer) = browser
        .call("search/event/seal", &[("tenant", tenant), ("id", id)])
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn tenant_of(server: &common::TestServer, id: &str) -> String {
    let sql = format!("SELECT tenant_id FROM audit_events WHERE event_id = '{id}' FORMAT TSV");
    server.clickhouse(&sql).await.trim().to_owned()
}

fn state(seal: &Value) -> &str {
    seal["verdict"]["state"].as_str().unwrap_or("none")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_says_verified_and_names_what_was_changed() {
    let config = common::test_config();
    let server = common::start(config.clone()).await;
    common::produce_events(&config, 40, "seal-view").await;
    server.wait_for_rows(40, Duration::from_secs(60)).await;
    common::wait_sealed(&server, 40).await;
    let browser = Browser::new(&server.base_url);

    let (first, second) = ("seal-view-3", "seal-view-4");
    let (tenant1, tenant2) = (
        tenant_of(&server, first).await,
        tenant_of(&server, second).await,
    );

    // Untouched: verified, with the digest that sealed it.
    let seal = seal_of(&browser, &tenant1, first).await;
    assert_eq!(state(&seal), "verified", "{seal}");
    let place = &seal["verdict"]["place"];
    let offset: i64 = server
        .clickhouse(&format!(
            "SELECT kafka_offset FROM audit_events WHERE event_id = '{first}' FORMAT TSV"
        ))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(
        place["first_offset"].as_i64().unwrap() <= offset
            && offset <= place["last_offset"].as_i64().unwrap(),
        "{seal}"
    );
    assert_eq!(place["digest_hash"].as_str().unwrap().len(), 64, "{seal}");

    // Another tenant's name for it finds nothing, as the detail does.
    let (status, none) = browser
        .call(
            "search/event/seal",
            &[("tenant", "no-such-tenant"), ("id", first)],
        )
        .await;
    assert_eq!((status, none), (200, Value::Null));

    // A stored field changed behind Attest's back (the sender's fields are
    // in the table's key and cannot be updated in place; what Attest
    // recorded can): that event, and only it, reads as changed.
    common::mutate(
        &server,
        &format!(
            "ALTER TABLE audit_events UPDATE received_at = received_at - 60000 WHERE event_id = '{first}'"
        ),
    )
    .await;
    let seal = seal_of(&browser, &tenant1, first).await;
    assert_eq!(state(&seal), "altered", "{seal}");
    assert_eq!(
        state(&seal_of(&browser, &tenant2, second).await),
        "verified"
    );

    // The signature of the digest sealing the second event changed.
    let digest = seal_of(&browser, &tenant2, second).await["verdict"]["place"]["digest_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    common::mutate(
        &server,
        &format!(
            "ALTER TABLE attest_integrity_digests UPDATE signature = reverse(signature) \
             WHERE digest_hash = '{digest}'"
        ),
    )
    .await;
    let seal = seal_of(&browser, &tenant2, second).await;
    assert_eq!(state(&seal), "digest_invalid", "{seal}");
    assert!(
        seal["verdict"]["problem"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{seal}"
    );

    // A copy of a third event inserted with its content intact and another
    // content_hash: its own page says so (Search counts it as a second
    // event), while the original's page still verifies. The page picks a
    // copy by its content hash (`h`).
    let third = "seal-view-5";
    let tenant3 = tenant_of(&server, third).await;
    let forged = "ab".repeat(32);
    common::insert_copy_with_hash(&server, third, &forged).await;
    let original = server
        .clickhouse(&format!(
            "SELECT content_hash FROM audit_events WHERE event_id = '{third}' \
             AND content_hash != '{forged}' FORMAT TSV"
        ))
        .await
        .trim()
        .to_owned();
    let page = |h: &str| {
        let h = h.to_owned();
        let (browser, tenant) = (&browser, tenant3.clone());
        async move {
            let (status, answer) = browser
                .call(
                    "search/event/seal",
                    &[
                        ("tenant", tenant.as_str()),
                        ("id", third),
                        ("h", h.as_str()),
                    ],
                )
                .await;
            assert_eq!(status, 200, "{answer}");
            answer
        }
    };
    let seal = page(&forged).await;
    assert_eq!(state(&seal), "identity_forged", "{seal}");
    assert_eq!(seal["verdict"]["stored_hash"], forged.as_str(), "{seal}");
    assert_eq!(seal["verdict"]["content_hash"], original.as_str(), "{seal}");
    assert_eq!(state(&page(&original).await), "verified");
    server.stop().await;
}
