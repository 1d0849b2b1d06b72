//! A run described as a Five Safes RO-Crate 0.4 (<https://w3id.org/5s-crate/0.4>): the one
//! builder of `ro-crate-metadata.json`, used by wes-api (`GET /runs/{id}/ro-crate`) and by the
//! results crawler (the crate in the released package, which it signs). A pure function of
//! typed inputs: what is not passed in cannot appear, and nothing sensitive is passed in — no
//! parameters, no dataset locations, no run directory, no reviewer comments, no file names
//! that were not released.
//!
//! Entities (docs/ro-crate.md):
//! - the metadata descriptor (RO-Crate 1.2) and the root `./`, which `conformsTo` the profile,
//!   names the workflow as `mainEntity`, the project as `sourceOrganization` and the actions
//!   under `mentions`;
//! - the approved workflow version as a `ComputationalWorkflow` (a Workflow RO-Crate
//!   `Dataset`) with its SHA-256 digest;
//! - the run as the profile's `CreateAction`: `agent` the owner, `instrument` the workflow,
//!   `object` the datasets (by id), `result` the released files, `actionStatus` from its state;
//! - the workflow's approval as an `AssessAction` of type `shp:SignOff`, each review step as an
//!   `AssessAction` (votes as `shp:DisclosureCheck`);
//! - each released file with its size and SHA-256;
//! - when given, the head of the audit chain at release time.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::time::Timestamp;
use crate::{Actor, RunId, RunState, Subject};

pub const PROFILE: &str = "https://w3id.org/5s-crate/0.4";
pub const RO_CRATE: &str = "https://w3id.org/ro/crate/1.2";
const CONTEXT: &str = "https://w3id.org/ro/crate/1.2/context";
const WORKFLOW_CRATE: &str = "https://w3id.org/workflowhub/workflow-ro-crate/1.0";
const SHP: &str = "https://w3id.org/shp#";
/// The term for a file's SHA-256 (added to the context).
const SHA256_TERM: &str = "https://w3id.org/ro/terms/workflow-run#sha256";

/// The deployment that ran the run.
#[derive(Debug, Clone)]
pub struct CrateService<'a> {
    /// `service.id`, e.g. `org.example.spe`.
    pub id: &'a str,
    pub name: &'a str,
    pub organization: &'a str,
    pub organization_url: &'a str,
}

/// The run.
#[derive(Debug, Clone)]
pub struct CrateRun<'a> {
    pub id: RunId,
    pub state: RunState,
    pub owner: &'a Subject,
    pub created_at: Timestamp,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
}

/// The approved workflow version the run was admitted with.
#[derive(Debug, Clone)]
pub struct CrateWorkflow<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The engine's language: `SMK` or `NFL`.
    pub workflow_type: &'a str,
    /// The approved digest (SHA-256 hex).
    pub digest: Option<&'a str>,
    pub approved_by: Option<&'a Subject>,
    pub approved_at: Option<Timestamp>,
}

/// One step of the run's egress review.
#[derive(Debug, Clone)]
pub struct CrateReview<'a> {
    pub seq: i64,
    /// `vote`, `return`, `resubmit`, `revoke`, `reset` or `overdue`.
    pub kind: &'a str,
    /// For a vote: `approve` or `reject`.
    pub decision: Option<&'a str>,
    /// The file it is about, if any (named in the crate only if it was released).
    pub path: Option<&'a str>,
    pub actor: &'a Actor,
    /// For a vote: the SHA-256 of the bytes voted on.
    pub sha256: Option<&'a str>,
    pub at: Timestamp,
}

/// A released file, at `<run_id>/<path>` in the results bucket.
#[derive(Debug, Clone)]
pub struct CrateFile<'a> {
    pub path: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub released_at: Timestamp,
}

/// The audit chain's last record when the crate was built.
#[derive(Debug, Clone, Copy)]
pub struct CrateChainHead<'a> {
    pub seq: i64,
    pub sha256: &'a str,
}

/// Everything a crate is built from.
#[derive(Debug, Clone)]
pub struct CrateInput<'a> {
    pub service: CrateService<'a>,
    pub run: CrateRun<'a>,
    pub workflow: CrateWorkflow<'a>,
    /// Dataset ids the run's parameters named.
    pub datasets: &'a [String],
    pub reviews: &'a [CrateReview<'a>],
    pub files: &'a [CrateFile<'a>],
    pub chain_head: Option<CrateChainHead<'a>>,
    /// When the crate was built (its `datePublished`).
    pub generated_at: Timestamp,
}

