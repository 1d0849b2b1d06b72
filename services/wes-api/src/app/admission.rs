//! Admission: where a run request meets the deployment's rules and the registry. The request
//! is parsed once, against the deployment's config ([`RunSubmission::parse`], which names the
//! first bad field); the approved manifest then narrows what was parsed (engine parameters,
//! engine version, `workflow_params` against its schema, datasets and the caller's visas) and
//! the workflow's files are checked against the approved digest. What the manifest needs
//! compiled (the params schema, the engine parameters it allows here) is compiled once per
//! approved version and kept in [`ApprovedCache`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use serde_json::Value;
use spe_core::config::{AuthConfig, EngineParameterSpec};
use spe_core::manifest::{Manifest, ParamsSchema, WorkflowRef};
use spe_core::request::{RequestError, RunRequestFields, RunSubmission};
use spe_store::{DatasetState, WorkflowState};

use crate::app::registry::files_match;
use crate::app::visas::VisaSnapshot;
use crate::auth::{Caller, Visa};
use crate::error::ApiError;
use crate::startup::AppState;

/// A run request admitted: the submission as it will be stored, and the snapshot of the visas
/// that authorised its datasets (empty when none needed one, and with `auth: disabled`).
pub struct Admitted {
    pub submission: RunSubmission,
    pub visas: Vec<VisaSnapshot>,
    /// The approved digest the run is pinned to (for the audit chain's submission record).
    pub digest: String,
    /// The datasets the parameters name, by id, and whether each is Crypt4GH-encrypted (the
    /// service key is then handed to the run's job).
    pub datasets: Vec<(String, bool)>,
}

/// What admission needs of one approved version, compiled from its manifest once.
struct Compiled {
    manifest: Manifest,
    params: Result<ParamsSchema, RequestError>,
    /// The engine parameters a researcher may set for it here.
    engine_parameters: Result<Vec<EngineParameterSpec>, RequestError>,
    /// The deployment's parameters it does not let researchers set, with their defaults.
    fixed_parameters: BTreeMap<String, String>,
}

/// Compiled approved versions by (name, version, digest). An approved version's content never
/// changes (the digest pins it), so an entry never goes stale; the registry is small, so
/// entries are not evicted. Whether a version is still approved is read from the store on every
/// submission, never from here.
#[derive(Default)]
pub struct ApprovedCache {
    entries: Mutex<HashMap<(String, String, String), Arc<Compiled>>>,
}

