//! `c4gh-decrypt`: decrypts one Crypt4GH file with the parallel body decryption (the benchmark
//! in docs/benchmarks.md; operators checking a file):
//!
//! ```text
//! C4GH_PASSPHRASE=... c4gh-decrypt <secret key> <input.c4gh> <output>
//! ```
//!
//! The passphrase comes from `C4GH_PASSPHRASE`, as Python `crypt4gh decrypt` takes it.

use std::path::Path;
use std::process::ExitCode;

use spe_crypt4gh::{DecryptOptions, SecretKey, decrypt};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, key, input, output] = args.as_slice() else {
        eprintln!("usage: C4GH_PASSPHRASE=... c4gh-decrypt <secret key> <input.c4gh> <output>");
        return ExitCode::from(2);
    };
    let passphrase = std::env::var("C4GH_PASSPHRASE").unwrap_or_default();
    let result = SecretKey::load(Path::new(key), passphrase.as_bytes()).and_then(|key| {
        let input = std::fs::File::open(input)?;
        // Unbuffered: the library writes a batch at a time (one writev).
        let output = std::fs::File::create(output)?;
        decrypt(input, output, &[key], DecryptOptions::default())
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c4gh-decrypt: {e}");
            ExitCode::FAILURE
        }
    }
}
