//! The OpenAPI document against the running server: it is served without
//! sign-in (no console redirect), it is the one `attest openapi` prints,
//! and every operation it lists answers with a status it documents, on a
//! server that asks for API keys and console sign-in.

mod common;

use serde_json::{json, Value};

/// A value for a path parameter that the server parses.
fn sample(name: &str) -> &'static str {
    match name {
        "subject" => "no-such-subject",
        "version" => "latest",
        "id" => "1",
        _ => "x",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_documented() {
    let mut config = common::test_config();
    config.console.require_login = true;
    config.ingest.require_api_key = true;
    let server = common::start(config).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let response = client
        .get(format!("{}/api/v1/openapi.json", server.base_url))
        .send()
        .await
        .expect("attest reachable");
    assert_eq!(response.status().as_u16(), 200, "served without sign-in");
    let served: Value = response.json().await.expect("JSON");
    let printed: Value =
        serde_json::from_str(&attest_server::http::openapi::document()).expect("JSON");
    assert_eq!(served, printed);
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));

    let mut checked = 0;
    for (template, item) in served["paths"].as_object().unwrap() {
        let mut path = template.clone();
        for (method, operation) in item.as_object().unwrap() {
            for param in operation["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let name = param["name"].as_str().unwrap();
                    path = path.replace(&format!("{{{name}}}"), sample(name));
                }
            }
            let url = format!("{}{path}", server.base_url);
            let request = match method.as_str() {
                "get" => client.get(&url),
                "post" => client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(json!({"schema": "\"string\""}).to_string()),
                other => panic!("{template}: a method this test does not send: {other}"),
            };
            let response = request.send().await.expect("attest reachable");
            let status = response.status().as_u16().to_string();
            let documented = &operation["responses"];
            assert!(
                documented[&status].is_object(),
                "{method} {path} answered {status}, which {template} does not document"
            );
            // Error answers have the body the document names.
            if let Some(reference) = documented[&status]["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .and_then(|c| c["schema"]["$ref"].as_str())
            {
                let name = reference.rsplit('/').next().unwrap();
                let schema = &served["components"]["schemas"][name];
                let body: Value = response.json().await.unwrap_or(Value::Null);
                for field in schema["required"].as_array().into_iter().flatten() {
                    let field = field.as_str().unwrap();
                    assert!(
                        !body[field].is_null(),
                        "{method} {path} {status}: body lacks {field} of {name}: {body}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 19, "only {checked} operations checked");

    // Every body type the ingest operations document is one they take.
    let config = server.config.clone();
    let key = attest_server::open_keys(&config)
        .await
        .expect("key admin")
        .create("oa", "openapi-test", &[], "openapi test", "test")
        .await
        .expect("key")
        .key;
    let mut bodies = 0;
    for path in ["/api/v1/events", "/api/v1/events/batch"] {
        let content = served["paths"][path]["post"]["requestBody"]["content"]
            .as_object()
            .unwrap();
        for media in content.keys() {
            let body = body_of(media, path == "/api/v1/events/batch", &config);
            let response = client
                .post(format!("{}{path}", server.base_url))
                .bearer_auth(&key)
                .header("content-type", media.as_str())
                .body(body)
                .send()
                .await
                .expect("attest reachable");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, 202, "{path} as {media}: {text}");
            bodies += 1;
        }
    }
    assert_eq!(
        bodies, 5,
        "JSON and Avro to one, JSON, NDJSON and Avro to batch"
    );
    server.stop().await;
}

/// A valid body of `media` (one event, or two for the batch endpoint).
fn body_of(media: &str, batch: bool, config: &attest_server::config::Config) -> Vec<u8> {
    let event = |n: u32| {
        json!({
            "event_id": format!("oa-{}-{n}", common::unique()),
            "occurred_at": attest_server::ingest::now_ms(),
            "category": "data_access",
            "action": "invoice.view",
            "outcome": "success",
            "actor": {"id": "alice", "type": "user"},
        })
    };
    let events: Vec<Value> = if batch {
        vec![event(1), event(2)]
    } else {
        vec![event(1)]
    };
    match media {
        "application/json" if batch => json!(events).to_string().into_bytes(),
        "application/json" => events[0].to_string().into_bytes(),
        "application/x-ndjson" => events
            .iter()
            .map(|e| format!("{e}\n"))
            .collect::<String>()
            .into_bytes(),
        "application/vnd.attest.avro" => {
            let registry =
                attest_server::registry::Registry::load(&config.schemas_dir).expect("contract");
            events
                .iter()
                .flat_map(|e| {
                    let event = attest_server::event::AuditEvent {
                        event_id: e["event_id"].as_str().unwrap().to_owned(),
                        tenant_id: "oa".into(),
                        occurred_at: attest_server::ingest::now_ms(),
                        received_at: 0,
                        category: attest_server::event::Category::DataAccess,
                        action: "invoice.view".into(),
                        outcome: attest_server::event::Outcome::Success,
                        actor: attest_server::event::Actor {
                            id: "alice".into(),
                            kind: "user".into(),
                            ip: None,
                            user_agent: None,
                        },
                        resource: None,
                        source_service: "openapi-test".into(),
                        request_id: None,
                        metadata: Default::default(),
                    };
                    registry.encode(&event).expect("encodes")
                })
                .collect()
        }
        other => panic!("the document lists a body type this test cannot make: {other}"),
    }
}