impl ApprovedCache {
    /// The compiled form of the approved version `name@version` with `digest`, whose stored
    /// manifest is `manifest`, for a deployment offering `engine_parameters`.
    fn get(
        &self,
        (name, version, digest): (&str, &str, &str),
        manifest: &Value,
        engine_parameters: &[EngineParameterSpec],
    ) -> Result<Arc<Compiled>, ApiError> {
        let key = (name.to_owned(), version.to_owned(), digest.to_owned());
        if let Some(hit) = self.lock().get(&key) {
            return Ok(hit.clone());
        }
        let manifest = Manifest::from_json(manifest).map_err(ApiError::internal)?;
        let compiled = Arc::new(Compiled {
            params: manifest.params_schema(),
            engine_parameters: manifest.effective_engine_parameters(engine_parameters),
            fixed_parameters: manifest.fixed_parameters(engine_parameters),
            manifest,
        });
        self.lock().insert(key, compiled.clone());
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, String), Arc<Compiled>>> {
        // A panic while holding the lock cannot leave a map half-written: use it anyway.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn compiled(&self) -> usize {
        self.lock().len()
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

fn bad(field: &str, reason: String) -> ApiError {
    ApiError::from(RequestError::new(field, reason))
}

/// Admits a run request: the deployment's rules first (naming the first bad field), then the
/// registry's: the canonical `workflow_url` of an approved version, engine parameters per the
/// manifest (with the deployment's fixed ones added), `workflow_params` valid against the
/// manifest's schema, every dataset id registered and active, and the workflow's files still
/// matching the approved digest. Every refusal is a 400 naming the field, except a dataset the
/// caller may not use: 403 naming the dataset.
///
/// With `auth: oidc`, a dataset registered with a `visa` value may be used only by a caller
/// holding a valid ControlledAccessGrants visa with exactly that value; those visas are the
/// snapshot kept with the run. With `auth: disabled` visas are not checked.
pub async fn admit(
    state: &AppState,
    caller: &Caller,
    fields: RunRequestFields,
) -> Result<Admitted, ApiError> {
    let deployment = &state.config.workflows;
    let given_engine_parameters: Vec<String> = match &fields.workflow_engine_parameters {
        Some(Value::Object(given)) => given.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut submission = RunSubmission::parse(fields, deployment)?;
    let r = WorkflowRef::parse(&submission.workflow_url).map_err(|e| bad("workflow_url", e))?;
    let v = state
        .store
        .workflow_version(&r.name, &r.version)
        .await?
        .ok_or_else(|| {
            bad(
                "workflow_url",
                format!("{r} is not a registered workflow; GET /ga4gh/wes/v1/workflows lists them"),
            )
        })?;
    match v.state {
        WorkflowState::Approved => {}
        WorkflowState::Draft => {
            return Err(bad(
                "workflow_url",
                format!("{r} is not approved yet; only approved workflows run"),
            ));
        }
        WorkflowState::Retired => {
            return Err(bad(
                "workflow_url",
                format!("{r} is retired and can no longer run"),
            ));
        }
    }
    if v.workflow_type != submission.workflow_type {
        return Err(bad(
            "workflow_type",
            format!("{r} is a {} workflow", v.workflow_type),
        ));
    }
    let Some(approved_digest) = v.digest.clone() else {
        return Err(ApiError::internal(format!(
            "approved workflow {r} has no digest"
        )));
    };
    let compiled = state.approved.get(
        (&v.name, &v.version, approved_digest.as_str()),
        &v.manifest,
        &deployment.engine_parameters,
    )?;
    let manifest = &compiled.manifest;
    let allowed = compiled.engine_parameters.clone()?;
    submission.workflow_engine_parameters = narrow_engine_parameters(
        &submission.workflow_engine_parameters,
        &given_engine_parameters,
        &allowed,
        &compiled.fixed_parameters,
    )?;
    match &submission.workflow_engine_version {
        Some(version) if !manifest.accepts_engine_version(version) => {
            return Err(bad(
                "workflow_engine_version",
                format!("{r} runs on engine versions {}", manifest.engine_version),
            ));
        }
        Some(_) => {}
        None => {
            let offered = deployment
                .engines
                .get(&submission.workflow_engine)
                .map(|e| e.versions.clone())
                .unwrap_or_default();
            if !offered.iter().any(|v| manifest.accepts_engine_version(v)) {
                return Err(bad(
                    "workflow_engine",
                    format!(
                        "{r} runs on engine versions {}; {} here has {}",
                        manifest.engine_version,
                        submission.workflow_engine,
                        offered.join(", ")
                    ),
                ));
            }
        }
    }
    let schema = compiled
        .params
        .as_ref()
        .map_err(|e| ApiError::from(e.clone()))?;
    manifest.check_params_with(schema, &submission.workflow_params)?;
    let (visas, datasets) = check_datasets(state, caller, manifest, &submission).await?;
    if !files_match(&v, &approved_digest).await? {
        tracing::warn!(workflow = %r, "workflow files no longer match the approved digest");
        return Err(bad(
            "workflow_url",
            format!(
                "the files of {r} no longer match the digest approved for it; \
                 it cannot run until a data controller registers and approves a new version"
            ),
        ));
    }
    submission.workflow_url = r.to_string();
    Ok(Admitted {
        submission,
        visas,
        digest: approved_digest.as_str().to_owned(),
        datasets,
    })
}

/// The engine parameters of an admitted run: those the manifest lets researchers set (the
/// caller's values, checked again against the manifest's narrower bounds, else the manifest's
/// defaults) and the deployment's fixed ones. `parsed` holds the values the deployment's rules
/// accepted, `given` the names the caller set, in the request's order.
fn narrow_engine_parameters(
    parsed: &BTreeMap<String, String>,
    given: &[String],
    allowed: &[EngineParameterSpec],
    fixed: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let field = "workflow_engine_parameters";
    let mut chosen: BTreeMap<String, String> = allowed
        .iter()
        .map(|spec| (spec.name.clone(), spec.default.clone()))
        .collect();
    for name in given {
        let shown: String = name.chars().take(64).collect();
        let Some(spec) = allowed.iter().find(|s| &s.name == name) else {
            let names: Vec<&str> = allowed.iter().map(|s| s.name.as_str()).collect();
            let names = if names.is_empty() {
                "(none)".to_owned()
            } else {
                names.join(", ")
            };
            return Err(bad(
                &format!("{field}.{shown}"),
                format!("not a parameter researchers may set; allowed: {names}"),
            ));
        };
        let Some(value) = parsed.get(name) else {
            return Err(ApiError::internal(format!(
                "engine parameter {shown} was given but not parsed"
            )));
        };
        spec.check_value(value)
            .map_err(|e| bad(&format!("{field}.{shown}"), e))?;
        chosen.insert(name.clone(), value.clone());
    }
    for (name, value) in fixed {
        chosen.entry(name.clone()).or_insert_with(|| value.clone());
    }
    Ok(chosen)
}

/// Checks every dataset the parameters name: registered and active, and (with `auth: oidc`)
/// granted by one of the caller's visas when it names a visa value. Returns the granting visas
/// and the datasets (id, encrypted) named.
async fn check_datasets(
    state: &AppState,
    caller: &Caller,
    manifest: &Manifest,
    submission: &RunSubmission,
) -> Result<(Vec<VisaSnapshot>, Vec<(String, bool)>), ApiError> {
    let check_visas = !matches!(state.config.auth, AuthConfig::Disabled);
    let mut snapshot: Vec<VisaSnapshot> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    let mut named: Vec<(String, bool)> = Vec::new();
    for reference in manifest.dataset_references(&submission.workflow_params) {
        let dataset = state
            .store
            .dataset(&reference.id)
            .await?
            .filter(|d| d.state == DatasetState::Active);
        let Some(dataset) = dataset else {
            return Err(bad(
                &reference.field,
                format!("no active dataset {}", shorten(&reference.id)),
            ));
        };
        if !named.iter().any(|(id, _)| *id == dataset.id) {
            named.push((dataset.id.clone(), dataset.crypt4gh));
        }
        if !check_visas || checked.contains(&dataset.id) {
            continue;
        }
        checked.push(dataset.id.clone());
        let Some(value) = dataset.visa.as_deref() else {
            continue;
        };
        let now = chrono::Utc::now().timestamp();
        let granting: Vec<&Visa> = caller
            .grants(value)
            .filter(|v| v.expires_at > now)
            .collect();
        if granting.is_empty() {
            tracing::info!(
                subject = %caller.subject,
                dataset = %shorten(&dataset.id),
                "dataset refused: no visa grants it"
            );
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "dataset {}: your passport holds no valid ControlledAccessGrants visa for it",
                    shorten(&dataset.id)
                ),
            ));
        }
        snapshot.extend(
            granting
                .into_iter()
                .map(|v| VisaSnapshot::of(&dataset.id, v)),
        );
    }
    Ok((snapshot, named))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quals() -> Value {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/quals");
        let text = std::fs::read_to_string(dir.join("workflow.yaml")).unwrap();
        Manifest::from_yaml(&text).unwrap().to_json()
    }

