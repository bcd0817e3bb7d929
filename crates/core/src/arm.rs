//! ARM resource ids, parsed and normalised once, and the kind of account each resource type is ([`AccountKind`]).
//!
//! Accepted form: `/subscriptions/<guid>/resourceGroups/<rg>/providers/<namespace>/<type>/<name>`.
//! ARM treats every segment case-insensitively, so the canonical form keeps the fixed segments and the known
//! provider types in ARM's casing and lowercases the variable parts (subscription, group, name). Two ids that ARM
//! considers equal therefore have equal canonical strings, and comparisons are plain string equality.

use crate::error::DomainError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// What kind of resource an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// `Microsoft.CognitiveServices/accounts`: a Face resource.
    Face,
    /// `Microsoft.Communication/communicationServices`: a Communication resource.
    Communication,
}

impl AccountKind {
    /// The ARM `<namespace>/<type>` in ARM's casing.
    pub const fn provider(self) -> &'static str {
        match self {
            Self::Face => "Microsoft.CognitiveServices/accounts",
            Self::Communication => "Microsoft.Communication/communicationServices",
        }
    }

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Face => "face",
            Self::Communication => "communication",
        }
    }

    /// Parses the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Face, Self::Communication]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// Recognises an ARM namespace and type, case-insensitively.
    pub fn from_provider(namespace: &str, rtype: &str) -> Option<Self> {
        [Self::Face, Self::Communication].into_iter().find(|k| {
            let (ns, ty) = k.provider().split_once('/').unwrap_or_default();
            ns.eq_ignore_ascii_case(namespace) && ty.eq_ignore_ascii_case(rtype)
        })
    }
}

/// Longest resource id accepted, in bytes.
pub const MAX_RESOURCE_ID_LEN: usize = 512;

/// A parsed, canonical ARM resource id of an account Tessera hosts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    canonical: String,
    kind: AccountKind,
}

impl ResourceId {
    /// Parses and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| DomainError::InvalidResourceId(why.to_owned());
        if raw.len() > MAX_RESOURCE_ID_LEN {
            return Err(bad("longer than 512 bytes"));
        }
        let rest = raw
            .strip_prefix('/')
            .ok_or_else(|| bad("must start with /subscriptions/"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [subs, sub_id, rgs, rg, providers, namespace, rtype, name] = parts.as_slice() else {
            return Err(bad(
                "expected /subscriptions/<id>/resourceGroups/<group>/providers/<namespace>/<type>/<name>",
            ));
        };
        if !subs.eq_ignore_ascii_case("subscriptions")
            || !rgs.eq_ignore_ascii_case("resourceGroups")
            || !providers.eq_ignore_ascii_case("providers")
        {
            return Err(bad(
                "expected /subscriptions/<id>/resourceGroups/<group>/providers/<namespace>/<type>/<name>",
            ));
        }
        let sub_id = uuid::Uuid::try_parse(sub_id).map_err(|_| bad("the subscription id must be a GUID"))?;
        if !valid_resource_group(rg) {
            return Err(bad("invalid resource group name"));
        }
        if !valid_account_name(name) {
            return Err(bad("invalid account name (2-64 letters, digits or hyphens)"));
        }
        let kind = AccountKind::from_provider(namespace, rtype).ok_or_else(|| {
            DomainError::UnsupportedResourceType(format!(
                "{namespace}/{rtype} (expected {} or {})",
                AccountKind::Face.provider(),
                AccountKind::Communication.provider()
            ))
        })?;
        let canonical = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}",
            sub_id.hyphenated(),
            rg.to_ascii_lowercase(),
            kind.provider(),
            name.to_ascii_lowercase()
        );
        Ok(Self { canonical, kind })
    }

    /// The canonical string form.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Which kind of account this id names.
    pub fn kind(&self) -> AccountKind {
        self.kind
    }

    /// The account name (last segment).
    pub fn name(&self) -> &str {
        self.canonical.rsplit('/').next().unwrap_or_default()
    }
}

fn valid_resource_group(rg: &str) -> bool {
    (1..=90).contains(&rg.len())
        && !rg.ends_with('.')
        && rg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

fn valid_account_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl FromStr for ResourceId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.canonical)
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACE: &str = "/subscriptions/8F3C2D1E-0000-4000-8000-0000000000AA/resourceGroups/My-RG/providers/microsoft.cognitiveservices/Accounts/Contoso-Face";

    #[test]
    fn normalises_case_insensitive_segments() {
        let id = ResourceId::parse(FACE).unwrap();
        assert_eq!(
            id.as_str(),
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/my-rg/providers/Microsoft.CognitiveServices/accounts/contoso-face"
        );
        assert_eq!(id.kind(), AccountKind::Face);
        assert_eq!(id.name(), "contoso-face");
        assert_eq!(ResourceId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn communication_accounts_parse() {
        let id = ResourceId::parse(
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg/providers/Microsoft.Communication/CommunicationServices/chat1",
        )
        .unwrap();
        assert_eq!(id.kind(), AccountKind::Communication);
        assert!(
            id.as_str()
                .ends_with("/providers/Microsoft.Communication/communicationServices/chat1")
        );
    }

    #[test]
    fn rejects_malformed_ids() {
        for raw in [
            "",
            "subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a1",
            "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a1",
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a1/",
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/r g/providers/Microsoft.CognitiveServices/accounts/a1",
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/groups/rg/providers/Microsoft.CognitiveServices/accounts/a1",
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg./providers/Microsoft.CognitiveServices/accounts/a1",
        ] {
            assert!(
                matches!(ResourceId::parse(raw), Err(DomainError::InvalidResourceId(_))),
                "{raw}"
            );
        }
        let long = format!("/subscriptions/{}", "a".repeat(600));
        assert!(matches!(
            ResourceId::parse(&long),
            Err(DomainError::InvalidResourceId(_))
        ));
    }

    #[test]
    fn rejects_unknown_provider() {
        let err = ResourceId::parse(
            "/subscriptions/8f3c2d1e-0000-4000-8000-0000000000aa/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s1",
        )
        .unwrap_err();
        assert_eq!(err.code(), "UnsupportedResourceType");
    }
}
