-- What each console access grant may do beyond reading its tenants'
-- events: 'analyst' or 'admin' (docs/DESIGN.md, "Roles"). A table of its
-- own rather than a column of attest_console_access: 18.16 cannot add a
-- column idempotently, and every migration must be safe to run twice. A
-- grant without a row here (every grant made before roles existed) is an
-- analyst. The role row is written before the grant's own row, so a grant
-- never exists, even for a moment, with more than it was given.
CREATE TABLE IF NOT EXISTS attest_console_roles
(
    access_id String,
    role String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY access_id
