//! Statistical disclosure control of outputs before they leave: the automatic checks an egress
//! rule names (small cells, row limits, flags, dominance, file kinds), the reviewer's summary of
//! a table, a preview of any file, and the `<run_id>/disclosure.json` record. Pure: everything
//! works on bytes a caller hands in, so the crawler checks the exact bytes it uploads and wes-api
//! shows a reviewer the same results.
//!
//! Reports are shaped after ACRO's (SACRO) output: each file has a status `pass`, `fail` or
//! `review`, each check a name (`threshold`, `p-ratio`, `nk-rule`, `negative`, `missing`,
//! `all-values-are-same`, plus `zeros`, `max-rows`, `file-type`, `table`), a one-line summary and
//! the cells that failed. Cell rows count data rows from 1 (the header is not a row), columns are
//! named by their header and numbered from 1. Summaries and hold reasons never carry a cell's
//! value (a researcher sees the reason of a held file); only [`Cell::value`] does, for reviewers.

mod checks;
mod preview;
mod report;
mod sniff;
mod summary;
mod table;

use serde::{Deserialize, Serialize};

pub use checks::{check_file, check_streamed};
pub use preview::{Preview, preview};
pub use report::{DISCLOSURE_VERSION, disclosure_document};
pub use sniff::{ContentKind, Sniffer, sniff};
pub use summary::{ColumnSummary, TableSummary, summarize_table};
pub use table::Table;

/// Most failing cells one check keeps (the count says how many there were).
pub const MAX_CELLS: usize = 100;

/// A check's, or a file's, result; a file's is its worst check's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// A person must look before it leaves.
    Review,
    /// A rule is broken: held, never released without a reviewer's exception.
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Review => "review",
            Outcome::Fail => "fail",
        }
    }
}

/// One cell a check names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Data row, from 1 (the row below the header).
    pub row: usize,
    /// The column's header.
    pub column: String,
    /// The column's position, from 1.
    pub col: usize,
    /// The cell as written. For reviewers only: never in a summary, a hold reason or
    /// disclosure.json.
    pub value: String,
}

/// One check on one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// ACRO's name where ACRO has the check (`threshold`, `nk-rule`, `p-ratio`, `negative`,
    /// `missing`, `all-values-are-same`), else ours (`zeros`, `max-rows`, `file-type`, `table`).
    pub name: String,
    pub outcome: Outcome,
    /// One line, without cell values.
    pub summary: String,
    /// The glob of the egress rule that asked for the check (none for `file-type`, which always
    /// runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The check's parameters (threshold, columns, n, k, p...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// The first [`MAX_CELLS`] failing cells.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_cells: Vec<Cell>,
    /// How many cells failed in all.
    #[serde(default)]
    pub failing_cell_count: usize,
}

impl CheckResult {
    pub(crate) fn new(name: &str, outcome: Outcome, summary: impl Into<String>) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            outcome,
            summary: summary.into(),
            rule: None,
            parameters: serde_json::Map::new(),
            failing_cells: Vec::new(),
            failing_cell_count: 0,
        }
    }
}

/// Every check run on one file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// Relative to the run directory.
    pub path: String,
    /// SHA-256 (hex) of the bytes checked; empty for a file held before it was read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    pub size: u64,
    /// What the content is; none for a file held before it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ContentKind>,
    pub outcome: Outcome,
    pub checks: Vec<CheckResult>,
}

impl FileReport {
    /// A report from its checks: the outcome is the worst of theirs (pass when none ran).
    pub fn new(
        path: &str,
        sha256: String,
        size: u64,
        kind: Option<ContentKind>,
        checks: Vec<CheckResult>,
    ) -> FileReport {
        let outcome = checks
            .iter()
            .map(|c| c.outcome)
            .max()
            .unwrap_or(Outcome::Pass);
        FileReport {
            path: path.to_owned(),
            sha256,
            size,
            kind,
            outcome,
            checks,
        }
    }

    /// A file the egress rules decided on without reading it (held by a review rule or the size
    /// limit: `Review`; refused as a link, a special file or a reserved name: `Fail`): one
    /// `egress-rule` check with `reason`.
    pub fn by_rule(path: &str, size: u64, outcome: Outcome, reason: &str) -> FileReport {
        FileReport::new(
            path,
            String::new(),
            size,
            None,
            vec![CheckResult::new("egress-rule", outcome, reason)],
        )
    }

    /// Why the file is held, in one line naming the check and its first failing cell; `None`
    /// when it passed. Carries no cell value.
    pub fn hold_reason(&self) -> Option<String> {
        if self.outcome == Outcome::Pass {
            return None;
        }
        let worst = self.checks.iter().find(|c| c.outcome == self.outcome)?;
        let more = self
            .checks
            .iter()
            .filter(|c| c.outcome != Outcome::Pass)
            .count()
            - 1;
        let mut reason = format!(
            "{} check {}: {}",
            worst.name,
            worst.outcome.as_str(),
            worst.summary
        );
        if more > 0 {
            reason.push_str(&format!(
                " (and {more} more check{})",
                if more == 1 { "" } else { "s" }
            ));
        }
        Some(reason)
    }
}
