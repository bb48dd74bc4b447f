//! The dead-letter inbox against the real stack, through the page's server
//! functions as the browser calls them: poison records land in the inbox
//! with their reason; an analyst gets 403 everywhere; previews mask
//! metadata values; a discard needs a reason, records it and the letter
//! leaves the inbox for good (across a restart); after the fix a redrive
//! stores the event exactly once, with the key and headers ingest gives
//! it, and a second redrive (or a resend after a crash) adds nothing; both
//! actions are audit events in Attest's own trail.

mod common;
mod console_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_server::config::Config;
use attest_server::event::{Actor, AuditEvent, Category, Outcome};
use attest_server::produce::{EventProducer, Outgoing};
use attest_server::registry::{wire, Registry};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use console_support::{grant, Browser};

const SECRET: &str = "hunter2-do-not-show";

fn event(id: &str, occurred_at: i64) -> AuditEvent {
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("password".to_owned(), SECRET.to_owned());
    metadata.insert("ticket".to_owned(), "OPS-7-private".to_owned());
    AuditEvent {
        event_id: id.into(),
        tenant_id: "acme".into(),
        occurred_at,
        received_at: occurred_at,
        category: Category::Admin,
        action: "settings.change".into(),
        outcome: Outcome::Success,
        actor: Actor {
            id: "admin-1".into(),
            kind: "user".into(),
            ip: Some("198.51.100.23".into()),
            user_agent: None,
        },
        resource: None,
        source_service: "console".into(),
        request_id: None,
        metadata,
    }
}

async fn produce_raw(config: &Config, payload: &[u8]) {
    let topic = attest_server::topics::for_category(&config.kafka.topic_prefix, Category::Admin);
    EventProducer::new(&config.kafka)
        .expect("producer")
        .send(Outgoing {
            topic: &topic,
            key: "whatever-key",
            payload,
            headers: &[],
        })
        .await
        .expect("broker acknowledged");
}

/// The admin's page answer once `waiting` letters wait.
async fn wait_for_waiting(admin: &Browser, waiting: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, page) = admin.call("dead_letters/page", &[]).await;
        assert_eq!(status, 200, "{page}");
        if page["counts"]["waiting"].as_u64() == Some(waiting) {
            return page;
        }
        assert!(Instant::now() < deadline, "never {waiting} waiting: {page}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn letter<'a>(page: &'a Value, reason: &str) -> &'a Value {
    page["letters"]
        .as_array()
        .unwrap_or_else(|| panic!("letters in {page}"))
        .iter()
        .find(|l| l["reason"] == reason)
        .unwrap_or_else(|| panic!("a {reason} letter in {page}"))
}

fn id_of(letter: &Value) -> String {
    format!("{}/{}", letter["id"]["partition"], letter["id"]["offset"])
}

/// Every message of `topic` with header `attest.event_id` = `event_id`:
/// (key, event_id header).
fn messages_for(config: &Config, topic: &str, event_id: &str) -> Vec<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set(
            "group.id",
            format!("{}-inspect", config.kafka.consumer_group),
        )
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(low))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = low;
    while next < high && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("message");
        next = message.offset() + 1;
        let header = message
            .headers()
            .and_then(|h| h.iter().find(|x| x.key == "attest.event_id"))
            .and_then(|x| x.value)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        if header.as_deref() == Some(event_id) {
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            found.push((key, event_id.to_owned()));
        }
    }
    assert!(next >= high, "read {topic} to its end");
    found
}

