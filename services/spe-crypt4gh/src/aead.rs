//! ChaCha20-Poly1305 (IETF, 12-byte nonce, no associated data), the one cipher of Crypt4GH:
//! header packets, sealed secret keys and body segments. `ring`'s assembly implementation
//! (BoringSSL's, AVX2 where the CPU has it) decrypts several times faster than a portable one,
//! which is what the body's throughput rests on.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub(crate) const TAG_LEN: usize = 16;

pub(crate) struct Cipher(LessSafeKey);

impl Cipher {
    pub(crate) fn new(key: &[u8; 32]) -> Result<Cipher> {
        UnboundKey::new(&CHACHA20_POLY1305, key)
            .map(|k| Cipher(LessSafeKey::new(k)))
            .map_err(|_| Error::InvalidKey("a ChaCha20-Poly1305 key is 32 bytes".into()))
    }

    /// `plain` encrypted, its tag appended.
    pub(crate) fn seal(&self, nonce: [u8; 12], plain: &[u8]) -> Result<Vec<u8>> {
        let mut out = plain.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut out)
            .map_err(|_| Error::InvalidKey("encryption failed".into()))?;
        Ok(out)
    }

    /// Encrypts `buf` in place; the tag.
    pub(crate) fn seal_in_place(&self, nonce: [u8; 12], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buf)
            .map_err(|_| Error::InvalidKey("encryption failed".into()))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// `sealed` (ciphertext and tag) opened, or `None` if it does not authenticate.
    pub(crate) fn open(&self, nonce: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self.open_in_place(nonce, &mut buf)?;
        buf.truncate(len);
        Some(buf)
    }

    /// Decrypts ciphertext-and-tag in place; the plaintext's length, or `None` if it does not
    /// authenticate (the buffer's content is then unspecified).
    pub(crate) fn open_in_place(&self, nonce: &[u8], in_out: &mut [u8]) -> Option<usize> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        self.0
            .open_in_place(nonce, Aad::empty(), in_out)
            .ok()
            .map(|plain| plain.len())
    }
}
