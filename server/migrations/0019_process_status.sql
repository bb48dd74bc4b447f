-- Every process's own status (docs/DESIGN.md, "Every process on the
-- pipeline page"): one row per `attest serve` / `attest writer` process and
-- report, written every trends.sample_every by the process itself. The page
-- reads the newest row of each process; one whose newest row is older than
-- three of its intervals shows as silent. Partitioned by UTC day (epoch
-- days) and dropped a day at a time past trends.keep_days, as 0018's
-- samples: ClickHouse 18.16 has no TTL. Plain MergeTree: rows are never
-- updated, only added.
CREATE TABLE IF NOT EXISTS attest_process_status
(
    at_ms UInt64,
    process String,
    host String,
    roles Array(String),
    version String,
    started_at_ms UInt64,
    interval_ms UInt64,
    writer_state String,
    writer_detail String,
    last_error String,
    last_insert_ms UInt64,
    partitions Array(String),
    spool_events Int64,
    spool_oldest_ms UInt64
)
ENGINE = MergeTree
PARTITION BY intDiv(at_ms, 86400000)
ORDER BY (process, at_ms)
