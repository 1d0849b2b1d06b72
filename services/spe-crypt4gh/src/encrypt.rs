//! Encryption: a fresh data key, a header sealed to each recipient (with an edit list if one
//! is given), and the body in 64 KiB segments, each with its own random nonce.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::aead::Cipher;
use crate::error::Result;
use crate::header::{data_key_packet, edit_list_packet, read_up_to, seal_header};
use crate::keys::PublicKey;
use crate::{CIPHER_SEGMENT_SIZE, SEGMENT_SIZE};

/// Encryption in pieces, for a writer that sends the file in parts (a multipart upload): the
/// header first, then the body a chunk at a time. Every chunk but the last must be a whole
/// number of segments, so the ciphertext is exactly what [`encrypt`] would write.
pub struct Sealer {
    cipher: Cipher,
    header: Vec<u8>,
    finished: bool,
}

impl Sealer {
    /// A fresh data key sealed in a header to each of `recipients`.
    pub fn new(recipients: &[PublicKey]) -> Result<Sealer> {
        let data_key = Zeroizing::new(crate::random::<32>()?);
        let key_packet = data_key_packet(&data_key);
        let header = seal_header(&[key_packet.as_slice()], recipients)?;
        Ok(Sealer {
            cipher: Cipher::new(&data_key)?,
            header,
            finished: false,
        })
    }

    /// The header, written before the first chunk.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The ciphertext of `plain`, the next piece of the plaintext. A chunk that is not a whole
    /// number of segments (or is empty) is the last one; a chunk after it is refused.
    pub fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>> {
        if self.finished {
            return Err(crate::Error::Io(std::io::Error::other(
                "a chunk after the last one (chunks but the last must be whole 64 KiB segments)",
            )));
        }
        if plain.is_empty() || !plain.len().is_multiple_of(SEGMENT_SIZE) {
            self.finished = true;
        }
        let segments = plain.len().div_ceil(SEGMENT_SIZE);
        let mut out = Vec::with_capacity(plain.len() + segments * crate::CIPHER_DIFF);
        for segment in plain.chunks(SEGMENT_SIZE) {
            let nonce = crate::random::<12>()?;
            out.extend_from_slice(&nonce);
            let start = out.len();
            out.extend_from_slice(segment);
            let tag = self.cipher.seal_in_place(nonce, &mut out[start..])?;
            out.extend_from_slice(&tag);
        }
        Ok(out)
    }

    /// The length of the ciphertext of a `plain_len`-byte file, header included.
    pub fn encrypted_len(&self, plain_len: u64) -> u64 {
        let segments = plain_len.div_ceil(SEGMENT_SIZE as u64);
        self.header.len() as u64 + plain_len + segments * crate::CIPHER_DIFF as u64
    }
}

/// Encrypts all of `input` to `recipients` into `output`; returns the plaintext length.
/// `edit_list` (alternating skip and keep lengths) goes into the header as readers apply it.
pub fn encrypt<R: Read, W: Write>(
    mut input: R,
    mut output: W,
    recipients: &[PublicKey],
    edit_list: Option<&[u64]>,
) -> Result<u64> {
    let data_key = Zeroizing::new(crate::random::<32>()?);
    let key_packet = data_key_packet(&data_key);
    let mut packets: Vec<&[u8]> = vec![key_packet.as_slice()];
    let edits = edit_list.map(edit_list_packet);
    if let Some(e) = &edits {
        packets.push(e);
    }
    output.write_all(&seal_header(&packets, recipients)?)?;
    let cipher = Cipher::new(&data_key)?;
    let mut buf = vec![0u8; CIPHER_SEGMENT_SIZE];
    let mut total = 0u64;
    loop {
        let n = read_up_to(&mut input, &mut buf[12..12 + SEGMENT_SIZE])?;
        if n == 0 {
            break;
        }
        let nonce = crate::random::<12>()?;
        buf[..12].copy_from_slice(&nonce);
        let tag = cipher.seal_in_place(nonce, &mut buf[12..12 + n])?;
        buf[12 + n..12 + n + 16].copy_from_slice(&tag);
        output.write_all(&buf[..12 + n + 16])?;
        total += n as u64;
        if n < SEGMENT_SIZE {
            break;
        }
    }
    output.flush()?;
    Ok(total)
}
