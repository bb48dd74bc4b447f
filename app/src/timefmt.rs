//! Timestamp formatting that runs the same on the server and in WASM, so the
//! hydrated page shows exactly what the server rendered.

use serde::{Deserialize, Serialize};

/// Formats epoch milliseconds as `YYYY-MM-DD HH:MM:SS.mmm` in UTC.
pub fn utc_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// The offsets of one time zone over a stretch of time, as the server's tz
/// database (jiff's, built in) gives them: enough to show instants in that
/// zone by arithmetic alone, identically on the server and in WASM, without
/// a tz database in the browser's bundle or a second one (the browser's)
/// that could disagree with the server's about an edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// "UTC" or an IANA name.
    pub name: String,
    /// Oldest first; the first also applies to everything before it.
    pub spans: Vec<ZoneSpan>,
}

/// From `from_ms` on (until the next span), local time is UTC plus
/// `offset_s`, abbreviated `abbr` ("CET", "CEST", "IST").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneSpan {
    pub from_ms: i64,
    pub offset_s: i32,
    pub abbr: String,
}

/// At most this many offset changes are sent for one zone: two a year for
/// a century. Later instants keep the last offset sent.
pub const MAX_ZONE_SPANS: usize = 200;

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            spans: vec![ZoneSpan {
                from_ms: i64::MIN,
                offset_s: 0,
                abbr: "UTC".into(),
            }],
        }
    }

    pub fn is_utc(&self) -> bool {
        self.name == "UTC"
    }

    fn span(&self, ms: i64) -> Option<&ZoneSpan> {
        let after = self.spans.partition_point(|s| s.from_ms <= ms);
        self.spans.get(after.saturating_sub(1))
    }

    /// Seconds east of UTC at `ms`.
    pub fn offset_s(&self, ms: i64) -> i32 {
        self.span(ms).map_or(0, |s| s.offset_s)
    }

    /// The zone's abbreviation at `ms` ("CEST").
    pub fn abbr(&self, ms: i64) -> &str {
        self.span(ms).map_or("UTC", |s| s.abbr.as_str())
    }

    /// The local wall-clock time of `ms`, `YYYY-MM-DD HH:MM:SS.mmm`.
    pub fn local_millis(&self, ms: i64) -> String {
        utc_millis(ms.saturating_add(i64::from(self.offset_s(ms)) * 1000))
    }

    /// The local time with its abbreviation: in an autumn DST change the
    /// same wall-clock hour comes twice, and only this tells them apart.
    pub fn stamp(&self, ms: i64) -> String {
        format!("{} {}", self.local_millis(ms), self.abbr(ms))
    }

    /// `YYYY-MM-DD HH:MM` in the zone, with the abbreviation unless UTC
    /// (where a column header already says so).
    pub fn minute(&self, ms: i64) -> String {
        let text = self.local_millis(ms);
        let head = text.get(..16).unwrap_or(&text);
        if self.is_utc() {
            head.to_string()
        } else {
            format!("{head} {}", self.abbr(ms))
        }
    }

    /// The local `HH:MM` of `ms`.
    pub fn hour_minute(&self, ms: i64) -> String {
        let text = self.local_millis(ms);
        text.get(11..16).unwrap_or(&text).to_string()
    }

    /// The offsets of `name` ("UTC" or an IANA name) from `from_ms` to
    /// `to_ms`, or a message naming the unknown zone.
    #[cfg(feature = "ssr")]
    pub fn build(name: &str, from_ms: i64, to_ms: i64) -> Result<Zone, String> {
        if name == "UTC" {
            return Ok(Zone::utc());
        }
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| {
            format!(
                "tz: unknown time zone {name:?} (use an IANA name such as Europe/Berlin, or UTC)"
            )
        })?;
        let start = jiff::Timestamp::from_millisecond(from_ms.clamp(
            jiff::Timestamp::MIN.as_millisecond(),
            jiff::Timestamp::MAX.as_millisecond(),
        ))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let info = tz.to_offset_info(start);
        let mut spans = vec![ZoneSpan {
            from_ms: i64::MIN,
            offset_s: info.offset().seconds(),
            abbr: info.abbreviation().to_string(),
        }];
        for transition in tz.following(start) {
            let at = transition.timestamp().as_millisecond();
            if at > to_ms || spans.len() >= MAX_ZONE_SPANS {
                break;
            }
            spans.push(ZoneSpan {
                from_ms: at,
                offset_s: transition.offset().seconds(),
                abbr: transition.abbreviation().to_string(),
            });
        }
        Ok(Zone {
            name: name.to_string(),
            spans,
        })
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm), because pulling a calendar crate into the WASM bundle for one
/// conversion is not worth its size.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Europe/Berlin around the 2026 changes, as the server sends it.
    fn berlin() -> Zone {
        let span = |from_ms, offset_s, abbr: &str| ZoneSpan {
            from_ms,
            offset_s,
            abbr: abbr.into(),
        };
        Zone {
            name: "Europe/Berlin".into(),
            spans: vec![
                span(i64::MIN, 3600, "CET"),
                // 2026-03-29 01:00 UTC: 02:00 CET becomes 03:00 CEST.
                span(1_774_746_000_000, 7200, "CEST"),
                // 2026-10-25 01:00 UTC: 03:00 CEST becomes 02:00 CET.
                span(1_792_890_000_000, 3600, "CET"),
            ],
        }
    }

    #[test]
    fn local_times_across_both_dst_changes() {
        let z = berlin();
        let hour = 3_600_000;
        let spring = 1_774_746_000_000;
        // The hour before the change is 01:00 CET; the next local hour is
        // 03:00: 02:00 does not occur that day.
        assert_eq!(z.stamp(spring - hour), "2026-03-29 01:00:00.000 CET");
        assert_eq!(z.stamp(spring - 1), "2026-03-29 01:59:59.999 CET");
        assert_eq!(z.stamp(spring), "2026-03-29 03:00:00.000 CEST");
        let autumn = 1_792_890_000_000;
        // 02:00 comes twice, told apart by the abbreviation.
        assert_eq!(z.stamp(autumn - hour), "2026-10-25 02:00:00.000 CEST");
        assert_eq!(z.stamp(autumn), "2026-10-25 02:00:00.000 CET");
        assert_eq!(z.hour_minute(autumn - hour), z.hour_minute(autumn));
        assert_eq!(z.minute(autumn), "2026-10-25 02:00 CET");
        assert_eq!(Zone::utc().minute(autumn), "2026-10-25 01:00");
        // Long before the first change sent: its offset.
        assert_eq!(z.local_millis(0), "1970-01-01 01:00:00.000");
        assert_eq!(Zone::utc().stamp(spring), "2026-03-29 01:00:00.000 UTC");
        assert!(Zone::default().is_utc());
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn built_from_the_tz_database() {
        let day = 86_400_000;
        let spring = 1_774_746_000_000;
        let z = Zone::build("Europe/Berlin", spring - day, spring + day).unwrap();
        assert_eq!(z, {
            let mut want = berlin();
            want.spans.truncate(2);
            want
        });
        // A whole year holds both changes; New York changes on other days.
        let year = Zone::build("Europe/Berlin", spring - 10 * day, spring + 300 * day).unwrap();
        assert_eq!(year, berlin());
        let ny = Zone::build("America/New_York", spring - 30 * day, spring).unwrap();
        // 2026-03-08 07:00 UTC: 02:00 EST becomes 03:00 EDT.
        assert_eq!(
            ny.stamp(1_772_953_200_000 - 1),
            "2026-03-08 01:59:59.999 EST"
        );
        assert_eq!(ny.stamp(1_772_953_200_000), "2026-03-08 03:00:00.000 EDT");
        // Half-hour zones keep their minutes.
        let india = Zone::build("Asia/Kolkata", 0, spring).unwrap();
        assert_eq!(india.hour_minute(spring), "06:30");
        assert_eq!(Zone::build("UTC", 0, 1).unwrap(), Zone::utc());
        let refused = Zone::build("Mars/Olympus", 0, 1).unwrap_err();
        assert!(refused.contains("Mars/Olympus"), "{refused}");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc_millis(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc_millis(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(utc_millis(1_795_435_200_000), "2026-11-23 12:00:00.000");
        assert_eq!(utc_millis(-1), "1969-12-31 23:59:59.999");
    }
}
