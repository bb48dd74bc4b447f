//! The verifiable export bundle (docs/INTEGRITY.md, sections 10–12): its
//! files, the per-row inclusion proofs, the signed manifest, and the
//! Merkle tree built once per digest so that every proof of a digest costs
//! its path, not a rebuild of the tree.

use serde::{Deserialize, Serialize};

use super::encoding::{hex, unhex, Fields};
use super::keys::{KeyRing, SigningKey};
use super::merkle::Hash;
use crate::store::ExportFormat;
use sha2::{Digest as _, Sha256};

/// Names the format inside what is signed, so a manifest signature can
/// never be read as a digest's.
pub const MANIFEST_FORMAT: &str = "attest-manifest-v1";
pub const BUNDLE_FORMAT: &str = "attest-export-v1";

pub const EVENTS_NDJSON: &str = "events.ndjson";
pub const EVENTS_CSV: &str = "events.csv";
pub const PROOFS_FILE: &str = "proofs.ndjson";
pub const DIGESTS_FILE: &str = "digests.ndjson";
/// The redaction records of the bundle's redacted rows (section 14);
/// bundles made before redaction existed have none and do not list it.
pub const REDACTIONS_FILE: &str = "redactions.ndjson";
pub const KEYS_FILE: &str = "keys.json";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.sig";

/// The bundle's events file: the export as a plain download of that
/// format gives it.
pub fn events_file(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Ndjson => EVENTS_NDJSON,
        ExportFormat::Csv => EVENTS_CSV,
    }
}

/// Bundles made before CSV bundles existed say nothing: NDJSON.
fn ndjson() -> ExportFormat {
    ExportFormat::Ndjson
}

/// Every level of an RFC 6962 tree, bottom up. Building the levels pairwise
/// and carrying an unpaired last node up unchanged gives the same tree as
/// the recursive definition (the split at the largest power of two).
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

impl Tree {
    pub fn new(leaves: Vec<Hash>) -> Tree {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node(l, r),
                    [one] => *one,
                    _ => unreachable_pair(),
                })
                .collect();
            levels.push(up);
        }
        Tree { levels }
    }

    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    pub fn root(&self) -> Option<Hash> {
        self.levels.last().and_then(|l| l.first()).copied()
    }

    /// The audit path of leaf `index`, bottom up; `None` outside the tree.
    pub fn path(&self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.size() {
            return None;
        }
        let mut path = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            // An unpaired last node has no sibling at this level.
            if let Some(sibling) = level.get(i ^ 1) {
                path.push(*sibling);
            }
            i >>= 1;
        }
        Some(path)
    }
}

/// `chunks(2)` yields one or two items; this arm cannot run.
fn unreachable_pair() -> Hash {
    [0; 32]
}

/// One line of `proofs.ndjson`: the inclusion proof of one exported row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofLine {
    /// The row's number in the events file, from 0: its line in NDJSON,
    /// its record after the header in CSV.
    pub row: u64,
    pub tenant_id: String,
    pub event_id: String,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub digest_hash: String,
    /// The leaf as sealed (the verifier recomputes it from the row).
    pub leaf: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The audit path, bottom up, each 64 hex digits.
    pub path: Vec<String>,
}

/// A row the export holds that no digest seals yet (written in the last
/// seconds, before its writer's next seal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsealedRow {
    pub row: u64,
    pub tenant_id: String,
    pub event_id: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What the export was: the search as the console's URL held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportQuery {
    /// The query text (docs/SEARCH.md).
    pub q: String,
    /// The search page's parameters, as a query string.
    pub search: String,
    /// The tenants it was bounded to; empty: every tenant.
    pub tenants: Vec<String>,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The events file's format, and so its name ([`events_file`]).
    #[serde(default = "ndjson")]
    pub events_format: ExportFormat,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub viewer: String,
    pub query: ExportQuery,
    pub rows: u64,
    pub sealed_rows: u64,
    pub unsealed: Vec<UnsealedRow>,
    /// Every file of the bundle but the manifest and its signature.
    pub files: Vec<FileEntry>,
    /// `digest_hash` of every digest in `digests.ndjson`.
    pub digests: Vec<String>,
}

