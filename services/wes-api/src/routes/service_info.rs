//! `GET /service-info`: public, so that clients can discover how to authenticate.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::startup::AppState;
use crate::wes::{
    DefaultWorkflowEngineParameter, Organization, ServiceInfo, ServiceType, WorkflowEngineVersion,
    WorkflowTypeVersion,
};

pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let config = &state.config;
    let service = &config.service;
    let counts = state.store.state_counts().await?;
    let info = ServiceInfo {
        id: service.id.clone(),
        name: service.name.clone(),
        service_type: ServiceType {
            group: "org.ga4gh",
            artifact: "wes",
            version: "1.1.0",
        },
        description: service.description.clone(),
        organization: Organization {
            name: service.organization.name.clone(),
            url: service.organization.url.to_string(),
        },
        contact_url: service.contact_url.as_ref().map(ToString::to_string),
        documentation_url: service.documentation_url.as_ref().map(ToString::to_string),
        environment: service.environment.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        workflow_type_versions: config
            .workflows
            .types
            .iter()
            .map(|(ty, versions)| {
                (
                    ty.as_str().to_owned(),
                    WorkflowTypeVersion {
                        workflow_type_version: versions.clone(),
                    },
                )
            })
            .collect(),
        supported_wes_versions: vec!["1.1.0".into()],
        // Inputs are datasets registered on the cluster's file system, named by id.
        supported_filesystem_protocols: vec!["file".into()],
        workflow_engine_versions: config
            .workflows
            .engines
            .iter()
            .map(|(name, engine)| {
                (
                    name.clone(),
                    WorkflowEngineVersion {
                        workflow_engine_version: engine.versions.clone(),
                    },
                )
            })
            .collect(),
        default_workflow_engine_parameters: config
            .workflows
            .engine_parameters
            .iter()
            .map(|p| DefaultWorkflowEngineParameter {
                name: p.name.clone(),
                kind: p.kind.as_str().to_owned(),
                default_value: p.default.clone(),
            })
            .collect(),
        system_state_counts: counts
            .into_iter()
            .map(|(state, n)| (state.as_str().to_owned(), n))
            .collect::<BTreeMap<_, _>>(),
        auth_instructions_url: service.auth_instructions_url.to_string(),
        // How jobs are isolated is part of what a researcher or auditor relies on.
        tags: {
            let mut tags = service.tags.clone();
            tags.insert("sandbox".into(), config.slurm.sandbox.as_str().into());
            // The Crypt4GH public key data providers encrypt to (also at /keys/service.pub).
            if let Some(key) = &state.service_key {
                tags.insert(
                    "crypt4gh_public_key".into(),
                    key.to_pem().lines().nth(1).unwrap_or_default().into(),
                );
            }
            // The key that checks released packages' signed RO-Crates (also /keys/receipt.pub).
            if let Some(line) = &state.receipt_key {
                tags.insert(
                    "receipt_public_key".into(),
                    line.trim_start_matches("ed25519 ").into(),
                );
            }
            tags
        },
    };
    Ok(HttpResponse::Ok().json(info))
}
