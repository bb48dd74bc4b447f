//! The Search page's state as it lives in the URL: the query, the time
//! window, the tenant, the page cursor, the visible columns and their order. Everything an
//! analyst sees can be rebuilt from the address, so links can be shared and
//! reload, back and forward show the same thing.

use serde::{Deserialize, Serialize};

use crate::model::TimeRange;
use crate::query::TimeValue;

mod columns;
mod cursor;
mod pivot;
mod sort;

pub use columns::{metadata_keys, parse_columns, toggle_column, Column, MAX_METADATA_COLUMNS};
pub use cursor::Cursor;
pub use pivot::{Pivot, PreviousWindow};
pub use sort::{Sort, SortColumn, SortDir};

/// Which stretch of time a search covers. Every query is bounded by one, so
/// ClickHouse reads only the month partitions it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeWindow {
    /// A preset that ends at the moment of the search.
    Last(TimeRange),
    /// From a fixed time until the moment of the search.
    Since { from_ms: i64 },
    /// Fixed bounds, both inclusive.
    Between { from_ms: i64, to_ms: i64 },
    /// Bounds of which at least one counts from the moment of the search
    /// (`now-7d/d`); no `to` means up to that moment.
    Relative {
        from: TimeValue,
        to: Option<TimeValue>,
    },
}

impl TimeWindow {
    /// Inclusive `(from, to)` in epoch ms when the search runs at `at_ms`.
    pub fn bounds(self, at_ms: i64) -> (i64, i64) {
        match self {
            TimeWindow::Last(range) => (at_ms.saturating_sub(range.duration_ms()), at_ms),
            TimeWindow::Since { from_ms } => (from_ms, at_ms),
            TimeWindow::Between { from_ms, to_ms } => (from_ms, to_ms),
            TimeWindow::Relative { from, to } => (
                from.interval(at_ms).0,
                // `to` names an interval, its end included, as for Between.
                to.map_or(at_ms, |to| to.interval(at_ms).1.saturating_sub(1)),
            ),
        }
    }

    /// Whether events arriving later can still fall inside the window, which
    /// is what the "newer events" notice counts.
    pub fn open_ended(self) -> bool {
        match self {
            TimeWindow::Between { .. } => false,
            TimeWindow::Relative { to, .. } => to.is_none(),
            TimeWindow::Last(_) | TimeWindow::Since { .. } => true,
        }
    }
}

/// Everything the Search page shows, as read from and written to the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchParams {
    pub q: String,
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub range: TimeRange,
    /// Absolute bounds as typed (query-language time forms, UTC); `from`
    /// wins over `range`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// An opaque [`Cursor`] token: the page after it. `None`: the newest page.
    pub cursor: Option<String>,
    pub columns: Vec<Column>,
    /// `?sort=` and `?dir=` as written ([`SearchParams::sort`] reads
    /// them): kept as text like `from`/`to`, so a link naming an order
    /// that does not exist is an error the page shows, not another order.
    /// Saved searches stored before sorting read as none: newest first.
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub dir: Option<String>,
    /// The field (or `metadata.<key>`) whose top values are counted above
    /// the results; saved searches stored before it read as none.
    #[serde(default)]
    pub count_by: Option<crate::search_model::CountField>,
    /// The zone times are shown in: `None` for UTC (the default, left out
    /// of the URL), `browser` for the reader's own, or an IANA name. Only
    /// display: windows and buckets stay in UTC instants.
    #[serde(default)]
    pub tz: Option<String>,
    /// `tail=1`: new matching events stream in above the results
    /// (`crate::tail`). Only what the page does, not what it asks.
    #[serde(default)]
    pub tail: bool,
    /// Set on "Events around this one": the event the window is around and
    /// the window to go back to ([`SearchParams::leave_pivot`]).
    #[serde(default)]
    pub pivot: Option<Pivot>,
}

/// `tz=browser`: the zone of whoever opens the link.
pub const BROWSER_ZONE: &str = "browser";

