//! A digest: the signed statement that a run of one Kafka partition's
//! records was written, with the Merkle root of their leaves, chained to
//! the previous digest of the same partition.

use serde::{Deserialize, Serialize};

use super::encoding::{hex, unhex, Fields};
use super::keys::{KeyRing, SigningKey};

/// `prev_hash` of the first digest of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Names the format inside what is signed, so a signature over one format
/// can never be read as one over another.
const FORMAT: &str = "attest-digest-v1";

#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clickhouse::Row, utoipa::ToSchema,
)]
pub struct Digest {
    /// Lower-case hex SHA-256 of the signed fields and the signature.
    pub digest_hash: String,
    pub topic: String,
    pub partition: i32,
    /// First and last Kafka offset the digest accounts for (records that
    /// went to the dead letters are inside the range but are no leaves).
    pub first_offset: i64,
    pub last_offset: i64,
    /// Number of leaves (stored events) under `root`.
    pub row_count: u64,
    pub root: String,
    pub prev_hash: String,
    /// Epoch milliseconds.
    pub sealed_at: i64,
    pub key_id: String,
    /// Ed25519 signature over the signed fields, lower-case hex.
    pub signature: String,
}

/// Everything a digest says, before it is signed.
pub struct Unsigned<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub row_count: u64,
    pub root: [u8; 32],
    pub prev_hash: &'a str,
    pub sealed_at: i64,
}

fn signed_fields(d: &Digest) -> Fields {
    Fields::new()
        .str(FORMAT)
        .str(&d.topic)
        .num(d.partition)
        .num(d.first_offset)
        .num(d.last_offset)
        .num(d.row_count)
        .str(&d.root)
        .str(&d.prev_hash)
        .num(d.sealed_at)
        .str(&d.key_id)
}

impl Unsigned<'_> {
    pub fn sign(self, key: &SigningKey) -> Digest {
        let mut d = Digest {
            digest_hash: String::new(),
            topic: self.topic.to_owned(),
            partition: self.partition,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            row_count: self.row_count,
            root: hex(&self.root),
            prev_hash: self.prev_hash.to_owned(),
            sealed_at: self.sealed_at,
            key_id: key.id().to_owned(),
            signature: String::new(),
        };
        d.signature = hex(&key.sign(signed_fields(&d).bytes()));
        d.digest_hash = d.expected_hash();
        d
    }
}

/// What is wrong with a digest on its own (the chain is checked elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestProblem {
    #[error("signed by key {0}, which is not among the published keys")]
    UnknownKey(String),
    #[error("sealed at {sealed_at}, outside the validity of key {key_id}")]
    OutsideKeyValidity { key_id: String, sealed_at: i64 },
    #[error("the signature does not verify with key {0}")]
    BadSignature(String),
    #[error("digest_hash is {stored}, but its fields hash to {computed}")]
    HashMismatch { stored: String, computed: String },
}

impl Digest {
    /// SHA-256 over the signed fields followed by the signature.
    pub fn expected_hash(&self) -> String {
        hex(&signed_fields(self).str(&self.signature).sha256())
    }

    /// Checks the signature against the published keys and the hash.
    pub fn check(&self, keys: &KeyRing) -> Result<(), DigestProblem> {
        let key = keys
            .get(&self.key_id)
            .ok_or_else(|| DigestProblem::UnknownKey(self.key_id.clone()))?;
        if !key.valid_at(self.sealed_at) {
            return Err(DigestProblem::OutsideKeyValidity {
                key_id: self.key_id.clone(),
                sealed_at: self.sealed_at,
            });
        }
        let signature = unhex::<64>(&self.signature)
            .ok_or_else(|| DigestProblem::BadSignature(self.key_id.clone()))?;
        if !key.verifies(signed_fields(self).bytes(), &signature) {
            return Err(DigestProblem::BadSignature(self.key_id.clone()));
        }
        let computed = self.expected_hash();
        if computed != self.digest_hash {
            return Err(DigestProblem::HashMismatch {
                stored: self.digest_hash.clone(),
                computed,
            });
        }
        Ok(())
    }

    /// The root as bytes; `None` if the stored text is not 64 hex digits.
    pub fn root_bytes(&self) -> Option<[u8; 32]> {
        unhex::<32>(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::keys::tests::ring_with_one_key;

    fn digest(key: &SigningKey) -> Digest {
        Unsigned {
            topic: "attest.events.authentication",
            partition: 2,
            first_offset: 100,
            last_offset: 199,
            row_count: 98,
            root: [7; 32],
            prev_hash: GENESIS,
            sealed_at: 1_800_000_000_000,
        }
        .sign(key)
    }

    #[test]
    fn a_signed_digest_checks_and_any_change_is_named() {
        let (ring, key, _dir) = ring_with_one_key();
        let d = digest(&key);
        assert_eq!(d.check(&ring), Ok(()));
        let mut altered = d.clone();
        altered.row_count += 1;
        assert_eq!(
            altered.check(&ring),
            Err(DigestProblem::BadSignature(d.key_id.clone()))
        );
        let mut rehashed = d.clone();
        rehashed.digest_hash = GENESIS.into();
        assert!(matches!(
            rehashed.check(&ring),
            Err(DigestProblem::HashMismatch { .. })
        ));
        let mut other_key = d.clone();
        other_key.key_id = "0123456789abcdef".into();
        assert_eq!(
            other_key.check(&ring),
            Err(DigestProblem::UnknownKey("0123456789abcdef".into()))
        );
        let mut early = d;
        early.sealed_at = 0;
        assert!(matches!(
            early.check(&ring),
            Err(DigestProblem::OutsideKeyValidity { .. }) | Err(DigestProblem::BadSignature(_))
        ));
    }
}
