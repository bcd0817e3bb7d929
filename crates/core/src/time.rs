//! Timestamps as plain values. The clock is read at the edge (server, CLI) and passed in.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    /// From whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Self {
        Self(s.saturating_mul(1000))
    }
    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// Whole seconds since the epoch (rounded down).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    /// This time plus `s` seconds.
    pub const fn plus_secs(self, s: i64) -> Self {
        Self(self.0.saturating_add(s.saturating_mul(1000)))
    }
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-24T12:52:56.000Z`.
    pub fn to_rfc3339(self) -> String {
        let Ok(dt) = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000) else {
            return String::from("invalid-time");
        };
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }
    /// Parses an RFC 3339 timestamp.
    /// Only times that [`Timestamp::to_rfc3339`] writes back (years 0000 to 9999 in UTC) are accepted: an offset
    /// that moves a time outside them is refused.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339).ok()?;
        let utc = dt.checked_to_offset(::time::UtcOffset::UTC)?;
        if !(0..=9999).contains(&utc.year()) {
            return None;
        }
        i64::try_from(dt.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `domain_parsers` fuzzer: an offset moved a time out of the years `to_rfc3339` writes.
    #[test]
    fn regression_times_outside_the_written_years_are_refused() {
        assert_eq!(Timestamp::parse_rfc3339("0000-01-01T00:00:00+23:59"), None);
        assert_eq!(Timestamp::parse_rfc3339("9999-12-31T23:59:59-23:59"), None);
        let edge = Timestamp::parse_rfc3339("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(Timestamp::parse_rfc3339(&edge.to_rfc3339()), Some(edge));
        let first = Timestamp::parse_rfc3339("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(Timestamp::parse_rfc3339(&first.to_rfc3339()), Some(first));
    }

    #[test]
    fn rfc3339_round_trip_with_millis() {
        let t = Timestamp::from_millis(1_795_000_000_123);
        assert_eq!(t.to_rfc3339(), "2026-11-18T11:06:40.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[test]
    fn seconds_round_down_before_epoch() {
        assert_eq!(Timestamp::from_millis(-1).secs(), -1);
        assert_eq!(Timestamp::from_secs(5).plus_secs(3).secs(), 8);
    }
}
