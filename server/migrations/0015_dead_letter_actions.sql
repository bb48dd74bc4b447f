-- What admins did with dead letters (docs/DESIGN.md, "Dead-letter inbox"):
-- one row per letter redriven or discarded, who did it, and the written
-- reason of a discard. The inbox shows every message of the dead-letter
-- topic that has no row here, so a letter leaves it only by an action, and
-- stays gone after a restart. A letter is named by where it sits in the
-- dead-letter topic (topic, partition, offset), which never changes.
-- Plain MergeTree: every action is kept (two admins acting on one letter at
-- once leave two rows); readers take the first per letter.
CREATE TABLE IF NOT EXISTS attest_dead_letter_actions
(
    dlq_topic String,
    dlq_partition Int32,
    dlq_offset Int64,
    action String,
    reason String,
    actor String,
    access_id String,
    event_id String,
    acted_at Int64
)
ENGINE = MergeTree()
ORDER BY (dlq_topic, dlq_partition, dlq_offset)
