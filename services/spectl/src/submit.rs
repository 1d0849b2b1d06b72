//! What a submission needs from the registry: the workflow's language (a registered name fixes
//! it, so the researcher need not repeat it), and the parameters a researcher may pass, as
//! `workflow show` prints them.

use serde_json::Value;

use crate::api::{Api, Failure, is_forbidden};
use crate::output::{Table, field, text};
use crate::split_ref;

/// `workflow_type` and `workflow_type_version` for a submission of `workflow`: the given ones,
/// else the type from the registry and the version the service accepts for that type (from
/// service-info; when it accepts several, the user must choose).
pub async fn language(
    api: &Api,
    workflow: &str,
    given_type: Option<String>,
    given_version: Option<String>,
) -> Result<(String, String), Failure> {
    let workflow_type = match given_type {
        Some(t) => t,
        None => {
            let (name, version) = split_ref(workflow)?;
            let v = api.get(&["workflows", name, version], &[]).await?;
            v["workflow_type"]
                .as_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Failure::Other(format!(
                        "the registry names no workflow_type for {workflow}"
                    ))
                })?
                .to_owned()
        }
    };
    if let Some(version) = given_version {
        return Ok((workflow_type, version));
    }
    let info = api.get(&["service-info"], &[]).await?;
    let versions: Vec<String> =
        info["workflow_type_versions"][&workflow_type]["workflow_type_version"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
    match versions.as_slice() {
        [one] => Ok((workflow_type, one.clone())),
        [] => Err(Failure::Other(format!(
            "the service runs no {workflow_type} workflows (service-info)"
        ))),
        several => Err(Failure::Usage(format!(
            "the service accepts {workflow_type} versions {}: choose one with --type-version",
            several.join(", ")
        ))),
    }
}

/// The researcher's view of an approved version (params schema, effective engine parameters),
/// or nothing when the caller may not read it there or it is not approved.
pub async fn published(api: &Api, name: &str, version: &str) -> Result<Option<Value>, Failure> {
    match api.get(&["workflows", name, version], &[]).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_forbidden(&e) || matches!(e, Failure::Api { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The workflow parameters of a JSON Schema (`params_schema`), one row each: name, type,
/// bounds, default, whether required, description.
pub fn params_table(schema: &Value) -> Table {
    let mut table = Table::new(&[
        "PARAM",
        "TYPE",
        "BOUNDS",
        "DEFAULT",
        "REQUIRED",
        "DESCRIPTION",
    ]);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, p) in properties {
            let mut kind = type_text(&p["type"]);
            if p["x-spe-dataset"].as_bool() == Some(true) {
                kind.push_str(" (dataset id)");
            }
            table.row(vec![
                text(&Value::String(name.clone())),
                kind,
                bounds(p),
                p.get("default").map(text).unwrap_or_default(),
                if required.contains(&name.as_str()) {
                    "yes".into()
                } else {
                    "no".into()
                },
                field(p, "description"),
            ]);
        }
    }
    table
}

/// The engine parameters (cores, memory...) in either shape the API gives them: the
/// researcher view's list of `{name, type, default, min, max, allowed}`, or the manifest's map
/// from name to the rest.
pub fn engine_table(params: &Value) -> Table {
    let mut table = Table::new(&["ENGINE PARAM", "TYPE", "BOUNDS", "DEFAULT"]);
    let rows: Vec<(String, &Value)> = match params {
        Value::Array(list) => list.iter().map(|p| (field(p, "name"), p)).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, p)| (text(&Value::String(k.clone())), p))
            .collect(),
        _ => Vec::new(),
    };
    for (name, p) in rows {
        let mut limits = Vec::new();
        if let Some(min) = p.get("min").filter(|v| !v.is_null()) {
            limits.push(format!(">= {}", text(min)));
        }
        if let Some(max) = p.get("max").filter(|v| !v.is_null()) {
            limits.push(format!("<= {}", text(max)));
        }
        if let Some(allowed) = p["allowed"].as_array() {
            let names: Vec<String> = allowed.iter().map(text).collect();
            limits.push(format!("one of {}", names.join(", ")));
        }
        table.row(vec![
            name,
            field(p, "type"),
            limits.join(", "),
            field(p, "default"),
        ]);
    }
    table
}

fn type_text(t: &Value) -> String {
    match t {
        Value::Array(types) => types.iter().map(text).collect::<Vec<_>>().join("|"),
        Value::Null => "any".into(),
        other => text(other),
    }
}

/// A property's limits in JSON Schema terms, as a reader would write them.
fn bounds(p: &Value) -> String {
    let mut out = Vec::new();
    for (key, what) in [
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
        ("minItems", "items >="),
        ("maxItems", "items <="),
    ] {
        if let Some(v) = p.get(key).filter(|v| v.is_number()) {
            out.push(format!("{what} {}", text(v)));
        }
    }
    if let Some(values) = p["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        out.push(format!(
            "one of {}",
            text(&Value::String(values.join(", ")))
        ));
    }
    if let Some(pattern) = p.get("pattern") {
        out.push(format!("matches {}", text(pattern)));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_show_type_bounds_and_default() {
        let schema = json!({
            "type": "object",
            "required": ["dataset"],
            "properties": {
                "dataset": {"type": "string", "x-spe-dataset": true, "description": "Input"},
                "min_qual": {"type": "number", "minimum": 0, "maximum": 100, "default": 30},
                "mode": {"enum": ["fast", "slow"]}
            }
        });
        assert_eq!(
            params_table(&schema).lines(),
            [
                "PARAM     TYPE                 BOUNDS                 DEFAULT  REQUIRED  DESCRIPTION",
                "dataset   string (dataset id)                                  yes       Input",
                "min_qual  number               >= 0, <= 100           30       no",
                "mode      any                  one of \"fast\", \"slow\"           no",
            ]
        );
        let engine = json!([
            {"name": "cores", "type": "integer", "default": "1", "min": 1, "max": 4, "allowed": null},
            {"name": "partition", "type": "string", "default": "debug", "min": null, "max": null, "allowed": ["debug"]}
        ]);
        assert_eq!(
            engine_table(&engine).lines(),
            [
                "ENGINE PARAM  TYPE     BOUNDS        DEFAULT",
                "cores         integer  >= 1, <= 4    1",
                "partition     string   one of debug  debug",
            ]
        );
        let manifest_shape =
            json!({"cores": {"type": "integer", "min": 1, "max": 4, "default": "1"}});
        assert_eq!(
            engine_table(&manifest_shape).lines()[1],
            "cores         integer  >= 1, <= 4  1"
        );
    }
}
