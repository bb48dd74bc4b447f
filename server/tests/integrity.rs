//! Tamper evidence on the real stack (docs/INTEGRITY.md): rows the writer
//! wrote are sealed in signed, chained digests, and every change made
//! behind Attest's back in ClickHouse is named by the integrity check;
//! a writer stopped between writing rows and sealing them seals each row
//! once after restart, with no gap in the chain.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use attest_server::integrity::check::{check_all, Problem};
use attest_server::integrity::{keys, Digest, KeyRing};
use attest_server::store::Store;

/// A problem as (kind, subject), the shape the independent verifier prints.
fn kind(p: &Problem) -> (String, String) {
    let (k, s) = p.kind_and_subject();
    (k.to_owned(), s)
}

/// `server/tests/integrity_verifier.py`, written from docs/INTEGRITY.md
/// alone, on the same data: it must find exactly what Attest's check finds.
async fn assert_independent_verifier_agrees(config: &attest_server::config::Config) {
    let report = common::integrity_report(config).await;
    let keys = config.integrity.key_dir.join("keys.json");
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integrity_verifier.py"
        ))
        .args(["--clickhouse", &config.clickhouse.url])
        .args(["--database", &config.clickhouse.database])
        .arg("--keys")
        .arg(&keys)
        .args(["--brokers", &config.kafka.brokers])
        .args(["--group", &config.kafka.consumer_group])
        .output()
        .await
        .expect("python3 runs the verifier");
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "verifier output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut found: Vec<(String, String)> = theirs["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut ours: Vec<(String, String)> = report.problems.iter().map(|(_, _, p)| kind(p)).collect();
    found.sort();
    found.dedup();
    ours.sort();
    ours.dedup();
    assert_eq!(
        found, ours,
        "the independent verifier and `attest integrity check` disagree"
    );
    assert_eq!(
        theirs["events"].as_u64(),
        Some(report.events as u64),
        "sealed events checked"
    );
    let their_folded: Vec<(String, i64)> = theirs["folded"]
        .as_array()
        .expect("the verifier lists folded copies")
        .iter()
        .map(|f| (f[0].as_str().unwrap().to_owned(), f[1].as_i64().unwrap()))
        .collect();
    let mut our_folded: Vec<(String, i64)> = report
        .folded
        .iter()
        .map(|f| (f.event_id.clone(), f.offset))
        .collect();
    our_folded.sort();
    assert_eq!(their_folded, our_folded, "re-sent copies stored once");
    assert_eq!(
        theirs["expired"].as_u64(),
        Some(report.expired as u64),
        "sealed events removed by retention"
    );
}

/// Every stored digest, read through the store.
async fn digests(config: &attest_server::config::Config) -> Vec<Digest> {
    let store = Store::new(&config.clickhouse);
    let mut all = Vec::new();
    for (topic, partition) in store.sealed_partitions().await.expect("partitions") {
        all.extend(
            store
                .digests_of_partition(&topic, partition)
                .await
                .expect("digests"),
        );
    }
    all
}

/// Every stored digest, by chain (topic and partition), in the order
/// [`digests`] reads them.
async fn chains(config: &attest_server::config::Config) -> BTreeMap<(String, i32), Vec<Digest>> {
    let mut chains: BTreeMap<(String, i32), Vec<Digest>> = BTreeMap::new();
    for d in digests(config).await {
        chains
            .entry((d.topic.clone(), d.partition))
            .or_default()
            .push(d);
    }
    chains
}

