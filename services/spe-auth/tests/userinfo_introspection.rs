//! spe-auth's userinfo lookup and opaque-token introspection (RFC 7662) against the real
//! OpenID Connect provider (tests/peers/oidc.sh). The provider's opaque tokens (minted without
//! a resource indicator) carry no `aud` and none of the LS-Login claims: as at LS-Login, those
//! come from userinfo only. Also: neither a token nor the introspection secret reaches the logs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use spe_auth::{AuthError, Role, Verifier};
use spe_core::config::OidcConfig;
use spe_test_support::logs::captured_logs;
use spe_test_support::oidc::{self, DATASET_GRANT, Peer, peer};

const INTROSPECTION_SECRET: &str = "spe-introspect-secret";

/// The peer's `auth.oidc` settings, with userinfo and/or introspection on.
fn config(peer: &Peer, userinfo: bool, introspection: bool) -> OidcConfig {
    let mut yaml = peer.oidc_yaml();
    yaml.push_str(&format!(
        "userinfo: {{ enabled: {userinfo}, cache_seconds: 60 }}\n"
    ));
    if introspection {
        yaml.push_str(&format!(
            "introspection: {{ client_id: spe-introspect, client_secret: {INTROSPECTION_SECRET}, \
             cache_seconds: 60 }}\n"
        ));
    }
    serde_yaml::from_str(&yaml).expect("oidc config")
}

fn refused(result: Result<spe_auth::Principal, AuthError>, what: &str) -> String {
    match result {
        Err(AuthError::Invalid(msg)) => msg,
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn opaque_tokens_resolve_subject_and_roles_through_introspection_and_userinfo() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&config(&peer, true, true)).unwrap();
    for (user, roles) in [
        ("researcher", vec![Role::Researcher]),
        ("controller", vec![Role::DataController]),
        ("nobody", vec![]),
    ] {
        let token = peer.opaque_token("spe-api", user).await;
        let p = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(p.subject.sub(), peer.sub(user).await, "{user}");
        assert_eq!(p.subject.issuer(), peer.issuer);
        // The token carries no entitlements: the roles come from userinfo.
        assert_eq!(p.roles, roles, "{user}");
        assert!(p.expires_at > oidc::now(), "{user}");
    }
    // The researcher's passport (released at userinfo only) carries the trusted visa.
    let token = peer.opaque_token("spe-api", "researcher").await;
    let p = verifier.verify(&token).await.unwrap();
    assert_eq!(p.grants(DATASET_GRANT).count(), 1, "{:?}", p.visas);
    assert_eq!(peer.calls(&token).await, (1, 1));
    // Within cache_seconds the answers are reused: no second call to the provider.
    let again = verifier.verify(&token).await.unwrap();
    assert_eq!(again.subject, p.subject);
    assert_eq!(again.roles, vec![Role::Researcher]);
    assert_eq!(peer.calls(&token).await, (1, 1));
}

#[tokio::test]
async fn without_userinfo_an_introspected_token_has_only_its_own_claims() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&config(&peer, false, true)).unwrap();
    let token = peer.opaque_token("spe-api", "researcher").await;
    let p = verifier.verify(&token).await.unwrap();
    assert_eq!(p.subject.sub(), peer.sub("researcher").await);
    assert!(p.roles.is_empty(), "{:?}", p.roles);
    assert!(p.visas.is_empty());
    assert_eq!(peer.calls(&token).await, (0, 1));
}

#[tokio::test]
async fn inactive_foreign_or_unintrospectable_opaque_tokens_are_refused() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&config(&peer, true, true)).unwrap();

    // Revoked: introspection answers inactive.
    let revoked = peer.opaque_token("spe-api", "researcher").await;
    peer.revoke("spe-api", &revoked).await;
    let msg = refused(verifier.verify(&revoked).await, "revoked token");
    assert!(!msg.contains(&revoked));
    assert_eq!(peer.calls(&revoked).await, (0, 1));

    // A random string the provider never issued.
    let random = spe_auth::random_secret();
    refused(verifier.verify(&random).await, "random string");
    assert_eq!(peer.calls(&random).await, (0, 1));

    // Active, but issued to another client of the provider (no `aud`, client_id spe-test):
    // not meant for this service.
    let foreign = peer.opaque_token("spe-test", "researcher").await;
    let msg = refused(verifier.verify(&foreign).await, "token of another client");
    assert!(msg.contains("not meant for this service"), "{msg}");

    // Without introspection configured, an opaque token is refused unasked.
    let plain = Verifier::new(&config(&peer, true, false)).unwrap();
    let token = peer.opaque_token("spe-api", "researcher").await;
    refused(plain.verify(&token).await, "no introspection");
    assert_eq!(peer.calls(&token).await, (0, 0));
    // ... and the same token is fine where introspection is configured.
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn userinfo_is_asked_only_for_missing_claims_and_must_be_about_the_same_subject() {
    let Some(peer) = peer().await else { return };
    let verifier = Verifier::new(&config(&peer, true, true)).unwrap();

    // The provider answers userinfo for shapeshifter's token with researcher's sub.
    let token = peer.opaque_token("spe-api", "shapeshifter").await;
    let msg = refused(
        verifier.verify(&token).await,
        "userinfo about another subject",
    );
    assert!(msg.contains("another subject"), "{msg}");
    assert_eq!(peer.calls(&token).await, (1, 1));

    // A JWT access token carrying the LS-Login claims itself: userinfo is not asked.
    let jwt = peer.token("researcher").await;
    let p = verifier.verify(&jwt).await.unwrap();
    assert_eq!(p.roles, vec![Role::Researcher]);
    assert_eq!(peer.calls(&jwt).await, (0, 0));
}

