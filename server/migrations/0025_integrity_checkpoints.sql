-- Chain checkpoints (docs/INTEGRITY.md, section 16): the scheduled check's
-- signed statement that it walked a chain whole up to a committed digest.
-- Its frequent runs then walk back only to the newest one that verifies,
-- so their cost follows what was sealed since. A checkpoint written twice
-- is the same row and collapses.
CREATE TABLE IF NOT EXISTS attest_integrity_checkpoints
(
    topic String,
    partition Int32,
    digest_hash String,
    last_offset Int64,
    checked_at Int64,
    key_id String,
    signature String
)
ENGINE = ReplacingMergeTree()
ORDER BY (topic, partition, last_offset, digest_hash, checked_at)
