//! Start-up against dependencies that are down: a message naming the
//! service, its address and how to start it; never a panic.

mod common;

use leptos::config::LeptosOptions;

async fn start_error(config: attest_server::config::Config) -> String {
    let leptos = LeptosOptions::builder().output_name("attest").build();
    match attest_server::start(config, leptos).await {
        Ok(_) => panic!("start must fail"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_down_broker_is_named_with_its_address() {
    let mut config = common::test_config();
    config.kafka.brokers = "127.0.0.1:1".into();
    let message = start_error(config).await;
    assert!(message.contains("Kafka broker at 127.0.0.1:1"), "{message}");
    assert!(message.contains("scripts/stack.sh up"), "{message}");
}

#[tokio::test]
async fn a_down_clickhouse_is_named_with_its_address() {
    let mut config = common::test_config();
    config.clickhouse.url = "http://127.0.0.1:1".into();
    let message = start_error(config).await;
    assert!(
        message.contains("ClickHouse at http://127.0.0.1:1"),
        "{message}"
    );
}
