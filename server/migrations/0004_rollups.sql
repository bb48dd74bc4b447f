-- Per-minute rollups for dashboards. A batch re-inserted after a writer crash
-- passes through these views a second time, so they count distinct event_ids
-- (uniqExact states) rather than rows: a re-delivered event cannot inflate a
-- dashboard, and the backfill below can run any number of times.
-- Minutes are computed from occurred_at, not the MATERIALIZED event_time,
-- because a view sees the block as inserted.
CREATE TABLE IF NOT EXISTS audit_counts_per_minute
(
    tenant_id String,
    minute DateTime('UTC'),
    category String,
    action String,
    outcome String,
    events AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, minute, category, action, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS audit_counts_per_minute_mv TO audit_counts_per_minute AS
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    category,
    action,
    outcome,
    uniqExactState(event_id) AS events
FROM audit_events
GROUP BY tenant_id, minute, category, action, outcome;

-- Failed and denied attempts per actor: brute force, privilege probing.
CREATE TABLE IF NOT EXISTS audit_failures_per_minute
(
    tenant_id String,
    minute DateTime('UTC'),
    actor_id String,
    category String,
    outcome String,
    events AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, minute, actor_id, category, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS audit_failures_per_minute_mv TO audit_failures_per_minute AS
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    actor_id,
    category,
    outcome,
    uniqExactState(event_id) AS events
FROM audit_events
WHERE outcome != 'success'
GROUP BY tenant_id, minute, actor_id, category, outcome;

-- Backfill what the table held before the views existed. Idempotent: the
-- states count distinct event_ids, so rows counted twice count once.
INSERT INTO audit_counts_per_minute
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    category,
    action,
    outcome,
    uniqExactState(event_id)
FROM audit_events
GROUP BY tenant_id, minute, category, action, outcome;

INSERT INTO audit_failures_per_minute
SELECT
    tenant_id,
    toStartOfMinute(toDateTime(intDiv(occurred_at, 1000), 'UTC')) AS minute,
    actor_id,
    category,
    outcome,
    uniqExactState(event_id)
FROM audit_events
WHERE outcome != 'success'
GROUP BY tenant_id, minute, actor_id, category, outcome
