//! The verified-token cache and the introspection cache, against the real OpenID Connect
//! provider (tests/peers/oidc.sh): a token is verified in full once, then answered from the
//! cache until its `exp` (or its visas' `exp`), never after; a key set refetch clears the cache;
//! the cache is bounded, least recently used out first; an opaque token is introspected once
//! per cache period however many requests carry it, and a failing introspection is a 503 for
//! opaque tokens only.

use std::time::Duration;

use serde_json::{Value, json};
use spe_auth::{AuthError, Principal, Verifier};
use spe_core::config::OidcConfig;
use spe_test_support::oidc::{AUDIENCE, DATASET_GRANT, Peer, now, peer};

fn claims(peer: &Peer, sub: &str, exp: i64) -> Value {
    json!({"iss": peer.issuer, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": exp})
}

/// Waits until the clock has passed `exp` (whole seconds, as JWTs count).
async fn wait_past(exp: i64) {
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn expect_invalid(result: Result<Principal, AuthError>, what: &str) -> String {
    match result {
        Err(AuthError::Invalid(msg)) => msg,
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_is_verified_in_full_once_then_answered_from_the_cache() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&peer.oidc_config()).unwrap();
    let token = peer.token("researcher").await;
    let first = verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.full_verifications(), 1);
    for _ in 0..20 {
        let again = verifier.verify(&token).await.unwrap();
        assert_eq!(again.subject, first.subject);
        assert_eq!(again.roles, first.roles);
        assert_eq!(
            again.grants(DATASET_GRANT).count(),
            1,
            "visas are cached too"
        );
    }
    assert_eq!(
        verifier.full_verifications(),
        1,
        "the same token is not verified again"
    );
    // Another token is verified on its own, even for the same person.
    verifier
        .verify(&peer.token("researcher").await)
        .await
        .unwrap();
    assert_eq!(verifier.full_verifications(), 2);
    assert_eq!(verifier.cached_tokens(), 2);
    // A refused token is never cached: it is checked (and refused) every time.
    // The signature's first character changed: the first bits of the signature differ.
    let sig = token.rfind('.').unwrap() + 1;
    let flipped = if &token[sig..=sig] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..sig], &token[sig + 1..]);
    for n in 0..3 {
        expect_invalid(verifier.verify(&forged).await, "forged");
        assert_eq!(verifier.full_verifications(), 3 + n);
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_even_when_cached() {
    let Some(peer) = peer().await else { return };
    let mut config: OidcConfig = peer.oidc_config();
    config.leeway_seconds = 0;
    let verifier = Verifier::new(&config).unwrap();
    let sub = peer.sub("researcher").await;
    let exp = now() + 2;
    let token = peer
        .sign("provider", claims(&peer, &sub, exp), json!({}))
        .await;
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.full_verifications(), 1);
    wait_past(exp).await;
    let msg = expect_invalid(verifier.verify(&token).await, "expired token");
    assert_eq!(msg, "token has expired");
    assert_eq!(verifier.cached_tokens(), 0);
}

#[tokio::test]
async fn a_cached_token_loses_its_grant_when_its_visa_expires() {
    let Some(peer) = peer().await else { return };
    let mut config: OidcConfig = peer.oidc_config();
    config.leeway_seconds = 0;
    let verifier = Verifier::new(&config).unwrap();
    let sub = peer.sub("researcher").await;
    let (visa_iss, _) = peer.trusted_visa_issuer();
    let visa_exp = now() + 2;
    let visa = peer
        .sign(
            "visa-trusted",
            json!({"iss": visa_iss, "sub": sub, "iat": now() - 10, "exp": visa_exp,
                   "ga4gh_visa_v1": {"type": "ControlledAccessGrants", "asserted": now() - 60,
                   "value": DATASET_GRANT, "source": "https://ega.example.org/dacs/EGAC1",
                   "by": "dac"}}),
            json!({}),
        )
        .await;
    let mut token_claims = claims(&peer, &sub, now() + 300);
    token_claims["ga4gh_passport_v1"] = json!([visa]);
    let token = peer.sign("provider", token_claims, json!({})).await;
    let p = verifier.verify(&token).await.unwrap();
    assert_eq!(p.grants(DATASET_GRANT).count(), 1);
    assert_eq!(
        verifier
            .verify(&token)
            .await
            .unwrap()
            .grants(DATASET_GRANT)
            .count(),
        1
    );
    assert_eq!(verifier.full_verifications(), 1);
    wait_past(visa_exp).await;
    let p = verifier.verify(&token).await.unwrap();
    assert_eq!(p.grants(DATASET_GRANT).count(), 0, "the visa has expired");
    assert_eq!(verifier.full_verifications(), 2);
}

#[tokio::test]
async fn a_key_set_refetch_clears_the_cache() {
    let Some(peer) = peer().await else { return };
    let mut config = peer.oidc_config();
    // Every unknown kid refetches the issuer's keys (as after a rotation).
    config.jwks_min_refresh_seconds = 0;
    let verifier = Verifier::new(&config).unwrap();
    let token = peer.token("researcher").await;
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.full_verifications(), 1);

    let sub = peer.sub("researcher").await;
    let unknown_kid = peer
        .sign("unknown", claims(&peer, &sub, now() + 300), json!({}))
        .await;
    expect_invalid(verifier.verify(&unknown_kid).await, "unknown kid");
    assert_eq!(verifier.full_verifications(), 2);
    assert_eq!(verifier.cached_tokens(), 0, "the refetch emptied the cache");

    // The cached token is verified again against the new set, then cached again.
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.full_verifications(), 3);
    verifier.verify(&token).await.unwrap();
    assert_eq!(verifier.full_verifications(), 3);
}

