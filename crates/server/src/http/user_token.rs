//! User access tokens checked on every request that presents one ([`UserToken`]); minting them is the
//! Communication area's (`crate::communication::grant`).
//!
//! A presented token is honoured only if, *now*: its signature, `typ`, `iss`, `aud`, `exp`, `nbf` and `kid`
//! verify; its identity exists, is not deleted and has not had its tokens revoked since issuance (the `rev`
//! generation); its actor, if any, likewise; its refresh session, if any, has not ended; and its account is
//! still enabled. Nothing of this is cached, so a revocation on one node is seen by every node at once.

use crate::http::auth::{self, bearer};
use crate::http::error::ApiError;
use crate::platform::state::AppState;
use axum::extract::FromRef;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::Account;
use tessera_core::identity::{Identity, UserClaims};

/// A live user access token from `Authorization: Bearer`, and what it names as stored now.
#[derive(Debug, Clone)]
pub struct UserToken {
    /// The verified claims.
    pub claims: UserClaims,
    /// The token's subject.
    pub identity: Identity,
    /// The identity acting for the subject (`act`), if any.
    pub actor: Option<Identity>,
    /// The token's account (enabled).
    pub account: Account,
}

impl UserToken {
    /// The audit actor string.
    pub fn actor(&self) -> String {
        format!("identity:{}", self.identity.id)
    }
}

fn refused(code: &'static str, message: &'static str) -> ApiError {
    ApiError::unauthorized(code, message)
}

impl<S: Send + Sync> FromRequestParts<S> for UserToken
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        auth::rate_limited(parts, state, check(parts, state)).await
    }
}

async fn check(parts: &Parts, state: &AppState) -> Result<UserToken, ApiError> {
    let raw = bearer(&parts.headers)?.ok_or_else(|| {
        refused(
            "MissingCredentials",
            "send the user access token in Authorization: Bearer",
        )
    })?;
    let claims: UserClaims = state
        .keys
        .verify(raw, state.clock.now())
        .await
        .map_err(|e| ApiError::unauthorized(e.code(), format!("the access token is not valid: {e}")))?;
    live(state, claims).await
}

/// The token with these verified `claims`, if it is still honoured now (the checks of [`UserToken`] after the
/// signature): a long-lived connection asks again from time to time.
pub async fn live(state: &AppState, claims: UserClaims) -> Result<UserToken, ApiError> {
    if claims.exp <= state.clock.now().secs() {
        return Err(refused("TokenExpired", "the access token has expired"));
    }
    let identity = state
        .store
        .identity(&claims.sub)
        .await?
        .filter(|i| i.deleted_at.is_none())
        .ok_or_else(|| refused("IdentityDeleted", "the token's identity has been deleted"))?;
    if !identity.honours(&claims) {
        return Err(refused("TokenRevoked", "the identity's tokens have been revoked"));
    }
    let actor = match &claims.act {
        Some(act) => Some(
            state
                .store
                .identity(&act.sub)
                .await?
                .filter(|a| a.honours_actor(act))
                .ok_or_else(|| {
                    refused(
                        "ActorRevoked",
                        "the acting identity has been deleted or its tokens revoked",
                    )
                })?,
        ),
        None => None,
    };
    if let Some(sid) = &claims.sid {
        let live = state.store.session(sid).await?.is_some_and(|s| s.is_live());
        if !live {
            return Err(refused("SessionEnded", "the token's refresh session has ended"));
        }
    }
    let account = state
        .store
        .account(&claims.rid)
        .await?
        .filter(|a| a.id == identity.id.account() && !a.disabled)
        .ok_or_else(|| refused("AccountDisabled", "the token's account is disabled or gone"))?;
    if account.revoked_user_token(claims.iat) {
        return Err(refused(
            "TokenRevoked",
            "the token was issued before its account was last disabled or its user tokens revoked",
        ));
    }
    Ok(UserToken {
        claims,
        identity,
        actor,
        account,
    })
}
