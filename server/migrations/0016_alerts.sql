-- Pipeline alerts (docs/DESIGN.md, "Alerts"). Every time an alert fires or
-- resolves, one row; an alert fires while it has a 'firing' row and no
-- 'resolved' one. ReplacingMergeTree on (alert_id, state): a row written
-- twice (an insert retried after a lost answer) collapses, and the queries
-- read it once before that.
CREATE TABLE IF NOT EXISTS attest_alert_changes
(
    alert_id String,
    rule String,
    state String,
    summary String,
    at_ms UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, state);

-- Every attempt to deliver a message to a webhook: alerts now, detections
-- later (subject says which). The webhook by name, never its URL.
CREATE TABLE IF NOT EXISTS attest_webhook_deliveries
(
    subject String,
    webhook String,
    attempt UInt32,
    at_ms UInt64,
    status UInt16,
    error String,
    duration_ms UInt64
)
ENGINE = MergeTree
ORDER BY (at_ms, subject);

-- Rule thresholds saved by admins in the console, every version kept; the
-- newest applies, over the configured defaults.
CREATE TABLE IF NOT EXISTS attest_alert_rules
(
    settings String,
    changed_by String,
    changed_ms UInt64
)
ENGINE = MergeTree
ORDER BY changed_ms
