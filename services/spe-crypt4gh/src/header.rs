//! The Crypt4GH header: magic, version, and packets each encrypted to one recipient with
//! X25519 + ChaCha20-Poly1305. Opening it tries every packet with every configured secret key
//! (key rotation: a file encrypted to any of them opens); re-wrapping encrypts the opened
//! packets to other recipients and leaves the body as it is.

use std::io::{self, Read, Write};

use blake2::{Blake2b512, Digest};
use zeroize::Zeroizing;

use crate::aead::Cipher;
use crate::error::{Error, Result};
use crate::keys::{PublicKey, SecretKey};

const MAGIC: &[u8; 8] = b"crypt4gh";
const VERSION: u32 = 1;
const METHOD_X25519_CHACHA20_IETF_POLY1305: u32 = 0;
const PACKET_DATA_ENC: u32 = 0;
const PACKET_EDIT_LIST: u32 = 1;
const BULK_CHACHA20_IETF_POLY1305: u32 = 0;
/// Bounds on what a header may claim, so a hostile or corrupted file cannot make us allocate
/// without limit: packets per header and bytes per packet (an edit list of 500,000 entries fits).
const MAX_PACKETS: u32 = 1024;
const MAX_PACKET_LEN: u32 = 4 * 1024 * 1024;

/// A header's encrypted packets, as read.
#[derive(Clone, Debug)]
pub struct RawHeader {
    packets: Vec<Vec<u8>>,
}

/// An opened header: the body's data keys, its edit list, and the opened packets (kept to
/// re-wrap them).
pub struct Header {
    data_keys: Vec<Zeroizing<[u8; 32]>>,
    edit_list: Option<Vec<u64>>,
    opened: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("data_keys", &self.data_keys.len())
            .field("edit_list", &self.edit_list)
            .finish()
    }
}

impl Header {
    pub(crate) fn data_keys(&self) -> &[Zeroizing<[u8; 32]>] {
        &self.data_keys
    }

    /// The edit list (alternating skip and keep lengths of plaintext), if the header has one.
    pub fn edit_list(&self) -> Option<&[u64]> {
        self.edit_list.as_deref()
    }

    /// A new header with the same packets encrypted to each of `recipients` (by a fresh writer
    /// key), for the same body.
    pub fn rewrap(&self, recipients: &[PublicKey]) -> Result<Vec<u8>> {
        let plain: Vec<&[u8]> = self.opened.iter().map(|p| p.as_slice()).collect();
        seal_header(&plain, recipients)
    }
}

/// Reads a header from the start of `input`, leaving `input` at the first byte of the body.
pub fn read_raw_header<R: Read>(input: &mut R) -> Result<RawHeader> {
    let mut magic = [0u8; 8];
    let got = read_up_to(input, &mut magic)?;
    if got < magic.len() || &magic != MAGIC {
        return Err(Error::NotCrypt4gh);
    }
    let version = read_u32(input, "in the header's version")?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let count = read_u32(input, "in the header's packet count")?;
    if count == 0 || count > MAX_PACKETS {
        return Err(Error::MalformedHeader(format!(
            "{count} header packets (1 to {MAX_PACKETS} expected)"
        )));
    }
    let mut packets = Vec::with_capacity(count as usize);
    for i in 0..count {
        let len = read_u32(input, &format!("in header packet {i}"))?;
        if !(4..=MAX_PACKET_LEN).contains(&len) {
            return Err(Error::MalformedHeader(format!(
                "header packet {i} claims {len} bytes"
            )));
        }
        let mut packet = vec![0u8; (len - 4) as usize];
        if read_up_to(input, &mut packet)? < packet.len() {
            return Err(Error::Truncated(format!("in header packet {i}")));
        }
        packets.push(packet);
    }
    Ok(RawHeader { packets })
}

/// Opens the header at the start of `prefix` (a file's first bytes) with any of `keys`;
/// returns it and its length, where the body starts. A prefix shorter than the header is
/// reported as a truncated file.
pub fn open_prefix(prefix: &[u8], keys: &[SecretKey]) -> Result<(Header, u64)> {
    let mut cursor = io::Cursor::new(prefix);
    let header = read_header(&mut cursor, keys)?;
    Ok((header, cursor.position()))
}

/// Reads and opens a header with any of `keys`, leaving `input` at the body.
pub fn read_header<R: Read>(input: &mut R, keys: &[SecretKey]) -> Result<Header> {
    read_raw_header(input)?.open(keys)
}

