//! The JWKS is fetched again for an unknown `kid` at most once per `jwks_min_refresh_seconds`,
//! against the real provider (tests/peers/oidc.sh). Its own test binary, so that the fetches it
//! counts (from the verifier's log) are its own.

#[path = "support/peer.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use spe_auth::{AuthError, Verifier};
use support::{AUDIENCE, now, peer};

const FETCHED: &str = "fetched signing keys";

fn fetches(logs: &Arc<Mutex<Vec<u8>>>) -> usize {
    let text = logs
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.matches(FETCHED).count()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("spe_auth=info")
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()))
        .try_init();
    let Some(peer) = peer().await else { return };
    let sub = peer.sub("researcher").await;
    let forged = || async {
        let claims = json!({"iss": peer.issuer, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 300});
        peer.sign("unknown", claims, json!({})).await
    };

    // A long interval: the first real token fetches the keys; twenty made-up kids fetch nothing.
    let mut config = peer.oidc_config();
    config.jwks_min_refresh_seconds = 3600;
    let patient = Verifier::new(&config).unwrap();
    patient
        .verify(&peer.token("researcher").await)
        .await
        .unwrap();
    // The issuer's keys (and the trusted visa issuers', for the token's passport).
    let after_start = fetches(&logs);
    assert!(
        after_start >= 1,
        "the keys were fetched to verify the first token"
    );
    for _ in 0..20 {
        assert!(matches!(
            patient.verify(&forged().await).await,
            Err(AuthError::Invalid(_))
        ));
    }
    assert_eq!(
        fetches(&logs),
        after_start,
        "unknown kids must not hammer the issuer"
    );

    // No interval: every unknown kid is worth one fetch (a key rotation is picked up at once).
    config.jwks_min_refresh_seconds = 0;
    let eager = Verifier::new(&config).unwrap();
    eager.verify(&peer.token("researcher").await).await.unwrap();
    let before = fetches(&logs);
    for _ in 0..3 {
        assert!(matches!(
            eager.verify(&forged().await).await,
            Err(AuthError::Invalid(_))
        ));
    }
    assert_eq!(fetches(&logs), before + 3);
}
