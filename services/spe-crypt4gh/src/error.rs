//! The one error type: each variant says what is wrong with the file or key in words a person
//! running a workflow can act on, and never carries key material or a passphrase.

/// What went wrong reading or writing a Crypt4GH file or key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a Crypt4GH file (it does not start with the `crypt4gh` magic bytes)")]
    NotCrypt4gh,
    #[error("unsupported Crypt4GH version {0} (only version 1 exists)")]
    UnsupportedVersion(u32),
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("the Crypt4GH header is malformed: {0}")]
    MalformedHeader(String),
    #[error(
        "no header packet opens with the given secret key(s): the file was not encrypted to this key"
    )]
    NoMatchingKey,
    #[error(
        "segment {segment} of the body (plaintext offset {offset}) fails authentication: the file is corrupted or truncated"
    )]
    Corrupted { segment: u64, offset: u64 },
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("the passphrase does not open the secret key")]
    WrongPassphrase,
    #[error("the secret key is passphrase-protected and no passphrase was given")]
    PassphraseRequired,
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
