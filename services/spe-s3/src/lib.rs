//! The S3 client of the results bucket. The crawler (uploads) and wes-api (presigned links)
//! build it here, from the same `crawler:` section, so they cannot drift apart: same endpoint,
//! region, addressing, credentials and timeouts. Object keys are `spe_core::bucket`'s.

pub mod credentials;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use spe_core::config::CrawlerConfig;

/// How long opening a connection to the S3 server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may stay silent during one request (large parts take a while).
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A client for `crawler.*`: keys from `credentials_file` (read again when it changes), or
/// static keys when configured, else the standard AWS chain
/// (environment, profile, web identity, instance metadata). The keys are handed to the SDK
/// only; nothing here prints them.
pub async fn client(config: &CrawlerConfig) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .build(),
        );
    if let Some(path) = &config.credentials_file {
        loader = loader.credentials_provider(credentials::FileCredentials::new(path.clone()));
    } else if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
        loader = loader.credentials_provider(Credentials::new(
            access.expose(),
            secret.expose(),
            None,
            None,
            "spe-config",
        ));
    }
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint.as_str());
    }
    let shared = loader.load().await;
    let s3_config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(config.path_style)
        .build();
    Client::from_conf(s3_config)
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::presigning::PresigningConfig;
    use spe_core::config::Config;

    const CONFIG: &str = r#"
service:
  id: org.example.spe
  name: SPE
  organization: { name: Example, url: "https://example.org" }
  auth_instructions_url: "https://example.org/login"
database: { url: "sqlite://spe.db" }
data_dir: /tmp/runs
auth: disabled
workflows:
  types: { SMK: ["9"] }
  engines: { snakemake: { workflow_type: SMK, versions: ["9.27"] } }
crawler:
  bucket: spe-results
  endpoint: "http://127.0.0.1:59000"
  region: eu-central-1
  path_style: true
  access_key: AKID
  secret_key: s3cr3t-key
"#;

    #[tokio::test]
    async fn the_client_carries_the_configured_endpoint_region_addressing_and_timeouts() {
        let config = Config::parse(CONFIG, Vec::new()).unwrap();
        let client = super::client(config.crawler.as_ref().unwrap()).await;
        let conf = client.config();
        assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-central-1"));
        let timeouts = conf.timeout_config().unwrap();
        assert_eq!(timeouts.connect_timeout(), Some(super::CONNECT_TIMEOUT));
        assert_eq!(timeouts.read_timeout(), Some(super::READ_TIMEOUT));
        assert!(!format!("{conf:?}").contains("s3cr3t-key"));
        // Path-style on the configured endpoint, signed with the configured key.
        let presigning = PresigningConfig::expires_in(std::time::Duration::from_secs(60)).unwrap();
        let request = client
            .get_object()
            .bucket("spe-results")
            .key("run/out.csv")
            .presigned(presigning)
            .await
            .unwrap();
        assert!(
            request
                .uri()
                .starts_with("http://127.0.0.1:59000/spe-results/run/out.csv?"),
            "{}",
            request.uri()
        );
        assert!(request.uri().contains("AKID"), "{}", request.uri());
    }
}
