//! The operator's API (`/admin/…`, authenticated by the admin key): accounts addressed by their ARM resource id,
//! their keys and approvals, ISV standing, signing keys, and the audit log with its signed checkpoints.

use serde::{Deserialize, Serialize};
use tessera_core::audit::Event;
use tessera_core::{Account, AccountKind, Timestamp};

/// `PUT /admin{resourceId}`: the account to create (an empty body approves nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateAccount {
    /// Limited Access flags approved at once.
    #[serde(default)]
    pub approved_feature_flags: Vec<String>,
}

/// `PUT …/limitedAccess` (the approved flags, replaced) and `PUT …/isv` (the flags an ISV may grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FeatureFlags {
    /// Flag names, e.g. `Face.Identification`.
    pub feature_flags: Vec<String>,
}

/// `POST …/regenerateKey`: the slot to give a new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegenerateKey {
    /// `key1` or `key2`.
    pub key_name: String,
}

/// An account as the admin API shows it: the stored account, its kind, and whether it is an ISV that may issue now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// The account.
    #[serde(flatten)]
    pub account: Account,
    /// Face or Communication, from its resource id.
    pub kind: AccountKind,
    /// An ISV, not cut off, not disabled.
    pub isv_active: bool,
}

impl AccountView {
    /// The view of `account`.
    pub fn of(account: Account) -> Self {
        Self {
            kind: account.kind(),
            isv_active: account.is_active_isv(),
            account,
        }
    }
}

/// A created account, with both of its keys: the only time they are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAccount {
    /// The account.
    #[serde(flatten)]
    pub view: AccountView,
    /// A Communication account's ACS connection string (its endpoint and `key1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// The two subscription keys.
    pub keys: AccountKeys,
}

/// An account's two subscription keys.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountKeys {
    /// Slot `key1`.
    pub key1: String,
    /// Slot `key2`.
    pub key2: String,
}

impl std::fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountKeys { <redacted> }")
    }
}

/// `POST …/listKeys`: the key slots (keys are stored hashed and never shown again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlots {
    /// One entry per slot.
    pub keys: Vec<KeySlotName>,
    /// How to get a key.
    pub note: String,
}

/// A key slot's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySlotName {
    /// `key1` or `key2`.
    pub key_name: String,
}

/// `POST …/regenerateKey`: the slot's new key, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegeneratedKey {
    /// The slot.
    pub key_name: String,
    /// Its new key.
    pub key: String,
    /// A Communication account's ACS connection string with the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
}

impl std::fmt::Debug for RegeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegeneratedKey")
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

/// `GET /admin/accounts?after=&limit=`: which page of accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountListQuery {
    /// Start after this resource id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Page size (1 to 1000, 100 by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A page of accounts and the cursor of the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    /// The accounts, by resource id.
    pub value: Vec<AccountView>,
    /// The `after` of the next page, when there may be one.
    pub next_after: Option<String>,
}

/// `GET /admin/audit?…`: which audit events; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this actor (`admin`, `account:/subscriptions/…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only this action (`sts.issueLimitedAccessToken`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only this subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `success` or `denied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Only events filed under this ISV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isv: Option<String>,
    /// From this time on (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Until this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// After this sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A page of audit events and the cursor of the next (the operator's and an ISV's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// The events, oldest first.
    pub value: Vec<Event>,
    /// The `after` of the next page, when there may be one.
    pub next_after: Option<i64>,
}

/// `GET /admin/audit/checkpoints?after=&limit=`: which checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    /// After this sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A signed checkpoint of the audit chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The head's sequence number.
    pub seq: i64,
    /// The head's hash, hex.
    pub head: String,
    /// The signed checkpoint (a JWT that verifies with the JWKS).
    pub token: String,
    /// When it was signed, RFC 3339.
    pub created_at: String,
}

/// A page of checkpoints, oldest first, and the cursor of the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointPage {
    /// The checkpoints.
    pub value: Vec<Checkpoint>,
    /// The `after` of the next page, when there may be one.
    pub next_after: Option<i64>,
}

/// `GET /admin/keys`: the published signing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    /// Every published key.
    pub keys: Vec<SigningKey>,
}

/// A published signing key (its public half is in the JWKS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    /// Its key id.
    pub kid: String,
    /// `pending`, `active` or `retired`.
    pub state: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it started signing.
    pub activated_at: Option<Timestamp>,
    /// When it stopped signing.
    pub retired_at: Option<Timestamp>,
}

/// `POST /admin/keys/rotate`: what the rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    /// The key that started signing, if a pending one was there.
    pub activated: Option<String>,
    /// The keys that stopped signing.
    pub retired: Vec<String>,
    /// The next pending key, published now.
    pub published: String,
}
