//! `attest verify FILE`: checks an export bundle offline, in the order
//! docs/INTEGRITY.md section 12 gives, so that the first problem named is
//! the same whichever verifier runs. Nothing here reads the network or
//! ClickHouse: the bundle (and, if given, independently fetched keys) is
//! all it trusts.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::digest::{Digest, DigestProblem};
use super::encoding::{hex, unhex};
use super::export_rows::{records, ExportedRow, RowReader};
use super::export_zip::read_entries;
use super::keys::KeyRing;
use super::leaf::{leaf_of, Sealed};
use super::merkle::{root_from_proof, Hash};
use super::proof::*;
use super::redaction::{judge_row, RedactionRecord, RowHashes, RowSeal};
use crate::store::ExportFormat;
use sha2::{Digest as _, Sha256};

/// One thing wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    #[error("{file}: {why}")]
    Bundle { file: String, why: String },
    #[error("manifest.sig: {why}")]
    ManifestSignature { key_id: String, why: String },
    #[error("digest {digest}: {why}")]
    BadDigest { digest: String, why: String },
    #[error("digest {missing} is missing from the bundle (named by {named_by})")]
    MissingDigest { missing: String, named_by: String },
    #[error("digest {digest} does not start where its previous digest {prev} ends")]
    NotContiguous { digest: String, prev: String },
    #[error("event {event_id} (tenant {tenant_id}, row {row}) was changed: the row's leaf is {computed}, the leaf sealed in digest {digest} is {sealed}")]
    EventAltered {
        event_id: String,
        tenant_id: String,
        row: u64,
        digest: String,
        computed: String,
        sealed: String,
    },
    #[error("event {event_id} (row {row}): {why}")]
    BadProof {
        event_id: String,
        row: u64,
        why: String,
    },
    #[error("event {event_id} (row {row}) differs from what was sealed and its redaction record does not verify: {why}")]
    BadRedaction {
        event_id: String,
        row: u64,
        why: String,
    },
    #[error(
        "event {event_id} (row {row}) has no proof and the manifest does not list it as unsealed"
    )]
    Unproven { event_id: String, row: u64 },
    #[error("event {event_id} (row {row}) is stored under content hash {stored}, its columns give {computed}: a copy under a forged identity, which Search counts apart from the original")]
    IdentityForged {
        event_id: String,
        row: u64,
        stored: String,
        computed: String,
    },
    #[error("{file}: SHA-256 is {computed}, the manifest says {listed}")]
    FileHash {
        file: String,
        listed: String,
        computed: String,
    },
}

impl Problem {
    /// (kind, subject): what the independent verifier prints too.
    pub fn kind(&self) -> (&'static str, &str) {
        match self {
            Problem::Bundle { file, .. } => ("bundle", file),
            Problem::ManifestSignature { key_id, .. } => ("manifest_signature", key_id),
            Problem::BadDigest { digest, .. } => ("bad_digest", digest),
            Problem::MissingDigest { missing, .. } => ("missing_digest", missing),
            Problem::NotContiguous { digest, .. } => ("not_contiguous", digest),
            Problem::EventAltered { event_id, .. } => ("event_altered", event_id),
            Problem::BadProof { event_id, .. } => ("bad_proof", event_id),
            Problem::BadRedaction { event_id, .. } => ("bad_redaction", event_id),
            Problem::Unproven { event_id, .. } => ("unproven_row", event_id),
            Problem::IdentityForged { event_id, .. } => ("identity_forged", event_id),
            Problem::FileHash { file, .. } => ("file_hash", file),
        }
    }
}

/// What `attest verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub rows: u64,
    pub proven_rows: u64,
    /// Rows the manifest lists as not sealed yet: not proven, not failed.
    pub unsealed_rows: u64,
    pub digests: u64,
    /// `"given"` (`--keys`) or `"bundle"` (the bundle's own keys.json).
    pub keys: String,
    /// Rows that verify as redacted (section 14): proven, with the
    /// request that erased some of their fields.
    pub redacted: Vec<RedactedRow>,
    /// In check order: the first is the first failure.
    pub problems: Vec<Problem>,
}

