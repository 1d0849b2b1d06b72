//! The shipped configuration files carry a valid `crawler:` section.

use std::path::Path;

use spe_core::config::{Config, CrawlerWatch};

fn shipped(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config");
    std::fs::read_to_string(root.join(name)).unwrap()
}

#[test]
fn shipped_configs_have_a_crawler_section() {
    let dev = Config::parse(&shipped("spe.dev.yaml"), Vec::new()).unwrap();
    let crawler = dev.crawler.unwrap();
    assert_eq!(crawler.endpoint.as_deref(), Some("http://127.0.0.1:59000"));
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
