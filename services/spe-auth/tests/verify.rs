//! spe-auth against a real OpenID Connect provider (tests/peers/oidc.sh): real tokens per role,
//! the forged-token suite, and GA4GH Passport visas.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use spe_auth::{AuthError, Role, Verifier};
use spe_test_support::oidc::{self, AUDIENCE, DATASET_GRANT, Peer, now, peer};

fn claims_for(peer: &Peer, sub: &str) -> Value {
    json!({
        "iss": peer.issuer, "aud": AUDIENCE, "sub": sub,
        "iat": now(), "exp": now() + 300, "jti": "t1",
    })
}

#[tokio::test]
async fn real_tokens_resolve_subject_and_roles_per_user() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&peer.oidc_config()).unwrap();
    verifier.warm_up().await.unwrap();
    for (user, roles) in [
        ("researcher", vec![Role::Researcher]),
        ("controller", vec![Role::DataController]),
        ("collaborator", vec![Role::Collaborator]),
        ("operator", vec![Role::Operator]),
        ("nobody", vec![]),
    ] {
        let token = peer.token(user).await;
        let p = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(p.subject.sub(), peer.sub(user).await, "{user}");
        assert!(p.subject.sub().ends_with("@lifescience-ri.eu"));
        assert_eq!(p.roles, roles, "{user}");
        assert_eq!(p.subject.issuer(), peer.issuer);
        // The address the token carries, where notifications about their runs go.
        assert_eq!(
            p.email.as_deref(),
            Some(format!("{user}@example.org").as_str())
        );
    }
    // The researcher's passport carries one trusted ControlledAccessGrants visa.
    let p = verifier
        .verify(&peer.token("researcher").await)
        .await
        .unwrap();
    assert_eq!(p.grants(DATASET_GRANT).count(), 1, "{:?}", p.visas);
    assert_eq!(
        p.grants("https://ega.example.org/datasets/other").count(),
        0
    );
    let p = verifier
        .verify(&peer.token("researcher2").await)
        .await
        .unwrap();
    assert_eq!(p.grants(DATASET_GRANT).count(), 0);
}

/// Every forged or misdirected token is refused as invalid (401), never accepted and never an
/// internal error.
#[tokio::test]
async fn forged_tokens_are_all_refused() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&peer.oidc_config()).unwrap();
    let sub = peer.sub("researcher").await;
    let good = peer.token("researcher").await;
    verifier.verify(&good).await.unwrap();

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let mut cases: Vec<(&str, String)> = Vec::new();

    // alg none, with and without a trailing signature.
    let payload = claims_for(&peer, &sub);
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&payload)
    );
    cases.push(("alg none", none.clone()));
    cases.push(("alg none with signature", format!("{none}c2ln")));
    // HS256 keyed with the provider's public key (the JWKS as published).
    let jwks = peer.jwks().await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    for secret in [
        jwks.to_string(),
        jwks["keys"][0]["n"].as_str().unwrap().to_owned(),
    ] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        let hs = jsonwebtoken::encode(
            &header,
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        cases.push(("HS256 with the public key", hs));
    }
    let signed = |mut claims: Value, patch: Value| {
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    };
    let provider_signed = [
        (
            "wrong issuer",
            json!({"iss": format!("{}/other", peer.issuer)}),
        ),
        ("wrong audience", json!({"aud": "another-api"})),
        ("expired", json!({"iat": now() - 7200, "exp": now() - 3600})),
        ("not yet valid", json!({"nbf": now() + 3600})),
        ("no exp", json!({"exp": null})),
        ("no sub", json!({"sub": null})),
    ];
    for (name, patch) in provider_signed {
        let claims = signed(claims_for(&peer, &sub), patch);
        cases.push((name, peer.sign("provider", claims, json!({})).await));
    }
    cases.push((
        "unknown kid",
        peer.sign("unknown", claims_for(&peer, &sub), json!({}))
            .await,
    ));
    cases.push((
        "unknown key under the provider's kid",
        peer.sign("unknown", claims_for(&peer, &sub), json!({"kid": kid}))
            .await,
    ));
    // Tampered payload: the researcher makes themself a controller.
    let parts: Vec<&str> = good.split('.').collect();
    let mut body: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    body["eduperson_entitlement"] = json!([format!(
        "urn:geant:lifescience-ri.eu:group:spe-demo:data-controllers:role=manager#{}",
        oidc::AUTHORITY
    )]);
    cases.push((
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&body), parts[2]),
    ));
    cases.push((
        "tampered signature",
        format!("{}.{}.{}x", parts[0], parts[1], parts[2]),
    ));
    cases.push((
        "token from a second provider",
        peer.token_from(&peer.second, "researcher").await,
    ));
    cases.push(("garbage", "not-a-token".into()));
    cases.push(("empty", String::new()));

    for (name, token) in &cases {
        match verifier.verify(token).await {
            Err(AuthError::Invalid(msg)) => {
                eprintln!("{name}: refused: {msg}");
                assert!(
                    !msg.contains(token.as_str()) || token.is_empty(),
                    "{name}: echoes token"
                );
            }
            other => panic!("{name}: expected Invalid, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unknown_kids_are_refused_and_cached_keys_keep_working() {
    let Some(peer) = peer().await else { return };
    let mut config = peer.oidc_config();
    config.jwks_min_refresh_seconds = 3600;
    let verifier = Verifier::new(&config).unwrap();
    // First use discovers (and fetches the JWKS); a valid token works.
    verifier
        .verify(&peer.token("researcher").await)
        .await
        .unwrap();
    let sub = peer.sub("researcher").await;
    for _ in 0..20 {
        let forged = peer
            .sign("unknown", claims_for(&peer, &sub), json!({}))
            .await;
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(AuthError::Invalid(_))
        ));
    }
    // Still verifies real tokens from cache.
    verifier
        .verify(&peer.token("operator").await)
        .await
        .unwrap();
}

