//! `spectl keys generate`: a Crypt4GH key pair for the service (or anyone), the secret key
//! passphrase-protected in the Crypt4GH private key format (mode 0600), the public key beside
//! it. The passphrase comes from a file or an environment variable, never the command line,
//! and is never printed. With `--signing`: the Ed25519 key pair that signs egress receipts
//! (`receipts.signing_key`, PKCS#8 PEM, mode 0600; `receipts.public_key`, `ed25519 <base64>`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use spe_crypt4gh::{SecretKey, Zeroizing};

use crate::api::Failure;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Write a new Crypt4GH key pair: the secret key passphrase-protected (mode 0600) and the
    /// public key (mode 0644), both readable by Python crypt4gh.
    Generate(GenerateArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Where the secret key goes.
    #[arg(long = "secret-key")]
    secret_key: PathBuf,
    /// Where the public key goes.
    #[arg(long = "public-key")]
    public_key: PathBuf,
    /// A file whose first line is the passphrase.
    #[arg(long = "passphrase-file", conflicts_with = "passphrase_env")]
    passphrase_file: Option<PathBuf>,
    /// The name of an environment variable holding the passphrase.
    #[arg(long = "passphrase-env")]
    passphrase_env: Option<String>,
    /// A comment stored in the secret key.
    #[arg(long)]
    comment: Option<String>,
    /// An Ed25519 key pair for signing egress receipts instead (no passphrase: the crawler
    /// reads it unattended; the file's mode 0600 protects it).
    #[arg(long, conflicts_with_all = ["passphrase_file", "passphrase_env", "comment"])]
    signing: bool,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

pub fn command(command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Generate(args) => generate(&args),
    }
}

fn generate(args: &GenerateArgs) -> Result<(), Failure> {
    if args.signing {
        return generate_signing(args);
    }
    let passphrase = passphrase(args)?;
    if passphrase.is_empty() {
        return Err(Failure::Usage("the passphrase is empty".into()));
    }
    if !args.force {
        for path in [&args.secret_key, &args.public_key] {
            if path.exists() {
                return Err(Failure::Usage(format!(
                    "{} exists (--force replaces it)",
                    path.display()
                )));
            }
        }
    }
    let key = SecretKey::generate().map_err(|e| Failure::Other(e.to_string()))?;
    let secret = Zeroizing::new(
        key.to_pem(passphrase.as_bytes(), args.comment.as_deref())
            .map_err(|e| Failure::Other(e.to_string()))?,
    );
    write(&args.secret_key, secret.as_bytes(), 0o600)?;
    write(
        &args.public_key,
        key.public_key().to_pem().as_bytes(),
        0o644,
    )?;
    println!(
        "wrote {} (secret, mode 0600) and {}",
        args.secret_key.display(),
        args.public_key.display()
    );
    Ok(())
}

fn refuse_existing(args: &GenerateArgs) -> Result<(), Failure> {
    if !args.force {
        for path in [&args.secret_key, &args.public_key] {
            if path.exists() {
                return Err(Failure::Usage(format!(
                    "{} exists (--force replaces it)",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// The receipt signing key pair: PKCS#8 PEM (0600) and the public key line (0644).
fn generate_signing(args: &GenerateArgs) -> Result<(), Failure> {
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    refuse_existing(args)?;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| Failure::Other("cannot generate an Ed25519 key".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Failure::Other("the generated key does not load".into()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.encode(pkcs8.as_ref());
    let pem = Zeroizing::new(format!(
        "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    ));
    write(&args.secret_key, pem.as_bytes(), 0o600)?;
    let public = format!("ed25519 {}\n", b64.encode(pair.public_key().as_ref()));
    write(&args.public_key, public.as_bytes(), 0o644)?;
    println!(
        "wrote {} (receipt signing key, mode 0600) and {}",
        args.secret_key.display(),
        args.public_key.display()
    );
    Ok(())
}

fn passphrase(args: &GenerateArgs) -> Result<Zeroizing<String>, Failure> {
    read_passphrase(
        args.passphrase_file.as_deref(),
        args.passphrase_env.as_deref(),
    )
}

/// The passphrase from the first line of `file` or from the variable `env`; never from the
/// command line.
pub fn read_passphrase(
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Zeroizing<String>, Failure> {
    match (file, env) {
        (Some(file), _) => {
            let text = Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
                Failure::Other(format!("passphrase file {}: {e}", file.display()))
            })?);
            Ok(Zeroizing::new(
                text.lines().next().unwrap_or_default().to_owned(),
            ))
        }
        (None, Some(var)) => std::env::var(var)
            .map(Zeroizing::new)
            .map_err(|_| Failure::Usage(format!("the environment variable {var} is not set"))),
        (None, None) => Err(Failure::Usage(
            "give --passphrase-file or --passphrase-env (a passphrase is never given on the command line)"
                .into(),
        )),
    }
}

/// Writes `bytes` to `path` with `mode` from the start (never a moment with a wider mode);
/// an existing file is replaced, never written through a link.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::Other(format!("cannot write {}: {e}", path.display()));
    match std::fs::symlink_metadata(path) {
        Ok(_) => std::fs::remove_file(path).map_err(fail)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}
