//! Poison records between good ones: the good ones land, the poison ones go
//! to the dead-letter topic with their reason and origin, the metrics count
//! them, and `attest dlq replay` lands the one that decodes after the fix.

mod common;

use std::process::Command;
use std::time::Duration;

use attest_server::produce::{EventProducer, Outgoing};
use attest_server::registry::wire;

async fn produce_raw(producer: &EventProducer, topic: &str, payload: &[u8]) {
    producer
        .send(Outgoing {
            topic,
            key: "tenant-x",
            payload,
            headers: &[],
        })
        .await
        .expect("broker acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_dead_lettered_and_replayed_after_the_fix() {
    let mut config = common::test_config();
    config.kafka.partitions = 1; // one partition: a known order of good and bad
    let server = common::start(config.clone()).await;
    let topic = attest_server::topics::for_category(
        &config.kafka.topic_prefix,
        attest_server::event::Category::Admin,
    );
    let producer = EventProducer::new(&config.kafka).expect("producer");

    // A real event, re-framed with schema id 999 that is not registered yet.
    let registry = attest_server::registry::Registry::load(&config.schemas_dir).expect("registry");
    let ids = common::produce_events(&config, 1, "good-a").await;
    let mut unknown = sample_event("late-schema");
    unknown.category = attest_server::event::Category::Admin;
    let framed = registry.encode(&unknown).expect("encodes");
    let (_, datum) = wire::unframe(&framed).expect("framed");
    produce_raw(&producer, &topic, b"{\"not\": \"avro\"}").await;
    produce_raw(&producer, &topic, &wire::frame(999, datum)).await;
    let more = common::produce_events(&config, 1, "good-b").await;

    assert_eq!(
        server.wait_for_rows(2, Duration::from_secs(60)).await,
        2,
        "good events land"
    );
    let rows = server
        .clickhouse("SELECT event_id FROM audit_events ORDER BY event_id FORMAT TSV")
        .await;
    assert_eq!(rows, format!("{}\n{}\n", ids[0], more[0]));

    let kafka = config.kafka.clone();
    let letters = tokio::task::spawn_blocking(move || {
        attest_server::dlq::read_all(&kafka, Duration::from_secs(30))
    })
    .await
    .expect("join")
    .expect("dead letters readable");
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert_eq!(reasons, ["bad_framing", "unknown_schema_id"]);
    assert!(letters
        .iter()
        .all(|l| l.source_topic == topic && l.source_partition == 0));
    assert_eq!(letters[1].source_offset, letters[0].source_offset + 1);
    assert!(letters[1].detail.contains("999"), "{}", letters[1].detail);

    server
        .metrics_with(
            &[
                "attest_writer_dead_letters_total{reason=\"bad_framing\"} 1",
                "attest_writer_dead_letters_total{reason=\"unknown_schema_id\"} 1",
                "attest_writer_rows_written_total 2",
            ],
            Duration::from_secs(30),
        )
        .await;
    server.running.shutdown().await;

    // The fix: schema id 999 registered. Restart on it, then replay.
    let fixed = common::contract_with_ids(&config.schemas_dir, &[(1, 1), (2, 999)]);
    config.schemas_dir = fixed.clone();
    let server = common::start(config.clone()).await;
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["dlq", "replay", "--reason", "unknown_schema_id"])
        .envs(common::child_env(&config))
        .output()
        .expect("attest dlq replay runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("replayed 1, still undecodable 0"),
        "{stdout}"
    );

    let listed = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["dlq", "list"])
        .envs(common::child_env(&config))
        .output()
        .expect("attest dlq list runs");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains("bad_framing") && listing.contains("2 dead letter(s)"),
        "{listing}"
    );

    // The replay is an admin action: its audit event lands too.
    assert_eq!(
        server.wait_for_rows(4, Duration::from_secs(60)).await,
        4,
        "the replayed event lands, beside the replay's audit event"
    );
    let audited = server
        .clickhouse(
            "SELECT count() FROM audit_events WHERE tenant_id = 'attest' \
             AND action = 'dead_letters.redrive' FORMAT TSV",
        )
        .await;
    assert_eq!(audited, "1\n");
    let landed = server
        .clickhouse("SELECT schema_id FROM audit_events WHERE event_id = 'late-schema' FORMAT TSV")
        .await;
    assert_eq!(landed, "999\n");
    server.stop().await;
    let _ = std::fs::remove_dir_all(fixed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_clickhouse_rejects_are_dead_lettered_alone_and_replayed_after_the_fix() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    // One batch for all 21 events, so the rejected row must be split out.
    config.writer.max_age = Duration::from_secs(3);
    let server = common::start(config.clone()).await;
    // A table rule of the kind operators add: ClickHouse refuses one action.
    server
        .clickhouse(
            "ALTER TABLE audit_events ADD COLUMN poison_rule UInt8              MATERIALIZED throwIf(action = 'poison.row')",
        )
        .await;
    let registry = attest_server::registry::Registry::load(&config.schemas_dir).expect("registry");
    let producer = EventProducer::new(&config.kafka).expect("producer");
    let topic = attest_server::topics::for_category(
        &config.kafka.topic_prefix,
        attest_server::event::Category::Admin,
    );
    for i in 0..21 {
        let mut event = sample_event(&format!("row-{i:02}"));
        if i == 13 {
            event.action = "poison.row".into();
        }
        produce_raw(
            &producer,
            &topic,
            &registry.encode(&event).expect("encodes"),
        )
        .await;
    }

    assert_eq!(
        server.wait_for_rows(20, Duration::from_secs(60)).await,
        20,
        "every other row is written"
    );
    let kafka = config.kafka.clone();
    let letters = tokio::task::spawn_blocking(move || {
        attest_server::dlq::read_all(&kafka, Duration::from_secs(30))
    })
    .await
    .expect("join")
    .expect("dead letters readable");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.reason, "clickhouse_rejected");
    assert_eq!(
        (letter.source_topic.as_str(), letter.source_offset),
        (topic.as_str(), 13)
    );
    assert!(letter.detail.contains("395"), "{}", letter.detail);
    server
        .metrics_with(
            &[
                "attest_writer_dead_letters_total{reason=\"clickhouse_rejected\"} 1",
                "attest_writer_rows_written_total 20",
            ],
            Duration::from_secs(30),
        )
        .await;

    // The fix: the rule is dropped. The replayed message lands as it was.
    server
        .clickhouse("ALTER TABLE audit_events DROP COLUMN poison_rule")
        .await;
    // Through the inbox's redrive, which `attest dlq replay` and the
    // console's page share.
    let inbox = attest_server::dlq::DeadLetterInbox::new(
        config.kafka.clone(),
        std::sync::Arc::new(registry),
        producer.clone(),
        attest_server::store::Store::new(&config.clickhouse),
    );
    let report = inbox
        .redrive(
            &attest_server::access::AdminGate::new(None),
            &attest_server::dlq::operator("test"),
            &app::dead_letters_model::Selection::AllReady {
                reason: Some("clickhouse_rejected".into()),
            },
        )
        .await
        .expect("replay");
    assert_eq!(report.done.len(), 1, "{report:?}");
    assert_eq!(
        server.wait_for_rows(21, Duration::from_secs(60)).await,
        21,
        "the replayed row lands"
    );
    let landed = server
        .clickhouse("SELECT event_id FROM audit_events WHERE action = 'poison.row' FORMAT TSV")
        .await;
    assert_eq!(landed, "row-13\n");
    server.stop().await;
}

fn sample_event(id: &str) -> attest_server::event::AuditEvent {
    use attest_server::event::{Actor, AuditEvent, Category, Outcome};
    let now = attest_server::ingest::now_ms();
    AuditEvent {
        event_id: id.into(),
        tenant_id: "tenant-x".into(),
        occurred_at: now,
        received_at: now,
        category: Category::Admin,
        action: "settings.change".into(),
        outcome: Outcome::Success,
        actor: Actor {
            id: "admin-1".into(),
            kind: "user".into(),
            ip: None,
            user_agent: None,
        },
        resource: None,
        source_service: "console".into(),
        request_id: None,
        metadata: Default::default(),
    }
}
