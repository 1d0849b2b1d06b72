//! `jwt-verify-bench <token> <jwks.json> <issuer> <audience> [iterations]`: times a full
//! verification of `token` (signature, iss, aud, exp, nbf) and a verified-token cache hit
//! (SHA-256 of the token, a map lookup, a clone of the cached answer), as spe-auth does them.

use std::collections::HashMap;
use std::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, token, jwks, issuer, audience, rest @ ..] = &args[..] else {
        return Err("usage: jwt-verify-bench <token> <jwks.json> <issuer> <audience> [n]".into());
    };
    let n: u32 = rest.first().map_or(Ok(2000), |s| s.parse())?;
    let set: JwkSet = serde_json::from_str(&std::fs::read_to_string(jwks)?)?;
    let header = jsonwebtoken::decode_header(token)?;
    let jwk = set
        .find(header.kid.as_deref().ok_or("no kid")?)
        .ok_or("kid not in the set")?;
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(header.alg);
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);

    let start = Instant::now();
    let mut claims = Map::new();
    for _ in 0..n {
        claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)?.claims;
    }
    let full = start.elapsed() / n;

    let mut cache: HashMap<[u8; 32], Map<String, Value>> = HashMap::new();
    cache.insert(Sha256::digest(token.as_bytes()).into(), claims);
    let start = Instant::now();
    let mut hits = 0usize;
    for _ in 0..n * 10 {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        hits += cache.get(&key).cloned().map_or(0, |c| c.len());
    }
    let hit = start.elapsed() / (n * 10);
    println!(
        "alg {:?}, token {} bytes: full verification {:.1} us, cache hit {:.2} us ({hits} claims read)",
        header.alg,
        token.len(),
        full.as_secs_f64() * 1e6,
        hit.as_secs_f64() * 1e6
    );
    Ok(())
}