/// The head committed in Kafka with each chain's offset is the chain's
/// last digest.
async fn assert_heads_committed(
    config: &attest_server::config::Config,
    chains: &BTreeMap<(String, i32), Vec<Digest>>,
) {
    let heads = attest_server::integrity::check::committed_heads(
        &config.kafka,
        &chains.keys().cloned().collect::<Vec<_>>(),
    )
    .await
    .expect("heads");
    for (key, chain) in chains {
        assert_eq!(
            heads.get(key),
            Some(&chain.last().expect("a chain has digests").digest_hash),
            "{key:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_behind_attests_back_is_named() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    // Three rounds written one after the other: every partition's chain
    // has at least three digests.
    let mut ids = Vec::new();
    for round in 0..3 {
        ids.extend(common::produce_events(&config, 120, &format!("seal{round}")).await);
        server
            .wait_for_rows(ids.len() as u64, Duration::from_secs(60))
            .await;
        common::wait_sealed(&server, ids.len() as u64).await;
    }

    // Untouched: every row verifies, the heads committed in Kafka are the
    // newest digests.
    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.events, 360);
    assert_independent_verifier_agrees(&config).await;
    // The content hash computed for the leaves is the one ClickHouse
    // stores (the writer's, migration 0027).
    let store = Store::new(&config.clickhouse);
    let mut compared = 0;
    for d in digests(&config).await {
        for (row, stored) in store.rows_of(&d).await.expect("rows") {
            let ours = attest_server::integrity::leaf::Sealed::from(&row).content_hash();
            assert_eq!(ours, stored, "{}", row.event_id);
            compared += 1;
        }
    }
    assert!(compared >= 360, "{compared}");
    let chains = chains(&config).await;
    assert_eq!(chains.len(), 6, "one chain per topic partition");
    for (key, chain) in &chains {
        assert!(chain.len() >= 3, "{key:?}: {} digests", chain.len());
    }
    assert_heads_committed(&config, &chains).await;
    // The rows the test changes are in the topics of categories 1, 2 and
    // 3 (event i has category i % 6); the digests it breaks are in the
    // other three chains, so every change is checked on its own.
    let target_topics: Vec<String> = [7usize, 8, 9]
        .iter()
        .map(|i| {
            attest_server::topics::for_category(
                &config.kafka.topic_prefix,
                attest_server::event::Category::ALL[i % 6],
            )
        })
        .collect();
    let mut others = chains
        .iter()
        .filter(|((topic, _), _)| !target_topics.contains(topic))
        .map(|(_, chain)| chain);
    let (first, second, third) = (
        others.next().unwrap(),
        others.next().unwrap(),
        others.next().unwrap(),
    );

    // 1. A stored column changed in place.
    common::mutate(
        &server,
        "ALTER TABLE audit_events UPDATE received_at = received_at + 1 WHERE event_id = 'seal0-7'",
    )
    .await;
    // 2. A row deleted.
    common::mutate(
        &server,
        "ALTER TABLE audit_events DELETE WHERE event_id = 'seal1-8'",
    )
    .await;
    // 3. A row replaced by a forged copy: same id, tenant and offset,
    //    another action.
    let forged = server
        .clickhouse(
            "SELECT event_id, tenant_id, occurred_at, received_at, category, 'record.delete' AS action, \
             outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
             source_service, request_id, metadata.key, metadata.value, schema_id, kafka_partition, \
             kafka_offset FROM audit_events WHERE event_id = 'seal2-9' FORMAT TabSeparated",
        )
        .await;
    common::mutate(
        &server,
        "ALTER TABLE audit_events DELETE WHERE event_id = 'seal2-9'",
    )
    .await;
    server
        .clickhouse(&format!(
            "INSERT INTO audit_events (event_id, tenant_id, occurred_at, received_at, category, action, \
             outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id, \
             source_service, request_id, metadata.key, metadata.value, schema_id, kafka_partition, \
             kafka_offset) FORMAT TabSeparated\n{forged}"
        ))
        .await;
    // 7 (kept with the rows). A copy of a row inserted with its content
    //    untouched and another identity: Search and the dashboards would
    //    count it as a second event.
    common::insert_copy_with_hash(&server, "seal1-13", &"ab".repeat(32)).await;
    // 4. The middle digest of one chain deleted.
    let gone = &first[1];
    common::mutate(
        &server,
        &format!(
            "ALTER TABLE attest_integrity_digests DELETE WHERE digest_hash = '{}'",
            gone.digest_hash
        ),
    )
    .await;
    // 5. A digest's count changed.
    let altered = &second[0];
    common::mutate(&server, &format!("ALTER TABLE attest_integrity_digests UPDATE row_count = row_count + 1 WHERE digest_hash = '{}'", altered.digest_hash)).await;
    // 6. The newest digest of a chain deleted: Kafka still holds its hash.
    let newest = third.last().unwrap();
    common::mutate(
        &server,
        &format!(
            "ALTER TABLE attest_integrity_digests DELETE WHERE digest_hash = '{}'",
            newest.digest_hash
        ),
    )
    .await;

    let report = common::integrity_report(&config).await;
    let problems: Vec<&Problem> = report.problems.iter().map(|(_, _, p)| p).collect();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::EventAltered { event_id, .. } if event_id == "seal0-7")),
        "the row changed in place is named: {text:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::EventMissing { event_id, .. } if event_id == "seal1-8")),
        "the deleted row is named: {text:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::EventAltered { event_id, .. } if event_id == "seal2-9")),
        "the forged copy is named: {text:#?}"
    );
    assert!(
        problems.iter().any(
            |p| matches!(p, Problem::IdentityForged { event_id, .. } if event_id == "seal1-13")
        ),
        "the copy with a forged identity is named: {text:#?}"
    );
    assert!(
        !problems
            .iter()
            .any(|p| matches!(p, Problem::EventAltered { event_id, .. } if event_id == "seal1-13")),
        "its content is what was sealed: {text:#?}"
    );
    // The event page says the same of the copy, and still verifies the
    // row Attest stored (the page picks a copy by its content hash).
    let seals = common::event_seals(&config);
    let tenant = server
        .clickhouse("SELECT any(tenant_id) FROM audit_events WHERE event_id = 'seal1-13'")
        .await;
    let page = |content: String| {
        let (seals, tenant) = (&seals, tenant.trim().to_owned());
        async move {
            use app::integrity_model::EventSeals;
            seals
                .event_seal(&tenant, "seal1-13", None, Some(&content))
                .await
                .expect("seal check")
                .expect("the event")
                .verdict
        }
    };
    match page("ab".repeat(32)).await {
        app::integrity_model::SealVerdict::IdentityForged { stored_hash, .. } => {
            assert_eq!(stored_hash, "ab".repeat(32))
        }
        other => panic!("the forged copy's page says {other:?}"),
    }
    let original = server
        .clickhouse(&format!(
            "SELECT any(content_hash) FROM audit_events WHERE event_id = 'seal1-13' AND content_hash != '{}'",
            "ab".repeat(32)
        ))
        .await;
    let verdict = page(original.trim().to_owned()).await;
    assert!(
        matches!(verdict, app::integrity_model::SealVerdict::Verified { .. }),
        "the original's page says {verdict:?}"
    );
    assert!(
        problems.iter().any(
            |p| matches!(p, Problem::MissingDigest { missing, .. } if *missing == gone.digest_hash)
        ),
        "the deleted digest is named: {text:#?}"
    );
    assert!(
        problems.iter().any(|p| matches!(p, Problem::MissingDigest { missing, .. } if *missing == newest.digest_hash)),
        "the deleted newest digest is named through Kafka's head: {text:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::Digest { digest, .. } if *digest == altered.digest_hash)),
        "the altered digest's signature failure is named: {text:#?}"
    );

    assert_independent_verifier_agrees(&config).await;

    // A key that is not the one published: every digest is named.
    let other = common::unique();
    let other_dir = std::env::temp_dir().join(format!("attest-test-other-keys-{other}"));
    keys::generate(&other_dir, 0).expect("another key");
    let wrong = KeyRing::load(&other_dir).expect("ring");
    let store = Store::new(&config.clickhouse);
    let report = check_all(&store, &wrong, &config.kafka, i64::MIN)
        .await
        .expect("check");
    let unknown = report
        .problems
        .iter()
        .filter(|(_, _, p)| matches!(p, Problem::Digest { problem, .. } if problem.to_string().contains("not among the published keys")))
        .count();
    assert!(unknown >= 15, "every remaining digest is named: {unknown}");
    let _ = std::fs::remove_dir_all(&other_dir);
    server.stop().await;
}

