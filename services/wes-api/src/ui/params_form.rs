//! The submit form of an approved workflow version, generated from its manifest's `params` JSON
//! Schema: one field per top-level property (type, bounds, default, description, enum,
//! required), dataset parameters (`x-spe-dataset`) as pickers of the datasets the caller may
//! use; and the way back, from the posted fields to `workflow_params` JSON. The schema itself is
//! still checked by admission (`app::admission`) on what the form produces, so a field this
//! module reads loosely is refused there with the API's message.

use serde_json::{Map, Number, Value};

/// The form field name of parameter `name`.
pub fn param_field_name(name: &str) -> String {
    format!("param.{name}")
}

/// One input of the form.
pub struct ParamField {
    pub name: String,
    /// `param.<name>`.
    pub field: String,
    pub description: String,
    /// `text`, `number`, `checkbox`, `select`, `multiselect` or `json`.
    pub kind: &'static str,
    pub required: bool,
    /// The value shown: what was posted, else the schema's default.
    pub value: String,
    pub checked: bool,
    pub min: String,
    pub max: String,
    pub step: String,
    pub options: Vec<FieldOption>,
}

pub struct FieldOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn type_of(prop: &Value) -> &str {
    prop.get("type").and_then(Value::as_str).unwrap_or("")
}

fn is_dataset(prop: &Value) -> bool {
    prop.get("x-spe-dataset") == Some(&Value::Bool(true))
}

/// The form's fields for `schema`, filled from `posted` (after a refusal) or the defaults.
/// `datasets` are (id, description) of the datasets the caller may use.
pub fn fields(
    schema: &Value,
    datasets: &[(String, String)],
    posted: Option<&[(String, String)]>,
) -> Vec<ParamField> {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    props
        .iter()
        .map(|(name, prop)| {
            let field = param_field_name(name);
            let posted_values: Vec<&str> = posted
                .unwrap_or_default()
                .iter()
                .filter(|(k, _)| *k == field)
                .map(|(_, v)| v.as_str())
                .collect();
            let default = prop.get("default").map(text_of).unwrap_or_default();
            let value = match posted {
                Some(_) => posted_values
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
                None => default.clone(),
            };
            let bound = |key: &str| prop.get(key).map(text_of).unwrap_or_default();
            let mut f = ParamField {
                name: name.clone(),
                field,
                description: prop
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                kind: "text",
                required: required.contains(&name.as_str()),
                checked: false,
                min: bound("minimum"),
                max: bound("maximum"),
                step: String::new(),
                options: Vec::new(),
                value,
            };
            let items = prop.get("items").unwrap_or(&Value::Null);
            let picker = |chosen: &dyn Fn(&str) -> bool| {
                datasets
                    .iter()
                    .map(|(id, description)| FieldOption {
                        value: id.clone(),
                        label: if description.is_empty() {
                            id.clone()
                        } else {
                            format!("{id} — {description}")
                        },
                        selected: chosen(id),
                    })
                    .collect::<Vec<_>>()
            };
            if is_dataset(prop) && type_of(prop) == "string" {
                f.kind = "select";
                let v = f.value.clone();
                f.options = picker(&|id| id == v);
            } else if type_of(prop) == "array" && is_dataset(items) {
                f.kind = "multiselect";
                f.options = picker(&|id| posted_values.contains(&id));
            } else if let Some(Value::Array(choices)) = prop.get("enum") {
                f.kind = "select";
                let v = f.value.clone();
                f.options = choices
                    .iter()
                    .map(|c| FieldOption {
                        value: text_of(c),
                        label: text_of(c),
                        selected: text_of(c) == v,
                    })
                    .collect();
            } else {
                match type_of(prop) {
                    "integer" => {
                        f.kind = "number";
                        f.step = "1".into();
                    }
                    "number" => {
                        f.kind = "number";
                        f.step = "any".into();
                    }
                    "boolean" => {
                        f.kind = "checkbox";
                        f.checked = match posted {
                            Some(_) => !posted_values.is_empty(),
                            None => prop.get("default") == Some(&Value::Bool(true)),
                        };
                    }
                    "string" => {}
                    _ => f.kind = "json",
                }
            }
            f
        })
        .collect()
}

