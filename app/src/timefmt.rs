//! Timestamp formatting that runs the same on the server and in WASM, so the
//! hydrated page shows exactly what the server rendered.

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
    use super::utc_millis;

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc_millis(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc_millis(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(utc_millis(1_795_435_200_000), "2026-11-23 12:00:00.000");
        assert_eq!(utc_millis(-1), "1969-12-31 23:59:59.999");
    }
}
