//! What a reviewer sees of a file: text and CSV/TSV as a table, PNG/JPEG/GIF/WebP/SVG as an
//! image (base64, for an `<img>` with a data URL), anything else as a hex dump of its head.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::sniff::{ContentKind, image_media_type, sniff};
use super::table::Table;

/// Most text bytes a text preview carries.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Largest image shown inline; larger ones are shown as hex.
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;
/// Bytes in a hex preview.
pub const HEX_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Preview {
    /// The first lines of a text file.
    Text {
        text: String,
        truncated: bool,
    },
    /// A CSV/TSV table's header and first rows.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        total_rows: usize,
        truncated: bool,
    },
    Image {
        media_type: String,
        base64: String,
    },
    /// `offset  hex bytes  |ascii|` lines of the first [`HEX_BYTES`].
    Hex {
        head: String,
        size: usize,
    },
}

/// The preview of `bytes` named `path`, with at most `max_rows` rows or lines.
pub fn preview(path: &str, bytes: &[u8], max_rows: usize) -> Preview {
    match sniff(path, bytes) {
        ContentKind::Image => {
            let media_type = image_media_type(bytes).or_else(|| {
                std::str::from_utf8(bytes)
                    .is_ok()
                    .then_some("image/svg+xml")
            });
            match media_type {
                Some(t)
                    if bytes.len() <= MAX_IMAGE_BYTES && t != "image/tiff" && t != "image/bmp" =>
                {
                    Preview::Image {
                        media_type: t.to_owned(),
                        base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                    }
                }
                _ => hex(bytes),
            }
        }
        ContentKind::Binary => hex(bytes),
        ContentKind::Table => match Table::parse(path, bytes) {
            Ok(t) => Preview::Table {
                truncated: t.rows.len() > max_rows,
                total_rows: t.rows.len(),
                rows: t.rows.into_iter().take(max_rows).collect(),
                header: t.header,
            },
            Err(_) => text(bytes, max_rows),
        },
        ContentKind::Text => text(bytes, max_rows),
    }
}

fn text(bytes: &[u8], max_lines: usize) -> Preview {
    let all = String::from_utf8_lossy(bytes);
    // The end of line `max_lines` (its terminator left out); LF, CRLF and CR each end a line.
    let b = all.as_bytes();
    let (mut end, mut lines, mut i) = (if max_lines == 0 { 0 } else { b.len() }, 0, 0);
    while max_lines > 0 && i < b.len() {
        if b[i] == b'\n' || b[i] == b'\r' {
            lines += 1;
            if lines == max_lines {
                end = i;
                break;
            }
            if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        }
        i += 1;
    }
    let mut cut = end.min(MAX_TEXT_BYTES);
    while !all.is_char_boundary(cut) {
        cut -= 1;
    }
    let shown = &all[..cut];
    Preview::Text {
        truncated: shown.len() < all.trim_end_matches(['\n', '\r']).len(),
        text: shown.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> Preview {
    let mut head = String::new();
    for (i, chunk) in bytes
        .iter()
        .take(HEX_BYTES)
        .collect::<Vec<_>>()
        .chunks(16)
        .enumerate()
    {
        let hexes: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        head.push_str(&format!(
            "{:08x}  {:<47}  |{ascii}|\n",
            i * 16,
            hexes.join(" ")
        ));
    }
    Preview::Hex {
        head,
        size: bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_preview() {
        match preview("t.csv", b"a,b\r1,\"x, y\"\r2,3\r4,5\r", 2) {
            Preview::Table {
                header,
                rows,
                total_rows,
                truncated,
            } => {
                assert_eq!(header, ["a", "b"]);
                assert_eq!(rows, [["1", "x, y"], ["2", "3"]]);
                assert_eq!((total_rows, truncated), (3, true));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            preview("log.txt", b"one\ntwo\nthree\n", 2),
            Preview::Text {
                text: "one\ntwo".into(),
                truncated: true
            }
        );
        assert_eq!(
            preview("log.txt", b"one\ntwo\n", 5),
            Preview::Text {
                text: "one\ntwo\n".into(),
                truncated: false
            }
        );
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            preview("p.png", png, 5),
            Preview::Image {
                media_type: "image/png".into(),
                base64: "iVBORw0KGgoAAAANSUhEUg==".into()
            }
        );
        assert!(matches!(
            preview("p.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 5),
            Preview::Image { ref media_type, .. } if media_type == "image/svg+xml"
        ));
        match preview("x.bin", b"\0\x01ABC", 5) {
            Preview::Hex { head, size } => {
                assert_eq!(size, 5);
                assert!(head.starts_with("00000000  00 01 41 42 43"), "{head}");
                assert!(head.trim_end().ends_with("|..ABC|"), "{head}");
            }
            other => panic!("{other:?}"),
        }
        // Serialized tagged by kind, as wes-api hands it out.
        let v = serde_json::to_value(preview("a.txt", b"hi", 3)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "text", "text": "hi", "truncated": false})
        );
    }
}
