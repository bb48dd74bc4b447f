-- Console access keys: who may sign in to the console and which tenants'
-- events they may see. Only a SHA-256 of each key's secret is stored; the
-- key is shown once, when it is granted. `all_tenants` = 1 sees every
-- tenant and ignores `tenants`. Revoking writes a newer version with
-- revoked_at set, so the grant's history stays. Times are epoch seconds;
-- 0 means "not revoked".
CREATE TABLE IF NOT EXISTS attest_console_access
(
    access_id String,
    name String,
    tenants Array(String),
    all_tenants UInt8,
    secret_sha256 String,
    created_at UInt32,
    revoked_at UInt32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY access_id
