//! The writer's side: after a batch's rows are in ClickHouse and before its
//! offsets are committed, each partition's new rows are sealed in a digest
//! chained to that partition's previous one (docs/INTEGRITY.md, "Sealing").
//!
//! The head of each chain travels with the committed offset, as the
//! commit's metadata: Kafka accepts it only from the partition's current
//! owner, so it is the authority on where a chain stands. A writer taking
//! a partition over reads it, then adopts any digests stored after it (a
//! writer that stored a digest and died before committing), so a crash
//! anywhere between insert and commit seals every row once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::digest::{Digest, Unsigned, GENESIS};
use super::keys::{self, KeyError, SigningKey};
use super::merkle;
use crate::config::{IntegrityConfig, KafkaConfig};
use crate::store::{EventRow, LeafSet, Store, StoreError};

/// How long reading a partition's committed head may take.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
    #[error("cannot read the committed chain head from Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("cannot read or store digests: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Heads(#[from] HeadsError),
}

#[derive(Debug, thiserror::Error)]
pub enum HeadsError {
    #[error("cannot read the committed chain heads from Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("committed-head lookup task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What the writers' group committed for one partition.
pub struct Committed {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
    /// The commit's metadata when it is a digest hash: the chain's head.
    pub head: Option<String>,
}

/// A client of the writers' group that never joins it: it only reads
/// committed offsets and their metadata.
pub fn offsets_reader(kafka: &KafkaConfig, client_id: &str) -> Result<BaseConsumer, HeadsError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.consumer_group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .create()?)
}

/// The committed offsets and chain heads of `partitions` (one OffsetFetch,
/// off the async runtime: the client call blocks).
pub async fn committed(
    reader: Arc<BaseConsumer>,
    partitions: &[(String, i32)],
) -> Result<Vec<Committed>, HeadsError> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let answer =
        tokio::task::spawn_blocking(move || reader.committed_offsets(list, COMMITTED_TIMEOUT))
            .await??;
    Ok(answer
        .elements()
        .into_iter()
        .map(|e| Committed {
            topic: e.topic().to_owned(),
            partition: e.partition(),
            offset: match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            },
            head: super::encoding::unhex::<32>(e.metadata()).map(|_| e.metadata().to_owned()),
        })
        .collect())
}

/// Where a partition's chain stands: the newest digest and the last offset
/// it accounts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub hash: String,
    pub last_offset: i64,
}

/// The new rows of one partition in a batch, in offset order, each with
/// its leaf (`leaves[i]` is `rows[i]`'s), and the offsets the batch
/// consumed there (rows and dead letters alike). The leaves come with the
/// rows so that a writer can hash them while the rows insert, before its
/// turn to seal (see `write`).
pub struct Run<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub rows: Vec<&'a EventRow>,
    pub leaves: Vec<merkle::Hash>,
}

/// A batch sealed: how many rows, and the chain head to commit with each
/// of its partitions' offsets.
#[derive(Debug, Default)]
pub struct Sealing {
    pub rows: usize,
    heads: Vec<((String, i32), String)>,
}

impl Sealing {
    /// The head to commit with `partition`'s offset, if its chain has one.
    pub fn head(&self, topic: &str, partition: i32) -> Option<&str> {
        self.heads
            .iter()
            .find(|((t, p), _)| t == topic && *p == partition)
            .map(|(_, hash)| hash.as_str())
    }
}

/// What one batch adds to the chains, ready to store.
#[derive(Default)]
pub struct Seal {
    pub digests: Vec<Digest>,
    pub leaves: Vec<LeafSet>,
    heads: Vec<((String, i32), Head)>,
}

struct Signing {
    key: SigningKey,
    /// `keys.json`'s modification time when `key` was loaded: a rotation
    /// (`attest integrity keygen`) is picked up at the next batch.
    loaded: Option<SystemTime>,
}

#[derive(Default)]
struct Heads {
    /// The writer's rebalance count these heads were read under.
    generation: u64,
    map: HashMap<(String, i32), Head>,
}

pub struct Sealer {
    key_dir: PathBuf,
    signing: Mutex<Signing>,
    heads: Mutex<Heads>,
    /// A client of the writer's group that never joins it: it only reads
    /// committed offsets and their metadata.
    offsets: Arc<BaseConsumer>,
    store: Store,
    rebalances: Arc<AtomicU64>,
}

