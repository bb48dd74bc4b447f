//! Sends N events through the client at a steady pace, for
//! sdk/testing/restart.py (the broker restart test):
//!
//!     send_events URL TENANT COUNT EVENTS_PER_SECOND
//!
//! Prints `queued N` as it goes and `id …` for every event once all are
//! stored; exits non-zero if any was not.

use std::time::{Duration, Instant};

use attest_client::{Client, Config};
use serde_json::json;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, tenant, count, pace] = args.as_slice() else {
        eprintln!("usage: send_events URL TENANT COUNT EVENTS_PER_SECOND");
        return std::process::ExitCode::from(2);
    };
    let (Ok(count), Ok(pace)) = (count.parse::<usize>(), pace.parse::<f64>()) else {
        eprintln!("COUNT and EVENTS_PER_SECOND are numbers");
        return std::process::ExitCode::from(2);
    };
    let mut config = Config::new(url);
    config.batch_size = 200;
    config.linger = Duration::from_millis(100);
    config.max_queue = 2_000;
    let client = match Client::new(config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("send_events: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(count);
    for first in (0..count).step_by(50) {
        let events = (first..(first + 50).min(count)).map(|n| {
            json!({
                "tenant_id": tenant,
                "occurred_at": now,
                "category": "data_access",
                "action": "invoice.view",
                "outcome": "success",
                "actor": {"id": format!("user-{}", n % 97), "type": "user", "ip": "10.0.0.1"},
                "resource": {"type": "invoice", "id": format!("inv-{n}")},
                "source_service": "sdk-tests",
                // As sdk/testing/restart.py pads its events: the server's
                // small spool fills within the outage.
                "metadata": {"n": n.to_string(), "pad": "x".repeat(600)},
            })
        });
        match client.send_batch(events).await {
            Ok(batch) => ids.extend(batch),
            Err(error) => {
                eprintln!("send_events: {error}");
                return std::process::ExitCode::FAILURE;
            }
        }
        println!("queued {}", ids.len());
        let due = Duration::from_secs_f64(ids.len() as f64 / pace);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }
    if let Err(error) = client.close().await {
        eprintln!("send_events: {error}");
        return std::process::ExitCode::FAILURE;
    }
    for id in ids {
        println!("id {id}");
    }
    std::process::ExitCode::SUCCESS
}
