//! The dashboard's panels: the same compiled query, tenants, window and
//! snapshot as Search ([`super::sql::Filter`]), grouped by time bucket or
//! actor instead of paged. Every count is of distinct event identities, as
//! Search counts, so a bar's value is what Search finds behind it.
//!
//! The source is the raw table, not the per-minute rollups: the rollups
//! hold neither the query language's fields (actor type, resource,
//! metadata, free text) nor `received_at`, so they could not answer a
//! narrowed panel, nor equal Search's count. docs/DESIGN.md ("Dashboard")
//! has the measurement.

use app::dashboard_model::{
    ActorCount, SeriesBy, SeriesRow, SlotRow, TimeSeries, Timeline, TopActors, FAILED_OUTCOMES,
};
use app::dashboard_model::{
    Breakdown, Changes, HeatMap, NewActor, NewActors, Panel, PanelData, TopField, TopValues,
    ValueCount, CHANGE_ROWS, PANEL_ROWS,
};
use app::dashboard_model::{Bucket, TOP_ACTORS};
use app::search_model::SearchQuery;
use app::store::StoreError as ConsoleError;

use super::sql::{Filter, IDENTITY};
use super::{bind_all, Plan};
use crate::store::Store;

/// Distinct events per bucket and value of `column`. A bucket starts at
/// `intDiv(t - offset, width) * width + offset`: whole minutes, hours and
/// UTC days, and weeks from Monday (the offset). Integer arithmetic on
/// `occurred_at` runs on 18.16 and current releases alike and puts each
/// event in exactly the bucket [`Bucket::start_of`] names. The bucket's
/// values come first, in text order, then the filter's.
pub(crate) fn series_sql(by: SeriesBy, filter: &str) -> String {
    let column = by.column();
    format!(
        "SELECT toInt64(intDiv(occurred_at - ?, ?) * ? + ?) AS bucket_ms, {column} AS key, \
         uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} \
         GROUP BY bucket_ms, key \
         ORDER BY bucket_ms, key"
    )
}

/// The first `n` of the grouped rows `row` (a tuple expression over the
/// outer query's columns), ordered by `key` (a tuple, ascending), keeping
/// only rows for which `keep` (over `row`) holds: one list of a panel,
/// sorted inside ClickHouse from a grouping the panel reads once for
/// several numbers. `arraySort` with a key array and `groupArray` of
/// tuples run on 18.16 as on current releases.
fn ranked(row: &str, key: &str, keep: Option<&str>, n: u32) -> String {
    let sorted = format!("arraySort((row, key) -> key, groupArray({row}), groupArray({key}))");
    let kept = match keep {
        Some(condition) => format!("arrayFilter(row -> {condition}, {sorted})"),
        None => sorted,
    };
    format!("arraySlice({kept}, 1, {n})")
}

/// Both top-actor lists and both totals in one pass over the matching
/// events: distinct events per actor, and those of them that `failed` (the
/// compiled [`FAILED_OUTCOMES`] condition, whose values bind first) also
/// holds, then the lists sorted by count, ties by name.
///
/// The totals are the sums over actors. That is exact, not an estimate:
/// an identity's content hash covers its actor and outcome, so every
/// identity belongs to exactly one actor, and a re-delivered copy to the
/// same actor as its original. One scan instead of four (two lists, two
/// counts) is what brought this panel near its bare query (docs/DESIGN.md,
/// "Dashboard").
pub(crate) fn top_actors_sql(failed: &str, filter: &str) -> String {
    let top = |column: &str| {
        ranked(
            &format!("(actor_id, {column})"),
            &format!("(-toInt64({column}), actor_id)"),
            Some("tupleElement(row, 2) > 0"),
            TOP_ACTORS,
        )
    };
    format!(
        "SELECT sum(events) AS total, sum(failures) AS failed, \
         {} AS by_events, {} AS by_failures \
         FROM (SELECT actor_id, uniqExact({IDENTITY}) AS events, \
         uniqExactIf({IDENTITY}, {failed}) AS failures \
         FROM audit_events {filter} \
         GROUP BY actor_id)",
        top("events"),
        top("failures")
    )
}

