//! A WES `RunRequest`, parsed once at the edge into checked domain values.
//!
//! The HTTP layer turns either a JSON body or multipart form fields into [`RunRequestFields`];
//! [`RunSubmission::parse`] then checks every field against the deployment's policy. Every
//! refusal is a [`RequestError`] that names the field, so a client always learns what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::WorkflowsConfig;

/// A workflow language this service runs: Snakemake or Nextflow, by WESkit's type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WorkflowType {
    #[serde(rename = "SMK")]
    Snakemake,
    #[serde(rename = "NFL")]
    Nextflow,
}

impl WorkflowType {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowType::Snakemake => "SMK",
            WorkflowType::Nextflow => "NFL",
        }
    }
}

impl fmt::Display for WorkflowType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkflowType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "SMK" => Ok(WorkflowType::Snakemake),
            "NFL" => Ok(WorkflowType::Nextflow),
            _ => Err(()),
        }
    }
}

/// A refused request: which field, and why. Shown to the client as a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RequestError {
    pub field: String,
    pub reason: String,
}

impl RequestError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RequestError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The fields of a RunRequest as they arrived, before any check. JSON-encoded form fields
/// (`workflow_params`, `tags`, `workflow_engine_parameters`) are already decoded to JSON values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunRequestFields {
    pub workflow_params: Option<Value>,
    pub workflow_type: Option<String>,
    pub workflow_type_version: Option<String>,
    pub tags: Option<Value>,
    pub workflow_engine: Option<String>,
    pub workflow_engine_version: Option<String>,
    pub workflow_engine_parameters: Option<Value>,
    pub workflow_url: Option<String>,
    /// Names of attached files (contents are handled, or refused, by the HTTP layer).
    pub workflow_attachment: Vec<String>,
}

/// The form fields WES names, in the spec's order.
pub const FORM_FIELDS: [&str; 9] = [
    "workflow_params",
    "workflow_type",
    "workflow_type_version",
    "tags",
    "workflow_engine",
    "workflow_engine_version",
    "workflow_engine_parameters",
    "workflow_url",
    "workflow_attachment",
];

/// Fields whose form value is JSON text.
const JSON_FORM_FIELDS: [&str; 3] = ["workflow_params", "tags", "workflow_engine_parameters"];

impl RunRequestFields {
    /// Reads an `application/json` RunRequest body.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| RequestError::new("body", format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(RequestError::new(
                "body",
                "must be a JSON object (a RunRequest)",
            ));
        };
        let mut fields = RunRequestFields::default();
        for (key, value) in map {
            match key.as_str() {
                "workflow_params" => fields.workflow_params = Some(value),
                "tags" => fields.tags = Some(value),
                "workflow_engine_parameters" => fields.workflow_engine_parameters = Some(value),
                "workflow_type" => fields.workflow_type = json_string(&key, value)?,
                "workflow_type_version" => fields.workflow_type_version = json_string(&key, value)?,
                "workflow_engine" => fields.workflow_engine = json_string(&key, value)?,
                "workflow_engine_version" => {
                    fields.workflow_engine_version = json_string(&key, value)?
                }
                "workflow_url" => fields.workflow_url = json_string(&key, value)?,
                "workflow_attachment" => {
                    return Err(RequestError::new(
                        "workflow_attachment",
                        "files can only be attached with multipart/form-data",
                    ));
                }
                other => return Err(unknown_field(other)),
            }
        }
        Ok(fields)
    }

    /// Takes one text field of a multipart/form-data RunRequest.
    pub fn set_form_field(&mut self, name: &str, text: String) -> Result<(), RequestError> {
        let duplicate = || RequestError::new(name, "given more than once");
        let decode = |text: &str| -> Result<Value, RequestError> {
            serde_json::from_str(text)
                .map_err(|e| RequestError::new(name, format!("must be JSON text: {e}")))
        };
        if JSON_FORM_FIELDS.contains(&name) && text.trim().is_empty() {
            // Some clients send empty parts for absent optional fields.
            return Ok(());
        }
        let slot_json = match name {
            "workflow_params" => Some(&mut self.workflow_params),
            "tags" => Some(&mut self.tags),
            "workflow_engine_parameters" => Some(&mut self.workflow_engine_parameters),
            _ => None,
        };
        if let Some(slot) = slot_json {
            if slot.is_some() {
                return Err(duplicate());
            }
            *slot = Some(decode(&text)?);
            return Ok(());
        }
        let slot = match name {
            "workflow_type" => &mut self.workflow_type,
            "workflow_type_version" => &mut self.workflow_type_version,
            "workflow_engine" => &mut self.workflow_engine,
            "workflow_engine_version" => &mut self.workflow_engine_version,
            "workflow_url" => &mut self.workflow_url,
            other => return Err(unknown_field(other)),
        };
        if slot.is_some() {
            return Err(duplicate());
        }
        *slot = Some(text);
        Ok(())
    }
}

