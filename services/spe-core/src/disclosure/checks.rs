//! The checks of the egress rules on one file. Every table check reads the table once with the
//! `csv` crate (any line ending, quoted fields).
//!
//! Count columns: the columns a rule names, or, when it names none, every column with a digit in
//! any of its cells. Every cell of a count column must be a count (a finite number >= 0); a cell
//! that is not — `NA`, empty, `<5`, text, a negative number — fails the `threshold` check, so
//! one odd cell never exempts a column, and naming the columns is how a table with label columns
//! that contain digits (sample ids) passes. A count above 0 and below the threshold fails.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::sniff::{ContentKind, sniff};
use super::table::{Table, is_missing, number};
use super::{Cell, CheckResult, FileReport, MAX_CELLS, Outcome};
use crate::manifest::{AllowedType, DominanceRule, OutputCheck, TableFlag};

/// Runs the `file-type` check and every check of `checks` (the rules whose glob matched `path`)
/// on `bytes`, exactly the bytes that would leave.
pub fn check_file(path: &str, bytes: &[u8], checks: &[OutputCheck]) -> FileReport {
    let kind = sniff(path, bytes);
    let sha256 = hex::encode(Sha256::digest(bytes));
    let mut results = vec![file_type(kind, checks)];
    let table_rules: Vec<&OutputCheck> = checks.iter().filter(|c| c.has_table_checks()).collect();
    if !table_rules.is_empty() {
        match kind {
            ContentKind::Image | ContentKind::Binary => results.push(CheckResult::new(
                "table",
                Outcome::Fail,
                format!(
                    "the rules check it as a table, but it is {}",
                    kind_phrase(kind)
                ),
            )),
            ContentKind::Text | ContentKind::Table => match Table::parse(path, bytes) {
                Err(e) => results.push(CheckResult::new(
                    "table",
                    Outcome::Fail,
                    format!("not a readable table: {e}"),
                )),
                Ok(table) => {
                    for rule in table_rules {
                        table_checks(&table, rule, &mut results);
                    }
                }
            },
        }
    }
    FileReport::new(path, sha256, bytes.len() as u64, Some(kind), results)
}

/// For a file too large to hold in memory, read once as it was uploaded (`kind` from a
/// [`super::Sniffer`] fed every byte sent, `sha256` of those bytes): the `file-type` check, and
/// any table check held for review, since it did not run.
pub fn check_streamed(
    path: &str,
    sha256: String,
    size: u64,
    kind: ContentKind,
    checks: &[OutputCheck],
) -> FileReport {
    let mut results = vec![file_type(kind, checks)];
    if checks.iter().any(OutputCheck::has_table_checks) {
        results.push(CheckResult::new(
            "table",
            Outcome::Review,
            format!("{size} bytes: too large for the automatic table checks, which did not run"),
        ));
    }
    FileReport::new(path, sha256, size, Some(kind), results)
}

fn kind_phrase(kind: ContentKind) -> &'static str {
    match kind {
        ContentKind::Image => "an image",
        ContentKind::Binary => "binary (not UTF-8 text)",
        ContentKind::Text => "text",
        ContentKind::Table => "a table",
    }
}

/// Images and binaries are held unless a matching rule lists their kind in `allow_types`.
fn file_type(kind: ContentKind, checks: &[OutputCheck]) -> CheckResult {
    let needed = match kind {
        ContentKind::Image => AllowedType::Image,
        ContentKind::Binary => AllowedType::Binary,
        ContentKind::Text | ContentKind::Table => {
            return CheckResult::new("file-type", Outcome::Pass, kind_phrase(kind));
        }
    };
    let allowing = checks
        .iter()
        .find(|c| c.allow_types.as_ref().is_some_and(|t| t.contains(&needed)));
    let mut result = match allowing {
        Some(rule) => {
            let mut r = CheckResult::new(
                "file-type",
                Outcome::Pass,
                format!("{}, released by the rule's allow_types", kind_phrase(kind)),
            );
            r.rule = Some(rule.glob.clone());
            r
        }
        None => CheckResult::new(
            "file-type",
            Outcome::Review,
            format!(
                "{}: held for review unless a rule's allow_types lists {}",
                kind_phrase(kind),
                kind.as_str()
            ),
        ),
    };
    result
        .parameters
        .insert("kind".into(), Value::String(kind.as_str().into()));
    result
}

