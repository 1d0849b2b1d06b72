//! `workflows`: the languages and engines this deployment runs, and the engine parameters a
//! researcher may set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, default_true};
use crate::request::WorkflowType;

/// Which workflow languages and engines this deployment runs, and which engine parameters a
/// researcher may set.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct WorkflowsConfig {
    /// Accepted `workflow_type_version`s per `workflow_type`.
    pub types: BTreeMap<WorkflowType, Vec<String>>,
    /// Engines by the name used in `workflow_engine`.
    pub engines: BTreeMap<String, EngineConfig>,
    #[serde(default)]
    pub engine_parameters: Vec<EngineParameterSpec>,
    /// Whether approving a workflow version needs a data controller other than the one who
    /// registered it (four eyes). On by default.
    #[serde(default = "default_true")]
    pub require_distinct_approver: bool,
    /// Where workflows uploaded as tar.gz are unpacked, one read-only folder per version
    /// (default: `<data_dir>/.registry`; see [`Config::upload_dir`]). On a cluster it must be on
    /// the shared file system, like `data_dir`.
    #[serde(default)]
    pub upload_dir: Option<PathBuf>,
    /// Most bytes an uploaded workflow may unpack to (the sum of its files' sizes).
    #[serde(default = "default_upload_max_bytes")]
    pub upload_max_bytes: u64,
}

fn default_upload_max_bytes() -> u64 {
    64 * 1024 * 1024
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub workflow_type: WorkflowType,
    pub versions: Vec<String>,
    /// The engine executable on compute nodes: a path, or a name found on `slurm.job_path`.
    #[serde(default)]
    pub executable: Option<String>,
}

/// One engine parameter a researcher may set in `workflow_engine_parameters`.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineParameterSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EngineParameterKind,
    pub default: String,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// For string parameters: the only values allowed.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EngineParameterKind {
    Integer,
    String,
}

impl EngineParameterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineParameterKind::Integer => "integer",
            EngineParameterKind::String => "string",
        }
    }
}

impl EngineParameterSpec {
    /// Checks one value against this parameter's type and bounds; the message is fit for a
    /// client (it never echoes more than a short prefix of the value).
    pub fn check_value(&self, value: &str) -> Result<(), String> {
        match self.kind {
            EngineParameterKind::Integer => {
                let n: i64 = value.parse().map_err(|_| "must be an integer".to_owned())?;
                if let Some(min) = self.min
                    && n < min
                {
                    return Err(format!("must be at least {min}"));
                }
                if let Some(max) = self.max
                    && n > max
                {
                    return Err(format!("must be at most {max}"));
                }
                Ok(())
            }
            EngineParameterKind::String => match &self.allowed {
                Some(allowed) if !allowed.iter().any(|a| a == value) => {
                    Err(format!("must be one of: {}", allowed.join(", ")))
                }
                _ if value.len() > 256 => Err("must be at most 256 characters".into()),
                _ if value.chars().any(|c| c.is_control()) => {
                    Err("must not contain control characters".into())
                }
                _ => Ok(()),
            },
        }
    }
}

impl WorkflowsConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.types.is_empty() {
            return Err(ConfigError::at(
                "workflows.types",
                "name at least one workflow type",
            ));
        }
        for (ty, versions) in &self.types {
            if versions.is_empty() {
                return Err(ConfigError::at(
                    &format!("workflows.types.{ty}"),
                    "list at least one version",
                ));
            }
        }
        for (name, engine) in &self.engines {
            if !self.types.contains_key(&engine.workflow_type) {
                return Err(ConfigError::at(
                    &format!("workflows.engines.{name}.workflow_type"),
                    format!("{} is not listed in workflows.types", engine.workflow_type),
                ));
            }
            if engine.versions.is_empty() {
                return Err(ConfigError::at(
                    &format!("workflows.engines.{name}.versions"),
                    "list at least one version",
                ));
            }
            // Manifests name engine versions by range (`>=9, <10`): a version no range can
            // compare would silently never fit one.
            for (i, version) in engine.versions.iter().enumerate() {
                if crate::manifest::parse_version(version).is_none() {
                    return Err(ConfigError::at(
                        &format!("workflows.engines.{name}.versions[{i}]"),
                        "a version is numbers separated by dots, e.g. 9.27",
                    ));
                }
            }
        }
        if self
            .upload_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(ConfigError::at("workflows.upload_dir", "must not be empty"));
        }
        ConfigError::at_least("workflows.upload_max_bytes", self.upload_max_bytes, 1)?;
        for (i, spec) in self.engine_parameters.iter().enumerate() {
            let key = format!("workflows.engine_parameters[{i}]");
            if spec.name.is_empty()
                || !spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(ConfigError::at(
                    &format!("{key}.name"),
                    "use letters, digits and _ only",
                ));
            }
            spec.check_value(&spec.default)
                .map_err(|e| ConfigError::at(&format!("{key}.default"), e))?;
        }
        Ok(())
    }
}