/// The crate's `ro-crate-metadata.json` document.
pub fn five_safes_crate(input: &CrateInput<'_>) -> Value {
    let run = &input.run;
    let wf = &input.workflow;
    let workflow_id = format!(
        "#workflow-{}",
        encode(&format!("{}@{}", wf.name, wf.version))
    );
    let run_id = format!("#run-{}", run.id);
    let project_id = format!("#project-{}", encode(input.service.id));
    let owner_id = person_id(run.owner);

    let mut graph = Vec::new();
    let mut mentions = vec![json!({ "@id": run_id })];
    let mut people: Vec<(String, Value)> = Vec::new();
    let mut add_agent = |actor: &Actor| -> String {
        let (id, entity) = agent_entity(actor, &project_id);
        if !people.iter().any(|(known, _)| *known == id) {
            people.push((id.clone(), entity));
        }
        id
    };
    let owner_ref = add_agent(&Actor::Person(run.owner.clone()));
    debug_assert_eq!(owner_ref, owner_id);

    let file_ids: Vec<String> = input.files.iter().map(|f| encode_path(f.path)).collect();
    let datasets: Vec<Value> = input
        .datasets
        .iter()
        .map(|d| json!({ "@id": format!("#dataset-{}", encode(d)) }))
        .collect();

    graph.push(json!({
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "about": { "@id": "./" },
        "conformsTo": { "@id": RO_CRATE },
    }));

    // The workflow's approval: the sign-off the profile asks for.
    if let (Some(by), Some(at)) = (wf.approved_by, wf.approved_at) {
        let agent = add_agent(&Actor::Person(by.clone()));
        let id = format!("{workflow_id}-signoff");
        mentions.push(json!({ "@id": id }));
        graph.push(json!({
            "@id": id,
            "@type": "AssessAction",
            "additionalType": { "@id": format!("{SHP}SignOff") },
            "name": format!("Approval of workflow {}@{}: approved", wf.name, wf.version),
            "object": [{ "@id": workflow_id }],
            "agent": { "@id": agent },
            "endTime": at.to_rfc3339_micros(),
            "actionStatus": { "@id": "http://schema.org/CompletedActionStatus" },
        }));
    }

    for r in input.reviews {
        let id = format!("#review-{}", r.seq);
        let agent = add_agent(r.actor);
        let released = r
            .path
            .and_then(|p| input.files.iter().position(|f| f.path == p))
            .map(|i| file_ids[i].clone());
        let about = match (&released, r.path) {
            (Some(_), Some(p)) => format!(" of {p}"),
            (None, Some(_)) => " of an output not released".to_owned(),
            _ => String::new(),
        };
        let (additional, name) = match (r.kind, r.decision) {
            ("vote", Some(d)) => (
                Some(format!("{SHP}DisclosureCheck")),
                format!("Disclosure check{about}: {}", past(d)),
            ),
            ("return", _) => (None, "Review returned to the researcher".to_owned()),
            ("resubmit", _) => (None, "Researcher answered the review".to_owned()),
            ("revoke", _) => (None, format!("Release{about} revoked")),
            ("reset", _) => (None, format!("Review{about} restarted: content changed")),
            ("overdue", _) => (None, "Review reported overdue".to_owned()),
            (other, _) => (None, format!("Review step {other}{about}")),
        };
        let mut action = json!({
            "@id": id,
            "@type": "AssessAction",
            "name": name,
            "object": { "@id": released.clone().unwrap_or_else(|| "./".to_owned()) },
            "agent": { "@id": agent },
            "endTime": r.at.to_rfc3339_micros(),
            "actionStatus": { "@id": "http://schema.org/CompletedActionStatus" },
        });
        if let Some(t) = additional {
            action["additionalType"] = json!({ "@id": t });
        }
        if let (Some(d), Some(sha)) = (r.decision, r.sha256) {
            action["result"] = json!({ "@id": format!("{id}-result") });
            graph.push(json!({
                "@id": format!("{id}-result"),
                "@type": "PropertyValue",
                "name": "decision",
                "value": d,
                "description": format!("on the bytes with SHA-256 {sha}"),
            }));
        }
        mentions.push(json!({ "@id": id }));
        graph.push(action);
    }

    if let Some(head) = input.chain_head {
        mentions.push(json!({ "@id": "#audit-chain-head" }));
        graph.push(json!({
            "@id": "#audit-chain-head",
            "@type": "PropertyValue",
            "name": "audit chain head at release",
            "propertyID": "spe:audit-chain-head",
            "identifier": head.seq.to_string(),
            "value": head.sha256,
        }));
    }

    let mut root = json!({
        "@id": "./",
        "@type": "Dataset",
        "name": format!("Run {} of {}@{}", run.id, wf.name, wf.version),
        "description": format!(
            "The run, its approved workflow, datasets by id, reviews and released files, as {}.",
            input.service.name
        ),
        "datePublished": input.generated_at.to_rfc3339_micros(),
        "conformsTo": { "@id": PROFILE },
        "mainEntity": { "@id": workflow_id },
        "hasPart": file_ids.iter().map(|id| json!({ "@id": id })).collect::<Vec<_>>(),
        "mentions": mentions,
        "sourceOrganization": { "@id": project_id },
        "publisher": { "@id": input.service.organization_url },
    });
    root["identifier"] = json!(run.id.to_string());
    graph.push(root);
    graph
        .push(json!({ "@id": PROFILE, "@type": "Profile", "name": "Five Safes RO-Crate profile" }));
    graph.push(json!({
        "@id": project_id,
        "@type": "Project",
        "name": format!("{} ({})", input.service.name, input.service.organization),
        "identifier": input.service.id,
        "member": [{ "@id": input.service.organization_url }],
    }));
    graph.push(json!({
        "@id": input.service.organization_url,
        "@type": "Organization",
        "name": input.service.organization,
    }));

    let language = match wf.workflow_type {
        "NFL" => (
            "https://w3id.org/workflowhub/workflow-ro-crate#nextflow",
            "Nextflow",
        ),
        _ => (
            "https://w3id.org/workflowhub/workflow-ro-crate#snakemake",
            "Snakemake",
        ),
    };
    let mut workflow = json!({
        "@id": workflow_id,
        "@type": ["Dataset", "SoftwareSourceCode", "ComputationalWorkflow"],
        "name": wf.name,
        "version": wf.version,
        "conformsTo": { "@id": WORKFLOW_CRATE },
        "programmingLanguage": { "@id": language.0 },
    });
    if let Some(digest) = wf.digest {
        workflow["identifier"] = json!(format!("sha256:{digest}"));
        workflow["sha256"] = json!(digest);
    }
    graph.push(workflow);
    graph.push(json!({ "@id": language.0, "@type": "ComputerLanguage", "name": language.1 }));

    let mut action = json!({
        "@id": run_id,
        "@type": "CreateAction",
        "name": format!("Run {} of {}@{}", run.id, wf.name, wf.version),
        "identifier": run.id.to_string(),
        "actionStatus": { "@id": action_status(run.state) },
        "agent": { "@id": owner_id },
        "instrument": { "@id": workflow_id },
        "object": datasets,
        "result": file_ids.iter().map(|id| json!({ "@id": id })).collect::<Vec<_>>(),
        "description": format!("WES state {}", run.state.as_str()),
    });
    if let Some(t) = run.start_time {
        action["startTime"] = json!(t.to_rfc3339_micros());
    }
    if let Some(t) = run.end_time {
        action["endTime"] = json!(t.to_rfc3339_micros());
    }
    graph.push(action);

    for d in input.datasets {
        graph.push(json!({
            "@id": format!("#dataset-{}", encode(d)),
            "@type": "Dataset",
            "name": format!("dataset {d}"),
            "identifier": d,
        }));
    }
    for (f, id) in input.files.iter().zip(&file_ids) {
        graph.push(json!({
            "@id": id,
            "@type": "File",
            "name": f.path,
            "contentSize": f.size.to_string(),
            "sha256": f.sha256,
            "dateCreated": f.released_at.to_rfc3339_micros(),
        }));
    }
    graph.extend(people.into_iter().map(|(_, e)| e));

    json!({
        "@context": [CONTEXT, { "sha256": SHA256_TERM }],
        "@graph": graph,
    })
}