fn json_string(field: &str, value: Value) -> Result<Option<String>, RequestError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(RequestError::new(field, "must be a string")),
    }
}

fn unknown_field(name: &str) -> RequestError {
    let shown: String = name.chars().take(64).collect();
    RequestError::new(
        shown,
        format!(
            "unknown field; a RunRequest has only {}",
            FORM_FIELDS.join(", ")
        ),
    )
}

/// Limits on what one request may carry, beyond the body size limit.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_KEY_LEN: usize = 64;
pub const MAX_TAG_VALUE_LEN: usize = 256;
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_PARAMS_DEPTH: usize = 32;

/// A tag key: 1 to 64 characters from letters, digits and `_ . - /`. A colon is excluded
/// because the list filter reads `tag=key:value`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TagKey(String);

impl TagKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_TAG_KEY_LEN {
            return Err(format!(
                "tag keys must be 1 to {MAX_TAG_KEY_LEN} characters"
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        {
            return Err("tag keys may hold only letters, digits and _ . - /".into());
        }
        Ok(TagKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checked tags: at most [`MAX_TAGS`], keys per [`TagKey`], values printable text.
/// Deserializing applies the same checks as parsing a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Map<String, Value>", try_from = "Map<String, Value>")]
pub struct Tags(BTreeMap<TagKey, String>);

impl From<Tags> for Map<String, Value> {
    fn from(tags: Tags) -> Self {
        tags.0
            .into_iter()
            .map(|(k, v)| (k.0, Value::String(v)))
            .collect()
    }
}

impl TryFrom<Map<String, Value>> for Tags {
    type Error = RequestError;
    fn try_from(map: Map<String, Value>) -> Result<Self, Self::Error> {
        Tags::parse(Some(Value::Object(map)))
    }
}

impl Tags {
    pub fn parse(value: Option<Value>) -> Result<Self, RequestError> {
        let field = "tags";
        let map = match value {
            None | Some(Value::Null) => return Ok(Tags::default()),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(RequestError::new(
                    field,
                    "must be a JSON object of string values",
                ));
            }
        };
        if map.len() > MAX_TAGS {
            return Err(RequestError::new(field, format!("at most {MAX_TAGS} tags")));
        }
        let mut tags = BTreeMap::new();
        for (key, value) in map {
            let key = TagKey::parse(&key).map_err(|e| RequestError::new(field, e))?;
            let Value::String(value) = value else {
                return Err(RequestError::new(
                    format!("tags.{}", key.as_str()),
                    "must be a string",
                ));
            };
            check_text(&value, MAX_TAG_VALUE_LEN)
                .map_err(|e| RequestError::new(format!("tags.{}", key.as_str()), e))?;
            tags.insert(key, value);
        }
        Ok(Tags(tags))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.0.clone(), Value::String(v.clone())))
                .collect(),
        )
    }
}

/// A `tag=key:value` filter of the run list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    pub key: TagKey,
    pub value: String,
}

impl FromStr for TagFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = s
            .split_once(':')
            .ok_or_else(|| "tag filters have the form key:value".to_owned())?;
        Ok(TagFilter {
            key: TagKey::parse(key)?,
            value: value.to_owned(),
        })
    }
}

fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!("must be at most {max} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// A run request that passed every check, ready to be stored.
///
/// Its serde form is the request as WES shows it back (`RunLog.request`), which is also how the
/// store keeps it: what was accepted is read back field for field, never guessed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSubmission {
    pub workflow_type: WorkflowType,
    pub workflow_type_version: String,
    pub workflow_url: String,
    pub workflow_params: Map<String, Value>,
    pub workflow_engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_engine_version: Option<String>,
    /// Only parameters the deployment allows, with their defaults filled in.
    pub workflow_engine_parameters: BTreeMap<String, String>,
    pub tags: Tags,
}

impl RunSubmission {
    pub fn parse(fields: RunRequestFields, policy: &WorkflowsConfig) -> Result<Self, RequestError> {
        if !fields.workflow_attachment.is_empty() {
            return Err(RequestError::new(
                "workflow_attachment",
                "this service runs only registered, approved workflows; attached files are not accepted",
            ));
        }
        let type_text = required(fields.workflow_type, "workflow_type")?;
        let supported_types = || {
            policy
                .types
                .keys()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let workflow_type: WorkflowType = type_text
            .parse()
            .ok()
            .filter(|t| policy.types.contains_key(t))
            .ok_or_else(|| {
                RequestError::new(
                    "workflow_type",
                    format!("must be one of: {}", supported_types()),
                )
            })?;
        let type_version = required(fields.workflow_type_version, "workflow_type_version")?;
        let versions = policy
            .types
            .get(&workflow_type)
            .cloned()
            .unwrap_or_default();
        if !versions.contains(&type_version) {
            return Err(RequestError::new(
                "workflow_type_version",
                format!(
                    "{workflow_type} versions supported here: {}",
                    versions.join(", ")
                ),
            ));
        }

        let workflow_url = required(fields.workflow_url, "workflow_url")?;
        if workflow_url.trim().is_empty() {
            return Err(RequestError::new("workflow_url", "must not be empty"));
        }
        check_text(&workflow_url, MAX_URL_LEN).map_err(|e| RequestError::new("workflow_url", e))?;

        let workflow_params = match fields.workflow_params {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(RequestError::new(
                    "workflow_params",
                    "must be a JSON object",
                ));
            }
        };
        if json_depth(&Value::Object(workflow_params.clone())) > MAX_PARAMS_DEPTH {
            return Err(RequestError::new(
                "workflow_params",
                format!("nested deeper than {MAX_PARAMS_DEPTH} levels"),
            ));
        }

        let engines_for_type: Vec<&String> = policy
            .engines
            .iter()
            .filter(|(_, e)| e.workflow_type == workflow_type)
            .map(|(name, _)| name)
            .collect();
        let workflow_engine = match fields.workflow_engine {
            Some(engine) => {
                if !engines_for_type.contains(&&engine) {
                    return Err(RequestError::new(
                        "workflow_engine",
                        format!(
                            "engines for {workflow_type} here: {}",
                            join(&engines_for_type)
                        ),
                    ));
                }
                engine
            }
            None => match engines_for_type.first() {
                Some(engine) => (*engine).clone(),
                None => {
                    return Err(RequestError::new(
                        "workflow_type",
                        format!("no engine for {workflow_type} is configured here"),
                    ));
                }
            },
        };
        let workflow_engine_version = match fields.workflow_engine_version {
            None => None,
            Some(version) => {
                let known = policy
                    .engines
                    .get(&workflow_engine)
                    .map(|e| e.versions.clone())
                    .unwrap_or_default();
                if !known.contains(&version) {
                    return Err(RequestError::new(
                        "workflow_engine_version",
                        format!("{workflow_engine} versions here: {}", known.join(", ")),
                    ));
                }
                Some(version)
            }
        };

        let workflow_engine_parameters =
            engine_parameters(fields.workflow_engine_parameters, policy)?;
        let tags = Tags::parse(fields.tags)?;

        Ok(RunSubmission {
            workflow_type,
            workflow_type_version: type_version,
            workflow_url,
            workflow_params,
            workflow_engine,
            workflow_engine_version,
            workflow_engine_parameters,
            tags,
        })
    }

