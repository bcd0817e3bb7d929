//! Who is calling. [`Caller`] authenticates an account by `Ocp-Apim-Subscription-Key` or by an STS bearer token;
//! [`Admin`] authenticates the operator. Every authentication runs under the failure limiter
//! ([`rate_limited`], `crate::platform::ratelimit`): counted per client address and per presented credential, reserved
//! before it is verified, and never refusing a valid credential for others' failures.

use crate::http::error::ApiError;
use crate::platform::state::AppState;
use axum::extract::FromRef;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tessera_core::audit::action;
use tessera_core::claims::StsClaims;
use tessera_core::secret::KeyHash;
use tessera_core::{Account, KeySlot};

/// Header carrying an account's subscription key.
pub const SUBSCRIPTION_KEY_HEADER: &str = "ocp-apim-subscription-key";
/// Longest credential header accepted, bytes.
const MAX_CREDENTIAL_LEN: usize = 8192;

/// Associated data sealed with a Communication account's access key, so a sealed key only opens for its own
/// account and slot.
pub fn access_key_aad(account: uuid::Uuid, slot: KeySlot) -> String {
    format!("tessera/access-key/{account}/{}", slot.as_str())
}

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// One of its subscription keys.
    Key(KeySlot),
    /// An STS bearer token with this `jti`.
    StsToken(String),
    /// An ACS HMAC-SHA256 signature with one of its access keys.
    AccessKey(KeySlot),
}

/// An authenticated, enabled account.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account as stored now.
    pub account: Account,
    /// The credential used.
    pub credential: Credential,
}

impl Caller {
    /// The audit actor string.
    pub fn actor(&self) -> String {
        format!("account:{}", self.account.resource_id)
    }
}

/// The operator, authenticated by `Authorization: Bearer <admin key>`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

/// The client address, as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr
where
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = &AppState::from_ref(state);
        Ok(Self(client_ip(parts, state)))
    }
}

/// The client address: the peer's, or the one a trusted proxy forwarded (`crate::platform::forwarded`); loopback when the
/// app runs without a socket, as in router tests.
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ConnectInfo(addr)| addr.ip());
    crate::platform::forwarded::client_address(peer, &parts.headers, &state.config.trusted_proxies)
}

/// What the limiter counts a credential by: the SHA-256 of the subscription key, else of the whole
/// `Authorization` value (a bearer token, the admin key, an HMAC signature); none when neither is sent.
pub(crate) fn presented(headers: &HeaderMap) -> Option<[u8; 32]> {
    headers
        .get(SUBSCRIPTION_KEY_HEADER)
        .or_else(|| headers.get("authorization"))
        .map(|value| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes()).as_ref(),
            );
            hash
        })
}

pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) if v.len() <= MAX_CREDENTIAL_LEN => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ApiError::unauthorized("InvalidCredentials", "credential header is not ASCII")),
        Some(_) => Err(ApiError::unauthorized(
            "InvalidCredentials",
            "credential header is too long",
        )),
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    Ok(
        header(headers, "authorization")?.map(|v| match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => "",
        }),
    )
}

/// Runs an authentication attempt under the failure limiter: its place is reserved before it runs (a credential
/// that has failed too often is refused then, with 429), and a 401 counts against the address and the credential,
/// answered 429 instead once the address is over its limit. What verifies is never refused.
pub(crate) async fn rate_limited<T>(
    parts: &Parts,
    state: &AppState,
    attempt: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let reserved = state
        .auth_failures
        .reserve(client_ip(parts, state), presented(&parts.headers))
        .map_err(|wait| ApiError::too_many_requests(wait, "this credential has failed too often"))?;
    match attempt.await {
        Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED => match reserved.failed() {
            Some(wait) => Err(ApiError::too_many_requests(
                wait,
                "too many failed authentication attempts from this address",
            )),
            None => Err(e),
        },
        result => result,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        let caller = rate_limited(parts, state, authenticate(&parts.headers, state)).await?;
        admit(caller, parts, state).await
    }
}

/// Lets an authenticated caller in unless its account is disabled (a 403, audited).
pub(crate) async fn admit(caller: Caller, parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    if caller.account.disabled {
        let denied = ApiError::forbidden("AccountDisabled", "this account is disabled");
        state
            .event(&caller.actor(), action::AUTHENTICATION, parts.uri.path())
            .denied()
            .details(serde_json::json!({"code": denied.code()}))
            .record()
            .await?;
        return Err(denied);
    }
    Ok(caller)
}

/// Authenticates by subscription key or STS bearer token.
pub(crate) async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Caller, ApiError> {
    if let Some(key) = header(headers, SUBSCRIPTION_KEY_HEADER)? {
        let (account, slot) = state
            .store
            .account_by_key(&KeyHash::of(key))
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("InvalidSubscriptionKey", "the subscription key is not valid")
            })?;
        return Ok(Caller {
            account,
            credential: Credential::Key(slot),
        });
    }
    if let Some(token) = bearer(headers)? {
        let claims: StsClaims =
            state.keys.verify(token, state.clock.now()).await.map_err(|e| {
                ApiError::unauthorized(e.code(), format!("the bearer token is not valid: {e}"))
            })?;
        let account = state.store.account(&claims.sub).await?.ok_or_else(|| {
            ApiError::unauthorized("InvalidCredentials", "the token's account no longer exists")
        })?;
        // A disabled account is refused by `admit`; one enabled again does not revive what it had issued.
        if !account.disabled && account.revoked_token(claims.iat) {
            return Err(ApiError::unauthorized(
                "TokenRevoked",
                "the bearer token was issued before its account was last disabled",
            ));
        }
        // A leaked key's tokens die with its regeneration.
        if !account.minted_by_current_key(claims.kslot, claims.kgen) {
            return Err(ApiError::unauthorized(
                "TokenRevoked",
                format!(
                    "the bearer token was minted with {} before that key was regenerated",
                    claims.kslot.as_str()
                ),
            ));
        }
        return Ok(Caller {
            account,
            credential: Credential::StsToken(claims.jti),
        });
    }
    Err(ApiError::unauthorized(
        "MissingCredentials",
        "send the account's key in Ocp-Apim-Subscription-Key, or an STS token in Authorization: Bearer",
    ))
}

impl<S: Send + Sync> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        let check = async {
            match bearer(&parts.headers)? {
                Some(key) if KeyHash::of(key).matches(&state.admin_key) => Ok(Admin),
                None => Err(ApiError::unauthorized(
                    "MissingCredentials",
                    "send the admin key in Authorization: Bearer",
                )),
                Some(_) => Err(ApiError::unauthorized(
                    "InvalidAdminKey",
                    "the admin key is not valid",
                )),
            }
        };
        rate_limited(parts, state, check).await
    }
}
