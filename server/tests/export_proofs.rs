//! Exports that verify offline (docs/INTEGRITY.md, sections 10–12), on the
//! real stack: a bundle of sealed events verifies with `attest verify` and
//! with the independent verifier, and each tampering (a row changed in
//! ClickHouse before the export, a byte of the exported file, a digest
//! dropped from the bundle, a wrong key) is named by both, the same way.
//! A CSV bundle of values that test every rule of reading CSV back (formula
//! characters, quotes, commas, line feeds, backslashes, non-ASCII, control
//! characters in the metadata arrays) verifies with both too.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use attest_server::integrity::export_rows::{records, RowReader};
use attest_server::integrity::export_zip::{read_entries, ZipWriter};
use attest_server::integrity::keys;
use attest_server::store::ExportFormat;
use serde_json::{json, Value};

/// The whole search as a bundle with proofs, its rows in `format`.
async fn export_bundle(server: &common::TestServer, format: &str) -> Vec<u8> {
    let response = server
        .http
        .get(format!(
            "{}/api/v1/export?format={format}&range=7d&proofs=true",
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

/// The whole search as a plain download.
async fn export_plain(server: &common::TestServer, format: &str) -> Vec<u8> {
    let response = server
        .http
        .get(format!(
            "{}/api/v1/export?format={format}&range=7d",
            server.base_url
        ))
        .send()
        .await
        .expect("export answers");
    assert_eq!(response.status().as_u16(), 200, "plain export");
    response.bytes().await.expect("the whole file").to_vec()
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

    let clean = export_bundle(&server, "ndjson").await;
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

    // A copy inserted behind Attest's back with its content intact and
    // another content hash: it proves like the original (the leaf is the
    // content's), yet Search counts it apart. Both verifiers name it.
    let copied = &ids[23];
    let forged = "ab".repeat(32);
    common::insert_copy_with_hash(&server, copied, &forged).await;
    let with_copy = export_bundle(&server, "ndjson").await;
    let (verdict, report, code) = both(&with_copy, None);
    first_is(&verdict, "identity_forged", copied);
    assert_eq!(verdict.rows, 301, "{report}");
    assert_eq!(report["proven_rows"], 301, "{report}");
    assert_eq!(code, 1, "{report}");
    common::mutate(
        &server,
        &format!("ALTER TABLE audit_events DELETE WHERE content_hash = '{forged}'"),
    )
    .await;

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
    let after = export_bundle(&server, "ndjson").await;
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
    let bundle = export_bundle(&server, "ndjson").await;
    let (verdict, report, code) = both(&bundle, None);
    assert!(verdict.ok, "{report}");
    assert_eq!(verdict.rows, 100_000);
    assert_eq!(report["proven_rows"], 100_000);
    assert_eq!(code, 0);
    server.stop().await;
}

/// Events whose text tests each rule of reading a CSV export back
/// (docs/INTEGRITY.md section 10): text starting with a formula character
/// or with `'`, CSV's quotes, commas and line feeds, backslashes,
/// non-ASCII, and in the metadata arrays every escape ClickHouse writes.
fn tricky_events(now: i64) -> Vec<Value> {
    let event = |id: &str, actor: &str, extra: Value| {
        let mut e = json!({
            "event_id": id, "tenant_id": "acme", "occurred_at": now,
            "category": "authentication", "action": "user.login", "outcome": "success",
            "actor": {"id": actor, "type": "user"}, "source_service": "sso",
        });
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    vec![
        event(
            "-csv-dash",
            "'=quoted",
            json!({"request_id": "'already quoted"}),
        ),
        event(
            "csv-formula",
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            json!({"action": "+cmd", "resource": {"type": "@SUM(1+1)", "id": "-2+3"}}),
        ),
        event(
            "csv-quotes",
            "alice, \"the\" admin",
            json!({
                "actor": {"id": "alice, \"the\" admin", "type": "user", "ip": "2001:db8::1",
                          "user_agent": "Mozilla/5.0 (\"X11\"),\n\tsecond line\r\n\\ back\\slash \0"},
                "metadata": {
                    "note": "comma, \"quote\" and\nnewline",
                    "path": "C:\\temp\\x'y",
                    "it's": "'=1+1",
                    "ctl": "\t\r\0\u{8}\u{c}\u{1}",
                    "emoji": "ü€😀 日本",
                    "brackets": "['x','y']",
                    "=k": "=v",
                    "empty": "",
                },
            }),
        ),
        event(
            "csv-unicode",
            "Zoë Ångström 😀",
            json!({"resource": {"type": "doc", "id": "日本語,テキスト"}}),
        ),
        event(
            "csv-tab",
            "tab",
            json!({
                "actor": {"id": "tab", "type": "user", "user_agent": "\tstarts with a tab"},
                "metadata": {"-k": "-v", "@k": "@v", "+k": "+v"},
            }),
        ),
        event(
            "csv-cr",
            "cr",
            json!({"actor": {"id": "cr", "type": "user", "user_agent": "\rstarts with a carriage return"}}),
        ),
        event("csv-plain", "bob", json!({})),
    ]
}

/// Every row of an export file, read as `attest verify` reads it, with
/// its content hash cell.
fn read_rows(file: &[u8], format: ExportFormat) -> Vec<Value> {
    let mut reader = RowReader::new(format);
    records(file, format)
        .filter_map(|record| reader.read(record).expect("a readable row"))
        .map(|read| {
            let mut row = serde_json::to_value(read.row).unwrap();
            row["content_hash"] = read.content_hash.into();
            row
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_bundle_of_tricky_values_verifies_and_a_changed_cell_is_named() {
    let config = common::test_config();
    let server = common::start(config.clone()).await;
    let sent = tricky_events(attest_server::ingest::now_ms());
    for event in &sent {
        let (status, answer) = server.post_json(event.to_string()).await;
        assert_eq!(status, 202, "{event}: {answer}");
    }
    common::produce_events(&config, 40, "csv-load").await;
    let n = sent.len() as u64 + 40;
    server.wait_for_rows(n, Duration::from_secs(60)).await;
    common::wait_sealed(&server, n).await;

    // The bundle's events.csv is the plain CSV export, byte for byte.
    let bundle = export_bundle(&server, "csv").await;
    let plain = export_plain(&server, "csv").await;
    let events = entry(&bundle, "events.csv");
    assert_eq!(
        String::from_utf8_lossy(&events),
        String::from_utf8_lossy(&plain)
    );
    let manifest: Value = serde_json::from_slice(&entry(&bundle, "manifest.json")).unwrap();
    assert_eq!(manifest["events_format"], "csv");
    assert_eq!(manifest["rows"], n);
    assert!(read_entries(&bundle)
        .unwrap()
        .iter()
        .all(|(name, _)| name != "events.ndjson"));

    // The CSV read back by the documented rule is what NDJSON says exactly:
    // every text, number and metadata entry.
    let from_csv = read_rows(&plain, ExportFormat::Csv);
    let from_ndjson = read_rows(&export_plain(&server, "ndjson").await, ExportFormat::Ndjson);
    assert_eq!((from_csv.len() as u64, from_ndjson.len() as u64), (n, n));
    for (csv, ndjson) in from_csv.iter().zip(&from_ndjson) {
        assert_eq!(
            csv, ndjson,
            "event {} read back from CSV",
            ndjson["event_id"]
        );
    }
    let text = String::from_utf8(plain.clone()).unwrap();
    for (cell, stored) in [
        ("\"''=quoted\"", "'=quoted"),
        ("\"''already quoted\"", "'already quoted"),
        ("\"'-csv-dash\"", "-csv-dash"),
        (
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"",
            "=HYPERLINK(\"http://evil.example\",\"x\")",
        ),
        ("\"'\tstarts with a tab\"", "\tstarts with a tab"),
    ] {
        assert!(text.contains(cell), "{cell} in {text}");
        assert!(
            from_csv
                .iter()
                .any(|row| row.as_object().unwrap().values().any(|v| v == stored)),
            "{stored:?} read back"
        );
    }
    let quotes = from_csv
        .iter()
        .find(|r| r["event_id"] == "csv-quotes")
        .unwrap();
    let sent_quotes = &sent[2];
    assert_eq!(
        quotes["actor_user_agent"],
        sent_quotes["actor"]["user_agent"]
    );
    let metadata: serde_json::Map<String, Value> = quotes["metadata.key"]
        .as_array()
        .unwrap()
        .iter()
        .zip(quotes["metadata.value"].as_array().unwrap())
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect();
    assert_eq!(Value::Object(metadata), sent_quotes["metadata"]);

    // Both verifiers read it the same way, and prove every row.
    let (verdict, report, code) = both(&bundle, None);
    assert!(verdict.ok, "{report}");
    assert_eq!(verdict.rows, n);
    assert_eq!(report["proven_rows"], n, "{report}");
    assert_eq!(code, 0);

    // One cell changed: the actor of -csv-dash loses the quote the export
    // added, so it reads `=quoted`, not the `'=quoted` that was sealed.
    let edited = rebuild(&bundle, |name, data| {
        (name == "events.csv").then(|| {
            let text = String::from_utf8(data.to_vec()).unwrap();
            assert_eq!(text.matches("\"''=quoted\"").count(), 1);
            text.replacen("\"''=quoted\"", "\"'=quoted\"", 1)
                .into_bytes()
        })
    });
    first_is(&both(&edited, None).0, "event_altered", "-csv-dash");

    // And an actor id changed outright, in a row with line feeds and
    // quotes in its cells.
    let edited = rebuild(&bundle, |name, data| {
        (name == "events.csv").then(|| {
            String::from_utf8(data.to_vec())
                .unwrap()
                .replacen("\"alice, \"\"the\"\" admin\"", "\"mallory\"", 1)
                .into_bytes()
        })
    });
    let (verdict, report, code) = both(&edited, None);
    first_is(&verdict, "event_altered", "csv-quotes");
    assert_eq!(code, 1, "{report}");
    server.stop().await;
}
