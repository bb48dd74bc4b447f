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
    assert_eq!((status, versions), (200, json!([1, 2])));
    for (v, version, id) in [("1", 1, 1), ("2", 2, 2), ("latest", 2, 2)] {
        let (status, body) = server
            .get_json(&format!("/subjects/{SUBJECT}/versions/{v}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (&body["subject"], &body["version"], &body["id"]),
            (&json!(SUBJECT), &json!(version), &json!(id))
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

    // Compatibility as Confluent's FULL rule: do the candidate and the
    // latest version (2) read each other's data? Version 1 does.
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

/// Confluent's own Python client with its defaults (AvroDeserializer,
/// SchemaRegistryClient) decodes every message Attest wrote and gets its
/// answers and error codes from the registry (scripts in
/// `confluent_clients.py`). Before, it decoded 0 of 21,179: it asks
/// `/associations/…` first, and got the console's sign-in redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_python_client_with_defaults_decodes_every_message() {
    let server = common::start(common::test_config()).await;
    let categories = ["authentication", "data_access", "admin"];
    let batch: Vec<Value> = (0..60)
        .map(|i| {
            let category = categories[i % 3];
            json!({
                "event_id": format!("confluent-{i}"),
                "tenant_id": "acme",
                "occurred_at": attest_server::ingest::now_ms() - 1000,
                "category": category,
                "action": "user.login",
                "outcome": "success",
                "actor": {"id": format!("user-{i}"), "type": "user"},
                "source_service": "sso",
                "metadata": {"region": "eu-west-1"}
            })
        })
        .collect();
    let response = server
        .http
        .post(format!("{}/api/v1/events/batch", server.base_url))
        .json(&batch)
        .send()
        .await
        .expect("attest reachable");
    assert_eq!(response.status().as_u16(), 202);

    let topics = attest_server::topics::event_topics(&server.config.kafka.topic_prefix).join(",");
    let output = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/confluent_clients.py"))
        .args(["--registry", &server.base_url])
        .args(["--brokers", &server.config.kafka.brokers])
        .args(["--topics", &topics])
        .args(["--expect", "60"])
        .output()
        .expect("python3 runs (scripts/install.sh python installs confluent-kafka[schemaregistry,avro])");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "no report; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let failed: Vec<(&String, &Value)> = report["checks"]
        .as_object()
        .expect("checks")
        .iter()
        .filter(|(_, c)| c["ok"] != json!(true))
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:?}");
    let mut decoded: Vec<String> = report["decoded"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    decoded.sort();
    let mut want: Vec<String> = (0..60).map(|i| format!("confluent-{i}")).collect();
    want.sort();
    assert_eq!(decoded, want);
    assert!(output.status.success());
    server.stop().await;
}

/// What the registry answers that the console must never: every path under
/// its prefixes is JSON, writes are refused as read-only, and a schema whose
/// default differs from the registered one is not found as that version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_paths_never_fall_through_to_the_console() {
    let server = common::start(common::test_config()).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |path: String| {
        let request = no_redirects.get(format!("{}{path}", server.base_url));
        async move {
            let response = request.send().await.expect("attest reachable");
            let status = response.status().as_u16();
            let media = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (status, media, response.text().await.unwrap_or_default())
        }
    };
    for (path, status) in [
        (
            "/associations/resources/-/attest.events.admin?resourceType=topic&associationType=value".to_owned(),
            200,
        ),
        ("/config".to_owned(), 200),
        (format!("/config/{SUBJECT}"), 200),
        ("/mode".to_owned(), 200),
        (format!("/mode/{SUBJECT}"), 200),
        ("/schemas/types".to_owned(), 200),
        ("/schemas/ids/1/subjects?deleted=true".to_owned(), 200),
        ("/schemas/ids/1/versions".to_owned(), 200),
        (format!("/subjects/{SUBJECT}/versions/1/schema"), 200),
        ("/subjects?deleted=true".to_owned(), 200),
        ("/config/no.such.Subject".to_owned(), 404),
        (format!("/subjects/{SUBJECT}/no/such/thing"), 404),
        ("/exporters".to_owned(), 404),
        ("/contexts/.x/subjects".to_owned(), 404),
    ] {
        let (got, media, body) = get(path.clone()).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            media.starts_with("application/vnd.schemaregistry.v1+json"),
            "{path}: {media}"
        );
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        if status == 404 {
            assert!(json["error_code"].as_i64().is_some(), "{path}: {body}");
        }
    }
    let (_, _, schema) = get(format!("/subjects/{SUBJECT}/versions/1/schema")).await;
    let parsed: Value = serde_json::from_str(&schema).expect("the schema itself");
    assert_eq!(parsed["name"], "AuditEvent");

    // Writes: Confluent's read-only error, not an empty 405.
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/subjects/{SUBJECT}/versions"),
        ),
        (reqwest::Method::DELETE, format!("/subjects/{SUBJECT}")),
        (reqwest::Method::PUT, "/config".to_owned()),
        (reqwest::Method::PUT, format!("/mode/{SUBJECT}")),
    ] {
        let response = no_redirects
            .request(method.clone(), format!("{}{path}", server.base_url))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(json!({"schema": schema}).to_string())
            .send()
            .await
            .expect("attest reachable");
        assert_eq!(response.status().as_u16(), 422, "{method} {path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error_code"], 42205, "{method} {path}");
    }

    // Lookup: the registered schema is found; the same with another default
    // for a field is a different schema (40403), as in Confluent.
    let lookup = format!("/subjects/{SUBJECT}");
    let (status, body, _) = post_json(&server, &lookup, &json!({"schema": schema})).await;
    assert_eq!((status, &body["id"]), (200, &json!(1)), "{body}");
    let mut changed = parsed.clone();
    let field = changed["fields"]
        .as_array_mut()
        .expect("fields")
        .iter_mut()
        .find(|f| f["name"] == "metadata")
        .expect("the metadata field, whose default is {}");
    field["default"] = json!({"region": "eu-west-1"});
    let (status, body, _) =
        post_json(&server, &lookup, &json!({"schema": changed.to_string()})).await;
    assert_eq!(
        (status, &body["error_code"]),
        (404, &json!(40403)),
        "{body}"
    );
    server.stop().await;
}
