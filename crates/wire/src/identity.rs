//! Communication identities and their user access tokens, as the ACS Identity dialect and Tessera's `/v1` dialect
//! answer them (docs/wire.md §1): an identity, a token, the two together, and what a token is asked for.

use serde::{Deserialize, Serialize};
use tessera_core::identity::IdentityKind;

/// A communication identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `8:acs:<account>_<uuid>`.
    pub id: String,
    /// Its unique name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it stands for.
    pub kind: IdentityKind,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A user access token as issued: `{"token", "expiresOn"}` as ACS writes it, and the device session's refresh
/// secret when one was opened.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// Its expiry, RFC 3339 UTC with milliseconds.
    pub expires_on: String,
    /// The session's refresh secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_on", &self.expires_on)
            .finish_non_exhaustive()
    }
}

/// An identity and a token of it: what creating one with a token, and issuing by name, answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityWithToken {
    /// The identity.
    pub identity: Identity,
    /// Its token.
    pub access_token: AccessToken,
}

/// An identity just created, with its token when one was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedIdentity {
    /// The identity.
    pub identity: Identity,
    /// Its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
}

/// What a token is issued for (`/v1` dialect).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Scopes (`chat`, `chat.join`, `voip`, …).
    pub scopes: Vec<String>,
    /// Lifetime, minutes (the server's default when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_minutes: Option<i64>,
    /// Opens a device refresh session of this length, minutes: the answer then carries a refresh secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_minutes: Option<i64>,
}

impl TokenRequest {
    /// A request for `scopes` with the server's default lifetime and no session.
    pub fn scopes(scopes: &[&str]) -> Self {
        Self {
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        }
    }
}
