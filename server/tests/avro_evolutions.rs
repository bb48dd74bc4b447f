//! The evolution table (server/tests/avro_evolutions.json): for each
//! evolution of Attest's contract, the answer the Avro specification gives,
//! and the answer Attest's checker, Apache Avro's Java checker and its
//! Python checker give. Attest must give the specification's answer on every
//! row; Java and Python must give it too, or the answer the row records for
//! them (with why), so a changed Apache release shows up here.
//!
//! Java's checker runs from the jars scripts/install.sh (step "avro") puts
//! in $ATTEST_AVRO_JAVA_LIBS (default ~/.cache/attest/avro-java-1.12.1/libs);
//! Python's is the `avro` package. Neither missing is a skip: the test fails
//! and says what to install.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use attest_server::registry::{Registry, SchemaVersion};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Row {
    name: String,
    writer: Value,
    reader: Value,
    expected: String,
    /// What each Apache checker answers where it differs from `expected`.
    java: Option<String>,
    python: Option<String>,
}

/// `path` (RFC 6901) split into parent pointer and last token.
fn split(path: &str) -> (&str, String) {
    let (parent, last) = path.rsplit_once('/').expect("a pointer starts with /");
    (parent, last.replace("~1", "/").replace("~0", "~"))
}

/// Applies RFC 6902 operations (add, remove, replace, copy).
fn patch(mut doc: Value, ops: &Value) -> Value {
    for op in ops.as_array().expect("a patch is an array") {
        let path = op["path"].as_str().expect("op has a path");
        let value = match op["op"].as_str() {
            Some("copy") => {
                let from = op["from"].as_str().expect("copy has from");
                Some(
                    doc.pointer(from)
                        .unwrap_or_else(|| panic!("no {from}"))
                        .clone(),
                )
            }
            Some("remove") => None,
            Some("add" | "replace") => Some(op["value"].clone()),
            other => panic!("unsupported op {other:?}"),
        };
        let (parent, last) = split(path);
        let target = doc
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent} for {path}"));
        match (target, value) {
            (Value::Array(items), Some(value)) if last == "-" => items.push(value),
            (Value::Array(items), value) => {
                let i: usize = last.parse().expect("array index");
                match (op["op"].as_str(), value) {
                    (Some("add"), Some(value)) => items.insert(i, value),
                    (_, Some(value)) => items[i] = value,
                    (_, None) => {
                        items.remove(i);
                    }
                }
            }
            (Value::Object(map), Some(value)) => {
                map.insert(last, value);
            }
            (Value::Object(map), None) => {
                map.remove(&last)
                    .unwrap_or_else(|| panic!("nothing at {path}"));
            }
            (_, _) => panic!("{parent} is not a container"),
        }
    }
    doc
}

fn table() -> Vec<Row> {
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/audit_event.avsc")).expect("contract"),
    )
    .expect("contract is JSON");
    let table: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("server/tests/avro_evolutions.json")).expect("table"),
    )
    .expect("table is JSON");
    let answer = |v: &Value| v.as_str().expect("an answer").to_owned();
    table["evolutions"]
        .as_array()
        .expect("evolutions")
        .iter()
        .map(|row| Row {
            name: answer(&row["name"]),
            writer: patch(base.clone(), &row["writer"]),
            reader: patch(base.clone(), &row["reader"]),
            expected: answer(&row["expected"]),
            java: row.get("java").map(|j| answer(&j["answer"])),
            python: row.get("python").map(|p| answer(&p["answer"])),
        })
        .collect()
}

/// What Attest's registry answers: the one check its endpoints and the
/// contract test use.
fn attest(writer: &Value, reader: &Value) -> String {
    let schema = apache_avro::Schema::parse_str(&writer.to_string()).expect("writers are valid");
    let version = Arc::new(SchemaVersion::new(
        "dev.attest.AuditEvent".into(),
        1,
        1,
        schema,
        writer.to_string(),
    ));
    match Registry::can_read(&version, &reader.to_string()) {
        Ok(Ok(())) => "compatible".into(),
        Ok(Err(_)) => "incompatible".into(),
        Err(_) => "invalid".into(),
    }
}

