//! Per-file checks of the egress rules, run on the exact bytes about to be uploaded. A file
//! that fails, or that cannot be checked, is held for review, never released.

use spe_core::manifest::OutputCheck;

/// `Err(reason)` when the file must be held.
pub fn run_checks(path: &str, bytes: &[u8], checks: &[OutputCheck]) -> Result<(), String> {
    for check in checks {
        if let Some(min) = check.min_cell_count {
            min_cell_count(path, bytes, min, check.columns.as_deref())?;
        }
    }
    Ok(())
}

/// Small-cell suppression for CSV/TSV tables: every count cell is 0 or at least `min`. The
/// count columns are `columns` by header name, or every column whose data cells are all
/// numbers.
fn min_cell_count(
    path: &str,
    bytes: &[u8],
    min: u64,
    columns: Option<&[String]>,
) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "table is not UTF-8 text".to_owned())?;
    let sep = if path.ends_with(".tsv") || path.ends_with(".tab") {
        '\t'
    } else {
        ','
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let header: Vec<String> = split(header, sep);
    let rows: Vec<Vec<String>> = lines.map(|l| split(l, sep)).collect();
    if rows.iter().any(|r| r.len() != header.len()) {
        return Err("table rows differ in their number of cells".into());
    }
    let indices: Vec<usize> = match columns {
        Some(names) => names
            .iter()
            .map(|n| {
                header
                    .iter()
                    .position(|h| h == n)
                    .ok_or_else(|| format!("count column {n} not in the table"))
            })
            .collect::<Result<_, _>>()?,
        None => (0..header.len())
            .filter(|&i| !rows.is_empty() && rows.iter().all(|r| r[i].parse::<f64>().is_ok()))
            .collect(),
    };
    for (n, row) in rows.iter().enumerate() {
        for &i in &indices {
            let value: f64 = row[i]
                .parse()
                .map_err(|_| format!("row {}: column {} is not a number", n + 2, header[i]))?;
            if value != 0.0 && value < min as f64 {
                return Err(format!(
                    "row {}: column {} holds a count below {min} (small-cell rule)",
                    n + 2,
                    header[i]
                ));
            }
        }
    }
    Ok(())
}

fn split(line: &str, sep: char) -> Vec<String> {
    line.split(sep)
        .map(|c| c.trim().trim_matches('"').to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(min: u64, columns: Option<Vec<&str>>) -> OutputCheck {
        OutputCheck {
            glob: "*.csv".into(),
            min_cell_count: Some(min),
            columns: columns.map(|c| c.into_iter().map(str::to_owned).collect()),
        }
    }

    #[test]
    fn small_cells_are_held() {
        let table = b"sample,n,mean\nA,0,3.5\nB,12,40\n";
        assert!(run_checks("r.csv", table, &[check(5, None)]).is_err());
        assert!(run_checks("r.csv", table, &[check(5, Some(vec!["n"]))]).is_ok());
        let table = b"sample,n\nA,3\n";
        let err = run_checks("r.csv", table, &[check(5, Some(vec!["n"]))]).unwrap_err();
        assert!(err.contains("below 5"), "{err}");
        assert!(run_checks("r.csv", b"\xff\xfe", &[check(5, None)]).is_err());
        assert!(run_checks("r.csv", b"a,b\n1\n", &[check(5, None)]).is_err());
        assert!(run_checks("r.tsv", b"s\tn\nA\t7\n", &[check(5, None)]).is_ok());
    }
}
