//! Accounts (Face or Communication resources), their key slots and their Limited Access standing.

use crate::arm::ResourceId;
use crate::flags::FlagSet;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// An account's kind is its ARM resource type, so it is defined with the ids.
pub use crate::arm::AccountKind;

/// How many times each of an account's key slots has been set (1 when created).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyGenerations {
    /// `key1`'s.
    pub key1: u32,
    /// `key2`'s.
    pub key2: u32,
}

impl Default for KeyGenerations {
    fn default() -> Self {
        Self { key1: 1, key2: 1 }
    }
}

impl KeyGenerations {
    /// The generation of `slot`.
    pub fn of(self, slot: KeySlot) -> u32 {
        match slot {
            KeySlot::Key1 => self.key1,
            KeySlot::Key2 => self.key2,
        }
    }
}

/// One of an account's two subscription keys, so that one can be regenerated while the other is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySlot {
    /// `key1`.
    #[serde(rename = "key1")]
    Key1,
    /// `key2`.
    #[serde(rename = "key2")]
    Key2,
}

impl KeySlot {
    /// Both slots.
    pub const ALL: [KeySlot; 2] = [Self::Key1, Self::Key2];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Key1 => "key1",
            Self::Key2 => "key2",
        }
    }

    /// Parses `key1`/`key2`.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An account's standing as an ISV: the flags it may grant to others, unless cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsvGrant {
    /// Flags the operator let this account grant.
    pub flags: FlagSet,
    /// When the operator cut the ISV off; its tokens stop working from then on.
    pub cut_off_at: Option<Timestamp>,
}

/// A hosted resource with its approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Immutable GUID.
    pub id: Uuid,
    /// Canonical ARM resource id (unique).
    pub resource_id: ResourceId,
    /// Limited Access flags the operator approved for this account's own use.
    pub approved_flags: FlagSet,
    /// ISV standing, if the operator made this account an ISV.
    pub isv: Option<IsvGrant>,
    /// A disabled account cannot authenticate, issue, or be the target of a limited access token.
    pub disabled: bool,
    /// The latest time the account was disabled: every token naming it (STS, limited access, user) issued at or
    /// before that second stays dead when it is enabled again.
    pub tokens_revoked_at: Option<Timestamp>,
    /// The latest time the account was cut off as an ISV: the limited access tokens it issued at or before that
    /// second stay dead when it is granted again.
    pub isv_tokens_revoked_at: Option<Timestamp>,
    /// The latest time the operator revoked every user token of the account's identities (and so every device
    /// session, which refreshes only with a live token of its own).
    #[serde(default)]
    pub user_tokens_revoked_at: Option<Timestamp>,
    /// How many times each key slot has been set: an STS token names the slot and generation that minted it and
    /// dies when the slot is regenerated.
    #[serde(default)]
    pub key_generations: KeyGenerations,
    /// Creation time.
    pub created_at: Timestamp,
}

impl Account {
    /// The account's kind, from its resource id.
    pub fn kind(&self) -> AccountKind {
        self.resource_id.kind()
    }

    /// Whether the account is an ISV that has not been cut off and is not disabled.
    pub fn is_active_isv(&self) -> bool {
        !self.disabled && self.isv.is_some_and(|g| g.cut_off_at.is_none())
    }

    /// Whether a token naming this account and issued at `iat` (seconds) predates its latest disable. Tokens
    /// carry whole seconds, so a token of the revocation's own second counts as before it (fail closed).
    pub fn revoked_token(&self, iat: i64) -> bool {
        issued_by(self.tokens_revoked_at, iat)
    }

    /// Whether a limited access token this account issued as an ISV at `iat` predates its latest cut-off or
    /// disable.
    pub fn revoked_isv_token(&self, iat: i64) -> bool {
        self.revoked_token(iat) || issued_by(self.isv_tokens_revoked_at, iat)
    }

    /// Whether a user token of one of this account's identities issued at `iat` predates its latest disable or
    /// the operator's latest revocation of every user token.
    pub fn revoked_user_token(&self, iat: i64) -> bool {
        self.revoked_token(iat) || issued_by(self.user_tokens_revoked_at, iat)
    }

    /// Whether an STS token minted with the key of `slot` at `generation` still stands: the slot has not been
    /// regenerated since.
    pub fn minted_by_current_key(&self, slot: KeySlot, generation: u32) -> bool {
        self.key_generations.of(slot) == generation
    }

    /// The earliest time at which a token issued now outlives every revocation so far: the second after the
    /// latest one. Re-enabling, re-granting and revoking user tokens wait for it, so no token minted after them
    /// is born dead.
    pub fn revocations_settle_at(&self) -> Option<Timestamp> {
        let latest = self
            .tokens_revoked_at
            .max(self.isv_tokens_revoked_at)
            .max(self.user_tokens_revoked_at)?;
        Some(Timestamp::from_secs(latest.secs() + 1))
    }

    /// The flags this account may grant right now: its ISV flags that it still holds itself.
    pub fn grantable_flags(&self) -> FlagSet {
        match self.isv {
            Some(grant) if self.is_active_isv() => grant.flags.intersection(self.approved_flags),
            _ => FlagSet::EMPTY,
        }
    }
}

/// Whether `iat` (seconds) is at or before `revoked_at`'s second.
fn issued_by(revoked_at: Option<Timestamp>, iat: i64) -> bool {
    revoked_at.is_some_and(|at| iat <= at.secs())
}
