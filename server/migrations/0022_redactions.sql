-- Governed redaction (docs/INTEGRITY.md, section 14; README "Redaction").
--
-- A request names a tenant's events (by id, or every event of one actor)
-- and the fields to erase; a second admin approves it; then each event is
-- rewritten with the fields replaced by `[redacted]`. A request's history
-- is its versions (requested, approved, executed): the highest `version`
-- is where it stands. The events it covers are fixed when it is made, as
-- (event_ids[i], content_hashes[i]) pairs: what the approver approves is
-- exactly what is executed, and a run after a crash still finds the rows
-- whose actor id it already erased.
CREATE TABLE IF NOT EXISTS attest_redaction_requests
(
    request_id String,
    tenant_id String,
    subject_actor_id String,
    event_ids Array(String),
    content_hashes Array(String),
    fields Array(String),
    reason String,
    requested_by String,
    requested_by_id String,
    requested_at Int64,
    approved_by String,
    approved_by_id String,
    approved_at Int64,
    executed_at Int64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY request_id;

-- One signed record per redacted row: the content hash the writer sealed
-- (original_hash) and the one of the row as redacted (redacted_hash), so
-- that a verifier proves the row's remaining fields through redacted_hash
-- and its place in the chain through original_hash. Signed with the
-- integrity key like a digest; written before the redacted row, so that
-- no redacted row is ever stored without its record. A record written
-- twice (a run repeated after a crash) is the same row and collapses.
CREATE TABLE IF NOT EXISTS attest_redaction_records
(
    request_id String,
    tenant_id String,
    event_id String,
    kafka_partition Int32,
    kafka_offset Int64,
    original_hash String,
    redacted_hash String,
    fields Array(String),
    requested_by String,
    approved_by String,
    reason String,
    executed_at Int64,
    key_id String,
    signature String
)
ENGINE = ReplacingMergeTree()
ORDER BY (tenant_id, event_id, kafka_partition, kafka_offset, redacted_hash, request_id)
