//! Workflows uploaded as tar.gz: unpacked safely into a private temporary folder under the
//! upload directory, then moved, read-only, to `<upload_dir>/<name>/<version>-<short digest>`.
//!
//! Only regular files and folders are unpacked. Symlinks, hard links, devices, FIFOs, absolute
//! member names, `..` components, more than [`MAX_FILES`] members and more than the configured
//! number of unpacked bytes are refused, each with a message naming the problem. The archive is
//! read from memory (the request body, itself bounded by `server.max_body_bytes`) and the
//! decompressed stream is capped as well, so a gzip bomb stops early. Nothing is written outside
//! the temporary folder, which is removed whenever the upload is refused.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use spe_core::manifest::{MANIFEST_FILE, MAX_FILES};

/// Bytes allowed for tar headers, long names and padding on top of the files' contents.
const HEADER_ALLOWANCE: u64 = 16 * 1024 * 1024;
/// Longest member name accepted.
const MAX_MEMBER_NAME: usize = 4096;

/// Why an upload failed: a refusal the client can fix (400), or the server's own I/O.
#[derive(Debug)]
pub enum UploadError {
    Refused(String),
    Io(io::Error),
}

impl From<io::Error> for UploadError {
    fn from(e: io::Error) -> Self {
        UploadError::Io(e)
    }
}

fn refused(msg: impl Into<String>) -> UploadError {
    UploadError::Refused(msg.into())
}

/// An archive unpacked into a temporary folder under the upload directory (removed on drop).
pub struct Unpacked {
    _temp: tempfile::TempDir,
    /// The workflow folder inside it: the folder holding `workflow.yaml`.
    pub root: PathBuf,
}

/// A reader that fails once more than `left` bytes have come through, and says so in `hit`.
struct Capped<'a, R> {
    inner: R,
    left: u64,
    hit: &'a Cell<bool>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more would tell whether the stream really goes on; refusing is enough.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.hit.set(true);
            return Err(io::Error::other("archive unpacks to too many bytes"));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..n])?;
        self.left -= read as u64;
        Ok(read)
    }
}

fn shown(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let short: String = text.chars().take(200).collect();
    format!("{short:?}")
}

/// The relative path a member name stands for, with `.` components dropped; refuses absolute
/// names, `..`, control characters and names that are not UTF-8.
fn member_path(raw: &[u8]) -> Result<PathBuf, UploadError> {
    let name = shown(raw);
    let text = std::str::from_utf8(raw)
        .map_err(|_| refused(format!("archive member {name}: names must be UTF-8")))?;
    if text.len() > MAX_MEMBER_NAME {
        return Err(refused(format!(
            "archive member {name}: names must be at most {MAX_MEMBER_NAME} bytes"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(refused(format!(
            "archive member {name}: names must not contain control characters"
        )));
    }
    let mut out = PathBuf::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(format!(
                    "archive member {name}: absolute paths are not allowed"
                )));
            }
            Component::ParentDir => {
                return Err(refused(format!(
                    "archive member {name}: `..` components are not allowed"
                )));
            }
        }
    }
    Ok(out)
}

/// What the entry type is, for messages.
fn kind_name(kind: tar::EntryType) -> &'static str {
    if kind.is_symlink() {
        "symbolic links are not allowed"
    } else if kind.is_hard_link() {
        "hard links are not allowed"
    } else if kind.is_character_special() || kind.is_block_special() {
        "device files are not allowed"
    } else if kind.is_fifo() {
        "FIFOs are not allowed"
    } else {
        "only regular files and folders are allowed"
    }
}

