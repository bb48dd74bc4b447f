-- Console sessions that were signed out before they expired. Every server
-- process re-reads the rows whose session has not expired yet every
-- console.access_refresh, so a sign-out ends that session everywhere.
-- Times are epoch milliseconds. Rows of expired sessions are never read
-- again; retention of this table is a matter of disk, not of correctness.
CREATE TABLE IF NOT EXISTS attest_console_sign_outs
(
    session_id String,
    access_id String,
    signed_out_at Int64,
    expires_at Int64
)
ENGINE = ReplacingMergeTree()
ORDER BY session_id
