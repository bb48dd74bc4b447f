-- The tenants that have events, for the console's tenant choice. Listing
-- them with DISTINCT on audit_events read the tenant_id of every stored
-- event on each page a viewer of all tenants opened: 300 ms for 10 million
-- events on 2 cores, and past the search time limit after months of a busy
-- system. The view adds each inserted block's tenants (a few rows per block)
-- and merges collapse them, so the list reads a table of about one row per
-- tenant. A tenant stays listed after retention removed its events: it is
-- still a tenant an analyst may choose.
-- A migration that rebuilds audit_events must drop and create this view
-- again, as 0009 does with the rollups' views.
CREATE TABLE IF NOT EXISTS attest_tenants
(
    tenant_id String
)
ENGINE = ReplacingMergeTree()
ORDER BY tenant_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS attest_tenants_mv TO attest_tenants AS
SELECT DISTINCT tenant_id FROM audit_events;

-- The tenants stored before the view existed. After the view, so that a
-- tenant whose first event arrives meanwhile is in one of the two or both:
-- the same row twice in a ReplacingMergeTree, read with DISTINCT.
INSERT INTO attest_tenants SELECT DISTINCT tenant_id FROM audit_events;
