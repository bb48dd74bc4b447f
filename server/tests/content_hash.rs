//! The stored `content_hash` is exactly the encoding docs/DESIGN.md
//! ("Event identity") describes, on the local ClickHouse: the text is
//! implemented again here and compared with what the writer stored and
//! with what the column's expression computes for a row inserted without
//! it. (`server/tests/modern_clickhouse.py` checks the expression on the
//! current ClickHouse.)

mod common;
mod search_support;

use serde_json::json;
use sha2::{Digest, Sha256};

use search_support::{seed, tsv_lines, with};

/// Appends one field of the canonical encoding: its length in bytes in
/// decimal, ':', its bytes.
fn field(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
}

/// The content hash as docs/DESIGN.md defines it, written again here from
/// the text, to check ClickHouse's expression against it.
fn documented_hash(fields: &[&str], metadata: &[(&str, &str)]) -> String {
    let mut encoded = Vec::new();
    for value in fields {
        field(&mut encoded, value);
    }
    let mut entries = metadata.to_vec();
    entries.sort();
    field(&mut encoded, &entries.len().to_string());
    for (key, value) in entries {
        field(&mut encoded, key);
        field(&mut encoded, value);
    }
    Sha256::digest(&encoded)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Values that would collide under a naive encoding (a separator inside a
/// value, a field moved into the next one) hash apart, metadata order does
/// not matter, and what Attest adds is left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_hash_is_the_documented_encoding() {
    let server = common::start(common::test_config()).await;
    let at: i64 = 1_795_435_200_123;
    let base = json!({
        "event_id": "h:1", "tenant_id": "acme", "occurred_at": at, "category": "admin",
        "action": "role.grant", "outcome": "denied",
        "actor": {"id": "o'brien:3", "type": "user", "ip": "2001:db8::1", "user_agent": "Zürich 1:2"},
        "resource": {"type": "role", "id": "r:9"}, "source_service": "iam", "request_id": "r-1",
        "metadata": {"z": "1:a", "a": "", "a:": "b"},
    });
    let moved = with(
        base.clone(),
        json!({"event_id": "h:2", "actor": {"id": "o'brien", "type": "3:user"}}),
    );
    let reordered = with(
        base.clone(),
        json!({"event_id": "h:3", "metadata": {"a:": "b", "z": "1:a", "a": ""}}),
    );
    seed(&server, &[base, moved, reordered]).await;
    let stored = server
        .clickhouse("SELECT event_id, content_hash FROM audit_events ORDER BY event_id FORMAT TSV")
        .await;
    let stored = tsv_lines(&stored);
    let expected = |id: &str, actor: &str, kind: &str| {
        let occurred = at.to_string();
        documented_hash(
            &[
                id,
                "acme",
                &occurred,
                "admin",
                "role.grant",
                "denied",
                actor,
                kind,
                "2001:db8::1",
                "Zürich 1:2",
                "role",
                "r:9",
                "iam",
                "r-1",
            ],
            &[("z", "1:a"), ("a", ""), ("a:", "b")],
        )
    };
    assert_eq!(stored[0], ["h:1", &expected("h:1", "o'brien:3", "user")]);
    assert_eq!(stored[1], ["h:2", &expected("h:2", "o'brien", "3:user")]);
    assert_eq!(stored[2], ["h:3", &expected("h:3", "o'brien:3", "user")]);

    // The same rows inserted without their hash (by hand, or an INSERT …
    // SELECT) get it from migration 0009's expression, the column's
    // default: it must agree with the writer's.
    server
        .clickhouse("CREATE TABLE audit_events_by_expression AS audit_events")
        .await;
    let given = "event_id, tenant_id, occurred_at, received_at, category, action, outcome, \
                 actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
                 source_service, request_id, metadata.key, metadata.value, schema_id, \
                 kafka_partition, kafka_offset";
    server
        .clickhouse(&format!(
            "INSERT INTO audit_events_by_expression ({given}) SELECT {given} FROM audit_events"
        ))
        .await;
    let computed = server
        .clickhouse(
            "SELECT event_id, content_hash FROM audit_events_by_expression \
             ORDER BY event_id FORMAT TSV",
        )
        .await;
    server
        .clickhouse("DROP TABLE audit_events_by_expression")
        .await;
    assert_eq!(tsv_lines(&computed), stored);
    server.stop().await;
}
