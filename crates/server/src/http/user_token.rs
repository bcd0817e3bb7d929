//! User access tokens: minting them ([`mint`]) and checking them on every request that presents one
//! ([`UserToken`]).
//!
//! A presented token is honoured only if, *now*: its signature, `typ`, `iss`, `aud`, `exp`, `nbf` and `kid`
//! verify; its identity exists, is not deleted and has not had its tokens revoked since issuance (the `rev`
//! generation); its actor, if any, likewise; its refresh session, if any, has not ended; and its account is
//! still enabled. Nothing of this is cached, so a revocation on one node is seen by every node at once.

use crate::auth::{self, bearer};
use crate::error::ApiError;
use crate::routes::new_jti;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::claims::TokenType;
use tessera_core::identity::{Actor, Identity, UserClaims};
use tessera_core::scope::ScopeSet;
use tessera_core::{Account, Timestamp};

/// What a new user access token says.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// The account it belongs to.
    pub account: &'a Account,
    /// Its subject, as stored right after recording the issuance (its revocation generation goes in `rev`).
    pub identity: &'a Identity,
    /// Its scopes.
    pub scopes: ScopeSet,
    /// Its expiry, seconds.
    pub exp: i64,
    /// The identity acting for the subject, if any.
    pub actor: Option<&'a Identity>,
    /// The refresh session it belongs to, if any.
    pub session: Option<&'a str>,
}

/// Signs a user access token; returns it and its claims.
pub fn mint(state: &AppState, grant: Grant<'_>, now: Timestamp) -> Result<(String, UserClaims), ApiError> {
    let ring = state.keys.current();
    let claims = UserClaims {
        iss: ring.issuer().to_owned(),
        aud: UserClaims::AUDIENCE.to_owned(),
        sub: grant.identity.id.clone(),
        rid: grant.account.resource_id.clone(),
        scp: grant.scopes,
        rev: grant.identity.revocation,
        sid: grant.session.map(str::to_owned),
        act: grant.actor.map(|a| Actor {
            sub: a.id.clone(),
            rev: a.revocation,
        }),
        iat: now.secs(),
        nbf: now.secs(),
        exp: grant.exp,
        jti: new_jti(),
    };
    let token = ring.sign(&claims).map_err(|e| ApiError::internal(&e))?;
    metrics::counter!("tessera_issuances_total", "kind" => "user").increment(1);
    Ok((token, claims))
}

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

impl FromRequestParts<AppState> for UserToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