impl SearchParams {
    /// Reads the parameters through `get` (the router's query map, or a
    /// request's query string); empty values count as absent.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> SearchParams {
        let text = |key: &str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        SearchParams {
            q: text("q").unwrap_or_default(),
            tenant: text("tenant"),
            range: TimeRange::from_param(&text("range").unwrap_or_default()),
            from: text("from"),
            to: text("to"),
            cursor: text("cursor"),
            columns: parse_columns(text("cols").as_deref()),
            sort: text("sort"),
            dir: text("dir"),
            count_by: text("count_by")
                .and_then(|v| crate::search_model::CountField::from_query_field(&v)),
            tz: text("tz").filter(|z| !z.eq_ignore_ascii_case("utc")),
            tail: text("tail").is_some_and(|v| v == "1"),
            pivot: Pivot::from_lookup(text),
        }
    }

    /// Reads named values, as a server function receives them.
    pub fn from_pairs(pairs: &[(&str, Option<String>)]) -> SearchParams {
        SearchParams::from_lookup(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.clone())
        })
    }

    /// The parameters that differ from the defaults, in a fixed order.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if let Some(tenant) = &self.tenant {
            pairs.push(("tenant", tenant.clone()));
        }
        if self.range != TimeRange::default() {
            pairs.push(("range", self.range.param().to_string()));
        }
        if let Some(from) = &self.from {
            pairs.push(("from", from.clone()));
        }
        if let Some(to) = &self.to {
            pairs.push(("to", to.clone()));
        }
        if let Some(cursor) = &self.cursor {
            pairs.push(("cursor", cursor.clone()));
        }
        if self.columns != Column::DEFAULT {
            let keys: Vec<_> = self.columns.iter().map(Column::key).collect();
            pairs.push(("cols", keys.join(",")));
        }
        if let Some(sort) = &self.sort {
            pairs.push(("sort", sort.clone()));
        }
        if let Some(dir) = &self.dir {
            pairs.push(("dir", dir.clone()));
        }
        if let Some(field) = &self.count_by {
            pairs.push(("count_by", field.query_field()));
        }
        if let Some(tz) = &self.tz {
            pairs.push(("tz", tz.clone()));
        }
        if self.tail {
            pairs.push(("tail", "1".to_string()));
        }
        if let Some(pivot) = &self.pivot {
            pairs.extend(pivot.pairs());
        }
        pairs
    }

    /// `?q=…&tenant=…`, or empty when everything is default.
    pub fn query_string(&self) -> String {
        query_string(&self.pairs())
    }

    /// The Search page showing exactly this.
    pub fn href(&self) -> String {
        format!("/search{}", self.query_string())
    }

    /// The same search from its newest page.
    pub fn first_page(&self) -> SearchParams {
        SearchParams {
            cursor: None,
            ..self.clone()
        }
    }

    /// The order the parameters name, or what is wrong with `sort`/`dir`.
    pub fn sort(&self) -> Result<Sort, String> {
        Sort::parse(self.sort.as_deref(), self.dir.as_deref())
    }

    /// The same search ordered by `sort`, from its first page (a cursor
    /// belongs to one order). The default order leaves the URL. Live tail
    /// ends under another order: it shows the newest events only.
    pub fn with_sort(&self, sort: Sort) -> SearchParams {
        let pairs = sort.pairs();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        SearchParams {
            sort: get("sort"),
            dir: get("dir"),
            cursor: None,
            tail: self.tail && sort == Sort::default(),
            ..self.clone()
        }
    }

    /// Whether the results are in the default order, newest first: the
    /// only one the live tail can continue.
    pub fn newest_first(&self) -> bool {
        self.sort() == Ok(Sort::default())
    }

    /// Another query over the same window, tenant and columns.
    pub fn with_q(&self, q: impl Into<String>) -> SearchParams {
        SearchParams {
            q: q.into(),
            cursor: None,
            ..self.clone()
        }
    }

    /// The same view in another zone (`None`: UTC); the page, cursor
    /// included, stays where it is, since only the display changes.
    pub fn with_zone(&self, tz: Option<String>) -> SearchParams {
        SearchParams {
            tz: tz.filter(|z| !z.eq_ignore_ascii_case("utc")),
            ..self.clone()
        }
    }

    /// The zone to show: UTC, the URL's IANA name, or for `browser` the
    /// browser's zone once known (UTC until then, as the server renders).
    pub fn zone_name(&self, browser: Option<&str>) -> String {
        match self.tz.as_deref() {
            None => "UTC".to_string(),
            Some(BROWSER_ZONE) => browser.unwrap_or("UTC").to_string(),
            Some(name) => name.to_string(),
        }
    }

    /// The same search with a preset range instead of absolute bounds; a
    /// range picked ends a pivot, whose window it replaces.
    pub fn with_range(&self, range: TimeRange) -> SearchParams {
        SearchParams {
            range,
            from: None,
            to: None,
            cursor: None,
            pivot: None,
            ..self.clone()
        }
    }

    /// The search without its pivot: the window the analyst had before
    /// "Events around this one" instead of its minutes, from the newest
    /// page. Without a pivot, the same search.
    pub fn leave_pivot(&self) -> SearchParams {
        let Some(pivot) = &self.pivot else {
            return self.clone();
        };
        let (range, from, to) = match &pivot.previous {
            PreviousWindow::Range(range) => (*range, None, None),
            PreviousWindow::Bounds { from, to } => (self.range, Some(from.clone()), to.clone()),
        };
        SearchParams {
            range,
            from,
            to,
            cursor: None,
            pivot: None,
            ..self.clone()
        }
    }

    /// What the query bar submits: the query and bounds as typed (trimmed,
    /// empty as absent). Within a pivot, bounds typed anew replace its
    /// window and end it; another query with the pivot's bounds untouched
    /// ends it too and searches the previous window; the same query again
    /// stays around the event.
    pub fn submitted(&self, q: &str, from: &str, to: &str) -> SearchParams {
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let typed = SearchParams {
            q: q.trim().to_string(),
            from: text(from),
            to: text(to),
            cursor: None,
            ..self.clone()
        };
        if self.pivot.is_none() {
            return typed;
        }
        if typed.from != self.from || typed.to != self.to {
            SearchParams {
                pivot: None,
                ..typed
            }
        } else if typed.q != self.q {
            SearchParams {
                q: typed.q,
                ..self.leave_pivot()
            }
        } else {
            typed
        }
    }

    /// Another tenant (`None`: every tenant): the pivot's event belongs to
    /// the tenant it was in, so the pivot ends and its window with it.
    pub fn with_tenant(&self, tenant: Option<String>) -> SearchParams {
        SearchParams {
            tenant: tenant.filter(|t| !t.is_empty()),
            cursor: None,
            ..self.leave_pivot()
        }
    }

    /// "Events around this one" from an event seen under these parameters
    /// (the detail page's context): `half_width_ms` either side of
    /// `at_ms`, in `tenant`, no query, the zone kept. Coming from inside
    /// a pivot, the window to go back to stays the one before the first.
    pub fn around(
        &self,
        tenant: &str,
        event_id: &str,
        at_ms: i64,
        hash_prefix: Option<&str>,
        half_width_ms: i64,
    ) -> SearchParams {
        let stamp = |ms: i64| {
            crate::query::Timestamp {
                ms,
                precision: crate::query::Precision::Millis,
            }
            .to_string()
        };
        let previous = match (&self.pivot, &self.from) {
            (Some(pivot), _) => pivot.previous.clone(),
            (None, Some(from)) => PreviousWindow::Bounds {
                from: from.clone(),
                to: self.to.clone(),
            },
            (None, None) => PreviousWindow::Range(self.range),
        };
        SearchParams {
            tenant: Some(tenant.to_string()),
            from: Some(stamp(at_ms.saturating_sub(half_width_ms))),
            to: Some(stamp(at_ms.saturating_add(half_width_ms))),
            tz: self.tz.clone(),
            pivot: Some(Pivot {
                event_id: event_id.to_string(),
                at_ms,
                hash_prefix: hash_prefix.map(str::to_string),
                previous,
            }),
            ..SearchParams::from_lookup(|_| None)
        }
    }

    /// The time window the parameters name, or what is wrong with `from`/`to`.
    /// Either may be relative (`now-7d/d`); such a window is placed when
    /// the search runs, and one that ends before it starts finds nothing.
    pub fn window(&self) -> Result<TimeWindow, String> {
        let from = match &self.from {
            Some(text) => Some(TimeValue::parse(text).map_err(|e| format!("from: {e}"))?),
            None => None,
        };
        let to = match &self.to {
            Some(text) => Some(TimeValue::parse(text).map_err(|e| format!("to: {e}"))?),
            None => None,
        };
        match (from, to) {
            (None, None) => Ok(TimeWindow::Last(self.range)),
            (None, Some(_)) => Err("to: set from as well".to_string()),
            (Some(TimeValue::At(from)), None) => Ok(TimeWindow::Since { from_ms: from.ms }),
            (Some(from), to @ (None | Some(TimeValue::Now(_))))
            | (Some(from @ TimeValue::Now(_)), to @ Some(_)) => {
                Ok(TimeWindow::Relative { from, to })
            }
            (Some(TimeValue::At(from)), Some(TimeValue::At(to))) => {
                // `to` names an interval like a query term does, so
                // `to=2026-03-01` includes that whole day.
                let to_ms = to.end_ms().saturating_sub(1);
                if from.ms > to_ms {
                    Err("from is after to".to_string())
                } else {
                    Ok(TimeWindow::Between {
                        from_ms: from.ms,
                        to_ms,
                    })
                }
            }
        }
    }
}

