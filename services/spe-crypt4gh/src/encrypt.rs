//! Encryption: a fresh data key, a header sealed to each recipient (with an edit list if one
//! is given), and the body in 64 KiB segments, each with its own random nonce.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::aead::Cipher;
use crate::error::Result;
use crate::header::{data_key_packet, edit_list_packet, read_up_to, seal_header};
use crate::keys::PublicKey;
use crate::{CIPHER_SEGMENT_SIZE, SEGMENT_SIZE};

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
