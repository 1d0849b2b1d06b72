//! `service`: what `/service-info` says about this deployment.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;
use super::values::LinkUrl;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub organization: Organization,
    #[serde(default)]
    pub contact_url: Option<LinkUrl>,
    #[serde(default)]
    pub documentation_url: Option<LinkUrl>,
    #[serde(default)]
    pub environment: Option<String>,
    pub auth_instructions_url: LinkUrl,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub name: String,
    pub url: LinkUrl,
}

impl ServiceConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("service.id", &self.id),
            ("service.name", &self.name),
            ("service.organization.name", &self.organization.name),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::at(key, "must not be empty"));
            }
        }
        Ok(())
    }
}