/// A panic elsewhere while one of these was held leaves plain data behind
/// (heads, the key): go on with it rather than skip sealing or a reset.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn keys_mtime(dir: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(keys::KEYS_FILE))
        .and_then(|m| m.modified())
        .ok()
}

impl Sealer {
    /// Loads the current signing key, generating the first one if the
    /// configuration allows and there is none.
    pub fn new(
        config: &IntegrityConfig,
        kafka: &KafkaConfig,
        store: Store,
        rebalances: Arc<AtomicU64>,
    ) -> Result<Sealer, SealError> {
        let key = match SigningKey::load(&config.key_dir) {
            Ok(key) => key,
            Err(KeyError::NoCurrentKey(_)) if config.generate_key => {
                let made = keys::generate_first(&config.key_dir, crate::ingest::now_ms())?;
                info!(key_id = %made.key_id, dir = %config.key_dir.display(), "integrity signing key ready");
                SigningKey::load(&config.key_dir)?
            }
            Err(e) => return Err(e.into()),
        };
        info!(key_id = key.id(), "sealing written rows in signed digests");
        let offsets = offsets_reader(kafka, "attest-writer-heads")?;
        Ok(Sealer {
            signing: Mutex::new(Signing {
                key,
                loaded: keys_mtime(&config.key_dir),
            }),
            key_dir: config.key_dir.clone(),
            heads: Mutex::default(),
            offsets: Arc::new(offsets),
            store,
            rebalances,
        })
    }

