//! Batches and hostile input at the front door, against the real stack:
//! JSON arrays and NDJSON, all-or-nothing by default and `?partial=true`,
//! limits, idempotent retries, and a table of hostile requests that each get
//! their precise error and leave nothing behind in Kafka or ClickHouse.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Client<'a> {
    server: &'a common::TestServer,
    key: String,
}

impl Client<'_> {
    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        self.post_with_key(path, content_type, body, &self.key)
            .await
    }

    async fn post_with_key(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        key: &str,
    ) -> (u16, Value) {
        let response = self
            .server
            .http
            .post(format!("{}{path}", self.server.base_url))
            .header("content-type", content_type)
            .header("authorization", format!("Bearer {key}"))
            .body(body)
            .send()
            .await
            .expect("attest reachable");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Client<'_> {
    /// Announces a body of `length` bytes and sends none of it: the limit
    /// must be enforced from the headers, before the body is read. (A client
    /// sending 50 MB would see the connection closed after the 413.)
    async fn announce(&self, path: &str, length: usize) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.server.running.addr;
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nContent-Length: {length}\r\n\r\n",
            self.key
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("write headers");
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let read =
                tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await;
            match read {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
                Ok(Err(_)) => break,
                Err(_) if !raw.is_empty() => break,
                Err(_) => {}
            }
        }
        let text = String::from_utf8_lossy(&raw);
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let json = text
            .split("\r\n\r\n")
            .nth(1)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, json)
    }
}

fn event(id: &str) -> Value {
    json!({
        "event_id": id,
        "occurred_at": attest_server::ingest::now_ms() - 1000,
        "category": "data_access",
        "action": "record.read",
        "outcome": "success",
        "actor": {"id": "svc-reporting", "type": "service"},
        "resource": {"type": "record", "id": id},
    })
}

fn batch(prefix: &str, n: usize) -> Vec<Value> {
    (0..n).map(|i| event(&format!("{prefix}-{i}"))).collect()
}

const BATCH: &str = "/api/v1/events/batch";
const AVRO: &str = "application/vnd.attest.avro";

fn sample_event(id: &str) -> attest_server::event::AuditEvent {
    use attest_server::event::{Actor, AuditEvent, Category, Outcome};
    let now = attest_server::ingest::now_ms();
    AuditEvent {
        event_id: id.into(),
        tenant_id: "acme".into(),
        occurred_at: now - 1000,
        received_at: 0,
        category: Category::Authentication,
        action: "user.login".into(),
        outcome: Outcome::Failure,
        actor: Actor {
            id: "mallory".into(),
            kind: "user".into(),
            ip: Some("198.51.100.4".into()),
            user_agent: None,
        },
        resource: None,
        source_service: "reports".into(),
        request_id: None,
        metadata: Default::default(),
    }
}