/// A row proven through its redaction record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactedRow {
    pub row: u64,
    pub tenant_id: String,
    pub event_id: String,
    pub request_id: String,
    pub fields: Vec<String>,
}

/// What the verifier keeps of each row: its identity and recomputed leaf.
struct RowSeen {
    tenant_id: String,
    event_id: String,
    partition: i32,
    offset: i64,
    content_hash: String,
    /// The row's `content_hash` cell: its identity in the store.
    stored_hash: String,
    received_at: i64,
    schema_id: u32,
    leaf: Hash,
    proven: bool,
}

fn bundle(file: &str, why: impl std::fmt::Display) -> Problem {
    Problem::Bundle {
        file: file.to_owned(),
        why: why.to_string(),
    }
}

/// A problem that ends the checks.
fn fatal(file: &str, why: impl std::fmt::Display) -> Box<Problem> {
    Box::new(bundle(file, why))
}

/// Verifies a bundle's bytes. `trusted`: keys obtained independently
/// (`--keys`); without them the bundle's own keys.json is used, which
/// proves integrity against the bundle's author only.
pub fn verify(archive: &[u8], trusted: Option<&KeyRing>) -> Report {
    let mut report = Report {
        keys: if trusted.is_some() { "given" } else { "bundle" }.into(),
        ..Report::default()
    };
    if let Err(problem) = run(archive, trusted, &mut report) {
        report.problems.push(*problem);
    }
    report
}

