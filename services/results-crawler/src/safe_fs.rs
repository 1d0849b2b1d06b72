//! Reading a run directory without trusting it: the workflow wrote it.
//!
//! The walk never follows a symbolic link (`lstat` only) and reports links, hard-linked files,
//! devices, sockets and FIFOs as refused. A file is then opened for upload with the shared
//! safe-open of `spe_core::jobfile` (one path component at a time with `openat(O_NOFOLLOW)`,
//! `O_NONBLOCK` until `fstat` shows a plain file with one link), so a folder swapped for a link
//! after the walk cannot redirect the read outside the run directory. Names come from the directory itself, so `..` or absolute
//! names cannot occur; names that are not UTF-8 or carry control characters are refused.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use spe_core::jobfile;
use spe_core::manifest::check_relative_path;

/// The deepest folder a walk enters.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A regular file with one link.
    File { path: String, size: u64 },
    /// Something that is never released, with why.
    Refused { path: String, reason: String },
}

/// Lists a run directory, looking at no more than `max_entries` entries. `params_file` (the
/// `<run_id>.yaml` wes-api wrote) is skipped with the bookkeeping. A folder or file that
/// vanishes during the walk is simply not listed; the run directory itself must be there.
pub fn walk(run_dir: &Path, params_file: &str, max_entries: usize) -> io::Result<Vec<Found>> {
    walk_with(run_dir, params_file, max_entries, &mut |_| {})
}

/// [`walk`], calling `entering` with each folder before it is read (tests change the tree
/// there).
pub fn walk_with(
    run_dir: &Path,
    params_file: &str,
    max_entries: usize,
    entering: &mut dyn FnMut(&Path),
) -> io::Result<Vec<Found>> {
    let top = std::fs::symlink_metadata(run_dir)?;
    if !top.is_dir() {
        return Err(io::Error::other("the run directory is not a directory"));
    }
    let mut found = Vec::new();
    let mut stack: Vec<(std::path::PathBuf, String, usize)> =
        vec![(run_dir.to_path_buf(), String::new(), 0)];
    let mut seen = 0usize;
    let gone = |e: &io::Error| e.kind() == io::ErrorKind::NotFound;
    while let Some((dir, prefix, depth)) = stack.pop() {
        entering(&dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if depth > 0 && gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            seen += 1;
            if seen > max_entries {
                return Err(io::Error::other(format!(
                    "more than {max_entries} entries in the run directory"
                )));
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                found.push(Found::Refused {
                    path: format!("{prefix}{}", name.to_string_lossy()),
                    reason: "name is not UTF-8".into(),
                });
                continue;
            };
            if prefix.is_empty()
                && (spe_core::engine::is_bookkeeping(name, None) || name == params_file)
            {
                continue;
            }
            let rel = format!("{prefix}{name}");
            if name.starts_with("..") {
                found.push(Found::Refused {
                    path: rel,
                    reason: "name starts with `..` (looks like a parent reference)".into(),
                });
                continue;
            }
            if let Err(e) = check_relative_path(&rel) {
                found.push(Found::Refused {
                    path: rel,
                    reason: format!("name refused: {e}"),
                });
                continue;
            }
            // DirEntry::metadata does not follow symbolic links.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                found.push(Found::Refused {
                    path: rel,
                    reason: "a symbolic link (never followed)".into(),
                });
            } else if kind.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    found.push(Found::Refused {
                        path: rel,
                        reason: format!("deeper than {MAX_DEPTH} folders"),
                    });
                } else {
                    stack.push((entry.path(), format!("{rel}/"), depth + 1));
                }
            } else {
                match refusal(&meta) {
                    Some(reason) => found.push(Found::Refused { path: rel, reason }),
                    None => found.push(Found::File {
                        path: rel,
                        size: meta.len(),
                    }),
                }
            }
        }
    }
    found.sort_by(|a, b| path_of(a).cmp(path_of(b)));
    Ok(found)
}

fn path_of(f: &Found) -> &str {
    match f {
        Found::File { path, .. } | Found::Refused { path, .. } => path,
    }
}

/// Why a non-directory is not a releasable file, or `None` when it is a regular file with one
/// link (the shared rule of [`spe_core::jobfile`]).
pub fn refusal(meta: &std::fs::Metadata) -> Option<String> {
    jobfile::refusal(meta).map(|r| r.to_string())
}

