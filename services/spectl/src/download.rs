//! One released file onto the local disk: written to `<file>.part`, resumed with an HTTP Range
//! request when a part is already there, checked against the SHA-256 of the release record,
//! and renamed to `<file>` only when it matches. A file that does not match is never left
//! under its name nor as a part (resuming from wrong bytes could never succeed).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::api::{Api, Failure, describe};

/// What the release record says a file is.
pub struct Expected<'a> {
    /// The file's path relative to the run directory, as GET /results/{run_id} lists it.
    pub path: &'a str,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: &'a str,
}

/// How a file came to be in place.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded from the start.
    Fetched,
    /// Continued from a `.part` of this many bytes.
    Resumed(u64),
    /// Already there with the recorded digest; nothing was fetched.
    Present,
}

/// Where `path` (a released file's run-relative path) goes below `dir`: refused when it could
/// land anywhere else (absolute, `..`), whatever the service says.
pub fn destination(dir: &Path, path: &str) -> Result<PathBuf, Failure> {
    let relative = Path::new(path);
    let plain = !path.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Failure::Other(format!(
            "the service listed {path:?}, which is not a relative path; not written"
        )));
    }
    Ok(dir.join(relative))
}

/// `dest` with `.part` appended to its file name.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// The SHA-256 of a file, lower-case hex.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn local(path: &Path, e: std::io::Error) -> Failure {
    Failure::Other(format!("{}: {e}", path.display()))
}

/// Whether `dest` is already the recorded file. A different file there is an error: spectl
/// does not overwrite what it did not write.
fn already_present(dest: &Path, expected: &Expected<'_>) -> Result<bool, Failure> {
    if !dest.exists() {
        return Ok(false);
    }
    if sha256_of(dest).map_err(|e| local(dest, e))? == expected.sha256 {
        return Ok(true);
    }
    Err(Failure::Other(format!(
        "{}: exists and differs from the released {} (SHA-256 {}); move it away first",
        dest.display(),
        expected.path,
        expected.sha256
    )))
}

/// Fetches the file into `dest` as described above. `link` (asking the service for a
/// presigned URL, which is recorded) is awaited only when bytes are missing; `progress` draws
/// a bar on stderr (hidden when stderr is not a terminal).
pub async fn fetch(
    api: &Api,
    link: impl Future<Output = Result<Url, Failure>>,
    dest: &Path,
    expected: &Expected<'_>,
    progress: bool,
) -> Result<Outcome, Failure> {
    if already_present(dest, expected)? {
        return Ok(Outcome::Present);
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| local(parent, e))?;
    }
    let part = part_path(dest);
    let mut have = match std::fs::metadata(&part) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(local(&part, e)),
    };
    if have > expected.size {
        // Longer than the file: not a prefix of it.
        std::fs::remove_file(&part).map_err(|e| local(&part, e))?;
        have = 0;
    }
    // A complete part (the rename failed last time) needs no bytes, only the check.
    let resumed = if have == expected.size && have > 0 {
        true
    } else {
        let link = link.await?;
        transfer(api, &link, &part, have, expected, progress).await? && have > 0
    };
    verify_and_rename(&part, dest, expected)?;
    Ok(if resumed {
        Outcome::Resumed(have)
    } else {
        Outcome::Fetched
    })
}

/// Appends the bytes from `have` on to `part` (from 0 when the server ignores the Range);
/// returns whether it appended.
async fn transfer(
    api: &Api,
    link: &Url,
    part: &Path,
    mut have: u64,
    expected: &Expected<'_>,
    progress: bool,
) -> Result<bool, Failure> {
    let mut res = api.get_link(link, have).await?;
    let status = res.status();
    let append = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => true,
        StatusCode::OK => false,
        _ => {
            return Err(Failure::Other(format!(
                "downloading {}: the storage answered {status}",
                expected.path
            )));
        }
    };
    if !append {
        have = 0;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| local(part, e))?;
    let bar = progress_bar(progress, expected.size, expected.path);
    bar.set_position(have);
    while let Some(chunk) = res.chunk().await.map_err(|e| {
        Failure::Other(format!(
            "downloading {}: {} ({have} bytes kept in {}; run the command again to resume)",
            expected.path,
            describe(e),
            part.display()
        ))
    })? {
        file.write_all(&chunk).map_err(|e| local(part, e))?;
        have += chunk.len() as u64;
        bar.set_position(have);
        if have > expected.size {
            break;
        }
    }
    file.flush().map_err(|e| local(part, e))?;
    bar.finish_and_clear();
    Ok(append)
}

/// A transfer's progress bar on stderr (hidden when not asked for, or stderr is no terminal).
pub fn progress_bar(shown: bool, total: u64, name: &str) -> ProgressBar {
    let bar = if shown {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(name.to_owned());
    bar
}

/// Renames `part` to `dest` when its digest is the recorded one; else removes it and says
/// both digests.
fn verify_and_rename(part: &Path, dest: &Path, expected: &Expected<'_>) -> Result<(), Failure> {
    let actual = sha256_of(part).map_err(|e| local(part, e))?;
    if actual != expected.sha256 {
        let removed = std::fs::remove_file(part)
            .map(|()| "removed".to_owned())
            .unwrap_or_else(|e| format!("could not be removed: {e}"));
        return Err(Failure::Other(format!(
            "{}: SHA-256 mismatch: the release record says {}, the download is {}; {} {removed}",
            expected.path,
            expected.sha256,
            actual,
            part.display()
        )));
    }
    std::fs::rename(part, dest).map_err(|e| local(dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_below_the_folder() {
        let dir = Path::new("/tmp/out");
        assert_eq!(
            destination(dir, "results/a.csv").unwrap(),
            Path::new("/tmp/out/results/a.csv")
        );
        for bad in ["", "/etc/passwd", "../x", "results/../../x", "./x"] {
            assert!(destination(dir, bad).is_err(), "{bad}");
        }
        assert_eq!(
            part_path(Path::new("/tmp/out/a.csv")),
            Path::new("/tmp/out/a.csv.part")
        );
    }
}