/// Runs the checks; an `Err` is a problem after which nothing further can
/// be checked (a file missing or unreadable).
fn run(archive: &[u8], trusted: Option<&KeyRing>, report: &mut Report) -> Result<(), Box<Problem>> {
    let entries = read_entries(archive).map_err(|e| fatal("the archive", e))?;
    let mut files: HashMap<&str, &[u8]> = HashMap::new();
    for (name, data) in &entries {
        if files.insert(name.as_str(), data).is_some() {
            return Err(fatal(name, "appears twice in the archive"));
        }
    }
    let file = |name: &str| -> Result<&[u8], Box<Problem>> {
        files
            .get(name)
            .copied()
            .ok_or_else(|| fatal(name, "missing from the bundle"))
    };

    // 1. Keys and the manifest's signature.
    let bundled = KeyRing::parse(std::path::Path::new(KEYS_FILE), file(KEYS_FILE)?)
        .map_err(|e| fatal(KEYS_FILE, e))?;
    let keys = trusted.unwrap_or(&bundled);
    let manifest_bytes = file(MANIFEST_FILE)?;
    let manifest: Manifest =
        serde_json::from_slice(manifest_bytes).map_err(|e| fatal(MANIFEST_FILE, e))?;
    if manifest.format != BUNDLE_FORMAT {
        return Err(fatal(
            MANIFEST_FILE,
            format!("format {:?}, expected {BUNDLE_FORMAT:?}", manifest.format),
        ));
    }
    let sig: ManifestSignature =
        serde_json::from_slice(file(SIGNATURE_FILE)?).map_err(|e| fatal(SIGNATURE_FILE, e))?;
    if let Err(why) = check_manifest(manifest_bytes, manifest.created_at, &sig, keys) {
        report.problems.push(Problem::ManifestSignature {
            key_id: sig.key_id.clone(),
            why: why.to_string(),
        });
    }

    // 2. Digests: each on its own, then the manifest's list, then chains.
    let mut digests: HashMap<String, Digest> = HashMap::new();
    let mut order = Vec::new();
    for (n, line) in lines(file(DIGESTS_FILE)?) {
        let d: Digest = serde_json::from_slice(line)
            .map_err(|e| fatal(DIGESTS_FILE, format!("line {}: {e}", n + 1)))?;
        if let Err(why) = d.check(keys) {
            report.problems.push(Problem::BadDigest {
                digest: d.digest_hash.clone(),
                why: describe(&why),
            });
        }
        order.push(d.digest_hash.clone());
        digests.insert(d.digest_hash.clone(), d);
    }
    report.digests = digests.len() as u64;
    for listed in &manifest.digests {
        if !digests.contains_key(listed) {
            report.problems.push(Problem::MissingDigest {
                missing: listed.clone(),
                named_by: "the manifest".into(),
            });
        }
    }
    check_chains(&order, &digests, report);

    // 3. Rows: each leaf recomputed, each proof up to its digest's root.
    // The events file is read as the bundle's maker read it (CSV's header
    // is no row, its text cells lose the `'` added against formulas).
    let events_name = events_file(manifest.events_format);
    let mut rows = Vec::new();
    let mut reader = RowReader::new(manifest.events_format);
    for record in records(file(events_name)?, manifest.events_format) {
        let n = rows.len();
        let (row, stored_hash) = match reader.read(record) {
            Ok(Some(ExportedRow { row, content_hash })) => (row, content_hash),
            Ok(None) => continue,
            Err(e) => return Err(fatal(events_name, format!("row {n}: {e}"))),
        };
        let sealed = Sealed::from(&row);
        let content_hash = sealed.content_hash();
        rows.push(RowSeen {
            leaf: leaf_of(
                &content_hash,
                row.received_at,
                row.schema_id,
                row.kafka_partition,
                row.kafka_offset,
            ),
            content_hash,
            stored_hash,
            received_at: row.received_at,
            schema_id: row.schema_id,
            tenant_id: row.tenant_id,
            event_id: row.event_id,
            partition: row.kafka_partition,
            offset: row.kafka_offset,
            proven: false,
        });
    }
    report.rows = rows.len() as u64;
    // Redaction records, when the manifest lists the file (bundles made
    // before redaction existed do not).
    let mut records: Vec<RedactionRecord> = Vec::new();
    if manifest.files.iter().any(|f| f.name == REDACTIONS_FILE) {
        for (n, line) in lines(file(REDACTIONS_FILE)?) {
            records.push(
                serde_json::from_slice(line)
                    .map_err(|e| fatal(REDACTIONS_FILE, format!("line {}: {e}", n + 1)))?,
            );
        }
    }
    let seen = Seen {
        digests: &digests,
        records: &records,
        keys,
    };
    for (n, line) in lines(file(PROOFS_FILE)?) {
        let proof: ProofLine = serde_json::from_slice(line)
            .map_err(|e| fatal(PROOFS_FILE, format!("line {}: {e}", n + 1)))?;
        match check_proof(&proof, &mut rows, &seen) {
            Ok(Some(redacted)) => report.redacted.push(redacted),
            Ok(None) => {}
            Err(problem) => report.problems.push(*problem),
        }
    }
    let unsealed: HashSet<u64> = manifest.unsealed.iter().map(|u| u.row).collect();
    for (i, row) in rows.iter().enumerate() {
        let i = i as u64;
        if row.proven {
            report.proven_rows += 1;
        } else if unsealed.contains(&i) {
            report.unsealed_rows += 1;
        } else {
            report.problems.push(Problem::Unproven {
                event_id: row.event_id.clone(),
                row: i,
            });
            continue;
        }
        // The identity Search counted the row by: a copy inserted with its
        // content intact and another hash proves like the original (the
        // leaf is computed from the content), yet is a second event.
        if row.stored_hash != row.content_hash {
            report.problems.push(Problem::IdentityForged {
                event_id: row.event_id.clone(),
                row: i,
                stored: row.stored_hash.clone(),
                computed: row.content_hash.clone(),
            });
        }
    }
    if manifest.rows != report.rows {
        report.problems.push(bundle(
            events_name,
            format!(
                "holds {} rows, the manifest says {}",
                report.rows, manifest.rows
            ),
        ));
    }

    // 4. Every file against the manifest's SHA-256.
    for entry in &manifest.files {
        let computed = hex(&Sha256::digest(file(&entry.name)?));
        if computed != entry.sha256 {
            report.problems.push(Problem::FileHash {
                file: entry.name.clone(),
                listed: entry.sha256.clone(),
                computed,
            });
        }
    }
    for name in [events_name, PROOFS_FILE, DIGESTS_FILE, KEYS_FILE] {
        if !manifest.files.iter().any(|f| f.name == name) {
            report
                .problems
                .push(bundle(MANIFEST_FILE, format!("does not list {name}")));
        }
    }
    Ok(())
}

