//! UTC timestamps for `occurred_at` and `received_at` values.
//!
//! The calendar arithmetic is written out here because the browser bundle
//! parses queries too, and a date crate would cost more than these few lines.

use serde::{Deserialize, Serialize};
use std::fmt;

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_DAY: i64 = 24 * 60 * MS_PER_MINUTE;

/// How much of a timestamp the analyst wrote. A value stands for the whole
/// interval it names, so `occurred_at:2026-03-01` is that day and
/// `occurred_at<=2026-03-01` includes its evening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    Day,
    Minute,
    Second,
    Millis,
}

impl Precision {
    pub fn span_ms(self) -> i64 {
        match self {
            Precision::Day => MS_PER_DAY,
            Precision::Minute => MS_PER_MINUTE,
            Precision::Second => MS_PER_SECOND,
            Precision::Millis => 1,
        }
    }
}

/// The start of an interval in epoch milliseconds (UTC) and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    pub ms: i64,
    pub precision: Precision,
}

const FORMATS: &str = "use 2026-03-01, 2026-03-01T12:30, 2026-03-01T12:30:05 or \
                       2026-03-01T12:30:05.123, all UTC with optional Z, epoch milliseconds, \
                       or now-1h, now-7d/d";

impl Timestamp {
    /// The hint shown with every bad-date error.
    pub const FORMATS: &'static str = FORMATS;

    /// The first millisecond after the interval (saturating: only an epoch
    /// value at the very end of the `i64` range could overflow).
    pub fn end_ms(self) -> i64 {
        self.ms.saturating_add(self.precision.span_ms())
    }

    /// Parses `YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,3}]]][Z]` or an epoch-ms integer.
    /// The error is a message without position; the caller knows where the
    /// value started.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let bad = || format!("bad date \"{}\"", shorten(text));
        if is_integer(text) {
            let ms = text
                .parse::<i64>()
                .map_err(|_| format!("epoch milliseconds out of range: \"{}\"", shorten(text)))?;
            return Ok(Timestamp {
                ms,
                precision: Precision::Millis,
            });
        }
        let body = text
            .strip_suffix('Z')
            .or_else(|| text.strip_suffix('z'))
            .unwrap_or(text);
        let mut cur = Cursor {
            bytes: body.as_bytes(),
            at: 0,
        };
        let year = cur.digits(4).ok_or_else(bad)?;
        cur.expect(b'-').ok_or_else(bad)?;
        let month = cur.digits(2).ok_or_else(bad)?;
        cur.expect(b'-').ok_or_else(bad)?;
        let day = cur.digits(2).ok_or_else(bad)?;
        if !(1..=12).contains(&month) {
            return Err(format!("month {month:02} does not exist in \"{text}\""));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(format!(
                "day {day:02} does not exist in {year:04}-{month:02}"
            ));
        }
        let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
        let mut precision = Precision::Day;
        if cur.done() {
            return Ok(Timestamp { ms, precision });
        }
        if !matches!(cur.next(), Some(b'T' | b't' | b' ')) {
            return Err(bad());
        }
        let hour = cur.digits(2).ok_or_else(bad)?;
        cur.expect(b':').ok_or_else(bad)?;
        let minute = cur.digits(2).ok_or_else(bad)?;
        if hour > 23 || minute > 59 {
            return Err(format!("time {hour:02}:{minute:02} does not exist"));
        }
        ms += hour * 3_600_000 + minute * MS_PER_MINUTE;
        precision = Precision::Minute;
        if cur.expect(b':').is_some() {
            let second = cur.digits(2).ok_or_else(bad)?;
            if second > 59 {
                return Err(format!("second {second:02} does not exist"));
            }
            ms += second * MS_PER_SECOND;
            precision = Precision::Second;
            if cur.expect(b'.').is_some() {
                let start = cur.at;
                let mut fraction = 0;
                while let Some(digit) = cur.digits(1) {
                    fraction = fraction * 10 + digit;
                }
                let len = cur.at - start;
                if !(1..=3).contains(&len) {
                    return Err(format!("{}: use 1 to 3 fractional digits", bad()));
                }
                ms += fraction * 10_i64.pow(3 - len as u32);
                precision = Precision::Millis;
            }
        }
        if cur.done() {
            Ok(Timestamp { ms, precision })
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.ms.div_euclid(MS_PER_DAY);
        let in_day = self.ms.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // Epoch values far outside the calendar's four-digit years have no
        // date form that parses back, so they stay integers.
        if !(0..=9999).contains(&year) {
            return write!(f, "{}", self.ms);
        }
        write!(f, "{year:04}-{month:02}-{day:02}")?;
        let (hour, minute) = (in_day / 3_600_000, in_day / MS_PER_MINUTE % 60);
        let (second, millis) = (in_day / MS_PER_SECOND % 60, in_day % MS_PER_SECOND);
        match self.precision {
            Precision::Day => Ok(()),
            Precision::Minute => write!(f, "T{hour:02}:{minute:02}"),
            Precision::Second => write!(f, "T{hour:02}:{minute:02}:{second:02}"),
            Precision::Millis => write!(f, "T{hour:02}:{minute:02}:{second:02}.{millis:03}"),
        }
    }
}

