//! `quotas`: how much one user may run, by default and for members of named groups.

use serde::Deserialize;

use super::ConfigError;

/// One set of limits. A submission that would go over any of them gets 429 naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaLimits {
    /// Runs submitted in the last 24 hours.
    #[serde(default = "default_runs_per_day")]
    pub runs_per_day: u64,
    /// Runs not ended yet (QUEUED, INITIALIZING, RUNNING, CANCELING).
    #[serde(default = "default_live_runs")]
    pub live_runs: u64,
    /// Cores asked for by the runs not ended yet (`cores` engine parameter).
    #[serde(default = "default_live_cores")]
    pub live_cores: u64,
    /// Memory asked for by the runs not ended yet (`memory_mb` engine parameter).
    #[serde(default = "default_live_memory_mb")]
    pub live_memory_mb: u64,
    /// Runs submitted in the last minute.
    #[serde(default = "default_submissions_per_minute")]
    pub submissions_per_minute: u64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        QuotaLimits {
            runs_per_day: default_runs_per_day(),
            live_runs: default_live_runs(),
            live_cores: default_live_cores(),
            live_memory_mb: default_live_memory_mb(),
            submissions_per_minute: default_submissions_per_minute(),
        }
    }
}

fn default_runs_per_day() -> u64 {
    1000
}
fn default_live_runs() -> u64 {
    50
}
fn default_live_cores() -> u64 {
    256
}
fn default_live_memory_mb() -> u64 {
    1024 * 1024
}
fn default_submissions_per_minute() -> u64 {
    60
}

impl QuotaLimits {
    /// The more generous of two sets, limit by limit.
    pub fn most_generous(self, other: QuotaLimits) -> QuotaLimits {
        QuotaLimits {
            runs_per_day: self.runs_per_day.max(other.runs_per_day),
            live_runs: self.live_runs.max(other.live_runs),
            live_cores: self.live_cores.max(other.live_cores),
            live_memory_mb: self.live_memory_mb.max(other.live_memory_mb),
            submissions_per_minute: self
                .submissions_per_minute
                .max(other.submissions_per_minute),
        }
    }

    fn check(&self, key: &str) -> Result<(), ConfigError> {
        for (name, value) in [
            ("runs_per_day", self.runs_per_day),
            ("live_runs", self.live_runs),
            ("live_cores", self.live_cores),
            ("live_memory_mb", self.live_memory_mb),
            ("submissions_per_minute", self.submissions_per_minute),
        ] {
            ConfigError::at_least(&format!("{key}.{name}"), value, 1)?;
        }
        Ok(())
    }
}

/// Limits for the members of one group (an `eduperson_entitlement` URN of the token's issuer).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupQuota {
    pub group: String,
    #[serde(flatten)]
    pub limits: QuotaLimits,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// Every user's limits.
    #[serde(default)]
    pub default: QuotaLimits,
    /// A member of any of these groups gets, limit by limit, the most generous of the default
    /// and their groups' limits.
    #[serde(default)]
    pub groups: Vec<GroupQuota>,
}

impl QuotasConfig {
    /// The limits of a caller in `groups` (their entitlement URNs).
    pub fn limits_for<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> QuotaLimits {
        let groups: Vec<&str> = groups.into_iter().collect();
        self.groups
            .iter()
            .filter(|g| groups.contains(&g.group.as_str()))
            .fold(self.default, |acc, g| acc.most_generous(g.limits))
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.default.check("quotas.default")?;
        for (i, g) in self.groups.iter().enumerate() {
            if !g.group.starts_with("urn:") {
                return Err(ConfigError::at(
                    &format!("quotas.groups[{i}].group"),
                    "an eduperson_entitlement URN (urn:...)",
                ));
            }
            g.limits.check(&format!("quotas.groups[{i}]"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_get_the_most_generous_of_their_groups_limits() {
        let q: QuotasConfig = serde_yaml::from_str(
            "default: { live_runs: 2 }\ngroups:\n  - { group: 'urn:a', live_runs: 5, runs_per_day: 3 }\n  - { group: 'urn:b', live_runs: 9 }\n",
        )
        .unwrap();
        assert_eq!(q.limits_for([]).live_runs, 2);
        assert_eq!(q.limits_for(["urn:a"]).live_runs, 5);
        assert_eq!(q.limits_for(["urn:a"]).runs_per_day, 1000);
        assert_eq!(q.limits_for(["urn:a", "urn:b"]).live_runs, 9);
        let bad: QuotasConfig = serde_yaml::from_str("default: { live_runs: 0 }").unwrap();
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "invalid configuration: quotas.default.live_runs: must be at least 1"
        );
    }
}
