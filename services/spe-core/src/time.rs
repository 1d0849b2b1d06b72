//! Timestamps as WES shows them and as the store orders them.

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time, UTC, with microsecond resolution (the store keeps microseconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an RFC 3339 timestamp (expected e.g. 2026-01-31T12:00:00Z)")]
pub struct InvalidTimestamp;

impl Timestamp {
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.timestamp_micros())
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Now, to the microsecond.
    pub fn now() -> Self {
        Timestamp::from_datetime(Utc::now())
    }

    /// `d` later (saturating: a lease or backoff never wraps into the past).
    pub fn plus(self, d: std::time::Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        )
    }

    pub fn parse_rfc3339(text: &str) -> Result<Self, InvalidTimestamp> {
        DateTime::parse_from_rfc3339(text)
            .map(|at| Timestamp(at.with_timezone(&Utc).timestamp_micros()))
            .map_err(|_| InvalidTimestamp)
    }

    /// WES's format: ISO 8601 `%Y-%m-%dT%H:%M:%SZ` (fractions are dropped).
    pub fn to_wes(self) -> String {
        DateTime::<Utc>::from_timestamp_micros(self.0)
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    }

    /// RFC 3339 with microseconds, for event histories where order within a second matters.
    pub fn to_rfc3339_micros(self) -> String {
        DateTime::<Utc>::from_timestamp_micros(self.0)
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wes_format_has_seconds_and_z() {
        let t = Timestamp::parse_rfc3339("2026-01-31T12:00:01.123456+01:00").unwrap();
        assert_eq!(t.to_wes(), "2026-01-31T11:00:01Z");
        assert_eq!(t.to_rfc3339_micros(), "2026-01-31T11:00:01.123456Z");
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), Err(InvalidTimestamp));
        assert_eq!(
            Timestamp::parse_rfc3339("2026-13-01T00:00:00Z"),
            Err(InvalidTimestamp)
        );
    }
}
