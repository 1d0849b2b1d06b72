//! `SPE__SECTION__KEY` environment variables, each overriding one key of the file.

use super::{ConfigError, ENV_PREFIX};

pub(super) fn apply_env_overrides<I>(doc: &mut serde_yaml::Value, env: I) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    // Deterministic order, so that a conflicting pair always resolves the same way.
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|part| part.to_ascii_lowercase())
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError(format!(
                "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
            )));
        }
        // Numbers, booleans and flow lists (`[ssh, -o, BatchMode=yes]`) keep their YAML type;
        // anything else is taken as text.
        let value = match serde_yaml::from_str::<serde_yaml::Value>(&raw) {
            Ok(
                v @ (serde_yaml::Value::Bool(_)
                | serde_yaml::Value::Number(_)
                | serde_yaml::Value::Sequence(_)),
            ) => v,
            _ => serde_yaml::Value::String(raw),
        };
        let mut node = &mut *doc;
        for (i, part) in path.iter().enumerate() {
            let map = match node {
                serde_yaml::Value::Mapping(map) => map,
                other => {
                    *other = serde_yaml::Value::Mapping(Default::default());
                    match other {
                        serde_yaml::Value::Mapping(map) => map,
                        _ => unreachable!("just replaced by a mapping"),
                    }
                }
            };
            let key = serde_yaml::Value::String(part.clone());
            if i + 1 == path.len() {
                map.insert(key, value.clone());
                break;
            }
            node = map
                .entry(key)
                .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
        }
    }
    Ok(())
}