fn action_status(state: RunState) -> &'static str {
    match state {
        RunState::Complete => "http://schema.org/CompletedActionStatus",
        RunState::ExecutorError | RunState::SystemError | RunState::Canceled => {
            "http://schema.org/FailedActionStatus"
        }
        s if s.has_started() => "http://schema.org/ActiveActionStatus",
        _ => "http://schema.org/PotentialActionStatus",
    }
}

fn past(decision: &str) -> &str {
    match decision {
        "approve" => "approved",
        "reject" => "rejected",
        other => other,
    }
}

/// A stable, opaque id for a person: the SHA-256 of their (issuer, sub) key.
fn person_id(s: &Subject) -> String {
    format!(
        "#person-{}",
        &hex::encode(Sha256::digest(s.key().as_bytes()))[..32]
    )
}

fn agent_entity(actor: &Actor, project_id: &str) -> (String, Value) {
    match actor {
        Actor::Person(s) => {
            let id = person_id(s);
            let entity = json!({
                "@id": id,
                "@type": "Person",
                "name": s.sub(),
                // (issuer, sub): the person as the SPE knows them (docs/ro-crate.md).
                "identifier": s.key(),
                "memberOf": [{ "@id": project_id }],
            });
            (id, entity)
        }
        Actor::Service(s) => {
            let id = format!("#service-{}", s.as_str());
            let entity = json!({
                "@id": id,
                "@type": "SoftwareApplication",
                "name": format!("SPE {}", s.as_str()),
            });
            (id, entity)
        }
    }
}

/// Percent-encodes what may not stand in a relative IRI (or would change its meaning).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A released file's id: its path relative to the crate (which sits at `<run_id>/`), each
/// segment encoded, `/` kept.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}
