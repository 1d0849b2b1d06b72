//! The reviewer's summary of a CSV/TSV table, beside its preview: per column the numbers a
//! checker looks at (minimum, the smallest non-zero value, maximum, sum, how many values are
//! multiples of 5 or 6 — a table rounded to a base shows them all — and missing cells).

use serde::{Deserialize, Serialize};

use super::table::{Table, is_missing, number};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSummary {
    /// Data rows (the header is not counted).
    pub rows: usize,
    pub columns: Vec<ColumnSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    pub name: String,
    /// Every cell that is not missing is a number, and there is at least one.
    pub numeric: bool,
    /// Over the cells that are numbers (also in a column that is not all numbers).
    pub min: Option<f64>,
    /// The smallest value other than 0.
    pub non_zero_min: Option<f64>,
    pub max: Option<f64>,
    pub sum: Option<f64>,
    /// Non-zero whole numbers that are multiples of 5, and of 6.
    pub divisible_by_5: usize,
    pub divisible_by_6: usize,
    /// Empty, `NA`, `NaN`, `null`... cells.
    pub missing: usize,
    /// Cells that are neither numbers nor missing.
    pub non_numeric: usize,
}

/// The summary of the table `bytes` named `path`; `Err` when it is not a table.
pub fn summarize_table(path: &str, bytes: &[u8]) -> Result<TableSummary, String> {
    let table = Table::parse(path, bytes)?;
    let columns = (0..table.header.len()).map(|c| column(&table, c)).collect();
    Ok(TableSummary {
        rows: table.rows.len(),
        columns,
    })
}

fn column(table: &Table, c: usize) -> ColumnSummary {
    let mut s = ColumnSummary {
        name: table.header[c].clone(),
        numeric: false,
        min: None,
        non_zero_min: None,
        max: None,
        sum: None,
        divisible_by_5: 0,
        divisible_by_6: 0,
        missing: 0,
        non_numeric: 0,
    };
    let mut numbers = 0usize;
    for row in &table.rows {
        let cell = &row[c];
        let Some(v) = number(cell) else {
            if is_missing(cell) {
                s.missing += 1;
            } else {
                s.non_numeric += 1;
            }
            continue;
        };
        numbers += 1;
        s.min = Some(s.min.map_or(v, |m| m.min(v)));
        s.max = Some(s.max.map_or(v, |m| m.max(v)));
        s.sum = Some(s.sum.unwrap_or(0.0) + v);
        if v != 0.0 {
            s.non_zero_min = Some(s.non_zero_min.map_or(v, |m| m.min(v)));
            if v.fract() == 0.0 {
                if v % 5.0 == 0.0 {
                    s.divisible_by_5 += 1;
                }
                if v % 6.0 == 0.0 {
                    s.divisible_by_6 += 1;
                }
            }
        }
    }
    s.numeric = numbers > 0 && s.non_numeric == 0;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_summarised_per_column() {
        let t = b"group,n,mean\r\nA,0,1.5\r\nB,15,NA\r\n\"C, D\",30,2\r\nE,12,x\r\n";
        let s = summarize_table("t.csv", t).unwrap();
        assert_eq!(s.rows, 4);
        let n = &s.columns[1];
        assert_eq!(n.name, "n");
        assert!(n.numeric);
        assert_eq!(
            (n.min, n.non_zero_min, n.max, n.sum),
            (Some(0.0), Some(12.0), Some(30.0), Some(57.0))
        );
        assert_eq!((n.divisible_by_5, n.divisible_by_6, n.missing), (2, 2, 0));
        let mean = &s.columns[2];
        assert!(!mean.numeric);
        assert_eq!(
            (mean.missing, mean.non_numeric, mean.sum),
            (1, 1, Some(3.5))
        );
        let group = &s.columns[0];
        assert!(!group.numeric);
        assert_eq!((group.non_numeric, group.min), (4, None));
        assert!(summarize_table("t.csv", b"a,b\n1\n").is_err());
    }
}
