//! The token service: `issueToken`, `issueLimitedAccessToken`, the gate's check endpoint, and an ISV's view of
//! the audit events of the tokens it issued.
//!
//! The issuer of a limited access token authenticates with **its own** key (or its STS token). The client's key
//! is never sent to the ISV's endpoint: that would hand the client's key to the ISV.

use crate::http::audit_page::audit_page;
use crate::http::auth::{Caller, Credential};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::gate::LimitedAccess;
use crate::platform::secrets::new_jti;
use crate::platform::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tessera_core::audit::action;
use tessera_core::claims::{LimitedAccessClaims, STS_TOKEN_LIFETIME_SECS, StsClaims, TokenType};
use tessera_core::policy::{self, Grant};
use tessera_core::{FeatureFlag, FlagSet, ResourceId};
use tessera_store::AuditQuery;
use tessera_wire::sts::{GateAllowed, GateCheck, IsvAuditQuery, LimitedAccessTokenRequest};

/// `POST /sts/v1.0/issueToken`: a 10-minute bearer token for the account whose key is presented.
pub async fn issue_token(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Credential::Key(slot) = caller.credential else {
        let e = ApiError::forbidden(
            "SubscriptionKeyRequired",
            "issueToken requires the subscription key",
        );
        refuse(
            &state,
            &caller,
            action::ISSUE_TOKEN,
            caller.account.resource_id.as_str(),
            &e,
        )
        .await?;
        return Err(e);
    };
    let now = state.clock.now();
    let claims = StsClaims {
        iss: state.keys.current().issuer().to_owned(),
        aud: StsClaims::AUDIENCE.to_owned(),
        sub: caller.account.resource_id.clone(),
        iat: now.secs(),
        nbf: now.secs(),
        exp: now.secs() + STS_TOKEN_LIFETIME_SECS,
        jti: new_jti(),
        kslot: slot,
        kgen: caller.account.key_generations.of(slot),
    };
    let token = state
        .keys
        .current()
        .sign(&claims)
        .map_err(|e| ApiError::internal(&e))?;
    state
        .event(
            &caller.actor(),
            action::ISSUE_TOKEN,
            caller.account.resource_id.as_str(),
        )
        .details(serde_json::json!({"jti": claims.jti, "exp": claims.exp}))
        .record()
        .await?;
    metrics::counter!("tessera_issuances_total", "kind" => "sts").increment(1);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response())
}

/// Query of `issueLimitedAccessToken`.
#[derive(Debug, Deserialize)]
pub struct LatQuery {
    #[serde(rename = "expiredTime")]
    expired_time: Option<String>,
}

/// `POST /sts/v1.0/issueLimitedAccessToken?expiredTime=N`: an ISV grants a client some of its flags.
pub async fn issue_limited_access_token(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<ApiQuery<LatQuery>, ApiError>,
    body: Result<ApiJson<LimitedAccessTokenRequest>, ApiError>,
) -> Result<Response, ApiError> {
    match issue_lat(&state, &caller, query, body).await {
        Ok(token) => Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response()),
        Err((subject, e)) => {
            refuse(&state, &caller, action::ISSUE_LIMITED_ACCESS_TOKEN, &subject, &e).await?;
            Err(e)
        }
    }
}