/// Many small batches read back to back with several inserts in flight at
/// once: each partition's digests still form one chain in offset order
/// (each links to the one before and starts where it ended), every row is
/// sealed once, and the committed head is the chain's last digest. Seals
/// running side by side would fork a chain (two digests on one head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_inserted_side_by_side_are_sealed_in_one_chain() {
    let mut config = common::test_config();
    config.kafka.partitions = 2;
    config.writer.max_rows = 40;
    config.writer.inserts_in_flight = 3;
    // Everything is on the topics before the writer starts, so its batches
    // fill at once and launch while earlier ones still insert.
    const N: usize = 3_000;
    let ids = common::produce_events(&config, N, "inflight").await;
    assert_eq!(ids.len(), N);
    let server = common::start(config.clone()).await;
    server
        .wait_for_rows(N as u64, Duration::from_secs(120))
        .await;
    common::wait_sealed(&server, N as u64).await;

    let mut chains = chains(&config).await;
    let mut sealed = 0;
    let mut links = 0;
    for (key, chain) in chains.iter_mut() {
        chain.sort_by_key(|d| d.first_offset);
        for pair in chain.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].digest_hash, "{key:?}: a fork");
            assert_eq!(
                pair[1].first_offset,
                pair[0].last_offset + 1,
                "{key:?}: a gap or an overlap"
            );
            links += 1;
        }
        sealed += chain.iter().map(|d| d.row_count).sum::<u64>();
    }
    assert_eq!(sealed, N as u64, "every row sealed once");
    assert!(links >= 20, "many digests per chain: {links} links");
    // Sorted by first offset above, so each chain's last is its newest.
    assert_heads_committed(&config, &chains).await;
    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.events, N);
    server.stop().await;
}

