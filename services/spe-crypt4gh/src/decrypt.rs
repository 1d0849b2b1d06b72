//! Body decryption with bounded memory. The body's 64 KiB segments are independent (each has
//! its own nonce and MAC), so a batch of segments is read, decrypted in place on several
//! threads, and written in order by a writer thread while the next batch is read and decrypted:
//! memory is four batches whatever the file size. The edit list, if any, is applied to the
//! plaintext as it is written.

use std::io::{IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use crate::aead::Cipher;
use crate::error::{Error, Result};
use crate::header::{Header, read_header, read_up_to};
use crate::keys::SecretKey;
use crate::{CIPHER_DIFF, CIPHER_SEGMENT_SIZE, SEGMENT_SIZE};

/// How decryption spreads over threads.
#[derive(Clone, Copy, Debug)]
pub struct DecryptOptions {
    /// Threads decrypting a batch (at least 1).
    pub threads: usize,
    /// Segments per batch (at least 1); memory is four batches of 64 KiB segments.
    pub batch_segments: usize,
}

impl Default for DecryptOptions {
    fn default() -> Self {
        let threads = thread::available_parallelism().map_or(1, |n| n.get().min(8));
        DecryptOptions {
            threads,
            batch_segments: 32 * threads,
        }
    }
}

/// Decrypts a whole Crypt4GH file with any of `keys`; returns the plaintext bytes written
/// (after the edit list).
pub fn decrypt<R: Read + Send, W: Write + Send>(
    mut input: R,
    output: W,
    keys: &[SecretKey],
    options: DecryptOptions,
) -> Result<u64> {
    let header = read_header(&mut input, keys)?;
    decrypt_body(input, output, &header, options)
}

/// Decrypts the body that follows `header` in `input`.
pub fn decrypt_body<R: Read + Send, W: Write + Send>(
    mut input: R,
    mut output: W,
    header: &Header,
    options: DecryptOptions,
) -> Result<u64> {
    let threads = options.threads.max(1);
    let batch = options.batch_segments.max(1);
    let ciphers: Vec<Cipher> = header
        .data_keys()
        .iter()
        .map(|k| Cipher::new(k))
        .collect::<Result<_>>()?;
    let mut edits = EditCursor::new(header.edit_list());
    // Three stages overlap: a reader thread fills batches, this thread decrypts one (on
    // `threads` threads), a writer thread writes the one before through the edit list. Buffers
    // go round reader -> here -> writer -> reader over channels of depth 1, and there are four
    // of them, so memory is four batches whatever the file size.
    let (full_tx, full_rx) = mpsc::sync_channel::<std::io::Result<(Vec<u8>, usize)>>(1);
    let (plain_tx, plain_rx) = mpsc::sync_channel::<(Vec<u8>, Vec<(usize, usize)>)>(1);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = empty_tx.send(vec![0u8; batch * CIPHER_SEGMENT_SIZE]);
    }
    // Set by the writer once the edit list wants nothing more: reading stops early.
    let done = AtomicBool::new(false);
    thread::scope(|s| -> Result<u64> {
        s.spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                let r = read_up_to(&mut input, &mut buf);
                let end = matches!(r, Ok(n) if n < buf.len()) || r.is_err();
                if full_tx.send(r.map(|n| (buf, n))).is_err() || end {
                    break;
                }
            }
        });
        let done = &done;
        let writer = s.spawn(move || -> Result<u64> {
            let mut written = 0u64;
            while let Ok((buf, ranges)) = plain_rx.recv() {
                if edits.keeps_all() {
                    // One writev per batch: no copy into a buffer, one system call.
                    let mut slices: Vec<IoSlice<'_>> = ranges
                        .iter()
                        .map(|&(start, len)| IoSlice::new(&buf[start..start + len]))
                        .collect();
                    written += write_all_vectored(&mut output, &mut slices)?;
                } else {
                    for (start, len) in ranges {
                        written += edits.emit(&buf[start..start + len], &mut output)?;
                    }
                }
                if edits.done() {
                    done.store(true, Ordering::Relaxed);
                    break;
                }
                // The reader may have stopped (it sent the last batch): nothing to refill.
                let _ = empty_tx.send(buf);
            }
            output.flush()?;
            Ok(written)
        });
        let mut segment = 0u64;
        let decrypted = (|| -> Result<()> {
            while let Ok(next) = full_rx.recv() {
                let (mut buf, n) = next?;
                let ranges = decrypt_batch(&ciphers, &mut buf[..n], segment, threads)?;
                segment += n.div_ceil(CIPHER_SEGMENT_SIZE) as u64;
                let last = n < buf.len();
                if plain_tx.send((buf, ranges)).is_err() || last || done.load(Ordering::Relaxed) {
                    break;
                }
            }
            Ok(())
        })();
        // Closing the channels ends the writer (after what it was sent) and the reader.
        drop(plain_tx);
        drop(full_rx);
        let written = writer.join().unwrap_or_else(|_| {
            Err(Error::Io(std::io::Error::other(
                "the writer thread panicked",
            )))
        });
        // A decryption error is the file's fault and says which segment: it comes first.
        decrypted?;
        written
    })
}