fn describe(problem: &DigestProblem) -> String {
    problem.to_string()
}

/// Non-empty lines with their number from 0.
fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    records(data, ExportFormat::Ndjson).enumerate()
}

/// Within each chain of the bundle, every digest but the earliest names a
/// previous digest that is in the bundle and ends just before it starts.
fn check_chains(order: &[String], digests: &HashMap<String, Digest>, report: &mut Report) {
    let mut earliest: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for d in digests.values() {
        let e = earliest
            .entry((d.topic.as_str(), d.partition))
            .or_insert(d.first_offset);
        *e = (*e).min(d.first_offset);
    }
    for hash in order {
        let Some(d) = digests.get(hash) else { continue };
        if earliest.get(&(d.topic.as_str(), d.partition)) == Some(&d.first_offset) {
            continue;
        }
        match digests.get(&d.prev_hash) {
            None => report.problems.push(Problem::MissingDigest {
                missing: d.prev_hash.clone(),
                named_by: format!("digest {}", d.digest_hash),
            }),
            Some(prev) if prev.last_offset.checked_add(1) != Some(d.first_offset) => {
                report.problems.push(Problem::NotContiguous {
                    digest: d.digest_hash.clone(),
                    prev: prev.digest_hash.clone(),
                })
            }
            Some(_) => {}
        }
    }
}

/// What the proofs are checked against.
struct Seen<'a> {
    digests: &'a HashMap<String, Digest>,
    records: &'a [RedactionRecord],
    keys: &'a KeyRing,
}