/// Rows written, then the writer stopped before it could seal them (the
/// digests table refuses inserts), then a new writer: every row is sealed
/// exactly once and no chain has a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_stopped_between_rows_and_seal_seals_every_row_once_after_restart() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.writer.retry_max = Duration::from_millis(500);
    let http = reqwest::Client::new();
    let leptos = leptos::config::LeptosOptions::builder()
        .output_name("attest")
        .build();
    let ch = |sql: String| {
        let (http, config) = (http.clone(), config.clone());
        async move {
            let r = http
                .post(&config.clickhouse.url)
                .query(&[("database", config.clickhouse.database.as_str())])
                .body(sql.clone())
                .send()
                .await
                .expect("clickhouse");
            let status = r.status();
            let text = r.text().await.expect("body");
            assert!(status.is_success(), "{sql}: {text}");
            text
        }
    };

    // A first round sealed normally.
    let running = attest_server::start(config.clone(), leptos.clone())
        .await
        .expect("starts");
    let mut ids = common::produce_events(&config, 200, "before").await;
    assert_eq!(
        common::wait_for_distinct(&http, &config, 200, Duration::from_secs(60)).await,
        200
    );
    // Sealing now fails: the digests table is away.
    ch("RENAME TABLE attest_integrity_digests TO attest_integrity_digests_away".into()).await;
    ids.extend(common::produce_events(&config, 300, "window").await);
    assert_eq!(
        common::wait_for_distinct(&http, &config, 500, Duration::from_secs(60)).await,
        500
    );
    // The rows are in; give the writer time to fail sealing at least once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http
            .get(format!("http://{}/metrics", running.addr))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics
            .lines()
            .any(|l| l.starts_with("attest_writer_seal_retries_total ") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "sealing never failed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.shutdown().await;
    ch("RENAME TABLE attest_integrity_digests_away TO attest_integrity_digests".into()).await;

    // A new writer re-reads the unsealed batch, writes it again (it
    // collapses) and seals it.
    let running = attest_server::start(config.clone(), leptos)
        .await
        .expect("restarts");
    ids.extend(common::produce_events(&config, 100, "after").await);
    let stored = common::wait_for_distinct(&http, &config, 600, Duration::from_secs(60)).await;
    if stored != 600 {
        // Names the events missing or extra.
        common::assert_exactly(&http, &config, &ids).await;
    }
    assert_eq!(stored, 600);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report = common::integrity_report(&config).await;
        if report.events >= 600 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    common::assert_sealed_once(&config, 600).await;
    common::assert_exactly(&http, &config, &ids).await;
    running.shutdown().await;
    common::drop_database(&http, &config).await;
    common::delete_topics(&config).await;
}