/// Collects failing cells, keeping the first [`MAX_CELLS`] and counting all.
struct Cells {
    kept: Vec<Cell>,
    count: usize,
}

impl Cells {
    fn new() -> Cells {
        Cells {
            kept: Vec::new(),
            count: 0,
        }
    }

    fn push(&mut self, table: &Table, row: usize, col: usize) {
        self.count += 1;
        if self.kept.len() < MAX_CELLS {
            self.kept.push(Cell {
                row: row + 1,
                column: table.header[col].clone(),
                col: col + 1,
                value: table.rows[row][col].clone(),
            });
        }
    }

    fn first(&self) -> String {
        match self.kept.first() {
            Some(c) => format!("first: row {}, column {}", c.row, c.column),
            None => String::new(),
        }
    }

    fn into_result(
        self,
        name: &str,
        rule: &OutputCheck,
        bad: Outcome,
        parameters: Value,
        describe: impl FnOnce(usize, String) -> String,
        ok: String,
    ) -> CheckResult {
        let (outcome, summary) = if self.count == 0 {
            (Outcome::Pass, ok)
        } else {
            let first = self.first();
            (bad, describe(self.count, first))
        };
        let mut r = CheckResult::new(name, outcome, summary);
        r.rule = Some(rule.glob.clone());
        if let Value::Object(p) = parameters {
            r.parameters = p;
        }
        r.failing_cell_count = self.count;
        r.failing_cells = self.kept;
        r
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The count columns of `rule` in `table`: named ones (`Err` names the first missing), or every
/// column with a digit in any cell.
fn count_columns(table: &Table, rule: &OutputCheck) -> Result<Vec<usize>, String> {
    match &rule.columns {
        Some(names) => names
            .iter()
            .map(|n| {
                table
                    .column(n)
                    .ok_or_else(|| format!("count column {n} is not in the table"))
            })
            .collect(),
        None => Ok((0..table.header.len())
            .filter(|&c| {
                table
                    .rows
                    .iter()
                    .any(|r| r[c].bytes().any(|b| b.is_ascii_digit()))
            })
            .collect()),
    }
}

fn column_names(table: &Table, cols: &[usize]) -> Value {
    Value::Array(
        cols.iter()
            .map(|&c| Value::String(table.header[c].clone()))
            .collect(),
    )
}

fn table_checks(table: &Table, rule: &OutputCheck, out: &mut Vec<CheckResult>) {
    if let Some(max) = rule.max_rows {
        let rows = table.rows.len() as u64;
        let mut r = if rows > max {
            CheckResult::new(
                "max-rows",
                Outcome::Fail,
                format!("{rows} data rows, more than the {max} allowed"),
            )
        } else {
            CheckResult::new(
                "max-rows",
                Outcome::Pass,
                format!("{rows} data rows of at most {max}"),
            )
        };
        r.rule = Some(rule.glob.clone());
        r.parameters.insert("max_rows".into(), json!(max));
        out.push(r);
    }
    let needs_columns = rule.cell_threshold().is_some() || rule.flag.is_some();
    let cols = if needs_columns {
        match count_columns(table, rule) {
            Ok(c) => c,
            Err(e) => {
                let mut r = CheckResult::new("threshold", Outcome::Fail, e);
                r.rule = Some(rule.glob.clone());
                out.push(r);
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if let Some(min) = rule.cell_threshold()
        && !(rule.columns.is_some() && cols.is_empty())
    {
        out.push(threshold(table, rule, &cols, min));
    }
    if let Some(flags) = &rule.flag {
        for flag in flags {
            out.push(flagged(table, rule, &cols, *flag));
        }
    }
    if let Some(d) = &rule.dominance {
        out.extend(dominance(table, rule, d));
    }
}

fn threshold(table: &Table, rule: &OutputCheck, cols: &[usize], min: u64) -> CheckResult {
    let is_small = |v: f64| v > 0.0 && v < min as f64;
    let mut cells = Cells::new();
    let (mut small, mut not_counts) = (0usize, 0usize);
    for (r, row) in table.rows.iter().enumerate() {
        for &c in cols {
            match number(&row[c]) {
                Some(v) if v >= 0.0 => {
                    if is_small(v) {
                        small += 1;
                        cells.push(table, r, c);
                    }
                }
                // A cell that is not a count can hide anything: it fails like a small one.
                _ => {
                    not_counts += 1;
                    cells.push(table, r, c);
                }
            }
        }
    }
    let first_is_small = cells
        .kept
        .first()
        .and_then(|c| number(&c.value))
        .is_some_and(|v| v >= 0.0);
    let params = json!({ "threshold": min, "columns": column_names(table, cols) });
    let ok = if cols.is_empty() {
        "no count columns (no column holds a digit)".to_owned()
    } else {
        format!("every count cell is 0 or at least {min}")
    };
    cells.into_result(
        "threshold",
        rule,
        Outcome::Fail,
        params,
        |_, first| {
            let mut parts = Vec::new();
            if not_counts > 0 {
                parts.push(format!(
                    "{} not a count",
                    plural(not_counts, "cell", "cells")
                ));
            }
            if small > 0 {
                parts.push(format!("{} below {min}", plural(small, "cell", "cells")));
            }
            let why = if first_is_small {
                "below the threshold"
            } else {
                "not a count"
            };
            format!("{} in count columns ({first}: {why})", parts.join(" and "))
        },
        ok,
    )
}

fn flagged(table: &Table, rule: &OutputCheck, cols: &[usize], flag: TableFlag) -> CheckResult {
    let mut cells = Cells::new();
    let (name, what) = match flag {
        TableFlag::Zeros => ("zeros", "zero"),
        TableFlag::Negatives => ("negative", "negative"),
        TableFlag::Missing => ("missing", "missing"),
        TableFlag::AllSame => ("all-values-are-same", "same"),
    };
    let params = json!({ "columns": column_names(table, cols) });
    if flag == TableFlag::AllSame {
        let same: Vec<usize> = cols
            .iter()
            .copied()
            .filter(|&c| {
                table.rows.len() >= 2 && table.rows.iter().all(|r| r[c] == table.rows[0][c])
            })
            .collect();
        for &c in &same {
            cells.push(table, 0, c);
        }
        return cells.into_result(
            name,
            rule,
            Outcome::Review,
            params,
            |n, first| {
                format!(
                    "{} with the same value in every row ({first})",
                    plural(n, "column", "columns")
                )
            },
            "no column has one value in every row".into(),
        );
    }
    for (r, row) in table.rows.iter().enumerate() {
        for &c in cols {
            let cell = &row[c];
            let hit = match flag {
                TableFlag::Zeros => number(cell) == Some(0.0),
                TableFlag::Negatives => number(cell).is_some_and(|v| v < 0.0),
                TableFlag::Missing => is_missing(cell),
                TableFlag::AllSame => false,
            };
            if hit {
                cells.push(table, r, c);
            }
        }
    }
    cells.into_result(
        name,
        rule,
        Outcome::Review,
        params,
        |n, first| format!("{} {what} ({first})", plural(n, "cell", "cells")),
        format!("no {what} cells"),
    )
}

/// One cell of a dominance check: its key (the `by` values) and (row, contribution) pairs.
type Group<'a> = (Vec<&'a str>, Vec<(usize, f64)>);

fn dominance(table: &Table, rule: &OutputCheck, d: &DominanceRule) -> Vec<CheckResult> {
    let params = json!({ "column": d.column, "by": d.by, "n": d.n, "k": d.k, "p": d.p });
    let fail = |name: &str, summary: String| {
        let mut r = CheckResult::new(name, Outcome::Fail, summary);
        r.rule = Some(rule.glob.clone());
        if let Value::Object(p) = params.clone() {
            r.parameters = p;
        }
        r
    };
    let Some(value_col) = table.column(&d.column) else {
        let e = format!("contribution column {} is not in the table", d.column);
        return vec![fail("nk-rule", e.clone()), fail("p-ratio", e)];
    };
    let mut by = Vec::new();
    for name in &d.by {
        match table.column(name) {
            Some(c) => by.push(c),
            None => {
                let e = format!("grouping column {name} is not in the table");
                return vec![fail("nk-rule", e.clone()), fail("p-ratio", e)];
            }
        }
    }
    // Contributions by group, in the order groups first appear.
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: std::collections::HashMap<Vec<&str>, usize> = std::collections::HashMap::new();
    let mut bad = Cells::new();
    for (r, row) in table.rows.iter().enumerate() {
        let Some(v) = number(&row[value_col]).filter(|v| *v >= 0.0) else {
            bad.push(table, r, value_col);
            continue;
        };
        let key: Vec<&str> = by.iter().map(|&c| row[c].as_str()).collect();
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((r, v));
    }
    if bad.count > 0 {
        let bad2 = Cells {
            kept: bad.kept.clone(),
            count: bad.count,
        };
        let describe = |n: usize, first: String| {
            format!(
                "{} of the contribution column not a number >= 0 ({first})",
                plural(n, "cell", "cells")
            )
        };
        return vec![
            bad.into_result(
                "nk-rule",
                rule,
                Outcome::Fail,
                params.clone(),
                describe,
                String::new(),
            ),
            bad2.into_result(
                "p-ratio",
                rule,
                Outcome::Fail,
                params.clone(),
                describe,
                String::new(),
            ),
        ];
    }
    let (n, k, p) = (d.n as usize, f64::from(d.k) / 100.0, f64::from(d.p) / 100.0);
    let mut nk = Cells::new();
    let mut pr = Cells::new();
    for (_, contributions) in &groups {
        let mut sorted = contributions.clone();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = sorted.iter().map(|(_, v)| v).sum();
        if total <= 0.0 {
            continue;
        }
        let (top_row, top) = sorted[0];
        let top_n: f64 = sorted.iter().take(n).map(|(_, v)| v).sum();
        if top_n > k * total {
            nk.push(table, top_row, value_col);
        }
        let second = sorted.get(1).map_or(0.0, |(_, v)| *v);
        if total - top - second < p * top {
            pr.push(table, top_row, value_col);
        }
    }
    let groups_word = if by.is_empty() { "the column" } else { "cells" };
    vec![
        nk.into_result(
            "nk-rule",
            rule,
            Outcome::Fail,
            params.clone(),
            |c, first| {
                format!(
                    "{} where the {n} largest contributions exceed {}% of the total (largest contributor: {first})",
                    plural(c, "cell", "cells"),
                    d.k
                )
            },
            format!("no dominated {groups_word} ({} groups)", groups.len()),
        ),
        pr.into_result(
            "p-ratio",
            rule,
            Outcome::Fail,
            params.clone(),
            |c, first| {
                format!(
                    "{} where the rest after the two largest is below {}% of the largest (largest contributor: {first})",
                    plural(c, "cell", "cells"),
                    d.p
                )
            },
            format!("no {groups_word} fail the p-ratio ({} groups)", groups.len()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::disclosure_document;

    fn rule(yaml: &str) -> OutputCheck {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn counts(min: Option<u64>, columns: Option<&[&str]>) -> OutputCheck {
        OutputCheck {
            glob: "*.csv".into(),
            min_cell_count: min,
            columns: columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            max_rows: None,
            flag: None,
            dominance: None,
            allow_types: None,
        }
    }

    fn check<'a>(report: &'a FileReport, name: &str) -> &'a CheckResult {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {report:#?}"))
    }

    #[test]
    fn a_cell_of_3_is_held_with_its_cell() {
        let r = check_file(
            "t.csv",
            b"sample,n\nA,12\nB,3\n",
            &[counts(None, Some(&["n"]))],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        let t = check(&r, "threshold");
        assert_eq!(t.outcome, Outcome::Fail);
        assert_eq!(
            t.failing_cells,
            [Cell {
                row: 2,
                column: "n".into(),
                col: 2,
                value: "3".into()
            }]
        );
        assert_eq!(t.parameters["threshold"], json!(10));
        let reason = r.hold_reason().unwrap();
        assert_eq!(
            reason,
            "threshold check fail: 1 cell below 10 in count columns (first: row 2, column n: below the threshold)"
        );
        // The reason a researcher sees never carries the value.
        assert!(!reason.contains(" 3 ") && !reason.ends_with('3'));
        assert_eq!(
            r.sha256,
            hex::encode(Sha256::digest(b"sample,n\nA,12\nB,3\n"))
        );
    }

    #[test]
    fn all_at_least_10_or_zero_is_released() {
        let r = check_file(
            "t.csv",
            b"sample,n\nA,12\nB,10\nC,0\n",
            &[counts(None, Some(&["n"]))],
        );
        assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
        assert_eq!(r.hold_reason(), None);
        // The old form (a threshold, no columns) still works.
        let r = check_file("t.csv", b"sample,n\nA,12\nB,7\n", &[counts(Some(5), None)]);
        assert_eq!(r.outcome, Outcome::Pass, "{r:#?}");
        let r = check_file("t.csv", b"sample,n\nA,12\nB,4\n", &[counts(Some(5), None)]);
        assert_eq!(r.outcome, Outcome::Fail);
    }

    #[test]
    fn na_in_a_count_column_holds_the_file() {
        let r = check_file(
            "t.csv",
            b"sample,n\nA,12\nB,NA\nC,3\n",
            &[counts(None, Some(&["n"]))],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        let t = check(&r, "threshold");
        assert_eq!(t.failing_cell_count, 2);
        assert_eq!(t.failing_cells[0].value, "NA");
        assert_eq!(t.failing_cells[0].row, 2);
        assert!(
            t.summary
                .starts_with("1 cell not a count and 1 cell below 10"),
            "{}",
            t.summary
        );
        // Empty, negative, suppression markers: none is a count.
        for bad in ["", "-4", "<5", "*", "twelve"] {
            let table = format!("sample,n\nA,12\nB,{bad}\n");
            let r = check_file("t.csv", table.as_bytes(), &[counts(None, Some(&["n"]))]);
            assert_eq!(r.outcome, Outcome::Fail, "{bad:?}");
        }
        // Without named columns one odd cell does not exempt the column either: the column holds
        // digits, so it is a count column, and `NA` is not a count.
        let r = check_file(
            "t.csv",
            b"sample,n\nA,12\nB,NA\nC,3\n",
            &[counts(Some(10), None)],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(check(&r, "threshold").failing_cell_count, 2);
        // A named column that is missing holds the file.
        let r = check_file(
            "t.csv",
            b"sample,count\nA,12\n",
            &[counts(None, Some(&["n"]))],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            check(&r, "threshold").summary,
            "count column n is not in the table"
        );
    }

    #[test]
    fn line_endings_and_quoted_commas_are_read_as_a_table() {
        let rules = [counts(None, Some(&["n"]))];
        for (text, outcome) in [
            ("sample,n\rA,12\rB,3\r", Outcome::Fail),
            ("sample,n\rA,12\rB,30", Outcome::Pass),
            ("sample,n\r\nA,12\r\nB,3\r\n", Outcome::Fail),
            ("sample,n\r\nA,12\r\nB,30\r\n", Outcome::Pass),
            ("sample,n\n\"Smith, J\",3\n", Outcome::Fail),
            ("sample,n\n\"Smith, J\",30\n\"a\nb\",40\n", Outcome::Pass),
        ] {
            let r = check_file("t.csv", text.as_bytes(), &rules);
            assert_eq!(r.outcome, outcome, "{text:?}: {r:#?}");
        }
        // CR-only: the failing cell is found in row 2, not a header of one long line.
        let r = check_file("t.csv", b"sample,n\rA,12\rB,3\r", &rules);
        assert_eq!(check(&r, "threshold").failing_cells[0].row, 2);
        // The quoted comma does not shift the count into another column.
        let r = check_file("t.csv", b"sample,n\n\"Smith, J\",3\n", &rules);
        assert_eq!(check(&r, "threshold").failing_cells[0].value, "3");
        // TSV.
        let r = check_file("t.tsv", b"sample\tn\nA,B\t3\n", &rules);
        assert_eq!(check(&r, "threshold").failing_cells[0].column, "n");
        // Ragged rows are not a table: held.
        let r = check_file("t.csv", b"sample,n\nA\n", &rules);
        assert_eq!(check(&r, "table").outcome, Outcome::Fail);
    }

    #[test]
    fn row_limit() {
        let r = check_file(
            "t.csv",
            b"n\n10\n20\n30\n",
            &[rule("{glob: '*.csv', max_rows: 2}")],
        );
        assert_eq!(check(&r, "max-rows").outcome, Outcome::Fail);
        assert_eq!(
            r.hold_reason().unwrap(),
            "max-rows check fail: 3 data rows, more than the 2 allowed"
        );
        let r = check_file(
            "t.csv",
            b"n\n10\n20\n",
            &[rule("{glob: '*.csv', max_rows: 2}")],
        );
        assert_eq!(r.outcome, Outcome::Pass);
    }

    #[test]
    fn flags_ask_for_review() {
        let flags =
            rule("{glob: '*.csv', columns: [n, m], flag: [zeros, negatives, missing, all_same]}");
        let r = check_file(
            "t.csv",
            b"g,n,m\nA,0,10\nB,12,10\n",
            std::slice::from_ref(&flags),
        );
        assert_eq!(r.outcome, Outcome::Review, "{r:#?}");
        assert_eq!(check(&r, "zeros").failing_cells[0].row, 1);
        assert_eq!(
            check(&r, "all-values-are-same").failing_cells[0].column,
            "m"
        );
        assert_eq!(check(&r, "negative").outcome, Outcome::Pass);
        assert_eq!(check(&r, "missing").outcome, Outcome::Pass);
        assert!(
            r.hold_reason()
                .unwrap()
                .starts_with("zeros check review: 1 cell zero")
        );
        let flags = rule("{glob: '*.csv', flag: [negatives, missing]}");
        let r = check_file("t.csv", b"g,effect,p\nA,-1.5,0.01\nB,2,NA\n", &[flags]);
        assert_eq!(check(&r, "negative").failing_cells[0].column, "effect");
        assert_eq!(check(&r, "missing").failing_cells[0].column, "p");
        assert_eq!(r.outcome, Outcome::Review);
        // Flags alone run no threshold.
        assert!(r.checks.iter().all(|c| c.name != "threshold"));
    }

    #[test]
    fn dominance_nk_and_p_ratio() {
        let d = rule("{glob: '*.csv', dominance: {column: income, by: [region]}}");
        assert_eq!(
            (
                d.dominance.as_ref().unwrap().n,
                d.dominance.as_ref().unwrap().k,
                d.dominance.as_ref().unwrap().p
            ),
            (2, 90, 10)
        );
        // North: 100 + 95 of 200 = 97.5% > 90%, and 5 left < 10% of 100: fails both.
        // South: four equal contributors: passes both.
        let table = b"region,income\nNorth,100\nNorth,95\nNorth,5\nSouth,50\nSouth,50\nSouth,50\nSouth,50\n";
        let r = check_file("t.csv", table, std::slice::from_ref(&d));
        let nk = check(&r, "nk-rule");
        assert_eq!(nk.outcome, Outcome::Fail);
        assert_eq!(
            nk.failing_cells,
            [Cell {
                row: 1,
                column: "income".into(),
                col: 2,
                value: "100".into()
            }]
        );
        assert_eq!(check(&r, "p-ratio").outcome, Outcome::Fail);
        // NK: the two largest hold 95%.
        let r = check_file(
            "t.csv",
            b"region,income\nX,60\nX,35\nX,5\n",
            std::slice::from_ref(&d),
        );
        assert_eq!(check(&r, "nk-rule").outcome, Outcome::Fail, "95% > 90%");
        let r = check_file(
            "t.csv",
            b"region,income\nX,60\nX,20\nX,5\nX,15\n",
            std::slice::from_ref(&d),
        );
        assert_eq!(check(&r, "nk-rule").outcome, Outcome::Pass, "80% <= 90%");
        assert_eq!(check(&r, "p-ratio").outcome, Outcome::Pass, "20 >= 6");
        let r = check_file(
            "t.csv",
            b"region,income\nX,80\nX,5\nX,5\nX,2\n",
            &[rule("{glob: '*.csv', dominance: {column: income, k: 99}}")],
        );
        assert_eq!(check(&r, "nk-rule").outcome, Outcome::Pass, "85/92 <= 99%");
        assert_eq!(check(&r, "p-ratio").outcome, Outcome::Fail, "7 < 8");
        // A single contributor dominates its cell; no `by`: the whole column is one cell.
        let r = check_file(
            "t.csv",
            b"region,income\nX,80\n",
            &[rule("{glob: '*.csv', dominance: {column: income}}")],
        );
        assert_eq!(r.outcome, Outcome::Fail);
        // A contribution that is not a number >= 0 holds the file.
        let r = check_file(
            "t.csv",
            b"region,income\nX,80\nY,NA\n",
            std::slice::from_ref(&d),
        );
        assert!(check(&r, "nk-rule").summary.contains("not a number >= 0"));
        let r = check_file("t.csv", b"area,income\nX,80\n", &[d]);
        assert_eq!(
            check(&r, "nk-rule").summary,
            "grouping column region is not in the table"
        );
    }

    #[test]
    fn images_and_binaries_are_held_unless_allowed() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let r = check_file("plots/a.png", png, &[]);
        assert_eq!(r.outcome, Outcome::Review);
        assert_eq!(r.kind, Some(ContentKind::Image));
        assert!(
            r.hold_reason()
                .unwrap()
                .starts_with("file-type check review: an image")
        );
        let r = check_file("plots/a.svg", b"<svg/>", &[]);
        assert_eq!(r.outcome, Outcome::Review);
        let r = check_file("a.txt", b"ok\0", &[]);
        assert_eq!(r.outcome, Outcome::Review);
        assert_eq!(r.kind, Some(ContentKind::Binary));
        let r = check_file("a.txt", b"plain text\n", &[]);
        assert_eq!(r.outcome, Outcome::Pass);
        let allow = rule("{glob: 'plots/*', allow_types: [image]}");
        let r = check_file("plots/a.png", png, std::slice::from_ref(&allow));
        assert_eq!(r.outcome, Outcome::Pass);
        assert_eq!(check(&r, "file-type").rule.as_deref(), Some("plots/*"));
        // Allowing images does not allow binaries.
        assert_eq!(
            check_file("plots/a.bin", b"\0\0", &[allow]).outcome,
            Outcome::Review
        );
        // A binary named .csv under a table rule fails the table check too.
        let r = check_file("t.csv", b"n\n\0\n", &[counts(None, Some(&["n"]))]);
        assert_eq!(r.outcome, Outcome::Fail);
        // Streamed (large) files: the type check runs, table checks are left to a person.
        let r = check_streamed(
            "big.csv",
            "ab".into(),
            1 << 30,
            ContentKind::Table,
            &[counts(None, Some(&["n"]))],
        );
        assert_eq!(r.outcome, Outcome::Review);
        let r = check_streamed("big.txt", "ab".into(), 1 << 30, ContentKind::Text, &[]);
        assert_eq!(r.outcome, Outcome::Pass);
    }

    #[test]
    fn reports_serialize_and_the_disclosure_record_has_no_values() {
        let r = check_file(
            "t.csv",
            b"sample,n\nA,12\nB,3\n",
            &[counts(None, Some(&["n"]))],
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["outcome"], "fail");
        assert_eq!(v["checks"][1]["failing_cells"][0]["value"], "3");
        let back: FileReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let held = FileReport::by_rule("x.bam", 10, Outcome::Review, "matches a review rule");
        let doc = disclosure_document("run-1", "quals@1.0.0", &[r, held], Vec::new());
        let t = &doc["results"]["t.csv"];
        assert_eq!(t["status"], "fail");
        assert_eq!(t["type"], "table");
        assert_eq!(t["files"][0]["sdc"]["summary"]["threshold"], 1);
        assert_eq!(t["files"][0]["sdc"]["summary"]["nk-rule"], 0);
        assert_eq!(t["files"][0]["sdc"]["cells"]["threshold"], json!([[1, 1]]));
        assert_eq!(
            t["checks"][1]["failing_cells"][0],
            json!({"row": 2, "column": "n", "col": 2})
        );
        assert_eq!(t["command"], "egress rules: *.csv");
        assert!(!doc.to_string().contains("\"3\""));
        let x = &doc["results"]["x.bam"];
        assert_eq!(
            (x["status"].as_str(), x["type"].as_str()),
            (Some("review"), Some("unread"))
        );
        assert_eq!(
            x["summary"],
            "egress-rule check review: matches a review rule"
        );
        assert_eq!(doc["approvals"], json!([]));
        assert_eq!(doc["version"], "spe-disclosure/1");
    }

    #[test]
    fn many_failing_cells_are_counted_and_the_first_hundred_kept() {
        let mut table = String::from("n\n");
        for _ in 0..250 {
            table.push_str("3\n");
        }
        let rule: OutputCheck = serde_yaml::from_str("{glob: '*.csv', columns: [n]}").unwrap();
        let r = check_file("t.csv", table.as_bytes(), &[rule]);
        let t = &r.checks[1];
        assert_eq!(
            (t.failing_cell_count, t.failing_cells.len()),
            (250, MAX_CELLS)
        );
        assert_eq!(t.failing_cells[99].row, 100);
    }

    #[test]
    fn the_hold_reason_names_the_worst_check_and_counts_the_others() {
        let rule: OutputCheck =
            serde_yaml::from_str("{glob: '*.csv', columns: [n], max_rows: 1, flag: [zeros]}")
                .unwrap();
        let r = check_file("t.csv", b"n\n0\n3\n", &[rule]);
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.hold_reason().unwrap(),
            "max-rows check fail: 2 data rows, more than the 1 allowed (and 2 more checks)"
        );
        // Without a header row there is nothing to count: an empty file passes its table checks.
        let rule: OutputCheck = serde_yaml::from_str("{glob: '*.csv', columns: [n]}").unwrap();
        let r = check_file("t.csv", b"", &[rule]);
        assert_eq!(r.outcome, Outcome::Fail, "the named column is not there");
    }
}
