//! The workflow manifest (`workflow.yaml`): the contract a data controller signs when approving a
//! workflow version. Its JSON Schema is `docs/workflow-manifest.schema.json`.
//!
//! ```yaml
//! name: quals                       # [a-z0-9][a-z0-9_-]*, at most 64 characters
//! version: 1.0.0                    # letters, digits and . _ + -, at most 64 characters
//! description: Base-quality summary per sample.
//! engine: SMK                       # SMK (Snakemake) or NFL (Nextflow)
//! engine_version: ">=9, <10"        # comparators joined by commas; `*` for any
//! entry_point: Snakefile            # relative to the workflow folder
//! files: [Snakefile, scripts/q.py]  # optional: every regular file of the folder when absent
//! params:                           # JSON Schema of workflow_params (draft 2020-12 by default)
//!   type: object
//!   additionalProperties: false     # required: only declared parameters pass
//!   required: [dataset]
//!   properties:
//!     dataset: { type: string, x-spe-dataset: true }   # a dataset id, resolved to its location
//!     min_qual: { type: number, minimum: 0, maximum: 100 }
//! engine_parameters:                # what a researcher may set; each must be one the deployment offers
//!   cores: { type: integer, default: "1", min: 1, max: 2 }
//!   partition: { type: string, default: debug, allowed: [debug] }
//! egress:
//!   release: ["results/*.csv"]      # released automatically
//!   review: ["results/*.bam"]       # held for a data controller's review (review wins over release)
//!   max_file_bytes: 104857600       # larger files are held for review, never released automatically
//!   checks:                         # optional disclosure checks per glob (docs/egress.md)
//!     - { glob: "results/*.csv", columns: [n], min_cell_count: 10, max_rows: 1000,
//!         flag: [zeros, negatives, missing, all_same],
//!         dominance: { column: income, by: [region], n: 2, k: 90, p: 10 } }
//!     - { glob: "plots/*.svg", allow_types: [image] }   # images and binaries are held unless allowed
//!   release_states: [COMPLETE]      # optional: the terminal run states whose outputs are
//!                                   # released (default COMPLETE only; also EXECUTOR_ERROR,
//!                                   # SYSTEM_ERROR, CANCELED)
//!   release_logs: [stderr]          # optional: engine logs that may leave, each only after a
//!                                   # data controller's review (default none: the engine's
//!                                   # output stays inside; the owner sees the runner's summary)
//!   encrypt:                        # optional: released outputs stored Crypt4GH-encrypted to
//!     - { glob: "results/*.csv", with: crypt4gh }   # the service's key, each download's
//!                                   # header re-wrapped to the reader's key (docs/crypt4gh.md)
//! ```
//!
//! Dataset parameters: a top-level property of `params` of type string carrying
//! `x-spe-dataset: true` (or an array whose `items` carry it) takes dataset ids. Researchers name
//! datasets only by id; the run spec gets the registered locations ([`Manifest::resolve_datasets`]).
//!
//! String parameters are data ([`check_param_strings`]). Every string in `workflow_params` (keys
//! and values) has no `` ` $ ; | & < > \ ``, no control characters (NUL included) and at most
//! [`MAX_PARAM_STRING_LEN`] bytes. Unless its schema node has an explicit `pattern` (then the
//! pattern decides), a string also has no word starting with `-`, no URL scheme (`file:`,
//! `s3:`...), no `/` and no leading `~` or `..`: datasets are named only by dataset id.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{EngineParameterKind, EngineParameterSpec, WorkflowsConfig};
use crate::logjson::EngineLog;
use crate::request::{RequestError, WorkflowType};
use crate::state::RunState;

/// The manifest's file name inside a workflow folder. It is always one of the digested files.
pub const MANIFEST_FILE: &str = "workflow.yaml";
/// The keyword that marks a `params` property as a dataset id.
pub const DATASET_KEYWORD: &str = "x-spe-dataset";
/// Most files one workflow version may hold.
pub const MAX_FILES: usize = 1000;
/// Longest string (key or value) accepted anywhere in `workflow_params`.
pub const MAX_PARAM_STRING_LEN: usize = 1024;
/// Longest array accepted anywhere in `workflow_params`.
pub const MAX_PARAM_ARRAY_LEN: usize = 1000;
/// Characters refused in every `workflow_params` string: shell syntax and escapes.
pub const FORBIDDEN_PARAM_CHARS: &[char] = &['`', '$', ';', '|', '&', '<', '>', '\\'];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The workflow type, which names the engine: `SMK` (Snakemake) or `NFL` (Nextflow).
    pub engine: WorkflowType,
    /// The engine versions it runs on, e.g. `>=9, <10`; see [`VersionRange`].
    pub engine_version: String,
    pub entry_point: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// JSON Schema of `workflow_params`.
    pub params: Value,
    /// Engine parameters a researcher may set, by name.
    #[serde(default)]
    pub engine_parameters: BTreeMap<String, EngineParameterRule>,
    pub egress: EgressRules,
}

/// One engine parameter a researcher may set: its type, bounds and default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineParameterRule {
    #[serde(rename = "type")]
    pub kind: EngineParameterKind,
    /// Written as a string (`"1"`) or a number.
    #[serde(deserialize_with = "string_or_number")]
    pub default: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// For string parameters: the only values allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

impl EngineParameterRule {
    pub fn to_spec(&self, name: &str) -> EngineParameterSpec {
        EngineParameterSpec {
            name: name.to_owned(),
            kind: self.kind,
            default: self.default.clone(),
            min: self.min,
            max: self.max,
            allowed: self.allowed.clone(),
        }
    }
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRules {
    /// Output globs (relative to the run directory) released without a person looking.
    #[serde(default)]
    pub release: Vec<String>,
    /// Output globs held for a data controller's review. Review wins over release.
    #[serde(default)]
    pub review: Vec<String>,
    /// Files larger than this are held, never released automatically.
    pub max_file_bytes: u64,
    #[serde(default)]
    pub checks: Vec<OutputCheck>,
    /// The terminal run states whose outputs the rules apply to; a run that ended in any other
    /// state releases nothing. Default: COMPLETE only. Left out of the stored form when it is
    /// the default, so manifests stored before the field existed read back unchanged.
    #[serde(
        default = "default_release_states",
        skip_serializing_if = "is_default_release_states"
    )]
    pub release_states: Vec<RunState>,
    /// The engine's captured streams (`stdout`, `stderr`) that may leave as outputs do: each is
    /// the output `.weskit/<ts>/<stream>` of its run, held for a data controller's review
    /// (never released automatically, whatever `release` says). Default: none, and the run's
    /// owner sees only the runner's summary (state, exit code, reason). Left out of the stored
    /// form when empty, so manifests stored before the field existed read back unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_logs: Vec<EngineLog>,
    /// Released outputs (by glob) stored encrypted: the bucket never holds their plaintext,
    /// and each download is bound to its reader (docs/crypt4gh.md). Left out of the stored form
    /// when empty, so manifests stored before the field existed read back unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encrypt: Vec<EncryptRule>,
}

/// Outputs matching `glob` leave encrypted `with` the named format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptRule {
    pub glob: String,
    pub with: OutputEncryption,
}

/// How a released output is stored in the results bucket when not as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputEncryption {
    /// A Crypt4GH file encrypted to the service's public key; each download's header is
    /// re-wrapped to the reader's own key.
    Crypt4gh,
}

impl OutputEncryption {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputEncryption::Crypt4gh => "crypt4gh",
        }
    }

    pub fn parse(text: &str) -> Option<OutputEncryption> {
        (text == "crypt4gh").then_some(OutputEncryption::Crypt4gh)
    }
}

/// The terminal states `egress.release_states` may name.
pub const RELEASE_STATES: [RunState; 4] = [
    RunState::Complete,
    RunState::ExecutorError,
    RunState::SystemError,
    RunState::Canceled,
];

fn default_release_states() -> Vec<RunState> {
    vec![RunState::Complete]
}

fn is_default_release_states(states: &[RunState]) -> bool {
    states == [RunState::Complete]
}

