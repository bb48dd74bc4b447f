-- requires: 21.1
-- Where the server allows it: dictionary-encoded strings for the repetitive
-- columns outside the sorting key (smaller, faster to filter and facet), and
-- a DateTime64 view of occurred_at for queries that want millisecond time.
-- Changing a column to the type it already has is a no-op, so re-running is
-- harmless.
ALTER TABLE audit_events MODIFY COLUMN IF EXISTS outcome LowCardinality(String);
ALTER TABLE audit_events MODIFY COLUMN IF EXISTS actor_type LowCardinality(String);
ALTER TABLE audit_events MODIFY COLUMN IF EXISTS resource_type LowCardinality(String);
ALTER TABLE audit_events MODIFY COLUMN IF EXISTS source_service LowCardinality(String);
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS occurred_at_dt64 DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(occurred_at, 'UTC')