/// The most frequent values of each of `fields`' columns, ties by value,
/// and the total of matching events, from one scan: `ARRAY JOIN` pairs
/// every matching row with each of its columns (as the field's position in
/// `fields`), so the events are read and filtered once however many lists
/// the panel shows (measured on the search bench's largest tenant over 30
/// days: 90 ms for both failure-source lists, against 80 ms for each as a
/// query of its own). One row per field that has matching events, in
/// field order; none when nothing matches. Events without a value (no IP
/// sent) count in the total but are left out of the list: Search cannot
/// name an empty value. The total is the sum over the values, exact for
/// the reason [`top_actors_sql`] gives: every breakdown column (address,
/// service, action, actor, tenant) is covered by the identity, so an
/// identity has one value. The columns come from [`TopField::column`],
/// fixed names.
pub(crate) fn top_values_sql(fields: &[TopField], filter: &str) -> String {
    let pairs = fields
        .iter()
        .enumerate()
        .map(|(at, field)| format!("(toUInt8({at}), {})", field.column()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT field, sum(events) AS total, {} AS rows \
         FROM (SELECT tupleElement(pair, 1) AS field, tupleElement(pair, 2) AS value, \
         uniqExact({IDENTITY}) AS events \
         FROM audit_events ARRAY JOIN [{pairs}] AS pair {filter} \
         GROUP BY field, value) \
         GROUP BY field ORDER BY field",
        ranked(
            "(value, events)",
            "(-toInt64(events), value)",
            Some("tupleElement(row, 1) != ''"),
            PANEL_ROWS
        )
    )
}

/// Actors (per tenant: each tenant names its own) with matching events in
/// the window and no event at all before it, in the same tenants and up to
/// the same snapshot. The "before" side ignores the analyst's query: an
/// actor who only logged in before is not new because they now do
/// something else. Its values follow the filter's: the window's start in
/// seconds and ms, the snapshot, the tenants.
///
/// With one tenant the "before" set holds actor ids alone: the same set,
/// since the tenant is fixed, and ClickHouse builds and probes a set of
/// single strings about four times faster than one of pairs (160 against
/// 630 ms for the search bench's largest tenant over 30 days on 18.16).
fn new_actors_from(filter: &str, tenants: usize) -> String {
    let (key, before) = match tenants {
        1 => ("actor_id", "actor_id"),
        _ => ("(tenant_id, actor_id)", "tenant_id, actor_id"),
    };
    format!(
        "FROM audit_events {filter} \
         AND {key} NOT IN (SELECT {before} FROM audit_events \
         WHERE event_time <= toDateTime(?, 'UTC') AND occurred_at < ? AND received_at <= ?{}) \
         GROUP BY tenant_id, actor_id",
        crate::store::queries::tenant_condition(tenants)
    )
}

/// How many new actors there are, and the newest of them first (one pass:
/// the "before" side is the costly part, so it is not run twice for a
/// list and a count).
pub(crate) fn new_actors_sql(filter: &str, tenants: usize) -> String {
    format!(
        "SELECT count() AS total, {} AS rows \
         FROM (SELECT tenant_id, actor_id, min(occurred_at) AS first_ms, \
         uniqExact({IDENTITY}) AS events {})",
        ranked(
            "(tenant_id, actor_id, first_ms, events)",
            "(-first_ms, tenant_id, actor_id)",
            None,
            PANEL_ROWS
        ),
        new_actors_from(filter, tenants)
    )
}

/// Distinct events per UTC quarter hour. Every zone's offset is a whole
/// number of quarter hours, so each quarter lies in one local hour, and the
/// server maps quarters to weekday and hour in the chosen zone (with the
/// same tz database that names the cells' Search stretches).
pub(crate) fn quarters_sql(filter: &str) -> String {
    format!(
        "SELECT toInt64(intDiv(occurred_at, 900000) * 900000) AS quarter_ms, \
         uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} \
         GROUP BY quarter_ms \
         ORDER BY quarter_ms"
    )
}

/// Distinct events per slot ([`Timeline::slot_ms`]: a minute or a quarter
/// hour from the epoch), category and outcome: panels 1, 2 and 8 from one
/// reading of the window's events. Most of a panel's time is reading and
/// filtering the rows, so this grouping costs little more than one of the
/// three queries it replaces (docs/DESIGN.md, "One scan for the three time
/// panels"). The slot width binds first, then the filter's values.
pub(crate) fn timeline_sql(filter: &str) -> String {
    format!(
        "SELECT toInt64(intDiv(occurred_at, ?) * ?) AS slot_ms, category, outcome, \
         uniqExact({IDENTITY}) AS events \
         FROM audit_events {filter} \
         GROUP BY slot_ms, category, outcome"
    )
}

/// [`top_actors_sql`]'s one row.
#[derive(clickhouse::Row, serde::Deserialize)]
struct TopActorsRow {
    total: u64,
    failed: u64,
    by_events: Vec<ActorCount>,
    by_failures: Vec<ActorCount>,
}

/// One of [`top_values_sql`]'s rows: `field` is a position in the panel's
/// fields.
#[derive(clickhouse::Row, serde::Deserialize)]
struct TopValuesRow {
    field: u8,
    total: u64,
    rows: Vec<ValueCount>,
}

/// [`new_actors_sql`]'s one row.
#[derive(clickhouse::Row, serde::Deserialize)]
struct NewActorsRow {
    total: u64,
    rows: Vec<NewActor>,
}

#[derive(clickhouse::Row, serde::Deserialize)]
struct QuarterRow {
    quarter_ms: i64,
    events: u64,
}

/// A zone by IANA name ("UTC" included), or a clear error naming `tz`.
pub(crate) fn zone(name: &str) -> Result<jiff::tz::TimeZone, ConsoleError> {
    jiff::tz::TimeZone::get(name).map_err(|_| {
        ConsoleError::BadQuery(app::query::ParseError {
            position: 0,
            message: format!("tz: unknown time zone {name:?}"),
            hint: Some("use an IANA name such as Europe/Berlin, or UTC".into()),
        })
    })
}

/// Weekday (Monday 0) and hour of an instant in `zone`.
pub(crate) fn local_slot(zone: &jiff::tz::TimeZone, ms: i64) -> (u8, u8) {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => {
            let local = at.to_zoned(zone.clone());
            let weekday = local.weekday().to_monday_zero_offset();
            (
                u8::try_from(weekday).unwrap_or(0),
                u8::try_from(local.hour()).unwrap_or(0),
            )
        }
        // Outside jiff's range (years beyond ±9999): the window is clamped
        // to real event times long before this.
        Err(_) => (0, 0),
    }
}

