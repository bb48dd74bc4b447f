//! Panels 4–9: top sources of failures, permission changes, privileged
//! actions, actors seen for the first time, the weekday × hour heatmap and
//! the volume per tenant. Each panel is a Search query (the analyst's,
//! narrowed by the panel's own clause) counted some way, so every row and
//! cell links to Search with the text that counted it.

use serde::{Deserialize, Serialize};

use super::{failures_query, search_href};
use crate::query::{and_term, Precision, Timestamp};
use crate::search_model::SearchHit;
use crate::search_state::SearchParams;

/// Rows a top-N list or a newest-first list shows.
pub const PANEL_ROWS: u32 = 10;
/// Newest permission changes listed.
pub const CHANGE_ROWS: u32 = 20;
/// What "permission, role and policy changes" are: the contract's category
/// for them. Services file role grants and policy edits under it.
pub const CHANGES_QUERY: &str = "category:permission_change";
/// What "privileged and admin actions" are: the admin category, and any
/// event its service marked `metadata.privileged:true` (break-glass,
/// sudo, impersonation), whatever its category.
pub const PRIVILEGED_QUERY: &str = "(category:admin OR metadata.privileged:true)";
/// A heatmap cell opens Search only while its intervals fit the query
/// language's limits (terms and length): 14 weeks, a 90-day window.
pub const MAX_CELL_INTERVALS: usize = 14;

/// The panels the dashboard asks for one at a time, each on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Panel {
    /// 4: failed and denied events by IP address and by calling service.
    FailureSources,
    /// 5: permission, role and policy changes, newest first.
    Changes,
    /// 6: privileged and admin actions by action and by actor.
    Privileged,
    /// 7: actors whose first event is inside the window.
    NewActors,
    /// 8: weekday × hour, in the chosen zone.
    Heatmap,
    /// 9: events per tenant.
    Tenants,
}

impl Panel {
    /// The top-N lists a breakdown panel shows.
    pub fn fields(self) -> &'static [TopField] {
        match self {
            Panel::FailureSources => &[TopField::Ip, TopField::Service],
            Panel::Privileged => &[TopField::Action, TopField::Actor],
            Panel::Tenants => &[TopField::Tenant],
            Panel::Changes | Panel::NewActors | Panel::Heatmap => &[],
        }
    }

    pub const ALL: [Panel; 6] = [
        Panel::FailureSources,
        Panel::Changes,
        Panel::Privileged,
        Panel::NewActors,
        Panel::Heatmap,
        Panel::Tenants,
    ];

    pub fn param(self) -> &'static str {
        match self {
            Panel::FailureSources => "failure-sources",
            Panel::Changes => "changes",
            Panel::Privileged => "privileged",
            Panel::NewActors => "new-actors",
            Panel::Heatmap => "heatmap",
            Panel::Tenants => "tenants",
        }
    }

    pub fn from_param(text: &str) -> Option<Panel> {
        Panel::ALL.into_iter().find(|p| p.param() == text)
    }

    /// The query the panel counts: the analyst's, narrowed by the panel's
    /// clause. Its links run the same text.
    pub fn query(self, q: &str) -> String {
        match self {
            Panel::FailureSources => failures_query(q),
            Panel::Changes => narrow(q, CHANGES_QUERY),
            Panel::Privileged => narrow(q, PRIVILEGED_QUERY),
            Panel::NewActors | Panel::Heatmap | Panel::Tenants => q.trim().to_string(),
        }
    }
}

/// `q` AND `clause`, grouping `q` when it is an OR (or does not parse, so
/// its own error stays where the analyst typed it).
pub fn narrow(q: &str, clause: &str) -> String {
    match q.trim() {
        "" => clause.to_string(),
        q => match crate::query::parse(q) {
            Ok(parsed) if !matches!(parsed.expr, Some(crate::query::Expr::Or(_))) => {
                format!("{q} {clause}")
            }
            _ => format!("({q}) {clause}"),
        },
    }
}

