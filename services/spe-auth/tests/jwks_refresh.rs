//! The JWKS is fetched again for an unknown `kid` at most once per `jwks_min_refresh_seconds`,
//! against the real provider (tests/peers/oidc.sh). Its own test binary, so that the fetches it
//! counts (from the verifier's log) are its own.

use serde_json::json;
use spe_auth::{AuthError, Verifier};
use spe_test_support::logs;
use spe_test_support::oidc::{AUDIENCE, now, peer};

const FETCHED: &str = "fetched signing keys";

fn fetches() -> usize {
    logs::captured_text().matches(FETCHED).count()
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    logs::captured_logs();
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
    let after_start = fetches();
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
        fetches(),
        after_start,
        "unknown kids must not hammer the issuer"
    );

    // No interval: every unknown kid is worth one fetch (a key rotation is picked up at once).
    config.jwks_min_refresh_seconds = 0;
    let eager = Verifier::new(&config).unwrap();
    eager.verify(&peer.token("researcher").await).await.unwrap();
    let before = fetches();
    for _ in 0..3 {
        assert!(matches!(
            eager.verify(&forged().await).await,
            Err(AuthError::Invalid(_))
        ));
    }
    assert_eq!(fetches(), before + 3);
}
