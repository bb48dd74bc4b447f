-- Saved searches belong to the console access grant that saved them: only
-- that grant lists, opens or deletes them. They move to a table with an
-- owner column (ClickHouse 18.16 cannot add a column idempotently, and
-- every migration must be safe to run twice). Searches saved before had no
-- owner: they stay in attest_saved_searches, listed to no one.
CREATE TABLE IF NOT EXISTS attest_saved_searches_owned
(
    search_id String,
    owner String,
    name String,
    params String,
    created_at UInt32,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (owner, search_id)
