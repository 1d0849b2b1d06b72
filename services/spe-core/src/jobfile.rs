//! Opening files a job wrote, without trusting them: the one safe-open that the API (log.json,
//! engine logs, task records), the reconciler and the results crawler (outputs) share.
//!
//! The job runs workflow code with write access to its run directory, so any folder or file
//! there may have been swapped for a symbolic link (to another run's logs, to a dataset), a FIFO
//! (a reader blocks forever) or a huge file. Therefore:
//! - only the root (a directory the service created and recorded, e.g. the run directory) is
//!   opened by path; every component beneath it is opened with `openat(O_NOFOLLOW)`, folders
//!   with `O_DIRECTORY`, so no link is followed anywhere on the way;
//! - the last component is opened with `O_NONBLOCK` (opening a FIFO does not wait for a
//!   writer), then `fstat` on the descriptor decides: a regular file with one link, or refused;
//!   `O_NONBLOCK` is then cleared;
//! - reads are capped: [`read_capped`] refuses a file over the cap, [`read_tail`] returns its
//!   last part.
//!
//! Names are checked by [`check_relative_path`]: no `..`, no absolute path, no empty component.

use std::ffi::CString;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::manifest::check_relative_path;

/// Why a job-written file was not opened or read.
#[derive(Debug)]
pub enum Refused {
    /// `rel` is not a clean relative path.
    BadPath(String),
    /// The root directory (service-created) could not be opened.
    Root(io::Error),
    /// A folder on the way is a symbolic link or not a folder.
    LinkedFolder(String),
    /// The file itself is a symbolic link.
    Link,
    /// Nothing is there (yet, or any more).
    NotFound,
    /// A FIFO, socket, device or folder.
    NotRegular(&'static str),
    /// More than one name refers to the content: it may be another file's.
    HardLinked(u64),
    /// Larger than the reader accepts.
    TooLarge { size: u64, max: u64 },
    /// Any other system error.
    Io(io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::BadPath(e) => write!(f, "path refused: {e}"),
            Refused::Root(e) => write!(f, "cannot open the run directory: {e}"),
            Refused::LinkedFolder(part) => {
                write!(f, "folder {part} is a symbolic link or not a folder")
            }
            Refused::Link => f.write_str("a symbolic link (never followed)"),
            Refused::NotFound => f.write_str("not found"),
            Refused::NotRegular(kind) => write!(f, "{kind}, not a regular file"),
            Refused::HardLinked(n) => {
                write!(
                    f,
                    "hard-linked ({n} links): it may be another file's content"
                )
            }
            Refused::TooLarge { size, max } => {
                write!(f, "{size} bytes, more than the {max} bytes read")
            }
            Refused::Io(e) => write!(f, "cannot read: {e}"),
        }
    }
}

impl std::error::Error for Refused {}

/// Why a non-directory is not a regular file with one link, from `lstat` or `fstat`
/// metadata; `None` when it is one.
pub fn refusal(meta: &Metadata) -> Option<Refused> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        Some(Refused::Link)
    } else if kind.is_fifo() {
        Some(Refused::NotRegular("a FIFO"))
    } else if kind.is_socket() {
        Some(Refused::NotRegular("a socket"))
    } else if kind.is_block_device() || kind.is_char_device() {
        Some(Refused::NotRegular("a device"))
    } else if kind.is_dir() {
        Some(Refused::NotRegular("a folder"))
    } else if !kind.is_file() {
        Some(Refused::NotRegular("an unknown kind of file"))
    } else if meta.nlink() > 1 {
        Some(Refused::HardLinked(meta.nlink()))
    } else {
        None
    }
}