/// The scheduled check (on the alerts' elected process) finds a row changed
/// behind Attest's back, says so on `/metrics` and records it in Attest's
/// own trail, naming the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_check_records_a_changed_row_in_attests_own_trail() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.integrity.check_every = Duration::from_secs(1);
    config.alerts.evaluate_every = Duration::from_millis(500);
    let server = common::start(config.clone()).await;
    common::produce_events(&config, 60, "sched").await;
    server.wait_for_rows(60, Duration::from_secs(60)).await;
    common::wait_sealed(&server, 60).await;
    let gauge = |text: &str, name: &str| -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as i64)
    };
    // A clean check first.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.metrics_text().await;
        if gauge(&text, "attest_integrity_checks_total").unwrap_or(0) >= 1 {
            assert_eq!(gauge(&text, "attest_integrity_problems"), Some(0), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled check ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The clean check signed checkpoints (INTEGRITY section 16) at the
    // committed heads, which the next checks walk back to.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let signed = server
            .clickhouse("SELECT count() FROM attest_integrity_checkpoints")
            .await;
        if signed.trim() != "0" {
            break;
        }
        assert!(Instant::now() < deadline, "the job signed no checkpoint");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    common::mutate(
        &server,
        "ALTER TABLE audit_events UPDATE received_at = received_at + 1 WHERE event_id = 'sched-11'",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.metrics_text().await;
        if gauge(&text, "attest_integrity_problems").unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change was not found: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let recorded = server
            .clickhouse(
                "SELECT count() FROM audit_events WHERE tenant_id = 'attest' \
                 AND action = 'integrity.mismatch' AND outcome = 'failure' \
                 AND has(`metadata.value`, 'sched-11')",
            )
            .await;
        if recorded.trim() != "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no integrity.mismatch event in Attest's trail"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.stop().await;
}

/// A writer that stored rows and their digest, then died before its
/// commit, as the next writer finds it: the new owner adopts the stored
/// digest as its chain's head (it does not seal those rows again), and
/// commits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_stored_and_never_committed_is_adopted_not_sealed_again() {
    use attest_server::integrity::seal::Run;
    use attest_server::integrity::Sealer;
    use attest_server::registry::Registry;
    use attest_server::store::{EventRow, Provenance};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let n = 300;
    common::produce_events(&config, n, "dead-writer").await;

    // The dead writer's work: every record read, its row inserted and the
    // rows sealed, with nothing committed.
    let topics = attest_server::topics::event_topics(&config.kafka.topic_prefix);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", format!("{}-dead", config.kafka.consumer_group))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for topic in &topics {
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let registry = Registry::load(&config.schemas_dir).expect("registry");
    let mut rows: BTreeMap<String, Vec<EventRow>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows.values().map(Vec::len).sum::<usize>() < n {
        assert!(Instant::now() < deadline, "records not read back");
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("record");
        let (schema_id, event) = registry
            .decode(message.payload().unwrap_or_default())
            .expect("decodes");
        let row = EventRow::new(
            event,
            Provenance {
                schema_id,
                partition: message.partition(),
                offset: message.offset(),
            },
        );
        rows.entry(message.topic().to_owned())
            .or_default()
            .push(row);
    }
    let store = Store::new(&config.clickhouse);
    store.migrate().await.expect("migrations");
    for topic_rows in rows.values() {
        store
            .insert_events(topic_rows)
            .await
            .expect("rows inserted");
    }
    let runs: Vec<Run<'_>> = rows
        .iter()
        .map(|(topic, topic_rows)| Run {
            topic,
            partition: 0,
            first_offset: topic_rows.iter().map(|r| r.kafka_offset).min().unwrap_or(0),
            last_offset: topic_rows.iter().map(|r| r.kafka_offset).max().unwrap_or(0),
            rows: topic_rows.iter().collect(),
            leaves: topic_rows
                .iter()
                .map(|r| attest_server::integrity::leaf::Sealed::from(r).leaf())
                .collect(),
        })
        .collect();
    let sealer = Sealer::new(
        &config.integrity,
        &config.kafka,
        store.clone(),
        std::sync::Arc::default(),
    )
    .expect("sealer");
    let sealing = sealer.seal(&runs).await.expect("sealed");
    assert_eq!(sealing.rows, n);
    let stored: BTreeMap<String, String> = rows
        .keys()
        .map(|topic| {
            let head = sealing.head(topic, 0).expect("a head per topic");
            (topic.clone(), head.to_owned())
        })
        .collect();

    // The next writer reads everything again from the start.
    let server = common::start(config.clone()).await;
    let partitions: Vec<(String, i32)> = stored.keys().map(|t| (t.clone(), 0)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let committed = check_all_heads(&config, &partitions).await;
        if committed == stored {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new writer committed other heads than the stored digests: {committed:?} vs {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.events, n, "{report:?}");
    assert_eq!(
        (report.digests, report.superseded),
        (stored.len(), 0),
        "one digest per topic, none sealed again: {report:?}"
    );
    server.stop().await;
}

/// The committed chain head of each partition, by topic.
async fn check_all_heads(
    config: &attest_server::config::Config,
    partitions: &[(String, i32)],
) -> BTreeMap<String, String> {
    attest_server::integrity::check::committed_heads(&config.kafka, partitions)
        .await
        .expect("committed heads")
        .into_iter()
        .map(|((topic, _), head)| (topic, head))
        .collect()
}

/// A client's retry of an event whose first attempt had landed is one
/// identity at two offsets, each sealed; the table keeps one row when it
/// merges them. The check then says the event is stored once, not that a
/// sealed event is missing, and the independent verifier agrees. With the
/// kept row deleted as well, both leaves are missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_merged_into_its_copy_is_stored_once_not_missing() {
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let event = serde_json::json!({
        "event_id": "retried-1",
        "tenant_id": "acme",
        "source_service": "sso",
        "occurred_at": attest_server::ingest::now_ms() - 60_000,
        "category": "authentication",
        "action": "login",
        "outcome": "success",
        "actor": {"id": "alice", "type": "user", "ip": "198.51.100.7"},
    });
    for attempt in 0..2 {
        let (status, answer) = server.post_json(event.to_string()).await;
        assert_eq!(status, 202, "attempt {attempt}: {answer}");
    }
    common::produce_events(&config, 20, "retried-load").await;
    common::wait_sealed(&server, 22).await;
    server.clickhouse("OPTIMIZE TABLE audit_events FINAL").await;
    let kept = server
        .clickhouse("SELECT count() FROM audit_events WHERE event_id = 'retried-1'")
        .await;
    assert_eq!(kept.trim(), "1", "the merge kept one row of the identity");

    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.events, 22, "both attempts are sealed: {report:?}");
    let folded: Vec<(&str, i64)> = report
        .folded
        .iter()
        .map(|f| (f.event_id.as_str(), f.kept_offset))
        .collect();
    assert_eq!(folded.len(), 1, "{folded:?}");
    assert_eq!(folded[0].0, "retried-1");
    assert_ne!(
        report.folded[0].offset, report.folded[0].kept_offset,
        "named at the offset whose row was merged away"
    );
    assert_independent_verifier_agrees(&config).await;

    common::mutate(
        &server,
        "ALTER TABLE audit_events DELETE WHERE event_id = 'retried-1'",
    )
    .await;
    let report = common::integrity_report(&config).await;
    let missing = report
        .problems
        .iter()
        .filter(|(_, _, p)| matches!(p, Problem::EventMissing { event_id, .. } if event_id == "retried-1"))
        .count();
    assert_eq!(missing, 2, "{:#?}", report.problems);
    assert!(report.folded.is_empty(), "{:?}", report.folded);
    assert_independent_verifier_agrees(&config).await;
    server.stop().await;
}

/// A mass re-send (a service replaying a day after a timeout) leaves more
/// leaves without their rows than one search for copies names (1,000
/// event ids per statement): every one of them is still found stored
/// once, across several statements, and none is reported missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_re_send_is_stored_once_across_several_searches_for_copies() {
    const SENT: usize = 2_100;
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let at = attest_server::ingest::now_ms() - 60_000;
    let events: Vec<serde_json::Value> = (0..SENT)
        .map(|i| {
            serde_json::json!({
                "event_id": format!("replayed-{i}"),
                "tenant_id": "acme",
                "source_service": "sso",
                "occurred_at": at + i as i64,
                "category": "authentication",
                "action": "login",
                "outcome": "success",
                "actor": {"id": format!("user-{}", i % 7), "type": "user"},
            })
        })
        .collect();
    for attempt in 0..2 {
        for batch in events.chunks(500) {
            let body = serde_json::Value::Array(batch.to_vec()).to_string();
            let (status, answer) = server.post_batch_json(body).await;
            assert_eq!(status, 202, "attempt {attempt}: {answer}");
        }
    }
    common::wait_sealed(&server, 2 * SENT as u64).await;
    server.clickhouse("OPTIMIZE TABLE audit_events FINAL").await;
    let kept = server
        .clickhouse("SELECT count() FROM audit_events WHERE event_id LIKE 'replayed-%'")
        .await;
    assert_eq!(kept.trim(), SENT.to_string(), "the merge kept one row each");

    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.events, 2 * SENT, "both sends are sealed");
    let mut folded: Vec<&str> = report.folded.iter().map(|f| f.event_id.as_str()).collect();
    folded.sort_unstable();
    folded.dedup();
    assert_eq!(folded.len(), SENT, "every re-sent event is stored once");
    server.stop().await;
}

