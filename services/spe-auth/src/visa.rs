//! GA4GH Passport visas (AAI 1.2, Passport 1.2).
//!
//! Each visa in `ga4gh_passport_v1` is a JWT whose header names a `jku`. It counts only if the
//! pair (payload `iss`, header `jku`) is one of the configured trusted issuers, its signature
//! verifies with a key from that JWKS (fetched and cached, asymmetric algorithms only), it has
//! `exp` in the future, `iat` and `ga4gh_visa_v1.asserted` not in the future, `by` where the
//! policy requires it, its `sub` is the token's own subject (a visa about someone else, pasted
//! into a passport, grants nothing; the SPE has no linked-identity rules), and its `conditions`
//! (if any) are met by the passport's other valid visas.
//! Visas that fail are dropped, never fatal to the token: the caller simply holds fewer grants.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spe_core::config::{PassportConfig, TrustedVisaIssuer};

use crate::jwks::KeySet;
use crate::verifier::{algorithms, jwt_error, unverified_claim};

/// A visa that verified; stored as a snapshot with the runs it authorised.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Visa {
    pub issuer: String,
    pub jku: String,
    pub subject: String,
    #[serde(rename = "type")]
    pub visa_type: String,
    pub value: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub asserted: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// A visa that verified, with its conditions still to evaluate.
struct Candidate {
    visa: Visa,
    conditions: Option<Value>,
}

pub(crate) struct VisaVerifier {
    trusted: Vec<TrustedVisaIssuer>,
    keys: HashMap<String, KeySet>,
    require_by: bool,
    accepted_by: Option<Vec<String>>,
    leeway: u64,
}

/// Visas read from one passport at most.
const MAX_VISAS: usize = 200;

impl VisaVerifier {
    /// `generation` counts refetches of any visa issuer's keys (see [`KeySet`]).
    pub(crate) fn new(
        config: &PassportConfig,
        leeway: u64,
        generation: Arc<AtomicU64>,
    ) -> VisaVerifier {
        let keys = config
            .trusted_issuers
            .iter()
            .map(|t| {
                (
                    t.jku.clone(),
                    KeySet::new(
                        t.jku.clone(),
                        Duration::from_secs(config.jwks_min_refresh_seconds),
                        generation.clone(),
                    ),
                )
            })
            .collect();
        VisaVerifier {
            trusted: config.trusted_issuers.clone(),
            keys,
            require_by: config.require_by,
            accepted_by: config.accepted_by.clone(),
            leeway,
        }
    }

    /// The visas of `passport` about `sub` (the token's subject) that verify and whose
    /// conditions hold.
    pub(crate) async fn verify_passport(
        &self,
        http: &reqwest::Client,
        passport: &[String],
        sub: &str,
    ) -> Vec<Visa> {
        if self.trusted.is_empty() {
            return Vec::new();
        }
        let mut candidates = Vec::new();
        for (i, jwt) in passport.iter().take(MAX_VISAS).enumerate() {
            match self.verify_one(http, jwt, sub).await {
                Ok(c) => candidates.push(c),
                // The reason only: never the visa itself.
                Err(reason) => tracing::debug!(visa = i, %reason, "visa ignored"),
            }
        }
        let accepted: Vec<&Visa> = candidates
            .iter()
            .filter(|c| c.conditions.is_none())
            .map(|c| &c.visa)
            .collect();
        candidates
            .iter()
            .filter(|c| match &c.conditions {
                None => true,
                Some(conditions) => {
                    let ok = conditions_hold(conditions, &accepted);
                    if !ok {
                        tracing::debug!(visa_type = %c.visa.visa_type, "visa conditions not met");
                    }
                    ok
                }
            })
            .map(|c| c.visa.clone())
            .collect()
    }