/// Opens `rel` beneath the directory `root` without following any symbolic link below `root`
/// (`root` itself is opened with `O_NOFOLLOW` on its last component) and checks it is a
/// regular file with one link. The returned file is in blocking mode.
pub fn open_beneath(root: &Path, rel: &str) -> Result<(File, Metadata), Refused> {
    check_relative_path(rel).map_err(Refused::BadPath)?;
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let mut dir = open_at(None, root.as_os_str().as_bytes(), dir_flags).map_err(Refused::Root)?;
    let mut parts = rel.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_some() {
            dir = open_at(Some(&dir), part.as_bytes(), dir_flags).map_err(|e| {
                match e.raw_os_error() {
                    Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                        Refused::LinkedFolder(part.to_owned())
                    }
                    Some(libc::ENOENT) => Refused::NotFound,
                    _ => Refused::Io(e),
                }
            })?;
            continue;
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let fd = open_at(
            Some(&dir),
            part.as_bytes(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Refused::Link,
            Some(libc::ENOENT) => Refused::NotFound,
            // O_NONBLOCK open of a socket or a device without a driver.
            Some(libc::ENXIO) => Refused::NotRegular("a socket or device"),
            _ => Refused::Io(e),
        })?;
        let file = File::from(fd);
        let meta = file.metadata().map_err(Refused::Io)?;
        if let Some(refused) = refusal(&meta) {
            return Err(refused);
        }
        clear_nonblock(&file).map_err(Refused::Io)?;
        return Ok((file, meta));
    }
    Err(Refused::BadPath("empty path".into()))
}

