//! Who a person is: an OIDC `sub` is unique only within its issuer, so a person is the pair
//! (issuer, sub), and so is a group (the issuer that asserted the entitlement, and its URN).
//!
//! Both are stored as one text key, `<issuer> <value>`: an issuer is a URL and holds no
//! whitespace (checked here and by the config), so the first space separates the two without
//! escaping, and equality of keys is equality of pairs. Service actors (the submitter, the
//! reconciler) are single words and never contain a space.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The issuer of callers when `auth: disabled` (local development): not a URL, so no real
/// provider can ever mint it.
pub const LOCAL_ISSUER: &str = "urn:spe:local";

/// Why a text is not an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("an issuer must be non-empty and contain no whitespace")]
    BadIssuer,
    #[error("a subject or group must be non-empty")]
    Empty,
    #[error("{0:?} is not an identity key (`<issuer> <value>`)")]
    NotAKey(String),
}

fn check_issuer(issuer: &str) -> Result<(), IdentityError> {
    if issuer.is_empty() || issuer.chars().any(char::is_whitespace) {
        return Err(IdentityError::BadIssuer);
    }
    Ok(())
}

fn split_key(key: &str) -> Result<(&str, &str), IdentityError> {
    let not_a_key = || IdentityError::NotAKey(key.to_owned());
    let (issuer, value) = key.split_once(' ').ok_or_else(not_a_key)?;
    check_issuer(issuer).map_err(|_| not_a_key())?;
    if value.is_empty() {
        return Err(not_a_key());
    }
    Ok((issuer, value))
}

/// A value that one issuer vouches for: the pair both [`Subject`] and [`Group`] are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Scoped {
    issuer: String,
    value: String,
}

impl Scoped {
    fn new(issuer: String, value: String) -> Result<Self, IdentityError> {
        check_issuer(&issuer)?;
        if value.is_empty() {
            return Err(IdentityError::Empty);
        }
        Ok(Scoped { issuer, value })
    }

    fn key(&self) -> String {
        format!("{} {}", self.issuer, self.value)
    }