/// Checks run on each output matching `glob` before it may be released; a file that fails, or
/// that needs a person (`review`), is held. What each does: docs/egress.md and
/// [`crate::disclosure`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCheck {
    pub glob: String,
    /// For CSV/TSV tables: every count cell must be 0 or at least this (small-cell suppression).
    /// [`DEFAULT_MIN_CELL_COUNT`] when only `columns` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cell_count: Option<u64>,
    /// The count columns by header name; every cell of each must be a count. When absent, every
    /// column with a digit in any cell is a count column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// For tables: at most this many data rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u64>,
    /// For tables: what to flag for a person's review in the count columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<Vec<TableFlag>>,
    /// For tables: the NK and p-ratio dominance rules on one contribution column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominance: Option<DominanceRule>,
    /// File kinds that are otherwise always held (images, binaries) released by this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_types: Option<Vec<AllowedType>>,
}

/// The small-cell threshold when a check names count columns without `min_cell_count`.
pub const DEFAULT_MIN_CELL_COUNT: u64 = 10;

impl OutputCheck {
    /// Whether any of the checks needs the file read as a table.
    pub fn has_table_checks(&self) -> bool {
        self.min_cell_count.is_some()
            || self.columns.is_some()
            || self.max_rows.is_some()
            || self.flag.is_some()
            || self.dominance.is_some()
    }

    /// The small-cell threshold, if this rule has a count check.
    pub fn cell_threshold(&self) -> Option<u64> {
        match (self.min_cell_count, &self.columns) {
            (Some(min), _) => Some(min),
            (None, Some(_)) => Some(DEFAULT_MIN_CELL_COUNT),
            (None, None) => None,
        }
    }

    fn check(&self, key: &str) -> Result<(), ManifestError> {
        check_glob(&self.glob).map_err(|e| at(&format!("{key}.glob"), e))?;
        if !self.has_table_checks() && self.allow_types.is_none() {
            return Err(at(
                key,
                "name a check: min_cell_count, columns, max_rows, flag, dominance or allow_types",
            ));
        }
        if self.min_cell_count == Some(0) {
            return Err(at(&format!("{key}.min_cell_count"), "must be at least 1"));
        }
        if self.max_rows == Some(0) {
            return Err(at(&format!("{key}.max_rows"), "must be at least 1"));
        }
        if let Some(columns) = &self.columns {
            check_names(columns, &format!("{key}.columns"))?;
        }
        if let Some(flags) = &self.flag {
            check_set(flags, &format!("{key}.flag"))?;
        }
        if let Some(types) = &self.allow_types {
            check_set(types, &format!("{key}.allow_types"))?;
        }
        if let Some(d) = &self.dominance {
            let key = format!("{key}.dominance");
            if d.column.trim().is_empty() {
                return Err(at(&format!("{key}.column"), "name the contribution column"));
            }
            if !d.by.is_empty() {
                check_names(&d.by, &format!("{key}.by"))?;
            }
            if d.by.contains(&d.column) {
                return Err(at(
                    &format!("{key}.by"),
                    "must not name the contribution column",
                ));
            }
            if d.n == 0 {
                return Err(at(&format!("{key}.n"), "must be at least 1"));
            }
            if !(1..=100).contains(&d.k) {
                return Err(at(&format!("{key}.k"), "a percentage from 1 to 100"));
            }
            if !(1..=100).contains(&d.p) {
                return Err(at(&format!("{key}.p"), "a percentage from 1 to 100"));
            }
        }
        Ok(())
    }
}

fn check_names(names: &[String], key: &str) -> Result<(), ManifestError> {
    if names.is_empty() {
        return Err(at(key, "list at least one column"));
    }
    let mut seen = BTreeSet::new();
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() || n.len() > 256 || n.chars().any(char::is_control) {
            return Err(at(
                &format!("{key}[{i}]"),
                "a column name of 1 to 256 bytes without control characters",
            ));
        }
        if !seen.insert(n.as_str()) {
            return Err(at(&format!("{key}[{i}]"), "listed twice"));
        }
    }
    Ok(())
}

fn check_set<T: Ord + fmt::Debug>(items: &[T], key: &str) -> Result<(), ManifestError> {
    if items.is_empty() {
        return Err(at(key, "list at least one (or leave the field out)"));
    }
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if !seen.insert(item) {
            return Err(at(&format!("{key}[{i}]"), "listed twice"));
        }
    }
    Ok(())
}

/// What a table check flags for review (ACRO's `negative`, `missing`, `all-values-are-same`,
/// plus zeros, which can reveal structural absences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableFlag {
    Zeros,
    Negatives,
    Missing,
    AllSame,
}

/// File kinds held unless a rule allows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedType {
    /// PNG, JPEG, GIF, TIFF, BMP, WebP, SVG.
    Image,
    /// Anything that is not UTF-8 text (NUL bytes, invalid UTF-8, PDF, archives...).
    Binary,
}

/// Dominance on a table of contributions: the rows sharing the values of the `by` columns make
/// one cell, whose contributions are their values in `column` (no `by`: the whole column is one
/// cell). A cell fails the NK rule when its `n` largest contributions exceed `k`% of its total,
/// and the p-ratio rule when its total less its two largest contributions is below `p`% of the
/// largest, as ACRO does (defaults N=2, K=90, p=10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DominanceRule {
    pub column: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    #[serde(default = "default_nk_n")]
    pub n: u32,
    /// Percent.
    #[serde(default = "default_nk_k")]
    pub k: u32,
    /// Percent.
    #[serde(default = "default_p_ratio")]
    pub p: u32,
}

fn default_nk_n() -> u32 {
    2
}

fn default_nk_k() -> u32 {
    90
}

fn default_p_ratio() -> u32 {
    10
}

/// A manifest that cannot be registered; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

fn at(field: &str, msg: impl fmt::Display) -> ManifestError {
    ManifestError(format!("{field}: {msg}"))
}

