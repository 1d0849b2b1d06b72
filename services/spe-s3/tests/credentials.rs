//! Keys from `crawler.credentials_file`, against the real S3 server (tests/peers/s3.sh): the
//! service's client works with them, a rewritten file is used without a restart, and a file
//! others may read is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::Region;
use spe_core::config::Config;
use spe_s3::credentials::FileCredentials;
use spe_test_support::peers;

const RIGHT: &str = "access_key=spe-test-access\nsecret_key=spe-test-secret-key\n";
const WRONG: &str = "access_key=spe-test-access\nsecret_key=not-the-key\n";

fn write_keys(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn config(endpoint: &str, file: &Path) -> Config {
    let yaml = format!(
        r#"
service:
  id: org.example.spe
  name: SPE
  organization: {{ name: Example, url: "https://example.org" }}
  auth_instructions_url: "https://example.org/login"
database: {{ url: "sqlite://spe.db" }}
data_dir: /tmp/runs
auth: disabled
workflows:
  types: {{ SMK: ["9"] }}
  engines: {{ snakemake: {{ workflow_type: SMK, versions: ["9.27"] }} }}
crawler:
  bucket: spe-results
  endpoint: "{endpoint}"
  path_style: true
  credentials_file: "{}"
"#,
        file.display()
    );
    Config::parse(&yaml, Vec::new()).unwrap()
}

async fn head_bucket(client: &aws_sdk_s3::Client) -> Result<(), String> {
    client
        .head_bucket()
        .bucket("spe-results")
        .send()
        .await
        .map(drop)
        .map_err(|e| format!("{:?}", e.raw_response().map(|r| r.status().as_u16())))
}

#[tokio::test]
async fn keys_come_from_the_file_and_a_rewritten_file_is_used_without_a_restart() {
    let Some(endpoint) = peers::s3_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s3.keys");
    write_keys(&file, RIGHT);
    // The services' client, from the config.
    let config = config(&endpoint, &file);
    let client = spe_s3::client(config.crawler.as_ref().unwrap()).await;
    assert_eq!(head_bucket(&client).await, Ok(()));

    // The same provider looking at the file every 100 ms: rotation takes effect in that time.
    let provider = FileCredentials::rechecked_every(file.clone(), Duration::from_millis(100));
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(provider)
        .load()
        .await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    assert_eq!(head_bucket(&client).await, Ok(()));
    // A new modification time (file systems may keep the old one within a second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write_keys(&file, WRONG);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(head_bucket(&client).await, Err("Some(403)".to_owned()));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write_keys(&file, RIGHT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(head_bucket(&client).await, Ok(()));

    // A file others may read holds no keys for the service.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let provider = FileCredentials::rechecked_every(file.clone(), Duration::from_millis(100));
    let err = aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider)
        .await
        .unwrap_err();
    let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err));
    assert!(text.contains("others may read it: chmod 600"), "{text}");
    // Nor does one without both keys.
    write_keys(&file, "access_key=only\n");
    let err = aws_credential_types::provider::ProvideCredentials::provide_credentials(&provider)
        .await
        .unwrap_err();
    let text = format!("{}", aws_sdk_s3::error::DisplayErrorContext(&err));
    assert!(
        text.contains("needs both access_key and secret_key"),
        "{text}"
    );
}