impl RawHeader {
    /// Opens the packets any of `keys` opens (others are for other recipients), then checks
    /// what they say: data keys of a supported cipher, at most one edit list.
    pub fn open(&self, keys: &[SecretKey]) -> Result<Header> {
        let opened: Vec<Zeroizing<Vec<u8>>> = self
            .packets
            .iter()
            .filter_map(|p| keys.iter().find_map(|k| open_packet(p, k)))
            .collect();
        if opened.is_empty() {
            return Err(Error::NoMatchingKey);
        }
        let mut data_keys = Vec::new();
        let mut edit_list = None;
        for p in &opened {
            match le_u32(p, 0) {
                Some(PACKET_DATA_ENC) => {
                    if le_u32(p, 4) != Some(BULK_CHACHA20_IETF_POLY1305) || p.len() != 40 {
                        return Err(Error::MalformedHeader(
                            "a data key packet of an unsupported cipher or size".into(),
                        ));
                    }
                    let mut k = Zeroizing::new([0u8; 32]);
                    k.copy_from_slice(&p[8..40]);
                    data_keys.push(k);
                }
                Some(PACKET_EDIT_LIST) => {
                    if edit_list.is_some() {
                        return Err(Error::MalformedHeader("more than one edit list".into()));
                    }
                    let n = le_u32(p, 4).unwrap_or(0) as usize;
                    if p.len() < 8 + 8 * n {
                        return Err(Error::MalformedHeader("a truncated edit list".into()));
                    }
                    edit_list = Some(
                        p[8..8 + 8 * n]
                            .chunks_exact(8)
                            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                            .collect(),
                    );
                }
                other => {
                    return Err(Error::MalformedHeader(format!(
                        "unknown header packet type {other:?}"
                    )));
                }
            }
        }
        if data_keys.is_empty() {
            return Err(Error::MalformedHeader("no data key packet".into()));
        }
        Ok(Header {
            data_keys,
            edit_list,
            opened,
        })
    }
}

/// Copies `input` (a whole Crypt4GH file) to `output` with its header re-wrapped from `keys`
/// to `recipients`; the body is copied byte for byte. Returns the body's length.
pub fn rewrap<R: Read, W: Write>(
    mut input: R,
    mut output: W,
    keys: &[SecretKey],
    recipients: &[PublicKey],
) -> Result<u64> {
    let header = read_header(&mut input, keys)?;
    output.write_all(&header.rewrap(recipients)?)?;
    Ok(io::copy(&mut input, &mut output)?)
}

/// A header with each plaintext packet encrypted to each recipient by one fresh writer key.
pub(crate) fn seal_header(plain: &[&[u8]], recipients: &[PublicKey]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(Error::InvalidKey("no recipient public key".into()));
    }
    let writer = SecretKey::generate()?;
    let mut packets = Vec::new();
    for r in recipients {
        for p in plain {
            packets.push(seal_packet(p, &writer, r)?);
        }
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(packets.len() as u32).to_le_bytes());
    for p in packets {
        out.extend_from_slice(&((p.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(&p);
    }
    Ok(out)
}

pub(crate) fn data_key_packet(key: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut p = Zeroizing::new(Vec::with_capacity(40));
    p.extend_from_slice(&PACKET_DATA_ENC.to_le_bytes());
    p.extend_from_slice(&BULK_CHACHA20_IETF_POLY1305.to_le_bytes());
    p.extend_from_slice(key);
    p
}

pub(crate) fn edit_list_packet(lengths: &[u64]) -> Vec<u8> {
    let mut p = PACKET_EDIT_LIST.to_le_bytes().to_vec();
    p.extend_from_slice(&(lengths.len() as u32).to_le_bytes());
    for l in lengths {
        p.extend_from_slice(&l.to_le_bytes());
    }
    p
}

/// libsodium's `crypto_kx` session key as Crypt4GH uses it: BLAKE2b-512 of the X25519 shared
/// point, the reader's public key and the writer's, first 32 bytes. `None` for a low-order
/// peer key (an all-zero shared point), which libsodium refuses too.
fn session_key(
    own: &SecretKey,
    peer: &[u8; 32],
    reader: &PublicKey,
    writer: &PublicKey,
) -> Option<Zeroizing<[u8; 32]>> {
    let shared = own
        .secret
        .diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
    if !shared.was_contributory() {
        return None;
    }
    let mut h = Blake2b512::new();
    h.update(shared.as_bytes());
    h.update(reader.0);
    h.update(writer.0);
    let digest = h.finalize();
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&digest[..32]);
    Some(k)
}

fn seal_packet(plain: &[u8], writer: &SecretKey, recipient: &PublicKey) -> Result<Vec<u8>> {
    let key = session_key(writer, &recipient.0, recipient, &writer.public).ok_or_else(|| {
        Error::InvalidKey("the recipient's public key is a low-order point".into())
    })?;
    let nonce = crate::random::<12>()?;
    let sealed = Cipher::new(&key)?.seal(nonce, plain)?;
    let mut p = METHOD_X25519_CHACHA20_IETF_POLY1305.to_le_bytes().to_vec();
    p.extend_from_slice(&writer.public.0);
    p.extend_from_slice(&nonce);
    p.extend_from_slice(&sealed);
    Ok(p)
}

fn open_packet(packet: &[u8], key: &SecretKey) -> Option<Zeroizing<Vec<u8>>> {
    if le_u32(packet, 0)? != METHOD_X25519_CHACHA20_IETF_POLY1305 || packet.len() < 4 + 32 + 12 + 16
    {
        return None;
    }
    let writer: [u8; 32] = packet[4..36].try_into().ok()?;
    let shared = session_key(key, &writer, &key.public, &PublicKey(writer))?;
    Cipher::new(&shared)
        .ok()?
        .open(&packet[36..48], &packet[48..])
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_u32<R: Read>(input: &mut R, what: &str) -> Result<u32> {
    let mut b = [0u8; 4];
    if read_up_to(input, &mut b)? < 4 {
        return Err(Error::Truncated(what.to_owned()));
    }
    Ok(u32::from_le_bytes(b))
}

/// Fills `buf` as far as `input` goes; the count read (short only at the end of input).
pub(crate) fn read_up_to<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