/// Retention removes sealed rows, and signs first which ones (docs/
/// INTEGRITY.md, section 15): the check counts them as removed by
/// retention, not missing, whether their month was dropped whole or only
/// their tenant's rows deleted, and the independent verifier agrees. A
/// row deleted behind Attest's back is still missing; a retention record
/// changed to cover it fails its signature, is named, and explains
/// nothing any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_removed_by_retention_are_not_reported_missing_and_a_forged_record_is_named() {
    use attest_server::retention::{Month, Removal};
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.retention.default_months = 12;
    config.retention.tenants.insert("long".into(), 60);
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    let mid = common::mid_month_ms;
    // Tenant a: three events of January 2024 (every tenant of that month
    // is expired: the month is dropped whole) and one of March 2024,
    // which tenant "long" keeps (only a's rows are deleted); two recent.
    let sent = [
        ("jan-1", "a", mid("2024-01")),
        ("jan-2", "a", mid("2024-01") + 1),
        ("jan-3", "a", mid("2024-01") + 2),
        ("mar-1", "a", mid("2024-03")),
        ("mar-long", "long", mid("2024-03")),
        ("victim", "a", now - 60_000),
        ("recent", "a", now - 30_000),
    ];
    for (id, tenant, at) in sent {
        common::post_read(&server, id, tenant, at).await;
    }
    common::wait_sealed(&server, sent.len() as u64).await;

    let retention = attest_server::open_retention(&config)
        .await
        .expect("retention opens");
    let plan = retention.plan(now).await.expect("plan");
    let m = |s| Month::parse(s).unwrap();
    assert_eq!(
        plan.removals,
        [
            Removal::DropMonth {
                month: m("2024-01"),
                tenants: vec![("a".into(), 3)],
            },
            Removal::DeleteTenantMonth {
                month: m("2024-03"),
                tenant: "a".into(),
                events: 1,
            },
        ]
    );
    retention.execute(&plan).await.expect("retention runs");
    // Its two audit events are sealed and committed too before the checks
    // are compared: both then see the same chain heads.
    common::wait_committed(&config, sent.len() as i64 + 2).await;
    wait_removed(&server, "'jan-1', 'jan-2', 'jan-3', 'mar-1'").await;
    let records = server
        .clickhouse(
            "SELECT tenant_id, month, length(kafka_offsets) FROM attest_retention_records \
             ORDER BY month FORMAT CSV",
        )
        .await;
    assert_eq!(records, "\"a\",202401,3\n\"a\",202403,1\n");

    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.expired, 4, "{report:?}");
    assert_independent_verifier_agrees(&config).await;

    // Someone deletes a recent row and extends January's record to cover
    // it: the record no longer verifies and explains nothing.
    let victim = server
        .clickhouse("SELECT kafka_offset FROM audit_events WHERE event_id = 'victim'")
        .await;
    common::mutate(
        &server,
        "ALTER TABLE audit_events DELETE WHERE event_id = 'victim'",
    )
    .await;
    common::mutate(
        &server,
        &format!(
            "ALTER TABLE attest_retention_records UPDATE kafka_offsets = \
             arraySort(arrayPushBack(kafka_offsets, {})) WHERE month = 202401",
            victim.trim()
        ),
    )
    .await;
    let report = common::integrity_report(&config).await;
    let mut found: Vec<(String, String)> =
        report.problems.iter().map(|(_, _, p)| kind(p)).collect();
    found.sort();
    found.dedup();
    let expected: Vec<(String, String)> = [
        ("bad_retention_record", "a/202401"),
        ("event_missing", "jan-1"),
        ("event_missing", "jan-2"),
        ("event_missing", "jan-3"),
        ("event_missing", "victim"),
    ]
    .iter()
    .map(|(k, s)| (k.to_string(), s.to_string()))
    .collect();
    assert_eq!(found, expected, "{:#?}", report.problems);
    assert_eq!(report.expired, 1, "March's record still holds");
    assert_independent_verifier_agrees(&config).await;
    server.stop().await;
}

