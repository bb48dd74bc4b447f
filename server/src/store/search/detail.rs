//! One event in full, with every other event of its tenant sent with the
//! same id (docs/DESIGN.md, "Event identity").

use app::search_model::{EventDetail, SameIdEvent, MAX_SAME_ID};
use app::store::StoreError as ConsoleError;

use super::sql;
use crate::store::Store;

/// [`sql::DETAIL_COLUMNS`] in order.
#[derive(clickhouse::Row, serde::Deserialize)]
struct DetailRow {
    event_id: String,
    tenant_id: String,
    occurred_at: i64,
    received_at: i64,
    category: String,
    action: String,
    outcome: String,
    actor_id: String,
    actor_type: String,
    actor_ip: String,
    actor_user_agent: String,
    resource_type: String,
    resource_id: String,
    source_service: String,
    request_id: String,
    metadata_key: Vec<String>,
    metadata_value: Vec<String>,
    schema_id: u32,
    kafka_partition: i32,
    kafka_offset: i64,
    content_hash: String,
}

impl DetailRow {
    fn same_id(&self) -> SameIdEvent {
        SameIdEvent {
            content_hash: self.content_hash.clone(),
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            action: self.action.clone(),
            actor_id: self.actor_id.clone(),
            source_service: self.source_service.clone(),
        }
    }

    fn into_detail(self, same_id: Vec<SameIdEvent>) -> EventDetail {
        EventDetail {
            metadata: self
                .metadata_key
                .into_iter()
                .zip(self.metadata_value)
                .collect(),
            event_id: self.event_id,
            tenant_id: self.tenant_id,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            category: self.category,
            action: self.action,
            outcome: self.outcome,
            actor_id: self.actor_id,
            actor_type: self.actor_type,
            actor_ip: self.actor_ip,
            actor_user_agent: self.actor_user_agent,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            source_service: self.source_service,
            request_id: self.request_id,
            schema_id: self.schema_id,
            kafka_partition: self.kafka_partition,
            kafka_offset: self.kafka_offset,
            content_hash: self.content_hash,
            same_id,
        }
    }
}

/// Which of the events sent with one id a detail link means: the first
/// received among those with the hash prefix and time it names.
fn pick(rows: &[DetailRow], at_ms: Option<i64>, content: Option<&str>) -> Option<usize> {
    rows.iter().position(|r| {
        at_ms.is_none_or(|at| r.occurred_at == at)
            && content.is_none_or(|prefix| r.content_hash.starts_with(prefix))
    })
}

impl Store {
    pub async fn event_detail(
        &self,
        tenant: &str,
        event_id: &str,
        at_ms: Option<i64>,
        content: Option<&str>,
    ) -> Result<Option<EventDetail>, ConsoleError> {
        let query = self
            .client
            .query(&sql::detail_sql())
            .bind(tenant)
            .bind(event_id)
            .bind(MAX_SAME_ID as u64);
        let mut rows = self
            .limits
            .apply(query, self.limits.max_execution_seconds)
            .fetch_all::<DetailRow>()
            .await
            .map_err(|e| self.search_failed(e))?;
        let Some(shown) = pick(&rows, at_ms, content) else {
            return Ok(None);
        };
        let same_id = rows.iter().map(DetailRow::same_id).collect();
        Ok(Some(rows.swap_remove(shown).into_detail(same_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hash: &str, occurred_at: i64) -> DetailRow {
        DetailRow {
            event_id: "inv-1".into(),
            tenant_id: "acme".into(),
            occurred_at,
            received_at: 0,
            category: "admin".into(),
            action: "a".into(),
            outcome: "success".into(),
            actor_id: "x".into(),
            actor_type: "user".into(),
            actor_ip: String::new(),
            actor_user_agent: String::new(),
            resource_type: String::new(),
            resource_id: String::new(),
            source_service: "s".into(),
            request_id: String::new(),
            metadata_key: Vec::new(),
            metadata_value: Vec::new(),
            schema_id: 1,
            kafka_partition: 0,
            kafka_offset: 0,
            content_hash: hash.into(),
        }
    }

    #[test]
    fn a_link_picks_by_hash_prefix_and_time_else_the_first_received() {
        let rows = [row("aa11", 5), row("bb22", 5), row("cc33", 7)];
        assert_eq!(pick(&rows, None, None), Some(0));
        assert_eq!(pick(&rows, None, Some("bb")), Some(1));
        assert_eq!(pick(&rows, Some(7), None), Some(2));
        assert_eq!(pick(&rows, Some(5), Some("cc")), None);
        assert_eq!(pick(&rows, None, Some("dd")), None);
        assert_eq!(pick(&[], None, None), None);
    }
}
