//! The Limited Access gate, one component for every gated operation.
//!
//! A handler takes the [`LimitedAccess`] extractor (an authenticated [`Caller`] plus the `LimitedAccessToken:
//! Bearer <jwt>` header it sent, if any) and calls [`LimitedAccess::require`] with the feature flag the operation
//! needs, or [`LimitedAccess::require_all`] with a policy table row (every clause met by any of its flags). The
//! gate verifies the token (signature, `typ`, `iss`, `aud`, `exp`, `nbf`, published `kid`), reads the
//! issuing ISV as it is *now*, applies [`tessera_core::policy::decide`], and audits the decision, durably, before
//! the operation runs. A refusal is a 403 whose code names the reason.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::platform::state::AppState;
use axum::extract::FromRef;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::audit::action;
use tessera_core::claims::LimitedAccessClaims;
use tessera_core::policy::{self, DenyReason, Grant, TokenEvidence};
use tessera_core::{FeatureFlag, FlagSet};

/// Header that carries a limited access token.
pub const LIMITED_ACCESS_TOKEN_HEADER: &str = "limitedaccesstoken";

/// A caller and the limited access token it presented.
#[derive(Debug, Clone)]
pub struct LimitedAccess {
    /// The authenticated account.
    pub caller: Caller,
    token: Option<Result<String, ()>>,
}

impl<S: Send + Sync> FromRequestParts<S> for LimitedAccess
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        let caller = <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        let token = parts.headers.get(LIMITED_ACCESS_TOKEN_HEADER).map(|v| {
            let v = v.to_str().map_err(|_| ())?.trim();
            match v.split_once(' ') {
                Some((scheme, jwt)) if scheme.eq_ignore_ascii_case("bearer") && !jwt.trim().is_empty() => {
                    Ok(jwt.trim().to_owned())
                }
                _ => Err(()),
            }
        });
        Ok(Self { caller, token })
    }
}

impl LimitedAccess {
    /// Allows the request to use `flag` for `operation`, or refuses it with a 403. Either way the decision is in
    /// the audit log before this returns.
    pub async fn require(
        &self,
        state: &AppState,
        flag: FeatureFlag,
        operation: &str,
    ) -> Result<Grant, ApiError> {
        let mut grants = self
            .require_all(state, &[FlagSet::EMPTY.with(flag)], operation)
            .await?;
        grants
            .pop()
            .map(|(_, grant)| grant)
            .ok_or_else(|| ApiError::internal(&"a one-flag requirement was met without a grant"))
    }

    /// Allows the request if it meets every clause of `requirement`, each by any one of its flags (a policy table
    /// row, e.g. `tessera_core::face::FaceOperation::requirement`), or refuses it with a 403 naming the unmet flag.
    /// An empty requirement allows without a decision; any other decision is audited before this returns.
    pub async fn require_all(
        &self,
        state: &AppState,
        requirement: &[FlagSet],
        operation: &str,
    ) -> Result<Vec<(FeatureFlag, Grant)>, ApiError> {
        // Empty clauses are met vacuously: a requirement without any flag needs no decision.
        let Some(first_flag) = requirement.iter().flat_map(|c| c.iter()).next() else {
            return Ok(Vec::new());
        };
        let now = state.clock.now();
        let verified = match &self.token {
            None => Ok(None),
            Some(Err(())) => Err(DenyReason::InvalidToken("TokenMalformed")),
            Some(Ok(jwt)) => state
                .keys
                .verify::<LimitedAccessClaims>(jwt, now)
                .await
                .map(Some)
                .map_err(|e| DenyReason::InvalidToken(e.code())),
        };
        let isv = match &verified {
            Ok(Some(claims)) => state.store.account(&claims.isv).await?,
            _ => None,
        };
        let token = verified.as_ref().ok().and_then(Option::as_ref);
        let (token_jti, token_isv) = (token.map(|c| c.jti.clone()), token.map(|c| c.isv.to_string()));
        let decision = match verified {
            Err(reason) => Err((first_flag, reason)),
            Ok(claims) => {
                let evidence = claims.as_ref().map(|claims| TokenEvidence {
                    claims,
                    isv: isv.as_ref(),
                });
                policy::decide_requirement(requirement, &self.caller.account, evidence)
            }
        };
        let mut details = serde_json::json!({"operation": operation});
        if let Some(jti) = token_jti {
            details["jti"] = jti.into();
        }
        match &decision {
            Ok(grants) => {
                details["flag"] = grants.first().map(|(f, _)| f.name()).into();
                let by_token = grants.iter().find_map(|(_, g)| match g {
                    Grant::Token { isv, .. } => Some(isv),
                    Grant::OwnApproval => None,
                });
                details["grantedBy"] = if by_token.is_some() { "token" } else { "approval" }.into();
                if let Some(isv) = by_token {
                    details["isv"] = isv.to_string().into();
                }
                if grants.len() > 1 {
                    details["flags"] = grants.iter().map(|(f, _)| f.name()).collect::<Vec<_>>().into();
                }
            }
            Err((flag, reason)) => {
                details["flag"] = flag.name().into();
                details["reason"] = reason.code().into();
            }
        }
        let event = state.event(
            &self.caller.actor(),
            action::GATE,
            self.caller.account.resource_id.as_str(),
        );
        let event = if decision.is_err() { event.denied() } else { event };
        event.details(details).isv(token_isv.as_deref()).record().await?;

        let (label, reason) = match &decision {
            Ok(_) => ("allowed", "none"),
            Err((_, r)) => ("denied", r.code()),
        };
        metrics::counter!("tessera_gate_decisions_total", "decision" => label, "reason" => reason)
            .increment(1);
        decision.map_err(|(flag, reason)| ApiError::forbidden(reason.code(), reason.message(flag)))
    }
}