/// `manifest.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSignature {
    pub key_id: String,
    /// Ed25519 over the fields `"attest-manifest-v1"` and the SHA-256 of
    /// the manifest's bytes, 128 hex digits.
    pub signature: String,
}

/// The signed message: the fields `"attest-manifest-v1"` and the SHA-256
/// of `manifest.json`'s bytes as text.
fn manifest_message(manifest_bytes: &[u8]) -> Fields {
    Fields::new()
        .str(MANIFEST_FORMAT)
        .str(&hex(&Sha256::digest(manifest_bytes)))
}

pub fn sign_manifest(manifest_bytes: &[u8], key: &SigningKey) -> ManifestSignature {
    ManifestSignature {
        key_id: key.id().to_owned(),
        signature: hex(&key.sign(manifest_message(manifest_bytes).bytes())),
    }
}

/// Why a manifest signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("signed by key {0}, which is not among the trusted keys")]
    UnknownKey(String),
    #[error("created at {created_at}, outside the validity of key {key_id}")]
    OutsideKeyValidity { key_id: String, created_at: i64 },
    #[error("the signature does not verify with key {0}")]
    BadSignature(String),
}

pub fn check_manifest(
    manifest_bytes: &[u8],
    created_at: i64,
    sig: &ManifestSignature,
    keys: &KeyRing,
) -> Result<(), SignatureProblem> {
    let key = keys
        .get(&sig.key_id)
        .ok_or_else(|| SignatureProblem::UnknownKey(sig.key_id.clone()))?;
    if !key.valid_at(created_at) {
        return Err(SignatureProblem::OutsideKeyValidity {
            key_id: sig.key_id.clone(),
            created_at,
        });
    }
    let signature = unhex::<64>(&sig.signature)
        .ok_or_else(|| SignatureProblem::BadSignature(sig.key_id.clone()))?;
    if key.verifies(manifest_message(manifest_bytes).bytes(), &signature) {
        Ok(())
    } else {
        Err(SignatureProblem::BadSignature(sig.key_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::keys::tests::ring_with_one_key;
    use crate::integrity::merkle;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256::digest(i.to_le_bytes()).into())
            .collect()
    }

    #[test]
    fn the_level_tree_is_the_rfc_6962_tree() {
        for n in 1..=70 {
            let l = leaves(n);
            let tree = Tree::new(l.clone());
            assert_eq!(tree.root(), Some(merkle::root(&l)), "n={n}");
            for i in 0..n {
                let path = tree.path(i).unwrap();
                assert_eq!(Some(path.clone()), merkle::proof(&l, i), "n={n} i={i}");
                assert_eq!(
                    merkle::root_from_proof(&l[i], i, n, &path),
                    tree.root(),
                    "n={n} i={i}"
                );
            }
            assert_eq!(tree.path(n), None);
        }
    }

    #[test]
    fn a_manifest_signature_covers_every_byte() {
        let (ring, key, _dir) = ring_with_one_key();
        let bytes = br#"{"rows":3}"#;
        let sig = sign_manifest(bytes, &key);
        let at = 1_800_000_000_000;
        assert_eq!(check_manifest(bytes, at, &sig, &ring), Ok(()));
        assert_eq!(
            check_manifest(br#"{"rows":4}"#, at, &sig, &ring),
            Err(SignatureProblem::BadSignature(sig.key_id.clone()))
        );
        assert!(matches!(
            check_manifest(bytes, 0, &sig, &ring),
            Err(SignatureProblem::OutsideKeyValidity { .. })
        ));
        assert_eq!(
            check_manifest(bytes, at, &sig, &KeyRing::default()),
            Err(SignatureProblem::UnknownKey(sig.key_id.clone()))
        );
    }
}
