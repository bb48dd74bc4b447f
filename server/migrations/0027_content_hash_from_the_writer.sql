-- content_hash becomes DEFAULT instead of MATERIALIZED, with the same
-- expression: the writer now sends each row's content hash with the row,
-- since it computes it anyway to seal the row (docs/INTEGRITY.md) and
-- computing it in Rust costs about half of what this expression costs
-- ClickHouse per inserted row (docs/DESIGN.md, "Where an event's CPU
-- goes"). A row inserted without it (by hand, or an INSERT … SELECT)
-- still gets it from the expression, so the definition stays the one of
-- migration 0009, and server/tests/content_hash.rs checks that the two
-- agree. Only the column's default changes: no part is rewritten, and
-- running it again changes nothing.
ALTER TABLE audit_events MODIFY COLUMN content_hash String DEFAULT lower(hex(SHA256(concat(
        toString(length(event_id)), ':', event_id,
        toString(length(tenant_id)), ':', tenant_id,
        toString(length(toString(occurred_at))), ':', toString(occurred_at),
        toString(length(category)), ':', category,
        toString(length(action)), ':', action,
        toString(length(outcome)), ':', toString(outcome),
        toString(length(actor_id)), ':', actor_id,
        toString(length(actor_type)), ':', toString(actor_type),
        toString(length(actor_ip)), ':', actor_ip,
        toString(length(actor_user_agent)), ':', actor_user_agent,
        toString(length(resource_type)), ':', toString(resource_type),
        toString(length(resource_id)), ':', resource_id,
        toString(length(source_service)), ':', toString(source_service),
        toString(length(request_id)), ':', request_id,
        toString(length(toString(length(metadata.key)))), ':', toString(length(metadata.key)),
        arrayStringConcat(arrayMap(entry -> concat(
            toString(length(tupleElement(entry, 1))), ':', tupleElement(entry, 1),
            toString(length(tupleElement(entry, 2))), ':', tupleElement(entry, 2)
        ), arraySort(arrayMap((k, v) -> (k, v), metadata.key, metadata.value))))
    ))))