async fn passport_token(peer: &Peer, visas: Vec<String>) -> String {
    let sub = peer.sub("researcher").await;
    let mut claims = claims_for(peer, &sub);
    claims["ga4gh_passport_v1"] = json!(visas);
    peer.sign("provider", claims, json!({})).await
}

fn visa_claims(iss: &str, sub: &str, body: Value) -> Value {
    json!({"iss": iss, "sub": sub, "iat": now() - 10, "exp": now() + 3600, "jti": "v", "ga4gh_visa_v1": body})
}

fn grant(value: &str) -> Value {
    json!({"type": "ControlledAccessGrants", "asserted": now() - 86400, "value": value,
           "source": "https://ega.example.org/dacs/EGAC00000000001", "by": "dac"})
}

#[tokio::test]
async fn visas_count_only_from_trusted_issuers_in_time_with_conditions_met() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&peer.oidc_config()).unwrap();
    let sub = peer.sub("researcher").await;
    let (t_iss, _) = peer.trusted_visa_issuer();
    let (u_iss, u_jku) = peer.untrusted_visa_issuer();
    let trusted = |body: Value| visa_claims(&t_iss, &sub, body);

    let grants = |token: String| {
        let verifier = &verifier;
        async move {
            let p = verifier
                .verify(&token)
                .await
                .expect("token itself is valid");
            p.grants(DATASET_GRANT).count()
        }
    };

    // The good case.
    let ok = peer
        .sign("visa-trusted", trusted(grant(DATASET_GRANT)), json!({}))
        .await;
    assert_eq!(grants(passport_token(&peer, vec![ok]).await).await, 1);

    let mut refused: Vec<(&str, String)> = Vec::new();
    // Signed by the untrusted issuer with its own jku.
    refused.push((
        "untrusted jku",
        peer.sign(
            "visa-untrusted",
            visa_claims(&u_iss, &sub, grant(DATASET_GRANT)),
            json!({}),
        )
        .await,
    ));
    // The trusted iss, but pointing at the untrusted issuer's jku (signed with that key).
    refused.push((
        "trusted iss with untrusted jku",
        peer.sign(
            "visa-untrusted",
            trusted(grant(DATASET_GRANT)),
            json!({"jku": u_jku}),
        )
        .await,
    ));
    // Trusted jku, but signed by a key not in it.
    refused.push((
        "trusted jku, other key",
        peer.sign(
            "visa-untrusted",
            trusted(grant(DATASET_GRANT)),
            json!({"jku": peer.trusted_visa_issuer().1, "kid": "visa-trusted-1"}),
        )
        .await,
    ));
    let mut expired = trusted(grant(DATASET_GRANT));
    expired["exp"] = json!(now() - 3600);
    refused.push((
        "expired",
        peer.sign("visa-trusted", expired, json!({})).await,
    ));
    let mut future_iat = trusted(grant(DATASET_GRANT));
    future_iat["iat"] = json!(now() + 3600);
    refused.push((
        "iat in the future",
        peer.sign("visa-trusted", future_iat, json!({})).await,
    ));
    let mut future_asserted = grant(DATASET_GRANT);
    future_asserted["asserted"] = json!(now() + 3600);
    refused.push((
        "asserted in the future",
        peer.sign("visa-trusted", trusted(future_asserted), json!({}))
            .await,
    ));
    let mut no_by = grant(DATASET_GRANT);
    no_by.as_object_mut().unwrap().remove("by");
    refused.push((
        "no by",
        peer.sign("visa-trusted", trusted(no_by), json!({})).await,
    ));
    let mut self_asserted = grant(DATASET_GRANT);
    self_asserted["by"] = json!("self");
    refused.push((
        "by not accepted",
        peer.sign("visa-trusted", trusted(self_asserted), json!({}))
            .await,
    ));
    refused.push((
        "wrong value",
        peer.sign(
            "visa-trusted",
            trusted(grant("https://ega.example.org/datasets/EGAD00000000999")),
            json!({}),
        )
        .await,
    ));
    // A valid visa from the trusted issuer, but about another person (pasted into this
    // researcher's passport): it grants nothing.
    let other_sub = peer.sub("researcher2").await;
    assert_ne!(other_sub, sub);
    refused.push((
        "visa about another subject",
        peer.sign(
            "visa-trusted",
            visa_claims(&t_iss, &other_sub, grant(DATASET_GRANT)),
            json!({}),
        )
        .await,
    ));
    let mut conditional = grant(DATASET_GRANT);
    conditional["conditions"] = json!([[{"type": "AffiliationAndRole", "value": "const:faculty@uni.example", "by": "const:so"}]]);
    refused.push((
        "failing conditions",
        peer.sign("visa-trusted", trusted(conditional.clone()), json!({}))
            .await,
    ));
    for (name, visa) in refused {
        assert_eq!(
            grants(passport_token(&peer, vec![visa]).await).await,
            0,
            "{name}"
        );
    }

    // The same conditional grant holds once the passport has the matching affiliation visa.
    let affiliation = json!({"type": "AffiliationAndRole", "asserted": now() - 10,
        "value": "faculty@uni.example", "source": "https://uni.example", "by": "so"});
    let passport = vec![
        peer.sign("visa-trusted", trusted(conditional), json!({}))
            .await,
        peer.sign("visa-trusted", trusted(affiliation), json!({}))
            .await,
    ];
    assert_eq!(grants(passport_token(&peer, passport).await).await, 1);
}
