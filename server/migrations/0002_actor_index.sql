-- requires: 20.1
-- Data-skipping index for "everything by this actor" lookups. Skipping
-- indexes do not exist on 18.16, so this applies only where version() allows;
-- on an older server it waits and applies after the upgrade.
ALTER TABLE audit_events ADD INDEX IF NOT EXISTS idx_actor_id actor_id TYPE bloom_filter(0.01) GRANULARITY 4
