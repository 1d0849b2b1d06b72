//! Values that must never be printed.

use std::fmt;

use serde::Deserialize;

/// A secret from configuration (a password, a client secret, a key). Its `Debug` and `Display`
/// are redacted so that a logged config or error can never carry it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: call only where it is handed to the peer that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A database URL. It may carry a password (`postgres://user:pass@host/db`), so it shows itself
/// with the password replaced.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(Secret);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(Secret::new(url))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn is_postgres(&self) -> bool {
        let url = self.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The URL with every credential replaced by `***`: the password of `user:password@`,
    /// and the value of any parameter whose name contains `password` (`?password=`,
    /// `&sslpassword=`, also percent-encoded or in any case), in URL form or in libpq's
    /// `key=value` form.
    pub fn redacted(&self) -> String {
        let url = self.expose();
        let Some(scheme_end) = url.find("://") else {
            return redact_keywords(url);
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        // The last `@` ends the user info: a password may itself hold `@` unencoded.
        let authority = match authority.rfind('@') {
            Some(at) => match authority[..at].split_once(':') {
                Some((user, _)) => format!("{user}:***@{}", &authority[at + 1..]),
                None => authority.to_owned(),
            },
            None => authority.to_owned(),
        };
        let path = match path.split_once('?') {
            Some((before, query)) => {
                let params: Vec<String> = query
                    .split('&')
                    .map(|param| match param.split_once('=') {
                        Some((name, _)) if is_password_name(name) => format!("{name}=***"),
                        _ => param.to_owned(),
                    })
                    .collect();
                format!("{before}?{}", params.join("&"))
            }
            None => path.to_owned(),
        };
        format!("{}://{authority}{path}", &url[..scheme_end])
    }
}

/// Whether a connection parameter carries a password (`password`, `sslpassword`, ...), read
/// after percent-decoding and in any case so that `PassWord` or `pass%77ord` are caught too.
fn is_password_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            decoded.push((h * 16 + l) as u8);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&decoded)
        .to_ascii_lowercase()
        .contains("password")
}

/// libpq's `host=db user=spe password='s e'` form: the value of every password parameter
/// (quoted or not) replaced by `***`.
fn redact_keywords(dsn: &str) -> String {
    let mut out = String::with_capacity(dsn.len());
    let mut rest = dsn;
    while let Some(eq) = rest.find('=') {
        let (head, tail) = rest.split_at(eq);
        let name = head
            .trim_end()
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or_default();
        let value = &tail[1..];
        let value_end = value_end(value);
        out.push_str(head);
        out.push('=');
        if is_password_name(name) {
            out.push_str(&value[..value.len() - value.trim_start().len()]);
            out.push_str("***");
        } else {
            out.push_str(&value[..value_end]);
        }
        rest = &value[value_end..];
    }
    out.push_str(rest);
    out
}

/// Where a libpq value starting `value` ends: after its closing quote (backslash escapes
/// honoured) or at the next whitespace.
fn value_end(value: &str) -> usize {
    let leading = value.len() - value.trim_start().len();
    let body = &value[leading..];
    if let Some(quoted) = body.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return leading + 1 + i + 1,
                _ => {}
            }
        }
        value.len()
    } else {
        leading + body.find(char::is_whitespace).unwrap_or(body.len())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn database_url_hides_password_only() {
        let url = DatabaseUrl::new("postgres://spe:s3cret@db.example:5432/spe?sslmode=require");
        assert_eq!(
            url.redacted(),
            "postgres://spe:***@db.example:5432/spe?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.is_postgres());
        let file = DatabaseUrl::new("sqlite://var/spe.db");
        assert_eq!(file.redacted(), "sqlite://var/spe.db");
        assert!(file.is_sqlite());
        let no_password = DatabaseUrl::new("postgres://spe@db/spe");
        assert_eq!(no_password.redacted(), "postgres://spe@db/spe");
    }

    /// Every place a PostgreSQL connection string can carry a password is redacted, and
    /// nothing else is changed.
    #[test]
    fn every_form_of_database_credential_is_redacted() {
        for (url, redacted) in [
            (
                "postgres://spe:p@ss:w0rd@db/spe",
                "postgres://spe:***@db/spe",
            ),
            (
                "postgresql://db/spe?user=spe&password=s3cret&sslmode=require",
                "postgresql://db/spe?user=spe&password=***&sslmode=require",
            ),
            (
                "postgres://db/spe?sslmode=verify-full&sslpassword=s3cret",
                "postgres://db/spe?sslmode=verify-full&sslpassword=***",
            ),
            (
                "postgres://spe:s3cret@db?PassWord=s3cret&pass%77ord=s3cret",
                "postgres://spe:***@db?PassWord=***&pass%77ord=***",
            ),
            (
                "postgres://spe:s3cret@db:5432?password=s3cret",
                "postgres://spe:***@db:5432?password=***",
            ),
            (
                "host=db user=spe password=s3cret dbname=spe",
                "host=db user=spe password=*** dbname=spe",
            ),
            (
                "host=db password = 's3 \\'cret' sslpassword=s3cret dbname=spe",
                "host=db password = *** sslpassword=*** dbname=spe",
            ),
        ] {
            let url = DatabaseUrl::new(url);
            assert_eq!(url.redacted(), redacted);
            let shown = format!("{url} {url:?}");
            assert!(!shown.contains("s3"), "{shown}");
            assert!(!shown.contains("w0rd"), "{shown}");
        }
    }
}