/// A field a top-N list groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopField {
    Ip,
    Service,
    Action,
    Actor,
    Tenant,
}

impl TopField {
    /// The `audit_events` column.
    pub fn column(self) -> &'static str {
        match self {
            TopField::Ip => "actor_ip",
            TopField::Service => "source_service",
            TopField::Action => "action",
            TopField::Actor => "actor_id",
            TopField::Tenant => "tenant_id",
        }
    }

    /// The query-language field a row's link adds; the tenant is chosen
    /// with the tenant selector instead.
    pub fn query_field(self) -> Option<&'static str> {
        match self {
            TopField::Ip => Some("actor.ip"),
            TopField::Service => Some("source_service"),
            TopField::Action => Some("action"),
            TopField::Actor => Some("actor"),
            TopField::Tenant => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TopField::Ip => "IP address",
            TopField::Service => "Calling service",
            TopField::Action => "Action",
            TopField::Actor => "Actor",
            TopField::Tenant => "Tenant",
        }
    }
}

/// Distinct events with one value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct ValueCount {
    pub value: String,
    pub events: u64,
}

/// One top-N list of a breakdown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopValues {
    pub field: TopField,
    /// Most first; events without a value (no IP sent) are not listed.
    pub rows: Vec<ValueCount>,
}

/// Panels 4, 6 and 9: the panel's events, and top-N lists of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    pub panel: Panel,
    pub from_ms: i64,
    pub to_ms: i64,
    pub snapshot_ms: i64,
    /// Every event the panel's query matches.
    pub total: u64,
    pub lists: Vec<TopValues>,
}

/// Panel 5: the newest changes, and how many there are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub from_ms: i64,
    pub to_ms: i64,
    pub snapshot_ms: i64,
    pub total: u64,
    pub newest: Vec<SearchHit>,
}

/// One actor whose first event in its tenant falls in the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(clickhouse::Row))]
pub struct NewActor {
    pub tenant_id: String,
    pub actor_id: String,
    /// Their first matching event in the window.
    pub first_ms: i64,
    /// Their matching events in the window.
    pub events: u64,
}

/// Panel 7.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewActors {
    pub from_ms: i64,
    pub to_ms: i64,
    pub snapshot_ms: i64,
    /// New actors in all, of which `rows` are the most recent.
    pub total: u64,
    pub rows: Vec<NewActor>,
}

/// Panel 8: distinct events per local weekday (Monday first) and hour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeatMap {
    pub from_ms: i64,
    pub to_ms: i64,
    pub snapshot_ms: i64,
    /// "UTC" or an IANA name.
    pub zone: String,
    /// `counts[weekday][hour]`, weekday 0 = Monday.
    pub counts: Vec<Vec<u64>>,
    /// `intervals[weekday][hour]`: the UTC stretches of the window, each
    /// `[from, to)`, that were that local weekday and hour. Empty when
    /// there are more than [`MAX_CELL_INTERVALS`] (the cell then has no
    /// Search link).
    pub intervals: Vec<Vec<Vec<(i64, i64)>>>,
}

pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A quarter hour: every zone's offset from UTC since 1970 is a whole
/// number of them, so a UTC quarter hour lies in one local hour.
pub const QUARTER_MS: i64 = 15 * 60_000;

