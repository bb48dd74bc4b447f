-- Redaction approvals in a table of their own (docs/INTEGRITY.md, section
-- 14). Until now an approval was a version of its request's row in the
-- ReplacingMergeTree `attest_redaction_requests`, and a background merge
-- keeps only the newest version: two admins approving at once stored two
-- versions, and a merge before the first record was signed could take
-- away the earlier approval, so that a later run counted another one.
-- Here every distinct approval is its own sorting key, so a merge only
-- collapses one approval stored twice and never drops a different one.
CREATE TABLE IF NOT EXISTS attest_redaction_approvals
(
    request_id String,
    approved_at Int64,
    approved_by_id String,
    approved_by String
)
ENGINE = ReplacingMergeTree()
ORDER BY (request_id, approved_at, approved_by_id, approved_by);

-- The approvals stored as request versions before this migration (those
-- a merge has not taken yet). Run twice, it stores the same rows, which
-- collapse.
INSERT INTO attest_redaction_approvals (request_id, approved_at, approved_by_id, approved_by)
SELECT DISTINCT request_id, approved_at, approved_by_id, approved_by
FROM attest_redaction_requests
WHERE approved_at > 0
