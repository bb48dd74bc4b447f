-- done-when-column: attest_integrity_leaf_sets.received_ats
-- What Attest recorded of each sealed event besides its content: its
-- `received_at` and `schema_id`, parallel to the set's other arrays
-- (docs/INTEGRITY.md, sections 8 and 15). With them the check can recompute
-- a leaf from the content hash of another stored copy of the same event:
-- an exact re-send stored at two offsets is one identity, and
-- audit_events (a ReplacingMergeTree) keeps one of the two rows when it
-- merges, so the other leaf's row is gone without anything being lost.
-- Sets stored before this migration have empty arrays; their leaves are
-- checked as before. One ALTER adds both columns, so an interrupted run
-- leaves either both or neither, and the line above records a run whose
-- columns are already there instead of failing on them.
ALTER TABLE attest_integrity_leaf_sets
    ADD COLUMN received_ats Array(Int64),
    ADD COLUMN schema_ids Array(UInt32)
