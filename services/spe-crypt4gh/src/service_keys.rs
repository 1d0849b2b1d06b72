//! The service's secret keys as a deployment keeps them: key files and a passphrase file that
//! only the service's account may read (a file group or others can read is refused), or the
//! passphrase from an environment variable. Shared by the processes that open headers: the
//! runner in a job, wes-api for downloads bound to their reader and upload checks.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keys::SecretKey;

/// Largest passphrase file read.
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// Where the passphrase comes from.
#[derive(Debug, Clone)]
pub enum Passphrase {
    /// The first line of this file.
    File(PathBuf),
    /// The named environment variable of this process.
    Env(String),
}

/// Loads every key of `paths` (current first) with the passphrase; each error is a sentence
/// naming the file or variable, never the passphrase.
pub fn load(paths: &[PathBuf], passphrase: &Passphrase) -> Result<Vec<SecretKey>, String> {
    if paths.is_empty() {
        return Err("no service secret key is configured".to_owned());
    }
    let passphrase = Zeroizing::new(match passphrase {
        Passphrase::File(path) => {
            only_ours(path, "passphrase file")?;
            let mut text = Zeroizing::new(String::new());
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_PASSPHRASE_FILE).read_to_string(&mut text))
                .map_err(|e| format!("passphrase file {}: {e}", path.display()))?;
            text.lines().next().unwrap_or("").to_owned()
        }
        Passphrase::Env(var) => {
            std::env::var(var).map_err(|_| format!("the passphrase variable {var} is not set"))?
        }
    });
    paths
        .iter()
        .map(|path| {
            only_ours(path, "service secret key")?;
            SecretKey::load(path, passphrase.as_bytes())
                .map_err(|e| format!("service secret key {}: {e}", path.display()))
        })
        .collect()
}

/// Refuses a secret file that other accounts can read.
pub fn only_ours(path: &Path, what: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} {} is readable by other accounts (mode {mode:04o}): it must be 0600 or 0400",
            path.display()
        ));
    }
    Ok(())
}
