//! The Search page's state as it lives in the URL: the query, the time
//! window, the tenant, the page cursor and the visible columns. Everything an
//! analyst sees can be rebuilt from the address, so links can be shared and
//! reload, back and forward show the same thing.

use serde::{Deserialize, Serialize};

use crate::model::TimeRange;
use crate::query::TimeValue;

mod columns;
mod cursor;

pub use columns::{metadata_keys, parse_columns, toggle_column, Column, MAX_METADATA_COLUMNS};
pub use cursor::Cursor;

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
    /// The field whose top values are counted above the results; saved
    /// searches stored before it read as none.
    #[serde(default)]
    pub count_by: Option<crate::search_model::FacetField>,
    /// The zone times are shown in: `None` for UTC (the default, left out
    /// of the URL), `browser` for the reader's own, or an IANA name. Only
    /// display: windows and buckets stay in UTC instants.
    #[serde(default)]
    pub tz: Option<String>,
    /// `tail=1`: new matching events stream in above the results
    /// (`crate::tail`). Only what the page does, not what it asks.
    #[serde(default)]
    pub tail: bool,
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
            count_by: text("count_by")
                .and_then(|v| crate::search_model::FacetField::from_query_field(&v)),
            tz: text("tz").filter(|z| !z.eq_ignore_ascii_case("utc")),
            tail: text("tail").is_some_and(|v| v == "1"),
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
        if let Some(field) = self.count_by {
            pairs.push(("count_by", field.query_field().to_string()));
        }
        if let Some(tz) = &self.tz {
            pairs.push(("tz", tz.clone()));
        }
        if self.tail {
            pairs.push(("tail", "1".to_string()));
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

    /// Another query over the same window, tenant and columns.
    pub fn with_q(&self, q: impl Into<String>) -> SearchParams {
        SearchParams {
            q: q.into(),
            cursor: None,
            ..self.clone()
        }
    }

    /// The same search with a preset range instead of absolute bounds.
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

    pub fn with_range(&self, range: TimeRange) -> SearchParams {
        SearchParams {
            range,
            from: None,
            to: None,
            cursor: None,
            ..self.clone()
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
        let p = params(&[("count_by", "actor.ip")]);
        assert_eq!(p.count_by, Some(crate::search_model::FacetField::ActorIp));
        assert_eq!(p.href(), "/search?count_by=actor.ip");
        assert_eq!(params(&[("count_by", "nonsense")]).count_by, None);
        // Saved searches stored before count_by still read.
        let old: SearchParams = serde_json::from_str(
            r#"{"q":"a","tenant":null,"range":"Last24Hours","from":null,"to":null,"cursor":null,"columns":[]}"#,
        )
        .unwrap();
        assert_eq!((old.q.as_str(), old.count_by), ("a", None));
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

    #[test]
    fn encoding_is_unreserved_only() {
        assert_eq!(encode_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode_component("a b+c/d?e#f"), "a%20b%2Bc%2Fd%3Fe%23f");
        assert_eq!(query_string(&[]), "");
        assert_eq!(encode_path_segment("ev:1/2"), "ev:1%2F2");
    }
}
