//! Crypt4GH key pairs: X25519 keys in the Crypt4GH private key format (`c4gh-v1`, the secret
//! sealed with ChaCha20-Poly1305 under a key derived from a passphrase) and the public key
//! format, both PEM-like text as Python `crypt4gh-keygen` writes them.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::aead::Cipher;
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"c4gh-v1";
const PRIVATE_BEGIN: &str = "-----BEGIN CRYPT4GH PRIVATE KEY-----";
const PRIVATE_END: &str = "-----END CRYPT4GH PRIVATE KEY-----";
const PUBLIC_BEGIN: &str = "-----BEGIN CRYPT4GH PUBLIC KEY-----";
const PUBLIC_END: &str = "-----END CRYPT4GH PUBLIC KEY-----";
/// scrypt as Python `crypt4gh` derives it: N = 2^14, r = 8, p = 1, 32 bytes, 16-byte salt.
const SCRYPT_LOG_N: u8 = 14;
/// Largest key file read: a key is well under 1 KiB; this stops a wrong path (a data file)
/// from being read whole.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A recipient's (or writer's) X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub(crate) [u8; 32]);

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The Crypt4GH public key file's text.
    pub fn to_pem(&self) -> String {
        format!("{PUBLIC_BEGIN}\n{}\n{PUBLIC_END}\n", B64.encode(self.0))
    }

    /// Parses a Crypt4GH public key file's text (or its bare base64 line, as in a token claim).
    pub fn from_pem(text: &str) -> Result<Self> {
        let body = if text.contains("-----BEGIN") {
            pem_body(text, PUBLIC_BEGIN, PUBLIC_END)?
        } else {
            text.trim().to_owned()
        };
        let raw = B64
            .decode(body.as_bytes())
            .map_err(|_| Error::InvalidKey("the public key is not base64".into()))?;
        let bytes: [u8; 32] = raw.try_into().map_err(|v: Vec<u8>| {
            Error::InvalidKey(format!(
                "a Crypt4GH public key is 32 bytes, this one {}",
                v.len()
            ))
        })?;
        Ok(PublicKey(bytes))
    }

    pub fn load(path: &Path) -> Result<Self> {
        PublicKey::from_pem(&read_key_file(path)?)
    }

    /// SHA-256 of the key's 32 bytes, hex: how records and messages name a key.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", B64.encode(self.0))
    }
}

