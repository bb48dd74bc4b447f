-- Tamper evidence (docs/INTEGRITY.md): the writer seals every run of rows it
-- writes from one Kafka partition in a signed digest chained to the
-- previous digest of that partition, and records each sealed row's leaf.
-- ReplacingMergeTree: a digest or leaf written twice (a retried INSERT) is
-- the same row and collapses. No retention here yet: digests and leaves
-- are small and kept while their events may be (see docs/INTEGRITY.md).
CREATE TABLE IF NOT EXISTS attest_integrity_digests
(
    digest_hash String,
    topic String,
    partition Int32,
    first_offset Int64,
    last_offset Int64,
    row_count UInt64,
    root String,
    prev_hash String,
    sealed_at Int64,
    key_id String,
    signature String
)
ENGINE = ReplacingMergeTree()
ORDER BY (topic, partition, first_offset, digest_hash);

-- One row per sealed event: which digest holds it, where (position among
-- the digest's leaves, in offset order), and its leaf hash. With it the
-- integrity check names the exact event that changed or went missing, and
-- an export carries each row's inclusion proof.
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
