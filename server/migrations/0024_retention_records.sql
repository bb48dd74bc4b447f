-- What retention removed of sealed rows, signed (docs/INTEGRITY.md,
-- section 15): one row per tenant, month, topic and partition, naming the
-- Kafka offsets of the rows it removes, written before it removes them.
-- The integrity check reports a sealed row without its row as expired,
-- not missing, only when a record here verifies and names it. A record
-- written again by a retried run is another row (another executed_at);
-- either one verifies.
CREATE TABLE IF NOT EXISTS attest_retention_records
(
    topic String,
    partition Int32,
    tenant_id String,
    month UInt32,
    kafka_offsets Array(Int64),
    executed_at Int64,
    key_id String,
    signature String
)
ENGINE = ReplacingMergeTree()
ORDER BY (topic, partition, tenant_id, month, executed_at)
