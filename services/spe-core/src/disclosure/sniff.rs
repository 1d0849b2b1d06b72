//! What a file is, from its content (and its name for SVG): text, a table, an image or a binary
//! nobody can read at a glance. Images and binaries are held unless a rule releases them, so the
//! sniffing errs towards "not text": one NUL byte or one invalid UTF-8 sequence anywhere makes a
//! file binary, whatever its name.

use serde::{Deserialize, Serialize};

/// How a file's content looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    /// UTF-8 text without NUL bytes.
    Text,
    /// Text with a table's name (`.csv`, `.tsv`, `.tab`).
    Table,
    /// PNG, JPEG, GIF, TIFF, BMP, WebP (by magic number) or SVG (by name or by its root element).
    Image,
    /// Anything else: NUL bytes, not UTF-8, or a known binary format (PDF, archives...).
    Binary,
}

impl ContentKind {
    /// The name `allow_types` uses for the kinds that are held unless allowed.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Text => "text",
            ContentKind::Table => "table",
            ContentKind::Image => "image",
            ContentKind::Binary => "binary",
        }
    }
}

/// How many leading bytes are kept to look for magic numbers and an SVG root.
const HEAD: usize = 4096;

/// Raster images by magic number, with their media type.
const IMAGE_MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\0", "image/tiff"),
    (b"MM\0*", "image/tiff"),
    (b"BM", "image/bmp"),
];

/// Known binary formats that are valid UTF-8 in their first bytes, so they need naming.
const BINARY_MAGIC: &[&[u8]] = &[b"%PDF-", b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\0"];

/// Streams a file's bytes once (the crawler feeds it the parts it uploads) and says what the
/// file is. UTF-8 is checked across chunk boundaries.
#[derive(Debug, Default)]
pub struct Sniffer {
    head: Vec<u8>,
    /// An incomplete UTF-8 sequence at the end of the last chunk.
    carry: Vec<u8>,
    nul: bool,
    utf8: bool,
}

impl Sniffer {
    pub fn new() -> Sniffer {
        Sniffer {
            utf8: true,
            ..Sniffer::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if chunk.contains(&0) {
            self.nul = true;
        }
        if !self.utf8 {
            return;
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        match std::str::from_utf8(&buf) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => {
                // Cut in the middle of a character: keep the tail for the next chunk.
                self.carry = buf[e.valid_up_to()..].to_vec();
            }
            Err(_) => self.utf8 = false,
        }
    }

    /// The kind of everything fed, for a file named `path`.
    pub fn finish(self, path: &str) -> ContentKind {
        let head = &self.head;
        if image_media_type(head).is_some() {
            return ContentKind::Image;
        }
        if self.nul || !self.utf8 || !self.carry.is_empty() {
            return ContentKind::Binary;
        }
        if BINARY_MAGIC.iter().any(|m| head.starts_with(m)) {
            return ContentKind::Binary;
        }
        if has_extension(path, &["svg", "svgz"]) || looks_like_svg(head) {
            return ContentKind::Image;
        }
        if has_extension(
            path,
            &["png", "jpg", "jpeg", "gif", "tif", "tiff", "bmp", "webp"],
        ) {
            // An image's name on text: still shown to a person as an image would be.
            return ContentKind::Image;
        }
        if table_delimiter(path).is_some() {
            return ContentKind::Table;
        }
        ContentKind::Text
    }
}

/// The kind of a whole file held in memory.
pub fn sniff(path: &str, bytes: &[u8]) -> ContentKind {
    let mut s = Sniffer::new();
    s.feed(bytes);
    s.finish(path)
}

/// The media type of a raster image by its magic number (WebP: RIFF....WEBP).
pub fn image_media_type(head: &[u8]) -> Option<&'static str> {
    if let Some((_, t)) = IMAGE_MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(t);
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    None
}

/// An `<svg` element near the start of the text (after an XML declaration, comments or a
/// doctype), in any case.
fn looks_like_svg(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("<svg")
}

pub(crate) fn has_extension(path: &str, exts: &[&str]) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => exts.iter().any(|e| e.eq_ignore_ascii_case(ext)),
        _ => false,
    }
}

/// The delimiter a table with this name uses: tab for `.tsv`/`.tab`, comma for `.csv`.
pub fn table_delimiter(path: &str) -> Option<u8> {
    if has_extension(path, &["tsv", "tab"]) {
        Some(b'\t')
    } else if has_extension(path, &["csv"]) {
        Some(b',')
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_before_the_name() {
        assert_eq!(sniff("a.csv", b"n\n12\n"), ContentKind::Table);
        assert_eq!(sniff("a.TSV", b"n\n12\n"), ContentKind::Table);
        assert_eq!(sniff("a.txt", b"hello\n"), ContentKind::Text);
        assert_eq!(sniff("a.csv", b"n\n1\0\n"), ContentKind::Binary);
        assert_eq!(sniff("a.txt", b"\xff\xfe"), ContentKind::Binary);
        assert_eq!(sniff("a.csv", b"\x89PNG\r\n\x1a\n...."), ContentKind::Image);
        assert_eq!(
            sniff("plot.txt", b"\x89PNG\r\n\x1a\n...."),
            ContentKind::Image
        );
        assert_eq!(sniff("a.txt", b"%PDF-1.7\n"), ContentKind::Binary);
        assert_eq!(
            sniff("a.txt", b"<?xml version=\"1.0\"?>\n<SVG>"),
            ContentKind::Image
        );
        assert_eq!(sniff("p.svg", b"<rect/>"), ContentKind::Image);
        assert_eq!(sniff("p.png", b"plain"), ContentKind::Image);
        assert_eq!(sniff("a.txt", b"RIFF\0\0\0\0WEBPVP8 "), ContentKind::Image);
        assert_eq!(sniff(".csv", b"n\n1\n"), ContentKind::Text);
    }

    #[test]
    fn utf8_is_checked_across_chunks() {
        let text = "é,ü\n".as_bytes();
        let mut s = Sniffer::new();
        s.feed(&text[..1]);
        s.feed(&text[1..]);
        assert_eq!(s.finish("a.csv"), ContentKind::Table);
        // A character cut at the very end of the file is not text.
        let mut s = Sniffer::new();
        s.feed(&text[..1]);
        assert_eq!(s.finish("a.csv"), ContentKind::Binary);
        // A NUL in a late chunk makes the whole file binary.
        let mut s = Sniffer::new();
        s.feed(&vec![b'a'; 10_000]);
        s.feed(b"\0");
        assert_eq!(s.finish("a.txt"), ContentKind::Binary);
    }
}