/// Writes every slice; the bytes written.
fn write_all_vectored<W: Write>(out: &mut W, mut slices: &mut [IoSlice<'_>]) -> Result<u64> {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(Error::Io(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(total as u64)
}

/// Batches in flight: one being read, one decrypted, one written, one waiting.
const BUFFERS: usize = 4;

/// Decrypts the segments of `buf` in place, `threads` ways; the plaintext ranges in order.
fn decrypt_batch(
    ciphers: &[Cipher],
    buf: &mut [u8],
    first_segment: u64,
    threads: usize,
) -> Result<Vec<(usize, usize)>> {
    let count = buf.len().div_ceil(CIPHER_SEGMENT_SIZE);
    if count == 0 {
        return Ok(Vec::new());
    }
    let per = count.div_ceil(threads);
    let mut ranges = Vec::with_capacity(count);
    for i in 0..count {
        let start = i * CIPHER_SEGMENT_SIZE;
        let len = (buf.len() - start).min(CIPHER_SEGMENT_SIZE);
        ranges.push((start + 12, len.saturating_sub(CIPHER_DIFF)));
    }
    let results: Vec<Result<()>> = thread::scope(|s| {
        let handles: Vec<_> = buf
            .chunks_mut(per * CIPHER_SEGMENT_SIZE)
            .enumerate()
            .map(|(chunk, part)| {
                let first = first_segment + (chunk * per) as u64;
                s.spawn(move || decrypt_segments(ciphers, part, first))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::MalformedHeader(
                        "a decryption thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    for r in results {
        r?;
    }
    Ok(ranges)
}

fn decrypt_segments(ciphers: &[Cipher], part: &mut [u8], first: u64) -> Result<()> {
    for (i, seg) in part.chunks_mut(CIPHER_SEGMENT_SIZE).enumerate() {
        let index = first + i as u64;
        let corrupted = Error::Corrupted {
            segment: index,
            offset: index * SEGMENT_SIZE as u64,
        };
        // A segment carries at least one byte: a shorter tail is a cut file.
        if seg.len() <= CIPHER_DIFF {
            return Err(corrupted);
        }
        let (nonce, sealed) = seg.split_at_mut(12);
        // A header may carry several data keys; Python tries each on each segment, so do we
        // (a failed try leaves the buffer unspecified: each try starts from a copy).
        let ok = match ciphers {
            [one] => one.open_in_place(nonce, sealed).is_some(),
            many => {
                let copy = sealed.to_vec();
                many.iter().any(|c| {
                    sealed.copy_from_slice(&copy);
                    c.open_in_place(nonce, sealed).is_some()
                })
            }
        };
        if !ok {
            return Err(corrupted);
        }
    }
    Ok(())
}

/// Applies an edit list (skip, keep, skip, keep, ...) to the plaintext stream. An odd count
/// ends on a skip, after which the rest is kept; an even count ends on a keep, after which
/// the rest is dropped. Without an edit list everything is kept.
struct EditCursor {
    lengths: Vec<u64>,
    index: usize,
    remaining: u64,
    keeping: bool,
    done: bool,
}

impl EditCursor {
    fn new(edits: Option<&[u64]>) -> Self {
        match edits {
            None | Some([]) => EditCursor {
                lengths: Vec::new(),
                index: 0,
                remaining: u64::MAX,
                keeping: true,
                done: false,
            },
            Some(l) => EditCursor {
                lengths: l.to_vec(),
                index: 0,
                remaining: l[0],
                keeping: false,
                done: false,
            },
        }
    }

    fn done(&self) -> bool {
        self.done
    }

    /// Whether everything from here on is kept (no edit list, or its last skip is behind).
    fn keeps_all(&self) -> bool {
        self.keeping && self.remaining == u64::MAX
    }

    fn advance(&mut self) {
        self.index += 1;
        if let Some(&l) = self.lengths.get(self.index) {
            self.remaining = l;
            self.keeping = self.index % 2 == 1;
        } else if !self.keeping {
            self.remaining = u64::MAX;
            self.keeping = true;
        } else {
            self.done = true;
        }
    }

    fn emit<W: Write>(&mut self, mut data: &[u8], out: &mut W) -> Result<u64> {
        let mut written = 0u64;
        while !data.is_empty() && !self.done {
            if self.remaining == 0 {
                self.advance();
                continue;
            }
            let n = usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
            if self.keeping {
                out.write_all(&data[..n])?;
                written += n as u64;
            }
            data = &data[n..];
            if self.remaining != u64::MAX {
                self.remaining -= n as u64;
            }
        }
        // A finished keep at the end of the list ends the output even before more data comes.
        while self.remaining == 0 && !self.done {
            self.advance();
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(edits: Option<&[u64]>, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut c = EditCursor::new(edits);
        let mut out = Vec::new();
        for part in data.chunks(chunk) {
            c.emit(part, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn edit_lists_skip_and_keep_across_chunk_boundaries() {
        let data: Vec<u8> = (0..100).collect();
        for chunk in [1, 3, 7, 100] {
            assert_eq!(apply(None, &data, chunk), data);
            assert_eq!(apply(Some(&[10]), &data, chunk), data[10..]);
            assert_eq!(apply(Some(&[10, 5]), &data, chunk), data[10..15]);
            let mut want = data[10..15].to_vec();
            want.extend_from_slice(&data[20..]);
            assert_eq!(apply(Some(&[10, 5, 5]), &data, chunk), want);
            let mut want = data[0..5].to_vec();
            want.extend_from_slice(&data[95..]);
            assert_eq!(apply(Some(&[0, 5, 90, 50]), &data, chunk), want);
        }
    }
}
