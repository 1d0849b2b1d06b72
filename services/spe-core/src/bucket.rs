//! The layout of the results bucket: a contract between the results crawler, which writes the
//! objects, and wes-api, which lists released files with their keys and presigns links to them.

use crate::RunId;

/// The file name of the crawler's listing of a run's released files; no output may take it.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The file name of the run's disclosure record (`spe_core::disclosure::disclosure_document`);
/// no output may take it either.
pub const DISCLOSURE_FILE: &str = "disclosure.json";

/// The file name of the run's Five Safes RO-Crate (`spe_core::rocrate`), beside its manifest.
pub const RO_CRATE_FILE: &str = "ro-crate-metadata.json";

/// The egress receipt: the Ed25519 signature of the RO-Crate's exact bytes (docs/ro-crate.md).
pub const RECEIPT_FILE: &str = "ro-crate-metadata.json.sig";

/// The object the services' readiness checks ask the bucket about (a HEAD answered 200 or 404
/// says the bucket answers and takes the key) and that `spectl doctor` writes, empty, to prove
/// the write key. Outside every run's `<run_id>/` prefix.
pub const READINESS_KEY: &str = ".spe/readyz";

/// The object that holds the released file at `path` (relative to the run directory).
pub fn object_key(run: RunId, path: &str) -> String {
    format!("{run}/{path}")
}

/// The object that lists every released file of a run: `<run_id>/manifest.json`.
pub fn manifest_key(run: RunId) -> String {
    object_key(run, MANIFEST_FILE)
}

/// The object that records the disclosure checks and decisions of a run's outputs:
/// `<run_id>/disclosure.json`, beside its manifest.
pub fn disclosure_key(run: RunId) -> String {
    object_key(run, DISCLOSURE_FILE)
}

/// Whether a run's output at `path` would take one of the crawler's own keys.
pub fn is_reserved(path: &str) -> bool {
    [MANIFEST_FILE, DISCLOSURE_FILE, RO_CRATE_FILE, RECEIPT_FILE].contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_run_id_then_the_relative_path() {
        let run: RunId = "1b4e28ba-2fa1-41d2-883f-0016d3cca427".parse().unwrap();
        assert_eq!(
            object_key(run, "results/table.csv"),
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427/results/table.csv"
        );
        assert_eq!(
            manifest_key(run),
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427/manifest.json"
        );
        assert_eq!(
            disclosure_key(run),
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427/disclosure.json"
        );
        assert!(is_reserved("disclosure.json") && is_reserved("manifest.json"));
        assert!(!is_reserved("results/disclosure.json"));
    }
}