    /// The request as WES shows it back in `RunLog.request`.
    pub fn to_wes_request(&self) -> Value {
        let mut request = Map::new();
        request.insert(
            "workflow_params".into(),
            Value::Object(self.workflow_params.clone()),
        );
        request.insert("workflow_type".into(), self.workflow_type.as_str().into());
        request.insert(
            "workflow_type_version".into(),
            self.workflow_type_version.clone().into(),
        );
        request.insert("tags".into(), self.tags.to_json());
        request.insert(
            "workflow_engine".into(),
            self.workflow_engine.clone().into(),
        );
        if let Some(version) = &self.workflow_engine_version {
            request.insert("workflow_engine_version".into(), version.clone().into());
        }
        request.insert(
            "workflow_engine_parameters".into(),
            Value::Object(
                self.workflow_engine_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        request.insert("workflow_url".into(), self.workflow_url.clone().into());
        Value::Object(request)
    }
}

fn engine_parameters(
    value: Option<Value>,
    policy: &WorkflowsConfig,
) -> Result<BTreeMap<String, String>, RequestError> {
    let field = "workflow_engine_parameters";
    let given = match value {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(RequestError::new(
                field,
                "must be a JSON object of string values",
            ));
        }
    };
    let mut chosen: BTreeMap<String, String> = policy
        .engine_parameters
        .iter()
        .map(|spec| (spec.name.clone(), spec.default.clone()))
        .collect();
    for (name, value) in given {
        let shown: String = name.chars().take(64).collect();
        let Some(spec) = policy.engine_parameters.iter().find(|s| s.name == name) else {
            let allowed: Vec<&String> = policy.engine_parameters.iter().map(|s| &s.name).collect();
            return Err(RequestError::new(
                format!("{field}.{shown}"),
                format!(
                    "not a parameter researchers may set; allowed: {}",
                    join(&allowed)
                ),
            ));
        };
        // WES types these values as strings; numbers are accepted for convenience.
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(RequestError::new(
                    format!("{field}.{shown}"),
                    "must be a string",
                ));
            }
        };
        spec.check_value(&text)
            .map_err(|e| RequestError::new(format!("{field}.{shown}"), e))?;
        chosen.insert(name, text);
    }
    Ok(chosen)
}

fn required(value: Option<String>, field: &str) -> Result<String, RequestError> {
    value.ok_or_else(|| RequestError::new(field, "is required"))
}

