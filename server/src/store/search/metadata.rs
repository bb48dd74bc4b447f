//! Metadata keys as facets and suggestions: the most common keys of a
//! search's events, one key's top values (for its facet and for "Count
//! by"), and the keys seen recently in a viewer's tenants (cached briefly,
//! for the query bar).
//!
//! Counted like the other facets: distinct event identities
//! (`uniqExact(content_hash)`), so copies a
//! re-delivered batch left stored count once. Only keys the query language
//! can name (`metadata.<key>`, [`app::query::is_metadata_key`]) are listed,
//! so every key offered can be clicked into a query that parses.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::query::{is_metadata_key, METADATA_KEY_RULE};
use app::search_model::{
    FacetValue, MetadataKey, MetadataValues, SearchQuery, FACET_VALUES, METADATA_FACET_KEYS,
    RECENT_METADATA_DAYS, RECENT_METADATA_KEYS,
};
use app::search_state::TimeWindow;
use app::store::StoreError as ConsoleError;

use super::sql::{count_sql, Filter, IDENTITY};
use super::Plan;
use crate::store::Store;

/// [`app::query::is_metadata_key`] as an RE2 pattern, for ClickHouse to
/// drop the keys no query could name before it ranks them. The unit test
/// below holds the two together.
const KEY_PATTERN: &str = "^[A-Za-z0-9_.-]+$";

/// The most common metadata keys of the matching events. The keys are
/// unfolded per row (each event lists a key once: ingest refuses a key
/// given twice), then each key's distinct events are counted.
pub(crate) fn keys_sql(filter: &str) -> String {
    format!(
        "SELECT key, uniqExact({IDENTITY}) AS events \
         FROM (SELECT {IDENTITY}, metadata.key AS keys FROM audit_events {filter}) \
         ARRAY JOIN keys AS key \
         WHERE match(key, '{KEY_PATTERN}') \
         GROUP BY key \
         ORDER BY events DESC, key \
         LIMIT ?"
    )
}

/// `filter` narrowed to the rows that carry one key; its value (the key)
/// after the filter's.
fn with_key(filter: &str) -> String {
    format!("{filter} AND has(metadata.key, ?)")
}

/// The most frequent values of one key over the matching events, ties by
/// value. The inner `has` keeps only the rows that have the key before
/// their arrays are unfolded. Values after the filter's: the key twice,
/// then the limit.
pub(crate) fn values_sql(filter: &str) -> String {
    format!(
        "SELECT value, uniqExact({IDENTITY}) AS events \
         FROM (SELECT {IDENTITY}, metadata.key AS keys, metadata.value AS vals \
         FROM audit_events {}) \
         ARRAY JOIN keys AS key, vals AS value \
         WHERE key = ? \
         GROUP BY value \
         ORDER BY events DESC, value \
         LIMIT ?",
        with_key(filter)
    )
}

