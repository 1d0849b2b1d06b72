//! `spectl results`: the runs whose released results the caller may see (their own and those
//! shared with them), a run's released files, and downloading them through presigned links.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Url;
use serde_json::{Value, json};

use crate::api::{Api, Body, Failure};
use crate::download::{self, Expected, Outcome};
use crate::output::{Table, field, short_digest, text};
use crate::print_json;

#[derive(Subcommand)]
pub enum ResultsCommand {
    /// Without RUN_ID: the runs whose results you may download (yours and those shared with
    /// you). With it: the run's released files, with size and SHA-256.
    List { run_id: Option<String> },
    /// Download a run's released files (all, or the PATHs named) into DIR, each checked
    /// against its SHA-256 in the release record. An interrupted download resumes from its
    /// `.part` file when the command is run again.
    Download {
        run_id: String,
        /// Only these files, as `results list RUN_ID` names them.
        paths: Vec<String>,
        /// Where to write the files, under their run-relative paths (default: ./RUN_ID).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        decrypt: DecryptArgs,
    },
    /// Register your Crypt4GH public key: files stored encrypted are sent bound to it (unless
    /// your login already carries one, LS-Login's crypt4ghPublicKeys).
    RegisterKey {
        /// The public key file (`spectl keys generate` or `crypt4gh-keygen` writes it).
        #[arg(long = "public-key", value_name = "FILE")]
        public_key: PathBuf,
    },
    /// Check downloaded results against the package's signed RO-Crate (the egress receipt):
    /// the signature by the service's published receipt key, each file's SHA-256, and that the
    /// audit chain head it carries is one the service issued. Exit 4 when anything differs.
    Verify {
        run_id: String,
        /// Where `results download` wrote them (default: ./RUN_ID).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// How files stored Crypt4GH-encrypted are written: as received (`<path>.c4gh`, encrypted to
/// your key) or, with `--decrypt`, decrypted and checked against the release record.
#[derive(clap::Args, Default)]
pub struct DecryptArgs {
    /// Decrypt files stored encrypted with your secret key, and check their SHA-256.
    #[arg(long, requires = "secret_key")]
    decrypt: bool,
    /// Your Crypt4GH secret key (the public half registered, or in your login's claim).
    #[arg(long = "secret-key", value_name = "FILE")]
    secret_key: Option<PathBuf>,
    /// A file whose first line is the secret key's passphrase.
    #[arg(long = "passphrase-file", conflicts_with = "passphrase_env")]
    passphrase_file: Option<PathBuf>,
    /// The name of an environment variable holding the passphrase.
    #[arg(long = "passphrase-env")]
    passphrase_env: Option<String>,
}

impl DecryptArgs {
    /// The secret key, when `--decrypt` was asked for.
    fn key(&self) -> Result<Option<spe_crypt4gh::SecretKey>, Failure> {
        let (true, Some(path)) = (self.decrypt, &self.secret_key) else {
            return Ok(None);
        };
        let passphrase = crate::keys::read_passphrase(
            self.passphrase_file.as_deref(),
            self.passphrase_env.as_deref(),
        )?;
        spe_crypt4gh::SecretKey::load(path, passphrase.as_bytes())
            .map(Some)
            .map_err(|e| Failure::Usage(format!("secret key {}: {e}", path.display())))
    }
}

pub async fn command(api: &Api, json: bool, command: ResultsCommand) -> Result<(), Failure> {
    match command {
        ResultsCommand::List { run_id: None } => {
            let v = api.get(&["results"], &[]).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let mut table = Table::new(&["RUN ID", "STATE", "WORKFLOW", "END", "SHARED"]);
            for r in v["results"].as_array().cloned().unwrap_or_default() {
                table.row(vec![
                    field(&r, "run_id"),
                    field(&r, "state"),
                    field(&r, "workflow_url"),
                    field(&r, "end_time"),
                    if r["shared"].as_bool() == Some(true) {
                        "shared".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            table.print();
        }
        ResultsCommand::List {
            run_id: Some(run_id),
        } => {
            let v = api.get(&["results", &run_id], &[]).await?;
            if json {
                print_json(&v);
                return Ok(());
            }
            let mut table = Table::new(&["PATH", "SIZE", "SHA256", "RELEASED"]);
            for f in v["files"].as_array().cloned().unwrap_or_default() {
                table.row(vec![
                    field(&f, "path"),
                    field(&f, "size"),
                    short_digest(&f["sha256"]),
                    field(&f, "released_at"),
                ]);
            }
            table.print();
        }
        ResultsCommand::Download {
            run_id,
            paths,
            dir,
            decrypt,
        } => download(api, json, &run_id, &paths, dir, decrypt.key()?).await?,
        ResultsCommand::RegisterKey { public_key } => {
            let key_text = std::fs::read_to_string(&public_key)
                .map_err(|e| Failure::Usage(format!("{}: {e}", public_key.display())))?;
            let v = api
                .post(
                    &["me", "crypt4gh-key"],
                    Body::Bytes {
                        content_type: "text/plain",
                        data: key_text.into_bytes(),
                    },
                )
                .await?;
            if json {
                print_json(&v);
            } else {
                println!(
                    "registered your Crypt4GH public key (fingerprint {}): encrypted results are sent bound to it",
                    text(&v["fingerprint"])
                );
            }
        }
        ResultsCommand::Verify { run_id, dir } => {
            crate::verify::command(api, json, &run_id, dir).await?
        }
    }
    Ok(())
}

/// One released file as the release record lists it.
struct Released {
    path: String,
    size: u64,
    sha256: String,
    /// Stored Crypt4GH-encrypted: sent bound to the caller's key.
    encrypted: bool,
}

fn released(v: &Value) -> Result<Vec<Released>, Failure> {
    let bad = |what: &str| Failure::Other(format!("the service's file list is malformed: {what}"));
    let files = v["files"].as_array().ok_or_else(|| bad("no files"))?;
    files
        .iter()
        .map(|f| {
            let sha256 = f["sha256"]
                .as_str()
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| bad("a sha256 that is not 64 hex digits"))?;
            Ok(Released {
                path: f["path"]
                    .as_str()
                    .ok_or_else(|| bad("a file without path"))?
                    .to_owned(),
                size: f["size"]
                    .as_u64()
                    .ok_or_else(|| bad("a file without size"))?,
                sha256: sha256.to_ascii_lowercase(),
                encrypted: f["encryption"].as_str() == Some("crypt4gh"),
            })
        })
        .collect()
}

async fn download(
    api: &Api,
    json: bool,
    run_id: &str,
    wanted: &[String],
    dir: Option<PathBuf>,
    key: Option<spe_crypt4gh::SecretKey>,
) -> Result<(), Failure> {
    let listing = api.get(&["results", run_id], &[]).await?;
    let mut files = released(&listing)?;
    if !wanted.is_empty() {
        if let Some(missing) = wanted.iter().find(|w| !files.iter().any(|f| &f.path == *w)) {
            return Err(Failure::Usage(format!(
                "{missing:?} is not a released file of run {run_id} (see `spectl results list {run_id}`)"
            )));
        }
        files.retain(|f| wanted.contains(&f.path));
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(run_id));
    let mut done = Vec::new();
    for file in &files {
        let mut dest = download::destination(&dir, &file.path)?;
        let expected = Expected {
            path: &file.path,
            size: file.size,
            sha256: &file.sha256,
        };
        let (how, checked) = if file.encrypted {
            match crate::encrypted::fetch(api, run_id, &dest, &expected, key.as_ref()).await? {
                crate::encrypted::Written::Decrypted => {
                    ("downloaded bound to your key, decrypted".to_owned(), true)
                }
                crate::encrypted::Written::Encrypted(at) => {
                    dest = at;
                    (
                        "downloaded encrypted to your key (decrypt with `crypt4gh decrypt --sk \
                         <your secret key>`, or download with --decrypt)"
                            .to_owned(),
                        false,
                    )
                }
            }
        } else {
            let outcome =
                download::fetch(api, link(api, run_id, &file.path), &dest, &expected, !json)
                    .await?;
            let how = match outcome {
                Outcome::Fetched => "downloaded".to_owned(),
                Outcome::Resumed(from) => format!("resumed at byte {from}"),
                Outcome::Present => "already present".to_owned(),
            };
            (how, true)
        };
        if json {
            done.push(json!({
                "path": file.path,
                "file": dest.display().to_string(),
                "size": file.size,
                "sha256": file.sha256,
                "outcome": how,
                "sha256_verified": checked,
            }));
        } else if checked {
            println!(
                "{} {how} ({} bytes, SHA-256 verified)",
                text(&Value::String(dest.display().to_string())),
                file.size
            );
        } else {
            println!("{} {how}", text(&Value::String(dest.display().to_string())));
        }
    }
    // The whole package also brings its signed RO-Crate, for `results verify`.
    let receipt = if wanted.is_empty() {
        receipt_parts(api, run_id, &dir).await?
    } else {
        false
    };
    if json {
        print_json(&json!({ "run_id": run_id, "files": done, "receipt": receipt }));
    } else if receipt {
        println!(
            "RO-Crate and its signed receipt saved (check with `spectl results verify {run_id}`)"
        );
    } else if wanted.is_empty() {
        println!("the package has no signed RO-Crate (yet)");
    }
    Ok(())
}

/// Saves the package's `ro-crate-metadata.json` and its `.sig` into `dir`; `false` when the
/// package has none (no signing key configured, or egress not finished).
async fn receipt_parts(api: &Api, run_id: &str, dir: &std::path::Path) -> Result<bool, Failure> {
    for name in [crate::verify::RECEIPT_FILE, crate::verify::CRATE_FILE] {
        let url = link(api, run_id, name).await?;
        let res = api.get_link(&url, 0).await?;
        if res.status().as_u16() == 404 {
            return Ok(false);
        }
        if !res.status().is_success() {
            return Err(Failure::Other(format!(
                "{name}: the bucket answered {}",
                res.status()
            )));
        }
        let bytes = res
            .bytes()
            .await
            .map_err(|e| Failure::Other(format!("{name}: {}", crate::api::describe(e))))?;
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join(name), &bytes))
            .map_err(|e| Failure::Other(format!("{}: {e}", dir.join(name).display())))?;
    }
    Ok(true)
}

/// A fresh presigned link for one released file (each one is recorded by the service).
async fn link(api: &Api, run_id: &str, path: &str) -> Result<Url, Failure> {
    let v = api
        .post(
            &["results", run_id, "links"],
            Body::Json(json!({ "path": path })),
        )
        .await?;
    let url = v["url"]
        .as_str()
        .ok_or_else(|| Failure::Other("the service's link has no url".into()))?;
    // The URL carries a signature: never in a message.
    Url::parse(url)
        .map_err(|_| Failure::Other(format!("the service's link for {path} is not a URL")))
}