/// `?k=v&…` with RFC 3986 percent-encoding, or empty for no pairs.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (index, (key, value)) in pairs.iter().enumerate() {
        out.push(if index == 0 { '?' } else { '&' });
        out.push_str(&encode_component(key));
        out.push('=');
        out.push_str(&encode_component(value));
    }
    out
}

/// Reverses [`encode_component`] (and reads `+` as a space, as forms
/// write it); a broken escape is kept as it is.
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but the unreserved characters, for query
/// values.
pub fn encode_component(text: &str) -> String {
    encode(text, b"-_.~")
}

/// Like [`encode_component`] but keeps `:`, which ids may hold: the router
/// decodes paths with `decodeURI` in the browser, which leaves `%3A` as is,
/// so an encoded colon would read differently there than on the server.
pub fn encode_path_segment(text: &str) -> String {
    encode(text, b"-_.~:")
}

fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> SearchParams {
        SearchParams::from_lookup(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn url_round_trip_keeps_only_what_differs() {
        let p = params(&[]);
        assert_eq!(p.href(), "/search");
        assert_eq!(p.columns, Column::DEFAULT);
        assert_eq!(p.window(), Ok(TimeWindow::Last(TimeRange::Last24Hours)));

        let p = params(&[
            ("q", " actor:\"o'brien\" & ü "),
            ("tenant", "acme"),
            ("range", "7d"),
            ("cursor", "1.2.61.62"),
            ("cols", "event_id,time,bogus"),
            ("from", ""),
        ]);
        assert_eq!(p.q, "actor:\"o'brien\" & ü");
        assert_eq!(p.columns, [Column::Time, Column::EventId]);
        assert_eq!(p.from, None);
        let href = p.href();
        assert_eq!(
            href,
            "/search?q=actor%3A%22o%27brien%22%20%26%20%C3%BC&tenant=acme&range=7d&cursor=1.2.61.62&cols=time%2Cevent_id"
        );
        assert_eq!(p.first_page().cursor, None);
        assert_eq!(p.with_q("x").cursor, None);
        assert_eq!(p.with_q("x").tenant.as_deref(), Some("acme"));
        // Metadata columns live in the URL beside the fixed ones; a key
        // the query language refuses is dropped.
        let p = params(&[("cols", "time,actor,metadata.ticket,metadata.a'b")]);
        assert_eq!(
            p.columns,
            [
                Column::Time,
                Column::Actor,
                Column::Metadata("ticket".into())
            ]
        );
        assert_eq!(p.href(), "/search?cols=time%2Cactor%2Cmetadata.ticket");
        use crate::search_model::{CountField, FacetField};
        let p = params(&[("count_by", "actor.ip")]);
        assert_eq!(p.count_by, Some(CountField::Field(FacetField::ActorIp)));
        assert_eq!(p.href(), "/search?count_by=actor.ip");
        assert_eq!(params(&[("count_by", "nonsense")]).count_by, None);
        // A metadata key, checked like a metadata column: the prefix in
        // any case reads, the key stays exact, a key the query language
        // refuses is dropped rather than an error.
        let p = params(&[("count_by", "metadata.ticket"), ("q", "x")]);
        assert_eq!(p.count_by, Some(CountField::Metadata("ticket".into())));
        assert_eq!(p.href(), "/search?q=x&count_by=metadata.ticket");
        assert_eq!(
            params(&[("count_by", "METADATA.Ticket")]).href(),
            "/search?count_by=metadata.Ticket"
        );
        for bad in ["metadata.a'b", "metadata.", "metadata.needs review"] {
            assert_eq!(params(&[("count_by", bad)]).count_by, None, "{bad}");
        }
        // pairs -> from_lookup gives the same parameters back, and a new
        // query or another page keeps what is counted.
        let p = params(&[
            ("count_by", "metadata.k8s.zone-1"),
            ("cols", "time,metadata.ticket"),
        ]);
        let back = params(
            &p.pairs()
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(back, p);
        assert_eq!(p.with_q("y").count_by, p.count_by);
        // A saved search keeps it as JSON too.
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<SearchParams>(&json).unwrap(), p);
        // Saved searches stored before count_by still read.
        let old: SearchParams = serde_json::from_str(
            r#"{"q":"a","tenant":null,"range":"Last24Hours","from":null,"to":null,"cursor":null,"columns":[]}"#,
        )
        .unwrap();
        assert_eq!((old.q.as_str(), old.count_by), ("a", None));
    }

    #[test]
    fn the_sort_lives_in_the_url_default_left_out() {
        let p = params(&[
            ("q", "x"),
            ("sort", "actor"),
            ("dir", "asc"),
            ("cursor", "c"),
        ]);
        assert_eq!(
            p.sort(),
            Ok(Sort {
                column: SortColumn::Actor,
                dir: SortDir::Asc
            })
        );
        assert_eq!(p.href(), "/search?q=x&cursor=c&sort=actor&dir=asc");
        // pairs -> from_lookup gives the same parameters back; a new
        // query, the first page, another range or zone keep the order.
        let back = params(
            &p.pairs()
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(back, p);
        assert_eq!(p.with_q("y").sort(), p.sort());
        assert_eq!(p.first_page().href(), "/search?q=x&sort=actor&dir=asc");
        assert_eq!(p.with_range(TimeRange::LastHour).sort(), p.sort());
        assert_eq!(p.with_zone(Some("Europe/Berlin".into())).sort(), p.sort());
        // A click on a header: the first page of the new order; back to
        // newest first leaves the URL as it was before sorting.
        let desc = p.with_sort(p.sort().unwrap().clicked(SortColumn::Actor));
        assert_eq!(desc.href(), "/search?q=x&sort=actor&dir=desc");
        let newest = desc.with_sort(Sort::default());
        assert_eq!(newest.href(), "/search?q=x");
        assert!(newest.newest_first() && !desc.newest_first());
        // The tail shows newest events only: another order ends it.
        let tailing = params(&[("tail", "1")]);
        assert!(!tailing.with_sort(desc.sort().unwrap()).tail);
        assert!(tailing.with_sort(Sort::default()).tail);
        // Today's links: no sort, newest first.
        assert_eq!(params(&[]).sort(), Ok(Sort::default()));
        // An unknown order is an error naming the parameter.
        let bad = params(&[("sort", "bogus")]);
        assert!(bad.sort().unwrap_err().starts_with("sort: unknown column"));
        assert_eq!(bad.href(), "/search?sort=bogus");
        assert!(!bad.newest_first());
        assert!(params(&[("sort", "actor"), ("dir", "sideways")])
            .sort()
            .unwrap_err()
            .starts_with("dir: "));
        // A saved search keeps it as JSON; one stored before sorting reads
        // as newest first.
        let json = serde_json::to_string(&desc).unwrap();
        assert_eq!(serde_json::from_str::<SearchParams>(&json).unwrap(), desc);
        let old: SearchParams = serde_json::from_str(
            r#"{"q":"a","tenant":null,"range":"Last24Hours","from":null,"to":null,"cursor":null,"columns":[]}"#,
        )
        .unwrap();
        assert_eq!(old.sort(), Ok(Sort::default()));
    }

    #[test]
    fn the_zone_lives_in_the_url_utc_left_out() {
        assert_eq!(params(&[("tz", "UTC")]).tz, None);
        assert_eq!(params(&[("tz", "utc")]).href(), "/search");
        let berlin = params(&[("tz", "Europe/Berlin"), ("tenant", "acme")]);
        assert_eq!(berlin.href(), "/search?tenant=acme&tz=Europe%2FBerlin");
        assert_eq!(berlin.zone_name(Some("Asia/Tokyo")), "Europe/Berlin");
        assert_eq!(berlin.with_zone(None).href(), "/search?tenant=acme");
        assert_eq!(berlin.with_zone(Some("UTC".into())).tz, None);
        let browser = params(&[("tz", "browser")]);
        assert_eq!(browser.zone_name(None), "UTC");
        assert_eq!(browser.zone_name(Some("Asia/Tokyo")), "Asia/Tokyo");
        assert_eq!(params(&[]).zone_name(Some("Asia/Tokyo")), "UTC");
        // Back and forth keeps everything else, the page included.
        let deep = params(&[("q", "x"), ("cursor", "1.2.3.4")]);
        let there = deep.with_zone(Some("Europe/Berlin".into()));
        assert_eq!(there.cursor.as_deref(), Some("1.2.3.4"));
        assert_eq!(there.with_zone(None), deep);
    }

    #[test]
    fn windows() {
        let day = 1_772_323_200_000;
        let p = params(&[("from", "2026-03-01"), ("to", "2026-03-01")]);
        assert_eq!(
            p.window(),
            Ok(TimeWindow::Between {
                from_ms: day,
                to_ms: day + 86_400_000 - 1
            })
        );
        let p = params(&[("from", "2026-03-01T12:30"), ("range", "1h")]);
        let since = TimeWindow::Since {
            from_ms: day + 45_000_000,
        };
        assert_eq!(p.window(), Ok(since));
        assert!(since.open_ended());
        assert_eq!(
            since.bounds(day + 50_000_000),
            (day + 45_000_000, day + 50_000_000)
        );
        assert!(params(&[("to", "2026-03-01")]).window().is_err());
        assert!(params(&[("from", "2026-03-02"), ("to", "2026-03-01")])
            .window()
            .unwrap_err()
            .contains("after"));
        assert!(params(&[("from", "yesterday")])
            .window()
            .unwrap_err()
            .starts_with("from: bad date"));
        let last = TimeWindow::Last(TimeRange::LastHour);
        assert_eq!(last.bounds(day), (day - 3_600_000, day));
        assert!(!TimeWindow::Between {
            from_ms: 0,
            to_ms: 1
        }
        .open_ended());
        // Relative bounds are placed when the search runs.
        let now = day + 13 * 3_600_000;
        let p = params(&[("from", "now-7d/d"), ("to", "now-1d/d")]);
        let window = p.window().unwrap();
        assert_eq!(window.bounds(now), (day - 7 * 86_400_000, day - 1));
        assert!(!window.open_ended());
        let p = params(&[("from", "now-1h")]);
        assert_eq!(p.window().unwrap().bounds(now), (now - 3_600_000, now));
        assert!(p.window().unwrap().open_ended());
        let p = params(&[("from", "2026-03-01"), ("to", "now")]);
        assert_eq!(p.window().unwrap().bounds(now), (day, now));
        assert!(params(&[("from", "now-1y")])
            .window()
            .unwrap_err()
            .starts_with("from: bad relative time"));
        let reset =
            params(&[("from", "2026-03-01"), ("cursor", "c")]).with_range(TimeRange::Last7Days);
        assert_eq!((reset.from, reset.cursor), (None, None));
    }

    /// A search on "Last 7 days" in acme, then "Events around this one".
    fn pivot_from_7d() -> SearchParams {
        params(&[
            ("q", "outcome:failure"),
            ("tenant", "acme"),
            ("range", "7d"),
            ("tz", "Europe/Berlin"),
        ])
        .around("acme", "ev-1", 1_772_323_200_000, Some("abcd"), 300_000)
    }

    #[test]
    fn the_around_link_names_the_anchor_and_the_window_before() {
        let around = pivot_from_7d();
        assert_eq!(
            around.href(),
            "/search?tenant=acme&from=2026-02-28T23%3A55%3A00.000&to=2026-03-01T00%3A05%3A00.000&tz=Europe%2FBerlin&anchor=ev-1&anchor_at=1772323200000&anchor_h=abcd&prev_range=7d"
        );
        assert_eq!(around.q, "");
        // pairs -> from_lookup gives the same parameters back.
        let back = params(
            &around
                .pairs()
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(back, around);
        // Absolute bounds before: both kept, and an open `to` stays open.
        let absolute = params(&[("from", "2026-02-01"), ("to", "2026-02-28T12:00")])
            .around("acme", "ev:2", 5, None, 300_000);
        let pivot = absolute.pivot.clone().unwrap();
        assert_eq!(
            pivot.previous,
            PreviousWindow::Bounds {
                from: "2026-02-01".into(),
                to: Some("2026-02-28T12:00".into())
            }
        );
        assert_eq!(pivot.previous.label(), "2026-02-01 – 2026-02-28T12:00");
        assert!(absolute.href().ends_with(
            "&anchor=ev%3A2&anchor_at=5&prev_from=2026-02-01&prev_to=2026-02-28T12%3A00"
        ));
        let back = params(
            &absolute
                .pairs()
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(back, absolute);
        let since = params(&[("from", "now-7d/d")]).around("acme", "e", 5, None, 1);
        assert_eq!(since.pivot.unwrap().previous.label(), "since now-7d/d");
        // Around an event found inside a pivot: back still leads to the
        // window before the first pivot, not to the first pivot's minutes.
        let again = around.around("acme", "ev-9", 1_772_323_260_000, None, 300_000);
        assert_eq!(
            again.pivot.unwrap().previous,
            PreviousWindow::Range(TimeRange::Last7Days)
        );
        // The default range is written out too, so the link says where
        // back leads; reading it without prev_* means the default.
        let from_default = params(&[]).around("acme", "e", 5, None, 1);
        assert!(from_default.href().ends_with("&prev_range=24h"));
        let bare = params(&[("anchor", "e"), ("anchor_at", "5"), ("from", "2026-03-01")]);
        assert_eq!(
            bare.pivot.unwrap().previous,
            PreviousWindow::Range(TimeRange::Last24Hours)
        );
        // No pivot without a readable anchor and time.
        assert_eq!(
            params(&[("anchor", "e"), ("anchor_at", "soon"), ("prev_range", "7d")]).pivot,
            None
        );
        assert_eq!(params(&[("anchor_at", "5")]).pivot, None);
        // Saved searches stored before pivots still read.
        let old: SearchParams = serde_json::from_str(
            r#"{"q":"a","tenant":null,"range":"Last24Hours","from":null,"to":null,"cursor":null,"columns":[]}"#,
        )
        .unwrap();
        assert_eq!(old.pivot, None);
    }

    #[test]
    fn leaving_the_pivot_gives_the_window_before_back() {
        let around = pivot_from_7d();
        let left = around.leave_pivot();
        assert_eq!(
            left.href(),
            "/search?tenant=acme&range=7d&tz=Europe%2FBerlin"
        );
        assert_eq!(left.leave_pivot(), left);
        // Absolute bounds come back as typed.
        let absolute = params(&[("from", "2026-02-01"), ("to", "2026-02-28T12:00")])
            .around("acme", "e", 5, None, 300_000);
        assert_eq!(
            absolute.leave_pivot().href(),
            "/search?tenant=acme&from=2026-02-01&to=2026-02-28T12%3A00"
        );

        // The query bar: another query with the pivot's bounds untouched
        // searches the window before.
        let (from, to) = (around.from.clone().unwrap(), around.to.clone().unwrap());
        let paged = SearchParams {
            cursor: Some("c".into()),
            ..around.clone()
        };
        let other = paged.submitted(" actor:bob ", &from, &to);
        assert_eq!(
            other.href(),
            "/search?q=actor%3Abob&tenant=acme&range=7d&tz=Europe%2FBerlin"
        );
        // The same query again stays around the event (from its first page).
        let again = paged.submitted("", &from, &to);
        assert_eq!(again, around);
        // Bounds typed anew are the new window; the pivot ends.
        let typed = around.submitted("actor:bob", "2026-03-02", "");
        assert_eq!(
            typed.href(),
            "/search?q=actor%3Abob&tenant=acme&from=2026-03-02&tz=Europe%2FBerlin"
        );
        // Outside a pivot the form submits what was typed.
        let plain = params(&[("range", "1h"), ("cursor", "c")]).submitted("x", " ", "");
        assert_eq!(plain.href(), "/search?q=x&range=1h");

        // A range picked replaces the pivot's window and ends it.
        assert_eq!(
            around.with_range(TimeRange::LastHour).href(),
            "/search?tenant=acme&range=1h&tz=Europe%2FBerlin"
        );
        // Another tenant: the window before comes back.
        assert_eq!(
            around.with_tenant(Some("globex".into())).href(),
            "/search?tenant=globex&range=7d&tz=Europe%2FBerlin"
        );
        assert_eq!(around.with_tenant(Some(String::new())).tenant, None);
        let paged_plain = params(&[("tenant", "acme"), ("cursor", "c")]);
        assert_eq!(paged_plain.with_tenant(None).href(), "/search");
        // Paging, facets (`with_q` adds a term), the zone, count-by and
        // columns keep it: those stay around the event.
        assert!(paged.pivot.is_some());
        assert!(around.with_q("outcome:failure").pivot.is_some());
        assert!(around.with_zone(None).pivot.is_some());
        assert!(around.first_page().pivot.is_some());
    }

    #[test]
    fn the_anchor_row_is_the_event_itself() {
        let pivot = pivot_from_7d().pivot.unwrap();
        let at = 1_772_323_200_000;
        assert!(pivot.is_anchor(Some("acme"), "acme", "ev-1", at, "abcdef"));
        assert!(!pivot.is_anchor(Some("acme"), "acme", "ev-1", at, "abce00"));
        assert!(!pivot.is_anchor(Some("acme"), "acme", "ev-1", at + 1, "abcdef"));
        assert!(!pivot.is_anchor(Some("acme"), "acme", "ev-2", at, "abcdef"));
        assert!(!pivot.is_anchor(Some("acme"), "globex", "ev-1", at, "abcdef"));
        let any_hash = Pivot {
            hash_prefix: None,
            ..pivot
        };
        assert!(any_hash.is_anchor(None, "globex", "ev-1", at, "00"));
    }

    #[test]
    fn encoding_is_unreserved_only() {
        assert_eq!(encode_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_component("a b+c/d?e#f"), "a%20b%2Bc%2Fd%3Fe%23f");
        assert_eq!(query_string(&[]), "");
        assert_eq!(encode_path_segment("ev:1/2"), "ev:1%2F2");
    }
}
