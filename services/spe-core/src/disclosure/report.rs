//! `<run_id>/disclosure.json`: the machine-readable record of which checks ran on which file of
//! a run with which result, and who approved what (SATRE 3.3.09). Its shape follows ACRO's
//! `results.json` so that existing output checkers read it: `results` maps each output to
//! `{uid, status, type, properties, files: [{name, sdc: {summary, cells}}], command, summary,
//! comments, exception}`, where `sdc.summary` counts the failing cells per ACRO check name and
//! `sdc.cells` lists them as `[row, column]` from 0, as ACRO does. Our own `checks` (the full
//! results, without cell values) sit beside them. Cell values never appear: the record is
//! released with the outputs, also for files that were held.

use serde_json::{Map, Value, json};

use super::{CheckResult, FileReport};

/// The `version` of the document's format.
pub const DISCLOSURE_VERSION: &str = "spe-disclosure/1";

/// ACRO's check names, always present in `sdc.summary` (0 when the check did not fail).
const ACRO_CHECKS: [&str; 6] = [
    "threshold",
    "p-ratio",
    "nk-rule",
    "all-values-are-same",
    "negative",
    "missing",
];

/// The document for run `run_id` of `workflow` (`name@version`): one entry per file the egress
/// rules named (`files`, in path order), and the reviewers' decisions (`approvals`, as the
/// review code records them). The same input gives the same bytes.
pub fn disclosure_document(
    run_id: &str,
    workflow: &str,
    files: &[FileReport],
    approvals: Vec<Value>,
) -> Value {
    let mut sorted: Vec<&FileReport> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut results = Map::new();
    for f in sorted {
        results.insert(f.path.clone(), file_entry(f));
    }
    json!({
        "version": DISCLOSURE_VERSION,
        "run_id": run_id,
        "workflow": workflow,
        "results": results,
        "approvals": approvals,
    })
}

fn file_entry(f: &FileReport) -> Value {
    let mut counts = Map::new();
    let mut cells = Map::new();
    for name in ACRO_CHECKS {
        counts.insert(name.into(), json!(0));
        cells.insert(name.into(), json!([]));
    }
    for c in &f.checks {
        if c.failing_cell_count == 0 {
            continue;
        }
        let n = counts.get(&c.name).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(c.name.clone(), json!(n + c.failing_cell_count as u64));
        let list = cells.entry(c.name.clone()).or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            list.extend(
                c.failing_cells
                    .iter()
                    .map(|cell| json!([cell.row.saturating_sub(1), cell.col.saturating_sub(1)])),
            );
        }
    }
    counts.insert("suppressed".into(), json!(false));
    let rules: Vec<&str> = {
        let mut r: Vec<&str> = f.checks.iter().filter_map(|c| c.rule.as_deref()).collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let mut properties = Map::new();
    properties.insert("size".into(), json!(f.size));
    if !f.sha256.is_empty() {
        properties.insert("sha256".into(), json!(f.sha256));
    }
    json!({
        "uid": f.path,
        "status": f.outcome.as_str(),
        "type": f.kind.map_or("unread", |k| k.as_str()),
        "properties": properties,
        "files": [{ "name": f.path, "sdc": { "summary": counts, "cells": cells } }],
        "command": if rules.is_empty() { "egress rules".to_owned() } else { format!("egress rules: {}", rules.join(", ")) },
        "summary": f.hold_reason().unwrap_or_else(|| "pass".into()),
        "comments": [],
        "exception": "",
        "checks": f.checks.iter().map(without_values).collect::<Vec<_>>(),
    })
}

fn without_values(c: &CheckResult) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(Value::Array(cells)) = v.get_mut("failing_cells") {
        for cell in cells {
            if let Value::Object(cell) = cell {
                cell.remove("value");
            }
        }
    }
    v
}
