//! GA4GH Crypt4GH (version 1) files and keys.
//!
//! What it does: key pairs in the Crypt4GH private key format (scrypt, bcrypt or
//! PBKDF2-protected, as Python `crypt4gh` writes and reads them) and the public key format
//! ([`keys`]); a header opened with any of several secret keys, so a rotated service key still
//! opens older files, and re-wrapped to other recipients without touching the body
//! ([`header`]); encryption ([`encrypt`]); and body decryption that streams with bounded memory,
//! decrypts the format's independent 64 KiB segments on several threads and honours edit lists
//! ([`decrypt`]).
//!
//! Why not the `crypt4gh` crate from crates.io: its only line (0.4.1) builds with rustc 1.95
//! (checked: about 8 minutes cold on one core, most of it a bundled C libsodium), but it links
//! libsodium through `libsodium-sys`/`sodiumoxide` and depends on `rust-crypto` 0.2
//! (unmaintained since 2016, RUSTSEC-2016-0005; RUSTSEC-2022-0011), `clap` 3 and a logger,
//! and its body stream decrypts one segment at a time, so the target (3x Python on a
//! 1 GiB file) needs our own segment loop anyway. The format is small, so this crate implements
//! it whole (GA4GH Crypt4GH specification, version 1): ChaCha20-Poly1305 from `ring` (BoringSSL's
//! assembly, already in the workspace through rustls), and from RustCrypto `x25519-dalek`,
//! `blake2` (libsodium's `crypto_kx` session key), `scrypt`, `bcrypt-pbkdf` and `pbkdf2`. Compatibility with the reference implementation (Python
//! `crypt4gh` 1.8.6) is what `tests/python.rs` checks, both ways.
//!
//! Not detectable by the format: a file cut exactly at a segment boundary (the body has no end
//! marker) decrypts to a shorter plaintext. A cut inside a segment is an authentication error.

mod aead;
pub mod decrypt;
pub mod encrypt;
mod error;
pub mod header;
pub mod keys;
pub mod service_keys;

pub use decrypt::{DecryptOptions, decrypt, decrypt_body};
pub use encrypt::{Sealer, encrypt};
pub use error::{Error, Result};
pub use header::{Header, open_prefix, read_header, rewrap};
pub use keys::{PublicKey, SecretKey};
/// For callers holding a passphrase: zeroed when dropped.
pub use zeroize::Zeroizing;

/// Plaintext bytes per body segment.
pub const SEGMENT_SIZE: usize = 65_536;
/// Nonce (12) and MAC (16) around each segment's ciphertext.
pub const CIPHER_DIFF: usize = 28;
/// Bytes per encrypted body segment (all but the last are exactly this long).
pub const CIPHER_SEGMENT_SIZE: usize = SEGMENT_SIZE + CIPHER_DIFF;

/// Random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| Error::Random(e.to_string()))?;
    Ok(b)
}