/// A time relative to the moment the search runs: `now`, `now-1h`,
/// `now+30m`, `now-7d/d`. The offset is applied first, then the time is
/// rounded down to the start of the unit after `/`. A rounded time stands
/// for that whole unit, as a typed date does, so `occurred_at<=now-1d/d`
/// includes all of yesterday; an unrounded one is a single millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relative {
    /// Signed count of `unit`s added to now; 0 for plain `now`.
    pub amount: i64,
    pub unit: Unit,
    pub round: Option<Unit>,
}

/// The units of relative times, as typed: `s`, `m`, `h`, `d`, `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
}

impl Unit {
    fn from_char(c: char) -> Option<Unit> {
        Some(match c {
            's' => Unit::Second,
            'm' => Unit::Minute,
            'h' => Unit::Hour,
            'd' => Unit::Day,
            'w' => Unit::Week,
            _ => return None,
        })
    }

    fn letter(self) -> char {
        match self {
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Unit::Second => MS_PER_SECOND,
            Unit::Minute => MS_PER_MINUTE,
            Unit::Hour => 60 * MS_PER_MINUTE,
            Unit::Day => MS_PER_DAY,
            Unit::Week => 7 * MS_PER_DAY,
        }
    }
}

/// Largest offset accepted: about 1000 years in any unit keeps every
/// product far from overflowing.
const MAX_OFFSET_MS: i64 = 1_000 * 366 * MS_PER_DAY;

const RELATIVE_FORMS: &str = "relative times are now, now-15m, now-1h, now-7d or now-7d/d \
                              (units s m h d w; /unit rounds down to its start)";

impl Relative {
    /// Parses `now[(+|-)N<unit>][/<unit>]`; `now` is case-insensitive, the
    /// units are lower case (`m` is minutes). `None`: not a relative time
    /// at all (it does not start with `now`).
    pub fn parse(text: &str) -> Option<Result<Relative, String>> {
        let head = text.get(..3)?;
        if !head.eq_ignore_ascii_case("now") {
            return None;
        }
        let bad = || format!("bad relative time \"{}\": {RELATIVE_FORMS}", shorten(text));
        let rest = &text[3..];
        let (offset, round) = match rest.split_once('/') {
            Some((offset, round)) => (offset, Some(round)),
            None => (rest, None),
        };
        let (amount, unit) = if offset.is_empty() {
            (0, Unit::Second)
        } else {
            let sign = match offset.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Some(Err(bad())),
            };
            let body = &offset[1..];
            let Some(unit) = body.chars().last().and_then(Unit::from_char) else {
                return Some(Err(bad()));
            };
            let digits = &body[..body.len() - 1];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Some(Err(bad()));
            }
            match digits.parse::<i64>() {
                Ok(n) if n.saturating_mul(unit.ms()) <= MAX_OFFSET_MS => (sign * n, unit),
                _ => return Some(Err(format!("{}: at most 1000 years", bad()))),
            }
        };
        let round = match round {
            None => None,
            Some(r) => {
                let mut chars = r.chars();
                match (chars.next().and_then(Unit::from_char), chars.next()) {
                    (Some(unit), None) => Some(unit),
                    _ => return Some(Err(bad())),
                }
            }
        };
        Some(Ok(Relative {
            amount,
            unit,
            round,
        }))
    }

    /// The interval it names when the search runs at `now_ms`: start and
    /// the first millisecond after it. Weeks round to Monday 00:00 UTC.
    pub fn resolve(self, now_ms: i64) -> (i64, i64) {
        let at = now_ms.saturating_add(self.amount.saturating_mul(self.unit.ms()));
        match self.round {
            None => (at, at.saturating_add(1)),
            Some(unit) => {
                // 1970-01-01 was a Thursday; weeks start on Monday, 3 days later.
                let shift = if unit == Unit::Week {
                    4 * MS_PER_DAY
                } else {
                    0
                };
                let start = at
                    .saturating_sub(shift)
                    .div_euclid(unit.ms())
                    .saturating_mul(unit.ms())
                    .saturating_add(shift);
                (start, start.saturating_add(unit.ms()))
            }
        }
    }
}