/// Distinct matching events that carry one key, the rows [`values_sql`]
/// counts before its limit: an event lists a key once (ingest refuses a
/// key given twice) and a copy has the same metadata (it is part of the
/// identity), so this is exactly what all of the key's values add up to.
/// Values after the filter's: the key.
pub(crate) fn key_events_sql(filter: &str) -> String {
    count_sql(&with_key(filter))
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct KeyRow {
    key: String,
    events: u64,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct ValueRow {
    value: String,
    events: u64,
}

/// How long the recent keys of one set of tenants are reused: the query
/// bar asks on every page, and keys of the last week change slowly.
const RECENT_KEYS_TTL: Duration = Duration::from_secs(60);

/// Sets of tenants remembered at once; beyond it the expired ones go, and
/// if none has, all of them (a burst of distinct grants only costs
/// queries).
const RECENT_KEYS_ENTRIES: usize = 256;

/// The recent keys per set of tenants, shared by every request of the
/// process (the store is cloned per request; this is behind an `Arc`).
/// Keyed by the exact, sorted tenant list a viewer's scope gave, so one
/// viewer's answer never reaches a viewer of other tenants.
#[derive(Default)]
pub struct RecentKeys {
    entries: Mutex<HashMap<Vec<String>, Remembered>>,
    /// One read at a time per set of tenants. A Search page asks twice as
    /// it hydrates (the query bar and the column chooser); the second ask
    /// waits for the first's answer instead of running the same week-long
    /// scan beside it.
    reading: Mutex<HashMap<Vec<String>, Arc<tokio::sync::Mutex<()>>>>,
}

/// When the keys of one set of tenants were read, and the keys.
type Remembered = (Instant, Vec<MetadataKey>);

impl RecentKeys {
    /// The keys remembered for exactly `tenants`, if still fresh at `now`.
    fn get(&self, tenants: &[String], now: Instant) -> Option<Vec<MetadataKey>> {
        let entries = self.entries.lock().ok()?;
        let (at, keys) = entries.get(tenants)?;
        (now.saturating_duration_since(*at) < RECENT_KEYS_TTL).then(|| keys.clone())
    }

    fn put(&self, tenants: Vec<String>, keys: Vec<MetadataKey>, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= RECENT_KEYS_ENTRIES {
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < RECENT_KEYS_TTL);
            if entries.len() >= RECENT_KEYS_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(tenants, (now, keys));
    }

    /// The keys remembered for `tenants`, or those `read` gives, which are
    /// then remembered. While one ask reads, the others for the same
    /// tenants wait and take its answer; if it fails, the next one reads.
    async fn get_or_read<F, R>(
        &self,
        tenants: Vec<String>,
        read: F,
    ) -> Result<Vec<MetadataKey>, ConsoleError>
    where
        F: FnOnce() -> R,
        R: Future<Output = Result<Vec<MetadataKey>, ConsoleError>>,
    {
        if let Some(keys) = self.get(&tenants, Instant::now()) {
            return Ok(keys);
        }
        let gate = self
            .reading
            .lock()
            .ok()
            .map(|mut reading| Arc::clone(reading.entry(tenants.clone()).or_default()));
        let answer = match &gate {
            Some(gate) => {
                let _turn = gate.lock().await;
                match self.get(&tenants, Instant::now()) {
                    Some(keys) => Ok(keys),
                    None => self.read_and_put(&tenants, read).await,
                }
            }
            // A poisoned map only loses the coalescing.
            None => self.read_and_put(&tenants, read).await,
        };
        if let (Some(gate), Ok(mut reading)) = (gate, self.reading.lock()) {
            // The map's and this ask's: nobody else waits for this gate.
            if Arc::strong_count(&gate) <= 2 {
                reading.remove(&tenants);
            }
        }
        answer
    }

    async fn read_and_put<F, R>(
        &self,
        tenants: &[String],
        read: F,
    ) -> Result<Vec<MetadataKey>, ConsoleError>
    where
        F: FnOnce() -> R,
        R: Future<Output = Result<Vec<MetadataKey>, ConsoleError>>,
    {
        let keys = read().await?;
        self.put(tenants.to_vec(), keys.clone(), Instant::now());
        Ok(keys)
    }
}

impl Store {
    /// The `limit` most common metadata keys of the events `query` matches.
    async fn metadata_keys(
        &self,
        query: &SearchQuery,
        limit: u32,
        now_ms: i64,
    ) -> Result<Vec<MetadataKey>, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let filter = Filter::new(&plan.compiled, &query.tenants(), plan.span(), None);
        let rows = self
            .search_query(&keys_sql(&filter.sql), &filter)
            .bind(limit)
            .fetch_all::<KeyRow>()
            .await
            .map_err(|e| self.search_failed(e))?;
        Ok(rows
            .into_iter()
            .map(|r| MetadataKey {
                key: r.key,
                events: r.events,
            })
            .collect())
    }

    /// The facet panel's metadata keys.
    pub(super) async fn metadata_facet_keys(
        &self,
        query: &SearchQuery,
        now_ms: i64,
    ) -> Result<Vec<MetadataKey>, ConsoleError> {
        self.metadata_keys(query, METADATA_FACET_KEYS, now_ms).await
    }

    /// See [`app::store::EventStore::metadata_values`].
    pub async fn metadata_values(
        &self,
        query: &SearchQuery,
        key: &str,
        now_ms: i64,
    ) -> Result<MetadataValues, ConsoleError> {
        if !is_metadata_key(key) {
            return Err(ConsoleError::Invalid(format!("key: {METADATA_KEY_RULE}")));
        }
        let plan = Plan::new(query, now_ms)?;
        let filter = Filter::new(&plan.compiled, &query.tenants(), plan.span(), None);
        Ok(MetadataValues {
            key: key.to_owned(),
            values: self.top_values(&filter, key, FACET_VALUES as u64).await?,
        })
    }

    /// The `limit` most frequent values of `key` (one the caller checked)
    /// over the rows `filter` selects.
    async fn top_values(
        &self,
        filter: &Filter,
        key: &str,
        limit: u64,
    ) -> Result<Vec<FacetValue>, ConsoleError> {
        let rows = self
            .search_query(&values_sql(&filter.sql), filter)
            .bind(key)
            .bind(key)
            .bind(limit)
            .fetch_all::<ValueRow>()
            .await
            .map_err(|e| self.search_failed(e))?;
        Ok(rows
            .into_iter()
            .map(|r| FacetValue {
                value: r.value,
                events: r.events,
            })
            .collect())
    }

    /// "Count by" a metadata key (one the caller checked): its top `limit`
    /// values and the distinct events that carry it at all, both over the
    /// rows `filter` selects.
    pub(super) async fn count_by_key(
        &self,
        filter: &Filter,
        key: &str,
        limit: u64,
    ) -> Result<(Vec<FacetValue>, u64), ConsoleError> {
        let with_key = self
            .search_query(&key_events_sql(&filter.sql), filter)
            .bind(key)
            .fetch_one::<u64>();
        let (values, with_key) = futures::join!(self.top_values(filter, key, limit), with_key);
        Ok((values?, with_key.map_err(|e| self.search_failed(e))?))
    }

    /// The metadata keys of the last [`RECENT_METADATA_DAYS`] days in
    /// `tenants` (empty: every tenant), most frequent first; from the
    /// cache when it was asked within [`RECENT_KEYS_TTL`].
    /// `turn` is awaited, and its output held, only while the keys are
    /// read from the table (not when the cache answers).
    pub async fn recent_metadata_keys<T>(
        &self,
        tenants: &[String],
        now_ms: i64,
        turn: impl Future<Output = T>,
    ) -> Result<Vec<MetadataKey>, ConsoleError> {
        let mut tenants = tenants.to_vec();
        tenants.sort();
        tenants.dedup();
        let days = RECENT_METADATA_DAYS * 86_400_000;
        let query = SearchQuery {
            q: String::new(),
            tenant: None,
            window: TimeWindow::Between {
                from_ms: now_ms.saturating_sub(days),
                to_ms: now_ms,
            },
            cursor: None,
            sort: Default::default(),
            limit: RECENT_METADATA_KEYS,
            within: tenants.clone(),
            metadata_keys: Vec::new(),
        };
        self.recent_keys
            .get_or_read(tenants, || async {
                let _turn = turn.await;
                self.metadata_keys(&query, RECENT_METADATA_KEYS, now_ms)
                    .await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_pattern_is_the_query_language_s_rule() {
        // The pattern's class, spelled out: what is_metadata_key accepts.
        let class = KEY_PATTERN
            .strip_prefix("^[")
            .and_then(|p| p.strip_suffix("]+$"))
            .unwrap_or_default();
        assert_eq!(class, "A-Za-z0-9_.-");
        for c in (0u8..=127).map(char::from).chain(['é', 'ß', '€']) {
            let in_class = c.is_ascii_alphanumeric() || "_.-".contains(c);
            assert_eq!(is_metadata_key(&c.to_string()), in_class, "{c:?}");
        }
        assert!(!is_metadata_key(""));
    }

    #[test]
    fn metadata_queries_bind_every_value() {
        let keys = keys_sql("WHERE x = ?");
        assert_eq!(keys.matches('?').count(), 2);
        assert!(keys.contains("uniqExact(content_hash) AS events"));
        assert!(keys.ends_with("ORDER BY events DESC, key LIMIT ?"));
        let values = values_sql("WHERE x = ?");
        assert_eq!(values.matches('?').count(), 4);
        assert!(values.contains("WHERE x = ? AND has(metadata.key, ?))"));
        assert!(values.contains("uniqExact(content_hash) AS events"));
        // The events with the key are the rows the values query unfolds.
        let with = key_events_sql("WHERE x = ?");
        assert_eq!(
            with,
            "SELECT uniqExact(content_hash) AS events \
             FROM audit_events WHERE x = ? AND has(metadata.key, ?)"
        );
        assert!(values.contains(&with_key("WHERE x = ?")));
    }

    #[test]
    fn recent_keys_are_kept_per_tenant_set_and_expire() {
        let cache = RecentKeys::default();
        let now = Instant::now();
        let acme = vec!["acme".to_owned()];
        let keys = vec![MetadataKey {
            key: "ticket".into(),
            events: 3,
        }];
        assert_eq!(cache.get(&acme, now), None);
        cache.put(acme.clone(), keys.clone(), now);
        assert_eq!(cache.get(&acme, now), Some(keys.clone()));
        // Another set of tenants, every tenant included, is another entry.
        assert_eq!(cache.get(&["globex".to_owned()], now), None);
        assert_eq!(cache.get(&[], now), None);
        assert_eq!(
            cache.get(&["acme".to_owned(), "globex".to_owned()], now),
            None
        );
        // An old entry is not used.
        let later = now + RECENT_KEYS_TTL;
        assert_eq!(cache.get(&acme, later), None);
        // Full: the expired entries make room, then all if none has expired.
        let cache = RecentKeys::default();
        for n in 0..RECENT_KEYS_ENTRIES {
            cache.put(vec![format!("t{n}")], keys.clone(), now);
        }
        cache.put(vec!["new".to_owned()], keys.clone(), later);
        let size = |c: &RecentKeys| c.entries.lock().map(|e| e.len()).unwrap_or(0);
        assert_eq!(size(&cache), 1);
        for n in 0..RECENT_KEYS_ENTRIES + 3 {
            cache.put(vec![format!("u{n}")], keys.clone(), later);
        }
        assert!(size(&cache) <= RECENT_KEYS_ENTRIES);
        assert_eq!(cache.get(&["new".to_owned()], later), None);
    }

    /// Asks for the same tenants at once run one read and share its
    /// answer; a failed read leaves the next ask to read again; other
    /// tenants read apart.
    #[tokio::test]
    async fn asks_at_once_share_one_read() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = RecentKeys::default();
        let reads = AtomicUsize::new(0);
        let keys = vec![MetadataKey {
            key: "ticket".into(),
            events: 3,
        }];
        let read = |fail: bool| {
            let reads = &reads;
            let keys = keys.clone();
            move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                if fail {
                    Err(ConsoleError::Unavailable("down".into()))
                } else {
                    Ok(keys)
                }
            }
        };
        let acme = vec!["acme".to_owned()];
        let (a, b) = tokio::join!(
            cache.get_or_read(acme.clone(), read(false)),
            cache.get_or_read(acme.clone(), read(false))
        );
        assert_eq!((a.ok(), b.ok()), (Some(keys.clone()), Some(keys.clone())));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let waiting = |c: &RecentKeys| c.reading.lock().map(|r| r.len()).unwrap_or(9);
        assert_eq!(waiting(&cache), 0);

        let globex = vec!["globex".to_owned()];
        let (a, b) = tokio::join!(
            cache.get_or_read(globex.clone(), read(true)),
            cache.get_or_read(globex.clone(), read(false))
        );
        assert!(a.is_err());
        assert_eq!(b.ok(), Some(keys.clone()));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        assert_eq!(waiting(&cache), 0);
    }
}