impl HeatMap {
    /// Spreads per-slot counts into the grid. `slots` are consecutive
    /// stretches of the window, each one local weekday and hour (from
    /// [`Self::slots`]); `quarters` are distinct events per UTC quarter
    /// hour, which each fall in one slot because every zone's offset is
    /// a whole number of quarter hours. An event has one `occurred_at`,
    /// so summing its quarters counts it once.
    pub fn assemble(
        from_ms: i64,
        to_ms: i64,
        snapshot_ms: i64,
        zone: &str,
        slots: &[Slot],
        quarters: &[(i64, u64)],
    ) -> HeatMap {
        let mut counts = vec![vec![0u64; 24]; 7];
        let mut intervals = vec![vec![Vec::new(); 24]; 7];
        for slot in slots {
            if let Some(cell) = intervals
                .get_mut(usize::from(slot.weekday))
                .and_then(|row: &mut Vec<Vec<(i64, i64)>>| row.get_mut(usize::from(slot.hour)))
            {
                cell.push((slot.from_ms, slot.until_ms));
            }
        }
        for (quarter_ms, events) in quarters {
            // The slot holding the quarter: slots are sorted and disjoint.
            let at = slots.partition_point(|s| s.until_ms <= *quarter_ms);
            let Some(slot) = slots.get(at).filter(|s| s.from_ms <= *quarter_ms) else {
                // Before the window's first slot: the window starts mid
                // quarter; the slot that holds the window start owns it.
                if let Some(first) = slots.first() {
                    add(&mut counts, first, *events);
                }
                continue;
            };
            add(&mut counts, slot, *events);
        }
        for row in &mut intervals {
            for cell in row.iter_mut() {
                if cell.len() > MAX_CELL_INTERVALS {
                    cell.clear();
                }
            }
        }
        HeatMap {
            from_ms,
            to_ms,
            snapshot_ms,
            zone: zone.to_string(),
            counts,
            intervals,
        }
    }

    /// Cuts `from_ms..=to_ms` into stretches of one local weekday and hour,
    /// `local` naming the weekday and hour of an instant. Quarter hours are
    /// probed, so any zone offset works, and a DST change shows up as an
    /// hour that lasts two (autumn) or does not occur (spring).
    pub fn slots(from_ms: i64, to_ms: i64, local: impl Fn(i64) -> (u8, u8)) -> Vec<Slot> {
        const QUARTER: i64 = QUARTER_MS;
        let mut out: Vec<Slot> = Vec::new();
        if from_ms > to_ms {
            return out;
        }
        let end = to_ms.saturating_add(1);
        let mut at = from_ms;
        // A year is 35,040 quarters; the cap only guards nonsense input.
        let mut steps = 0u32;
        while at < end && steps < 40_000 {
            steps += 1;
            let next = (at.div_euclid(QUARTER).saturating_add(1))
                .saturating_mul(QUARTER)
                .min(end);
            let (weekday, hour) = local(at);
            match out.last_mut() {
                Some(last) if last.weekday == weekday && last.hour == hour => last.until_ms = next,
                _ => out.push(Slot {
                    weekday,
                    hour,
                    from_ms: at,
                    until_ms: next,
                }),
            }
            at = next;
        }
        out
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    pub fn count(&self, weekday: usize, hour: usize) -> u64 {
        self.counts
            .get(weekday)
            .and_then(|r| r.get(hour))
            .copied()
            .unwrap_or(0)
    }
}

fn add(counts: &mut [Vec<u64>], slot: &Slot, events: u64) {
    if let Some(cell) = counts
        .get_mut(usize::from(slot.weekday))
        .and_then(|row| row.get_mut(usize::from(slot.hour)))
    {
        *cell = cell.saturating_add(events);
    }
}

/// A stretch `[from_ms, until_ms)` of one local weekday and hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub weekday: u8,
    pub hour: u8,
    pub from_ms: i64,
    pub until_ms: i64,
}

/// What one panel answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PanelData {
    Breakdown(Breakdown),
    Changes(Changes),
    NewActors(NewActors),
    HeatMap(HeatMap),
}

/// `2026-03-01T12:30`, minute precision, UTC.
fn minute(ms: i64) -> String {
    Timestamp {
        ms,
        precision: Precision::Minute,
    }
    .to_string()
}

