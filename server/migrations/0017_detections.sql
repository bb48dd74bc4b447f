-- Detection rules (docs/DESIGN.md, "Detections"). Every change writes the
-- whole rule again with a newer changed_ms; the newest row of a rule_id is
-- the rule, and deleted = 1 there means it is gone. ReplacingMergeTree
-- keeps the newest once merged; the queries take the newest before that.
CREATE TABLE IF NOT EXISTS attest_detection_rules
(
    rule_id String,
    tenant String,
    name String,
    query String,
    group_by String,
    threshold UInt64,
    window_minutes UInt64,
    enabled UInt8,
    deleted UInt8,
    changed_by String,
    changed_ms UInt64
)
ENGINE = ReplacingMergeTree(changed_ms)
ORDER BY rule_id;

-- One row per detection. firing_id is made from the rule, the group value
-- and the window's first minute, so a firing written twice (two evaluators,
-- or an insert retried) collapses to one row, and the queries read it once
-- before the merge.
CREATE TABLE IF NOT EXISTS attest_detection_firings
(
    firing_id String,
    rule_id String,
    rule_name String,
    tenant String,
    query String,
    group_by String,
    group_value String,
    window_from_ms Int64,
    window_to_ms Int64,
    until_ms Int64,
    events UInt64,
    threshold UInt64,
    fired_ms UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, firing_id)
