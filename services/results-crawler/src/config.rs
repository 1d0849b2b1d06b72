//! What the crawler takes from the deployment's configuration file (the one wes-api reads):
//! the store, the data directory, logging, the primary issuer, and its own `crawler:` section, which wes-api may
//! go without but the crawler may not.

use std::path::{Path, PathBuf};

use spe_core::config::{
    Config, ConfigError, CrawlerConfig, DatabaseConfig, LoggingConfig, ReceiptsConfig,
    ServiceConfig,
};

#[derive(Debug)]
pub struct CrawlerServiceConfig {
    pub database: DatabaseConfig,
    pub data_dir: PathBuf,
    pub logging: LoggingConfig,
    pub crawler: CrawlerConfig,
    /// The deployment's primary issuer: the store's migration carries people named by bare
    /// `sub` (rows from before identities were (issuer, sub)) to it.
    pub primary_issuer: String,
    /// Names the deployment in each run's RO-Crate.
    pub service: ServiceConfig,
    /// The key that signs each package's RO-Crate.
    pub receipts: ReceiptsConfig,
    /// The service's Crypt4GH public key (`crypt4gh.public_key`): outputs an `encrypt` rule
    /// names are stored encrypted to it.
    pub crypt4gh_public_key: Option<PathBuf>,
}

impl CrawlerServiceConfig {
    /// Reads `path` with this process's `SPE__...` overrides; every error names the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = Config::load(path, std::env::vars())?;
        Self::from_config(config).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    pub fn from_config(config: Config) -> Result<Self, ConfigError> {
        let Config {
            database,
            data_dir,
            logging,
            crawler,
            auth,
            service,
            receipts,
            crypt4gh,
            ..
        } = config;
        let crawler = crawler.ok_or_else(|| {
            ConfigError::at("crawler", "missing; the results crawler needs this section")
        })?;
        Ok(CrawlerServiceConfig {
            database,
            data_dir,
            logging,
            crawler,
            primary_issuer: auth.primary_issuer().to_owned(),
            service,
            receipts,
            crypt4gh_public_key: crypt4gh.public_key,
        })
    }
}
