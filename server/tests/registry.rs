//! The schema registry as other software sees it: the Confluent REST subset
//! with Confluent's JSON and error codes, and a message taken from an
//! Attest topic decoded by fastavro (Python), not by Attest's code, using
//! the schema fetched from the registry endpoint.

mod common;

use std::process::Command;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

const SUBJECT: &str = "dev.attest.AuditEvent";

async fn post_json(server: &common::TestServer, path: &str, body: &Value) -> (u16, Value, String) {
    let response = server
        .http
        .post(format!("{}{path}", server.base_url))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body.to_string())
        .send()
        .await
        .expect("attest reachable");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, response.json().await.unwrap_or(Value::Null), media)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_rest_subset_answers_like_a_schema_registry() {
    let server = common::start(common::test_config()).await;
    let (status, versions) = server
        .get_json(&format!("/subjects/{SUBJECT}/versions"))
        .await;
    assert_eq!((status, versions), (200, json!([1])));
    for v in ["1", "latest"] {
        let (status, body) = server
            .get_json(&format!("/subjects/{SUBJECT}/versions/{v}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (&body["subject"], &body["version"], &body["id"]),
            (&json!(SUBJECT), &json!(1), &json!(1))
        );
        apache_avro::Schema::parse_str(body["schema"].as_str().unwrap())
            .expect("schema text parses");
    }
    for (path, status, code) in [
        ("/subjects/nope/versions", 404, 40401),
        (&format!("/subjects/{SUBJECT}/versions/7")[..], 404, 40402),
        (
            &format!("/subjects/{SUBJECT}/versions/zero")[..],
            422,
            42202,
        ),
        ("/schemas/ids/4242", 404, 40403),
    ] {
        let (got, body) = server.get_json(path).await;
        assert_eq!(
            (got, &body["error_code"]),
            (status, &json!(code)),
            "{path}: {body}"
        );
    }

    // Compatibility as Confluent's BACKWARD rule: can the candidate read
    // what version 1 wrote?
    let (_, current) = server.get_json("/schemas/ids/1").await;
    let mut schema: Value = serde_json::from_str(current["schema"].as_str().unwrap()).unwrap();
    let path = format!("/compatibility/subjects/{SUBJECT}/versions/latest");
    let (status, body, media) =
        post_json(&server, &path, &json!({"schema": schema.to_string()})).await;
    assert_eq!(
        (status, &body["is_compatible"]),
        (200, &json!(true)),
        "{body}"
    );
    assert!(
        media.starts_with("application/vnd.schemaregistry.v1+json"),
        "{media}"
    );
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "severity", "type": "string"}));
    let (status, body, _) = post_json(&server, &path, &json!({"schema": schema.to_string()})).await;
    assert_eq!(
        (status, &body["is_compatible"]),
        (200, &json!(false)),
        "{body}"
    );
    assert!(!body["messages"][0].as_str().unwrap_or("").is_empty());
    let (status, body, _) =
        post_json(&server, &path, &json!({"schema": "{\"type\": \"recrd\"}"})).await;
    assert_eq!(
        (status, &body["error_code"]),
        (422, &json!(42201)),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastavro_decodes_a_topic_message_with_the_schema_from_the_registry() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let sent = json!({
        "event_id": "interop-1",
        "tenant_id": "acme",
        "occurred_at": 1_795_435_200_123i64,
        "category": "permission_change",
        "action": "role.grant",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user", "ip": "203.0.113.9"},
        "resource": {"type": "role", "id": "admin"},
        "source_service": "iam",
        "metadata": {"ticket": "SEC-42", "note": "Zürich ✓"}
    });
    let (status, body) = server.post_json(sent.to_string()).await;
    assert_eq!(status, 202, "{body}");

    let topic = attest_server::topics::for_category(
        &config.kafka.topic_prefix,
        attest_server::event::Category::PermissionChange,
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set(
            "group.id",
            format!("{}-interop", config.kafka.consumer_group),
        )
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let payload = (0..60)
        .find_map(|_| match consumer.poll(Duration::from_secs(1)) {
            Some(Ok(m)) => m.payload().map(<[u8]>::to_vec),
            _ => None,
        })
        .expect("the event is on its topic");

    let file = std::env::temp_dir().join(format!("attest-interop-{}.bin", common::unique()));
    std::fs::write(&file, &payload).expect("write message");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/decode_with_fastavro.py");
    let output = Command::new("python3")
        .args([script, &server.base_url, file.to_str().unwrap()])
        .output()
        .expect("python3 runs (scripts/install.sh installs fastavro)");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoded: Value = serde_json::from_slice(&output.stdout).expect("JSON from the script");
    let record = &decoded["record"];
    assert_eq!(decoded["schema_id"], 1);
    assert_eq!(record["event_id"], "interop-1");
    assert_eq!(record["tenant_id"], "acme");
    assert_eq!(record["category"], "permission_change");
    assert_eq!(record["outcome"], "success");
    assert_eq!(record["actor"]["ip"], "203.0.113.9");
    assert_eq!(record["actor"]["user_agent"], Value::Null);
    assert_eq!(record["resource"], json!({"type": "role", "id": "admin"}));
    assert_eq!(
        record["metadata"],
        json!({"ticket": "SEC-42", "note": "Zürich ✓"})
    );
    // fastavro renders timestamp-millis as a datetime: the instant must match.
    assert_eq!(record["occurred_at"], "2026-11-23 12:00:00.123000+00:00");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_registry_gives_the_ids_and_ingest_fails_closed_without_it() {
    // The external registry: another Attest's embedded one, which speaks the
    // same Confluent subset. It numbers the schema 1.
    let external = common::start(common::test_config()).await;
    let mut config = common::test_config();
    // The same schema under another id, as a deployment whose own numbering
    // differs from the external registry's.
    let own = common::contract_with_ids(&config.schemas_dir, &[(1, 7)]);
    config.schemas_dir = own.clone();
    config.registry.url = external.base_url.clone();
    let server = common::start(config.clone()).await;
    let event = json!({
        "event_id": "external-1", "tenant_id": "acme", "occurred_at": attest_server::ingest::now_ms(),
        "category": "admin", "action": "settings.change", "outcome": "success",
        "actor": {"id": "alice", "type": "user"}, "source_service": "console"
    });
    let (status, body) = server.post_json(event.to_string()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(server.wait_for_rows(1, Duration::from_secs(60)).await, 1);
    let id = server
        .clickhouse("SELECT schema_id FROM audit_events FORMAT TSV")
        .await;
    assert_eq!(
        id, "1\n",
        "messages carry the external registry's id, and the writer decodes it"
    );

    // A registry that cannot be reached: nothing is accepted, nothing produced.
    let mut closed = common::test_config();
    closed.registry.url = "http://127.0.0.1:9".into();
    closed.registry.timeout = Duration::from_secs(1);
    let blocked = common::start(closed).await;
    let (status, body) = blocked.post_json(event.to_string()).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("schema registry"),
        "{body}"
    );
    assert_eq!(blocked.kafka_message_count(), 0);
    blocked.stop().await;
    server.stop().await;
    external.stop().await;
    let _ = std::fs::remove_dir_all(own);
}
