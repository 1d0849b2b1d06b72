//! The tar.gz of a workflow folder, built in memory for `workflow register --upload`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Most members an upload may have (the service's limit).
const MAX_MEMBERS: usize = 1000;

/// Packs every regular file and folder under `dir`, with paths relative to it (the archive's
/// root holds `workflow.yaml`), in a fixed order and with fixed metadata, so the same folder
/// always gives the same bytes. Symlinks and special files are refused here already, as the
/// service would refuse them.
pub fn tar_gz(dir: &Path) -> Result<Vec<u8>, String> {
    let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a folder", dir.display()));
    }
    let mut members: Vec<(PathBuf, bool)> = Vec::new();
    collect(dir, Path::new(""), &mut members)?;
    if members.len() > MAX_MEMBERS {
        return Err(format!(
            "{}: more than {MAX_MEMBERS} files and folders; the service refuses such uploads",
            dir.display()
        ));
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, is_dir) in &members {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let result = if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, rel, std::io::empty())
        } else {
            let path = dir.join(rel);
            let content = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            tar.append_data(&mut header, rel, content.as_slice())
        };
        result.map_err(|e| format!("packing {}: {e}", rel.display()))?;
    }
    let gz = tar
        .into_inner()
        .map_err(|e| format!("packing {}: {e}", dir.display()))?;
    let mut gz = gz;
    gz.flush()
        .map_err(|e| format!("packing {}: {e}", dir.display()))?;
    gz.finish()
        .map_err(|e| format!("packing {}: {e}", dir.display()))
}

/// Every member under `root/rel`, folders before what they hold, names sorted.
fn collect(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<(), String> {
    let dir = root.join(rel);
    let mut entries = fs::read_dir(&dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child = rel.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        if kind.is_dir() {
            out.push((child.clone(), true));
            collect(root, &child, out)?;
        } else if kind.is_file() {
            out.push((child, false));
        } else {
            return Err(format!(
                "{}: only regular files and folders can be uploaded (no symlinks or special files)",
                entry.path().display()
            ));
        }
        if out.len() > MAX_MEMBERS {
            return Err(format!(
                "{}: more than {MAX_MEMBERS} files and folders; the service refuses such uploads",
                root.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn folders_pack_deterministically_and_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("data")).unwrap();
        fs::write(dir.path().join("workflow.yaml"), "name: x\n").unwrap();
        fs::write(dir.path().join("data/a.tsv"), "1\t2\n").unwrap();
        let packed = tar_gz(dir.path()).unwrap();
        assert_eq!(packed, tar_gz(dir.path()).unwrap());
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["data", "data/a.tsv", "workflow.yaml"]);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("data/b")).unwrap();
        assert!(tar_gz(dir.path()).unwrap_err().contains("symlinks"));
    }
}
