//! Exports that verify offline (docs/INTEGRITY.md, sections 10–12), on the
//! real stack: a bundle of sealed events verifies with `attest verify` and
//! with the independent verifier, and each tampering (a row changed in
//! ClickHouse before the export, a byte of the exported file, a digest
//! dropped from the bundle, a wrong key) is named by both, the same way.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use attest_server::integrity::export_zip::{read_entries, ZipWriter};
use attest_server::integrity::keys;
use serde_json::Value;

/// The whole search as a bundle with proofs.
async fn export_bundle(server: &common::TestServer) -> Vec<u8> {
    let response = server
        .http
        .get(format!(
            "{}/api/v1/export?format=ndjson&range=7d&proofs=true",
            server.base_url
        ))
        .send()
        .await
        .expect("export answers");
    assert_eq!(response.status().as_u16(), 200, "export with proofs");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/zip"
    );
    response.bytes().await.expect("the whole bundle").to_vec()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("attest-proofs-{}", common::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Removes a scratch file's directory (a bundle of 100,000 rows is 160 MB).
fn forget(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The bundle with some entries replaced, rezipped as a tamperer would.
fn rebuild(bundle: &[u8], change: impl Fn(&str, &[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut zip = ZipWriter::new();
    for (name, data) in read_entries(bundle).unwrap() {
        zip.start(&name);
        zip.write(&change(&name, data).unwrap_or_else(|| data.to_vec()));
        zip.finish().unwrap();
    }
    zip.end().unwrap();
    zip.take()
}

fn entry(bundle: &[u8], name: &str) -> Vec<u8> {
    read_entries(bundle)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.to_vec())
        .unwrap()
}

/// What both verifiers concluded.
#[derive(Debug, PartialEq)]
struct Verdict {
    ok: bool,
    rows: u64,
    /// (kind, subject) of the first problem.
    first: Option<(String, String)>,
}

/// `attest verify --json`, and the exit code it gave.
fn attest_verify(bundle: &[u8], keys: Option<&Path>) -> (Verdict, Value, i32) {
    let path = scratch("bundle.zip");
    std::fs::write(&path, bundle).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_attest"));
    command.arg("verify").arg(&path).arg("--json");
    if let Some(keys) = keys {
        command.arg("--keys").arg(keys);
    }
    let out = command.output().expect("attest verify runs");
    forget(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "attest verify output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let first = report["first"].as_array().map(|f| {
        (
            f[0].as_str().unwrap().to_owned(),
            f[1].as_str().unwrap().to_owned(),
        )
    });
    let verdict = Verdict {
        ok: report["ok"].as_bool().unwrap(),
        rows: report["rows"].as_u64().unwrap(),
        first,
    };
    (verdict, report, out.status.code().unwrap_or(-1))
}

/// `server/tests/integrity_verifier.py export`, written from the document.
fn independent_verify(bundle: &[u8], keys: Option<&Path>) -> Verdict {
    let path = scratch("bundle.zip");
    std::fs::write(&path, bundle).unwrap();
    let mut command = std::process::Command::new("python3");
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integrity_verifier.py"
        ))
        .arg("export")
        .arg(&path);
    if let Some(keys) = keys {
        command.arg("--keys").arg(keys);
    }
    let out = command.output().expect("python3 runs the verifier");
    forget(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "verifier output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Verdict {
        ok: report["ok"].as_bool().unwrap(),
        rows: report["rows"].as_u64().unwrap(),
        first: report["first"].as_array().map(|f| {
            (
                f[0].as_str().unwrap().to_owned(),
                f[1].as_str().unwrap().to_owned(),
            )
        }),
    }
}

/// Both verifiers on one bundle: they must agree; returns the verdict.
fn both(bundle: &[u8], keys: Option<&Path>) -> (Verdict, Value, i32) {
    let (ours, report, code) = attest_verify(bundle, keys);
    let theirs = independent_verify(bundle, keys);
    assert_eq!(
        ours, theirs,
        "attest verify and the independent verifier disagree: {report}"
    );
    (ours, report, code)
}