impl Store {
    /// One of panels 4–9 over what the search matches.
    pub async fn dashboard_panel(
        &self,
        query: &SearchQuery,
        panel: Panel,
        tz: &str,
        now_ms: i64,
    ) -> Result<PanelData, ConsoleError> {
        // The analyst's query first, so its errors point into their text.
        Plan::new(query, now_ms)?;
        let narrowed = SearchQuery {
            q: panel.query(&query.q),
            cursor: None,
            ..query.clone()
        };
        let plan = Plan::new(&narrowed, now_ms)?;
        let span = plan.span();
        let tenants = query.tenants();
        let filter = Filter::new(&plan.compiled, &tenants, span, None);
        Ok(match panel {
            Panel::FailureSources | Panel::Privileged | Panel::Tenants => {
                let fields = panel.fields();
                let found = self
                    .search_query(&top_values_sql(fields, &filter.sql), &filter)
                    .fetch_all::<TopValuesRow>()
                    .await
                    .map_err(|e| self.search_failed(e))?;
                // Every list's total is the panel's (each sums one column
                // over the same events); a field without a row had no
                // matching events, so its list is empty, and so is the
                // panel when no field has one.
                let total = found.first().map_or(0, |row| row.total);
                let lists = fields
                    .iter()
                    .enumerate()
                    .map(|(at, field)| TopValues {
                        field: *field,
                        rows: found
                            .iter()
                            .find(|row| usize::from(row.field) == at)
                            .map(|row| row.rows.clone())
                            .unwrap_or_default(),
                    })
                    .collect();
                PanelData::Breakdown(Breakdown {
                    panel,
                    from_ms: span.from_ms,
                    to_ms: span.to_ms,
                    snapshot_ms: plan.snapshot_ms,
                    total,
                    lists,
                })
            }
            Panel::Changes => {
                let newest = SearchQuery {
                    limit: CHANGE_ROWS,
                    ..narrowed.clone()
                };
                let page = self.search(&newest, plan.snapshot_ms);
                let (page, total) = futures::join!(page, self.count(&filter));
                let page = page?;
                PanelData::Changes(Changes {
                    from_ms: span.from_ms,
                    to_ms: span.to_ms,
                    snapshot_ms: plan.snapshot_ms,
                    total: total?,
                    newest: page.hits,
                })
            }
            Panel::NewActors => {
                let mut sql = self
                    .search_query(&new_actors_sql(&filter.sql, tenants.len()), &filter)
                    .bind(super::sql::epoch_seconds(span.from_ms))
                    .bind(span.from_ms)
                    .bind(plan.snapshot_ms);
                for tenant in &tenants {
                    sql = sql.bind(tenant.as_str());
                }
                let found = sql
                    .fetch_one::<NewActorsRow>()
                    .await
                    .map_err(|e| self.search_failed(e))?;
                PanelData::NewActors(NewActors {
                    from_ms: span.from_ms,
                    to_ms: span.to_ms,
                    snapshot_ms: plan.snapshot_ms,
                    total: found.total,
                    rows: found.rows,
                })
            }
            Panel::Heatmap => {
                let zone = zone(tz)?;
                let quarters = self
                    .search_query(&quarters_sql(&filter.sql), &filter)
                    .fetch_all::<QuarterRow>()
                    .await
                    .map_err(|e| self.search_failed(e))?;
                let quarters: Vec<(i64, u64)> =
                    quarters.iter().map(|r| (r.quarter_ms, r.events)).collect();
                let slots = HeatMap::slots(span.from_ms, span.to_ms, |ms| local_slot(&zone, ms));
                PanelData::HeatMap(HeatMap::assemble(
                    span.from_ms,
                    span.to_ms,
                    plan.snapshot_ms,
                    tz,
                    &slots,
                    &quarters,
                ))
            }
        })
    }

