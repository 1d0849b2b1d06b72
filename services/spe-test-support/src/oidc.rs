//! The OIDC test provider (tests/peers/oidc.sh, a stand-in for LS-Login): real tokens for its
//! test users, JWS signed with its keys, the `auth.oidc` config that trusts it. Found through
//! [`crate::peers::oidc_url`]: without it a test is skipped, or fails under CI.

use serde_json::{Value, json};

use crate::skip::require;

pub struct Peer {
    /// Provider A: the issuer the SPE trusts.
    pub issuer: String,
    /// Provider B: a second, untrusted provider.
    pub second: String,
    /// Visa issuers' JWKS and the signing helper.
    pub helper: String,
    http: reqwest::Client,
}

pub const AUDIENCE: &str = "spe-api";
pub const DATASET_GRANT: &str = "https://ega.example.org/datasets/EGAD00000000001";
pub const AUTHORITY: &str = "login.aai.lifescience-ri.eu";

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// The provider, or `None` after the test was reported skipped (a failure under CI).
pub async fn peer() -> Option<Peer> {
    let url = crate::peers::oidc_url()?;
    let port = require(
        "the OIDC test provider",
        port_of(&url).ok_or_else(|| format!("its URL {url:?} names no port")),
    )?;
    Some(Peer {
        issuer: url,
        second: format!("http://127.0.0.1:{}", port + 1),
        helper: format!("http://127.0.0.1:{}", port + 2),
        http: reqwest::Client::new(),
    })
}

impl Peer {
    /// A real access token from provider A for a test user.
    pub async fn token(&self, user: &str) -> String {
        self.token_from(&self.issuer, user).await
    }

    pub async fn token_from(&self, issuer: &str, user: &str) -> String {
        let resp = self
            .http
            .post(format!("{issuer}/token"))
            .basic_auth("spe-test", Some("spe-test-secret"))
            .form(&[
                ("grant_type", "urn:spe:test:user"),
                ("user", user),
                ("resource", "urn:spe:api"),
            ])
            .send()
            .await
            .expect("token request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("token response");
        assert!(status.is_success(), "token for {user}: {status} {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// An opaque access token (no resource indicator: no `aud`, no LS-Login claims, valid at
    /// userinfo and introspection) issued to `client` (`spe-api`, the client named as the
    /// audience, or `spe-test`) for a test user.
    pub async fn opaque_token(&self, client: &str, user: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[("grant_type", "urn:spe:test:user"), ("user", user)])
            .send()
            .await
            .expect("token request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("token response");
        assert!(
            status.is_success(),
            "opaque token for {user}: {status} {body}"
        );
        let token = body["access_token"].as_str().expect("access_token");
        assert_eq!(token.split('.').count(), 1, "not opaque");
        token.to_owned()
    }

    /// Revokes (RFC 7009) a token issued to `client`.
    pub async fn revoke(&self, client: &str, token: &str) {
        let resp = self
            .http
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[("token", token)])
            .send()
            .await
            .expect("revocation request");
        assert!(resp.status().is_success(), "revoke: {}", resp.status());
    }

    /// How often provider A's userinfo and introspection endpoints were asked about `token`:
    /// (userinfo, introspection).
    pub async fn calls(&self, token: &str) -> (u64, u64) {
        let v: Value = self
            .http
            .post(format!("{}/calls", self.helper))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("calls")
            .json()
            .await
            .expect("calls json");
        (
            v["userinfo"].as_u64().expect("userinfo"),
            v["introspection"].as_u64().expect("introspection"),
        )
    }

    /// A JWS over `claims` with one of the peer's keys: provider, second, unknown,
    /// visa-trusted, visa-untrusted.
    pub async fn sign(&self, key: &str, claims: Value, header: Value) -> String {
        let resp = self
            .http
            .post(format!("{}/sign", self.helper))
            .json(&json!({"key": key, "claims": claims, "header": header}))
            .send()
            .await
            .expect("sign request");
        assert!(resp.status().is_success(), "sign: {}", resp.status());
        resp.text().await.expect("signed")
    }

    pub async fn users(&self) -> Value {
        self.http
            .get(format!("{}/users", self.helper))
            .send()
            .await
            .expect("users")
            .json()
            .await
            .expect("users json")
    }

    pub async fn sub(&self, user: &str) -> String {
        self.users().await[user]["sub"]
            .as_str()
            .expect("sub")
            .to_owned()
    }

    /// The public JWKS of provider A.
    pub async fn jwks(&self) -> Value {
        self.http
            .get(format!("{}/jwks", self.issuer))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks json")
    }

    pub fn trusted_visa_issuer(&self) -> (String, String) {
        (
            format!("{}/trusted", self.helper),
            format!("{}/trusted/jwks.json", self.helper),
        )
    }

    pub fn untrusted_visa_issuer(&self) -> (String, String) {
        (
            format!("{}/untrusted", self.helper),
            format!("{}/untrusted/jwks.json", self.helper),
        )
    }

    /// The `auth.oidc` mapping for this peer (YAML, indented to sit under `auth:`'s `oidc:`).
    pub fn oidc_yaml(&self) -> String {
        let (iss, jku) = self.trusted_visa_issuer();
        let g = |group: &str| format!("urn:geant:lifescience-ri.eu:group:{group}#{AUTHORITY}");
        format!(
            r#"issuer: "{issuer}"
audience: {AUDIENCE}
jwks_min_refresh_seconds: 1
roles:
  entitlements:
    "{r}": [researcher]
    "{c}": [data_controller]
    "{k}": [collaborator]
    "{o}": [operator]
passports:
  trusted_issuers:
    - {{ iss: "{iss}", jku: "{jku}" }}
  accepted_by: [dac, so]
"#,
            issuer = self.issuer,
            r = g("spe-demo:researchers"),
            c = g("spe-demo:data-controllers:role=manager"),
            k = g("spe-demo:collaborators"),
            o = g("spe-demo:role=operator"),
        )
    }

    /// [`Peer::oidc_yaml`], parsed.
    pub fn oidc_config(&self) -> spe_core::config::OidcConfig {
        serde_yaml::from_str(&self.oidc_yaml()).expect("oidc config")
    }

    /// The shipped dev config (deploy/config/spe.dev.yaml, which trusts the provider on its
    /// default ports) with the provider's ports moved to where this one listens.
    pub fn dev_yaml(&self) -> String {
        crate::dev_config::dev_yaml()
            .replace("http://127.0.0.1:59100", &self.issuer)
            .replace("http://127.0.0.1:59102", &self.helper)
    }
}

/// Seconds since the Unix epoch, for token claims.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
