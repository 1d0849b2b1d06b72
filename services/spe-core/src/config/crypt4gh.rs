//! `crypt4gh`: the service's Crypt4GH keys (docs/crypt4gh.md). Paths and a passphrase source
//! only: the passphrase itself is never in the config file.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use crate::runspec::PassphraseSource;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crypt4ghConfig {
    /// The service's secret keys (Crypt4GH private key files, passphrase-protected, mode 0600
    /// or 0400, readable by the service and its jobs only), current first. More than one after
    /// a rotation: a file encrypted to any of them still decrypts.
    #[serde(default)]
    pub secret_keys: Vec<PathBuf>,
    /// The current key's public key file, published at `GET /ga4gh/wes/v1/keys/service.pub`.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// A file whose first line is the secret keys' passphrase.
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    /// Or the name of an environment variable holding it.
    #[serde(default)]
    pub passphrase_env: Option<String>,
}

impl Crypt4ghConfig {
    /// Where the passphrase comes from, if keys are configured.
    pub fn passphrase(&self) -> Option<PassphraseSource> {
        match (&self.passphrase_file, &self.passphrase_env) {
            (Some(file), _) => Some(PassphraseSource::File(file.clone())),
            (None, Some(var)) => Some(PassphraseSource::Env(var.clone())),
            (None, None) => None,
        }
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (i, key) in self.secret_keys.iter().enumerate() {
            if !key.is_absolute() {
                return Err(ConfigError::at(
                    &format!("crypt4gh.secret_keys[{i}]"),
                    "must be an absolute path",
                ));
            }
        }
        if let Some(p) = &self.public_key
            && !p.is_absolute()
        {
            return Err(ConfigError::at(
                "crypt4gh.public_key",
                "must be an absolute path",
            ));
        }
        match (&self.passphrase_file, &self.passphrase_env) {
            (Some(_), Some(_)) => Err(ConfigError::at(
                "crypt4gh.passphrase_env",
                "give passphrase_file or passphrase_env, not both",
            )),
            (Some(f), None) if !f.is_absolute() => Err(ConfigError::at(
                "crypt4gh.passphrase_file",
                "must be an absolute path",
            )),
            (None, Some(v)) if v.is_empty() || v.contains('=') => Err(ConfigError::at(
                "crypt4gh.passphrase_env",
                "must be an environment variable name",
            )),
            (None, None) if !self.secret_keys.is_empty() => Err(ConfigError::at(
                "crypt4gh.passphrase_file",
                "secret keys are configured: give passphrase_file or passphrase_env",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<(), ConfigError> {
        let c: Crypt4ghConfig = serde_yaml::from_str(yaml).unwrap();
        c.check()
    }

    #[test]
    fn keys_need_a_passphrase_source_and_absolute_paths() {
        assert_eq!(parse("{}"), Ok(()));
        assert_eq!(
            parse("secret_keys: [/etc/spe/c4gh.sec]")
                .unwrap_err()
                .to_string(),
            "invalid configuration: crypt4gh.passphrase_file: secret keys are configured: give passphrase_file or passphrase_env"
        );
        assert_eq!(
            parse("secret_keys: [c4gh.sec]\npassphrase_env: P")
                .unwrap_err()
                .to_string(),
            "invalid configuration: crypt4gh.secret_keys[0]: must be an absolute path"
        );
        assert_eq!(
            parse("secret_keys: [/a]\npassphrase_env: P\npassphrase_file: /p")
                .unwrap_err()
                .to_string(),
            "invalid configuration: crypt4gh.passphrase_env: give passphrase_file or passphrase_env, not both"
        );
        assert_eq!(
            parse("secret_keys: [/a, /b]\npassphrase_file: /etc/spe/c4gh.pass"),
            Ok(())
        );
    }
}
