//! Builds an export bundle (docs/INTEGRITY.md, section 10) while it is
//! downloaded: the events file (NDJSON or CSV) streams through from
//! ClickHouse as in a plain export, read back record by record as a
//! verifier reads it; only a small locator per row is kept (tenant, event
//! id, topic, partition, offset). Then, chain by chain, the digests covering
//! those rows are read, and for each digest its leaves and tree are held
//! just long enough to write the proofs of the rows under it.

use std::collections::BTreeMap;

use axum::body::Bytes;

use super::digest::Digest;
use super::encoding::{hex, unhex};
use super::export_rows::{RecordSplitter, RowReader};
use super::export_zip::{ZipError, ZipWriter};
use super::keys::{KeyRing, SigningKey};
use super::proof::*;
use crate::event::Category;
use crate::store::{ExportFormat, ExportStream, Store};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("reading the events: {0}")]
    Events(#[from] app::store::StoreError),
    #[error("reading digests and leaves: {0}")]
    Seal(#[from] crate::store::StoreError),
    #[error(transparent)]
    Zip(#[from] ZipError),
    #[error("an exported row cannot be read back: {0}")]
    Row(String),
    #[error("the download was interrupted")]
    Gone,
}

/// What the manifest says about the export besides its files.
pub struct BundleMeta {
    /// The events file's format.
    pub format: ExportFormat,
    pub created_at: i64,
    pub viewer: String,
    pub query: ExportQuery,
}

/// What signs the bundle and what it publishes.
pub struct Signer {
    pub keys: KeyRing,
    pub key: SigningKey,
    /// `kafka.topic_prefix`: an event's topic follows from it and the
    /// category ([`crate::topics::for_category`]).
    pub topic_prefix: String,
}

/// Where the bundle's bytes go, as they are made.
pub type Sink = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

struct Located {
    row: u64,
    tenant_id: String,
    event_id: String,
    offset: i64,
    proven: bool,
}

async fn flush(zip: &mut ZipWriter, sink: &Sink) -> Result<(), BundleError> {
    let bytes = zip.take();
    if bytes.is_empty() {
        return Ok(());
    }
    sink.send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| BundleError::Gone)
}

/// Writes the whole bundle into `sink`; `on_events` sees each chunk of the
/// events file (the console's progress line counts its rows).
pub async fn write_bundle(
    mut events: ExportStream,
    store: &Store,
    signer: &Signer,
    meta: BundleMeta,
    sink: &Sink,
    on_events: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(), BundleError> {
    let mut zip = ZipWriter::new();
    let mut files = Vec::new();

    // 1. The events, passed through; each row's locator kept. The rows are
    // read as `attest verify` reads them (less the content hash cell, which
    // only the verifier checks), so a row the bundle could not locate is
    // one a verifier could not read either.
    let events_name = events_file(meta.format);
    zip.start(events_name);
    let mut chains: BTreeMap<(Option<String>, i32), Vec<Located>> = BTreeMap::new();
    let mut rows: u64 = 0;
    let mut splitter = RecordSplitter::new(meta.format);
    let mut reader = RowReader::new(meta.format);
    let mut locate = |record: &[u8]| -> Result<(), BundleError> {
        let Some(row) = reader
            .read_row(record)
            .map_err(|e| BundleError::Row(format!("row {rows}: {e}")))?
        else {
            return Ok(()); // CSV's header
        };
        // The row's chain by the one category-to-topic rule; a category
        // that names no topic has no chain, and its row stays unsealed.
        let topic = Category::from_symbol(&row.category)
            .map(|c| crate::topics::for_category(&signer.topic_prefix, c));
        chains
            .entry((topic, row.kafka_partition))
            .or_default()
            .push(Located {
                row: rows,
                tenant_id: row.tenant_id,
                event_id: row.event_id,
                offset: row.kafka_offset,
                proven: false,
            });
        rows += 1;
        Ok(())
    };
    while let Some(chunk) = events.next_chunk().await? {
        on_events(&chunk);
        zip.write(&chunk);
        // Chunks end on row boundaries, but nothing here relies on it.
        splitter.push(&chunk, &mut locate)?;
        flush(&mut zip, sink).await?;
    }
    splitter.finish(&mut locate)?;
    files.push(entry(events_name, zip.finish()?));

    // 2. Proofs, chain by chain, digest by digest.
    zip.start(PROOFS_FILE);
    let mut digests: Vec<Digest> = Vec::new();
    let mut sealed_rows: u64 = 0;
    for ((topic, partition), located) in chains.iter_mut() {
        let Some(topic) = topic else { continue };
        located.sort_unstable_by_key(|l| l.offset);
        let (Some(first), Some(last)) = (located.first(), located.last()) else {
            continue;
        };
        let covering = store
            .digests_overlapping(
                std::slice::from_ref(topic),
                *partition,
                first.offset,
                last.offset,
            )
            .await?;
        for d in covering {
            let under: Vec<usize> = located
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    !l.proven && l.offset >= d.first_offset && l.offset <= d.last_offset
                })
                .map(|(i, _)| i)
                .collect();
            if !under.is_empty() {
                let leaves = store.leaves_of(&d).await?;
                let hashes: Vec<_> = leaves
                    .iter()
                    .map(|l| unhex::<32>(&l.leaf).unwrap_or_default())
                    .collect();
                let tree = super::proof::Tree::new(hashes);
                for i in under {
                    let l = &mut located[i];
                    let Ok(position) = leaves.binary_search_by_key(&l.offset, |x| x.kafka_offset)
                    else {
                        continue;
                    };
                    let Some(path) = tree.path(position) else {
                        continue;
                    };
                    let line = ProofLine {
                        row: l.row,
                        tenant_id: l.tenant_id.clone(),
                        event_id: l.event_id.clone(),
                        topic: topic.clone(),
                        kafka_partition: *partition,
                        kafka_offset: l.offset,
                        digest_hash: d.digest_hash.clone(),
                        leaf: leaves[position].leaf.clone(),
                        leaf_index: position as u64,
                        tree_size: d.row_count,
                        path: path.iter().map(|h| hex(h)).collect(),
                    };
                    write_line(&mut zip, &line)?;
                    l.proven = true;
                    sealed_rows += 1;
                }
                flush(&mut zip, sink).await?;
            }
            digests.push(d);
        }
    }
    files.push(entry(PROOFS_FILE, zip.finish()?));

    // 3. Digests, keys, then the manifest and its signature.
    zip.start(DIGESTS_FILE);
    for d in &digests {
        write_line(&mut zip, d)?;
    }
    files.push(entry(DIGESTS_FILE, zip.finish()?));
    // The records of redacted rows (section 14), chain by chain; a record
    // names its row by tenant, event id, partition and offset.
    zip.start(REDACTIONS_FILE);
    for ((topic, partition), located) in &chains {
        let (Some(_), Some(first), Some(last)) = (topic, located.first(), located.last()) else {
            continue;
        };
        let rows: std::collections::HashSet<(&str, &str, i64)> = located
            .iter()
            .map(|l| (l.tenant_id.as_str(), l.event_id.as_str(), l.offset))
            .collect();
        for record in store
            .redaction_records_in_range(*partition, first.offset, last.offset)
            .await?
        {
            let key = (
                record.tenant_id.as_str(),
                record.event_id.as_str(),
                record.kafka_offset,
            );
            if rows.contains(&key) {
                write_line(&mut zip, &record)?;
            }
        }
        flush(&mut zip, sink).await?;
    }
    files.push(entry(REDACTIONS_FILE, zip.finish()?));
    zip.start(KEYS_FILE);
    zip.write(&json(&signer.keys)?);
    files.push(entry(KEYS_FILE, zip.finish()?));
    let mut unsealed: Vec<UnsealedRow> = chains
        .iter()
        .flat_map(|((_, partition), located)| {
            located.iter().filter(|l| !l.proven).map(|l| UnsealedRow {
                row: l.row,
                tenant_id: l.tenant_id.clone(),
                event_id: l.event_id.clone(),
                kafka_partition: *partition,
                kafka_offset: l.offset,
            })
        })
        .collect();
    unsealed.sort_unstable_by_key(|u| u.row);
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        events_format: meta.format,
        created_at: meta.created_at,
        viewer: meta.viewer,
        query: meta.query,
        rows,
        sealed_rows,
        unsealed,
        files,
        digests: digests.iter().map(|d| d.digest_hash.clone()).collect(),
    };
    let manifest_bytes = json(&manifest)?;
    zip.start(MANIFEST_FILE);
    zip.write(&manifest_bytes);
    zip.finish()?;
    zip.start(SIGNATURE_FILE);
    zip.write(&json(&sign_manifest(&manifest_bytes, &signer.key))?);
    zip.finish()?;
    zip.end()?;
    flush(&mut zip, sink).await
}

fn entry(name: &str, written: super::export_zip::Written) -> FileEntry {
    FileEntry {
        name: name.into(),
        bytes: written.bytes,
        sha256: written.sha256,
    }
}

fn json(value: &impl serde::Serialize) -> Result<Vec<u8>, BundleError> {
    serde_json::to_vec(value).map_err(|e| BundleError::Row(e.to_string()))
}

fn write_line(zip: &mut ZipWriter, value: &impl serde::Serialize) -> Result<(), BundleError> {
    let mut bytes = json(value)?;
    bytes.push(b'\n');
    zip.write(&bytes);
    Ok(())
}
