//! Every process on the pipeline page, against the real stack: two writer
//! processes of one group report their state and the partitions the group
//! gives each; a writer that stops reporting shows as silent, and the one
//! left holds every partition. A consumer in the group that is not an
//! Attest process shows as a member no process claims.

mod common;
mod console_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use attest_server::config::Config;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;

use console_support::Browser;

fn procs_config() -> Config {
    let mut config = common::test_config();
    // Reports every second: silent after three missed, within seconds.
    config.trends.sample_every = Duration::from_secs(1);
    config.kafka.session_timeout = Duration::from_secs(6);
    config
}

/// The processes on the page, as its server function sends them.
async fn processes(browser: &Browser) -> Value {
    let (status, snapshot) = browser.call("pipeline/snapshot", &[]).await;
    assert_eq!(status, 200, "{snapshot}");
    snapshot["processes"].clone()
}

fn writers(processes: &Value) -> Vec<Value> {
    processes["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("processes in {processes}"))
        .iter()
        .filter(|p| p["roles"] == serde_json::json!(["writer"]))
        .cloned()
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `done` holds for the page's processes; panics with the
/// last answer after `timeout`.
async fn wait_for(
    browser: &Browser,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let now = processes(browser).await;
        if done(&now) {
            return now;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}; last: {now:#}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_report_their_partitions_and_a_stopped_one_goes_silent() {
    let mut config = procs_config();
    // The console process runs no writer: the two below are the group.
    config.writer.enabled = false;
    let server = common::start(config.clone()).await;
    let mut writer_config = config.clone();
    writer_config.writer.enabled = true;
    let first = attest_server::start_writer(writer_config.clone())
        .await
        .expect("first writer starts");
    let second = attest_server::start_writer(writer_config)
        .await
        .expect("second writer starts");
    let browser = Browser::new(&server.base_url);

    let all: BTreeSet<String> = attest_server::topics::event_topics(&config.kafka.topic_prefix)
        .iter()
        .flat_map(|t| (0..config.kafka.partitions).map(move |p| format!("{t}/{p}")))
        .collect();

    // Both writers report, running, with the partitions the group gives
    // each: together every partition, none twice, as the group says.
    let both = wait_for(
        &browser,
        Duration::from_secs(60),
        "two running writers sharing the partitions",
        |p| {
            let w = writers(p);
            let held: Vec<String> = w.iter().flat_map(|w| strings(&w["partitions"])).collect();
            w.len() == 2
                && w.iter().all(|w| {
                    w["writer"] == "Running"
                        && w["silent"] == false
                        && !strings(&w["partitions"]).is_empty()
                        && w["group_partitions"] == w["partitions"]
                })
                && held.len() == all.len()
                && held.iter().cloned().collect::<BTreeSet<_>>() == all
        },
    )
    .await;
    assert_eq!(both["group_read"], true, "{both:#}");
    let ids: Vec<String> = writers(&both)
        .iter()
        .map(|w| w["process"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_ne!(ids[0], ids[1]);
    // The console process is listed too, as itself, without a writer.
    let me: Vec<&Value> = both["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["this_process"] == true)
        .collect();
    assert_eq!(me.len(), 1, "{both:#}");
    assert_eq!(me[0]["writer"], "None");
    assert_eq!(strings(&me[0]["roles"]), ["console", "ingest"]);
    // Their reports are rows in ClickHouse, one process id each.
    let reported = server
        .clickhouse("SELECT uniqExact(process) FROM attest_process_status WHERE has(roles, 'writer') FORMAT TSV")
        .await;
    assert_eq!(reported.trim(), "2");
    assert!(
        both["unclaimed_members"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{both:#}"
    );

    // One writer stops: it goes silent (it may have died), and the other
    // is given every partition.
    first.shutdown().await;
    let after = wait_for(
        &browser,
        Duration::from_secs(60),
        "one writer silent, the other holding all",
        |p| {
            let w = writers(p);
            let silent: Vec<&Value> = w.iter().filter(|w| w["silent"] == true).collect();
            let live: Vec<&Value> = w.iter().filter(|w| w["silent"] == false).collect();
            silent.len() == 1
                && live.len() == 1
                && live[0]["writer"] == "Running"
                && strings(&live[0]["partitions"])
                    .into_iter()
                    .collect::<BTreeSet<_>>()
                    == all
        },
    )
    .await;
    let live = writers(&after)
        .into_iter()
        .find(|w| w["silent"] == false)
        .unwrap();
    assert!(ids.contains(&live["process"].as_str().unwrap().to_owned()));
    let page = browser.get("/pipeline").await.text().await.unwrap();
    assert!(page.contains("silent since"), "{page}");
    assert!(page.contains("data-silent=\"true\""), "{page}");

    // A consumer of the group that is not an Attest process: listed as a
    // member nobody claims (it also takes partitions from the writer).
    let stranger: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.kafka.consumer_group)
        .set("client.id", "not-attest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    stranger.subscribe(&names).expect("subscribe");
    let polling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let poller = {
        let polling = polling.clone();
        std::thread::spawn(move || {
            while polling.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = stranger.poll(Duration::from_millis(100));
            }
            stranger.unsubscribe();
        })
    };
    let seen = wait_for(
        &browser,
        Duration::from_secs(60),
        "the stranger listed as unclaimed",
        |p| {
            p["unclaimed_members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["client_id"] == "not-attest"))
        },
    )
    .await;
    assert!(
        seen["unclaimed_members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["client_id"] == "not-attest"),
        "{seen:#}"
    );
    polling.store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = poller.join();

    second.shutdown().await;
    server.stop().await;
}
