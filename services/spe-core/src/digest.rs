//! The digest that pins an approved workflow version to its exact files.
//!
//! SHA-256 over the files sorted by relative path (`/`-separated, UTF-8); for each file:
//! the path bytes, a 0 byte, the content length as 8 big-endian bytes, then the content. The
//! length prefix makes the encoding unambiguous, so no two different trees share a digest input.

use std::path::Path;

use sha2::{Digest, Sha256};

/// A workflow digest, as lowercase hex (64 characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct WorkflowDigest(String);

impl WorkflowDigest {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(hex_text: &str) -> Option<Self> {
        (hex_text.len() == 64
            && hex_text
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| WorkflowDigest(hex_text.to_owned()))
    }
}

impl std::fmt::Display for WorkflowDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Digest of files given as `(relative path, content)`, in any order.
pub fn digest_files<P: AsRef<str>, C: AsRef<[u8]>>(files: &[(P, C)]) -> WorkflowDigest {
    let mut sorted: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_ref(), c.as_ref()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (path, content) in sorted {
        hasher.update(path.as_bytes());
        hasher.update([0u8]);
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(content);
    }
    WorkflowDigest(hex::encode(hasher.finalize()))
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{0}: workflow folders may hold only regular files and folders (no symlinks, devices or pipes)"
    )]
    NotRegular(String),
    #[error("{0}: file names must be UTF-8")]
    NotUtf8(String),
}

/// Reads the named files of a workflow folder (relative paths) and returns them with their
/// contents. Symlinks and anything but regular files are refused, so the digest covers
/// exactly what will run.
pub fn read_files(root: &Path, relative: &[String]) -> Result<Vec<(String, Vec<u8>)>, TreeError> {
    let mut out = Vec::with_capacity(relative.len());
    for rel in relative {
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|source| TreeError::Io {
            path: rel.clone(),
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(TreeError::NotRegular(rel.clone()));
        }
        let content = std::fs::read(&path).map_err(|source| TreeError::Io {
            path: rel.clone(),
            source,
        })?;
        out.push((rel.clone(), content));
    }
    Ok(out)
}

/// Lists every regular file under `root` as a sorted relative path, refusing symlinks and
/// special files anywhere in the tree.
pub fn list_tree(root: &Path) -> Result<Vec<String>, TreeError> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| TreeError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| TreeError::Io {
                path: dir.display().to_string(),
                source,
            })?;
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_str()
                .ok_or_else(|| TreeError::NotUtf8(path.display().to_string()))?
                .to_owned();
            let kind = entry.file_type().map_err(|source| TreeError::Io {
                path: rel.clone(),
                source,
            })?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                files.push(rel);
            } else {
                return Err(TreeError::NotRegular(rel));
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_content_and_names_do() {
        let a = digest_files(&[("Snakefile", "rule all:"), ("env.yaml", "x")]);
        let b = digest_files(&[("env.yaml", "x"), ("Snakefile", "rule all:")]);
        assert_eq!(a, b);
        assert_ne!(
            a,
            digest_files(&[("Snakefile", "rule all: "), ("env.yaml", "x")])
        );
        assert_ne!(
            a,
            digest_files(&[("snakefile", "rule all:"), ("env.yaml", "x")])
        );
        // Moving bytes between a name and a content changes the digest.
        assert_ne!(digest_files(&[("ab", "c")]), digest_files(&[("a", "bc")]));
        assert!(WorkflowDigest::parse(a.as_str()).is_some());
        assert!(WorkflowDigest::parse("xyz").is_none());
    }

    #[test]
    fn trees_are_read_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("Snakefile"), "include: 'rules/a.smk'").unwrap();
        std::fs::write(dir.path().join("rules/a.smk"), "rule a:").unwrap();
        let files = list_tree(dir.path()).unwrap();
        assert_eq!(
            files,
            vec!["Snakefile".to_owned(), "rules/a.smk".to_owned()]
        );
        let read = read_files(dir.path(), &files).unwrap();
        assert_eq!(read[1].1, b"rule a:");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("rules/b.smk")).unwrap();
        assert!(matches!(
            list_tree(dir.path()),
            Err(TreeError::NotRegular(_))
        ));
        assert!(matches!(
            read_files(dir.path(), &["rules/b.smk".to_owned()]),
            Err(TreeError::NotRegular(_))
        ));
    }
}