fn first_is(verdict: &Verdict, kind: &str, subject: &str) {
    assert_eq!(
        verdict.first,
        Some((kind.to_owned(), subject.to_owned())),
        "{verdict:?}"
    );
    assert!(!verdict.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_export_verifies_and_each_tampering_is_named() {
    let config = common::test_config();
    let server = common::start(config.clone()).await;
    // Two rounds, so each partition's chain has several digests.
    let mut ids = common::produce_events(&config, 150, "proofs-a").await;
    server.wait_for_rows(150, Duration::from_secs(60)).await;
    common::wait_sealed(&server, 150).await;
    ids.extend(common::produce_events(&config, 150, "proofs-b").await);
    server.wait_for_rows(300, Duration::from_secs(60)).await;
    common::wait_sealed(&server, 300).await;

    let clean = export_bundle(&server).await;
    let (verdict, report, code) = both(&clean, None);
    assert!(verdict.ok, "{report}");
    assert_eq!(verdict.rows, 300);
    assert_eq!(report["proven_rows"], 300, "{report}");
    assert_eq!(code, 0);
    let manifest: Value = serde_json::from_slice(&entry(&clean, "manifest.json")).unwrap();
    assert_eq!(manifest["rows"], 300);
    assert_eq!(manifest["unsealed"].as_array().unwrap().len(), 0);

    // The published keys, kept independently, verify it too.
    let published = server
        .http
        .get(format!("{}/api/v1/integrity/keys", server.base_url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let keys_path = scratch("keys.json");
    std::fs::write(&keys_path, &published).unwrap();
    let (verdict, report, _) = both(&clean, Some(&keys_path));
    assert!(verdict.ok, "{report}");
    assert_eq!(report["keys"], "given");
    forget(&keys_path);

    // A wrong key: the manifest's signature is named first.
    let other_dir = scratch("other-keys");
    keys::generate(&other_dir, 1_000).unwrap();
    let (verdict, _, code) = both(&clean, Some(&other_dir.join("keys.json")));
    let signer: Value = serde_json::from_slice(&entry(&clean, "manifest.sig")).unwrap();
    first_is(
        &verdict,
        "manifest_signature",
        signer["key_id"].as_str().unwrap(),
    );
    assert_eq!(code, 1);
    forget(&other_dir);

    // One byte of a row the leaf covers, the file rezipped: that event.
    let events = String::from_utf8(entry(&clean, "events.ndjson")).unwrap();
    let fifth: Value = serde_json::from_str(events.lines().nth(4).unwrap()).unwrap();
    let target = fifth["event_id"].as_str().unwrap().to_owned();
    let edited = rebuild(&clean, |name, data| {
        (name == "events.ndjson").then(|| {
            let text = String::from_utf8(data.to_vec()).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines[4] = lines[4].replacen("record.read", "record.reae", 1);
            (lines.join("\n") + "\n").into_bytes()
        })
    });
    let (verdict, report, _) = both(&edited, None);
    first_is(&verdict, "event_altered", &target);
    assert!(
        report.to_string().contains("events.ndjson"),
        "the file hash too: {report}"
    );

    // One byte the leaf does not cover: the file's hash names it.
    let edited = rebuild(&clean, |name, data| {
        (name == "events.ndjson").then(|| {
            String::from_utf8(data.to_vec())
                .unwrap()
                .replacen("\"occurred_at_utc\":\"20", "\"occurred_at_utc\":\"19", 1)
                .into_bytes()
        })
    });
    first_is(&both(&edited, None).0, "file_hash", "events.ndjson");

    // A digest dropped from the bundle: named.
    let digests = String::from_utf8(entry(&clean, "digests.ndjson")).unwrap();
    assert!(digests.lines().count() >= 2, "{digests}");
    let dropped: Value = serde_json::from_str(digests.lines().nth(1).unwrap()).unwrap();
    let dropped_hash = dropped["digest_hash"].as_str().unwrap().to_owned();
    let edited = rebuild(&clean, |name, data| {
        (name == "digests.ndjson").then(|| {
            String::from_utf8(data.to_vec())
                .unwrap()
                .lines()
                .filter(|l| !l.contains(&dropped_hash))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes()
        })
    });
    first_is(&both(&edited, None).0, "missing_digest", &dropped_hash);

    // A row changed behind Attest's back, then exported: that event
    // (`received_at`: the sender's columns feed the key column
    // `content_hash`, which ClickHouse will not update in place).
    let victim = &ids[17];
    common::mutate(
        &server,
        &format!(
            "ALTER TABLE audit_events UPDATE received_at = received_at + 1 WHERE event_id = '{victim}'"
        ),
    )
    .await;
    let after = export_bundle(&server).await;
    let (verdict, report, code) = both(&after, None);
    first_is(&verdict, "event_altered", victim);
    assert_eq!(code, 1, "{report}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_100000_events_verifies() {
    let config = common::test_config();
    let server = common::start(config.clone()).await;
    common::produce_events(&config, 100_000, "proofs-big").await;
    server
        .wait_for_rows(100_000, Duration::from_secs(300))
        .await;
    common::wait_sealed(&server, 100_000).await;
    let bundle = export_bundle(&server).await;
    let (verdict, report, code) = both(&bundle, None);
    assert!(verdict.ok, "{report}");
    assert_eq!(verdict.rows, 100_000);
    assert_eq!(report["proven_rows"], 100_000);
    assert_eq!(code, 0);
    server.stop().await;
}
