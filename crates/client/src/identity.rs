//! A Communication account's trusted service, on Tessera's own identity dialect (`/v1/identities…`): create and
//! find identities, issue them user access tokens (optionally with a device refresh session), revoke, delete.

use crate::credential::IssuedToken;
use crate::{ClientError, Endpoint, KEY_HEADER, checked, json, segment};
use reqwest::Method;
use tessera_core::identity::IdentityKind;
use tessera_wire::identity::{self as wire, CreatedIdentity, IdentityWithToken};
pub use tessera_wire::identity::{Identity, TokenRequest};

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
        let mut body = serde_json::json!({"kind": kind});
        if let Some(name) = name {
            body["name"] = name.into();
        }
        let created: CreatedIdentity = json(self.request(Method::POST, "/v1/identities").json(&body)).await?;
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
        let issued: wire::AccessToken = json(self.request(Method::POST, &path).json(request)).await?;
        IssuedToken::of(issued)
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
        let answer: IdentityWithToken = json(
            self.request(Method::POST, "/v1/identities/:issueAccessToken")
                .json(&body),
        )
        .await?;
        Ok((answer.identity, IssuedToken::of(answer.access_token)?))
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