impl Manifest {
    /// Parses and checks `workflow.yaml` text.
    pub fn from_yaml(text: &str) -> Result<Manifest, ManifestError> {
        let doc: serde_yaml::Value = serde_yaml::from_str(text)
            .map_err(|e| ManifestError(format!("{MANIFEST_FILE} is not valid YAML: {e}")))?;
        let manifest: Manifest = serde_path_to_error::deserialize(doc)
            .map_err(|e| at(&e.path().to_string(), e.into_inner()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads a manifest back from its stored JSON form (as [`Manifest::to_json`] wrote it).
    pub fn from_json(value: &Value) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = serde_path_to_error::deserialize(value)
            .map_err(|e| at(&e.path().to_string(), e.into_inner()))?;
        manifest.check()?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// `name@version`, as `workflow_url` names it.
    pub fn workflow_ref(&self) -> WorkflowRef {
        WorkflowRef {
            name: self.name.clone(),
            version: self.version.clone(),
        }
    }

    /// Every rule that needs nothing but the manifest itself.
    pub fn check(&self) -> Result<(), ManifestError> {
        check_name(&self.name).map_err(|e| at("name", e))?;
        check_version(&self.version).map_err(|e| at("version", e))?;
        if self.description.len() > 4096
            || self
                .description
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(at(
                "description",
                "at most 4096 bytes of text without control characters",
            ));
        }
        VersionRange::parse(&self.engine_version).map_err(|e| at("engine_version", e))?;
        check_relative_path(&self.entry_point).map_err(|e| at("entry_point", e))?;
        if let Some(files) = &self.files {
            if files.len() > MAX_FILES {
                return Err(at("files", format!("at most {MAX_FILES} files")));
            }
            let mut seen = BTreeSet::new();
            for (i, file) in files.iter().enumerate() {
                check_relative_path(file).map_err(|e| at(&format!("files[{i}]"), e))?;
                if !seen.insert(file.as_str()) {
                    return Err(at(&format!("files[{i}]"), "listed twice"));
                }
            }
            if !seen.contains(self.entry_point.as_str()) {
                return Err(at("entry_point", "must be one of the listed files"));
            }
        }
        self.check_params_schema()?;
        for (name, rule) in &self.engine_parameters {
            let key = format!("engine_parameters.{}", shorten(name));
            if name.is_empty()
                || name.len() > 64
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(at(&key, "name it with letters, digits and _ only"));
            }
            let spec = rule.to_spec(name);
            if let (Some(min), Some(max)) = (spec.min, spec.max)
                && min > max
            {
                return Err(at(&format!("{key}.min"), "must not exceed max"));
            }
            spec.check_value(&spec.default)
                .map_err(|e| at(&format!("{key}.default"), e))?;
        }
        self.egress.check()?;
        Ok(())
    }

    fn check_params_schema(&self) -> Result<(), ManifestError> {
        let field = "params";
        let Value::Object(schema) = &self.params else {
            return Err(at(field, "must be a JSON Schema object"));
        };
        if schema.get("type") != Some(&Value::String("object".into())) {
            return Err(at(field, "must have `type: object`"));
        }
        if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(at(
                field,
                "must have `additionalProperties: false`, so that only declared parameters pass",
            ));
        }
        jsonschema::meta::validate(&self.params)
            .map_err(|e| at(field, format!("not a valid JSON Schema: {}", e.masked())))?;
        jsonschema::validator_for(&self.params)
            .map_err(|e| at(field, format!("cannot be compiled: {}", e.masked())))?;
        // The dataset keyword is honoured only where resolution looks for it.
        let allowed: BTreeSet<*const Value> = self
            .dataset_params()
            .iter()
            .filter_map(|p| self.dataset_marker_owner(&p.name, p.many))
            .map(|v| v as *const Value)
            .collect();
        let mut stack: Vec<(&Value, String)> = vec![(&self.params, field.to_owned())];
        while let Some((node, path)) = stack.pop() {
            match node {
                Value::Object(map) => {
                    if let Some(marker) = map.get(DATASET_KEYWORD) {
                        if marker != &Value::Bool(true) {
                            return Err(at(&path, format!("{DATASET_KEYWORD} must be true")));
                        }
                        if !allowed.contains(&(node as *const Value)) {
                            return Err(at(
                                &path,
                                format!(
                                    "{DATASET_KEYWORD} is honoured only on a top-level property \
                                     of type string, or on the `items` (type string) of a \
                                     top-level array property"
                                ),
                            ));
                        }
                    }
                    for (k, v) in map {
                        stack.push((v, format!("{path}.{k}")));
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        stack.push((v, format!("{path}[{i}]")));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The schema node that carries the dataset marker for a dataset parameter.
    fn dataset_marker_owner(&self, name: &str, many: bool) -> Option<&Value> {
        let prop = self.params.get("properties")?.get(name)?;
        if many { prop.get("items") } else { Some(prop) }
    }

    /// Top-level parameters that take dataset ids, per the `x-spe-dataset` keyword.
    pub fn dataset_params(&self) -> Vec<DatasetParam> {
        let Some(Value::Object(props)) = self.params.get("properties") else {
            return Vec::new();
        };
        let is_string = |v: &Value| v.get("type") == Some(&Value::String("string".into()));
        let marked = |v: &Value| v.get(DATASET_KEYWORD) == Some(&Value::Bool(true));
        let mut out = Vec::new();
        for (name, prop) in props {
            if marked(prop) && is_string(prop) {
                out.push(DatasetParam {
                    name: name.clone(),
                    many: false,
                });
            } else if prop.get("type") == Some(&Value::String("array".into()))
                && let Some(items) = prop.get("items")
                && marked(items)
                && is_string(items)
            {
                out.push(DatasetParam {
                    name: name.clone(),
                    many: true,
                });
            }
        }
        out
    }

    /// The dataset ids named in (already validated) params, with the field that names each.
    pub fn dataset_references(&self, params: &Map<String, Value>) -> Vec<DatasetReference> {
        let mut out = Vec::new();
        for p in self.dataset_params() {
            match params.get(&p.name) {
                Some(Value::String(id)) if !p.many => out.push(DatasetReference {
                    field: format!("workflow_params.{}", p.name),
                    param: p.name.clone(),
                    id: id.clone(),
                }),
                Some(Value::Array(ids)) if p.many => {
                    for (i, id) in ids.iter().enumerate() {
                        if let Value::String(id) = id {
                            out.push(DatasetReference {
                                field: format!("workflow_params.{}[{i}]", p.name),
                                param: p.name.clone(),
                                id: id.clone(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Params with every dataset id replaced by what `locate` returns for it (its location on
    /// the cluster), for the engine's params file. An id `locate` does not know is an error
    /// naming the field.
    pub fn resolve_datasets(
        &self,
        params: &Map<String, Value>,
        mut locate: impl FnMut(&str) -> Option<String>,
    ) -> Result<Map<String, Value>, RequestError> {
        let mut out = params.clone();
        for p in self.dataset_params() {
            let Some(value) = out.get_mut(&p.name) else {
                continue;
            };
            let mut one = |field: String, v: &mut Value| -> Result<(), RequestError> {
                let Value::String(id) = v else {
                    return Err(RequestError::new(field, "must be a dataset id"));
                };
                let path = locate(id).ok_or_else(|| {
                    RequestError::new(field, format!("unknown dataset {}", shorten(id)))
                })?;
                *v = Value::String(path);
                Ok(())
            };
            match value {
                Value::Array(items) if p.many => {
                    for (i, v) in items.iter_mut().enumerate() {
                        one(format!("workflow_params.{}[{i}]", p.name), v)?;
                    }
                }
                v => one(format!("workflow_params.{}", p.name), v)?,
            }
        }
        Ok(out)
    }

    /// Checks `workflow_params` against the manifest: the string rules of
    /// [`check_param_strings`], then the `params` schema, then the form of dataset ids. The error
    /// names the field and never echoes the value.
    pub fn check_params(&self, params: &Map<String, Value>) -> Result<(), RequestError> {
        self.check_params_with(&self.params_schema()?, params)
    }

    /// The `params` schema compiled, to check many requests without compiling it again.
    pub fn params_schema(&self) -> Result<ParamsSchema, RequestError> {
        jsonschema::validator_for(&self.params)
            .map(ParamsSchema)
            .map_err(|e| {
                RequestError::new(
                    "workflow_url",
                    format!("the workflow's params schema is unusable: {}", e.masked()),
                )
            })
    }

    /// [`Manifest::check_params`] with this manifest's schema compiled already.
    pub fn check_params_with(
        &self,
        schema: &ParamsSchema,
        params: &Map<String, Value>,
    ) -> Result<(), RequestError> {
        let as_value = Value::Object(params.clone());
        check_param_strings(&as_value, &self.params)?;
        if let Err(e) = schema.0.validate(&as_value) {
            let path = e.instance_path().to_string();
            let field = if path.is_empty() || path == "/" {
                "workflow_params".to_owned()
            } else {
                format!(
                    "workflow_params.{}",
                    path.trim_start_matches('/').replace('/', ".")
                )
            };
            return Err(RequestError::new(
                shorten(&field),
                shorten(&e.masked().to_string()),
            ));
        }
        for r in self.dataset_references(params) {
            check_dataset_id(&r.id).map_err(|e| RequestError::new(r.field, e))?;
        }
        Ok(())
    }

    /// Checks what depends on the deployment: its workflow types, an engine whose versions fit
    /// the range, and engine parameters it offers.
    pub fn check_against(&self, deployment: &WorkflowsConfig) -> Result<(), ManifestError> {
        let ty = self.engine;
        if !deployment.types.contains_key(&ty) {
            return Err(at("engine", format!("{ty} is not run by this deployment")));
        }
        let range =
            VersionRange::parse(&self.engine_version).map_err(|e| at("engine_version", e))?;
        let fits = deployment
            .engines
            .values()
            .filter(|e| e.workflow_type == ty)
            .flat_map(|e| e.versions.iter())
            .any(|v| range.matches(v));
        if !fits {
            return Err(at(
                "engine_version",
                format!("no {ty} engine version of this deployment is in the range"),
            ));
        }
        for (name, spec) in &self.engine_parameters {
            let key = format!("engine_parameters.{name}");
            let Some(offered) = deployment
                .engine_parameters
                .iter()
                .find(|d| &d.name == name)
            else {
                return Err(at(&key, "not an engine parameter of this deployment"));
            };
            if offered.kind != spec.kind {
                return Err(at(
                    &format!("{key}.type"),
                    format!("this deployment types it {}", offered.kind.as_str()),
                ));
            }
            offered
                .check_value(&spec.default)
                .map_err(|e| at(&format!("{key}.default"), e))?;
        }
        Ok(())
    }

    /// The engine parameters a researcher may set for this workflow here: the manifest's, each
    /// narrowed to the deployment's bounds. Deployment parameters the manifest does not list
    /// cannot be set; they keep the deployment's default (see [`Manifest::fixed_parameters`]).
    pub fn effective_engine_parameters(
        &self,
        deployment: &[EngineParameterSpec],
    ) -> Result<Vec<EngineParameterSpec>, RequestError> {
        let mut out = Vec::new();
        for (name, rule) in &self.engine_parameters {
            let spec = &rule.to_spec(name);
            let field = format!("workflow_engine_parameters.{}", spec.name);
            let Some(offered) = deployment.iter().find(|d| d.name == spec.name) else {
                continue;
            };
            if offered.kind != spec.kind {
                continue;
            }
            let narrowed = EngineParameterSpec {
                name: spec.name.clone(),
                kind: spec.kind,
                default: spec.default.clone(),
                min: match (spec.min, offered.min) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                max: match (spec.max, offered.max) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
                allowed: match (&spec.allowed, &offered.allowed) {
                    (Some(a), Some(b)) => {
                        Some(a.iter().filter(|x| b.contains(x)).cloned().collect())
                    }
                    (a, b) => a.clone().or_else(|| b.clone()),
                },
            };
            narrowed.check_value(&narrowed.default).map_err(|e| {
                RequestError::new(
                    field,
                    format!("the workflow's default does not fit this deployment: {e}"),
                )
            })?;
            out.push(narrowed);
        }
        Ok(out)
    }

    /// Deployment parameters this workflow does not let researchers set, with the deployment's
    /// defaults: they still apply to every run.
    pub fn fixed_parameters(&self, deployment: &[EngineParameterSpec]) -> BTreeMap<String, String> {
        deployment
            .iter()
            .filter(|d| !self.engine_parameters.contains_key(&d.name))
            .map(|d| (d.name.clone(), d.default.clone()))
            .collect()
    }

    /// Whether a given engine version satisfies the manifest's range.
    pub fn accepts_engine_version(&self, version: &str) -> bool {
        VersionRange::parse(&self.engine_version).is_ok_and(|r| r.matches(version))
    }
}

/// A manifest's compiled `params` schema ([`Manifest::params_schema`]).
pub struct ParamsSchema(jsonschema::Validator);

/// A parameter that takes dataset ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetParam {
    pub name: String,
    /// An array of ids rather than one.
    pub many: bool,
}

/// One dataset id named in `workflow_params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetReference {
    /// Where, e.g. `workflow_params.inputs[1]`.
    pub field: String,
    pub param: String,
    pub id: String,
}

impl EgressRules {
    fn check(&self) -> Result<(), ManifestError> {
        if self.max_file_bytes == 0 {
            return Err(at("egress.max_file_bytes", "must be at least 1"));
        }
        for (list, globs) in [("release", &self.release), ("review", &self.review)] {
            for (i, g) in globs.iter().enumerate() {
                check_glob(g).map_err(|e| at(&format!("egress.{list}[{i}]"), e))?;
            }
        }
        for (i, c) in self.checks.iter().enumerate() {
            c.check(&format!("egress.checks[{i}]"))?;
        }
        if self.release_states.is_empty() {
            return Err(at(
                "egress.release_states",
                "list at least one state (leave the field out for the default, [COMPLETE])",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, state) in self.release_states.iter().enumerate() {
            let key = format!("egress.release_states[{i}]");
            if !RELEASE_STATES.contains(state) {
                return Err(at(
                    &key,
                    format!(
                        "{state} is not a terminal state: expected one of COMPLETE, \
                         EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED"
                    ),
                ));
            }
            if !seen.insert(*state) {
                return Err(at(&key, format!("{state} listed twice")));
            }
        }
        for (i, rule) in self.encrypt.iter().enumerate() {
            check_glob(&rule.glob).map_err(|e| at(&format!("egress.encrypt[{i}].glob"), e))?;
        }
        let mut logs = BTreeSet::new();
        for (i, log) in self.release_logs.iter().enumerate() {
            if !logs.insert(*log) {
                return Err(at(
                    &format!("egress.release_logs[{i}]"),
                    format!("{log} listed twice"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the engine's `log` may leave (after review) under these rules.
    pub fn releases_log(&self, log: EngineLog) -> bool {
        self.release_logs.contains(&log)
    }

    /// Whether outputs of a run that ended in `state` may leave under these rules.
    pub fn releases_state(&self, state: RunState) -> bool {
        self.release_states.contains(&state)
    }

    /// Compiles the globs for [`EgressMatcher::classify`].
    pub fn matcher(&self) -> Result<EgressMatcher, ManifestError> {
        let build = |globs: &[String]| -> Result<GlobSet, ManifestError> {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(compile_glob(g).map_err(ManifestError)?);
            }
            b.build().map_err(|e| ManifestError(e.to_string()))
        };
        let checks = self
            .checks
            .iter()
            .map(|c| {
                Ok((
                    compile_glob(&c.glob)
                        .map_err(ManifestError)?
                        .compile_matcher(),
                    c.clone(),
                ))
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        Ok(EgressMatcher {
            release: build(&self.release)?,
            review: build(&self.review)?,
            max_file_bytes: self.max_file_bytes,
            checks,
            release_states: self.release_states.clone(),
            release_logs: self.release_logs.clone(),
            encrypt: self
                .encrypt
                .iter()
                .map(|r| {
                    Ok((
                        compile_glob(&r.glob)
                            .map_err(ManifestError)?
                            .compile_matcher(),
                        r.with,
                    ))
                })
                .collect::<Result<Vec<_>, ManifestError>>()?,
        })
    }
}

/// What happens to one output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDecision {
    /// Released automatically (after the listed checks pass).
    Release { checks: Vec<OutputCheck> },
    /// Held for a data controller's review, with why.
    Hold { reason: String },
    /// Matches no rule: it stays inside.
    Keep,
}

pub struct EgressMatcher {
    release: GlobSet,
    review: GlobSet,
    max_file_bytes: u64,
    checks: Vec<(globset::GlobMatcher, OutputCheck)>,
    release_states: Vec<RunState>,
    release_logs: Vec<EngineLog>,
    encrypt: Vec<(globset::GlobMatcher, OutputEncryption)>,
}

impl EgressMatcher {
    /// How the output at `relative_path` is stored once released: the first `encrypt` rule
    /// whose glob matches it, or as it is.
    pub fn encryption_for(&self, relative_path: &str) -> Option<OutputEncryption> {
        self.encrypt
            .iter()
            .find(|(m, _)| m.is_match(relative_path))
            .map(|(_, with)| *with)
    }

    /// Whether the engine's `log` may leave (after a data controller's review, never by itself).
    pub fn releases_log(&self, log: EngineLog) -> bool {
        self.release_logs.contains(&log)
    }

    /// Whether outputs of a run that ended in `state` may leave at all (`egress.release_states`).
    pub fn releases_state(&self, state: RunState) -> bool {
        self.release_states.contains(&state)
    }

    /// Decides for one output, by its path relative to the run directory and its size. Review
    /// wins over release; a file over the size limit is held.
    pub fn classify(&self, relative_path: &str, size: u64) -> EgressDecision {
        if self.review.is_match(relative_path) {
            return EgressDecision::Hold {
                reason: "matches a review rule".into(),
            };
        }
        if !self.release.is_match(relative_path) {
            return EgressDecision::Keep;
        }
        if size > self.max_file_bytes {
            return EgressDecision::Hold {
                reason: format!("larger than {} bytes", self.max_file_bytes),
            };
        }
        EgressDecision::Release {
            checks: self.checks_for(relative_path),
        }
    }

    /// The checks whose glob matches the path, whatever the release and review rules decide
    /// (a reviewer sees them run on a held file too).
    pub fn checks_for(&self, relative_path: &str) -> Vec<OutputCheck> {
        self.checks
            .iter()
            .filter(|(m, _)| m.is_match(relative_path))
            .map(|(_, c)| c.clone())
            .collect()
    }
}

fn compile_glob(g: &str) -> Result<Glob, String> {
    globset::GlobBuilder::new(g)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("not a valid glob: {e}"))
}

fn check_glob(g: &str) -> Result<(), String> {
    check_relative_path(g)?;
    compile_glob(g).map(|_| ())
}

/// A relative path inside a folder: `/`-separated, no empty, `.` or `..` component, no
/// backslash or control character, at most 1024 bytes.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 1024 {
        return Err("must be a relative path of 1 to 1024 bytes".into());
    }
    if path.starts_with('/') || path.starts_with('~') {
        return Err("must be relative to the workflow folder".into());
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err("must not contain backslashes or control characters".into());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("must not contain empty, `.` or `..` components".into());
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or_else(|| {
        "1 to 64 characters: lowercase letters, digits, - and _, starting with a letter or digit"
            .into()
    })
}

fn check_version(version: &str) -> Result<(), String> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
        && !version.contains("..");
    ok.then_some(()).ok_or_else(|| {
        "1 to 64 characters: letters, digits, . _ + -, starting with a letter or digit".into()
    })
}

/// A dataset id: 1 to 128 characters from letters, digits and `. _ -`, starting with a letter
/// or digit, with no `..`.
pub fn check_dataset_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.contains("..");
    ok.then_some(()).ok_or_else(|| {
        "must be a dataset id (letters, digits and . _ -), not a path; datasets are named by id"
            .into()
    })
}

/// `name@version`: how `workflow_url` names a registered workflow version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkflowRef {
    pub name: String,
    pub version: String,
}

impl WorkflowRef {
    pub fn new(name: &str, version: &str) -> Result<Self, String> {
        check_name(name).map_err(|e| format!("workflow name: {e}"))?;
        check_version(version).map_err(|e| format!("workflow version: {e}"))?;
        Ok(WorkflowRef {
            name: name.to_owned(),
            version: version.to_owned(),
        })
    }

    /// Parses `workflow_url`. Only the canonical form is accepted: no scheme, path, spaces or
    /// other spelling.
    pub fn parse(url: &str) -> Result<Self, String> {
        let form = || {
            "must name a registered workflow as name@version (e.g. quals@1.0.0); \
             GET /ga4gh/wes/v1/workflows lists them"
                .to_owned()
        };
        let (name, version) = url.split_once('@').ok_or_else(form)?;
        WorkflowRef::new(name, version).map_err(|_| form())
    }
}

impl fmt::Display for WorkflowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Refuses strings in `workflow_params` (keys and values, at any depth) that could name a path,
/// a URL, an option or carry shell syntax, and arrays longer than [`MAX_PARAM_ARRAY_LEN`].
///
/// `schema` is the manifest's `params` schema: a string value whose schema node (reached through
/// `properties`, `additionalProperties` and `items`) has an explicit `pattern` is held to that
/// pattern instead of the default rules ([`check_param_string`]); the rules every string keeps
/// (length, control characters, shell syntax) still apply. Keys always get the default rules.
pub fn check_param_strings(params: &Value, schema: &Value) -> Result<(), RequestError> {
    let mut stack: Vec<(&Value, String, Option<&Value>)> =
        vec![(params, "workflow_params".to_owned(), Some(schema))];
    while let Some((v, path, node)) = stack.pop() {
        match v {
            Value::String(s) => {
                let patterned = node.is_some_and(|n| n.get("pattern").is_some());
                check_param_string(s, patterned).map_err(|e| RequestError::new(&path, e))?
            }
            Value::Array(items) => {
                if items.len() > MAX_PARAM_ARRAY_LEN {
                    return Err(RequestError::new(
                        path,
                        format!("at most {MAX_PARAM_ARRAY_LEN} items"),
                    ));
                }
                let child = node.and_then(|n| n.get("items")).filter(|c| c.is_object());
                for (i, item) in items.iter().enumerate() {
                    stack.push((item, format!("{path}[{i}]"), child));
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let key_path = format!("{path}.{}", shorten(k));
                    if k.len() > 128 {
                        return Err(RequestError::new(
                            key_path,
                            "keys must be at most 128 bytes",
                        ));
                    }
                    check_param_string(k, false)
                        .map_err(|e| RequestError::new(&key_path, format!("key {e}")))?;
                    let child = node
                        .and_then(|n| {
                            n.get("properties")
                                .and_then(|p| p.get(k))
                                .or_else(|| n.get("additionalProperties"))
                        })
                        .filter(|c| c.is_object());
                    stack.push((item, key_path, child));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One `workflow_params` string. Always: at most [`MAX_PARAM_STRING_LEN`] bytes, no control
/// character (NUL included), none of [`FORBIDDEN_PARAM_CHARS`]. Unless the schema gives the
/// string an explicit `pattern` (`patterned`), also: no word starting with `-` (it could become
/// an engine or tool option), no URL scheme (`file:`, `s3:`, `https://`: engines open those), no
/// path separator and no leading `~` or `..` (datasets are named by id, never by path).
fn check_param_string(s: &str, patterned: bool) -> Result<(), String> {
    if s.len() > MAX_PARAM_STRING_LEN {
        return Err(format!("must be at most {MAX_PARAM_STRING_LEN} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if let Some(c) = s.chars().find(|c| FORBIDDEN_PARAM_CHARS.contains(c)) {
        return Err(format!("must not contain {c:?} (shell syntax is refused)"));
    }
    if patterned {
        return Ok(());
    }
    if s.split(|c: char| c.is_whitespace() || c == '=')
        .any(|w| w.starts_with('-'))
    {
        return Err(
            "must not start with `-`, nor have a word that does (it could become an option)".into(),
        );
    }
    if has_url_scheme(s) {
        return Err("must not contain a URL scheme; datasets are named by id".into());
    }
    if s.contains('/') {
        return Err("must not contain a path separator; datasets are named by id".into());
    }
    if s.starts_with('~') || s.starts_with("..") {
        return Err("must not be a path; datasets are named by id".into());
    }
    Ok(())
}

/// Whether a word of `s` begins with a URL scheme: a letter, then letters, digits or `+ . -`,
/// then `:` (`file:x`, `s3:b`, `https://h`). Words are split at whitespace, `=`, `,`, quotes
/// and brackets, so `x,file:y` and `'file:y'` count too.
fn has_url_scheme(s: &str) -> bool {
    s.split(|c: char| c.is_whitespace() || "=,'\"()[]{}".contains(c))
        .any(|word| {
            let Some((scheme, _)) = word.split_once(':') else {
                return false;
            };
            scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        })
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 200 {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(200).collect();
        s.push('…');
        s
    }
}

/// A version range: comparators (`>=`, `>`, `<=`, `<`, `=`, or none for `=`) joined by commas,
/// all of which must hold; `*` matches every version. Versions compare as dot-separated numbers
/// (missing components are 0); a version that is not numeric matches only `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange(Vec<(Op, Vec<u64>)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

impl VersionRange {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(VersionRange(Vec::new()));
        }
        if text.is_empty() || text.len() > 128 {
            return Err("give a range such as \">=9.0, <10\" or *".into());
        }
        let mut parts = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (op, rest) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("==", Op::Eq),
                ("=", Op::Eq),
            ]
            .into_iter()
            .find_map(|(p, op)| part.strip_prefix(p).map(|r| (op, r)))
            .unwrap_or((Op::Eq, part));
            let v = parse_version(rest.trim())
                .ok_or_else(|| format!("{part:?} is not a comparator such as >=9.0"))?;
            parts.push((op, v));
        }
        Ok(VersionRange(parts))
    }

    pub fn matches(&self, version: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(v) = parse_version(version) else {
            return false;
        };
        self.0.iter().all(|(op, bound)| {
            let ord = cmp_versions(&v, bound);
            match op {
                Op::Ge => ord.is_ge(),
                Op::Gt => ord.is_gt(),
                Op::Le => ord.is_le(),
                Op::Lt => ord.is_lt(),
                Op::Eq => ord.is_eq(),
            }
        })
    }
}

pub(crate) fn parse_version(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    text.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

fn cmp_versions(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    pub(crate) const QUALS: &str = r#"
name: quals
version: 1.0.0
description: Base-quality summary per sample.
engine: SMK
engine_version: ">=9.0, <10"
entry_point: Snakefile
files: [Snakefile, scripts/q.py]
params:
  type: object
  additionalProperties: false
  required: [dataset]
  properties:
    dataset: { type: string, x-spe-dataset: true }
    extra: { type: array, items: { type: string, x-spe-dataset: true }, maxItems: 4 }
    threshold: { type: number, minimum: 0, maximum: 1 }
    label: { type: string, maxLength: 40 }
engine_parameters:
  cores: { type: integer, default: 1, min: 1, max: 4 }
  partition: { type: string, default: debug, allowed: [debug, long] }
egress:
  release: ["results/*.csv", "results/**/*.txt"]
  review: ["results/secret*"]
  max_file_bytes: 1000
  checks:
    - { glob: "results/*.csv", min_cell_count: 5 }
"#;

    fn quals() -> Manifest {
        Manifest::from_yaml(QUALS).unwrap()
    }

    fn deployment() -> WorkflowsConfig {
        Config::parse(crate::config::tests::MINIMAL, Vec::new())
            .unwrap()
            .workflows
    }

    fn bad(edit: impl Fn(&str) -> String) -> String {
        Manifest::from_yaml(&edit(QUALS)).unwrap_err().0
    }

    #[test]
    fn a_full_manifest_parses_and_round_trips() {
        let m = quals();
        assert_eq!(m.workflow_ref().to_string(), "quals@1.0.0");
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        assert_eq!(
            m.dataset_params(),
            vec![
                DatasetParam {
                    name: "dataset".into(),
                    many: false
                },
                DatasetParam {
                    name: "extra".into(),
                    many: true
                }
            ]
        );
        m.check_against(&deployment()).unwrap();
    }

    #[test]
    fn manifest_errors_name_the_field() {
        assert!(bad(|s| s.replace("name: quals", "name: ../quals")).starts_with("name:"));
        assert!(bad(|s| s.replace("version: 1.0.0", "version: 1/../0")).starts_with("version:"));
        assert!(
            bad(|s| s.replace("entry_point: Snakefile", "entry_point: /etc/passwd"))
                .starts_with("entry_point:")
        );
        assert!(
            bad(|s| s.replace("scripts/q.py", "../q.py")).starts_with("files[1]:"),
            "{}",
            bad(|s| s.replace("scripts/q.py", "../q.py"))
        );
        assert!(
            bad(|s| s.replace("entry_point: Snakefile", "entry_point: main.smk"))
                .starts_with("entry_point:")
        );
        assert!(bad(|s| s.replace(">=9.0, <10", "newest")).starts_with("engine_version:"));
        assert!(
            bad(|s| s.replace("additionalProperties: false", "additionalProperties: true"))
                .starts_with("params:")
        );
        assert!(bad(|s| s.replace("minimum: 0,", "minimum: zero,")).starts_with("params:"));
        assert!(
            bad(|s| s.replace(
                "label: { type: string, maxLength: 40 }",
                "label: { type: object, properties: { d: { type: string, x-spe-dataset: true } } }"
            ))
            .contains("x-spe-dataset")
        );
        assert!(
            bad(|s| s.replace("default: 1,", "default: 9,"))
                .starts_with("engine_parameters.cores.default:")
        );
        assert!(
            bad(|s| s.replace("\"results/*.csv\", ", "\"../*.csv\", "))
                .starts_with("egress.release[0]:")
        );
        assert!(
            bad(|s| s.replace("max_file_bytes: 1000", "max_file_bytes: 0"))
                .starts_with("egress.max_file_bytes:")
        );
        assert!(
            bad(|s| s.replace("description:", "surprise: 1\ndescription:")).contains("surprise")
        );
    }

    #[test]
    fn deployment_fit_is_checked() {
        let m = Manifest::from_yaml(&QUALS.replace(">=9.0, <10", ">=10")).unwrap();
        assert!(
            m.check_against(&deployment())
                .unwrap_err()
                .0
                .starts_with("engine_version:")
        );
        let m = Manifest::from_yaml(&QUALS.replace("cores:", "gpus:")).unwrap();
        assert!(
            m.check_against(&deployment())
                .unwrap_err()
                .0
                .starts_with("engine_parameters.gpus:")
        );
    }

    #[test]
    fn engine_parameters_are_narrowed_to_the_deployment() {
        let m = quals();
        let eff = m
            .effective_engine_parameters(&deployment().engine_parameters)
            .unwrap();
        let cores = eff.iter().find(|s| s.name == "cores").unwrap();
        assert_eq!((cores.min, cores.max), (Some(1), Some(4)));
        let partition = eff.iter().find(|s| s.name == "partition").unwrap();
        assert_eq!(
            partition.allowed.as_deref(),
            Some(&["debug".to_owned(), "long".to_owned()][..])
        );
        let only_cores = Manifest::from_yaml(&QUALS.replace(
            "  partition: { type: string, default: debug, allowed: [debug, long] }\n",
            "",
        ))
        .unwrap();
        assert_eq!(
            only_cores.fixed_parameters(&deployment().engine_parameters),
            BTreeMap::from([("partition".to_owned(), "debug".to_owned())])
        );
    }

    fn params(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn strings_are_data_unless_a_pattern_says_otherwise() {
        let m = Manifest::from_yaml(&QUALS.replace(
            "    label: { type: string, maxLength: 40 }\n",
            "    label: { type: string, maxLength: 40 }\n    \
             region: { type: string, pattern: \"^[a-z0-9]+:[a-z0-9/-]+$\" }\n    \
             tags: { type: object, additionalProperties: { type: string } }\n",
        ))
        .unwrap();
        let refused = |label: &str| {
            m.check_params(&params(json!({"dataset": "d", "label": label})))
                .unwrap_err()
        };
        for (label, says) in [
            ("-x", "`-`"),
            ("x --ref=y", "`-`"),
            ("x=-y", "`-`"),
            ("file:///other/dataset/x", "URL scheme"),
            ("file:x", "URL scheme"),
            ("a,s3:bucket", "URL scheme"),
            ("x --ref=/data/other", "`-`"),
            ("data/other", "path separator"),
            ("~root", "path"),
            ("..", "path"),
            ("a\0b", "control"),
        ] {
            let e = refused(label);
            assert_eq!(e.field, "workflow_params.label", "{label}");
            assert!(e.reason.contains(says), "{label}: {}", e.reason);
        }
        // Nested strings without a pattern get the same rules.
        let e = m
            .check_params(&params(json!({"dataset": "d", "tags": {"a": "-rf"}})))
            .unwrap_err();
        assert_eq!(e.field, "workflow_params.tags.a");
        // Plain words pass.
        m.check_params(&params(
            json!({"dataset": "d", "label": "sample 1, run_2.x"}),
        ))
        .unwrap();
        // An explicit pattern decides: what it allows passes, what it does not is refused.
        m.check_params(&params(json!({"dataset": "d", "region": "chr1:100-200/x"})))
            .unwrap();
        let e = m
            .check_params(&params(json!({"dataset": "d", "region": "-chr1"})))
            .unwrap_err();
        assert_eq!(e.field, "workflow_params.region");
        // Shell syntax and control characters stay refused whatever the pattern.
        let shell = Manifest::from_yaml(&QUALS.replace(
            "    label: { type: string, maxLength: 40 }\n",
            "    label: { type: string, pattern: \".*\" }\n",
        ))
        .unwrap();
        for label in ["$(id)", "a\0b"] {
            let e = shell
                .check_params(&params(json!({"dataset": "d", "label": label})))
                .unwrap_err();
            assert_eq!(e.field, "workflow_params.label");
        }
        // Dataset parameters take only dataset ids, pattern or not.
        let e = m
            .check_params(&params(json!({"dataset": "file:x"})))
            .unwrap_err();
        assert_eq!(e.field, "workflow_params.dataset");
    }

    #[test]
    fn params_are_checked_and_errors_name_the_field() {
        let m = quals();
        m.check_params(&params(json!({"dataset": "demo-1", "threshold": 0.5})))
            .unwrap();
        let field = |v: Value| m.check_params(&params(v)).unwrap_err().field;
        assert_eq!(field(json!({})), "workflow_params");
        assert_eq!(
            field(json!({"dataset": "d", "threshold": 2})),
            "workflow_params.threshold"
        );
        assert_eq!(field(json!({"dataset": "d", "nope": 1})), "workflow_params");
        assert_eq!(
            field(json!({"dataset": "/etc/passwd"})),
            "workflow_params.dataset"
        );
        assert_eq!(
            field(json!({"dataset": "../../x"})),
            "workflow_params.dataset"
        );
        assert_eq!(field(json!({"dataset": "a..b"})), "workflow_params.dataset");
        assert_eq!(
            field(json!({"dataset": "d", "label": "x; rm -rf /"})),
            "workflow_params.label"
        );
        assert_eq!(
            field(json!({"dataset": "d", "label": "$(id)"})),
            "workflow_params.label"
        );
        assert_eq!(
            field(json!({"dataset": "d", "label": "a\nb"})),
            "workflow_params.label"
        );
        assert_eq!(
            field(json!({"dataset": "d", "label": "x".repeat(5000)})),
            "workflow_params.label"
        );
        assert_eq!(
            field(json!({"dataset": "d", "extra": ["ok", "sub/../../x"]})),
            "workflow_params.extra[1]"
        );
        assert_eq!(
            field(json!({"dataset": "d", "extra": ["a b"]})),
            "workflow_params.extra[0]"
        );
        // Messages never echo the value.
        let err = m
            .check_params(&params(
                json!({"dataset": "d", "label": "SECRETSECRET".repeat(10)}),
            ))
            .unwrap_err();
        assert!(!err.reason.contains("SECRETSECRET"), "{err}");
    }

    #[test]
    fn datasets_are_listed_and_resolved() {
        let m = quals();
        let p = params(json!({"dataset": "demo-1", "extra": ["a", "b"], "threshold": 0.1}));
        let refs = m.dataset_references(&p);
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[2].field, "workflow_params.extra[1]");
        let resolved = m
            .resolve_datasets(&p, |id| Some(format!("/data/{id}")))
            .unwrap();
        assert_eq!(resolved["dataset"], "/data/demo-1");
        assert_eq!(resolved["extra"], json!(["/data/a", "/data/b"]));
        assert_eq!(resolved["threshold"], json!(0.1));
        let err = m
            .resolve_datasets(&p, |id| (id != "b").then(|| format!("/data/{id}")))
            .unwrap_err();
        assert_eq!(err.field, "workflow_params.extra[1]");
    }

    #[test]
    fn workflow_refs_are_canonical() {
        assert_eq!(
            WorkflowRef::parse("quals@1.0.0").unwrap().to_string(),
            "quals@1.0.0"
        );
        for bad in [
            "quals",
            "quals@",
            "@1.0",
            "../quals@1.0.0",
            "quals@../../etc",
            "quals@1.0.0@2",
            "Quals@1.0.0",
            "https://x/quals@1.0.0",
            "quals@1.0.0; rm -rf /",
            "quals @1.0.0",
            "/srv/workflows/quals@1.0.0",
            &format!("quals@{}", "1".repeat(100)),
        ] {
            assert!(WorkflowRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn output_checks_read_back_and_errors_name_the_field() {
        let with = |check: &str| {
            QUALS.replace(
                "    - { glob: \"results/*.csv\", min_cell_count: 5 }",
                &format!("    - {check}"),
            )
        };
        let full = with(
            "{ glob: \"results/*.csv\", columns: [n, m], max_rows: 100, \
             flag: [zeros, missing], dominance: { column: income, by: [region] }, \
             allow_types: [image, binary] }",
        );
        let m = Manifest::from_yaml(&full).unwrap();
        let c = &m.egress.checks[0];
        assert_eq!(c.cell_threshold(), Some(DEFAULT_MIN_CELL_COUNT));
        assert_eq!(c.flag, Some(vec![TableFlag::Zeros, TableFlag::Missing]));
        let d = c.dominance.as_ref().unwrap();
        assert_eq!((d.n, d.k, d.p), (2, 90, 10));
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        // A manifest stored before the new fields reads back and serializes unchanged.
        let old = quals().to_json();
        assert_eq!(
            old["egress"]["checks"],
            json!([{"glob": "results/*.csv", "min_cell_count": 5}])
        );
        assert_eq!(Manifest::from_json(&old).unwrap().to_json(), old);
        for (check, field) in [
            ("{ glob: \"a.csv\" }", "egress.checks[0]:"),
            (
                "{ glob: \"../a.csv\", max_rows: 1 }",
                "egress.checks[0].glob:",
            ),
            (
                "{ glob: \"a.csv\", min_cell_count: 0 }",
                "egress.checks[0].min_cell_count:",
            ),
            (
                "{ glob: \"a.csv\", max_rows: 0 }",
                "egress.checks[0].max_rows:",
            ),
            (
                "{ glob: \"a.csv\", columns: [] }",
                "egress.checks[0].columns:",
            ),
            (
                "{ glob: \"a.csv\", columns: [n, n] }",
                "egress.checks[0].columns[1]:",
            ),
            (
                "{ glob: \"a.csv\", flag: [zeros, zeros] }",
                "egress.checks[0].flag[1]:",
            ),
            (
                "{ glob: \"a.csv\", flag: [tiny] }",
                "egress.checks[0].flag[0]:",
            ),
            (
                "{ glob: \"a.csv\", allow_types: [] }",
                "egress.checks[0].allow_types:",
            ),
            (
                "{ glob: \"a.csv\", allow_types: [video] }",
                "egress.checks[0].allow_types[0]:",
            ),
            (
                "{ glob: \"a.csv\", dominance: { column: x, k: 0 } }",
                "egress.checks[0].dominance.k:",
            ),
            (
                "{ glob: \"a.csv\", dominance: { column: x, p: 101 } }",
                "egress.checks[0].dominance.p:",
            ),
            (
                "{ glob: \"a.csv\", dominance: { column: x, n: 0 } }",
                "egress.checks[0].dominance.n:",
            ),
            (
                "{ glob: \"a.csv\", dominance: { column: x, by: [x] } }",
                "egress.checks[0].dominance.by:",
            ),
            (
                "{ glob: \"a.csv\", dominance: { column: \" \" } }",
                "egress.checks[0].dominance.column:",
            ),
            (
                "{ glob: \"a.csv\", dominance: { column: x, typo: 1 } }",
                "egress.checks[0].dominance.typo:",
            ),
        ] {
            let e = Manifest::from_yaml(&with(check)).unwrap_err().0;
            assert!(e.starts_with(field), "{check}: {e}");
        }
    }

    #[test]
    fn release_states_default_to_complete_only() {
        let m = quals();
        assert_eq!(m.egress.release_states, vec![RunState::Complete]);
        assert!(m.egress.releases_state(RunState::Complete));
        let matcher = m.egress.matcher().unwrap();
        assert!(matcher.releases_state(RunState::Complete));
        for state in [
            RunState::ExecutorError,
            RunState::SystemError,
            RunState::Canceled,
        ] {
            assert!(!m.egress.releases_state(state), "{state}");
            assert!(!matcher.releases_state(state), "{state}");
        }
        // The default is left out of the stored form: manifests stored before the field
        // existed read back (and serialize) unchanged.
        assert!(m.to_json()["egress"].get("release_states").is_none());
    }

    #[test]
    fn release_states_may_name_other_terminal_states() {
        let text = QUALS.replace(
            "max_file_bytes: 1000",
            "max_file_bytes: 1000\n  release_states: [COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED]",
        );
        let m = Manifest::from_yaml(&text).unwrap();
        assert_eq!(m.egress.release_states, RELEASE_STATES.to_vec());
        let matcher = m.egress.matcher().unwrap();
        for state in RELEASE_STATES {
            assert!(matcher.releases_state(state), "{state}");
        }
        assert_eq!(
            m.to_json()["egress"]["release_states"],
            json!(["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"])
        );
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);

        let only_failed = QUALS.replace(
            "max_file_bytes: 1000",
            "max_file_bytes: 1000\n  release_states: [EXECUTOR_ERROR]",
        );
        let m = Manifest::from_yaml(&only_failed).unwrap();
        assert!(m.egress.releases_state(RunState::ExecutorError));
        assert!(!m.egress.releases_state(RunState::Complete));
    }

    #[test]
    fn release_states_errors_name_the_field() {
        let with = |states: &str| {
            bad(|s| {
                s.replace(
                    "max_file_bytes: 1000",
                    &format!("max_file_bytes: 1000\n  release_states: {states}"),
                )
            })
        };
        for (states, field) in [
            ("[RUNNING]", "egress.release_states[0]:"),
            ("[COMPLETE, QUEUED]", "egress.release_states[1]:"),
            ("[COMPLETE, PREEMPTED]", "egress.release_states[1]:"),
            ("[CANCELING]", "egress.release_states[0]:"),
            ("[COMPLETE, COMPLETE]", "egress.release_states[1]:"),
            ("[FAILED]", "egress.release_states[0]:"),
            ("[complete]", "egress.release_states[0]:"),
            ("[]", "egress.release_states:"),
            ("COMPLETE", "egress.release_states:"),
        ] {
            let e = with(states);
            assert!(e.starts_with(field), "{states}: {e}");
        }
        assert!(with("[RUNNING]").contains("not a terminal state"));
        assert!(with("[COMPLETE, COMPLETE]").contains("listed twice"));
        // A stored manifest is checked the same way when read back.
        let mut stored = quals().to_json();
        stored["egress"]["release_states"] = json!(["PAUSED"]);
        assert!(
            Manifest::from_json(&stored)
                .unwrap_err()
                .0
                .starts_with("egress.release_states[0]:")
        );
    }

    #[test]
    fn an_encrypt_rule_names_the_outputs_stored_encrypted() {
        let m = quals();
        assert!(m.egress.encrypt.is_empty());
        assert!(m.to_json()["egress"].get("encrypt").is_none());
        assert_eq!(
            m.egress.matcher().unwrap().encryption_for("results.csv"),
            None
        );

        let text = QUALS.replace(
            "max_file_bytes: 1000",
            "max_file_bytes: 1000\n  encrypt: [{glob: \"*.csv\", with: crypt4gh}]",
        );
        let m = Manifest::from_yaml(&text).unwrap();
        let matcher = m.egress.matcher().unwrap();
        assert_eq!(
            matcher.encryption_for("results.csv"),
            Some(OutputEncryption::Crypt4gh)
        );
        assert_eq!(matcher.encryption_for("plots/quals.svg"), None);
        assert_eq!(
            m.to_json()["egress"]["encrypt"],
            json!([{"glob": "*.csv", "with": "crypt4gh"}])
        );
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);

        for (rule, want) in [
            ("[{glob: \"*.csv\", with: gpg}]", "egress"),
            (
                "[{glob: \"../x\", with: crypt4gh}]",
                "egress.encrypt[0].glob:",
            ),
            ("[{glob: \"*.csv\"}]", "egress"),
        ] {
            let e = bad(|s| {
                s.replace(
                    "max_file_bytes: 1000",
                    &format!("max_file_bytes: 1000\n  encrypt: {rule}"),
                )
            });
            assert!(e.starts_with(want), "{rule}: {e}");
        }
    }

    #[test]
    fn engine_logs_stay_inside_unless_the_manifest_names_them() {
        let m = quals();
        assert!(m.egress.release_logs.is_empty());
        assert!(!m.egress.releases_log(EngineLog::Stdout));
        assert!(!m.egress.releases_log(EngineLog::Stderr));
        // The default is left out of the stored form: stored manifests read back unchanged.
        assert!(m.to_json()["egress"].get("release_logs").is_none());

        let text = QUALS.replace(
            "max_file_bytes: 1000",
            "max_file_bytes: 1000\n  release_logs: [stderr]",
        );
        let m = Manifest::from_yaml(&text).unwrap();
        assert!(m.egress.releases_log(EngineLog::Stderr));
        assert!(!m.egress.releases_log(EngineLog::Stdout));
        assert_eq!(m.to_json()["egress"]["release_logs"], json!(["stderr"]));
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);

        for (logs, field) in [
            ("[stderr, stderr]", "egress.release_logs[1]:"),
            ("[log.json]", "egress.release_logs[0]:"),
            ("[STDERR]", "egress.release_logs[0]:"),
            ("stderr", "egress.release_logs:"),
        ] {
            let e = bad(|s| {
                s.replace(
                    "max_file_bytes: 1000",
                    &format!("max_file_bytes: 1000\n  release_logs: {logs}"),
                )
            });
            assert!(e.starts_with(field), "{logs}: {e}");
        }
    }

    #[test]
    fn egress_rules_classify_outputs() {
        let m = quals().egress.matcher().unwrap();
        assert!(matches!(
            m.classify("results/a.csv", 10),
            EgressDecision::Release { ref checks } if checks.len() == 1
        ));
        assert!(matches!(
            m.classify("results/x/y/z.txt", 10),
            EgressDecision::Release { ref checks } if checks.is_empty()
        ));
        assert!(matches!(
            m.classify("results/a.csv", 1001),
            EgressDecision::Hold { .. }
        ));
        assert!(matches!(
            m.classify("results/secret.csv", 1),
            EgressDecision::Hold { .. }
        ));
        assert_eq!(m.classify("results/sub/a.csv", 1), EgressDecision::Keep);
        assert_eq!(m.classify("input.bam", 1), EgressDecision::Keep);
    }

    #[test]
    fn the_example_workflows_parse_and_fit_the_dev_deployment() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dev = std::fs::read_to_string(root.join("deploy/config/spe.dev.yaml")).unwrap();
        let dev = Config::parse(&dev, Vec::new()).unwrap().workflows;
        for name in ["quals", "fail-demo", "sleep-demo", "hello-nf"] {
            let path = root.join("workflows").join(name).join(MANIFEST_FILE);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let m = Manifest::from_yaml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(m.name, name);
            m.check_against(&dev)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            m.effective_engine_parameters(&dev.engine_parameters)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The documented JSON Schema accepts every example, and refuses a broken one.
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("docs/workflow-manifest.schema.json")).unwrap(),
        )
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for name in ["quals", "fail-demo", "sleep-demo", "hello-nf"] {
            let path = root.join("workflows").join(name).join(MANIFEST_FILE);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            if let Err(e) = validator.validate(&doc) {
                panic!("{name}: {e}");
            }
        }
        let broken: Value =
            serde_yaml::from_str(&QUALS.replace("Snakefile", "../Snakefile")).unwrap();
        assert!(!validator.is_valid(&broken));
        // egress.release_states: the schema and the parser agree.
        for (states, ok) in [
            ("[COMPLETE, EXECUTOR_ERROR]", true),
            ("[CANCELED, SYSTEM_ERROR]", true),
            ("[RUNNING]", false),
            ("[COMPLETE, COMPLETE]", false),
            ("[]", false),
        ] {
            let text = QUALS.replace(
                "max_file_bytes: 1000",
                &format!("max_file_bytes: 1000\n  release_states: {states}"),
            );
            let doc: Value = serde_yaml::from_str(&text).unwrap();
            assert_eq!(validator.is_valid(&doc), ok, "schema: {states}");
            assert_eq!(Manifest::from_yaml(&text).is_ok(), ok, "parser: {states}");
        }
        let quals = std::fs::read_to_string(root.join("workflows/quals/workflow.yaml")).unwrap();
        let quals = Manifest::from_yaml(&quals).unwrap();
        assert_eq!(quals.dataset_params()[0].name, "dataset");
    }

    #[test]
    fn version_ranges() {
        let r = VersionRange::parse(">=9.0, <10").unwrap();
        assert!(r.matches("9.27"));
        assert!(r.matches("9"));
        assert!(!r.matches("10.0"));
        assert!(!r.matches("8.99"));
        assert!(!r.matches("DSL2"));
        assert!(VersionRange::parse("*").unwrap().matches("anything"));
        assert!(VersionRange::parse("24.10").unwrap().matches("24.10.0"));
        assert!(VersionRange::parse(">= 9 ,<= 9.5").unwrap().matches("9.5"));
        assert!(VersionRange::parse("~9").is_err());
        assert!(VersionRange::parse("").is_err());
    }
}
