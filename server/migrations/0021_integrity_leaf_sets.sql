-- The leaves of a digest in one row (docs/INTEGRITY.md, section 8), in the
-- order of their positions, instead of one row per sealed event: sealing
-- inserted as many leaf rows as event rows, each repeating the digest's
-- hash and topic, and that second insert was most of what sealing cost the
-- writer (docs/BENCHMARKS.md). Leaves are the 32 bytes themselves.
-- ReplacingMergeTree: a digest's set written twice (a retried INSERT) is
-- the same row and collapses; readers take one row per digest.
CREATE TABLE IF NOT EXISTS attest_integrity_leaf_sets
(
    digest_hash String,
    topic String,
    partition Int32,
    first_offset Int64,
    kafka_offsets Array(Int64),
    tenant_ids Array(String),
    event_ids Array(String),
    leaves Array(FixedString(32))
)
ENGINE = ReplacingMergeTree()
ORDER BY (topic, partition, first_offset, digest_hash);

-- The leaves sealed before this migration, moved over: one set per digest,
-- each leaf once (a retried insert may have stored one twice), in position
-- order. The old table is recreated empty if an interrupted run already
-- dropped it, so that every statement can run again.
CREATE TABLE IF NOT EXISTS attest_integrity_leaves
(
    digest_hash String,
    topic String,
    partition Int32,
    kafka_offset Int64,
    position UInt32,
    tenant_id String,
    event_id String,
    leaf String
)
ENGINE = ReplacingMergeTree()
ORDER BY (topic, partition, kafka_offset, digest_hash);

-- The columns are named: migration 0023 adds two, and a start that runs
-- this again after that (its ledger entry lost) must still succeed.
INSERT INTO attest_integrity_leaf_sets
    (digest_hash, topic, partition, first_offset, kafka_offsets, tenant_ids, event_ids, leaves)
SELECT digest_hash, topic, partition, first_offset, kafka_offsets, tenant_ids, event_ids, leaves
FROM
(
    SELECT
        digest_hash,
        topic,
        partition,
        arrayMap(p -> tupleElement(p, 2), arraySort(groupArray((position, kafka_offset)))) AS kafka_offsets,
        arrayMap(p -> tupleElement(p, 2), arraySort(groupArray((position, tenant_id)))) AS tenant_ids,
        arrayMap(p -> tupleElement(p, 2), arraySort(groupArray((position, event_id)))) AS event_ids,
        arrayMap(p -> toFixedString(unhex(tupleElement(p, 2)), 32), arraySort(groupArray((position, leaf)))) AS leaves
    FROM
    (
        SELECT DISTINCT digest_hash, topic, partition, kafka_offset, position, tenant_id, event_id, leaf
        FROM attest_integrity_leaves
    ) AS stored
    GROUP BY digest_hash, topic, partition
) AS sets
-- A set is found by its digest's first offset, which a dead letter or the
-- previous digest's end may put before its first leaf. Leaves of a digest
-- never stored (a seal that failed and was retried) are left behind:
-- nothing ever read them.
ANY INNER JOIN
(
    SELECT DISTINCT digest_hash, first_offset FROM attest_integrity_digests
) AS sealed USING digest_hash;

DROP TABLE IF EXISTS attest_integrity_leaves;