/// Waits until no row of `ids` is left (a removal's mutation runs in the
/// background).
async fn wait_removed(server: &common::TestServer, ids: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = server
            .clickhouse(&format!(
                "SELECT count() FROM audit_events WHERE event_id IN ({ids})"
            ))
            .await;
        if left.trim() == "0" {
            return;
        }
        assert!(Instant::now() < deadline, "retention left {left}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Retention removes exactly the rows its records name (docs/INTEGRITY.md,
/// section 15): those below the writers' committed offsets, read before it
/// signs. An event of the expired month stored between the signing and
/// the removal (sent late with an old `occurred_at`) stays, so no check
/// calls it missing, and the next run removes it under a record of its
/// own. Without the bound the removal takes it unrecorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_stored_while_retention_signs_waits_for_a_record_of_its_own() {
    use attest_server::retention::{Month, Removal};
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    config.retention.default_months = 12;
    let server = common::start(config.clone()).await;
    let now = attest_server::ingest::now_ms();
    let january = common::mid_month_ms("2024-01");
    common::post_read(&server, "early-1", "a", january).await;
    common::post_read(&server, "early-2", "a", january + 1).await;
    common::wait_sealed(&server, 2).await;
    common::wait_committed(&config, 2).await;

    let retention = attest_server::open_retention(&config)
        .await
        .expect("retention opens");
    let plan = retention.plan(now).await.expect("plan");
    let january_of_a = |events| Removal::DropMonth {
        month: Month::parse("2024-01").unwrap(),
        tenants: vec![("a".into(), events)],
    };
    assert_eq!(plan.removals, [january_of_a(2)]);
    let prepared = retention
        .prepare(&plan.removals[0])
        .await
        .expect("the removal is signed");
    common::post_read(&server, "late", "a", january + 2).await;
    common::wait_sealed(&server, 3).await;
    common::wait_committed(&config, 3).await;
    retention.remove(&prepared).await.expect("removal");
    wait_removed(&server, "'early-1', 'early-2'").await;
    let late = server
        .clickhouse("SELECT count() FROM audit_events WHERE event_id = 'late'")
        .await;
    assert_eq!(late.trim(), "1", "the row no record names stays");
    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.expired, 2, "{report:?}");
    assert_independent_verifier_agrees(&config).await;

    // The next run finds it, signs it and removes it.
    let plan = retention.plan(now).await.expect("plan");
    assert_eq!(plan.removals, [january_of_a(1)]);
    retention.execute(&plan).await.expect("retention runs");
    wait_removed(&server, "'late'").await;
    // Its audit event is sealed and committed before the check.
    common::wait_committed(&config, 4).await;
    let records = server
        .clickhouse(
            "SELECT month, length(kafka_offsets) FROM attest_retention_records \
             ORDER BY executed_at FORMAT CSV",
        )
        .await;
    assert_eq!(records, "202401,2\n202401,1\n");
    let report = common::integrity_report(&config).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.expired, 3, "{report:?}");
    assert_independent_verifier_agrees(&config).await;
    server.stop().await;
}

