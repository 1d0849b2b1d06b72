//! Encrypted inputs: before the engine starts, the files of the run's Crypt4GH-encrypted
//! datasets are decrypted into `crypt4gh/` of the sandbox's private scratch (mode 0700, shown
//! inside the sandbox under [`sandbox::SCRATCH`]), and a copy of the params file that names the
//! plaintext instead of the encrypted location is shown at the params file's path. The
//! workflow sees plaintext only there; [`Plaintext::wipe`] removes it when the engine has
//! ended. Any failure (key, passphrase, a file that is not Crypt4GH, not for this key,
//! corrupted or cut) stops the run before the engine starts, with the reason in log.json.
//!
//! The secret keys and the passphrase are read from files the spec names (readable by the
//! job's account only: a key or passphrase file readable by group or others is refused) or the
//! passphrase from an environment variable of the runner; none of it reaches the engine, whose
//! environment is the allowlist.

use std::io::BufWriter;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;
use spe_core::runspec::{Crypt4ghInputs, PassphraseSource, RunSpec};
use spe_crypt4gh::{DecryptOptions, SecretKey, service_keys};

use crate::sandbox;

/// The plaintext folder's name inside the scratch.
pub const PLAINTEXT_DIR: &str = "crypt4gh";

/// The decrypted inputs of one run (host paths inside the runner's private folder).
#[derive(Debug)]
pub struct Plaintext {
    /// `<private>/scratch/crypt4gh`: the plaintext.
    pub root: PathBuf,
    /// The params file naming the plaintext, shown read-only at the spec's params file.
    pub params: PathBuf,
}

impl Plaintext {
    /// Removes all plaintext. Folders the engine made read-only are made writable first.
    pub fn wipe(&self) -> Result<(), String> {
        if !self.root.exists() {
            return Ok(());
        }
        if std::fs::remove_dir_all(&self.root).is_err() {
            make_writable(&self.root);
            std::fs::remove_dir_all(&self.root)
                .map_err(|e| format!("the decrypted inputs could not be removed: {e}"))?;
        }
        Ok(())
    }
}

/// Where the plaintext of `location` appears: inside the scratch, under the location's own
/// path (so two datasets never collide), `.c4gh` dropped from file names.
fn plaintext_path(base: &Path, location: &Path) -> PathBuf {
    base.join(location.strip_prefix("/").unwrap_or(location))
}

fn strip_c4gh(path: &Path) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_suffix(".c4gh")) {
        Some(stem) if !stem.ends_with('/') && !stem.is_empty() => PathBuf::from(stem),
        _ => path.to_path_buf(),
    }
}

/// Decrypts the encrypted datasets of `spec` into `<private>/scratch/crypt4gh` and writes the
/// params copy into `<private>/params/`. `private` is the runner's fresh private folder.
pub fn decrypt_inputs(
    spec: &RunSpec,
    inputs: &Crypt4ghInputs,
    private: &Path,
) -> Result<Plaintext, String> {
    let keys = load_keys(inputs)?;
    let root = private.join("scratch").join(PLAINTEXT_DIR);
    let shown_root = Path::new(sandbox::SCRATCH).join(PLAINTEXT_DIR);
    private_dir(&root)?;
    let plaintext = Plaintext {
        root: root.clone(),
        params: private.join("params").join(
            spec.params_file
                .file_name()
                .ok_or("the params file has no name")?,
        ),
    };
    let mut renames: Vec<(String, String)> = Vec::new();
    for location in &inputs.datasets {
        let meta = std::fs::symlink_metadata(location).map_err(|_| {
            format!(
                "encrypted dataset location {} is not reachable on this node",
                location.display()
            )
        })?;
        let host = plaintext_path(&root, location);
        let shown = plaintext_path(&shown_root, location);
        if meta.is_file() {
            if let Some(parent) = host.parent() {
                private_dir(parent)?;
            }
            decrypt_file(location, &strip_c4gh(&host), &keys)?;
            renames.push((text(location), text(&strip_c4gh(&shown))));
        } else if meta.is_dir() {
            private_dir(&host)?;
            for rel in files_under(location)? {
                let target = strip_c4gh(&host.join(&rel));
                if let Some(parent) = target.parent() {
                    private_dir(parent)?;
                }
                decrypt_file(&location.join(&rel), &target, &keys)?;
            }
            renames.push((text(location), text(&shown)));
        } else {
            return Err(format!(
                "encrypted dataset location {} is neither a file nor a folder",
                location.display()
            ));
        }
    }
    write_params(&spec.params_file, &plaintext.params, &renames)?;
    Ok(plaintext)
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn load_keys(inputs: &Crypt4ghInputs) -> Result<Vec<SecretKey>, String> {
    if inputs.secret_keys.is_empty() {
        return Err("encrypted datasets, and no service secret key is configured".to_owned());
    }
    let passphrase = match &inputs.passphrase {
        PassphraseSource::File(path) => service_keys::Passphrase::File(path.clone()),
        PassphraseSource::Env(var) => service_keys::Passphrase::Env(var.clone()),
    };
    service_keys::load(&inputs.secret_keys, &passphrase)
        .map_err(|e| e.replace("is not set", "is not set in the job's environment"))
}

fn private_dir(path: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| format!("cannot create the plaintext folder: {e}"))
}

