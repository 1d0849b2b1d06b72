//! The Five Safes RO-Crate 0.4 builder checked against the profile's requirements.
//!
//! Not `rocrate-validator` (PyPI `roc-validator` 0.13): it ships no Five Safes profile (only
//! RO-Crate 1.1-1.3, Workflow RO-Crate, the Run Crates and a few others), and even its RO-Crate
//! checks fetch the JSON-LD context from w3id.org (`--offline` serves only a cache that must
//! first be filled from the network), so it cannot run offline in CI. The profile's required
//! entities are written here as assertions instead, in one function,
//! [`five_safes_violations`], each rule quoting the profile's wording (docs/ro-crate.md).

use std::collections::BTreeMap;

use serde_json::Value;
use spe_core::rocrate::*;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, ServiceActor, Subject};

const STATUSES: [&str; 4] = [
    "http://schema.org/PotentialActionStatus",
    "http://schema.org/ActiveActionStatus",
    "http://schema.org/CompletedActionStatus",
    "http://schema.org/FailedActionStatus",
];

fn ids(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(ids).collect(),
        Value::Object(o) => o
            .get("@id")
            .and_then(Value::as_str)
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn types(e: &Value) -> Vec<String> {
    match &e["@type"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every rule of the profile (0.4) this crate is held to; an empty list means it conforms.
fn five_safes_violations(doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let graph: BTreeMap<String, &Value> = doc["@graph"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|e| Some((e["@id"].as_str()?.to_owned(), e)))
                .collect()
        })
        .unwrap_or_default();
    let get = |id: &str| graph.get(id).copied();
    // "The RO-Crate Metadata File MUST conform to RO-Crate 1.2 (or later minor version)",
    // declared in the metadata file descriptor.
    if !doc["@context"]
        .to_string()
        .contains("https://w3id.org/ro/crate/1.2/context")
    {
        bad.push("@context is not RO-Crate 1.2".into());
    }
    match get("ro-crate-metadata.json") {
        Some(d)
            if ids(&d["about"]) == ["./"]
                && ids(&d["conformsTo"])
                    .iter()
                    .any(|c| c.starts_with(RO_CRATE)) => {}
        _ => bad.push("no metadata descriptor about ./ conforming to RO-Crate 1.2".into()),
    }
    // "The root data entity ... MUST have the @id equal ./"; it SHOULD conform to the profile.
    let Some(root) = get("./") else {
        bad.push("no root data entity ./".into());
        return bad;
    };
    if !types(root).contains(&"Dataset".to_owned()) {
        bad.push("root is not a Dataset".into());
    }
    if !ids(&root["conformsTo"]).contains(&PROFILE.to_owned())
        || get(PROFILE).map(types) != Some(vec!["Profile".to_owned()])
    {
        bad.push("root does not conform to the Five Safes profile entity".into());
    }
    // "MUST reference a Workflow RO-Crate Dataset as its mainEntity".
    let main = ids(&root["mainEntity"]);
    match main.first().and_then(|m| get(m)) {
        Some(w)
            if types(w).contains(&"Dataset".to_owned())
                && types(w).contains(&"ComputationalWorkflow".to_owned())
                && ids(&w["conformsTo"])
                    == ["https://w3id.org/workflowhub/workflow-ro-crate/1.0"] => {}
        _ => bad.push("mainEntity is not a Workflow RO-Crate ComputationalWorkflow".into()),
    }
    // "MUST include a CreateAction, which MUST be referenced from mentions of the root";
    // "MUST reference the Workflow Crate using instrument"; the requesting person "MUST be
    // indicated as an agent".
    let mentions = ids(&root["mentions"]);
    let creates: Vec<&Value> = mentions
        .iter()
        .filter_map(|m| get(m))
        .filter(|e| types(e) == ["CreateAction"])
        .collect();
    if creates.len() != 1 {
        bad.push(format!(
            "{} CreateActions in mentions, not 1",
            creates.len()
        ));
    }
    for c in &creates {
        if ids(&c["instrument"]) != main {
            bad.push("CreateAction's instrument is not the mainEntity".into());
        }
        match ids(&c["agent"]).first().and_then(|a| get(a)) {
            Some(p) if types(p) == ["Person"] => {}
            _ => bad.push("CreateAction has no Person agent".into()),
        }
        let status = ids(&c["actionStatus"]);
        if status.len() != 1 || !STATUSES.contains(&status[0].as_str()) {
            bad.push(format!(
                "actionStatus {status:?} is not a schema.org status"
            ));
        }
        // "Each input MUST have a corresponding data entity."
        for input in ids(&c["object"]) {
            if get(&input).is_none() {
                bad.push(format!("input {input} has no entity"));
            }
        }
        // Outputs: data entities, part of the crate, with their checksum.
        for output in ids(&c["result"]) {
            match get(&output) {
                Some(f) if types(f) == ["File"] && f["sha256"].is_string() => {}
                _ => bad.push(format!("result {output} is not a File with a sha256")),
            }
            if !ids(&root["hasPart"]).contains(&output) {
                bad.push(format!("result {output} is not in the root's hasPart"));
            }
        }
    }
    // "The project ... MUST be indicated from the root dataset using sourceOrganization to a
    // Project."
    match ids(&root["sourceOrganization"])
        .first()
        .and_then(|p| get(p))
    {
        Some(p) if types(p) == ["Project"] => {}
        _ => bad.push("sourceOrganization is not a Project".into()),
    }
    // Review phases: AssessActions with an agent and a completed status.
    for m in &mentions {
        let Some(e) = get(m) else {
            bad.push(format!("mention {m} has no entity"));
            continue;
        };
        if types(e) == ["AssessAction"] {
            if ids(&e["agent"]).first().and_then(|a| get(a)).is_none() {
                bad.push(format!("{m} has no agent entity"));
            }
            if ids(&e["actionStatus"]) != ["http://schema.org/CompletedActionStatus"] {
                bad.push(format!("{m} is not completed"));
            }
        }
    }
    // Every local reference resolves (RO-Crate: a contextual entity for each `#` id).
    for e in graph.values() {
        if let Value::Object(o) = e {
            for v in o.values() {
                for r in ids(v) {
                    if r.starts_with('#') && get(&r).is_none() {
                        bad.push(format!("dangling reference {r}"));
                    }
                }
            }
        }
    }
    bad
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_micros(s * 1_000_000)
}

fn sample(owner: &Subject, dc: &Actor, approver: &Subject) -> Value {
    let run = RunId::new_random();
    let crawler = Actor::Service(ServiceActor::Crawler);
    let datasets = vec!["cohort-2026".to_owned()];
    let reviews = vec![
        CrateReview {
            seq: 1,
            kind: "vote",
            decision: Some("approve"),
            path: Some("results/table one.csv"),
            actor: dc,
            sha256: Some("aa"),
            at: ts(50),
        },
        CrateReview {
            seq: 2,
            kind: "vote",
            decision: Some("reject"),
            path: Some("results/secret-name.csv"),
            actor: dc,
            sha256: Some("bb"),
            at: ts(51),
        },
        CrateReview {
            seq: 3,
            kind: "reset",
            decision: None,
            path: Some("results/table one.csv"),
            actor: &crawler,
            sha256: None,
            at: ts(52),
        },
    ];
    let files = vec![CrateFile {
        path: "results/table one.csv",
        size: 12,
        sha256: "aa",
        released_at: ts(60),
    }];
    five_safes_crate(&CrateInput {
        service: CrateService {
            id: "org.example.spe",
            name: "SPE",
            organization: "Example",
            organization_url: "https://example.org",
        },
        run: CrateRun {
            id: run,
            state: RunState::Complete,
            owner,
            created_at: ts(1),
            start_time: Some(ts(2)),
            end_time: Some(ts(40)),
        },
        workflow: CrateWorkflow {
            name: "quals",
            version: "1.0.0",
            workflow_type: "SMK",
            digest: Some("d1d1"),
            approved_by: Some(approver),
            approved_at: Some(ts(0)),
        },
        datasets: &datasets,
        reviews: &reviews,
        files: &files,
        chain_head: Some(CrateChainHead {
            seq: 42,
            sha256: "c0ffee",
        }),
        generated_at: ts(61),
    })
}

#[test]
fn a_run_crate_meets_the_five_safes_profile() {
    let owner = Subject::new("https://login.example.org", "alice").unwrap();
    let dc = Actor::Person(Subject::new("https://login.example.org", "dc").unwrap());
    let approver = Subject::new("https://login.example.org", "approver").unwrap();
    let doc = sample(&owner, &dc, &approver);
    assert_eq!(five_safes_violations(&doc), Vec::<String>::new(), "{doc:#}");

    let graph = doc["@graph"].as_array().unwrap();
    let by_type = |t: &str| -> Vec<&Value> {
        graph
            .iter()
            .filter(|e| types(e).contains(&t.to_owned()))
            .collect()
    };
    // The approved workflow with its digest; the dataset by id; the released file's checksum.
    let wf = by_type("ComputationalWorkflow")[0];
    assert_eq!(wf["identifier"], "sha256:d1d1");
    assert_eq!(
        by_type("Dataset")
            .iter()
            .filter(|d| d["identifier"] == "cohort-2026")
            .count(),
        1
    );
    let file = graph
        .iter()
        .find(|e| e["@id"] == "results/table%20one.csv")
        .unwrap();
    assert_eq!(
        (file["sha256"].as_str(), file["contentSize"].as_str()),
        (Some("aa"), Some("12"))
    );
    // Reviews as AssessActions: the two votes as disclosure checks, the approval as sign-off.
    let assess = by_type("AssessAction");
    let kinds: Vec<&str> = assess
        .iter()
        .filter_map(|a| a["additionalType"]["@id"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "https://w3id.org/shp#SignOff",
            "https://w3id.org/shp#DisclosureCheck",
            "https://w3id.org/shp#DisclosureCheck"
        ]
    );
    assert_eq!(assess.len(), 4);
    // The chain head at release is in the crate (and so under its signature).
    let head = graph
        .iter()
        .find(|e| e["@id"] == "#audit-chain-head")
        .unwrap();
    assert_eq!(
        (head["identifier"].as_str(), head["value"].as_str()),
        (Some("42"), Some("c0ffee"))
    );
    // A file that was not released is never named.
    assert!(!doc.to_string().contains("secret-name"), "{doc:#}");
}

#[test]
fn the_rules_catch_a_crate_that_breaks_them() {
    let owner = Subject::new("https://login.example.org", "alice").unwrap();
    let dc = Actor::Person(owner.clone());
    let mut doc = sample(&owner, &dc, &owner);
    let graph = doc["@graph"].as_array_mut().unwrap();
    // Drop the CreateAction and a file's checksum.
    graph.retain(|e| e["@type"] != "CreateAction");
    for e in graph.iter_mut() {
        if e["@type"] == "File" {
            e.as_object_mut().unwrap().remove("sha256");
        }
    }
    let bad = five_safes_violations(&doc);
    assert!(
        bad.contains(&"0 CreateActions in mentions, not 1".to_owned()),
        "{bad:?}"
    );
    assert!(
        bad.iter().any(|b| b.starts_with("mention #run-")),
        "{bad:?}"
    );
}