#[tokio::test]
async fn neither_tokens_nor_the_introspection_secret_reach_logs_or_errors() {
    let logs = captured_logs();
    let Some(peer) = peer().await else { return };
    let config = config(&peer, true, true);
    let verifier = Verifier::new(&config).unwrap();
    assert!(!format!("{config:?}").contains(INTROSPECTION_SECRET));
    assert!(!format!("{verifier:?}").contains(INTROSPECTION_SECRET));

    let good = peer.opaque_token("spe-api", "researcher").await;
    verifier.verify(&good).await.unwrap();
    let revoked = peer.opaque_token("spe-api", "controller").await;
    peer.revoke("spe-api", &revoked).await;
    let foreign = peer.opaque_token("spe-test", "researcher").await;
    let liar = peer.opaque_token("spe-api", "shapeshifter").await;
    let random = spe_auth::random_secret();
    let mut errors = String::new();
    for token in [&revoked, &foreign, &liar, &random] {
        let e = verifier.verify(token).await.unwrap_err();
        errors.push_str(&format!("{e}\n{e:?}\n"));
    }
    // A provider that cannot be reached: the error names the URL, never the token or secret.
    let mut down = config.clone();
    down.issuer = "http://127.0.0.1:9".to_owned();
    let e = Verifier::new(&down)
        .unwrap()
        .verify(&good)
        .await
        .unwrap_err();
    errors.push_str(&format!("{e}\n{e:?}\n"));

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logs.contains("OIDC issuer discovered"),
        "nothing captured: {logs}"
    );
    let basic = STANDARD.encode(format!("spe-introspect:{INTROSPECTION_SECRET}"));
    for (what, text) in [("logs", &logs), ("errors", &errors)] {
        for (name, secret) in [
            ("good token", good.as_str()),
            ("revoked token", revoked.as_str()),
            ("foreign token", foreign.as_str()),
            ("shapeshifter's token", liar.as_str()),
            ("random token", random.as_str()),
            ("introspection secret", INTROSPECTION_SECRET),
            ("basic credentials", basic.as_str()),
        ] {
            assert!(!text.contains(secret), "the {name} is in the {what}");
        }
    }
}

#[tokio::test]
async fn a_slow_provider_fails_only_its_opaque_tokens_and_never_holds_up_jwt_callers() {
    let Some(peer) = peer().await else { return };
    // The provider answers these credentials' introspections after 3 s; the service waits 1 s.
    let mut yaml = peer.oidc_yaml();
    yaml.push_str(
        "userinfo: { enabled: true, cache_seconds: 60 }\n\
         introspection: { client_id: spe-introspect-slow, \
         client_secret: spe-introspect-slow-secret, cache_seconds: 60 }\n\
         http_timeout_seconds: 1\n",
    );
    let config: OidcConfig = serde_yaml::from_str(&yaml).expect("oidc config");
    let verifier = std::sync::Arc::new(Verifier::new(&config).unwrap());
    let jwts = [
        peer.token("researcher").await,
        peer.token("operator").await,
        peer.token("controller").await,
    ];
    verifier.verify(&jwts[0]).await.unwrap();
    let opaque = peer.opaque_token("spe-api", "researcher").await;
    let waiting = verifier.clone();
    let slow = tokio::spawn(async move { waiting.verify(&opaque).await });
    tokio::task::yield_now().await;
    // While that introspection waits on the provider, bearer JWTs are answered.
    for jwt in &jwts {
        verifier.verify(jwt).await.unwrap();
    }
    assert!(
        !slow.is_finished(),
        "the opaque token's introspection was still waiting while the JWTs were verified"
    );
    match slow.await.unwrap() {
        Err(AuthError::Unavailable(msg)) => assert!(!msg.contains("secret"), "{msg}"),
        other => panic!("expected Unavailable (503), got {other:?}"),
    }
}