/// The writer group has committed every message of `topic` (one partition).
fn writer_caught_up(config: &Config, topic: &str) -> bool {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        // Asks for the group's commits; never joins it.
        .set("group.id", &config.kafka.consumer_group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(partitions, Duration::from_secs(10))
        .expect("committed offsets");
    committed
        .find_partition(topic, 0)
        .is_some_and(|p| p.offset() == Offset::Offset(high))
}

/// The pipeline page's dead-letter figure once it says `waiting` (the
/// snapshot is reused for a couple of seconds, so it is asked again).
async fn wait_for_figure(admin: &Browser, waiting: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, snapshot) = admin.call("pipeline/snapshot", &[]).await;
        assert_eq!(status, 200, "{snapshot}");
        let figure = &snapshot["dead_letters"];
        if figure["waiting"].as_u64() == Some(waiting) {
            return figure.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the pipeline page never said {waiting} waiting: {figure}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The pipeline page counts the waiting letters from the topic's offsets
/// and the handled ones, without reading the topic: the same figure as the
/// inbox, on the page, with its link, and on `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_page_counts_waiting_letters_as_the_inbox_does() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.console.session_secret = "dead-letter-count-test-secret-0123456789".into();
    let server = common::start(config.clone()).await;
    let admin_key = grant(
        &config,
        &["--name", "oncall", "--all-tenants", "--role", "admin"],
    );
    let mut admin = Browser::new(&server.base_url);
    admin.sign_in(&admin_key, "/pipeline").await;
    let dlq_topic = attest_server::topics::dead_letters(&config.kafka.topic_prefix);

    let figure = wait_for_figure(&admin, 0).await;
    assert_eq!(figure["topic"], dlq_topic.as_str(), "{figure}");
    assert_eq!(figure["oldest_age_ms"], Value::Null, "{figure}");
    let html = admin.get("/pipeline").await.text().await.unwrap();
    assert!(html.contains("none waiting"), "{html}");
    assert!(
        html.contains("data-testid=\"dead-letters-inbox\""),
        "{html}"
    );

    // One poison record: one letter waits, on the page and in the inbox.
    produce_raw(&config, b"{\"not\": \"avro\"}").await;
    let page = wait_for_waiting(&admin, 1).await;
    let figure = wait_for_figure(&admin, 1).await;
    assert_eq!(figure["problems"], serde_json::json!([]), "{figure}");
    assert!(
        figure["oldest_age_ms"].as_i64().is_some_and(|ms| ms >= 0),
        "the oldest letter's age is read: {figure}"
    );
    let html = admin.get("/pipeline").await.text().await.unwrap();
    assert!(html.contains("1 dead letter waiting"), "{html}");
    assert!(html.contains("state warn"), "shown as a warning: {html}");
    assert!(html.contains("href=\"/dead-letters\""), "{html}");
    server
        .metrics_with(&["attest_dead_letters_waiting 1"], Duration::from_secs(10))
        .await;

    // Handled rows for offsets the topic does not retain (beyond its end,
    // a partition it does not have: as after retention removed letters
    // once handled) take nothing off the figure.
    let letter = &page["letters"][0];
    let (partition, offset) = (
        i32::try_from(letter["id"]["partition"].as_i64().unwrap()).unwrap(),
        letter["id"]["offset"].as_i64().unwrap(),
    );
    let store = attest_server::store::Store::new(&config.clickhouse);
    let row = |partition: i32, offset: i64| attest_server::store::DeadLetterAction {
        dlq_topic: dlq_topic.clone(),
        dlq_partition: partition,
        dlq_offset: offset,
        action: "discarded",
        reason: "not retained".into(),
        actor: "test".into(),
        access_id: "test".into(),
        event_id: String::new(),
        acted_at: 1,
    };
    store
        .record_dead_letter_actions(&[
            row(partition, offset + 1),
            row(partition, offset + 50),
            row(99, 0),
        ])
        .await
        .expect("recorded");
    // Past the snapshot's reuse, so the figure is counted afresh.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(wait_for_figure(&admin, 1).await["waiting"], 1);
    assert_eq!(wait_for_waiting(&admin, 1).await["counts"]["waiting"], 1);

    // Discarded: none wait, here as in the inbox.
    let (status, report) = admin
        .call(
            "dead_letters/discard",
            &[("ids", &id_of(letter)), ("reason", "test junk, OPS-2")],
        )
        .await;
    assert_eq!(status, 200, "{report}");
    wait_for_waiting(&admin, 0).await;
    let figure = wait_for_figure(&admin, 0).await;
    assert_eq!(figure["oldest_age_ms"], Value::Null, "{figure}");
    server
        .metrics_with(&["attest_dead_letters_waiting 0"], Duration::from_secs(10))
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_letters_are_discarded_or_redriven_once_and_audited() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.console.require_login = true;
    // Sessions outlive a restart of the server.
    config.console.session_secret = "dead-letter-inbox-test-secret-0123456789".into();
    let server = common::start(config.clone()).await;
    let admin_key = grant(
        &config,
        &["--name", "oncall", "--all-tenants", "--role", "admin"],
    );
    let analyst_key = grant(&config, &["--name", "analyst-1", "--all-tenants"]);

    // Three poison records: not Avro at all; a real event framed with a
    // schema id nobody registered yet; an event from before 2000 (decodes,
    // breaks the contract). The latter two carry a secret in metadata.
    let registry = Registry::load(&config.schemas_dir).expect("registry");
    let late = registry
        .encode(&event("late-schema", attest_server::ingest::now_ms()))
        .expect("encodes");
    let (_, datum) = wire::unframe(&late).expect("framed");
    produce_raw(&config, b"{\"not\": \"avro\"}").await;
    produce_raw(&config, &wire::frame(999, datum)).await;
    produce_raw(
        &config,
        &registry.encode(&event("too-old", 5)).expect("encodes"),
    )
    .await;

    // An analyst: 403 on the page and on each of its server functions.
    let mut analyst = Browser::new(&server.base_url);
    analyst.sign_in(&analyst_key, "/search").await;
    let page = analyst.get("/dead-letters").await;
    assert_eq!(page.status().as_u16(), 403);
    let html = page.text().await.unwrap();
    assert!(html.contains("for admins only"), "{html}");
    assert!(!html.contains("data-testid=\"dead-letter\""), "{html}");
    assert!(
        !html.contains("href=\"/dead-letters\""),
        "no link for analysts"
    );
    for (function, form) in [
        ("dead_letters/page", vec![]),
        ("dead_letters/redrive", vec![("all", "true")]),
        ("dead_letters/redrive", vec![("ids", "0/0")]),
        (
            "dead_letters/discard",
            vec![("ids", "0/0"), ("reason", "mine")],
        ),
        // Refused before its arguments are looked at.
        (
            "dead_letters/discard",
            vec![("ids", "garbage"), ("reason", "")],
        ),
    ] {
        let (status, answer) = analyst.call(function, &form).await;
        assert_eq!(status, 403, "{function} {form:?}: {answer}");
        assert!(
            answer.get("letters").is_none() && answer.get("done").is_none(),
            "{answer}"
        );
    }

    // The admin sees all three, with their reasons and origins.
    let mut admin = Browser::new(&server.base_url);
    admin.sign_in(&admin_key, "/dead-letters").await;
    let page = wait_for_waiting(&admin, 3).await;
    let topic = attest_server::topics::for_category(&config.kafka.topic_prefix, Category::Admin);
    let framing = letter(&page, "bad_framing");
    let unknown = letter(&page, "unknown_schema_id");
    let invalid = letter(&page, "invalid_event");
    for (l, offset) in [(framing, 0), (unknown, 1), (invalid, 2)] {
        assert_eq!(l["source_topic"], topic.as_str());
        assert_eq!(l["source_partition"], 0);
        assert_eq!(l["source_offset"], offset, "{l}");
        assert!(l["dead_lettered_at_ms"].as_i64() > Some(0), "{l}");
        assert_eq!(l["ready"], false, "{l}");
    }
    assert!(
        unknown["detail"].as_str().unwrap().contains("999"),
        "{unknown}"
    );
    assert!(
        unknown["raw"].as_str().unwrap().contains("schema id 999"),
        "{unknown}"
    );
    assert_eq!(unknown["preview"], Value::Null, "does not decode yet");
    assert!(
        invalid["recheck"].as_str().unwrap().contains("occurred_at"),
        "{invalid}"
    );
    assert_eq!(page["counts"]["ready"], 0);

    // Masking: keys shown, values replaced, no IP address; nowhere in the
    // answer or the page.
    let preview = &invalid["preview"];
    assert_eq!(preview["event_id"], "too-old");
    assert_eq!(
        preview["metadata"],
        serde_json::json!([["password", "•••"], ["ticket", "•••"]])
    );
    let html = admin.get("/dead-letters").await.text().await.unwrap();
    for shown in [page.to_string(), html.clone()] {
        for hidden in [SECRET, "OPS-7-private", "198.51.100.23"] {
            assert!(!shown.contains(hidden), "{hidden} shown: {shown}");
        }
    }
    assert!(html.contains("data-testid=\"dead-letter\""), "{html}");
    assert!(html.contains("metadata.password"), "keys are shown");

    // Discard: a reason is required and bounded; then the letter leaves.
    let framing_id = id_of(framing);
    for bad in ["", "   ", &"x".repeat(501)] {
        let (status, answer) = admin
            .call(
                "dead_letters/discard",
                &[("ids", &framing_id), ("reason", bad)],
            )
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.to_string().contains("reason"), "{answer}");
    }
    let (status, report) = admin
        .call(
            "dead_letters/discard",
            &[
                ("ids", &framing_id),
                ("reason", "junk from a test producer, OPS-1"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"].as_array().map(Vec::len), Some(1), "{report}");
    let page = wait_for_waiting(&admin, 2).await;
    assert_eq!(page["counts"]["discarded"], 1);
    server.running.shutdown().await;

    // The fix: schema id 999 registered. After the restart the discarded
    // letter stays gone and the 999 letter decodes now.
    let fixed = common::contract_with_ids(&config.schemas_dir, &[(1, 1), (2, 999)]);
    let mut fixed_config = config.clone();
    fixed_config.schemas_dir = fixed.clone();
    let server = common::start(fixed_config.clone()).await;
    admin.base = server.base_url.clone();
    let page = wait_for_waiting(&admin, 2).await;
    assert_eq!(page["counts"]["discarded"], 1);
    assert_eq!(page["counts"]["ready"], 1, "{page}");
    let unknown = letter(&page, "unknown_schema_id");
    assert_eq!(unknown["ready"], true, "{unknown}");
    assert_eq!(unknown["preview"]["event_id"], "late-schema");
    assert!(!page.to_string().contains(SECRET));

    // Redrive it: stored once, keyed and headed as ingest does it.
    let unknown_id = id_of(unknown);
    let (status, report) = admin
        .call("dead_letters/redrive", &[("ids", &unknown_id)])
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"].as_array().map(Vec::len), Some(1), "{report}");
    let count = |sql: &'static str| {
        let server = &server;
        async move { server.clickhouse(sql).await.trim().parse::<u64>().unwrap() }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count("SELECT count() FROM audit_events WHERE event_id = 'late-schema'").await == 0 {
        assert!(Instant::now() < deadline, "the redriven event never landed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        messages_for(&fixed_config, &topic, "late-schema"),
        [("acme".to_owned(), "late-schema".to_owned())],
        "sent once, keyed by tenant, with its event_id header"
    );
    let page = wait_for_waiting(&admin, 1).await;
    assert_eq!(page["counts"]["redriven"], 1);
    assert_eq!(letter(&page, "invalid_event")["ready"], false);

    // Twice: the second redrive sends nothing.
    let (status, again) = admin
        .call("dead_letters/redrive", &[("ids", &unknown_id)])
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["done"], serde_json::json!([]), "{again}");
    assert!(
        again.to_string().contains("already redriven by oncall"),
        "{again}"
    );
    let (status, all) = admin.call("dead_letters/redrive", &[("all", "true")]).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        all["done"],
        serde_json::json!([]),
        "the invalid one stays: {all}"
    );

    // A crash between sending and recording sends it once more: the table
    // still holds the event once.
    let inbox = attest_server::dlq::DeadLetterInbox::new(
        fixed_config.kafka.clone(),
        Arc::new(Registry::load(&fixed).expect("fixed registry")),
        EventProducer::new(&fixed_config.kafka).expect("producer"),
        attest_server::store::Store::new(&fixed_config.clickhouse),
    );
    let read = inbox.read().await.expect("inbox");
    let sent = read
        .letters
        .iter()
        .find(|l| l.letter.reason == "unknown_schema_id")
        .expect("the letter");
    let event = sent.recheck.event().expect("decodes");
    inbox.send_back(&sent.letter, event).await.expect("resent");
    let deadline = Instant::now() + Duration::from_secs(60);
    while messages_for(&fixed_config, &topic, "late-schema").len() < 2 {
        assert!(Instant::now() < deadline, "resend not in the topic");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The writer has taken the resend once its group committed past it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writer_caught_up(&fixed_config, &topic) {
        assert!(
            Instant::now() < deadline,
            "the writer never took the resend"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.clickhouse("OPTIMIZE TABLE audit_events FINAL").await;
    assert_eq!(
        count("SELECT count() FROM audit_events WHERE event_id = 'late-schema'").await,
        1,
        "one row for the event however often it was sent"
    );

    // Both actions are audit events of Attest's own trail: who, which
    // letters, and the discard's reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    let audited = loop {
        let audited = server
            .clickhouse(
                "SELECT action, actor_id, resource_type, \
                 metadata.value[indexOf(metadata.key, 'letters')], \
                 metadata.value[indexOf(metadata.key, 'reason')] \
                 FROM audit_events WHERE tenant_id = 'attest' \
                 AND action IN ('dead_letters.discard', 'dead_letters.redrive') \
                 ORDER BY occurred_at FORMAT TSV",
            )
            .await;
        if audited.lines().count() >= 2 || Instant::now() > deadline {
            break audited;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let framing_offset = framing_id.replace('/', ":");
    let unknown_offset = unknown_id.replace('/', ":");
    assert_eq!(
        audited,
        format!(
            "dead_letters.discard\toncall\tdead_letters\t{framing_offset}\tjunk from a test producer, OPS-1\n\
             dead_letters.redrive\toncall\tdead_letters\t{unknown_offset}\t\n"
        ),
        "only actions that did something are recorded as actions"
    );

    // The command line acts on the same inbox: a discard needs a reason,
    // and its letter is then counted as discarded.
    let attest = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_attest"))
            .args(args)
            .envs(common::child_env(&fixed_config))
            .output()
            .expect("attest runs")
    };
    let invalid_id = id_of(invalid);
    let refused = attest(&[
        "dlq",
        "discard",
        "--ids",
        &invalid_id,
        "--reason",
        " ",
        "--by",
        "ops-cli",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("reason:"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let discarded = attest(&[
        "dlq",
        "discard",
        "--ids",
        &invalid_id,
        "--reason",
        "from 1970: the sender is fixed",
        "--by",
        "ops-cli",
    ]);
    let said = String::from_utf8_lossy(&discarded.stdout);
    assert!(
        discarded.status.success() && said.contains("Discarded 1 letter(s)"),
        "{said}"
    );
    let listed = attest(&["dlq", "list"]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains("3 dead letter(s): 0 waiting, 1 redriven, 2 discarded"),
        "{listing}"
    );
    let page = wait_for_waiting(&admin, 0).await;
    assert_eq!(page["letters"], serde_json::json!([]));
    server.stop().await;
    let _ = std::fs::remove_dir_all(fixed);
}
