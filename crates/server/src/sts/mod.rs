//! The security token service: `issueToken` and `issueLimitedAccessToken`, the gate's check endpoint, an ISV's
//! audit of its tokens (`tokens`), and the published verification keys (`wellknown`). The gate itself is
//! `crate::http::gate`: Face applies it too.

mod tokens;
mod wellknown;

use crate::platform::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The STS and key-discovery routes over `state`.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .route("/sts/v1.0/issueToken", post(tokens::issue_token))
        .route(
            "/sts/v1.0/issueLimitedAccessToken",
            post(tokens::issue_limited_access_token),
        )
        .route("/sts/v1.0/limitedAccess/check", post(tokens::check))
        .route("/sts/v1.0/limitedAccess/audit", get(tokens::isv_audit))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/openid-configuration", get(wellknown::discovery))
        .with_state(state)
}
