//! Opaque page tokens for keyset pagination.
//!
//! A token names the last item of the previous page (its creation time and id), so that pages
//! stay stable while new runs arrive: lists are ordered newest first and a new run can never
//! push an older one onto a page the client has already read.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ids::RunId;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageToken {
    pub after_created: Timestamp,
    pub after_id: RunId,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "page_token is not one this service issued: pass next_page_token from a previous page unchanged"
)]
pub struct InvalidPageToken;

const VERSION: &str = "r1";

impl PageToken {
    pub fn encode(&self) -> String {
        let plain = format!(
            "{VERSION}:{}:{}",
            self.after_created.micros(),
            self.after_id
        );
        URL_SAFE_NO_PAD.encode(plain)
    }

    pub fn decode(token: &str) -> Result<Self, InvalidPageToken> {
        let plain = token_text(token)?;
        let mut parts = plain.splitn(3, ':');
        let (Some(VERSION), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidPageToken);
        };
        Ok(PageToken {
            after_created: Timestamp::from_micros(micros.parse().map_err(|_| InvalidPageToken)?),
            after_id: id.parse().map_err(|_| InvalidPageToken)?,
        })
    }
}

/// The text inside an opaque page token: at most 200 characters of URL-safe base64 of UTF-8.
fn token_text(token: &str) -> Result<String, InvalidPageToken> {
    if token.len() > 200 {
        return Err(InvalidPageToken);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| InvalidPageToken)?;
    String::from_utf8(bytes).map_err(|_| InvalidPageToken)
}

/// A page token that is a position in a list which only grows at its end (a run's tasks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetToken(pub usize);

impl OffsetToken {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("t1:{}", self.0))
    }

    pub fn decode(token: &str) -> Result<Self, InvalidPageToken> {
        token_text(token)?
            .strip_prefix("t1:")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .map(OffsetToken)
            .ok_or(InvalidPageToken)
    }

    /// The page of a list of `len` items that starts at this token and holds at most `size`
    /// items: the index range to return, and the token of the next page when one follows.
    ///
    /// The arithmetic is checked: a token is client input, and `start + size` near `usize::MAX`
    /// must not wrap (nor panic in a debug build). A start past the end (a forged token, or a
    /// list that shrank) is an empty last page.
    pub fn page(self, size: PageSize, len: usize) -> (std::ops::Range<usize>, Option<OffsetToken>) {
        let start = self.0.min(len);
        let end = start
            .checked_add(usize::try_from(size.get()).unwrap_or(usize::MAX))
            .map_or(len, |end| end.min(len));
        let next = (end < len).then_some(OffsetToken(end));
        (start..end, next)
    }
}

/// A requested page size, bounded by the service's maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(u32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("page_size must be an integer from 1 to {max}")]
pub struct InvalidPageSize {
    pub max: u32,
}

impl PageSize {
    /// Parses a client's page size; `None` means the default.
    pub fn parse(raw: Option<i64>, default: u32, max: u32) -> Result<Self, InvalidPageSize> {
        match raw {
            None => Ok(PageSize(default.clamp(1, max))),
            Some(n) if n >= 1 => u32::try_from(n)
                .ok()
                .filter(|n| *n <= max)
                .map(PageSize)
                .ok_or(InvalidPageSize { max }),
            Some(_) => Err(InvalidPageSize { max }),
        }
    }

    /// Like [`PageSize::parse`], but clamps instead of refusing (for endpoints whose contract has
    /// no 400 response).
    pub fn clamped(raw: Option<i64>, default: u32, max: u32) -> Self {
        match raw {
            None => PageSize(default.clamp(1, max)),
            Some(n) => {
                PageSize(u32::try_from(n.clamp(1, i64::from(max.max(1)))).unwrap_or(max.max(1)))
            }
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let token = PageToken {
            after_created: Timestamp::from_micros(1_760_000_000_123_456),
            after_id: RunId::new_random(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Ok(token));
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for bad in [
            "",
            "abc",
            "!!!!",
            &URL_SAFE_NO_PAD.encode("r1:x:y"),
            &"A".repeat(500),
        ] {
            assert_eq!(PageToken::decode(bad), Err(InvalidPageToken), "{bad}");
        }
    }

    #[test]
    fn offset_tokens_round_trip() {
        assert_eq!(
            OffsetToken::decode(&OffsetToken(7).encode()),
            Ok(OffsetToken(7))
        );
        assert!(OffsetToken::decode("zzz").is_err());
        let run_token = PageToken {
            after_created: Timestamp::from_micros(1),
            after_id: RunId::new_random(),
        };
        assert!(OffsetToken::decode(&run_token.encode()).is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PageSize::parse(None, 50, 500).unwrap().get(), 50);
        assert_eq!(PageSize::parse(Some(500), 50, 500).unwrap().get(), 500);
        assert!(PageSize::parse(Some(0), 50, 500).is_err());
        assert!(PageSize::parse(Some(501), 50, 500).is_err());
        assert!(PageSize::parse(Some(-3), 50, 500).is_err());
        assert_eq!(PageSize::clamped(Some(i64::MAX), 50, 500).get(), 500);
        assert_eq!(PageSize::clamped(Some(-1), 50, 500).get(), 1);
        assert!(PageSize::parse(Some(i64::MAX), 50, 500).is_err());
        assert!(PageSize::parse(Some(i64::MIN), 50, 500).is_err());
        assert_eq!(PageSize::clamped(Some(i64::MIN), 50, 500).get(), 1);
    }

    fn size(n: u32) -> PageSize {
        PageSize::parse(Some(i64::from(n)), n, n).unwrap()
    }

    /// The tokens that used to overflow `start + page_size` in the tasks listing (a panic in a
    /// debug build): offsets at and near `usize::MAX`, with the largest page size.
    #[test]
    fn crafted_offsets_near_usize_max_are_an_empty_last_page() {
        for offset in [
            usize::MAX,
            usize::MAX - 1,
            usize::MAX - 499,
            usize::MAX / 2 + 1,
        ] {
            let token = OffsetToken(offset).encode();
            let decoded = OffsetToken::decode(&token).unwrap();
            assert_eq!(decoded, OffsetToken(offset));
            assert_eq!(decoded.page(size(500), 12), (12..12, None), "{offset}");
        }
    }

    #[test]
    fn offsets_page_through_a_list() {
        assert_eq!(
            OffsetToken(0).page(size(5), 12),
            (0..5, Some(OffsetToken(5)))
        );
        assert_eq!(OffsetToken(10).page(size(5), 12), (10..12, None));
        assert_eq!(OffsetToken(0).page(size(5), 0), (0..0, None));
        assert_eq!(OffsetToken(7).page(size(5), 12), (7..12, None));
    }

    #[test]
    fn offset_tokens_past_usize_or_not_decimal_are_refused() {
        for plain in [
            "t1:18446744073709551616",
            "t1:99999999999999999999999999",
            "t1:-1",
            "t1:+5",
            "t1: 5",
            "t1:",
            "t2:5",
        ] {
            assert_eq!(
                OffsetToken::decode(&URL_SAFE_NO_PAD.encode(plain)),
                Err(InvalidPageToken),
                "{plain}"
            );
        }
        assert_eq!(OffsetToken::decode(&"A".repeat(201)), Err(InvalidPageToken));
    }
}
