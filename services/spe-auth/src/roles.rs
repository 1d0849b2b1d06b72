//! Roles from LS-Login entitlements and the operators' subject table.

use spe_core::config::{Role, RoleMapping};

/// The roles of a subject holding `entitlements`, under the mapping of the issuer that vouched
/// for both: every role an entitlement URN maps to (exact match, `#authority` included, so that
/// another authority cannot assert the same group) plus the roles the issuer's local table gives
/// the `sub`. Sorted, without duplicates.
pub fn roles_for(mapping: &RoleMapping, sub: &str, entitlements: &[String]) -> Vec<Role> {
    let mut roles: Vec<Role> = entitlements
        .iter()
        .filter_map(|e| mapping.entitlements.get(e))
        .flatten()
        .copied()
        .chain(mapping.subjects.get(sub).into_iter().flatten().copied())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The parts of an LS-Login group entitlement
/// `urn:geant:lifescience-ri.eu:group:<vo>[:<sub>...][:role=r]#<authority>`.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupEntitlement<'a> {
    /// `<vo>` and any subgroups, in order.
    pub groups: Vec<&'a str>,
    pub role: Option<&'a str>,
    pub authority: &'a str,
}

/// Parses an LS-Login group entitlement; `None` for anything else.
pub fn parse_group_entitlement(urn: &str) -> Option<GroupEntitlement<'_>> {
    let rest = urn.strip_prefix("urn:geant:lifescience-ri.eu:group:")?;
    let (path, authority) = rest.split_once('#')?;
    if authority.is_empty() || path.is_empty() {
        return None;
    }
    let mut groups = Vec::new();
    let mut role = None;
    for part in path.split(':') {
        if let Some(r) = part.strip_prefix("role=") {
            role = Some(r);
        } else if role.is_none() && !part.is_empty() {
            groups.push(part);
        } else {
            return None;
        }
    }
    (!groups.is_empty()).then_some(GroupEntitlement {
        groups,
        role,
        authority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entitlements_and_subjects_map_to_sorted_roles() {
        let mut mapping = RoleMapping::default();
        let urn = "urn:geant:lifescience-ri.eu:group:spe:researchers#login.aai.lifescience-ri.eu";
        mapping
            .entitlements
            .insert(urn.into(), vec![Role::Researcher]);
        mapping
            .subjects
            .insert("op@x".into(), vec![Role::Operator, Role::Researcher]);
        assert_eq!(
            roles_for(&mapping, "op@x", &[urn.into()]),
            vec![Role::Researcher, Role::Operator]
        );
        // Same group, other authority: nothing.
        let forged = urn.replace("#login.aai", "#evil");
        assert!(roles_for(&mapping, "someone", &[forged]).is_empty());
    }

    #[test]
    fn group_entitlements_parse_in_ls_login_form() {
        let e = parse_group_entitlement(
            "urn:geant:lifescience-ri.eu:group:vo1:sub:role=manager#login.aai.lifescience-ri.eu",
        )
        .unwrap();
        assert_eq!(e.groups, vec!["vo1", "sub"]);
        assert_eq!(e.role, Some("manager"));
        assert_eq!(e.authority, "login.aai.lifescience-ri.eu");
        assert!(parse_group_entitlement("urn:geant:lifescience-ri.eu:group:vo1").is_none());
        assert!(parse_group_entitlement("urn:other:group:vo1#a").is_none());
        assert!(parse_group_entitlement("urn:geant:lifescience-ri.eu:group:role=x:vo#a").is_none());
    }
}