/// The whole of a job-written file, refused when it holds more than `max` bytes (also when it
/// grows past `max` while being read).
pub fn read_capped(root: &Path, rel: &str, max: u64) -> Result<Vec<u8>, Refused> {
    let (file, meta) = open_beneath(root, rel)?;
    if meta.len() > max {
        return Err(Refused::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    if bytes.len() as u64 > max {
        return Err(Refused::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// Up to the last `max` bytes of a job-written file, and whether its start was cut.
pub fn read_tail(root: &Path, rel: &str, max: u64) -> Result<(Vec<u8>, bool), Refused> {
    let (mut file, meta) = open_beneath(root, rel)?;
    let len = meta.len();
    let cut = len > max;
    if cut {
        file.seek(SeekFrom::Start(len - max)).map_err(Refused::Io)?;
    }
    let mut bytes = Vec::with_capacity(len.min(max) as usize);
    file.take(max)
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    Ok((bytes, cut))
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file` for the duration of both calls.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; only the file status flags change.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open_at(dir: Option<&OwnedFd>, name: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let name = CString::new(name).map_err(|_| io::Error::other("name holds a NUL byte"))?;
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `name` is a valid NUL-terminated string and `at` an open descriptor or AT_FDCWD;
    // a non-negative result is a new descriptor that nothing else owns.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above; the descriptor is owned from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Runs `f` on a thread and fails the test if it does not return within 5 s (a FIFO read
    /// that blocks would otherwise hang the test run).
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the read blocked for more than 5 s")
    }

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// A run directory whose `.weskit/1` holds real logs, and another run's logs outside it.
    fn run_with_logs() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join(".weskit/1")).unwrap();
        std::fs::write(run.join(".weskit/1/log.json"), "{\"exit_code\": 1}").unwrap();
        std::fs::create_dir_all(dir.path().join("other/.weskit/9")).unwrap();
        std::fs::write(
            dir.path().join("other/.weskit/9/stdout"),
            "another run's log",
        )
        .unwrap();
        (dir, run)
    }

    #[test]
    fn a_plain_file_is_read_whole_or_by_its_tail() {
        let (_dir, run) = run_with_logs();
        assert_eq!(
            read_capped(&run, ".weskit/1/log.json", 100).unwrap(),
            b"{\"exit_code\": 1}"
        );
        assert_eq!(
            read_tail(&run, ".weskit/1/log.json", 4).unwrap(),
            (b": 1}".to_vec(), true)
        );
        let (file, _) = open_beneath(&run, ".weskit/1/log.json").unwrap();
        // SAFETY: an open descriptor.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "handed back in blocking mode");
    }

    #[test]
    fn a_symlinked_log_folder_is_refused() {
        let (dir, run) = run_with_logs();
        symlink(dir.path().join("other/.weskit/9"), run.join(".weskit/2")).unwrap();
        let err = read_tail(&run, ".weskit/2/stdout", 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "folder 2 is a symbolic link or not a folder"
        );
        // The same one level up: `.weskit` itself repointed.
        std::fs::remove_dir_all(run.join(".weskit")).unwrap();
        symlink(dir.path().join("other/.weskit"), run.join(".weskit")).unwrap();
        let err = read_tail(&run, ".weskit/9/stdout", 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            "folder .weskit is a symbolic link or not a folder"
        );
    }

    #[test]
    fn a_symlinked_file_and_escapes_are_refused() {
        let (dir, run) = run_with_logs();
        symlink(
            dir.path().join("other/.weskit/9/stdout"),
            run.join(".weskit/1/stdout"),
        )
        .unwrap();
        assert!(matches!(
            read_tail(&run, ".weskit/1/stdout", 100),
            Err(Refused::Link)
        ));
        assert!(matches!(
            read_tail(&run, "../other/.weskit/9/stdout", 100),
            Err(Refused::BadPath(_))
        ));
        assert!(matches!(
            read_tail(&run, "/etc/passwd", 100),
            Err(Refused::BadPath(_))
        ));
        assert!(matches!(
            read_tail(&run, ".weskit/1/missing", 100),
            Err(Refused::NotFound)
        ));
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let (_dir, run) = run_with_logs();
        std::fs::remove_file(run.join(".weskit/1/log.json")).unwrap();
        mkfifo(&run.join(".weskit/1/log.json"));
        mkfifo(&run.join(".weskit/1/stdout"));
        let r = run.clone();
        let err = within_5s(move || read_capped(&r, ".weskit/1/log.json", 100).unwrap_err());
        assert_eq!(err.to_string(), "a FIFO, not a regular file");
        let err = within_5s(move || read_tail(&run, ".weskit/1/stdout", 100).unwrap_err());
        assert_eq!(err.to_string(), "a FIFO, not a regular file");
    }

    #[test]
    fn a_symlink_to_a_fifo_is_refused_without_blocking() {
        let (dir, run) = run_with_logs();
        mkfifo(&dir.path().join("pipe"));
        std::fs::remove_file(run.join(".weskit/1/log.json")).unwrap();
        symlink(dir.path().join("pipe"), run.join(".weskit/1/log.json")).unwrap();
        let err = within_5s(move || read_capped(&run, ".weskit/1/log.json", 100).unwrap_err());
        assert_eq!(err.to_string(), "a symbolic link (never followed)");
    }

    #[test]
    fn oversized_files_are_refused_or_cut() {
        let (_dir, run) = run_with_logs();
        std::fs::write(run.join(".weskit/1/stdout"), vec![b'x'; 1000]).unwrap();
        let err = read_capped(&run, ".weskit/1/stdout", 999).unwrap_err();
        assert_eq!(err.to_string(), "1000 bytes, more than the 999 bytes read");
        let (tail, cut) = read_tail(&run, ".weskit/1/stdout", 10).unwrap();
        assert_eq!((tail.len(), cut), (10, true));
        assert_eq!(
            read_capped(&run, ".weskit/1/stdout", 1000).unwrap().len(),
            1000
        );
    }

    #[test]
    fn hard_links_and_folders_are_refused() {
        let (dir, run) = run_with_logs();
        std::fs::hard_link(
            dir.path().join("other/.weskit/9/stdout"),
            run.join(".weskit/1/stdout"),
        )
        .unwrap();
        assert_eq!(
            read_tail(&run, ".weskit/1/stdout", 100)
                .unwrap_err()
                .to_string(),
            "hard-linked (2 links): it may be another file's content"
        );
        assert_eq!(
            read_tail(&run, ".weskit/1", 100).unwrap_err().to_string(),
            "a folder, not a regular file"
        );
    }
}