    /// Seals the runs and stores the seal (leaves, then digests), and
    /// answers the heads to commit with the batch's offsets: the ones this
    /// seal stored, even if a rebalance began meanwhile (a commit for a
    /// partition no longer owned is refused by Kafka; one still owned must
    /// carry its head). On failure the runs' partitions are looked up
    /// afresh next time, so a digest that was stored before the failure is
    /// adopted rather than sealed again.
    pub async fn seal(&self, runs: &[Run<'_>]) -> Result<Sealing, SealError> {
        let outcome = self.seal_once(runs).await;
        if outcome.is_err() {
            let mut heads = lock(&self.heads);
            for run in runs {
                heads.map.remove(&(run.topic.to_owned(), run.partition));
            }
        }
        outcome
    }

    async fn seal_once(&self, runs: &[Run<'_>]) -> Result<Sealing, SealError> {
        self.reload_key_if_rotated();
        let generation = self.rebalances.load(Ordering::Acquire);
        {
            let mut heads = lock(&self.heads);
            // After a rebalance another writer may have moved a chain on.
            if heads.generation != generation {
                heads.map.clear();
                heads.generation = generation;
            }
        }
        let mut seal = Seal::default();
        for run in runs {
            let head = self.head_of(run.topic, run.partition).await?;
            self.seal_run(run, head, &mut seal);
        }
        self.store.insert_seal(&seal.digests, &seal.leaves).await?;
        let sealing = Sealing {
            rows: seal.leaves.iter().map(|set| set.leaves.len()).sum(),
            heads: seal
                .heads
                .iter()
                .map(|(key, head)| (key.clone(), head.hash.clone()))
                .collect(),
        };
        // Kept for the next batch only while no rebalance intervened:
        // after one, another writer may have moved a chain on.
        let mut heads = lock(&self.heads);
        if heads.generation == generation {
            heads.map.extend(seal.heads);
        }
        Ok(sealing)
    }

    fn seal_run(&self, run: &Run<'_>, head: Option<Head>, seal: &mut Seal) {
        let key = (run.topic.to_owned(), run.partition);
        let sealed_to = head.as_ref().map_or(i64::MIN, |h| h.last_offset);
        let (rows, leaves): (Vec<&EventRow>, Vec<merkle::Hash>) = run
            .rows
            .iter()
            .copied()
            .zip(run.leaves.iter().copied())
            .filter(|(r, _)| r.kafka_offset > sealed_to)
            .unzip();
        if run.last_offset <= sealed_to || rows.is_empty() {
            // Sealed already (a re-read after a crash or a hand-over), or
            // only dead letters: the next digest's range covers them.
            if let Some(head) = head {
                seal.heads.push((key, head));
            }
            return;
        }
        let prev = head.as_ref().map_or(GENESIS.to_owned(), |h| h.hash.clone());
        let first_offset = head
            .as_ref()
            .map_or(run.first_offset, |h| h.last_offset.saturating_add(1));
        let signing = lock(&self.signing);
        let digest = Unsigned {
            topic: run.topic,
            partition: run.partition,
            first_offset,
            last_offset: run.last_offset,
            row_count: leaves.len() as u64,
            root: merkle::root(&leaves),
            prev_hash: &prev,
            sealed_at: crate::ingest::now_ms(),
        }
        .sign(&signing.key);
        drop(signing);
        seal.leaves.push(LeafSet {
            digest_hash: digest.digest_hash.clone(),
            topic: run.topic.to_owned(),
            partition: run.partition,
            first_offset: digest.first_offset,
            kafka_offsets: rows.iter().map(|r| r.kafka_offset).collect(),
            tenant_ids: rows.iter().map(|r| r.tenant_id.clone()).collect(),
            event_ids: rows.iter().map(|r| r.event_id.clone()).collect(),
            leaves,
            received_ats: rows.iter().map(|r| r.received_at).collect(),
            schema_ids: rows.iter().map(|r| r.schema_id).collect(),
        });
        seal.heads.push((
            key,
            Head {
                hash: digest.digest_hash.clone(),
                last_offset: run.last_offset,
            },
        ));
        seal.digests.push(digest);
    }

    fn reload_key_if_rotated(&self) {
        let now = keys_mtime(&self.key_dir);
        let mut signing = lock(&self.signing);
        if now == signing.loaded {
            return;
        }
        match SigningKey::load(&self.key_dir) {
            Ok(key) => {
                info!(key_id = key.id(), "integrity signing key rotated");
                signing.key = key;
                signing.loaded = now;
            }
            Err(error) => {
                warn!(%error, "keys.json changed but the new key cannot be loaded; signing with the previous one")
            }
        }
    }

    /// The chain head of a partition: cached, or the committed one with
    /// every digest stored after it adopted.
    async fn head_of(&self, topic: &str, partition: i32) -> Result<Option<Head>, SealError> {
        let key = (topic.to_owned(), partition);
        let cached = lock(&self.heads).map.get(&key).cloned();
        if let Some(head) = cached {
            return Ok(Some(head));
        }
        let answer = committed(self.offsets.clone(), &[key]).await?;
        let (metadata, committed) = answer
            .into_iter()
            .next()
            .map_or((None, None), |c| (c.head, c.offset));
        let mut head = match metadata {
            Some(hash) => Some(
                match self.store.digest_by_hash(topic, partition, &hash).await? {
                    Some(d) => Head {
                        hash: d.digest_hash,
                        last_offset: d.last_offset,
                    },
                    // The committed head is not in ClickHouse (deleted?): chain
                    // on to it anyway, so the check names it missing.
                    None => {
                        warn!(topic, partition, digest = %hash, "the committed chain head is not among the stored digests");
                        Head {
                            hash,
                            last_offset: committed.map_or(-1, |c| c.saturating_sub(1)),
                        }
                    }
                },
            ),
            None => None,
        };
        // Adopt digests stored after the head but never committed.
        loop {
            let from = head
                .as_ref()
                .map_or(GENESIS, |h| h.hash.as_str())
                .to_owned();
            let after = head.as_ref().map_or(i64::MIN, |h| h.last_offset);
            let candidates = self.store.digests_after(topic, partition, &from).await?;
            match successor(&candidates, &from, after) {
                Some(d) => {
                    head = Some(Head {
                        hash: d.digest_hash.clone(),
                        last_offset: d.last_offset,
                    })
                }
                None => break,
            }
        }
        Ok(head)
    }
}

/// The stored digest that moves a chain on from `from` (which accounts for
/// offsets up to `after`): one chained to it that reaches further, the
/// furthest first, ties to the smaller hash. A new owner adopts it as the
/// head, and the check walks the chain from it, so the two agree on where
/// a chain stands while a digest waits for its commit
/// (docs/INTEGRITY.md, section 7).
pub fn successor<'a>(digests: &'a [Digest], from: &str, after: i64) -> Option<&'a Digest> {
    digests
        .iter()
        .filter(|d| d.prev_hash == from && d.last_offset > after)
        .max_by(|a, b| {
            a.last_offset
                .cmp(&b.last_offset)
                .then_with(|| b.digest_hash.cmp(&a.digest_hash))
        })
}
