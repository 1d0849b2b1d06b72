//! The shipped configuration files carry a valid `crawler:` section, and a bad one stops the
//! binary at start naming the file and the key.

use std::path::Path;

use std::process::Command;

use spe_core::config::{Config, CrawlerWatch, HttpUrl};

fn shipped(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
    std::fs::read_to_string(root.join(name)).unwrap()
}

#[test]
fn shipped_configs_have_a_crawler_section() {
    let dev = Config::parse(&shipped("spe.dev.yaml"), Vec::new()).unwrap();
    let crawler = dev.crawler.unwrap();
    assert_eq!(
        crawler.endpoint.as_ref().map(HttpUrl::as_str),
        Some("http://127.0.0.1:59000")
    );
    assert_eq!(crawler.rescan_cron.as_str(), "*/10 * * * * *");
    assert_eq!(crawler.bucket, "spe-results");
    assert!(crawler.path_style && crawler.access_key.is_some());
    let env = vec![
        ("SPE__CRAWLER__ACCESS_KEY".to_owned(), "AK".to_owned()),
        (
            "SPE__CRAWLER__SECRET_KEY".to_owned(),
            "very-secret".to_owned(),
        ),
    ];
    let prod = Config::parse(&shipped("spe.example.yaml"), env).unwrap();
    assert!(!format!("{prod:?}").contains("very-secret"));
    let crawler = prod.crawler.unwrap();
    assert_eq!(crawler.watch, CrawlerWatch::Poll);
    assert!(crawler.secret_key.is_some());
}

/// The dev config with `edit` applied, written to a temporary file.
fn edited_dev_config(dir: &Path, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let path = dir.join("spe.yaml");
    std::fs::write(&path, edit(&shipped("spe.dev.yaml"))).unwrap();
    path
}

#[test]
fn a_bad_crawler_config_stops_the_binary_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for (edit, key) in [
        (
            (
                "rescan_cron: \"*/10 * * * * *\"",
                "rescan_cron: \"every minute\"",
            ),
            "crawler.rescan_cron: not a cron expression with seconds",
        ),
        (
            (
                "metrics_listen: 127.0.0.1:9464",
                "metrics_listen: localhost:metrics",
            ),
            "crawler.metrics_listen:",
        ),
        (
            (
                "endpoint: \"http://127.0.0.1:59000\"",
                "endpoint: \"127.0.0.1:59000\"",
            ),
            "crawler.endpoint: must be an http(s):// URL",
        ),
        (("crawler:", "crawler_off:"), "unknown field `crawler_off`"),
    ] {
        let (from, to) = edit;
        let path = edited_dev_config(dir.path(), |text| {
            assert!(text.contains(from), "{from}");
            text.replace(from, to)
        });
        let out = Command::new(env!("CARGO_BIN_EXE_results-crawler"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{}: ", path.display())) && stderr.contains(key),
            "{to}: {stderr}"
        );
    }
}

#[test]
fn the_binary_refuses_a_config_without_a_crawler_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_dev_config(dir.path(), |text| {
        let start = text.find("\ncrawler:").unwrap();
        let end = text[start + 1..]
            .find("\n\n")
            .map_or(text.len(), |i| start + 1 + i);
        format!("{}{}", &text[..start], &text[end..])
    });
    let out = Command::new(env!("CARGO_BIN_EXE_results-crawler"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: crawler: missing; the results crawler needs this section",
            path.display()
        )),
        "{stderr}"
    );
}