#[test]
fn the_table_has_forty_distinct_evolutions_and_consistent_notes() {
    let rows = table();
    assert!(rows.len() >= 40, "only {} evolutions", rows.len());
    let mut names = HashSet::new();
    for row in &rows {
        assert!(names.insert(&row.name), "{} is listed twice", row.name);
        assert!(
            ["compatible", "incompatible", "invalid"].contains(&row.expected.as_str()),
            "{}: answer {}",
            row.name,
            row.expected
        );
        // A recorded disagreement is one: it differs from the specification.
        for other in [&row.java, &row.python].into_iter().flatten() {
            assert_ne!(other, &row.expected, "{}: a note that agrees", row.name);
        }
    }
    let kinds: HashSet<&str> = rows.iter().map(|r| r.expected.as_str()).collect();
    assert!(kinds.contains("compatible") && kinds.contains("incompatible"));
}

#[test]
fn attest_gives_the_specifications_answer_on_every_evolution() {
    let wrong: Vec<String> = table()
        .iter()
        .filter_map(|row| {
            let got = attest(&row.writer, &row.reader);
            (got != row.expected).then(|| format!("{}: {got}, expected {}", row.name, row.expected))
        })
        .collect();
    assert!(wrong.is_empty(), "Attest disagrees:\n{}", wrong.join("\n"));
}

/// Runs an Apache checker over every pair; its answer by evolution name.
fn run_checker(command: &mut Command) -> BTreeMap<String, (String, String)> {
    let rows = table();
    let pairs: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::json!({"name": r.name, "writer": r.writer, "reader": r.reader}))
        .collect();
    let file = std::env::temp_dir()
        .join(format!(
            "attest-avro-evolutions-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ))
        .to_string_lossy()
        .replace(['(', ')'], "");
    std::fs::write(&file, serde_json::to_vec(&pairs).expect("pairs")).expect("write pairs");
    let output = command.arg(&file).output();
    let _ = std::fs::remove_file(&file);
    let output = output.unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: BTreeMap<String, (String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("one JSON object a line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("name"), (s("answer"), s("detail")))
        })
        .collect();
    assert_eq!(
        answers.len(),
        rows.len(),
        "{command:?} answered {answers:?}"
    );
    answers
}

/// Every row's answer from `answers` is the one the table expects of that
/// checker: the specification's, or the disagreement it records.
fn agrees(
    checker: &str,
    answers: &BTreeMap<String, (String, String)>,
    own: fn(&Row) -> &Option<String>,
) {
    let wrong: Vec<String> = table()
        .iter()
        .filter_map(|row| {
            let expected = own(row).as_ref().unwrap_or(&row.expected);
            let (got, detail) = &answers[&row.name];
            (got != expected)
                .then(|| format!("{}: {got} ({detail}), expected {expected}", row.name))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{checker} answers otherwise:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn apache_avro_java_gives_the_recorded_answers() {
    let libs = std::env::var("ATTEST_AVRO_JAVA_LIBS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/attest/avro-java-1.12.1/libs",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    assert!(
        Path::new(&libs).join("avro-1.12.1.jar").is_file(),
        "no Apache Avro jars in {libs}: run scripts/install.sh avro"
    );
    let answers = run_checker(
        Command::new("java")
            .arg("-cp")
            .arg(format!("{libs}/*"))
            .arg(root().join("server/tests/avro_checkers/Checker.java")),
    );
    agrees("Apache Avro Java", &answers, |r| &r.java);
}

#[test]
fn apache_avro_python_gives_the_recorded_answers() {
    let answers = run_checker(
        Command::new("python3").arg(root().join("server/tests/avro_checkers/checker.py")),
    );
    agrees("Apache Avro Python", &answers, |r| &r.python);
}
