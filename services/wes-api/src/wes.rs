//! WES 1.1 response bodies, field for field as the spec names them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use spe_core::RunState;
use spe_core::request::Tags;
use spe_core::time::Timestamp;
use spe_store::{RunRecord, RunSummaryRecord};

#[derive(Serialize)]
pub struct RunId {
    pub run_id: String,
}

#[derive(Serialize)]
pub struct RunStatus {
    pub run_id: String,
    pub state: RunState,
}

#[derive(Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub state: RunState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl RunSummary {
    fn new(
        id: spe_core::RunId,
        state: RunState,
        start_time: Option<Timestamp>,
        end_time: Option<Timestamp>,
        tags: &Tags,
    ) -> Self {
        RunSummary {
            run_id: id.to_string(),
            state,
            start_time: start_time.map(|t| t.to_wes()),
            end_time: end_time.map(|t| t.to_wes()),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

impl From<&RunRecord> for RunSummary {
    fn from(run: &RunRecord) -> Self {
        let tags = &run.submission.tags;
        RunSummary::new(run.id, run.state, run.start_time, run.end_time, tags)
    }
}

impl From<&RunSummaryRecord> for RunSummary {
    fn from(run: &RunSummaryRecord) -> Self {
        RunSummary::new(run.id, run.state, run.start_time, run.end_time, &run.tags)
    }
}

#[derive(Serialize)]
pub struct RunListResponse {
    pub runs: Vec<RunSummary>,
    /// Empty when there are no more pages, as the spec says.
    pub next_page_token: String,
}

#[derive(Serialize, Default)]
pub struct Log {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub system_logs: Vec<String>,
}

#[derive(Serialize)]
pub struct RunLog {
    pub run_id: String,
    pub request: Value,
    pub state: RunState,
    pub run_log: Log,
    pub task_logs_url: String,
    pub outputs: Value,
}

#[derive(Serialize)]
pub struct TaskLog {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub log: Log,
}

#[derive(Serialize)]
pub struct TaskListResponse {
    pub task_logs: Vec<TaskLog>,
    pub next_page_token: String,
}

#[derive(Serialize)]
pub struct ServiceType {
    pub group: &'static str,
    pub artifact: &'static str,
    pub version: &'static str,
}

#[derive(Serialize)]
pub struct Organization {
    pub name: String,
    pub url: String,
}

#[derive(Serialize)]
pub struct WorkflowTypeVersion {
    pub workflow_type_version: Vec<String>,
}

#[derive(Serialize)]
pub struct WorkflowEngineVersion {
    pub workflow_engine_version: Vec<String>,
}

#[derive(Serialize)]
pub struct DefaultWorkflowEngineParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub default_value: String,
}

#[derive(Serialize)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub service_type: ServiceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub organization: Organization,
    #[serde(rename = "contactUrl", skip_serializing_if = "Option::is_none")]
    pub contact_url: Option<String>,
    #[serde(rename = "documentationUrl", skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub version: String,
    pub workflow_type_versions: BTreeMap<String, WorkflowTypeVersion>,
    pub supported_wes_versions: Vec<String>,
    pub supported_filesystem_protocols: Vec<String>,
    pub workflow_engine_versions: BTreeMap<String, WorkflowEngineVersion>,
    pub default_workflow_engine_parameters: Vec<DefaultWorkflowEngineParameter>,
    pub system_state_counts: BTreeMap<String, i64>,
    pub auth_instructions_url: String,
    pub tags: BTreeMap<String, String>,
}
