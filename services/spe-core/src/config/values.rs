//! Config values that are more than text. Each one is checked while the file is deserialised,
//! so a bad value fails at load with its key (serde_path_to_error names it), and the code that
//! uses it later has nothing left to parse.

use std::fmt;

use croner::parser::{CronParser, Seconds};
use serde::Deserialize;

/// An `http://` or `https://` URL with a host. Kept as written: it is handed on verbatim (to
/// the S3 SDK, in `/service-info`), where a normalised form (a trailing `/` added) could differ.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(String);

/// A link for people: an http(s) URL as [`HttpUrl`], or a `mailto:` address.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LinkUrl(String);

/// A cron expression with seconds (`sec min hour day month weekday [year]`), parsed the way
/// tokio-cron-scheduler parses it, so the scheduler cannot refuse a schedule that loaded.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct CronSchedule(String);

fn parse_url(text: &str, schemes: &[&str]) -> Option<url::Url> {
    let url = url::Url::parse(text).ok()?;
    let web = matches!(url.scheme(), "http" | "https");
    let fits =
        schemes.contains(&url.scheme()) && (!web || url.host_str().is_some_and(|h| !h.is_empty()));
    fits.then_some(url)
}

impl TryFrom<String> for HttpUrl {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        // The value is not echoed: a URL may carry credentials in its user-info part.
        parse_url(&text, &["http", "https"])
            .map(|_| HttpUrl(text))
            .ok_or_else(|| "must be an http(s):// URL with a host".to_owned())
    }
}

impl TryFrom<String> for LinkUrl {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        parse_url(&text, &["http", "https", "mailto"])
            .map(|_| LinkUrl(text))
            .ok_or_else(|| "must be an http(s):// or mailto: URL".to_owned())
    }
}

impl CronSchedule {
    /// At second 0 of every minute.
    pub fn every_minute() -> CronSchedule {
        CronSchedule("0 * * * * *".to_owned())
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&text)
            .map(|_| CronSchedule(text.trim().to_owned()))
            .map_err(|e| {
                format!(
                    "not a cron expression with seconds (`sec min hour day month weekday`, \
                     e.g. `0 * * * * *` for every minute): {e}"
                )
            })
    }
}

macro_rules! text_value {
    ($ty:ident) => {
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.0)
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $ty::try_from(text.to_owned())
            }
        }
    };
}

text_value!(HttpUrl);
text_value!(LinkUrl);
text_value!(CronSchedule);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_scheme_this_place_accepts_and_a_host() {
        for good in ["https://s3.example.eu", "http://127.0.0.1:59000"] {
            assert_eq!(good.parse::<HttpUrl>().unwrap().as_str(), good);
        }
        for bad in [
            "s3.example.eu",
            "ftp://x.example",
            "https://",
            "mailto:a@b.example",
        ] {
            assert_eq!(
                bad.parse::<HttpUrl>().unwrap_err(),
                "must be an http(s):// URL with a host",
                "{bad}"
            );
        }
        assert!("mailto:help@example.org".parse::<LinkUrl>().is_ok());
        assert!("help@example.org".parse::<LinkUrl>().is_err());
    }

    #[test]
    fn cron_schedules_need_seconds() {
        assert_eq!(
            "*/10 * * * * *".parse::<CronSchedule>().unwrap().as_str(),
            "*/10 * * * * *"
        );
        for bad in [
            "* * * * *",
            "0 * * * * * * *",
            "0 61 * * * *",
            "every minute",
        ] {
            let err = bad.parse::<CronSchedule>().unwrap_err();
            assert!(
                err.starts_with("not a cron expression with seconds"),
                "{bad}: {err}"
            );
        }
    }
}
