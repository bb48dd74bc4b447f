//! Contract version 2 through the real pipeline: a producer that writes
//! version 2 (schema id 2, with a trace id) onto the topic is stored like a
//! version 1 event, as the writer resolves every version to the one ingest
//! writes (version 1); nothing is dead-lettered.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::types::Value;
use attest_server::event::{Actor, AuditEvent, Category, Outcome, Resource};
use attest_server::produce::{EventProducer, Outgoing};
use attest_server::registry::{wire, Registry};

fn event(id: &str) -> AuditEvent {
    let now = attest_server::ingest::now_ms();
    AuditEvent {
        event_id: id.into(),
        tenant_id: "tenant-v2".into(),
        occurred_at: now,
        received_at: now,
        category: Category::Admin,
        action: "settings.change".into(),
        outcome: Outcome::Denied,
        actor: Actor {
            id: "admin-7".into(),
            kind: "user".into(),
            ip: Some("198.51.100.4".into()),
            user_agent: None,
        },
        resource: Some(Resource {
            kind: "setting".into(),
            id: "retention".into(),
        }),
        source_service: "console".into(),
        request_id: Some("req-1".into()),
        metadata: BTreeMap::from([("ticket".to_owned(), "OPS-9".to_owned())]),
    }
}

/// `event` as a version 2 producer frames it: id 2, version 1's fields and
/// a trace id.
fn as_version_2(registry: &Registry, event: &AuditEvent) -> Vec<u8> {
    let v2 = registry.by_id(2).expect("version 2 is registered");
    let Value::Record(mut fields) = event.to_avro() else {
        panic!("an event is a record");
    };
    fields.push((
        "trace_id".into(),
        Value::Union(
            1,
            Box::new(Value::String("4bf92f3577b34da6a3ce929d0e0e4736".into())),
        ),
    ));
    let datum = apache_avro::to_avro_datum(&v2.schema, Value::Record(fields)).expect("fits v2");
    wire::frame(v2.id, &datum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_messages_are_stored_like_version_1() {
    let config = common::test_config();
    let server = common::start(config.clone()).await;
    let registry = Registry::load(&config.schemas_dir).expect("registry");
    assert_eq!(registry.current().version, 1, "ingest writes version 1");
    let topic = attest_server::topics::for_category(&config.kafka.topic_prefix, Category::Admin);
    let producer = EventProducer::new(&config.kafka).expect("producer");
    let v1 = registry.encode(&event("written-as-v1")).expect("encodes");
    let v2 = as_version_2(&registry, &event("written-as-v2"));
    for payload in [&v1, &v2] {
        producer
            .send(Outgoing {
                topic: &topic,
                key: "tenant-v2",
                payload,
                headers: &[],
            })
            .await
            .expect("broker acknowledged");
    }
    assert_eq!(server.wait_for_rows(2, Duration::from_secs(60)).await, 2);
    let rows = server
        .clickhouse(
            "SELECT event_id, tenant_id, category, action, outcome, actor_id, actor_ip, \
             resource_type, resource_id, source_service, request_id, metadata.key, metadata.value \
             FROM audit_events ORDER BY event_id FORMAT TSV",
        )
        .await;
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 2, "{rows}");
    let (first, second) = (lines[0].split_once('\t'), lines[1].split_once('\t'));
    assert_eq!(first.map(|l| l.0), Some("written-as-v1"));
    assert_eq!(second.map(|l| l.0), Some("written-as-v2"));
    assert_eq!(
        first.map(|l| l.1),
        second.map(|l| l.1),
        "the same columns whichever version wrote it"
    );
    assert!(
        rows.contains("OPS-9") && rows.contains("retention"),
        "{rows}"
    );
    let metrics = server.metrics_text().await;
    let dead: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("attest_writer_dead_letters_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:?}");
    server.stop().await;
}