    #[test]
    fn an_approved_version_is_compiled_once_per_digest() {
        let cache = ApprovedCache::default();
        let manifest = quals();
        let first = cache.get(("quals", "1.0.0", "d1"), &manifest, &[]).unwrap();
        let again = cache.get(("quals", "1.0.0", "d1"), &manifest, &[]).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.compiled(), 1);
        let params = serde_json::json!({"dataset": "demo-1"});
        let params = params.as_object().unwrap();
        let schema = first.params.as_ref().unwrap();
        first.manifest.check_params_with(schema, params).unwrap();
        let other = cache.get(("quals", "1.0.0", "d2"), &manifest, &[]).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(cache.compiled(), 2);
    }

    #[test]
    fn engine_parameters_are_narrowed_to_the_manifest() {
        let spec = |name: &str, max: i64| EngineParameterSpec {
            name: name.into(),
            kind: spe_core::config::EngineParameterKind::Integer,
            default: "1".into(),
            min: Some(1),
            max: Some(max),
            allowed: None,
        };
        let parsed: BTreeMap<String, String> = [
            ("cores".into(), "3".into()),
            ("memory_mb".into(), "100".into()),
        ]
        .into();
        let fixed: BTreeMap<String, String> = [("memory_mb".into(), "100".into())].into();
        let err = narrow_engine_parameters(&parsed, &["cores".into()], &[spec("cores", 2)], &fixed)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "workflow_engine_parameters.cores: must be at most 2"
        );
        let err =
            narrow_engine_parameters(&parsed, &["memory_mb".into()], &[spec("cores", 4)], &fixed)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "workflow_engine_parameters.memory_mb: not a parameter researchers may set; allowed: cores"
        );
        let chosen =
            narrow_engine_parameters(&parsed, &["cores".into()], &[spec("cores", 4)], &fixed)
                .unwrap();
        assert_eq!(
            chosen,
            [
                ("cores".into(), "3".into()),
                ("memory_mb".into(), "100".into())
            ]
            .into()
        );
        let chosen = narrow_engine_parameters(&parsed, &[], &[spec("cores", 4)], &fixed).unwrap();
        assert_eq!(chosen["cores"], "1");
    }
}