    pub async fn time_series(
        &self,
        query: &SearchQuery,
        by: SeriesBy,
        now_ms: i64,
    ) -> Result<TimeSeries, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        let span = plan.span();
        let bucket = Bucket::for_window(span.from_ms, span.to_ms);
        let filter = Filter::new(&plan.compiled, &query.tenants(), span, None);
        let sql = self.filtered_query(
            &series_sql(by, &filter.sql),
            |query| {
                query
                    .bind(bucket.offset_ms())
                    .bind(bucket.width_ms())
                    .bind(bucket.width_ms())
                    .bind(bucket.offset_ms())
            },
            &filter,
        );
        let rows: Vec<SeriesRow> = sql.fetch_all().await.map_err(|e| self.search_failed(e))?;
        Ok(TimeSeries::zero_filled(
            by,
            span.from_ms,
            span.to_ms,
            plan.snapshot_ms,
            &rows,
        ))
    }

    /// Panels 1, 2 and 8 from one query; `tz` places the heatmap.
    pub async fn timeline(
        &self,
        query: &SearchQuery,
        tz: &str,
        now_ms: i64,
    ) -> Result<Timeline, ConsoleError> {
        let plan = Plan::new(query, now_ms)?;
        // Before the query: a zone that does not exist is the analyst's
        // error, not a reason to read the table.
        let zone = zone(tz)?;
        let span = plan.span();
        let slot = Timeline::slot_ms(Bucket::for_window(span.from_ms, span.to_ms));
        let filter = Filter::new(&plan.compiled, &query.tenants(), span, None);
        let sql = self.filtered_query(
            &timeline_sql(&filter.sql),
            |query| query.bind(slot).bind(slot),
            &filter,
        );
        let rows: Vec<SlotRow> = sql.fetch_all().await.map_err(|e| self.search_failed(e))?;
        let slots = HeatMap::slots(span.from_ms, span.to_ms, |ms| local_slot(&zone, ms));
        Ok(Timeline::assemble(
            span.from_ms,
            span.to_ms,
            plan.snapshot_ms,
            tz,
            &slots,
            &rows,
        ))
    }

    pub async fn top_actors(
        &self,
        query: &SearchQuery,
        now_ms: i64,
    ) -> Result<TopActors, ConsoleError> {
        // The analyst's query first, so its errors point into their text.
        let plan = Plan::new(query, now_ms)?;
        let span = plan.span();
        let all = Filter::new(&plan.compiled, &query.tenants(), span, None);
        // Compiled apart from the analyst's query: it is a condition inside
        // the count, not a second filter. A fixed text that parses (a unit
        // test holds it to that), so the error cannot reach an analyst.
        let failed =
            app::query::compile_str(FAILED_OUTCOMES, now_ms).map_err(ConsoleError::BadQuery)?;
        let sql = self.filtered_query(
            &top_actors_sql(&failed.sql, &all.sql),
            |query| bind_all(query, &failed.params),
            &all,
        );
        let found: TopActorsRow = sql.fetch_one().await.map_err(|e| self.search_failed(e))?;
        Ok(TopActors {
            from_ms: span.from_ms,
            to_ms: span.to_ms,
            snapshot_ms: plan.snapshot_ms,
            total: found.total,
            failures: found.failed,
            by_events: found.by_events,
            by_failures: found.by_failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::search::sql::{Arrival, Span};
    use app::query::compile_str;

    #[test]
    fn heatmap_hours_follow_the_zone_across_dst() {
        let berlin = zone("Europe/Berlin").unwrap();
        // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin (01:00Z).
        let spring = 1_774_746_000_000; // 2026-03-29T01:00Z
        assert_eq!(local_slot(&berlin, spring - 1), (6, 1));
        assert_eq!(local_slot(&berlin, spring), (6, 3));
        // 2026-10-25: 03:00 back to 02:00 (01:00Z); 02:xx happens twice.
        let autumn = 1_792_890_000_000; // 2026-10-25T01:00Z
        assert_eq!(local_slot(&berlin, autumn - 3_600_000), (6, 2));
        assert_eq!(local_slot(&berlin, autumn), (6, 2));
        assert_eq!(local_slot(&berlin, autumn + 3_600_000), (6, 3));
        let hour = 3_600_000;
        // Saturday 00:00Z to Monday 00:00Z around each change.
        let slot = |from: i64, to: i64| HeatMap::slots(from, to, |ms| local_slot(&berlin, ms));
        let spring_day = slot(spring - 25 * hour, spring + 23 * hour - 1);
        let sunday: Vec<_> = spring_day.iter().filter(|s| s.weekday == 6).collect();
        // Sunday has 23 hours: 02:00 does not occur.
        assert_eq!(sunday.len(), 23);
        assert!(sunday.iter().all(|s| s.hour != 2));
        let autumn_day = slot(autumn - 25 * hour, autumn + 23 * hour - 1);
        let two: Vec<_> = autumn_day
            .iter()
            .filter(|s| s.weekday == 6 && s.hour == 2)
            .collect();
        // One stretch of two hours: 02:00 CEST then 02:00 CET.
        assert_eq!(two.len(), 1);
        assert_eq!(two[0].until_ms - two[0].from_ms, 2 * hour);
        let quarters = [(autumn - hour, 3), (autumn + 15 * 60_000, 4)];
        let map = HeatMap::assemble(
            autumn - 25 * hour,
            autumn + 23 * hour - 1,
            0,
            "Europe/Berlin",
            &autumn_day,
            &quarters,
        );
        assert_eq!(map.count(6, 2), 7);
        assert_eq!(map.total(), 7);
        assert!(zone("Mars/Olympus").is_err());
        assert_eq!(local_slot(&zone("UTC").unwrap(), autumn), (6, 1));
    }

    #[test]
    fn panels_count_identities_over_the_search_filter() {
        let compiled = compile_str("actor:bob", 0).unwrap();
        let span = Span {
            from_ms: 0,
            to_ms: 1,
            arrival: Arrival::UpToSnapshot,
            snapshot_ms: 1,
        };
        let filter = Filter::new(&compiled, &["acme".to_owned()], span, None);
        let series = series_sql(SeriesBy::Outcome, &filter.sql);
        assert!(series.contains("uniqExact(content_hash) AS events"));
        assert!(series.contains("outcome AS key"));
        assert!(series.contains(&filter.sql));
        // The bucket's four values, then the filter's.
        assert_eq!(series.matches('?').count(), 4 + filter.params.len());
        let failed = compile_str(FAILED_OUTCOMES, 0).unwrap();
        let top = top_actors_sql(&failed.sql, &filter.sql);
        assert!(top.contains("uniqExact(content_hash) AS events"));
        assert!(top.contains(&format!(
            "uniqExactIf(content_hash, {}) AS failures",
            failed.sql
        )));
        // The failure condition's values, then the filter's; the lists'
        // length is a constant.
        assert_eq!(
            top.matches('?').count(),
            failed.params.len() + filter.params.len()
        );
        assert!(top.contains(&format!("1, {TOP_ACTORS})")));
        let values = top_values_sql(&[TopField::Ip, TopField::Service], &filter.sql);
        assert!(
            values.contains("ARRAY JOIN [(toUInt8(0), actor_ip), (toUInt8(1), source_service)]")
        );
        assert!(values.contains("tupleElement(row, 1) != ''"));
        assert_eq!(values.matches('?').count(), filter.params.len());
        let new = new_actors_sql(&filter.sql, 1);
        // The filter's, the window start twice, the snapshot, the tenant.
        assert_eq!(new.matches('?').count(), filter.params.len() + 4);
        assert!(new.contains("AND actor_id NOT IN (SELECT actor_id FROM"));
        assert!(new.starts_with("SELECT count() AS total"));
        let several = new_actors_sql(&filter.sql, 2);
        assert_eq!(several.matches('?').count(), filter.params.len() + 5);
        assert!(several.contains("(tenant_id, actor_id) NOT IN (SELECT tenant_id, actor_id FROM"));
        assert!(quarters_sql(&filter.sql).contains("intDiv(occurred_at, 900000)"));
    }
}
