//! `spectl keys generate` through the binary: a passphrase-protected secret key with mode 0600
//! that opens with that passphrase only, its public key, and no passphrase on the command line.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use spe_crypt4gh::{PublicKey, SecretKey};

fn spectl(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn generate_writes_a_protected_secret_key_and_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("service.sec");
    let pk = dir.path().join("service.pub");
    let (sk_s, pk_s) = (sk.to_str().unwrap(), pk.to_str().unwrap());
    let pass = "correct horse battery staple";
    let out = spectl(
        &[
            "keys",
            "generate",
            "--secret-key",
            sk_s,
            "--public-key",
            pk_s,
            "--passphrase-env",
            "C4GH_PASS",
        ],
        &[("C4GH_PASS", pass)],
    );
    assert!(out.status.success(), "{out:?}");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!printed.contains(pass), "{printed}");
    assert_eq!(
        std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&sk).unwrap();
    assert!(
        text.starts_with("-----BEGIN CRYPT4GH PRIVATE KEY-----\n"),
        "{text}"
    );
    let key = SecretKey::load(&sk, pass.as_bytes()).unwrap();
    assert_eq!(key.public_key(), PublicKey::load(&pk).unwrap());
    assert_eq!(
        SecretKey::load(&sk, b"wrong").unwrap_err().to_string(),
        "the passphrase does not open the secret key"
    );

    // Existing keys are kept unless --force.
    let again = spectl(
        &[
            "keys",
            "generate",
            "--secret-key",
            sk_s,
            "--public-key",
            pk_s,
            "--passphrase-env",
            "C4GH_PASS",
        ],
        &[("C4GH_PASS", pass)],
    );
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        format!("spectl: {sk_s} exists (--force replaces it)\n")
    );
    assert_eq!(PublicKey::load(&pk).unwrap(), key.public_key());

    // A passphrase file works too.
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, "from a file\n").unwrap();
    let replaced = spectl(
        &[
            "keys",
            "generate",
            "--secret-key",
            sk_s,
            "--public-key",
            pk_s,
            "--passphrase-file",
            pass_file.to_str().unwrap(),
            "--force",
        ],
        &[],
    );
    assert!(replaced.status.success(), "{replaced:?}");
    assert!(SecretKey::load(&sk, b"from a file").is_ok());
}

#[test]
fn generate_without_a_passphrase_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("k.sec");
    let out = spectl(
        &[
            "keys",
            "generate",
            "--secret-key",
            sk.to_str().unwrap(),
            "--public-key",
            "/dev/null/x",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "spectl: give --passphrase-file or --passphrase-env (a passphrase is never given on the command line)\n"
    );
    assert!(!sk.exists());
}