    fn from_key(key: &str) -> Result<Self, IdentityError> {
        let (issuer, value) = split_key(key)?;
        Ok(Scoped {
            issuer: issuer.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// A person: the OIDC issuer and the `sub` it gave them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SubjectRepr", into = "SubjectRepr")]
pub struct Subject(Scoped);

#[derive(Serialize, Deserialize)]
struct SubjectRepr {
    issuer: String,
    sub: String,
}

impl TryFrom<SubjectRepr> for Subject {
    type Error = IdentityError;
    fn try_from(r: SubjectRepr) -> Result<Self, Self::Error> {
        Subject::new(r.issuer, r.sub)
    }
}

impl From<Subject> for SubjectRepr {
    fn from(s: Subject) -> Self {
        SubjectRepr {
            issuer: s.0.issuer,
            sub: s.0.value,
        }
    }
}

impl Subject {
    pub fn new(issuer: impl Into<String>, sub: impl Into<String>) -> Result<Self, IdentityError> {
        Scoped::new(issuer.into(), sub.into()).map(Subject)
    }

    /// The one local user of `auth: disabled`.
    pub fn local_dev_user() -> Self {
        Subject(Scoped {
            issuer: LOCAL_ISSUER.to_owned(),
            value: "local-dev-user".to_owned(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    pub fn sub(&self) -> &str {
        &self.0.value
    }

    /// The stored form, `<issuer> <sub>`.
    pub fn key(&self) -> String {
        self.0.key()
    }

    /// Parses the stored form back.
    pub fn from_key(key: &str) -> Result<Self, IdentityError> {
        Scoped::from_key(key).map(Subject)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (issuer {})", self.sub(), self.issuer())
    }
}

/// A group as one issuer asserts it: an LS-Login `eduperson_entitlement` URN from that issuer.
/// The same URN from another issuer is another group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group(Scoped);

impl Group {
    pub fn new(issuer: impl Into<String>, urn: impl Into<String>) -> Result<Self, IdentityError> {
        Scoped::new(issuer.into(), urn.into()).map(Group)
    }

    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    pub fn urn(&self) -> &str {
        &self.0.value
    }

    pub fn key(&self) -> String {
        self.0.key()
    }

    pub fn from_key(key: &str) -> Result<Self, IdentityError> {
        Scoped::from_key(key).map(Group)
    }
}

/// Who made a change: a person, or one of the services' own loops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Person(Subject),
    Service(ServiceActor),
}

/// The services' own loops that change runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceActor {
    Submitter,
    Reconciler,
    /// The benchmark harness, writing runs without a person behind them.
    Bench,
    /// The results crawler (e.g. resetting a review whose file changed after the votes).
    Crawler,
    /// wes-api's loop that reports review requests left undecided too long.
    ReviewMonitor,
    /// wes-api itself, for what no person did: a refused token, a failed login (the audit
    /// chain's records of them).
    Api,
    /// wes-api's retention loop, deleting what outlived the retention period.
    Retention,
}

impl ServiceActor {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceActor::Submitter => "submitter",
            ServiceActor::Reconciler => "reconciler",
            ServiceActor::Bench => "bench",
            ServiceActor::Crawler => "crawler",
            ServiceActor::ReviewMonitor => "review-monitor",
            ServiceActor::Api => "wes-api",
            ServiceActor::Retention => "retention",
        }
    }
}

impl Actor {
    /// The stored form: a subject's key, or the service's word.
    pub fn key(&self) -> String {
        match self {
            Actor::Person(s) => s.key(),
            Actor::Service(s) => s.as_str().to_owned(),
        }
    }

    pub fn from_key(key: &str) -> Result<Self, IdentityError> {
        for s in [
            ServiceActor::Submitter,
            ServiceActor::Reconciler,
            ServiceActor::Bench,
            ServiceActor::Crawler,
            ServiceActor::ReviewMonitor,
            ServiceActor::Api,
            ServiceActor::Retention,
        ] {
            if key == s.as_str() {
                return Ok(Actor::Service(s));
            }
        }
        Subject::from_key(key).map(Actor::Person)
    }

    pub fn subject(&self) -> Option<&Subject> {
        match self {
            Actor::Person(s) => Some(s),
            Actor::Service(_) => None,
        }
    }
}

/// As the API and released records show it: a person as `{"issuer", "sub"}`, a service loop as
/// `{"service": <name>}`.
impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct ServiceRepr {
            service: &'static str,
        }
        match self {
            Actor::Person(s) => s.serialize(serializer),
            Actor::Service(s) => ServiceRepr {
                service: s.as_str(),
            }
            .serialize(serializer),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(s) => s.fmt(f),
            Actor::Service(s) => f.write_str(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_keep_issuers_apart() {
        let a = Subject::new("https://login.example/oidc", "u 1@ls").unwrap();
        let b = Subject::new("https://other.example", "u 1@ls").unwrap();
        assert_eq!(a.key(), "https://login.example/oidc u 1@ls");
        assert_eq!(Subject::from_key(&a.key()).unwrap(), a);
        assert_ne!(a, b);
        assert_ne!(a.key(), b.key());
        let g = Group::new("https://login.example/oidc", "urn:g#a").unwrap();
        assert_eq!(Group::from_key(&g.key()).unwrap(), g);
    }

    #[test]
    fn actors_show_as_a_person_or_a_service() {
        let person = Actor::Person(Subject::new("https://login.example", "u1").unwrap());
        assert_eq!(
            serde_json::to_value(&person).unwrap(),
            serde_json::json!({"issuer": "https://login.example", "sub": "u1"})
        );
        assert_eq!(
            serde_json::to_value(Actor::Service(ServiceActor::Crawler)).unwrap(),
            serde_json::json!({"service": "crawler"})
        );
    }

    #[test]
    fn bad_identities_are_refused() {
        assert_eq!(Subject::new("", "x"), Err(IdentityError::BadIssuer));
        assert_eq!(
            Subject::new("https://a b", "x"),
            Err(IdentityError::BadIssuer)
        );
        assert_eq!(Subject::new("https://a", ""), Err(IdentityError::Empty));
        assert_eq!(
            Subject::from_key("bare-sub"),
            Err(IdentityError::NotAKey("bare-sub".into()))
        );
        assert!(Subject::from_key("https://a ").is_err());
    }

    #[test]
    fn actors_are_services_or_people() {
        assert_eq!(
            Actor::from_key("reconciler").unwrap(),
            Actor::Service(ServiceActor::Reconciler)
        );
        let p = Subject::new("https://a", "s").unwrap();
        assert_eq!(Actor::from_key("https://a s").unwrap(), Actor::Person(p));
        assert!(Actor::from_key("someone").is_err());
    }

    #[test]
    fn subjects_serialise_as_pairs() {
        let s = Subject::new("https://a", "s").unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json, serde_json::json!({"issuer": "https://a", "sub": "s"}));
        let bad: Result<Subject, _> =
            serde_json::from_value(serde_json::json!({"issuer": "", "sub": "s"}));
        assert!(bad.is_err());
    }
}