async fn issue_lat(
    state: &AppState,
    caller: &Caller,
    query: Result<ApiQuery<LatQuery>, ApiError>,
    body: Result<ApiJson<LimitedAccessTokenRequest>, ApiError>,
) -> Result<String, (String, ApiError)> {
    let no_subject = |e: ApiError| (String::new(), e);
    let ApiQuery(query) = query.map_err(no_subject)?;
    let lifetime = policy::lat_lifetime(query.expired_time.as_deref()).map_err(|e| no_subject(e.into()))?;
    let ApiJson(body) = body.map_err(no_subject)?;
    let subject = body.resource_id.chars().take(512).collect::<String>();
    let with_subject = |e: ApiError| (subject.clone(), e);
    let requested = FlagSet::parse(&body.feature_flags).map_err(|e| with_subject(e.into()))?;
    let target_id = ResourceId::parse(&body.resource_id).map_err(|e| with_subject(e.into()))?;
    let target = state
        .store
        .account(&target_id)
        .await
        .map_err(|e| with_subject(e.into()))?
        .ok_or_else(|| {
            with_subject(ApiError::not_found(
                "ResourceNotFound",
                "no account has this resource id",
            ))
        })?;
    policy::authorize_issuance(&caller.account, &target, requested).map_err(|e| with_subject(e.into()))?;

    let now = state.clock.now();
    let ring = state.keys.current();
    let claims = LimitedAccessClaims {
        iss: ring.issuer().to_owned(),
        aud: LimitedAccessClaims::AUDIENCE.to_owned(),
        sub: target.resource_id.clone(),
        flags: requested,
        isv: caller.account.resource_id.clone(),
        iat: now.secs(),
        nbf: now.secs(),
        exp: now.secs() + lifetime,
        jti: new_jti(),
    };
    let token = ring
        .sign(&claims)
        .map_err(|e| with_subject(ApiError::internal(&e)))?;
    state
        .event(
            &caller.actor(),
            action::ISSUE_LIMITED_ACCESS_TOKEN,
            target.resource_id.as_str(),
        )
        .details(serde_json::json!({
            "jti": claims.jti,
            "flags": requested,
            "exp": claims.exp,
            "kid": ring.active_kid(),
        }))
        .isv(Some(caller.account.resource_id.as_str()))
        .record()
        .await
        .map_err(|e| with_subject(e.into()))?;
    metrics::counter!("tessera_issuances_total", "kind" => "limited_access").increment(1);
    Ok(token)
}

/// Audits and counts a refusal of an authenticated caller.
async fn refuse(
    state: &AppState,
    caller: &Caller,
    action: &str,
    subject: &str,
    e: &ApiError,
) -> Result<(), ApiError> {
    state
        .refusal(&caller.actor(), action, subject, e.code(), e.status())
        .isv(
            caller
                .account
                .isv
                .is_some()
                .then(|| caller.account.resource_id.as_str()),
        )
        .record()
        .await
        .map_err(ApiError::from)
}

/// `POST /sts/v1.0/limitedAccess/check`: asks the gate whether this request may use a flag. 200 with how it is
/// allowed, or the gate's 403.
pub async fn check(
    State(state): State<AppState>,
    access: LimitedAccess,
    ApiJson(body): ApiJson<GateCheck>,
) -> Result<Response, ApiError> {
    let flag = FeatureFlag::parse(&body.feature_flag)?;
    let grant = access.require(&state, flag, "limitedAccess.check").await?;
    let answer = match grant {
        Grant::OwnApproval => GateAllowed {
            allowed: true,
            feature_flag: flag.name().to_owned(),
            granted_by: "approval".to_owned(),
            jti: None,
            isv: None,
        },
        Grant::Token { jti, isv } => GateAllowed {
            allowed: true,
            feature_flag: flag.name().to_owned(),
            granted_by: "token".to_owned(),
            jti: Some(jti),
            isv: Some(isv.to_string()),
        },
    };
    Ok(axum::Json(answer).into_response())
}

/// `GET /sts/v1.0/limitedAccess/audit`: the audit events of the limited access tokens this ISV issued (issuances
/// and every use), oldest first, paged with `after`.
pub async fn isv_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IsvAuditQuery>,
) -> Result<Response, ApiError> {
    if caller.account.isv.is_none() {
        return Err(ApiError::forbidden(
            "NotAnIsv",
            "only ISV accounts have limited access audit events",
        ));
    }
    let query = AuditQuery {
        isv: Some(caller.account.resource_id.to_string()),
        after_seq: q.after.unwrap_or(0),
        limit: q.limit.unwrap_or(100),
        ..AuditQuery::default()
    };
    Ok(axum::Json(audit_page(&state, &query).await?).into_response())
}
