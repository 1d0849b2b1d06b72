//! CSV/TSV tables read with the `csv` crate: quoted fields (commas, quotes, line breaks inside
//! quotes) and every line ending — LF, CRLF and CR alone — are understood, so a file with CR-only
//! endings is rows, not one long header.

use super::sniff::table_delimiter;

/// A table: its header and its data rows, every row as long as the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Reads `bytes` as a table named `path` (tab-separated for `.tsv`/`.tab`, else
    /// comma-separated). Blank lines are skipped. `Err` names why it is not a table.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Table, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "the table is not UTF-8 text".to_owned())?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(table_delimiter(path).unwrap_or(b','))
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let header: Vec<String> = match records.next() {
            None => {
                return Ok(Table {
                    header: Vec::new(),
                    rows: Vec::new(),
                });
            }
            Some(r) => r
                .map_err(|e| format!("the header is not CSV: {e}"))?
                .iter()
                .map(|c| c.trim().to_owned())
                .collect(),
        };
        let mut rows = Vec::new();
        for (i, record) in records.enumerate() {
            let record = record.map_err(|e| format!("row {}: not CSV: {e}", i + 1))?;
            let row: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
            if row.len() != header.len() {
                return Err(format!(
                    "row {} has {} cells, the header {}",
                    i + 1,
                    row.len(),
                    header.len()
                ));
            }
            rows.push(row);
        }
        Ok(Table { header, rows })
    }

    /// The index of the column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

/// The number a cell holds, if it is one: finite, written as a decimal (`12`, `-3.5`, `1e3`).
/// `NA`, `NaN`, `inf`, empty and text are not numbers.
pub fn number(cell: &str) -> Option<f64> {
    let cell = cell.trim();
    if cell.is_empty() || !cell.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Whether a cell is a missing value as statistics packages write them.
pub fn is_missing(cell: &str) -> bool {
    let c = cell.trim();
    c.is_empty()
        || [
            "na", "n/a", "nan", "null", "none", ".", "-", "missing", "#n/a",
        ]
        .iter()
        .any(|m| c.eq_ignore_ascii_case(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_ending_and_quoted_commas() {
        for text in [
            "a,b\n1,2\n3,4\n",
            "a,b\r\n1,2\r\n3,4\r\n",
            "a,b\r1,2\r3,4\r",
            "a,b\r1,2\r3,4",
        ] {
            let t = Table::parse("t.csv", text.as_bytes()).unwrap();
            assert_eq!(t.header, ["a", "b"], "{text:?}");
            assert_eq!(t.rows, [["1", "2"], ["3", "4"]], "{text:?}");
        }
        let t = Table::parse("t.csv", b"name,n\n\"Smith, J\",3\n\"say \"\"hi\"\"\",4\n").unwrap();
        assert_eq!(t.rows, [["Smith, J", "3"], ["say \"hi\"", "4"]]);
        let t = Table::parse("t.tsv", b"a\tb\n1,5\t2\n").unwrap();
        assert_eq!(t.rows, [["1,5", "2"]]);
        assert!(
            Table::parse("t.csv", b"a,b\n1\n")
                .unwrap_err()
                .contains("row 1 has 1 cells")
        );
        assert!(Table::parse("t.csv", b"\xff").is_err());
        assert_eq!(Table::parse("t.csv", b"").unwrap().header.len(), 0);
        // A byte-order mark is not part of the first column's name.
        assert_eq!(
            Table::parse("t.csv", "\u{feff}n\n1\n".as_bytes())
                .unwrap()
                .header,
            ["n"]
        );
    }

    #[test]
    fn numbers_and_missing_values() {
        assert_eq!(number(" 12 "), Some(12.0));
        assert_eq!(number("-3.5"), Some(-3.5));
        assert_eq!(number("1e3"), Some(1000.0));
        for not in ["NA", "NaN", "inf", "", "x1", "-"] {
            assert_eq!(number(not), None, "{not}");
        }
        assert!(is_missing("NA") && is_missing("") && is_missing("null"));
        assert!(!is_missing("0"));
    }
}
