//! Limited Access feature flags and sets of them.

use crate::error::DomainError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A Limited Access feature that an operator approves and an ISV may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureFlag {
    /// `Face.Identification`: identify and find-similar.
    FaceIdentification,
    /// `Face.Verification`: one-to-one verification.
    FaceVerification,
    /// `LimitedAccess.HighRisk`: operations the policy table marks high risk.
    LimitedAccessHighRisk,
}

impl FeatureFlag {
    /// Every flag, in a stable order.
    pub const ALL: [FeatureFlag; 3] = [
        Self::FaceIdentification,
        Self::FaceVerification,
        Self::LimitedAccessHighRisk,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::FaceIdentification => "Face.Identification",
            Self::FaceVerification => "Face.Verification",
            Self::LimitedAccessHighRisk => "LimitedAccess.HighRisk",
        }
    }

    /// Parses a wire name. Names are case-sensitive, as they are signed into tokens.
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| DomainError::UnknownFeatureFlag(truncate(name)))
    }

    const fn bit(self) -> u8 {
        match self {
            Self::FaceIdentification => 1,
            Self::FaceVerification => 2,
            Self::LimitedAccessHighRisk => 4,
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

impl fmt::Display for FeatureFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of feature flags. Serialised as a sorted JSON array of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlagSet(u8);

impl FlagSet {
    /// The empty set.
    pub const EMPTY: FlagSet = FlagSet(0);

    /// Parses names; an unknown name is an error, duplicates are folded.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, DomainError> {
        names.iter().try_fold(
            Self::EMPTY,
            |set, n| Ok(set.with(FeatureFlag::parse(n.as_ref())?)),
        )
    }

    /// This set plus `flag`.
    #[must_use]
    pub const fn with(self, flag: FeatureFlag) -> Self {
        Self(self.0 | flag.bit())
    }

    /// Whether `flag` is in the set.
    pub const fn contains(self, flag: FeatureFlag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Whether every flag of `self` is in `other`.
    pub const fn is_subset_of(self, other: FlagSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Flags in both sets.
    #[must_use]
    pub const fn intersection(self, other: FlagSet) -> Self {
        Self(self.0 & other.0)
    }

    /// Flags of `self` not in `other`.
    #[must_use]
    pub const fn difference(self, other: FlagSet) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags, in [`FeatureFlag::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = FeatureFlag> {
        FeatureFlag::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    /// The wire names, in order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(FeatureFlag::name).collect()
    }
}

impl FromIterator<FeatureFlag> for FlagSet {
    fn from_iter<I: IntoIterator<Item = FeatureFlag>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Display for FlagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

impl Serialize for FlagSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(FeatureFlag::name))
    }
}

impl<'de> Deserialize<'de> for FlagSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Self::parse(&names).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_names() {
        let set = FlagSet::parse(&[
            "LimitedAccess.HighRisk",
            "Face.Identification",
            "Face.Identification",
        ])
        .unwrap();
        assert_eq!(set.names(), ["Face.Identification", "LimitedAccess.HighRisk"]);
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"["Face.Identification","LimitedAccess.HighRisk"]"#
        );
    }

    #[test]
    fn unknown_and_miscased_names_are_refused() {
        assert_eq!(
            FlagSet::parse(&["face.identification"]).unwrap_err().code(),
            "UnknownFeatureFlag"
        );
        assert!(serde_json::from_str::<FlagSet>(r#"["Face.Everything"]"#).is_err());
    }

    #[test]
    fn subset_rules() {
        let id = FlagSet::EMPTY.with(FeatureFlag::FaceIdentification);
        let both = id.with(FeatureFlag::FaceVerification);
        assert!(id.is_subset_of(both));
        assert!(!both.is_subset_of(id));
        assert_eq!(both.difference(id).names(), ["Face.Verification"]);
        assert!(FlagSet::EMPTY.is_subset_of(FlagSet::EMPTY));
    }
}
