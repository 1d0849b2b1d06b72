//! The released package's RO-Crate and its egress receipt: the crate (`spe_core::rocrate`,
//! built from the store's facts and the audit chain's head at release) is written to
//! `<run_id>/ro-crate-metadata.json`, and with a signing key (`receipts.signing_key`) its exact
//! bytes are signed with Ed25519 into `<run_id>/ro-crate-metadata.json.sig`. `spectl results
//! verify` checks both against the key the API publishes (docs/ro-crate.md).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The deployment as the crate names it (from the config's `service:` section).
#[derive(Debug, Clone)]
pub struct CrateIdentity {
    pub id: String,
    pub name: String,
    pub organization: String,
    pub organization_url: String,
}

/// The service's receipt signing key.
pub struct Signer {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public_key_line())
    }
}

impl Signer {
    /// Reads a PKCS#8 Ed25519 key (PEM, `PRIVATE KEY`), as `spectl keys generate --signing`
    /// writes it. A key file others may read is refused.
    pub fn load(path: &Path) -> Result<Signer, String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{}: mode {:o} lets others read the signing key; chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = STANDARD
            .decode(body.trim())
            .map_err(|_| format!("{}: not a PEM private key", path.display()))?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| format!("{}: not a PKCS#8 Ed25519 key", path.display()))?;
        Ok(Signer { key })
    }

    /// The public key as `GET /keys/receipt.pub` publishes it: `ed25519 <base64>`.
    pub fn public_key_line(&self) -> String {
        format!(
            "ed25519 {}",
            STANDARD.encode(self.key.public_key().as_ref())
        )
    }

    /// The receipt of `crate_bytes`: the signature, with the public key that checks it.
    pub fn sign(&self, crate_bytes: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "algorithm": "Ed25519",
            "signed": spe_core::bucket::RO_CRATE_FILE,
            "public_key": STANDARD.encode(self.key.public_key().as_ref()),
            "signature": STANDARD.encode(self.key.sign(crate_bytes).as_ref()),
        })
    }
}
