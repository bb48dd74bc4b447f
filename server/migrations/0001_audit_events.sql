-- The audit events table. Portable core: runs on ClickHouse 18.16 and on the
-- current LTS. Times are epoch milliseconds (DateTime64 is not on 18.16);
-- event_time is derived from occurred_at for month partitions.
-- ReplacingMergeTree collapses rows with the same sorting key, so a batch
-- re-inserted after a writer crash merges away; queries also dedupe by
-- event_id until merges have run.
CREATE TABLE IF NOT EXISTS audit_events
(
    event_id String,
    tenant_id String,
    occurred_at Int64,
    received_at Int64,
    event_time DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at, 1000), 'UTC'),
    category String,
    action String,
    outcome String,
    actor_id String,
    actor_type String,
    actor_ip String,
    actor_user_agent String,
    resource_type String,
    resource_id String,
    source_service String,
    request_id String,
    metadata Nested
    (
        key String,
        value String
    ),
    schema_id UInt32,
    kafka_partition Int32,
    kafka_offset Int64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, category, occurred_at, event_id)
