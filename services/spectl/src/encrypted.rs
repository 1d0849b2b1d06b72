//! A released file stored Crypt4GH-encrypted: fetched from the API (its header re-wrapped to
//! the caller's key, the body as stored) into `<file>.c4gh.part`, then either kept as
//! `<file>.c4gh` or, with the caller's secret key, decrypted into `<file>` and checked against
//! the plaintext's SHA-256 in the release record. Nothing unchecked is left under `<file>`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::api::{Api, Failure, describe};
use crate::download::{Expected, part_path, sha256_of};

/// What ended up on disk.
pub enum Written {
    /// `<file>`: decrypted, its SHA-256 the recorded one.
    Decrypted,
    /// `<file>.c4gh`: encrypted to the caller's key.
    Encrypted(PathBuf),
}

fn local(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Other(format!("{}: {e}", path.display()))
}

pub async fn fetch(
    api: &Api,
    run_id: &str,
    dest: &Path,
    expected: &Expected<'_>,
    key: Option<&spe_crypt4gh::SecretKey>,
) -> Result<Written, Failure> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| local(parent, e))?;
    }
    let mut sealed_name = dest.file_name().unwrap_or_default().to_os_string();
    sealed_name.push(".c4gh");
    let sealed = dest.with_file_name(sealed_name);
    // Each download's header is new (a fresh writer key): nothing to resume from.
    let part = part_path(&sealed);
    let mut res = api
        .get_file(
            &["results", run_id, "crypt4gh"],
            &[("path", expected.path.to_owned())],
        )
        .await?;
    let mut file = std::fs::File::create(&part).map_err(|e| local(&part, e))?;
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| Failure::Other(format!("downloading {}: {}", expected.path, describe(e))))?
    {
        file.write_all(&chunk).map_err(|e| local(&part, e))?;
    }
    file.sync_all().map_err(|e| local(&part, e))?;
    let Some(key) = key else {
        std::fs::rename(&part, &sealed).map_err(|e| local(&sealed, e))?;
        return Ok(Written::Encrypted(sealed));
    };
    let plain_part = part_path(dest);
    let decrypted = (|| {
        let input = std::fs::File::open(&part).map_err(|e| local(&part, e))?;
        let output = std::fs::File::create(&plain_part).map_err(|e| local(&plain_part, e))?;
        spe_crypt4gh::decrypt(
            std::io::BufReader::new(input),
            std::io::BufWriter::new(output),
            std::slice::from_ref(key),
            Default::default(),
        )
        .map_err(|e| Failure::Other(format!("decrypting {}: {e}", expected.path)))
    })();
    let _ = std::fs::remove_file(&part);
    if let Err(e) = decrypted {
        let _ = std::fs::remove_file(&plain_part);
        return Err(e);
    }
    let actual = sha256_of(&plain_part).map_err(|e| local(&plain_part, e))?;
    if actual != expected.sha256 {
        let _ = std::fs::remove_file(&plain_part);
        return Err(Failure::Other(format!(
            "{}: decrypted SHA-256 {actual} is not the recorded {}; not kept",
            expected.path, expected.sha256
        )));
    }
    std::fs::rename(&plain_part, dest).map_err(|e| local(dest, e))?;
    Ok(Written::Decrypted)
}