fn join(items: &[&String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn json_depth(value: &Value) -> usize {
    // Iterative, so that a hostile nesting cannot overflow the stack.
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn policy() -> WorkflowsConfig {
        Config::parse(crate::config::tests::MINIMAL, Vec::new())
            .unwrap()
            .workflows
    }

    fn valid() -> RunRequestFields {
        RunRequestFields::from_json(
            json!({
                "workflow_type": "SMK",
                "workflow_type_version": "9",
                "workflow_url": "quals@1.0.0",
                "workflow_params": {"dataset": "ds-1"},
                "tags": {"project": "p1"},
                "workflow_engine_parameters": {"cores": "2"}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_request_parses_and_gets_defaults() {
        let run = RunSubmission::parse(valid(), &policy()).unwrap();
        assert_eq!(run.workflow_type, WorkflowType::Snakemake);
        assert_eq!(run.workflow_engine, "snakemake");
        assert_eq!(run.workflow_engine_parameters["cores"], "2");
        assert_eq!(run.workflow_engine_parameters["partition"], "debug");
        let shown = run.to_wes_request();
        assert_eq!(shown["tags"]["project"], "p1");
        assert_eq!(shown["workflow_url"], "quals@1.0.0");
    }

    #[test]
    fn the_stored_form_is_the_wes_request_and_reads_back_checked() {
        let run = RunSubmission::parse(valid(), &policy()).unwrap();
        let stored = serde_json::to_value(&run).unwrap();
        assert_eq!(stored, run.to_wes_request());
        let back: RunSubmission = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(back, run);

        // Nothing is guessed on the way back: a missing engine, an unknown type or a tag key
        // a request could not carry is an error naming it.
        let mut no_engine = stored.clone();
        no_engine.as_object_mut().unwrap().remove("workflow_engine");
        let err = serde_json::from_value::<RunSubmission>(no_engine).unwrap_err();
        assert!(
            err.to_string().contains("missing field `workflow_engine`"),
            "{err}"
        );
        let mut bad_type = stored.clone();
        bad_type["workflow_type"] = "CWL".into();
        let err = serde_json::from_value::<RunSubmission>(bad_type).unwrap_err();
        assert!(err.to_string().contains("unknown variant `CWL`"), "{err}");
        let mut bad_tag = stored;
        bad_tag["tags"]["a:b"] = "x".into();
        let err = serde_json::from_value::<RunSubmission>(bad_tag).unwrap_err();
        assert!(err.to_string().contains("tag keys may hold only"), "{err}");
    }

    fn refused(mutate: impl FnOnce(&mut RunRequestFields)) -> RequestError {
        let mut fields = valid();
        mutate(&mut fields);
        RunSubmission::parse(fields, &policy()).unwrap_err()
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = fn(&mut RunRequestFields);
        let cases: [(Mutation, &str); 15] = [
            (|f| f.workflow_type = None, "workflow_type"),
            (|f| f.workflow_type = Some("CWL".into()), "workflow_type"),
            (
                |f| f.workflow_type_version = Some("1".into()),
                "workflow_type_version",
            ),
            (|f| f.workflow_url = Some(" ".into()), "workflow_url"),
            (|f| f.workflow_url = Some("a\nb".into()), "workflow_url"),
            (|f| f.workflow_params = Some(json!([1])), "workflow_params"),
            (|f| f.tags = Some(json!({"a": 1})), "tags.a"),
            (|f| f.tags = Some(json!({"a:b": "x"})), "tags"),
            (
                |f| f.workflow_engine = Some("cwltool".into()),
                "workflow_engine",
            ),
            (
                |f| f.workflow_engine_version = Some("0.1".into()),
                "workflow_engine_version",
            ),
            (
                |f| f.workflow_engine_parameters = Some(json!({"cores": "99"})),
                "workflow_engine_parameters.cores",
            ),
            (
                |f| f.workflow_engine_parameters = Some(json!({"cores": "1; rm -rf /"})),
                "workflow_engine_parameters.cores",
            ),
            (
                |f| f.workflow_engine_parameters = Some(json!({"partition": "../gpu"})),
                "workflow_engine_parameters.partition",
            ),
            (
                |f| f.workflow_engine_parameters = Some(json!({"env": "X=1"})),
                "workflow_engine_parameters.env",
            ),
            (
                |f| f.workflow_attachment = vec!["Snakefile".into()],
                "workflow_attachment",
            ),
        ];
        for (mutate, field) in cases {
            assert_eq!(refused(mutate).field, field);
        }
    }

    #[test]
    fn deep_params_are_refused_without_overflowing() {
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert_eq!(
            refused(|f| f.workflow_params = Some(json!({ "x": deep }))).field,
            "workflow_params"
        );
    }

    #[test]
    fn json_bodies_are_strict() {
        let err = RunRequestFields::from_json(b"[1,2]").unwrap_err();
        assert_eq!(err.field, "body");
        let err = RunRequestFields::from_json(br#"{"workflow_type": 3}"#).unwrap_err();
        assert_eq!(err.field, "workflow_type");
        let err = RunRequestFields::from_json(br#"{"surprise": 3}"#).unwrap_err();
        assert_eq!(err.field, "surprise");
    }

    #[test]
    fn form_fields_decode_json_and_refuse_duplicates() {
        let mut fields = RunRequestFields::default();
        fields
            .set_form_field("workflow_params", r#"{"a": 1}"#.into())
            .unwrap();
        assert_eq!(fields.workflow_params, Some(json!({"a": 1})));
        let err = fields
            .set_form_field("workflow_params", "{}".into())
            .unwrap_err();
        assert!(err.reason.contains("more than once"));
        let err = fields
            .set_form_field("tags", "{not json".into())
            .unwrap_err();
        assert_eq!(err.field, "tags");
        fields
            .set_form_field("workflow_engine_parameters", "".into())
            .unwrap();
        assert_eq!(fields.workflow_engine_parameters, None);
    }

    #[test]
    fn tag_filters_parse() {
        let filter: TagFilter = "project:p1:extra".parse().unwrap();
        assert_eq!(filter.key.as_str(), "project");
        assert_eq!(filter.value, "p1:extra");
        assert!("novalue".parse::<TagFilter>().is_err());
        assert!(":v".parse::<TagFilter>().is_err());
    }
}
