//! S3 keys from a file (`crawler.credentials_file`), read again whenever the file changes: an
//! operator rotates keys by rewriting the file, with no restart and no upload lost (the SDK
//! asks for the keys again before each request once they are due, and in-flight requests keep
//! theirs).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};

/// How long keys read from the file are used before the file is looked at again (its
/// modification time; it is read again only when that changed).
pub const RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct FileCredentials {
    path: PathBuf,
    recheck: Duration,
    /// The keys last read, and the modification time of the file they came from.
    last: Mutex<Option<(SystemTime, Credentials)>>,
}

impl FileCredentials {
    pub fn new(path: PathBuf) -> FileCredentials {
        FileCredentials::rechecked_every(path, RECHECK)
    }

    /// As [`FileCredentials::new`], looking at the file every `recheck` (tests use a short one).
    pub fn rechecked_every(path: PathBuf, recheck: Duration) -> FileCredentials {
        FileCredentials {
            path,
            recheck,
            last: Mutex::new(None),
        }
    }

    fn load(&self) -> Result<Credentials, CredentialsError> {
        let problem = |why: String| {
            CredentialsError::provider_error(format!(
                "crawler.credentials_file {}: {why}",
                self.path.display()
            ))
        };
        let meta = std::fs::metadata(&self.path).map_err(|e| problem(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(problem(
                    "others may read it: chmod 600 (it holds the S3 secret key)".to_owned(),
                ));
            }
        }
        let modified = meta.modified().map_err(|e| problem(e.to_string()))?;
        let expiry = SystemTime::now() + self.recheck;
        if let Ok(last) = self.last.lock()
            && let Some((at, keys)) = last.as_ref()
            && *at == modified
        {
            return Ok(Credentials::new(
                keys.access_key_id(),
                keys.secret_access_key(),
                None,
                Some(expiry),
                "spe-credentials-file",
            ));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| problem(e.to_string()))?;
        let (mut access, mut secret) = (None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(problem(
                    "each line is name=value (access_key, secret_key)".to_owned(),
                ));
            };
            match name.trim() {
                "access_key" | "AWS_ACCESS_KEY_ID" => access = Some(value.trim().to_owned()),
                "secret_key" | "AWS_SECRET_ACCESS_KEY" => secret = Some(value.trim().to_owned()),
                other => {
                    return Err(problem(format!(
                        "unknown name {other:?}; known: access_key, secret_key"
                    )));
                }
            }
        }
        let (Some(access), Some(secret)) = (access, secret) else {
            return Err(problem("needs both access_key and secret_key".to_owned()));
        };
        let keys = Credentials::new(access, secret, None, Some(expiry), "spe-credentials-file");
        if let Ok(mut last) = self.last.lock() {
            *last = Some((modified, keys.clone()));
        }
        tracing::info!(file = %self.path.display(), "S3 keys read from the credentials file");
        Ok(keys)
    }
}

impl ProvideCredentials for FileCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(self.load())
    }
}
