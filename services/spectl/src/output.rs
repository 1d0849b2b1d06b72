//! Human output: compact tables and `key: value` lines. Text from the service is printed with
//! control characters replaced, so that no reply can move the cursor or rewrite the terminal.

use serde_json::Value;

/// A value of `v[key]` as one line of text; empty when missing or null.
pub fn field(v: &Value, key: &str) -> String {
    text(v.get(key).unwrap_or(&Value::Null))
}

/// A JSON value as one line of text; empty for null.
pub fn text(v: &Value) -> String {
    let raw = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        // A person, as the API names one: (issuer, sub).
        Value::Object(o) if o.len() == 2 && o.contains_key("issuer") && o.contains_key("sub") => {
            format!("{} ({})", text(&o["sub"]), text(&o["issuer"]))
        }
        other => other.to_string(),
    };
    raw.chars()
        .map(|c| match c {
            '\n' | '\t' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// Multi-line text (a run's log) with its line breaks and tabs kept and every other control
/// character replaced, like [`text`].
pub fn log_text(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// The first 12 digits of a digest, as the registry's folder names use them.
pub fn short_digest(v: &Value) -> String {
    text(v).chars().take(12).collect()
}

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as lines, columns two spaces apart, the last one unpadded.
    pub fn lines(&self) -> Vec<String> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| {
                let last = row.len().saturating_sub(1);
                let cells: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(i, cell)| {
                        let width = widths.get(i).copied().unwrap_or(0);
                        if i == last {
                            cell.clone()
                        } else {
                            format!("{cell:width$}")
                        }
                    })
                    .collect();
                cells.join("  ").trim_end().to_owned()
            })
            .collect()
    }

    pub fn print(&self) {
        for line in self.lines() {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_replies_cannot_drive_the_terminal() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["a".into(), "QUEUED".into()]);
        t.row(vec!["longer".into(), "x".into()]);
        assert_eq!(t.lines(), ["ID      STATE", "a       QUEUED", "longer  x"]);
        let v = json!({"d": "evil\u{1b}[2Jline\nnext", "n": 3, "z": null});
        assert_eq!(field(&v, "d"), "evil?[2Jline next");
        assert_eq!(field(&v, "n"), "3");
        assert_eq!(field(&v, "z"), "");
        assert_eq!(field(&v, "missing"), "");
        assert_eq!(log_text("a\tb\r\n\u{1b}[2J"), "a\tb?\n?[2J");
    }
}