/// The Search link behind one row of a breakdown.
pub fn value_href(params: &SearchParams, b: &Breakdown, field: TopField, value: &str) -> String {
    let q = b.panel.query(&params.q);
    match field.query_field() {
        Some(name) => search_href(
            params,
            &and_term(&q, name, value, false),
            b.from_ms,
            b.to_ms,
        ),
        None => {
            let one = SearchParams {
                tenant: Some(value.to_string()),
                ..params.clone()
            };
            search_href(&one, &q, b.from_ms, b.to_ms)
        }
    }
}

/// Every event a panel counts, in Search.
pub fn panel_href(params: &SearchParams, panel: Panel, from_ms: i64, to_ms: i64) -> String {
    search_href(params, &panel.query(&params.q), from_ms, to_ms)
}

/// One change, in Search: its id over its own millisecond, in its tenant.
pub fn change_href(params: &SearchParams, hit: &SearchHit) -> String {
    let one = SearchParams {
        tenant: Some(hit.tenant_id.clone()),
        ..params.clone()
    };
    let q = and_term(
        &Panel::Changes.query(&params.q),
        "event_id",
        &hit.event_id,
        false,
    );
    search_href(&one, &q, hit.occurred_at, hit.occurred_at)
}

/// One new actor's events in the window, in their tenant.
pub fn new_actor_href(params: &SearchParams, answer: &NewActors, row: &NewActor) -> String {
    let one = SearchParams {
        tenant: Some(row.tenant_id.clone()),
        ..params.clone()
    };
    let q = and_term(&params.q, "actor", &row.actor_id, false);
    search_href(&one, &q, answer.from_ms, answer.to_ms)
}

/// The query behind one heatmap cell: the analyst's, AND the cell's UTC
/// stretches. `None` when the cell has none to name (see
/// [`MAX_CELL_INTERVALS`]).
pub fn cell_query(q: &str, intervals: &[(i64, i64)]) -> Option<String> {
    if intervals.is_empty() {
        return None;
    }
    let stretches: Vec<String> = intervals
        .iter()
        .map(|(from, until)| {
            // Slot edges fall on whole minutes except where the window
            // cuts them; those are written to the millisecond.
            let at = |ms: i64| {
                if ms % 60_000 == 0 {
                    minute(ms)
                } else {
                    Timestamp {
                        ms,
                        precision: Precision::Millis,
                    }
                    .to_string()
                }
            };
            format!("(occurred_at>={} occurred_at<{})", at(*from), at(*until))
        })
        .collect();
    let clause = if stretches.len() == 1 {
        stretches.concat()
    } else {
        format!("({})", stretches.join(" OR "))
    };
    Some(narrow(q, &clause))
}

