-- API keys for ingest. Only a SHA-256 of each key's secret is stored; the
-- secret is shown once, at creation. A key is bound to one tenant and one
-- source service, optionally to some categories (empty: all). Revoking
-- writes a newer version with revoked_at set, so a key's history stays.
-- Times are epoch seconds; 0 means "not revoked".
CREATE TABLE IF NOT EXISTS attest_api_keys
(
    key_id String,
    tenant_id String,
    source_service String,
    categories Array(String),
    secret_sha256 String,
    description String,
    created_at UInt32,
    revoked_at UInt32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key_id