impl fmt::Display for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("now")?;
        if self.amount != 0 {
            let sign = if self.amount < 0 { '-' } else { '+' };
            write!(
                f,
                "{sign}{}{}",
                self.amount.unsigned_abs(),
                self.unit.letter()
            )?;
        }
        if let Some(unit) = self.round {
            write!(f, "/{}", unit.letter())?;
        }
        Ok(())
    }
}

/// A time in a query or the time picker: a calendar time, or one relative
/// to the moment the search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeValue {
    At(Timestamp),
    Now(Relative),
}

impl TimeValue {
    pub fn parse(text: &str) -> Result<TimeValue, String> {
        match Relative::parse(text) {
            Some(relative) => relative.map(TimeValue::Now),
            None => Timestamp::parse(text).map(TimeValue::At),
        }
    }

    /// The interval it names at `now_ms`: its first millisecond and the
    /// first one after it.
    pub fn interval(self, now_ms: i64) -> (i64, i64) {
        match self {
            TimeValue::At(t) => (t.ms, t.end_ms()),
            TimeValue::Now(r) => r.resolve(now_ms),
        }
    }

    /// Whether it names one millisecond, so comparisons need no interval.
    pub fn is_instant(self) -> bool {
        match self {
            TimeValue::At(t) => t.precision == Precision::Millis,
            TimeValue::Now(r) => r.round.is_none(),
        }
    }
}