/// The Search link behind one heatmap cell.
pub fn cell_href(
    params: &SearchParams,
    map: &HeatMap,
    weekday: usize,
    hour: usize,
) -> Option<String> {
    let intervals = map.intervals.get(weekday)?.get(hour)?;
    let q = cell_query(&params.q, intervals)?;
    Some(search_href(params, &q, map.from_ms, map.to_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 1_772_323_200_000; // 2026-03-01T00:00Z, a Sunday

    /// UTC weekday and hour, Monday 0.
    fn utc(ms: i64) -> (u8, u8) {
        let days = ms.div_euclid(24 * HOUR);
        // 1970-01-01 was a Thursday (3 with Monday 0).
        let weekday = (days + 3).rem_euclid(7) as u8;
        let hour = (ms.rem_euclid(24 * HOUR) / HOUR) as u8;
        (weekday, hour)
    }

    /// Panels 1, 2 and 8 from one grouping by slot, category and outcome
    /// equal what their own queries give: each series' bars, the failure
    /// ratio, and the heatmap's cells.
    #[test]
    fn one_grouping_gives_the_three_time_panels() {
        use crate::dashboard_model::{Bucket, SeriesBy, SlotRow, Timeline};
        // Every bucket and quarter hour is a whole number of slots.
        for bucket in Bucket::ALL {
            let slot = Timeline::slot_ms(bucket);
            assert_eq!(bucket.width_ms() % slot, 0, "{bucket:?}");
            assert_eq!(bucket.offset_ms() % slot, 0, "{bucket:?}");
            assert_eq!(QUARTER_MS % slot, 0, "{bucket:?}");
        }
        let row = |slot_ms: i64, category: &str, outcome: &str, events: u64| SlotRow {
            slot_ms,
            category: category.into(),
            outcome: outcome.into(),
            events,
        };

        // 30 days: day buckets, quarter-hour slots. The window starts mid
        // quarter; its first slot starts before it.
        let (from, to) = (DAY - 30 * 24 * HOUR + 600_000, DAY - 1);
        assert_eq!(Timeline::slot_ms(Bucket::for_window(from, to)), QUARTER_MS);
        let first = from.div_euclid(QUARTER_MS) * QUARTER_MS;
        let rows = [
            row(first, "authentication", "success", 3),
            row(first, "authentication", "failure", 2),
            row(DAY - QUARTER_MS, "admin", "denied", 4),
            row(DAY - QUARTER_MS, "authentication", "success", 1),
        ];
        let slots = HeatMap::slots(from, to, utc);
        let t = Timeline::assemble(from, to, to, "UTC", &slots, &rows);
        assert_eq!(t.categories.by, SeriesBy::Category);
        assert_eq!((t.categories.total(), t.outcomes.total()), (10, 10));
        let at = |series: &crate::dashboard_model::TimeSeries, key: &str, ms: i64| {
            let k = series.keys.iter().position(|k| k == key).unwrap();
            let b = series
                .starts
                .binary_search(&Bucket::Day.start_of(ms))
                .unwrap();
            series.counts[k][b]
        };
        assert_eq!(at(&t.categories, "authentication", first), 5);
        assert_eq!(at(&t.categories, "authentication", DAY - 1), 1);
        assert_eq!(at(&t.categories, "admin", DAY - 1), 4);
        assert_eq!(at(&t.outcomes, "success", first), 3);
        assert_eq!(at(&t.outcomes, "denied", DAY - 1), 4);
        assert_eq!(t.outcomes.failure_ratio(), Some(0.6));
        // The heatmap: the window's first slot owns the quarter it starts
        // in; the last quarter is Saturday 23:00 UTC.
        let (weekday, hour) = utc(from);
        assert_eq!(t.heat.count(usize::from(weekday), usize::from(hour)), 5);
        assert_eq!(t.heat.count(5, 23), 5);
        assert_eq!(t.heat.total(), 10);
        assert_eq!(
            t.heat,
            HeatMap::assemble(
                from,
                to,
                to,
                "UTC",
                &slots,
                &[(first, 5), (DAY - QUARTER_MS, 5)]
            )
        );

        // One hour: minute buckets and minute slots; a minute's events
        // land in its quarter of the heatmap.
        let (from, to) = (DAY - HOUR, DAY - 1);
        assert_eq!(Timeline::slot_ms(Bucket::for_window(from, to)), 60_000);
        let rows = [
            row(DAY - 60_000, "system", "success", 2),
            row(DAY - 2 * 60_000, "system", "failure", 1),
        ];
        let t = Timeline::assemble(from, to, to, "UTC", &HeatMap::slots(from, to, utc), &rows);
        assert_eq!(t.categories.starts.len(), 60);
        assert_eq!(
            t.categories
                .counts
                .iter()
                .flatten()
                .filter(|c| **c > 0)
                .count(),
            2
        );
        assert_eq!(t.heat.count(5, 23), 3);
    }

    #[test]
    fn slots_follow_local_hours_and_cut_at_the_window() {
        let slots = HeatMap::slots(DAY + 30 * 60_000, DAY + 3 * HOUR - 1, utc);
        assert_eq!(slots.len(), 3);
        assert_eq!(
            slots[0],
            Slot {
                weekday: 6,
                hour: 0,
                from_ms: DAY + 30 * 60_000,
                until_ms: DAY + HOUR
            }
        );
        assert_eq!(slots[2].until_ms, DAY + 3 * HOUR);
        // A zone at +05:30 starts its hours at half past.
        let india = |ms: i64| utc(ms + 5 * HOUR + 30 * 60_000);
        let slots = HeatMap::slots(DAY, DAY + 2 * HOUR - 1, india);
        assert_eq!(slots[0].until_ms, DAY + 30 * 60_000);
        assert_eq!(slots[1].until_ms - slots[1].from_ms, HOUR);
        assert!(HeatMap::slots(5, 1, utc).is_empty());
    }

    #[test]
    fn quarters_land_in_their_local_cell() {
        let (from, to) = (DAY, DAY + 7 * 24 * HOUR - 1);
        let slots = HeatMap::slots(from, to, utc);
        let quarters = [
            (DAY, 2),
            (DAY + 45 * 60_000, 1),
            (DAY + 24 * HOUR + 13 * HOUR, 5),
        ];
        let map = HeatMap::assemble(from, to, to, "UTC", &slots, &quarters);
        assert_eq!(map.count(6, 0), 3); // Sunday 00:00
        assert_eq!(map.count(0, 13), 5); // Monday 13:00
        assert_eq!(map.total(), 8);
        // One stretch per day of the week.
        assert_eq!(
            map.intervals[0][13],
            vec![(DAY + 37 * HOUR, DAY + 38 * HOUR)]
        );
        let q = cell_query("actor:bob OR actor:eve", &map.intervals[0][13]).unwrap();
        assert_eq!(
            q,
            "(actor:bob OR actor:eve) (occurred_at>=2026-03-02T13:00 occurred_at<2026-03-02T14:00)"
        );
        assert!(crate::query::compile_str(&q, 0).is_ok());
        // A year has 53 Mondays: too many stretches to name in one query.
        let year = HeatMap::slots(DAY, DAY + 371 * 24 * HOUR - 1, utc);
        let map = HeatMap::assemble(DAY, DAY + 371 * 24 * HOUR, DAY, "UTC", &year, &[]);
        assert!(map.intervals[0][13].is_empty());
        // 90 days: 13 stretches, and the query stays within the limits.
        let quarter = HeatMap::slots(DAY, DAY + 90 * 24 * HOUR - 1, utc);
        let map = HeatMap::assemble(DAY, DAY + 90 * 24 * HOUR - 1, DAY, "UTC", &quarter, &[]);
        let q = cell_query("category:authentication", &map.intervals[0][13]).unwrap();
        assert!(crate::query::compile_str(&q, 0).is_ok(), "{q}");
    }

    #[test]
    fn panels_narrow_the_analysts_query() {
        assert_eq!(Panel::Changes.query(""), "category:permission_change");
        assert_eq!(
            Panel::Privileged.query("a OR b"),
            "(a OR b) (category:admin OR metadata.privileged:true)"
        );
        assert_eq!(
            Panel::FailureSources.query("actor:x"),
            "actor:x (outcome:failure OR outcome:denied)"
        );
        for p in Panel::ALL {
            assert_eq!(Panel::from_param(p.param()), Some(p));
            assert!(crate::query::compile_str(&p.query("actor:x OR ip:1.2.3.4"), 0).is_ok());
        }
        let b = Breakdown {
            panel: Panel::FailureSources,
            from_ms: DAY,
            to_ms: DAY + HOUR,
            snapshot_ms: DAY + HOUR,
            total: 0,
            lists: Vec::new(),
        };
        let href = value_href(&SearchParams::default(), &b, TopField::Ip, "10.0.0.1");
        assert!(href.contains("actor.ip%3A%2210.0.0.1%22"), "{href}");
        let href = value_href(&SearchParams::default(), &b, TopField::Tenant, "acme");
        assert!(href.contains("tenant=acme"), "{href}");
    }
}
