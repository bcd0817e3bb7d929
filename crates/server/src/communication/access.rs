//! What an end-user device does with its user access token, without the trusted service.
//!
//! - `GET /access/me`: the token's identity, scopes and expiry while it is honoured; 401 once it is not
//!   (revoked, deleted, session ended, expired).
//! - `POST /access/:refreshAccessToken` with `Authorization: Bearer <token>` and `{"refreshToken", "scopes"?}`:
//!   a fresh token of the same session and a new refresh secret. The rules and the threat model are in
//!   `tessera_core::session`. Every refresh, and every refusal after the token was verified, is audited; a
//!   spent secret presented again ends the session.

use crate::communication::grant::{self, Grant};
use crate::communication::identities::{new_refresh_secret, view};
use crate::http::auth::ClientAddr;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::user_token::UserToken;
use crate::platform::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tessera_core::Timestamp;
use tessera_core::audit::action;
use tessera_core::scope::ScopeSet;
use tessera_core::secret::KeyHash;
use tessera_core::session::{EndReason, RefreshRefusal};
use tessera_wire::identity::AccessToken;

/// `GET /access/me`.
pub async fn me(token: UserToken) -> Json<serde_json::Value> {
    let claims = &token.claims;
    let mut answer = json!({
        "identity": view(&token.identity),
        "account": claims.rid,
        "scopes": claims.scp,
        "expiresOn": Timestamp::from_secs(claims.exp).to_rfc3339(),
    });
    if let Some(actor) = &claims.act {
        answer["actor"] = actor.sub.as_str().into();
    }
    if let Some(sid) = &claims.sid {
        answer["sessionId"] = sid.clone().into();
    }
    Json(answer)
}

/// Body of a refresh.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshBody {
    refresh_token: String,
    /// Narrower scopes for the new token; by default those of the presented one.
    scopes: Option<Vec<String>>,
}

fn refusal(r: RefreshRefusal) -> ApiError {
    match r {
        RefreshRefusal::ScopeWidening => ApiError::forbidden(r.code(), r.message()),
        _ => ApiError::unauthorized(r.code(), r.message()),
    }
}

/// `POST /access/:refreshAccessToken`: 200 `{"token","expiresOn","refreshToken"}`.
pub async fn refresh(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    token: UserToken,
    body: Result<ApiJson<RefreshBody>, ApiError>,
) -> Result<Response, ApiError> {
    let result = refresh_session(&state, &token, body).await;
    if let Err(e) = &result {
        if e.status() == StatusCode::UNAUTHORIZED {
            // Wrong or spent secrets count against the address and the token, like any failed authentication.
            if let Ok(attempt) = state
                .auth_failures
                .reserve(ip, crate::http::auth::presented(&headers))
            {
                let _ = attempt.failed();
            }
        }
        let mut details =
            json!({"code": e.code(), "status": e.status().as_u16(), "presentedJti": token.claims.jti});
        if let Some(sid) = &token.claims.sid {
            details["sid"] = sid.clone().into();
        }
        state
            .refusal(
                &token.actor(),
                action::USER_TOKEN_REFRESH,
                token.identity.id.as_str(),
                e.code(),
                e.status(),
            )
            .details(details)
            .record()
            .await?;
    }
    result
}

async fn refresh_session(
    state: &AppState,
    token: &UserToken,
    body: Result<ApiJson<RefreshBody>, ApiError>,
) -> Result<Response, ApiError> {
    let ApiJson(body) = body?;
    let claims = &token.claims;
    let sid = claims.sid.as_deref().ok_or_else(|| {
        ApiError::forbidden(
            "NotRefreshable",
            "this token has no refresh session; the trusted service opens one with sessionMinutes",
        )
    })?;
    let scopes = match &body.scopes {
        Some(names) => ScopeSet::parse(names)?,
        None => claims.scp,
    };
    if !scopes.within(claims.scp) {
        return Err(refusal(RefreshRefusal::ScopeWidening));
    }
    let presented = KeyHash::of(&body.refresh_token);
    let generation = match state.store.refresh_secret(&presented).await? {
        Some((secret_sid, generation)) if secret_sid == sid => generation,
        _ => return Err(refusal(RefreshRefusal::UnknownSecret)),
    };
    let now = state.clock.now();
    let session = state
        .store
        .session(sid)
        .await?
        .ok_or_else(|| refusal(RefreshRefusal::UnknownSecret))?;
    let next = new_refresh_secret()?;
    let checked = session.check_refresh(generation, now);
    let advanced = match checked {
        Ok(()) => {
            state
                .store
                .advance_session(sid, generation, &KeyHash::of(&next))
                .await?
        }
        Err(_) => false,
    };
    if !advanced {
        // A spent secret, or a concurrent refresh that won this generation: either way the secret was used twice.
        let refused = checked.err().unwrap_or(RefreshRefusal::SecretReused);
        if refused == RefreshRefusal::SecretReused {
            end_on_reuse(state, token, sid).await?;
        }
        return Err(refusal(refused));
    }
    // Read by the token check just now; a revocation landing after it still ends the new token (same `rev`).
    let identity = &token.identity;
    // The actor and the account as the token check read them just now.
    let grant = Grant {
        account: &token.account,
        identity,
        scopes,
        exp: session.refreshed_expiry(now),
        actor: token.actor.as_ref(),
        session: Some(sid),
    };
    let (jwt, fresh) = grant::mint(state, grant, now)?;
    let mut details = json!({
        "sid": sid,
        "generation": generation + 1,
        "jti": fresh.jti,
        "presentedJti": claims.jti,
        "scopes": fresh.scp,
        "exp": fresh.exp,
    });
    if let Some(actor) = &fresh.act {
        details["actor"] = actor.sub.as_str().into();
    }
    state
        .event(&token.actor(), action::USER_TOKEN_REFRESH, identity.id.as_str())
        .details(details)
        .record()
        .await?;
    Ok(Json(AccessToken {
        token: jwt,
        expires_on: Timestamp::from_secs(fresh.exp).to_rfc3339(),
        refresh_token: Some(next),
    })
    .into_response())
}

/// Ends a session whose refresh secret was presented twice, and audits it.
async fn end_on_reuse(state: &AppState, token: &UserToken, sid: &str) -> Result<(), ApiError> {
    let now = state.clock.now();
    state.store.end_session(sid, EndReason::SecretReused, now).await?;
    state
        .event(&token.actor(), action::SESSION_END, token.identity.id.as_str())
        .details(json!({"sid": sid, "reason": EndReason::SecretReused.as_str()}))
        .record()
        .await?;
    Ok(())
}
