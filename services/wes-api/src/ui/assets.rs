//! The web UI's assets (one stylesheet, one small script), compiled into the binary: no CDN, no
//! files to deploy. Each is served at `/ui/assets/<name>` under a version query (`?v=<hash>`,
//! the first 16 hex digits of its SHA-256) that the pages write, so a browser may keep it for a
//! year (`immutable`); the same hash is its `ETag`, for a request without the query.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The first 16 hex digits of the body's SHA-256.
    pub version: String,
}

fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let digest = hex::encode(Sha256::digest(body));
    Asset {
        name,
        content_type,
        body,
        version: digest[..16].to_owned(),
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset(
            "ui.css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/ui.css"),
        ),
        asset(
            "ui.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/ui.js"),
        ),
    ]
});

/// The asset named `name`, if it is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The URL a page writes for the asset `name` (with its version), or the bare path for a
/// name that is no asset (a mistake the UI tests would see as a 404).
pub fn url(name: &str) -> String {
    match find(name) {
        Some(a) => format!("/ui/assets/{}?v={}", a.name, a.version),
        None => format!("/ui/assets/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_version_in_its_url() {
        for name in ["ui.css", "ui.js"] {
            let a = find(name).unwrap();
            assert_eq!(a.version.len(), 16);
            assert_eq!(url(name), format!("/ui/assets/{name}?v={}", a.version));
        }
        assert!(find("../Cargo.toml").is_none());
    }
}