/// What identifies a file's content cheaply: compared before and after an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Fingerprint {
    pub fn of(meta: &std::fs::Metadata) -> Fingerprint {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// Opens `rel` beneath `run_dir` with the shared safe-open ([`jobfile::open_beneath`]): no
/// symbolic link followed on the way, a regular file with one link, never blocking on a FIFO.
/// `Err(reason)` when it must not be released; `io` errors are reported as reasons too.
pub fn open_beneath(run_dir: &Path, rel: &str) -> Result<(File, std::fs::Metadata), String> {
    jobfile::open_beneath(run_dir, rel).map_err(|e| match e {
        jobfile::Refused::NotFound => "vanished before it was uploaded".to_owned(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_refuses_links_fifos_and_skips_system_entries() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(run.join("plots")).unwrap();
        std::fs::create_dir_all(run.join(".weskit/1")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.csv"), "x").unwrap();
        std::fs::write(run.join("results.csv"), "a,b\n").unwrap();
        std::fs::write(run.join("plots/q.svg"), "<svg/>").unwrap();
        std::fs::write(run.join(".weskit/1/log.json"), "{}").unwrap();
        std::fs::write(run.join("abc.yaml"), "dataset: /x").unwrap();
        std::fs::write(run.join("hard.csv"), "h").unwrap();
        std::fs::hard_link(run.join("hard.csv"), dir.path().join("hard2")).unwrap();
        symlink(outside.join("secret.csv"), run.join("link.csv")).unwrap();
        symlink(&outside, run.join("linkdir")).unwrap();
        let fifo = CString::new(run.join("fifo.csv").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let found = walk(&run, "abc.yaml", 1000).unwrap();
        let files: Vec<&str> = found
            .iter()
            .filter_map(|f| match f {
                Found::File { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(files, ["plots/q.svg", "results.csv"]);
        let refused: Vec<&str> = found
            .iter()
            .filter_map(|f| match f {
                Found::Refused { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(refused, ["fifo.csv", "hard.csv", "link.csv", "linkdir"]);
    }

    #[test]
    fn open_beneath_follows_no_link_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("plots")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/q.svg"), "secret").unwrap();
        std::fs::write(run.join("plots/q.svg"), "<svg/>").unwrap();
        assert!(open_beneath(&run, "plots/q.svg").is_ok());
        symlink(dir.path().join("outside"), run.join("lnk")).unwrap();
        let err = open_beneath(&run, "lnk/q.svg").unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        symlink(dir.path().join("outside/q.svg"), run.join("f.svg")).unwrap();
        assert!(open_beneath(&run, "f.svg").is_err());
        assert!(open_beneath(&run, "../outside/q.svg").is_err());
        assert!(open_beneath(&run, "/etc/passwd").is_err());
        assert!(
            open_beneath(&run, "missing.csv")
                .unwrap_err()
                .contains("vanished")
        );
    }

    fn files(found: &[Found]) -> Vec<&str> {
        found
            .iter()
            .filter_map(|f| match f {
                Found::File { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_engines_bookkeeping_is_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        for d in [
            ".snakemake/log",
            ".nextflow/cache",
            "work/ab/cdef",
            "out/work",
        ] {
            std::fs::create_dir_all(run.join(d)).unwrap();
        }
        for f in [
            ".snakemake/log/x.log",
            ".nextflow/cache/db",
            "work/ab/cdef/.command.sh",
            ".nextflow.log",
            ".nextflow.log.1",
            "out/work/kept.csv",
            "results.csv",
        ] {
            std::fs::write(run.join(f), "x").unwrap();
        }
        let found = walk(run, "abc.yaml", 1000).unwrap();
        // Only at the top, where the engines write them; a folder named work deeper is data.
        assert_eq!(files(&found), ["out/work/kept.csv", "results.csv"]);
    }

    #[test]
    fn a_folder_vanishing_during_the_walk_is_left_out_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        for d in ["a", "b", "c"] {
            std::fs::create_dir_all(run.join(d)).unwrap();
            std::fs::write(run.join(d).join("f.csv"), "x").unwrap();
        }
        // When the walk enters its first sub-folder, the other two are removed: one of them
        // was listed already and is gone when the walk gets to it.
        let mut removed = false;
        let found = walk_with(&run, "abc.yaml", 1000, &mut |entered| {
            if entered != run.as_path() && !removed {
                removed = true;
                for d in ["a", "b", "c"] {
                    if run.join(d) != entered {
                        std::fs::remove_dir_all(run.join(d)).unwrap();
                    }
                }
            }
        })
        .unwrap();
        assert!(removed);
        assert_eq!(files(&found).len(), 1, "{found:?}");
        // The run directory itself gone is an error.
        std::fs::remove_dir_all(&run).unwrap();
        let err = walk(&run, "abc.yaml", 1000).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_walk_stops_at_its_entry_limit() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..11 {
            std::fs::write(dir.path().join(format!("{i}.csv")), "x").unwrap();
        }
        let err = walk(dir.path(), "abc.yaml", 10).unwrap_err();
        assert_eq!(err.to_string(), "more than 10 entries in the run directory");
        assert_eq!(walk(dir.path(), "abc.yaml", 11).unwrap().len(), 11);
    }
}