/// `workflow_params` from the posted fields, typed by `schema`. An empty field is left out (the
/// schema's default or requirement then applies); an unchecked checkbox is `false`.
pub fn params(schema: &Value, posted: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Ok(out);
    };
    for (name, prop) in props {
        let field = param_field_name(name);
        let values: Vec<&str> = posted
            .iter()
            .filter(|(k, _)| *k == field)
            .map(|(_, v)| v.trim())
            .collect();
        let items = prop.get("items").unwrap_or(&Value::Null);
        if type_of(prop) == "array" && is_dataset(items) {
            let ids: Vec<Value> = values
                .iter()
                .filter(|v| !v.is_empty())
                .map(|v| Value::String((*v).to_owned()))
                .collect();
            if !ids.is_empty() {
                out.insert(name.clone(), Value::Array(ids));
            }
            continue;
        }
        if type_of(prop) == "boolean" {
            out.insert(name.clone(), Value::Bool(!values.is_empty()));
            continue;
        }
        let Some(text) = values.first().filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = match type_of(prop) {
            "integer" => text
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("{name}: must be a whole number"))?,
            "number" => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("{name}: must be a number"))?,
            "string" => Value::String((*text).to_owned()),
            _ => {
                serde_json::from_str(text).map_err(|e| format!("{name}: must be JSON text: {e}"))?
            }
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Tags typed as `key:value, key:value` (the same `key:value` as the runs list's filter).
pub fn tags(text: &str) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once(':') else {
            return Err(format!(
                "tags: {:?} is not key:value",
                pair.chars().take(64).collect::<String>()
            ));
        };
        out.insert(
            key.trim().to_owned(),
            Value::String(value.trim().to_owned()),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["dataset"],
            "properties": {
                "dataset": {"type": "string", "x-spe-dataset": true, "description": "Calls"},
                "extra": {"type": "array", "items": {"type": "string", "x-spe-dataset": true}},
                "min_qual": {"type": "number", "minimum": 0, "maximum": 100, "default": 30},
                "rounds": {"type": "integer", "default": 2},
                "mode": {"type": "string", "enum": ["fast", "exact"], "default": "exact"},
                "verbose": {"type": "boolean", "default": true},
                "label": {"type": "string"},
                "weights": {"type": "object"}
            }
        })
    }

    fn posted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fields_follow_the_schema_and_list_only_the_datasets_given() {
        let datasets = vec![("demo-1".to_owned(), "synthetic".to_owned())];
        let f = fields(&schema(), &datasets, None);
        let by = |n: &str| f.iter().find(|f| f.name == n).unwrap();
        assert_eq!(by("dataset").kind, "select");
        assert!(by("dataset").required);
        assert_eq!(by("dataset").description, "Calls");
        assert_eq!(by("dataset").options[0].label, "demo-1 — synthetic");
        assert_eq!(by("extra").kind, "multiselect");
        let q = by("min_qual");
        assert_eq!(
            (q.kind, q.min.as_str(), q.max.as_str()),
            ("number", "0", "100")
        );
        assert_eq!((q.value.as_str(), q.step.as_str()), ("30", "any"));
        assert_eq!(by("rounds").step, "1");
        assert_eq!(by("mode").kind, "select");
        assert!(
            by("mode")
                .options
                .iter()
                .any(|o| o.value == "exact" && o.selected)
        );
        assert!(by("verbose").checked);
        assert_eq!(by("label").kind, "text");
        assert_eq!(by("weights").kind, "json");
    }

    #[test]
    fn tags_are_key_value_pairs() {
        assert_eq!(
            Value::Object(tags(" project:p1, cohort : c2 ,").unwrap()),
            json!({"project": "p1", "cohort": "c2"})
        );
        assert!(tags("").unwrap().is_empty());
        assert_eq!(tags("p1").unwrap_err(), "tags: \"p1\" is not key:value");
    }

    #[test]
    fn posted_fields_become_typed_params() {
        let p = params(
            &schema(),
            &posted(&[
                ("param.dataset", "demo-1"),
                ("param.extra", "a"),
                ("param.extra", "b"),
                ("param.min_qual", "12.5"),
                ("param.rounds", "3"),
                ("param.mode", "fast"),
                ("param.label", ""),
                ("param.weights", "{\"x\": 1}"),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"dataset": "demo-1", "extra": ["a", "b"], "min_qual": 12.5, "rounds": 3,
                   "mode": "fast", "verbose": false, "weights": {"x": 1}})
        );
        for (field, value, msg) in [
            ("param.rounds", "2.5", "rounds: must be a whole number"),
            ("param.min_qual", "lots", "min_qual: must be a number"),
        ] {
            assert_eq!(
                params(&schema(), &posted(&[(field, value)])).unwrap_err(),
                msg
            );
        }
        assert!(
            params(&schema(), &posted(&[("param.weights", "{")]))
                .unwrap_err()
                .starts_with("weights: must be JSON text")
        );
    }
}
