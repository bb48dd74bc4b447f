-- done-when-column: audit_events.content_hash
-- An event's identity is (tenant_id, event_id, content_hash): an exact
-- re-send collapses, a different event under a used id is kept beside the
-- first (docs/DESIGN.md, "Event identity").
--
-- content_hash is SHA-256, in lower-case hex, of everything the sender said,
-- each field written as its length in bytes (decimal), ':' and its bytes:
-- event_id, tenant_id, occurred_at (decimal epoch ms), category, action,
-- outcome, actor id, type, ip and user agent, resource type and id,
-- source_service, request_id, then the number of metadata entries (as a
-- field) and each entry's key and value, entries sorted by key, then value.
-- What Attest adds (received_at, schema_id, kafka_partition, kafka_offset)
-- is left out, so a client retry or a writer re-delivery hashes the same.
-- MATERIALIZED: ClickHouse computes it on every insert path and nothing can
-- send another value, so this expression is its only definition.
--
-- The sorting key gains content_hash. ClickHouse cannot add a computed
-- column to an existing sorting key (nor, on 18.16, ADD COLUMN IF NOT
-- EXISTS), so the table is rebuilt: a new one with the new key, filled from
-- the old one, swapped in by RENAME. The rollups count the same identity
-- and are rebuilt the same way; their views are dropped first and
-- recreated over the new table at the end. Every step can run again after
-- an interruption: each drops what an interrupted run may have left before
-- recreating it, and the old table is dropped only once the new one holds
-- a full copy. The writers must be stopped while it runs (`attest serve`
-- migrates before its writer starts): a row inserted into the old table
-- after the copy would be dropped with it.
DROP TABLE IF EXISTS audit_counts_per_minute_mv;
DROP TABLE IF EXISTS audit_failures_per_minute_mv;

-- The portable core of 0001 with the new column and key. The version-gated
-- extras of 0002 and 0003 are applied to it again as 0010 and 0011.
DROP TABLE IF EXISTS audit_events_identity_new;
CREATE TABLE IF NOT EXISTS audit_events_identity_new
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
    -- The Nested(key, value) of 0001, spelled as its two arrays: 18.16
    -- knows the arrays by these names only once a Nested is flattened,
    -- which is after the content_hash expression below is checked.
    `metadata.key` Array(String),
    `metadata.value` Array(String),
    schema_id UInt32,
    kafka_partition Int32,
    kafka_offset Int64,
    content_hash String MATERIALIZED lower(hex(SHA256(concat(
        toString(length(event_id)), ':', event_id,
        toString(length(tenant_id)), ':', tenant_id,
        toString(length(toString(occurred_at))), ':', toString(occurred_at),
        toString(length(category)), ':', category,
        toString(length(action)), ':', action,
        toString(length(outcome)), ':', toString(outcome),
        toString(length(actor_id)), ':', actor_id,
        toString(length(actor_type)), ':', toString(actor_type),
        toString(length(actor_ip)), ':', actor_ip,
        toString(length(actor_user_agent)), ':', actor_user_agent,
        toString(length(resource_type)), ':', toString(resource_type),
        toString(length(resource_id)), ':', resource_id,
        toString(length(source_service)), ':', toString(source_service),
        toString(length(request_id)), ':', request_id,
        toString(length(toString(length(metadata.key)))), ':', toString(length(metadata.key)),
        arrayStringConcat(arrayMap(entry -> concat(
            toString(length(tupleElement(entry, 1))), ':', tupleElement(entry, 1),
            toString(length(tupleElement(entry, 2))), ':', tupleElement(entry, 2)
        ), arraySort(arrayMap((k, v) -> (k, v), metadata.key, metadata.value))))
    ))))
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant_id, category, occurred_at, event_id, content_hash);

-- The new table computes the MATERIALIZED columns of every copied row.
INSERT INTO audit_events_identity_new (event_id, tenant_id, occurred_at, received_at, category,
    action, outcome, actor_id, actor_type, actor_ip, actor_user_agent, resource_type, resource_id,
    source_service, request_id, metadata.key, metadata.value, schema_id, kafka_partition, kafka_offset)
SELECT event_id, tenant_id, occurred_at, received_at, category, action, toString(outcome), actor_id,
    toString(actor_type), actor_ip, actor_user_agent, toString(resource_type), resource_id,
    toString(source_service), request_id, metadata.key, metadata.value, schema_id, kafka_partition,
    kafka_offset
FROM audit_events;

DROP TABLE IF EXISTS audit_events_identity_old;
RENAME TABLE audit_events TO audit_events_identity_old, audit_events_identity_new TO audit_events;
DROP TABLE IF EXISTS audit_events_identity_old;

-- Rollups: distinct identities, not distinct event_ids.
DROP TABLE IF EXISTS audit_counts_per_minute_identity_new;
CREATE TABLE IF NOT EXISTS audit_counts_per_minute_identity_new
(
    tenant_id String,
    minute DateTime('UTC'),
    category String,
    action String,
    outcome String,
    events AggregateFunction(uniqExact, String, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, minute, category, action, outcome);

INSERT INTO audit_counts_per_minute_identity_new
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    category,
    action,
    toString(outcome) AS outcome,
    uniqExactState(event_id, content_hash)
FROM audit_events
GROUP BY tenant_id, minute, category, action, outcome;

DROP TABLE IF EXISTS audit_counts_per_minute_identity_old;
RENAME TABLE audit_counts_per_minute TO audit_counts_per_minute_identity_old, audit_counts_per_minute_identity_new TO audit_counts_per_minute;
DROP TABLE IF EXISTS audit_counts_per_minute_identity_old;

DROP TABLE IF EXISTS audit_failures_per_minute_identity_new;
CREATE TABLE IF NOT EXISTS audit_failures_per_minute_identity_new
(
    tenant_id String,
    minute DateTime('UTC'),
    actor_id String,
    category String,
    outcome String,
    events AggregateFunction(uniqExact, String, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, minute, actor_id, category, outcome);

INSERT INTO audit_failures_per_minute_identity_new
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    actor_id,
    category,
    toString(outcome) AS outcome,
    uniqExactState(event_id, content_hash)
FROM audit_events
WHERE outcome != 'success'
GROUP BY tenant_id, minute, actor_id, category, outcome;

DROP TABLE IF EXISTS audit_failures_per_minute_identity_old;
RENAME TABLE audit_failures_per_minute TO audit_failures_per_minute_identity_old, audit_failures_per_minute_identity_new TO audit_failures_per_minute;
DROP TABLE IF EXISTS audit_failures_per_minute_identity_old;

CREATE MATERIALIZED VIEW IF NOT EXISTS audit_counts_per_minute_mv TO audit_counts_per_minute AS
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    category,
    action,
    toString(outcome) AS outcome,
    uniqExactState(event_id, content_hash) AS events
FROM audit_events
GROUP BY tenant_id, minute, category, action, outcome;

CREATE MATERIALIZED VIEW IF NOT EXISTS audit_failures_per_minute_mv TO audit_failures_per_minute AS
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    actor_id,
    category,
    toString(outcome) AS outcome,
    uniqExactState(event_id, content_hash) AS events
FROM audit_events
WHERE outcome != 'success'
GROUP BY tenant_id, minute, actor_id, category, outcome
