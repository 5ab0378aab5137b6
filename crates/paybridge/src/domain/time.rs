//! Every way paybridge writes a time or a duration, in one place. Times are UTC; epoch
//! milliseconds unless a name says seconds. A time out of chrono's range is written as its
//! number (or empty where a label is expected), never a panic.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// `ms` in a strftime `pattern` (e.g. `%H:%M`), for chart labels; empty when out of range.
pub fn pattern(ms: i64, pattern: &str) -> String {
    utc(ms)
        .map(|t| t.format(pattern).to_string())
        .unwrap_or_default()
}

/// `2026-09-01 12:34:11.123Z`: timelines, logs and the CLI's tables.
pub fn precise(ms: i64) -> String {
    utc(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `2026-09-01 12:34:11Z`, from unix seconds (Stripe's `created`).
pub fn seconds(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// `2026-09-01 12:34:11 UTC`: the dashboard's times.
pub fn readable(ms: i64) -> String {
    utc(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `2026-09-01T12:34:11Z` (RFC 3339, whole seconds): JSON and templates.
pub fn rfc3339(ms: i64) -> Option<String> {
    utc(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// `2026-09-01`, the day of unix seconds.
pub fn iso_date(unix_secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix_secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Midnight UTC of a unix time, in epoch ms: HubSpot's format for date properties.
pub fn hubspot_date(unix_secs: i64) -> String {
    let day = unix_secs.div_euclid(86_400) * 86_400;
    (day * 1000).to_string()
}

/// A duration given in milliseconds: `250 ms`, `1.5 s`, `4 min`, `2.5 h`, `3 d`.
pub fn duration_ms(ms: f64) -> String {
    let one = |v: f64, unit: &str| {
        let s = format!("{v:.1}");
        let s = s.strip_suffix(".0").unwrap_or(&s).to_owned();
        format!("{s} {unit}")
    };
    let a = ms.abs();
    if a == 0.0 {
        "0".into()
    } else if a < 1_000.0 {
        format!("{ms:.0} ms")
    } else if a < 60_000.0 {
        one(ms / 1_000.0, "s")
    } else if a < 3_600_000.0 {
        one(ms / 60_000.0, "min")
    } else if a < 86_400_000.0 {
        one(ms / 3_600_000.0, "h")
    } else {
        one(ms / 86_400_000.0, "d")
    }
}

/// Elapsed time like a clock, for progress lines: `1h 02m`, `3m 05s`, `42s`.
pub fn clock_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_each_shape() {
        let ms = 1_788_257_651_123;
        assert_eq!(precise(ms), "2026-09-01 10:14:11.123Z");
        assert_eq!(seconds(ms / 1000), "2026-09-01 10:14:11Z");
        assert_eq!(readable(ms), "2026-09-01 10:14:11 UTC");
        assert_eq!(rfc3339(ms).as_deref(), Some("2026-09-01T10:14:11Z"));
        assert_eq!(pattern(ms, "%H:%M"), "10:14");
        assert_eq!(precise(i64::MAX), i64::MAX.to_string());
        assert_eq!(pattern(i64::MAX, "%H:%M"), "");
    }

    #[test]
    fn dates_are_midnight_utc() {
        assert_eq!(hubspot_date(1788257651), "1788220800000");
        assert_eq!(iso_date(1788257651), "2026-09-01");
    }

    #[test]
    fn durations_read_in_their_largest_unit() {
        assert_eq!(duration_ms(0.0), "0");
        assert_eq!(duration_ms(250.0), "250 ms");
        assert_eq!(duration_ms(1_500.0), "1.5 s");
        assert_eq!(duration_ms(2_000.0), "2 s");
        assert_eq!(duration_ms(240_000.0), "4 min");
        assert_eq!(duration_ms(9_000_000.0), "2.5 h");
        assert_eq!(duration_ms(3.0 * 86_400_000.0), "3 d");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock_duration(Duration::from_secs(42)), "42s");
        assert_eq!(clock_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(clock_duration(Duration::from_secs(3_720)), "1h 02m");
    }
}