#[tokio::test]
async fn the_cache_is_bounded_least_recently_used_out_first() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&peer.oidc_config())
        .unwrap()
        .with_token_cache_capacity(3);
    let mut tokens = Vec::new();
    for user in ["researcher", "controller", "collaborator", "operator"] {
        tokens.push(peer.token(user).await);
    }
    let [a, b, c, d] = &tokens[..] else {
        unreachable!()
    };
    for t in [a, b, c] {
        verifier.verify(t).await.unwrap();
    }
    // `a` is used again, so `b` is now the least recently used; `d` takes its place.
    verifier.verify(a).await.unwrap();
    verifier.verify(d).await.unwrap();
    assert_eq!(verifier.full_verifications(), 4);
    assert_eq!(verifier.cached_tokens(), 3);
    for t in [a, c, d] {
        verifier.verify(t).await.unwrap();
    }
    assert_eq!(verifier.full_verifications(), 4, "a, c and d stayed");
    verifier.verify(b).await.unwrap();
    assert_eq!(verifier.full_verifications(), 5, "b was evicted");
    assert_eq!(verifier.cached_tokens(), 3);
}

/// The peer's config with introspection on (userinfo off), answers cached `cache_seconds`.
fn introspecting(peer: &Peer, secret: &str, cache_seconds: u64) -> OidcConfig {
    let mut yaml = peer.oidc_yaml();
    yaml.push_str(&format!(
        "introspection: {{ client_id: spe-introspect, client_secret: {secret}, \
         cache_seconds: {cache_seconds} }}\n"
    ));
    serde_yaml::from_str(&yaml).expect("oidc config")
}

#[tokio::test]
async fn an_opaque_token_is_introspected_once_per_cache_period() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&introspecting(&peer, "spe-introspect-secret", 2)).unwrap();
    let token = peer.opaque_token("spe-api", "researcher").await;
    // Many requests at once with the same token: one introspection call.
    let answers = futures_util::future::join_all((0..16).map(|_| verifier.verify(&token))).await;
    for answer in answers {
        assert_eq!(answer.unwrap().subject.sub(), peer.sub("researcher").await);
    }
    assert_eq!(peer.calls(&token).await, (0, 1));
    // A string the provider never issued: asked once, the inactive answer is cached too.
    let random = spe_auth::random_secret();
    for _ in 0..5 {
        expect_invalid(verifier.verify(&random).await, "random string");
    }
    assert_eq!(peer.calls(&random).await, (0, 1));
    // After the cache period the provider is asked again (a revocation shows within it).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    verifier.verify(&token).await.unwrap();
    expect_invalid(verifier.verify(&random).await, "random string");
    assert_eq!(peer.calls(&token).await, (0, 2));
    assert_eq!(peer.calls(&random).await, (0, 2));
}

#[tokio::test]
async fn a_failing_introspection_is_503_for_opaque_tokens_only() {
    let Some(peer) = peer().await else { return };
    // The provider refuses the service's introspection credentials.
    let verifier = Verifier::new(&introspecting(&peer, "not-the-secret", 60)).unwrap();
    let opaque = peer.opaque_token("spe-api", "researcher").await;
    let jwt = peer.token("researcher").await;
    let (opaque_answer, jwt_answer) = tokio::join!(verifier.verify(&opaque), verifier.verify(&jwt));
    match opaque_answer {
        Err(AuthError::Unavailable(msg)) => assert!(!msg.contains(&opaque), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        jwt_answer.unwrap().subject.sub(),
        peer.sub("researcher").await
    );
    // A failure is not cached as an answer: the next request asks again.
    assert!(matches!(
        verifier.verify(&opaque).await,
        Err(AuthError::Unavailable(_))
    ));
    assert_eq!(peer.calls(&opaque).await, (0, 2));
}
