//! Minting user access tokens: what a new token says ([`Grant`]) and its signature ([`mint`]). Checking a
//! presented one is `crate::http::user_token`.

use crate::http::error::ApiError;
use crate::platform::secrets::new_jti;
use crate::platform::state::AppState;
use tessera_core::claims::TokenType;
use tessera_core::identity::{Actor, Identity, UserClaims};
use tessera_core::scope::ScopeSet;
use tessera_core::{Account, Timestamp};

/// What a new user access token says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant<'a> {
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
pub(crate) fn mint(
    state: &AppState,
    grant: Grant<'_>,
    now: Timestamp,
) -> Result<(String, UserClaims), ApiError> {
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