    async fn verify_one(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        sub: &str,
    ) -> Result<Candidate, String> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "malformed header")?;
        let jku = header.jku.as_deref().ok_or("no jku in header")?;
        let iss = unverified_claim(jwt, "iss").ok_or("no iss")?;
        if !self.trusted.iter().any(|t| t.iss == iss && t.jku == jku) {
            return Err("(iss, jku) is not a trusted visa issuer".into());
        }
        if !algorithms(None).contains(&header.alg) {
            return Err("algorithm not accepted".into());
        }
        let keys = self.keys.get(jku).ok_or("no key set for jku")?;
        let key = keys
            .key(http, header.kid.as_deref(), header.alg)
            .await
            .map_err(|e| e.to_string())?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&iss]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "iat"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &validation)
            .map_err(|e| jwt_error(&e).to_string())?
            .claims;
        if claims.get("sub").and_then(Value::as_str) != Some(sub) {
            return Err("visa is about another subject".into());
        }
        let now = now();
        let leeway = self.leeway as i64;
        let iat = claims.get("iat").and_then(Value::as_i64).ok_or("no iat")?;
        if iat > now + leeway {
            return Err("issued in the future".into());
        }
        let body = claims
            .get("ga4gh_visa_v1")
            .and_then(Value::as_object)
            .ok_or("no ga4gh_visa_v1")?;
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let visa_type = text("type").ok_or("no type")?;
        let value = text("value").ok_or("no value")?;
        let source = text("source").ok_or("no source")?;
        let asserted = body
            .get("asserted")
            .and_then(Value::as_i64)
            .ok_or("no asserted")?;
        if asserted > now + leeway {
            return Err("asserted in the future".into());
        }
        let by = text("by");
        if visa_type == "ControlledAccessGrants" {
            if self.require_by && by.is_none() {
                return Err("no by".into());
            }
            if let (Some(accepted), Some(by)) = (&self.accepted_by, &by)
                && !accepted.contains(by)
            {
                return Err("by not accepted".into());
            }
        }
        Ok(Candidate {
            visa: Visa {
                issuer: iss,
                jku: jku.to_owned(),
                subject: sub.to_owned(),
                visa_type,
                value,
                source,
                by,
                asserted,
                issued_at: iat,
                expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
                jti: claims.get("jti").and_then(Value::as_str).map(str::to_owned),
            },
            conditions: body.get("conditions").cloned(),
        })
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `conditions` in disjunctive normal form: an array of arrays of clauses; the visa holds if
/// every clause of at least one inner array is matched by some visa in `visas`. Anything
/// malformed holds nothing.
pub fn conditions_hold(conditions: &Value, visas: &[&Visa]) -> bool {
    let Some(any_of) = conditions.as_array() else {
        return false;
    };
    any_of.iter().any(|all_of| {
        all_of.as_array().is_some_and(|clauses| {
            !clauses.is_empty()
                && clauses
                    .iter()
                    .all(|clause| visas.iter().any(|v| clause_matches(clause, v)))
        })
    })
}

fn clause_matches(clause: &Value, visa: &Visa) -> bool {
    let Some(clause) = clause.as_object() else {
        return false;
    };
    if clause.get("type").and_then(Value::as_str) != Some(visa.visa_type.as_str()) {
        return false;
    }
    clause.iter().all(|(field, matcher)| {
        let actual = match field.as_str() {
            "type" => return true,
            "value" => Some(visa.value.as_str()),
            "source" => Some(visa.source.as_str()),
            "by" => visa.by.as_deref(),
            // Fields this implementation does not know cannot be shown to match.
            _ => return false,
        };
        match (matcher.as_str(), actual) {
            (Some(m), Some(actual)) => matches(m, actual),
            _ => false,
        }
    })
}

/// `const:X` matches exactly X; `pattern:P` matches P where `?` is any one character and `*`
/// any run of characters. Anything else matches nothing.
pub fn matches(matcher: &str, actual: &str) -> bool {
    if let Some(c) = matcher.strip_prefix("const:") {
        c == actual
    } else if let Some(p) = matcher.strip_prefix("pattern:") {
        glob(
            &p.chars().collect::<Vec<_>>(),
            &actual.chars().collect::<Vec<_>>(),
        )
    } else {
        false
    }
}

fn glob(p: &[char], s: &[char]) -> bool {
    // Iterative wildcard match with one backtrack point: linear-ish, no recursion blow-up.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn visa(t: &str, value: &str, by: Option<&str>) -> Visa {
        Visa {
            issuer: "https://i".into(),
            jku: "https://i/jwks".into(),
            subject: "s".into(),
            visa_type: t.into(),
            value: value.into(),
            source: "https://source.example/dac".into(),
            by: by.map(str::to_owned),
            asserted: 1,
            issued_at: 1,
            expires_at: 2,
            jti: None,
        }
    }

    #[test]
    fn matchers() {
        assert!(matches("const:abc", "abc"));
        assert!(!matches("const:abc", "abcd"));
        assert!(matches(
            "pattern:https://*.example/??c",
            "https://source.example/dac"
        ));
        assert!(matches("pattern:*", ""));
        assert!(!matches("pattern:a*b", "acbx"));
        assert!(!matches("abc", "abc"));
    }

    #[test]
    fn conditions_are_disjunctive_normal_form() {
        let role = visa("AffiliationAndRole", "faculty@uni.example", Some("so"));
        let grant = visa("ControlledAccessGrants", "https://d/1", Some("dac"));
        let visas = [&role, &grant];
        let ok = json!([[
            {"type": "AffiliationAndRole", "value": "const:faculty@uni.example", "by": "const:so"}
        ]]);
        assert!(conditions_hold(&ok, &visas));
        let wrong = json!([[{"type": "AffiliationAndRole", "value": "const:student@uni.example"}]]);
        assert!(!conditions_hold(&wrong, &visas));
        let either = json!([
            [{"type": "AffiliationAndRole", "value": "const:student@uni.example"}],
            [{"type": "ControlledAccessGrants", "value": "pattern:https://d/*"}]
        ]);
        assert!(conditions_hold(&either, &visas));
        let both = json!([[
            {"type": "AffiliationAndRole", "value": "pattern:*@uni.example"},
            {"type": "ControlledAccessGrants", "value": "const:https://d/2"}
        ]]);
        assert!(!conditions_hold(&both, &visas));
        assert!(!conditions_hold(&json!([[]]), &visas));
        assert!(!conditions_hold(&json!("x"), &visas));
        let unknown_field = json!([[{"type": "AffiliationAndRole", "colour": "const:red"}]]);
        assert!(!conditions_hold(&unknown_field, &visas));
    }
}
