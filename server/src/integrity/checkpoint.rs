//! A chain checkpoint (docs/INTEGRITY.md, section 16): the signed statement
//! of the scheduled check that it walked a chain from one digest back to
//! the start (or to an earlier checkpoint) with every link present and
//! every digest's signature valid. Later frequent checks walk back only
//! to the newest checkpoint that verifies, so their cost follows the
//! digests sealed since, not every digest ever sealed. The full check
//! (`integrity.full_check_every`) ignores checkpoints and walks whole.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::check::Report;
use super::digest::Digest;
use super::encoding::{hex, Fields};
use super::keys::{KeyRing, SigningKey, Unverified};

/// Names the format inside what is signed.
pub const FORMAT: &str = "attest-checkpoint-v1";

#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct Checkpoint {
    pub topic: String,
    pub partition: i32,
    /// The newest digest of the chain that was walked.
    pub digest_hash: String,
    /// Its `last_offset`.
    pub last_offset: i64,
    /// Epoch milliseconds when the walk was made and signed.
    pub checked_at: i64,
    pub key_id: String,
    /// Ed25519 over the signed message, 128 lower-case hex digits.
    pub signature: String,
}

fn signed_fields(c: &Checkpoint) -> Fields {
    Fields::new()
        .str(FORMAT)
        .str(&c.topic)
        .num(c.partition)
        .str(&c.digest_hash)
        .num(c.last_offset)
        .num(c.checked_at)
        .str(&c.key_id)
}

impl Checkpoint {
    /// Signs that the chain of `head` was walked whole up to it.
    pub fn sign(key: &SigningKey, head: &Digest, checked_at: i64) -> Checkpoint {
        let mut c = Checkpoint {
            topic: head.topic.clone(),
            partition: head.partition,
            digest_hash: head.digest_hash.clone(),
            last_offset: head.last_offset,
            checked_at,
            key_id: key.id().to_owned(),
            signature: String::new(),
        };
        c.signature = hex(&key.sign(signed_fields(&c).bytes()));
        c
    }

    /// One checkpoint per chain of the report that earned one
    /// ([`ChainWalk::checkpoint_due`](super::check::ChainWalk::checkpoint_due)).
    pub fn for_whole_chains(report: &Report, key: &SigningKey, now: i64) -> Vec<Checkpoint> {
        report
            .chains
            .iter()
            .filter_map(|c| c.checkpoint_due())
            .map(|head| Checkpoint::sign(key, head, now))
            .collect()
    }

    pub fn check(&self, keys: &KeyRing) -> Result<(), Unverified> {
        keys.verify(
            &self.key_id,
            self.checked_at,
            signed_fields(self).bytes(),
            &self.signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::digest::{Unsigned, GENESIS};
    use crate::integrity::keys::tests::{flip_first, ring_with_one_key};

    #[test]
    fn a_checkpoint_verifies_and_every_signed_column_counts() {
        let (ring, key, _dir) = ring_with_one_key();
        let head = Unsigned {
            topic: "t",
            partition: 1,
            first_offset: 0,
            last_offset: 9,
            row_count: 10,
            root: [1; 32],
            prev_hash: GENESIS,
            sealed_at: 1_800_000_000_000,
        }
        .sign(&key);
        let c = Checkpoint::sign(&key, &head, 1_800_000_100_000);
        assert_eq!(c.check(&ring), Ok(()));
        let changes: [fn(&mut Checkpoint); 6] = [
            |c| c.topic.push('x'),
            |c| c.partition += 1,
            |c| flip_first(&mut c.digest_hash),
            |c| c.last_offset += 1,
            |c| c.checked_at += 1,
            |c| flip_first(&mut c.signature),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut forged = c.clone();
            change(&mut forged);
            assert!(forged.check(&ring).is_err(), "change {i}");
        }
    }
}
