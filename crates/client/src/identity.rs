//! A Communication account's trusted service, on Tessera's own identity dialect (`/v1/identities…`): create and
//! find identities, issue them user access tokens (optionally with a device refresh session), revoke, delete.

use crate::credential::AccessToken;
use crate::{ClientError, Endpoint, KEY_HEADER, checked, json, segment};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tessera_core::identity::IdentityKind;

/// A communication identity as the server answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// `8:acs:<account>_<uuid>`.
    pub id: String,
    /// Its unique name, if it has one.
    pub name: Option<String>,
    /// What it stands for.
    pub kind: IdentityKind,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// What a token is issued for.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Scopes (`chat`, `chat.join`, `voip`, …).
    pub scopes: Vec<String>,
    /// Lifetime, minutes (the server's default when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_minutes: Option<i64>,
    /// Opens a device refresh session of this length, minutes: the answer then carries a refresh secret.
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// A token as issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token and its expiry.
    pub token: AccessToken,
    /// The refresh secret of the device session, when one was asked for.
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenWire {
    pub(crate) token: String,
    pub(crate) expires_on: String,
    pub(crate) refresh_token: Option<String>,
}

impl TokenWire {
    pub(crate) fn into_issued(self) -> Result<IssuedToken, ClientError> {
        Ok(IssuedToken {
            token: AccessToken::parse(self.token, &self.expires_on)?,
            refresh_token: self.refresh_token,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WithToken {
    identity: Identity,
    access_token: TokenWire,
}

/// The trusted service of one Communication account, authenticated by a subscription key of the account.
#[derive(Clone)]
pub struct IdentityClient {
    endpoint: Endpoint,
    key: String,
}

impl std::fmt::Debug for IdentityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityClient")
            .field("endpoint", &self.endpoint)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl IdentityClient {
    /// A client presenting `key`.
    pub fn new(endpoint: Endpoint, key: impl Into<String>) -> Self {
        Self {
            endpoint,
            key: key.into(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.endpoint.request(method, path).header(KEY_HEADER, &self.key)
    }

    /// `POST /v1/identities`: a new identity, with a unique `name` if given (409 `IdentityAlreadyExists` when a
    /// live identity has it).
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`]; transport errors.
    pub async fn create(&self, name: Option<&str>, kind: IdentityKind) -> Result<Identity, ClientError> {
        #[derive(Deserialize)]
        struct Created {
            identity: Identity,
        }
        let mut body = serde_json::json!({"kind": kind});
        if let Some(name) = name {
            body["name"] = name.into();
        }
        let created: Created = json(self.request(Method::POST, "/v1/identities").json(&body)).await?;
        Ok(created.identity)
    }

    /// `GET /v1/identities/{id}`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (404 for an unknown, deleted or other account's identity); transport errors.
    pub async fn get(&self, id: &str) -> Result<Identity, ClientError> {
        json(self.request(Method::GET, &format!("/v1/identities/{}", segment(id)))).await
    }

    /// `POST /v1/identities/{id}/:issueAccessToken`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (unknown scope, lifetime out of range, unknown identity); transport errors.
    pub async fn issue_token(&self, id: &str, request: &TokenRequest) -> Result<IssuedToken, ClientError> {
        let path = format!("/v1/identities/{}/:issueAccessToken", segment(id));
        let wire: TokenWire = json(self.request(Method::POST, &path).json(request)).await?;
        wire.into_issued()
    }

    /// `POST /v1/identities/:issueAccessToken`: a token for the identity called `name`, created (as `kind`) if
    /// there is none yet.
    ///
    /// # Errors
    ///
    /// As [`IdentityClient::issue_token`].
    pub async fn issue_token_by_name(
        &self,
        name: &str,
        kind: IdentityKind,
        request: &TokenRequest,
    ) -> Result<(Identity, IssuedToken), ClientError> {
        let mut body =
            serde_json::to_value(request).map_err(|e| ClientError::UnexpectedResponse(e.to_string()))?;
        body["name"] = name.into();
        body["kind"] = serde_json::to_value(kind).unwrap_or_default();
        let answer: WithToken = json(
            self.request(Method::POST, "/v1/identities/:issueAccessToken")
                .json(&body),
        )
        .await?;
        Ok((answer.identity, answer.access_token.into_issued()?))
    }

    /// `POST /v1/identities/{id}/:revokeAccessTokens`: every token issued so far stops working, on every node.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`]; transport errors.
    pub async fn revoke_tokens(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/v1/identities/{}/:revokeAccessTokens", segment(id));
        checked(self.request(Method::POST, &path)).await.map(drop)
    }

    /// `DELETE /v1/identities/{id}`: the identity and its tokens are gone.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`]; transport errors.
    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        checked(self.request(Method::DELETE, &format!("/v1/identities/{}", segment(id))))
            .await
            .map(drop)
    }
}