impl fmt::Display for TimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeValue::At(t) => t.fmt(f),
            TimeValue::Now(r) => r.fmt(f),
        }
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn shorten(text: &str) -> String {
    super::shorten(text, 40)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&wanted)).then(|| self.at += 1)
    }

    /// Exactly `count` ASCII digits as a number.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let slice = self.bytes.get(self.at..self.at + count)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += count;
        Some(slice.iter().fold(0, |n, b| n * 10 + i64::from(b - b'0')))
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date. Counting from March
/// puts the leap day last in the year, and 400-year eras repeat exactly, so
/// the day of the era is a closed formula.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days separate 0000-03-01, where era 0 starts, from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = (month_from_march + 2) % 12 + 1;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        Timestamp::parse(text).expect(text).ms
    }

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(ms("2026-03-01"), 1_772_323_200_000);
        assert_eq!(ms("1970-01-01"), 0);
        assert_eq!(ms("1970-01-01T00:00:01Z"), 1_000);
    }

    #[test]
    fn leap_years() {
        // 2024 and 2000 are leap years; 1900 and 2026 are not.
        assert_eq!(ms("2024-03-01") - ms("2024-02-28"), 2 * MS_PER_DAY);
        assert_eq!(ms("2000-03-01") - ms("2000-02-28"), 2 * MS_PER_DAY);
        assert_eq!(ms("2026-03-01") - ms("2026-02-28"), MS_PER_DAY);
        assert_eq!(ms("2024-02-29"), 1_709_164_800_000);
        assert!(Timestamp::parse("2026-02-29").is_err());
        assert!(Timestamp::parse("1900-02-29").is_err());
        assert!(Timestamp::parse("2000-02-29").is_ok());
        assert_eq!(ms("2025-01-01") - ms("2024-01-01"), 366 * MS_PER_DAY);
    }

    #[test]
    fn days_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn forms_and_precision() {
        let t = Timestamp::parse("2026-03-01T12:30").unwrap();
        assert_eq!(t.ms, 1_772_323_200_000 + 12 * 3_600_000 + 30 * 60_000);
        assert_eq!(t.precision, Precision::Minute);
        let t = Timestamp::parse("2026-03-01T12:30:05Z").unwrap();
        assert_eq!(t.ms, 1_772_368_205_000);
        assert_eq!(t.precision, Precision::Second);
        assert_eq!(ms("2026-03-01 12:30:05.1"), 1_772_368_205_100);
        assert_eq!(ms("2026-03-01t12:30:05.123z"), 1_772_368_205_123);
        let t = Timestamp::parse("-5").unwrap();
        assert_eq!((t.ms, t.precision), (-5, Precision::Millis));
        assert_eq!(
            Timestamp::parse("2026-03-01").unwrap().end_ms(),
            1_772_409_600_000
        );
        let max = Timestamp::parse(&i64::MAX.to_string()).unwrap();
        assert_eq!(max.end_ms(), i64::MAX);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "2026-3-01",
            "2026-03-01T",
            "2026-03-01T12",
            "2026-03-01T24:00",
            "2026-03-01T12:60",
            "2026-03-01T12:30:60",
            "2026-03-01T12:30:05.",
            "2026-03-01T12:30:05.1234",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-03-01x",
            "yesterday",
            "99999999999999999999",
            "-",
            "２０２６-03-01",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_keeps_precision() {
        for text in [
            "2026-03-01",
            "2026-03-01T12:30",
            "2026-03-01T12:30:05",
            "2026-03-01T12:30:05.120",
            "1969-12-31T23:59:59.999",
        ] {
            assert_eq!(Timestamp::parse(text).unwrap().to_string(), text);
        }
        let epoch = Timestamp::parse("1772323200000").unwrap();
        assert_eq!(epoch.to_string(), "2026-03-01T00:00:00.000");
        let huge = Timestamp::parse(&i64::MAX.to_string()).unwrap();
        assert_eq!(huge.to_string(), i64::MAX.to_string());
    }

    fn relative(text: &str) -> Relative {
        match TimeValue::parse(text) {
            Ok(TimeValue::Now(r)) => r,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn relative_times() {
        // 2026-03-04 (a Wednesday) 13:45:30.250 UTC.
        let now = ms("2026-03-04T13:45:30.250");
        let hour = 3_600_000;
        assert_eq!(relative("now").resolve(now), (now, now + 1));
        assert_eq!(relative("NOW").resolve(now), (now, now + 1));
        assert_eq!(
            relative("now-1h").resolve(now),
            (now - hour, now - hour + 1)
        );
        assert_eq!(relative("now+30m").resolve(now).0, now + 30 * MS_PER_MINUTE);
        assert_eq!(
            relative("now-7d/d").resolve(now),
            (ms("2026-02-25"), ms("2026-02-26"))
        );
        assert_eq!(
            relative("now/d").resolve(now),
            (ms("2026-03-04"), ms("2026-03-05"))
        );
        assert_eq!(
            relative("now-1h/h").resolve(now),
            (ms("2026-03-04T12:00"), ms("2026-03-04T13:00"))
        );
        // Weeks start on Monday, 2 March 2026.
        assert_eq!(
            relative("now/w").resolve(now),
            (ms("2026-03-02"), ms("2026-03-09"))
        );
        assert_eq!(relative("now-2w").resolve(now).0, now - 14 * MS_PER_DAY);
        for text in ["now", "now-1h", "now+30m", "now-7d/d", "now/w", "now-90s/m"] {
            assert_eq!(relative(text).to_string(), text);
        }
        assert_eq!(relative("Now-0d").to_string(), "now");
        for bad in [
            "now-",
            "now-h",
            "now-1",
            "now-1y",
            "now1h",
            "now-1h/",
            "now-1h/dd",
            "now-1.5h",
            "nowx",
            "now-99999999999999w",
        ] {
            let error = TimeValue::parse(bad).unwrap_err();
            assert!(error.contains("relative time"), "{bad}: {error}");
        }
        // Not starting with now: a calendar time, or its error.
        assert!(TimeValue::parse("no").unwrap_err().starts_with("bad date"));
        assert!(matches!(
            TimeValue::parse("2026-03-01"),
            Ok(TimeValue::At(_))
        ));
        assert!(TimeValue::parse("now-1h").unwrap().is_instant());
        assert!(!TimeValue::parse("now/d").unwrap().is_instant());
        // Extremes saturate instead of overflowing.
        assert_eq!(relative("now+1000w").resolve(i64::MAX).0, i64::MAX);
    }
}
