//! Dependency checks and the pipeline's own health (consumer lag).
//!
//! Dependency checks. At start-up a dependency that is down stops Attest with
//! a message naming it, its address and how to start it.

pub mod lag;
pub mod pipeline;
pub mod procs;
pub mod ready;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::{ClickHouseConfig, KafkaConfig};
use crate::store::Store;

const LOCAL_HINT: &str =
    "for the local stack run `scripts/stack.sh up` (status: `scripts/stack.sh status`)";

#[derive(Debug, thiserror::Error)]
#[error("{service} at {address} is not reachable: {cause}; {hint}")]
pub struct DependencyDown {
    pub service: &'static str,
    pub address: String,
    pub cause: String,
    pub hint: &'static str,
}

/// Asks the brokers for cluster metadata.
pub async fn check_kafka(kafka: &KafkaConfig, timeout: Duration) -> Result<(), DependencyDown> {
    let down = |cause: String| DependencyDown {
        service: "Kafka broker",
        address: kafka.brokers.clone(),
        cause,
        hint: LOCAL_HINT,
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .map_err(|e| down(e.to_string()))?;
    // fetch_metadata blocks; keep it off the async workers.
    tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, timeout).map(|_| ()))
        .await
        .map_err(|e| down(e.to_string()))?
        .map_err(|e| down(e.to_string()))
}

/// `SELECT version()` against ClickHouse.
pub async fn check_clickhouse(
    config: &ClickHouseConfig,
    store: &Store,
    timeout: Duration,
) -> Result<(u32, u32), DependencyDown> {
    let down = |cause: String| DependencyDown {
        service: "ClickHouse",
        address: config.url.clone(),
        cause,
        hint: LOCAL_HINT,
    };
    match tokio::time::timeout(timeout, store.server_version()).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(down(e.to_string())),
        Err(_) => Err(down(format!("no answer within {} s", timeout.as_secs()))),
    }
}