/// Unpacks a tar.gz held in memory into a new temporary folder under `upload_dir` (blocking
/// I/O) and finds the workflow folder in it: the archive's root when `workflow.yaml` is there,
/// else its one top-level folder.
pub fn unpack(archive: &[u8], upload_dir: &Path, max_bytes: u64) -> Result<Unpacked, UploadError> {
    let temp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempdir_in(upload_dir)?;
    let tree = temp.path().join("tree");
    fs::create_dir(&tree)?;
    let hit = Cell::new(false);
    let too_big = || refused(format!("archive: unpacks to more than {max_bytes} bytes"));
    let not_archive = |e: io::Error, hit: &Cell<bool>| {
        if hit.get() {
            too_big()
        } else {
            let cause: String = e.to_string().chars().take(200).collect();
            refused(format!("body: not a gzip-compressed tar archive: {cause}"))
        }
    };
    let reader = Capped {
        inner: flate2::read::GzDecoder::new(archive),
        left: max_bytes.saturating_add(HEADER_ALLOWANCE),
        hit: &hit,
    };
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| not_archive(e, &hit))?;
    let mut count = 0usize;
    let mut total = 0u64;
    let mut files: HashSet<PathBuf> = HashSet::new();
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| not_archive(e, &hit))?;
        count += 1;
        if count > MAX_FILES {
            return Err(refused(format!("archive: more than {MAX_FILES} members")));
        }
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Archive-wide metadata (`git archive` writes the commit id there).
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let name = shown(&raw);
        let rel = member_path(&raw)?;
        let conflict = || {
            refused(format!(
                "archive member {name}: appears twice, or both as a file and as a folder"
            ))
        };
        if rel.ancestors().skip(1).any(|a| files.contains(a)) {
            return Err(conflict());
        }
        if kind.is_dir() {
            if files.contains(&rel) {
                return Err(conflict());
            }
            if !rel.as_os_str().is_empty() {
                fs::create_dir_all(tree.join(&rel))?;
                dirs.extend(rel.ancestors().map(Path::to_path_buf));
            }
        } else if kind == tar::EntryType::Regular {
            if rel.as_os_str().is_empty() {
                return Err(refused(format!(
                    "archive member {name}: a file without a name"
                )));
            }
            if files.contains(&rel) || dirs.contains(&rel) {
                return Err(conflict());
            }
            let size = entry.size();
            total = total.saturating_add(size);
            if total > max_bytes {
                return Err(refused(format!(
                    "archive member {name}: with it the archive unpacks to more than {max_bytes} bytes"
                )));
            }
            if let Some(parent) = rel.parent() {
                fs::create_dir_all(tree.join(parent))?;
                dirs.extend(parent.ancestors().map(Path::to_path_buf));
            }
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(tree.join(&rel))?;
            // Executable stays executable (a Nextflow `bin/` script must run); nothing else
            // of the archive's modes is kept.
            let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
            if executable {
                out.set_permissions(fs::Permissions::from_mode(0o755))?;
            }
            let copied = io::copy(&mut entry, &mut out).map_err(|e| not_archive(e, &hit))?;
            if copied != size {
                return Err(refused(format!(
                    "archive member {name}: the archive ends inside it"
                )));
            }
            files.insert(rel);
        } else {
            return Err(refused(format!(
                "archive member {name}: {}",
                kind_name(kind)
            )));
        }
    }
    let root = if is_file(&tree.join(MANIFEST_FILE)) {
        tree
    } else {
        let mut top = fs::read_dir(&tree)?.collect::<Result<Vec<_>, _>>()?;
        match top.pop() {
            Some(only)
                if top.is_empty()
                    && only.file_type()?.is_dir()
                    && is_file(&only.path().join(MANIFEST_FILE)) =>
            {
                only.path()
            }
            _ => {
                return Err(refused(format!(
                    "archive: no {MANIFEST_FILE} at its root or inside its one top-level folder"
                )));
            }
        }
    };
    Ok(Unpacked { _temp: temp, root })
}

fn is_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Sets every file under `dir` to 0444 (0555 when it is executable) and every folder below it
/// to 0555 (or, with `writable`, folders back to 0755 so that they can be removed).
fn set_modes(dir: &Path, writable: bool) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if writable {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755))?;
            }
            set_modes(&entry.path(), writable)?;
            if !writable {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o555))?;
            }
        } else if kind.is_file() && !writable {
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            let mode = if executable { 0o555 } else { 0o444 };
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Moves the unpacked workflow folder to `target`, read-only, in one rename (so a half-unpacked
/// upload is never found there). Returns `false`, leaving the folder already there untouched,
/// when `target` exists: an earlier upload of the same version and digest.
pub fn install(unpacked: Unpacked, target: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(target).is_ok() {
        return Ok(false);
    }
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    set_modes(&unpacked.root, false)?;
    if let Err(e) = fs::rename(&unpacked.root, target) {
        // Writable again, so that the temporary folder can be removed.
        let _ = set_modes(&unpacked.root, true);
        return match e.kind() {
            io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty => Ok(false),
            _ => Err(e),
        };
    }
    fs::set_permissions(target, fs::Permissions::from_mode(0o555))?;
    Ok(true)
}

/// Removes a folder [`install`] created, and its parent when that is left empty.
pub fn remove(target: &Path) -> io::Result<()> {
    fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
    set_modes(target, true)?;
    fs::remove_dir_all(target)?;
    if let Some(parent) = target.parent() {
        let _ = fs::remove_dir(parent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_checked() {
        assert_eq!(member_path(b"./a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(member_path(b"./").unwrap(), PathBuf::new());
        for bad in [&b"/etc/passwd"[..], b"a/../../x", b"..", b"a\nb", b"\xff"] {
            assert!(matches!(member_path(bad), Err(UploadError::Refused(_))));
        }
    }

    #[test]
    fn the_decompressed_stream_is_capped() {
        let hit = Cell::new(false);
        let mut r = Capped {
            inner: &[0u8; 10][..],
            left: 4,
            hit: &hit,
        };
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(hit.get());
        let hit = Cell::new(false);
        let mut r = Capped {
            inner: &[0u8; 4][..],
            left: 4,
            hit: &hit,
        };
        let mut out = Vec::new();
        assert_eq!(r.read_to_end(&mut out).unwrap(), 4);
        assert!(!hit.get());
    }
}
