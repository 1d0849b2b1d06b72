//! The format's behaviour through the public API: round trips, recipients, key rotation,
//! re-wrapping, edit lists, and the errors a person sees for a wrong key or a damaged file.

use spe_crypt4gh::{DecryptOptions, Error, SecretKey, decrypt, encrypt, rewrap};

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Equal bytes, or a failure naming the lengths and the first difference (not both buffers).
#[track_caller]
fn same(got: &[u8], want: &[u8]) {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got == want,
        "got {} bytes, want {}, first difference at {first:?}",
        got.len(),
        want.len()
    );
}

fn seal(plain: &[u8], to: &[&SecretKey], edits: Option<&[u64]>) -> Vec<u8> {
    let recipients: Vec<_> = to.iter().map(|k| k.public_key()).collect();
    let mut out = Vec::new();
    encrypt(plain, &mut out, &recipients, edits).unwrap();
    out
}

fn open(file: &[u8], keys: &[SecretKey], options: DecryptOptions) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    decrypt(file, &mut out, keys, options)?;
    Ok(out)
}

/// Small batches and several threads, so a test file spans many batches and thread splits.
fn small_batches() -> DecryptOptions {
    DecryptOptions {
        threads: 3,
        batch_segments: 4,
    }
}

#[test]
fn files_of_every_shape_round_trip_whatever_the_threads_and_batches() {
    let key = SecretKey::generate().unwrap();
    for len in [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 1_000_003] {
        let plain = data(len);
        let file = seal(&plain, &[&key], None);
        for options in [
            small_batches(),
            DecryptOptions::default(),
            DecryptOptions {
                threads: 1,
                batch_segments: 1,
            },
        ] {
            same(
                &open(&file, std::slice::from_ref(&key), options).unwrap(),
                &plain,
            );
        }
    }
}

#[test]
fn each_recipient_and_any_rotated_key_opens_the_file_and_a_stranger_is_refused() {
    let (project, service, old, stranger) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let plain = data(200_000);
    let file = seal(&plain, &[&project, &service], None);
    same(&open(&file, &[project], small_batches()).unwrap(), &plain);
    // The service's key ring: the current key first, the old one still configured.
    same(
        &open(&file, &[old.clone(), service.clone()], small_batches()).unwrap(),
        &plain,
    );
    let older = seal(&plain, &[&old], None);
    same(
        &open(&older, &[service, old], small_batches()).unwrap(),
        &plain,
    );
    let err = open(&file, &[stranger], small_batches()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no header packet opens with the given secret key(s): the file was not encrypted to this key"
    );
}

#[test]
fn a_rewrapped_header_opens_for_the_new_reader_and_the_body_is_untouched() {
    let (service, reader) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let plain = data(300_000);
    let file = seal(&plain, &[&service], Some(&[5, 100_000, 10]));
    let mut wrapped = Vec::new();
    let body_len = rewrap(
        file.as_slice(),
        &mut wrapped,
        &[service],
        &[reader.public_key()],
    )
    .unwrap();
    same(
        &wrapped[wrapped.len() - body_len as usize..],
        &file[file.len() - body_len as usize..],
    );
    let mut want = plain[5..100_005].to_vec();
    want.extend_from_slice(&plain[100_015..]);
    same(&open(&wrapped, &[reader], small_batches()).unwrap(), &want);
}

#[test]
fn edit_lists_are_honoured_across_segments_and_an_even_list_drops_the_tail() {
    let key = SecretKey::generate().unwrap();
    let plain = data(500_000);
    let file = seal(&plain, &[&key], Some(&[70_000, 1_000, 130_000, 65_536]));
    let mut want = plain[70_000..71_000].to_vec();
    want.extend_from_slice(&plain[201_000..266_536]);
    same(&open(&file, &[key], small_batches()).unwrap(), &want);
}

#[test]
fn a_damaged_file_or_another_format_fails_with_what_is_wrong() {
    let key = SecretKey::generate().unwrap();
    let plain = data(200_000);
    let file = seal(&plain, &[&key], None);

    let cut = &file[..file.len() - 100];
    let err = open(cut, std::slice::from_ref(&key), small_batches()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "segment 3 of the body (plaintext offset 196608) fails authentication: the file is corrupted or truncated"
    );

    let mut flipped = file.clone();
    let at = file.len() - 150_000;
    flipped[at] ^= 1;
    let err = open(&flipped, std::slice::from_ref(&key), small_batches()).unwrap_err();
    assert!(matches!(err, Error::Corrupted { segment: 0, .. }), "{err}");

    let err = open(&file[..20], std::slice::from_ref(&key), small_batches()).unwrap_err();
    assert_eq!(err.to_string(), "the file is truncated: in header packet 0");

    let err = open(
        b"@read1\nACGT\n+\nIIII\n",
        std::slice::from_ref(&key),
        small_batches(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a Crypt4GH file (it does not start with the `crypt4gh` magic bytes)"
    );
    let err = open(b"", &[key], small_batches()).unwrap_err();
    assert!(matches!(err, Error::NotCrypt4gh));
}

#[test]
fn a_file_sealed_in_chunks_is_one_crypt4gh_file_and_its_header_length_is_known() {
    let reader = SecretKey::generate().unwrap();
    let seg = spe_crypt4gh::SEGMENT_SIZE;
    for len in [0, 1, seg, 3 * seg + 17, 5 * seg] {
        let plain = data(len);
        let mut sealer = spe_crypt4gh::Sealer::new(&[reader.public_key()]).unwrap();
        let mut file = sealer.header().to_vec();
        let header_len = file.len() as u64;
        // Parts of two whole segments, as a multipart upload sends them, then the rest.
        let mut chunks = plain.chunks(2 * seg).peekable();
        if chunks.peek().is_none() {
            file.extend(sealer.seal(&[]).unwrap());
        }
        for chunk in chunks {
            file.extend(sealer.seal(chunk).unwrap());
        }
        assert_eq!(
            sealer.encrypted_len(len as u64),
            file.len() as u64,
            "len {len}"
        );
        same(
            &open(&file, std::slice::from_ref(&reader), small_batches()).unwrap(),
            &plain,
        );
        let (_, body_at) =
            spe_crypt4gh::open_prefix(&file[..file.len().min(4096)], std::slice::from_ref(&reader))
                .unwrap();
        assert_eq!(body_at, header_len);
    }
    let mut sealer = spe_crypt4gh::Sealer::new(&[reader.public_key()]).unwrap();
    sealer.seal(&data(10)).unwrap();
    let err = sealer.seal(&data(10)).unwrap_err().to_string();
    assert!(err.contains("a chunk after the last one"), "{err}");
    let stranger = SecretKey::generate().unwrap();
    let file = seal(&data(100), &[&reader], None);
    assert!(matches!(
        spe_crypt4gh::open_prefix(&file, &[stranger]),
        Err(Error::NoMatchingKey)
    ));
    assert_eq!(reader.public_key().fingerprint().len(), 64);
    assert_ne!(
        reader.public_key().fingerprint(),
        SecretKey::generate().unwrap().public_key().fingerprint()
    );
}
