-- Pipeline trends (docs/DESIGN.md, "Pipeline trends"): the pipeline page's
-- figures, one row per series and sample, written every trends.sample_every
-- by the one elected sampler. at_ms is the start of the sampling interval.
-- Partitioned by UTC day (epoch days): ClickHouse 18.16 has no TTL, so
-- retention drops whole days older than trends.keep_days. Plain MergeTree,
-- not Replacing: a sample written twice (two samplers across a hand-over)
-- stays visible, so it can be noticed; the charts reduce each bucket with
-- avg/max, which a duplicate does not change much.
CREATE TABLE IF NOT EXISTS attest_pipeline_samples
(
    at_ms UInt64,
    series String,
    value Float64,
    sampler String
)
ENGINE = MergeTree
PARTITION BY intDiv(at_ms, 86400000)
ORDER BY (series, at_ms)