/// `Ok(Some(_))`: the row is proven as redacted.
fn check_proof(
    proof: &ProofLine,
    rows: &mut [RowSeen],
    seen: &Seen<'_>,
) -> Result<Option<RedactedRow>, Box<Problem>> {
    let digests = seen.digests;
    let bad = |why: String| {
        Err(Box::new(Problem::BadProof {
            event_id: proof.event_id.clone(),
            row: proof.row,
            why,
        }))
    };
    let Some(row) = usize::try_from(proof.row)
        .ok()
        .and_then(|i| rows.get_mut(i))
    else {
        return bad("the proof names a row the events file does not have".into());
    };
    if (
        row.tenant_id.as_str(),
        row.event_id.as_str(),
        row.partition,
        row.offset,
    ) != (
        proof.tenant_id.as_str(),
        proof.event_id.as_str(),
        proof.kafka_partition,
        proof.kafka_offset,
    ) {
        return bad(format!(
            "the proof is for event {} of tenant {} at partition {} offset {}, the row differs",
            proof.event_id, proof.tenant_id, proof.kafka_partition, proof.kafka_offset
        ));
    }
    if row.proven {
        return bad("a second proof for the same row".into());
    }
    // The leaf the proof starts from: the row's own, or, for a row
    // redacted under a valid record, the one its original content hash
    // gives (section 14).
    let mut leaf = row.leaf;
    let mut redacted = None;
    let computed = hex(&row.leaf);
    if computed != proof.leaf {
        let altered = || Problem::EventAltered {
            event_id: row.event_id.clone(),
            tenant_id: row.tenant_id.clone(),
            row: proof.row,
            digest: proof.digest_hash.clone(),
            computed: computed.clone(),
            sealed: proof.leaf.clone(),
        };
        let Some(sealed) = unhex::<32>(&proof.leaf) else {
            return Err(Box::new(altered()));
        };
        let hashes = RowHashes {
            tenant_id: &row.tenant_id,
            event_id: &row.event_id,
            content_hash: &row.content_hash,
            received_at: row.received_at,
            schema_id: row.schema_id,
            kafka_partition: row.partition,
            kafka_offset: row.offset,
        };
        match judge_row(&hashes, &sealed, seen.records, seen.keys) {
            RowSeal::Redacted(r) => {
                leaf = sealed;
                redacted = Some(RedactedRow {
                    row: proof.row,
                    tenant_id: row.tenant_id.clone(),
                    event_id: row.event_id.clone(),
                    request_id: r.request_id.clone(),
                    fields: r.fields.clone(),
                });
            }
            RowSeal::BadRecord(_, why) => {
                return Err(Box::new(Problem::BadRedaction {
                    event_id: row.event_id.clone(),
                    row: proof.row,
                    why: why.to_string(),
                }))
            }
            RowSeal::Intact | RowSeal::Altered => return Err(Box::new(altered())),
        }
    }
    let Some(d) = digests.get(&proof.digest_hash) else {
        return Err(Box::new(Problem::MissingDigest {
            missing: proof.digest_hash.clone(),
            named_by: format!("event {}", proof.event_id),
        }));
    };
    if d.topic != proof.topic
        || d.partition != proof.kafka_partition
        || proof.kafka_offset < d.first_offset
        || proof.kafka_offset > d.last_offset
    {
        return bad(format!(
            "digest {} does not cover {}[{}] offset {}",
            d.digest_hash, proof.topic, proof.kafka_partition, proof.kafka_offset
        ));
    }
    if proof.tree_size != d.row_count {
        return bad(format!(
            "tree size {} but digest {} seals {} rows",
            proof.tree_size, d.digest_hash, d.row_count
        ));
    }
    let path: Option<Vec<Hash>> = proof.path.iter().map(|h| unhex::<32>(h)).collect();
    let recomputed = match (
        path,
        usize::try_from(proof.leaf_index),
        usize::try_from(proof.tree_size),
    ) {
        (Some(path), Ok(index), Ok(size)) => root_from_proof(&leaf, index, size, &path),
        _ => None,
    };
    if recomputed.map(|r| hex(&r)).as_deref() != Some(d.root.as_str()) {
        return bad(format!(
            "its inclusion proof does not lead to the signed root of digest {}",
            d.digest_hash
        ));
    }
    row.proven = true;
    Ok(redacted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::digest::{Unsigned, GENESIS};
    use crate::integrity::export_rows::tests::{csv_like_clickhouse, tricky_row};
    use crate::integrity::export_zip::ZipWriter;
    use crate::integrity::keys::tests::ring_with_one_key;
    use crate::integrity::keys::SigningKey;
    use crate::integrity::proof::Tree;
    use crate::store::EventRow;
    use serde_json::Value;

    const TOPIC: &str = "p.authentication";

    /// An NDJSON line of the export, its `content_hash` cell the hash of
    /// its columns (as the store holds it).
    fn row(i: i64) -> String {
        let mut line = serde_json::json!({
            "event_id": format!("e{i}"), "tenant_id": "acme", "occurred_at": 5_000 + i,
            "occurred_at_utc": "1970-01-01 00:00:05.000", "received_at": 6_000,
            "category": "authentication", "action": "user.login", "outcome": "success",
            "actor_id": "alice", "actor_type": "user", "actor_ip": "", "actor_user_agent": "",
            "resource_type": "", "resource_id": "", "source_service": "sso", "request_id": "",
            "metadata_key": ["k"], "metadata_value": ["v"], "schema_id": 1,
            "kafka_partition": 0, "kafka_offset": 10 + i, "content_hash": "",
        });
        let stored: EventRow = serde_json::from_value(line.clone()).unwrap();
        line["content_hash"] = Sealed::from(&stored).content_hash().into();
        line.to_string()
    }

    /// 7 rows as an events file: NDJSON of [`row`], or the CSV export of
    /// [`tricky_row`]s.
    fn events(format: ExportFormat) -> (Vec<EventRow>, String) {
        match format {
            ExportFormat::Ndjson => {
                let lines: Vec<String> = (0..7).map(row).collect();
                let rows = lines
                    .iter()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                (rows, lines.iter().map(|l| format!("{l}\n")).collect())
            }
            ExportFormat::Csv => {
                let rows: Vec<EventRow> = (0..7).map(tricky_row).collect();
                let text = csv_like_clickhouse(&rows);
                (rows, text)
            }
        }
    }

    /// A bundle of 7 rows under two chained digests, built by hand.
    fn bundle(
        format: ExportFormat,
        key: &SigningKey,
        ring: &KeyRing,
        edit: impl Fn(&str, String) -> String,
    ) -> Vec<u8> {
        bundle_with(format, key, ring, edit, None)
    }

    /// A record changed before it is written (a forgery, or one about
    /// another row).
    type Tweak<'a> = &'a dyn Fn(&mut RedactionRecord);

    /// [`bundle`], with NDJSON row `redact.0`'s `actor_ip` redacted after
    /// sealing and its record (changed by `redact.1`) in redactions.ndjson.
    fn bundle_with(
        format: ExportFormat,
        key: &SigningKey,
        ring: &KeyRing,
        edit: impl Fn(&str, String) -> String,
        redact: Option<(usize, Tweak<'_>)>,
    ) -> Vec<u8> {
        let (rows, mut events_text) = events(format);
        let leaves: Vec<Hash> = rows.iter().map(|r| Sealed::from(r).leaf()).collect();
        let mut digests = Vec::new();
        let mut proofs = String::new();
        let mut prev = GENESIS.to_owned();
        let first_offset = rows[0].kafka_offset;
        let partition = rows[0].kafka_partition;
        for (start, end) in [(0usize, 3usize), (3, 7)] {
            let tree = Tree::new(leaves[start..end].to_vec());
            let d = Unsigned {
                topic: TOPIC,
                partition,
                first_offset: first_offset + start as i64,
                last_offset: first_offset + end as i64 - 1,
                row_count: (end - start) as u64,
                root: tree.root().unwrap(),
                prev_hash: &prev,
                sealed_at: 1_800_000_000_000,
            }
            .sign(key);
            for (i, leaf) in leaves.iter().enumerate().take(end).skip(start) {
                let line = ProofLine {
                    row: i as u64,
                    tenant_id: rows[i].tenant_id.clone(),
                    event_id: rows[i].event_id.clone(),
                    topic: TOPIC.into(),
                    kafka_partition: partition,
                    kafka_offset: rows[i].kafka_offset,
                    digest_hash: d.digest_hash.clone(),
                    leaf: hex(leaf),
                    leaf_index: (i - start) as u64,
                    tree_size: (end - start) as u64,
                    path: tree
                        .path(i - start)
                        .unwrap()
                        .iter()
                        .map(|h| hex(h))
                        .collect(),
                };
                proofs.push_str(&serde_json::to_string(&line).unwrap());
                proofs.push('\n');
            }
            prev = d.digest_hash.clone();
            digests.push(d);
        }
        let mut redactions = None;
        if let Some((i, tweak)) = redact {
            let mut redacted = rows[i].clone();
            redacted.actor_ip = "[redacted]".into();
            // The store holds a redacted row under its redacted hash.
            let mut lines: Vec<String> = events_text.lines().map(str::to_owned).collect();
            lines[i] = lines[i]
                .replacen("\"actor_ip\":\"\"", "\"actor_ip\":\"[redacted]\"", 1)
                .replacen(
                    &Sealed::from(&rows[i]).content_hash(),
                    &Sealed::from(&redacted).content_hash(),
                    1,
                );
            events_text = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut record = crate::integrity::redaction::Unsigned {
                request_id: "req-1",
                tenant_id: &rows[i].tenant_id,
                event_id: &rows[i].event_id,
                kafka_partition: rows[i].kafka_partition,
                kafka_offset: rows[i].kafka_offset,
                original_hash: &Sealed::from(&rows[i]).content_hash(),
                redacted_hash: &Sealed::from(&redacted).content_hash(),
                fields: &["actor.ip".into()],
                requested_by: "alice",
                approved_by: "bob",
                reason: "erasure",
                executed_at: 1_800_000_000_200,
            }
            .sign(key);
            tweak(&mut record);
            redactions = Some(format!("{}\n", serde_json::to_string(&record).unwrap()));
        }
        let mut files = vec![
            (events_file(format), events_text),
            (PROOFS_FILE, proofs),
            (
                DIGESTS_FILE,
                digests
                    .iter()
                    .map(|d| format!("{}\n", serde_json::to_string(d).unwrap()))
                    .collect(),
            ),
            (KEYS_FILE, serde_json::to_string(ring).unwrap()),
        ];
        if let Some(text) = redactions {
            files.push((REDACTIONS_FILE, text));
        }
        let manifest = Manifest {
            format: BUNDLE_FORMAT.into(),
            events_format: format,
            created_at: 1_800_000_000_500,
            viewer: "auditor".into(),
            query: ExportQuery {
                q: String::new(),
                search: String::new(),
                tenants: vec![],
            },
            rows: 7,
            sealed_rows: 7,
            unsealed: vec![],
            files: files
                .iter()
                .map(|(name, text)| FileEntry {
                    name: (*name).into(),
                    bytes: text.len() as u64,
                    sha256: hex(&Sha256::digest(text.as_bytes())),
                })
                .collect(),
            digests: digests.iter().map(|d| d.digest_hash.clone()).collect(),
        };
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let sig = serde_json::to_string(&sign_manifest(&manifest, key)).unwrap();
        let mut zip = ZipWriter::new();
        for (name, text) in files {
            zip.start(name);
            zip.write(edit(name, text).as_bytes());
            zip.finish().unwrap();
        }
        zip.start(MANIFEST_FILE);
        zip.write(&manifest);
        zip.finish().unwrap();
        zip.start(SIGNATURE_FILE);
        zip.write(sig.as_bytes());
        zip.finish().unwrap();
        zip.end().unwrap();
        zip.take()
    }

    fn first(report: &Report) -> Option<(&'static str, String)> {
        report
            .problems
            .first()
            .map(|p| (p.kind().0, p.kind().1.to_owned()))
    }

    /// `edit` applied to the events file only.
    fn events_edit(
        format: ExportFormat,
        change: impl Fn(String) -> String,
    ) -> impl Fn(&str, String) -> String {
        move |name, text| {
            if name == events_file(format) {
                change(text)
            } else {
                text
            }
        }
    }

    #[test]
    fn a_whole_bundle_verifies_and_each_change_is_named_first() {
        let ndjson = ExportFormat::Ndjson;
        let (ring, key, _dir) = ring_with_one_key();
        let clean = verify(&bundle(ndjson, &key, &ring, |_, t| t), Some(&ring));
        assert!(clean.problems.is_empty(), "{:?}", clean.problems);
        assert_eq!((clean.rows, clean.proven_rows, clean.digests), (7, 7, 2));

        let altered = bundle(
            ndjson,
            &key,
            &ring,
            events_edit(ndjson, |t| {
                t.replacen("\"actor_id\":\"alice\"", "\"actor_id\":\"mallory\"", 1)
            }),
        );
        assert_eq!(
            first(&verify(&altered, Some(&ring))),
            Some(("event_altered", "e0".into()))
        );

        // A copy stored under another content hash: its content, and so
        // its proof, intact; its identity named.
        let forged = bundle(
            ndjson,
            &key,
            &ring,
            events_edit(ndjson, |t| {
                let mut lines: Vec<Value> = t
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                lines[3]["content_hash"] = "ab".repeat(32).into();
                lines.iter().map(|l| format!("{l}\n")).collect()
            }),
        );
        let report = verify(&forged, Some(&ring));
        assert_eq!(first(&report), Some(("identity_forged", "e3".into())));
        assert_eq!(report.proven_rows, 7);
        assert!(
            report.problems[0].to_string().contains(&"ab".repeat(32)),
            "{}",
            report.problems[0]
        );

        let not_covered = bundle(
            ndjson,
            &key,
            &ring,
            events_edit(ndjson, |t| t.replacen("1970", "1971", 1)),
        );
        assert_eq!(
            first(&verify(&not_covered, Some(&ring))),
            Some(("file_hash", EVENTS_NDJSON.into()))
        );

        let dropped = bundle(ndjson, &key, &ring, |name, t| {
            if name == DIGESTS_FILE {
                t.lines().take(1).map(|l| format!("{l}\n")).collect()
            } else {
                t
            }
        });
        let report = verify(&dropped, Some(&ring));
        assert_eq!(first(&report).map(|f| f.0), Some("missing_digest"));

        let (other, _, _other_dir) = ring_with_one_key();
        let wrong = verify(&bundle(ndjson, &key, &ring, |_, t| t), Some(&other));
        assert_eq!(
            first(&wrong),
            Some(("manifest_signature", key.id().to_owned()))
        );
        assert!(wrong.problems.iter().any(|p| p.kind().0 == "bad_digest"));
    }

    #[test]
    fn a_redacted_row_verifies_as_redacted_and_a_bad_record_is_named() {
        let ndjson = ExportFormat::Ndjson;
        let (ring, key, _dir) = ring_with_one_key();
        let with = |tweak: Tweak<'_>| {
            verify(
                &bundle_with(ndjson, &key, &ring, |_, t| t, Some((2, tweak))),
                Some(&ring),
            )
        };
        let clean = with(&|_| {});
        assert!(clean.problems.is_empty(), "{:?}", clean.problems);
        assert_eq!(clean.proven_rows, 7);
        assert_eq!(
            clean.redacted,
            vec![RedactedRow {
                row: 2,
                tenant_id: "acme".into(),
                event_id: "e2".into(),
                request_id: "req-1".into(),
                fields: vec!["actor.ip".into()],
            }]
        );
        let forged = with(&|r| r.approved_by = "alice".into());
        assert_eq!(first(&forged), Some(("bad_redaction", "e2".into())));
        // A record about another content hash explains nothing.
        let unrelated = with(&|r| r.redacted_hash = GENESIS.into());
        assert_eq!(first(&unrelated), Some(("event_altered", "e2".into())));
    }

    #[test]
    fn a_csv_bundle_verifies_and_a_changed_cell_names_its_event() {
        let csv = ExportFormat::Csv;
        let (ring, key, _dir) = ring_with_one_key();
        let clean = verify(&bundle(csv, &key, &ring, |_, t| t), Some(&ring));
        assert!(clean.problems.is_empty(), "{:?}", clean.problems);
        assert_eq!((clean.rows, clean.proven_rows, clean.digests), (7, 7, 2));

        // The fourth row's actor (each row has one such cell).
        let altered = bundle(
            csv,
            &key,
            &ring,
            events_edit(csv, |t| {
                let (at, _) = t.match_indices("'=HYPERLINK").nth(3).unwrap();
                format!("{}'=HYPERLINQ{}", &t[..at], &t[at + 11..])
            }),
        );
        assert_eq!(
            first(&verify(&altered, Some(&ring))),
            Some(("event_altered", "-e3".into()))
        );

        // The third row's content hash cell replaced: a forged identity.
        let forged = bundle(
            csv,
            &key,
            &ring,
            events_edit(csv, |t| {
                let own = Sealed::from(&tricky_row(2)).content_hash();
                t.replacen(&own, &"ab".repeat(32), 1)
            }),
        );
        assert_eq!(
            first(&verify(&forged, Some(&ring))),
            Some(("identity_forged", "-e2".into()))
        );

        // Taking off the `'` the export added changes the value read back.
        let unquoted = bundle(
            csv,
            &key,
            &ring,
            events_edit(csv, |t| t.replacen("\"''=already", "\"'=already", 1)),
        );
        assert_eq!(
            first(&verify(&unquoted, Some(&ring))),
            Some(("event_altered", "-e0".into()))
        );

        // A cell that no longer reads is named with its row and file.
        let unreadable = bundle(
            csv,
            &key,
            &ring,
            events_edit(csv, |t| t.replacen("['k\\'1'", "['k\\q1'", 1)),
        );
        let report = verify(&unreadable, Some(&ring));
        assert_eq!(first(&report), Some(("bundle", EVENTS_CSV.into())));
        assert!(
            report.problems[0]
                .to_string()
                .contains("row 0: column metadata_key"),
            "{}",
            report.problems[0]
        );

        // The manifest says CSV: an NDJSON file of that name is no CSV.
        let swapped = bundle(csv, &key, &ring, |name, t| {
            if name == EVENTS_CSV {
                events(ExportFormat::Ndjson).1
            } else {
                t
            }
        });
        assert_eq!(
            first(&verify(&swapped, Some(&ring))).map(|f| f.0),
            Some("bundle")
        );
    }
}
