//! The operator's API (`/admin/…`), authenticated by the admin key: accounts by their ARM resource id, their keys
//! and approvals, ISV standing, signing keys, and the audit log with its signed checkpoints. Every answer is the
//! typed body of `tessera_wire::admin`.

use crate::{ClientError, Endpoint, json};
use reqwest::Method;
use serde::Serialize;
use tessera_wire::admin::{
    AccountListQuery, AccountPage, AccountView, AuditFilter, AuditPage, CheckpointPage, CheckpointQuery,
    CreateAccount, CreatedAccount, FeatureFlags, KeyRotation, KeySlots, RegenerateKey, RegeneratedKey,
    SigningKeys,
};

/// The operator's client, presenting the admin key as a bearer token.
#[derive(Clone)]
pub struct AdminClient {
    endpoint: Endpoint,
    admin_key: String,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("endpoint", &self.endpoint)
            .field("admin_key", &"<redacted>")
            .finish()
    }
}

/// Errors of every method: [`ClientError::Refused`] when the server refuses (a wrong admin key is 401
/// `InvalidAdminKey`; an unknown account 404 `ResourceNotFound`); transport errors.
impl AdminClient {
    /// A client presenting `admin_key`.
    pub fn new(endpoint: Endpoint, admin_key: impl Into<String>) -> Self {
        Self {
            endpoint,
            admin_key: admin_key.into(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.endpoint.request(method, path).bearer_auth(&self.admin_key)
    }

    /// A request about the account `resource_id`, or one of its actions (`listKeys`, `isv/cutOff`).
    fn account_request(&self, method: Method, resource_id: &str, action: &str) -> reqwest::RequestBuilder {
        let account = resource_id.trim_end_matches('/');
        let path = if action.is_empty() {
            format!("/admin{account}")
        } else {
            format!("/admin{account}/{action}")
        };
        self.request(method, &path)
    }

    async fn account_action<B: Serialize>(
        &self,
        method: Method,
        resource_id: &str,
        action: &str,
        body: Option<&B>,
    ) -> Result<AccountView, ClientError> {
        let request = self.account_request(method, resource_id, action);
        json(match body {
            Some(body) => request.json(body),
            None => request,
        })
        .await
    }

    /// `PUT /admin{resourceId}`: creates the account with `approved` flags; its two keys are in the answer, and
    /// only there.
    pub async fn create_account(
        &self,
        resource_id: &str,
        approved: &[String],
    ) -> Result<CreatedAccount, ClientError> {
        let body = CreateAccount {
            approved_feature_flags: approved.to_vec(),
        };
        json(self.account_request(Method::PUT, resource_id, "").json(&body)).await
    }

    /// `GET /admin{resourceId}`.
    pub async fn account(&self, resource_id: &str) -> Result<AccountView, ClientError> {
        json(self.account_request(Method::GET, resource_id, "")).await
    }

    /// `GET /admin/accounts`: a page of accounts after `query.after`.
    pub async fn list_accounts(&self, query: &AccountListQuery) -> Result<AccountPage, ClientError> {
        json(self.request(Method::GET, "/admin/accounts").query(query)).await
    }

    /// `POST …/listKeys`: the key slots (keys themselves are never shown again).
    pub async fn key_slots(&self, resource_id: &str) -> Result<KeySlots, ClientError> {
        json(self.account_request(Method::POST, resource_id, "listKeys")).await
    }

    /// `POST …/regenerateKey`: a new key for `key_name` (`key1` or `key2`); the slot's old key and its STS tokens
    /// stop working.
    pub async fn regenerate_key(
        &self,
        resource_id: &str,
        key_name: &str,
    ) -> Result<RegeneratedKey, ClientError> {
        let body = RegenerateKey {
            key_name: key_name.to_owned(),
        };
        json(
            self.account_request(Method::POST, resource_id, "regenerateKey")
                .json(&body),
        )
        .await
    }

    /// `PUT …/limitedAccess`: replaces the approved Limited Access flags.
    pub async fn approve(&self, resource_id: &str, flags: &[String]) -> Result<AccountView, ClientError> {
        let body = FeatureFlags {
            feature_flags: flags.to_vec(),
        };
        self.account_action(Method::PUT, resource_id, "limitedAccess", Some(&body))
            .await
    }

    /// `PUT …/isv`: makes the account an ISV for `flags` it holds (re-enables a cut-off ISV).
    pub async fn grant_isv(&self, resource_id: &str, flags: &[String]) -> Result<AccountView, ClientError> {
        let body = FeatureFlags {
            feature_flags: flags.to_vec(),
        };
        self.account_action(Method::PUT, resource_id, "isv", Some(&body))
            .await
    }

    /// `POST …/isv/cutOff`: the ISV's live tokens stop working.
    pub async fn cut_off_isv(&self, resource_id: &str) -> Result<AccountView, ClientError> {
        self.account_action::<()>(Method::POST, resource_id, "isv/cutOff", None)
            .await
    }

    /// `POST …/disable`.
    pub async fn disable(&self, resource_id: &str) -> Result<AccountView, ClientError> {
        self.account_action::<()>(Method::POST, resource_id, "disable", None)
            .await
    }

    /// `POST …/enable`.
    pub async fn enable(&self, resource_id: &str) -> Result<AccountView, ClientError> {
        self.account_action::<()>(Method::POST, resource_id, "enable", None)
            .await
    }

    /// `POST …/revokeUserTokens`: every user token of the account's identities issued so far dies, and with them
    /// every device session.
    pub async fn revoke_user_tokens(&self, resource_id: &str) -> Result<AccountView, ClientError> {
        self.account_action::<()>(Method::POST, resource_id, "revokeUserTokens", None)
            .await
    }

    /// `GET /admin/keys`: the published signing keys.
    pub async fn signing_keys(&self) -> Result<SigningKeys, ClientError> {
        json(self.request(Method::GET, "/admin/keys")).await
    }

    /// `POST /admin/keys/rotate`: the pending key starts signing and a new pending key is published.
    pub async fn rotate_keys(&self) -> Result<KeyRotation, ClientError> {
        json(self.request(Method::POST, "/admin/keys/rotate")).await
    }

    /// `GET /admin/audit`: a page of audit events matching `filter`.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<AuditPage, ClientError> {
        json(self.request(Method::GET, "/admin/audit").query(filter)).await
    }

    /// `GET /admin/audit/checkpoints`: a page of the audit chain's signed checkpoints, to keep elsewhere.
    pub async fn audit_checkpoints(&self, query: &CheckpointQuery) -> Result<CheckpointPage, ClientError> {
        json(self.request(Method::GET, "/admin/audit/checkpoints").query(query)).await
    }
}