/// An X25519 secret key (zeroed when dropped; its Debug shows only the public half).
#[derive(Clone)]
pub struct SecretKey {
    pub(crate) secret: StaticSecret,
    pub(crate) public: PublicKey,
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<Self> {
        let bytes = Zeroizing::new(crate::random::<32>()?);
        Ok(SecretKey::from_bytes(*bytes))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        SecretKey { secret, public }
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The Crypt4GH private key file's text, the secret sealed under `passphrase` (scrypt, as
    /// Python `crypt4gh` does by default). An empty passphrase is refused: this crate writes no
    /// unprotected secret key.
    pub fn to_pem(&self, passphrase: &[u8], comment: Option<&str>) -> Result<String> {
        if passphrase.is_empty() {
            return Err(Error::PassphraseRequired);
        }
        let salt = crate::random::<16>()?;
        let derived = derive("scrypt", passphrase, &salt, 0)?;
        let nonce = crate::random::<12>()?;
        let sealed = Cipher::new(&derived)?.seal(nonce, self.secret.as_bytes())?;
        let mut out = MAGIC.to_vec();
        put_string(&mut out, b"scrypt");
        let mut options = 0u32.to_be_bytes().to_vec();
        options.extend_from_slice(&salt);
        put_string(&mut out, &options);
        put_string(&mut out, b"chacha20_poly1305");
        let mut data = nonce.to_vec();
        data.extend_from_slice(&sealed);
        put_string(&mut out, &data);
        if let Some(c) = comment {
            put_string(&mut out, c.as_bytes());
        }
        Ok(format!(
            "{PRIVATE_BEGIN}\n{}\n{PRIVATE_END}\n",
            B64.encode(&out)
        ))
    }

    /// Parses a Crypt4GH private key file's text. `passphrase` opens a protected key; an
    /// unprotected one (kdf `none`) ignores it.
    pub fn from_pem(text: &str, passphrase: &[u8]) -> Result<Self> {
        let body = pem_body(text, "-----BEGIN ", "-----END ")?;
        let raw = Zeroizing::new(
            B64.decode(body.as_bytes())
                .map_err(|_| Error::InvalidKey("the secret key is not base64".into()))?,
        );
        let mut r = Reader(raw.as_slice());
        if r.take(MAGIC.len())? != MAGIC {
            return Err(Error::InvalidKey(
                "not a Crypt4GH private key (an OpenSSH key is not supported)".into(),
            ));
        }
        let kdf = String::from_utf8_lossy(r.string()?).into_owned();
        let (rounds, salt) = if kdf == "none" {
            (0, Vec::new())
        } else {
            let options = r.string()?;
            if options.len() < 4 {
                return Err(Error::InvalidKey("the KDF options are too short".into()));
            }
            let rounds = u32::from_be_bytes([options[0], options[1], options[2], options[3]]);
            (rounds, options[4..].to_vec())
        };
        let cipher = r.string()?;
        let data = r.string()?;
        let secret: [u8; 32] = match cipher {
            b"none" => data
                .try_into()
                .map_err(|_| Error::InvalidKey("the clear secret key is not 32 bytes".into()))?,
            b"chacha20_poly1305" => {
                if passphrase.is_empty() {
                    return Err(Error::PassphraseRequired);
                }
                if data.len() < 12 + 16 {
                    return Err(Error::InvalidKey(
                        "the sealed secret key is too short".into(),
                    ));
                }
                let derived = derive(&kdf, passphrase, &salt, rounds)?;
                let opened = Cipher::new(&derived)?
                    .open(&data[..12], &data[12..])
                    .ok_or(Error::WrongPassphrase)?;
                opened.as_slice().try_into().map_err(|_| {
                    Error::InvalidKey("the sealed secret key is not 32 bytes".into())
                })?
            }
            other => {
                return Err(Error::InvalidKey(format!(
                    "unsupported cipher {:?}",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        Ok(SecretKey::from_bytes(secret))
    }

    pub fn load(path: &Path, passphrase: &[u8]) -> Result<Self> {
        let text = Zeroizing::new(read_key_file(path)?);
        SecretKey::from_pem(&text, passphrase)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", B64.encode(self.public.0))
    }
}

/// The 32-byte key a passphrase derives, by the KDFs Python `crypt4gh` knows.
fn derive(kdf: &str, passphrase: &[u8], salt: &[u8], rounds: u32) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    match kdf {
        "scrypt" => {
            let params = scrypt::Params::new(SCRYPT_LOG_N, 8, 1, 32)
                .map_err(|e| Error::InvalidKey(format!("scrypt parameters: {e}")))?;
            scrypt::scrypt(passphrase, salt, &params, out.as_mut_slice())
                .map_err(|e| Error::InvalidKey(format!("scrypt: {e}")))?;
        }
        "bcrypt" => bcrypt_pbkdf::bcrypt_pbkdf(passphrase, salt, rounds, out.as_mut_slice())
            .map_err(|e| Error::InvalidKey(format!("bcrypt: {e}")))?,
        "pbkdf2_hmac_sha256" => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase, salt, rounds, out.as_mut_slice())
        }
        other => return Err(Error::InvalidKey(format!("unsupported KDF {other:?}"))),
    }
    Ok(out)
}

fn read_key_file(path: &Path) -> Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .map_err(|e| Error::InvalidKey(format!("cannot open key file {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .map_err(|e| Error::InvalidKey(format!("cannot read key file {}: {e}", path.display())))?;
    Ok(text)
}

/// The base64 between a `begin` line and an `end` line (blank lines and spaces ignored).
fn pem_body(text: &str, begin: &str, end: &str) -> Result<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match (lines.first(), lines.last()) {
        (Some(first), Some(last))
            if lines.len() >= 3 && first.starts_with(begin) && last.starts_with(end) =>
        {
            Ok(lines[1..lines.len() - 1].concat())
        }
        _ => Err(Error::InvalidKey(format!(
            "not a Crypt4GH key file (expected a {:?} line, the base64 key and an end line)",
            begin.trim_matches('-').trim()
        ))),
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    // Key fields are short (names, 20-byte options, 60-byte sealed key, a comment).
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s[..usize::from(len)]);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::InvalidKey("the secret key is truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<&'a [u8]> {
        let len = self.take(2)?;
        let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_key_round_trips_through_its_passphrase_and_a_wrong_one_is_named() {
        let key = SecretKey::generate().unwrap();
        let pem = key.to_pem(b"correct horse", Some("test")).unwrap();
        assert!(pem.starts_with(PRIVATE_BEGIN));
        let back = SecretKey::from_pem(&pem, b"correct horse").unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(matches!(
            SecretKey::from_pem(&pem, b"wrong"),
            Err(Error::WrongPassphrase)
        ));
        assert!(matches!(
            SecretKey::from_pem(&pem, b""),
            Err(Error::PassphraseRequired)
        ));
        assert!(matches!(
            key.to_pem(b"", None),
            Err(Error::PassphraseRequired)
        ));
    }

    #[test]
    fn a_public_key_round_trips_and_debug_never_shows_the_secret() {
        let key = SecretKey::generate().unwrap();
        let pk = key.public_key();
        assert_eq!(PublicKey::from_pem(&pk.to_pem()).unwrap(), pk);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&B64.encode(key.secret.as_bytes())));
        assert_eq!(
            PublicKey::from_pem(
                "-----BEGIN CRYPT4GH PUBLIC KEY-----\nAAAA\n-----END CRYPT4GH PUBLIC KEY-----\n"
            )
            .unwrap_err()
            .to_string(),
            "invalid key: a Crypt4GH public key is 32 bytes, this one 3"
        );
    }
}
