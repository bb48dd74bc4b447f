-- Legal holds: months of one tenant's events that retention must keep,
-- whatever the policy says. A release is a newer version of the same hold
-- (released_at set), so the history of every hold stays readable.
-- Times are epoch seconds; 0 means "not released".
CREATE TABLE IF NOT EXISTS attest_legal_holds
(
    hold_id String,
    tenant_id String,
    from_month UInt32,
    to_month UInt32,
    reason String,
    created_at UInt32,
    released_at UInt32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY hold_id