/// Regular files under `dir`, relative; a link or a special file is refused (it could point
/// anywhere on the node).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let entries = std::fs::read_dir(dir.join(&rel))
            .map_err(|e| format!("encrypted dataset {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("encrypted dataset {}: {e}", dir.display()))?;
            let child = rel.join(entry.file_name());
            let kind = entry
                .file_type()
                .map_err(|e| format!("encrypted dataset {}: {e}", dir.display()))?;
            if kind.is_dir() {
                pending.push(child);
            } else if kind.is_file() {
                found.push(child);
            } else {
                return Err(format!(
                    "encrypted dataset {} holds {}, which is not a regular file",
                    dir.display(),
                    child.display()
                ));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn decrypt_file(from: &Path, to: &Path, keys: &[SecretKey]) -> Result<(), String> {
    let input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from)
        .map_err(|e| format!("cannot decrypt {}: {e}", from.display()))?;
    let output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| format!("cannot decrypt {}: {e}", from.display()))?;
    spe_crypt4gh::decrypt(
        input,
        BufWriter::with_capacity(1 << 20, output),
        keys,
        DecryptOptions::default(),
    )
    .map(|_| ())
    .map_err(|e| format!("cannot decrypt {}: {e}", from.display()))
}

/// The params file with every string naming an encrypted location (or a file in it) turned
/// into the plaintext's path inside the sandbox, written as JSON (which YAML readers read too).
fn write_params(params: &Path, to: &Path, renames: &[(String, String)]) -> Result<(), String> {
    let text =
        std::fs::read_to_string(params).map_err(|e| format!("cannot read the params file: {e}"))?;
    let mut value: Value =
        serde_yaml::from_str(&text).map_err(|e| format!("the params file does not parse: {e}"))?;
    rename_strings(&mut value, renames);
    private_dir(to.parent().ok_or("the params copy has no folder")?)?;
    let bytes = serde_json::to_vec_pretty(&value)
        .map_err(|e| format!("cannot write the params copy: {e}"))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(to)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
        .map_err(|e| format!("cannot write the params copy: {e}"))
}

fn rename_strings(value: &mut Value, renames: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (from, to) in renames {
                if s == from {
                    *s = to.clone();
                    return;
                }
                if let Some(rest) = s.strip_prefix(&format!("{from}/")) {
                    *s = format!("{to}/{}", strip_c4gh(Path::new(rest)).display());
                    return;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_strings(v, renames)),
        Value::Object(map) => map.values_mut().for_each(|v| rename_strings(v, renames)),
        _ => {}
    }
}

fn make_writable(dir: &Path) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_naming_an_encrypted_location_or_a_file_in_it_name_the_plaintext() {
        let mut v = serde_json::json!({
            "cohort": "/data/c7",
            "one": "/data/c7/sample.vcf.c4gh",
            "many": ["/data/f.c4gh", "/data/c70"],
            "n": 3
        });
        let renames = [
            ("/data/c7".to_owned(), "/tmp/crypt4gh/data/c7".to_owned()),
            ("/data/f.c4gh".to_owned(), "/tmp/crypt4gh/data/f".to_owned()),
        ];
        rename_strings(&mut v, &renames);
        assert_eq!(
            v,
            serde_json::json!({
                "cohort": "/tmp/crypt4gh/data/c7",
                "one": "/tmp/crypt4gh/data/c7/sample.vcf",
                "many": ["/tmp/crypt4gh/data/f", "/data/c70"],
                "n": 3
            })
        );
    }
}
