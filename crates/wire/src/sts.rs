//! The security token service (`/sts/v1.0/…`): what an ISV asks a limited access token for, what the gate's check
//! endpoint is asked and answers, and which page of its tokens' audit an ISV reads. `issueToken` and
//! `issueLimitedAccessToken` answer the JWT itself, as plain text, as Azure does.

use serde::{Deserialize, Serialize};

/// `POST /sts/v1.0/issueLimitedAccessToken`: the client account and the flags to grant it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitedAccessTokenRequest {
    /// The client's ARM resource id (`targetAzureResourceId` is accepted too).
    #[serde(alias = "targetAzureResourceId")]
    pub resource_id: String,
    /// Flags to grant, a subset of the ISV's own.
    pub feature_flags: Vec<String>,
}

/// `POST /sts/v1.0/limitedAccess/check`: the flag this request would use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GateCheck {
    /// A flag name, e.g. `Face.Identification`.
    pub feature_flag: String,
}

/// The gate's check answered 200: the flag is allowed, and by what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateAllowed {
    /// Always `true` (a refusal is the gate's 403).
    pub allowed: bool,
    /// The flag.
    pub feature_flag: String,
    /// `approval` (the account's own) or `token` (a limited access token).
    pub granted_by: String,
    /// The token's `jti`, when a token allowed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The ISV that issued that token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isv: Option<String>,
}

/// `GET /sts/v1.0/limitedAccess/audit?after=&limit=`: which page of an ISV's audit (answered as
/// [`crate::admin::AuditPage`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsvAuditQuery {
    /// After this sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}