/// Checkpoints (docs/INTEGRITY.md, section 16): after a clean full check
/// every chain gets one at its committed head; a limited check then reads
/// only the digests from there on, walks back to it, and still names a
/// digest deleted after it. One deleted before it is left to the full
/// check, which walks whole. A checkpoint written into the table by hand
/// (further on than the real one) does not verify: it is named, and the
/// walk uses the newest one that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_check_walks_back_only_to_the_newest_checkpoint() {
    use attest_server::integrity::checkpoint::Checkpoint;
    use attest_server::integrity::keys::SigningKey;
    let mut config = common::test_config();
    config.kafka.partitions = 1;
    let server = common::start(config.clone()).await;
    let mut n = 0;
    let round = |r: usize| {
        let config = config.clone();
        async move {
            common::produce_events(&config, 60, &format!("cp{r}"))
                .await
                .len()
        }
    };
    for r in 0..2 {
        n += round(r).await;
        common::wait_sealed(&server, n as u64).await;
    }
    let store = Store::new(&config.clickhouse);
    let keys = KeyRing::load(&config.integrity.key_dir).expect("keys");
    let key = SigningKey::load(&config.integrity.key_dir).expect("signing key");
    let full = common::integrity_report(&config).await;
    assert!(full.problems.is_empty(), "{:#?}", full.problems);
    let checkpoints = Checkpoint::for_whole_chains(&full, &key, attest_server::ingest::now_ms());
    assert_eq!(checkpoints.len(), 6, "one per chain: {:?}", full.chains);
    store
        .insert_checkpoints(&checkpoints)
        .await
        .expect("stored");

    let since = attest_server::ingest::now_ms();
    for r in 2..4 {
        n += round(r).await;
        common::wait_sealed(&server, n as u64).await;
    }
    let limited = check_all(&store, &keys, &config.kafka, since)
        .await
        .expect("check");
    assert!(limited.problems.is_empty(), "{:#?}", limited.problems);
    assert_eq!(limited.events, 120, "the rows sealed since are rechecked");
    let all = chains(&config).await;
    let at = |topic: &str| {
        checkpoints
            .iter()
            .find(|c| c.topic == topic)
            .expect("a checkpoint per chain")
    };
    let from_checkpoint: usize = all
        .iter()
        .map(|((topic, _), ds)| {
            ds.iter()
                .filter(|d| d.last_offset >= at(topic).last_offset)
                .count()
        })
        .sum();
    let total: usize = all.values().map(Vec::len).sum();
    assert_eq!(limited.digests, from_checkpoint, "digests read");
    assert!(from_checkpoint < total, "{from_checkpoint} of {total}");
    for walk in &limited.chains {
        assert_eq!(
            walk.from_checkpoint.as_deref(),
            Some(at(&walk.topic).digest_hash.as_str()),
            "{walk:?}"
        );
    }

    let mut chain_list = all.iter();
    // 1. The first digest after the checkpoint of one chain, deleted.
    let (_, first) = chain_list.next().unwrap();
    let after = first
        .iter()
        .find(|d| d.last_offset > at(&d.topic).last_offset)
        .expect("a digest after the checkpoint")
        .clone();
    // 2. The first digest of another chain, before its checkpoint.
    let (_, second) = chain_list.next().unwrap();
    let before = second.first().unwrap().clone();
    // 3. A forged checkpoint further on, in a third chain.
    let (_, third) = chain_list.next().unwrap();
    let forged = at(&third[0].topic).clone();
    for sql in [format!(
        "ALTER TABLE attest_integrity_digests DELETE WHERE digest_hash IN ('{}', '{}')",
        after.digest_hash, before.digest_hash
    )] {
        common::mutate(&server, &sql).await;
    }
    server
        .clickhouse(&format!(
            "INSERT INTO attest_integrity_checkpoints SELECT topic, partition, digest_hash, \
             last_offset + 1, checked_at + 1, key_id, signature FROM attest_integrity_checkpoints \
             WHERE digest_hash = '{}'",
            forged.digest_hash
        ))
        .await;
    let limited = check_all(&store, &keys, &config.kafka, since)
        .await
        .expect("check");
    let mut found: Vec<(String, String)> =
        limited.problems.iter().map(|(_, _, p)| kind(p)).collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("bad_checkpoint".to_owned(), forged.digest_hash.clone()),
            ("missing_digest".to_owned(), after.digest_hash.clone()),
        ],
        "{:#?}",
        limited.problems
    );
    let fallen_back = limited
        .chains
        .iter()
        .find(|w| w.topic == forged.topic)
        .expect("the forged checkpoint's chain");
    assert_eq!(
        fallen_back.from_checkpoint.as_deref(),
        Some(forged.digest_hash.as_str()),
        "the real checkpoint, not the forged one"
    );
    let full = common::integrity_report(&config).await;
    let found: Vec<(String, String)> = full.problems.iter().map(|(_, _, p)| kind(p)).collect();
    assert!(
        found.contains(&("missing_digest".to_owned(), before.digest_hash.clone())),
        "the full check walks whole: {found:?}"
    );
    server.stop().await;
}
