-- Saved searches of the console: a name and the Search page's parameters
-- (query, tenant, window, columns) as JSON. Each id is saved once (version
-- 1) and deleting it writes version 2 with deleted = 1, so the newest
-- version of an id says whether it still exists and nothing is rewritten.
-- There are no user accounts yet: every analyst sees every saved search.
CREATE TABLE IF NOT EXISTS attest_saved_searches
(
    search_id String,
    name String,
    params String,
    created_at UInt32,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY search_id