/// A hostile request: name, path, content type, body, expected status and
/// the field the first error must name ("" when the body as a whole is bad).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_all_or_nothing_unless_partial_and_retries_store_each_event_once() {
    let mut config = common::test_config();
    config.ingest.require_api_key = true;
    let server = common::start(config.clone()).await;
    let admin = attest_server::open_keys(&config).await.expect("key admin");
    let key = admin
        .create("acme", "reports", &[], "", "test")
        .await
        .expect("key")
        .key;
    let other_tenant = admin
        .create("globex", "reports", &[], "", "test")
        .await
        .expect("key")
        .key;
    let client = Client {
        server: &server,
        key,
    };
    let keys_created = 2;

    // The same 500 events posted three times, as a client retrying after
    // timeouts would: one row each in what analysts see.
    let events = batch("retry", 500);
    for _ in 0..3 {
        let (status, body) = client
            .post(BATCH, "application/json", json!(events).to_string())
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            (body["accepted"].as_u64(), body["rejected"].as_u64()),
            (Some(500), Some(0))
        );
        assert_eq!(body["results"][499]["event_id"], "retry-499");
    }
    // NDJSON, with a blank line that does not count.
    let ndjson: String = batch("line", 20)
        .iter()
        .map(|e| format!("{e}\n\n"))
        .collect();
    let (status, body) = client.post(BATCH, "application/x-ndjson", ndjson).await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (202, Some(20)),
        "{body}"
    );

    // One bad event rejects the batch, with every problem listed by index.
    let mut mixed = batch("mixed", 10);
    mixed[3]["outcome"] = json!("maybe");
    mixed[7]["actor"]["ip"] = json!("999.1.1.1");
    let (status, body) = client
        .post(BATCH, "application/json", json!(mixed).to_string())
        .await;
    assert_eq!(status, 400, "{body}");
    let at: Vec<(u64, &str)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field_path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(at, [(3, "outcome"), (7, "actor.ip")]);
    // With ?partial=true the 8 good ones are taken and the 2 reported.
    let (status, body) = client
        .post(
            &format!("{BATCH}?partial=true"),
            "application/json",
            json!(mixed).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(body["results"][3]["errors"][0]["field_path"], "outcome");
    assert_eq!(body["results"][4]["event_id"], "mixed-4");

    // Query results: each event once, whatever the retries.
    let store = attest_server::store::Store::new(&config.clickhouse);
    let search = app::search_model::SearchQuery::from_params(
        &app::search_state::SearchParams {
            tenant: Some("acme".into()),
            range: app::model::TimeRange::LastHour,
            ..Default::default()
        },
        1000,
    )
    .expect("a valid search");
    let expected = 500 + 20 + 8;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = std::collections::HashSet::new();
    loop {
        seen.clear();
        let mut total = 0;
        let page =
            app::store::EventStore::search(&store, &search, attest_server::ingest::now_ms() + 1000)
                .await
                .expect("query");
        total += page.hits.len();
        seen.extend(page.hits.iter().map(|e| e.event_id.clone()));
        assert_eq!(total, seen.len(), "a duplicate in query results");
        let distinct = common::distinct_events(&server.http, &config).await;
        if distinct >= (expected + keys_created) as u64 {
            assert_eq!(distinct, (expected + keys_created) as u64);
            break;
        }
        assert!(Instant::now() < deadline, "only {distinct} events arrived");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Everything posted so far that was accepted, and nothing else, is in
    // Kafka: 3 × 500 + 20 + 8 messages, plus the 2 key-creation events.
    let in_kafka = server.kafka_message_count();
    assert_eq!(in_kafka, 1500 + 20 + 8 + keys_created as i64);

    // Hostile requests: each its own precise error, nothing produced.
    let huge = "x".repeat(9 * 1024);
    let mut long_action = event("hostile-long");
    long_action["action"] = json!(huge);
    let mut nested_tenant = event("hostile-tenant");
    nested_tenant["tenant_id"] = json!("globex");
    let mut wrong_type = event("hostile-type");
    wrong_type["occurred_at"] = json!(["yesterday"]);
    let mut unknown = event("hostile-unknown");
    unknown["severity"] = json!("high");
    let over_limit = json!(batch("over", 10_001)).to_string();
    let mut invalid_utf8 = event("hostile-utf8").to_string().into_bytes();
    let pos = invalid_utf8
        .windows(6)
        .position(|w| w == b"record")
        .unwrap();
    invalid_utf8[pos] = 0xff;
    // Avro for services that already encode: Confluent-framed records, one
    // after another, held to the same rules as JSON.
    let registry = attest_server::registry::Registry::load(&config.schemas_dir).expect("registry");
    let record = |id: &str, tenant: &str| {
        let mut e = sample_event(id);
        e.tenant_id = tenant.into();
        registry.encode(&e).expect("encodes")
    };
    let avro_batch: Vec<u8> = [record("avro-1", "acme"), record("avro-2", "acme")].concat();
    let (status, body) = client.post(BATCH, AVRO, avro_batch).await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (202, Some(2)),
        "{body}"
    );
    let (status, body) = client
        .post("/api/v1/events", AVRO, record("avro-3", "acme"))
        .await;
    assert_eq!(
        (status, &body["event_id"]),
        (202, &json!("avro-3")),
        "{body}"
    );
    let accepted_avro = 3;
    let unknown_id = {
        let framed = record("hostile-avro-id", "acme");
        attest_server::registry::wire::frame(999, &framed[5..])
    };
    let avro_cases: Vec<Case> = vec![
        (
            "JSON sent as Avro",
            BATCH,
            AVRO,
            event("hostile-json").to_string().into_bytes(),
            400,
            "",
        ),
        (
            "unknown schema id",
            BATCH,
            AVRO,
            [record("ok-1", "acme"), unknown_id].concat(),
            400,
            "",
        ),
        (
            "truncated Avro",
            BATCH,
            AVRO,
            {
                let r = record("hostile-cut", "acme");
                r[..r.len() - 3].to_vec()
            },
            400,
            "",
        ),
        (
            "Avro for another tenant",
            BATCH,
            AVRO,
            record("hostile-avro-tenant", "globex"),
            403,
            "tenant_id",
        ),
        (
            "two records to the single endpoint",
            "/api/v1/events",
            AVRO,
            [record("hostile-2a", "acme"), record("hostile-2b", "acme")].concat(),
            400,
            "",
        ),
    ];
    for (name, path, content_type, body, status, field) in avro_cases {
        let (got, answer) = client.post(path, content_type, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["errors"][0]["field_path"], field, "{name}: {answer}");
        }
        if name == "unknown schema id" {
            let e = &answer["errors"][0];
            assert_eq!(e["index"], 1, "{answer}");
            assert!(
                e["problem"]
                    .as_str()
                    .unwrap()
                    .contains("unknown schema id 999"),
                "{answer}"
            );
        }
    }

    let cases: Vec<Case> = vec![
        (
            "truncated JSON",
            "/api/v1/events",
            "application/json",
            br#"{"action": "x", "#.to_vec(),
            400,
            "",
        ),
        (
            "wrong types",
            "/api/v1/events",
            "application/json",
            wrong_type.to_string().into_bytes(),
            400,
            "occurred_at",
        ),
        (
            "unknown field",
            "/api/v1/events",
            "application/json",
            unknown.to_string().into_bytes(),
            400,
            "severity",
        ),
        (
            "huge string",
            "/api/v1/events",
            "application/json",
            long_action.to_string().into_bytes(),
            400,
            "action",
        ),
        (
            "invalid UTF-8",
            "/api/v1/events",
            "application/json",
            invalid_utf8,
            400,
            "",
        ),
        (
            "another tenant",
            "/api/v1/events",
            "application/json",
            nested_tenant.to_string().into_bytes(),
            403,
            "tenant_id",
        ),
        (
            "another tenant in a batch",
            BATCH,
            "application/json",
            json!([event("ok"), nested_tenant]).to_string().into_bytes(),
            403,
            "tenant_id",
        ),
        (
            "batch of 10,001",
            BATCH,
            "application/json",
            over_limit.into_bytes(),
            413,
            "",
        ),
        (
            "object as batch",
            BATCH,
            "application/json",
            event("x").to_string().into_bytes(),
            400,
            "",
        ),
        (
            "bad NDJSON line",
            BATCH,
            "application/x-ndjson",
            b"{}\n{nope".to_vec(),
            400,
            "",
        ),
        (
            "wrong content type",
            BATCH,
            "text/csv",
            b"a,b".to_vec(),
            415,
            "",
        ),
    ];
    for (name, path, content_type, body, status, field) in cases {
        let (got, answer) = client.post(path, content_type, body).await;
        assert_eq!(got, status, "{name}: {answer}");
        assert!(
            !answer["message"].as_str().unwrap_or("").is_empty(),
            "{name}: {answer}"
        );
        if !field.is_empty() {
            assert_eq!(answer["errors"][0]["field_path"], field, "{name}: {answer}");
        }
    }
    for (path, size) in [
        (BATCH, 50 * 1024 * 1024),
        (BATCH, 10 * 1024 * 1024 + 1),
        ("/api/v1/events", 50 * 1024 * 1024),
        ("/api/v1/events", 1024 * 1024 + 1),
    ] {
        let (status, answer) = client.announce(path, size).await;
        assert_eq!(status, 413, "{size} bytes announced to {path}: {answer}");
        assert_eq!(answer["error"], "payload_too_large", "{answer}");
    }
    // The other tenant's key cannot write into acme either.
    let (status, answer) = client
        .post_with_key(
            BATCH,
            "application/json",
            json!([event("cross")]).to_string(),
            &other_tenant,
        )
        .await;
    assert_eq!(
        status, 202,
        "a body without tenant_id belongs to the key's tenant: {answer}"
    );
    let (status, _) = client
        .post_with_key(
            "/api/v1/events",
            "application/json",
            {
                let mut e = event("cross-2");
                e["tenant_id"] = json!("acme");
                e.to_string()
            },
            &other_tenant,
        )
        .await;
    assert_eq!(status, 403);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        server.kafka_message_count(),
        in_kafka + accepted_avro + 1,
        "only the Avro events and the one valid cross-tenant event were produced"
    );
    let leaked = server
        .clickhouse(
            "SELECT count() FROM audit_events WHERE event_id LIKE 'hostile-%' \
             OR event_id LIKE 'over-%' OR event_id = 'ok-1'",
        )
        .await;
    assert_eq!(leaked.trim(), "0");
    server.stop().await;
}
