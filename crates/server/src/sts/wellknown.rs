//! Key discovery: the JWKS and an OpenID-style discovery document.

use crate::platform::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /.well-known/jwks.json`: every published key (pending, active, retired). Cacheable for a short time,
/// shorter than the interval between a key's publication and its first signature is intended to be.
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        axum::Json(state.keys.current().jwks()),
    )
        .into_response()
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(State(state): State<AppState>) -> Response {
    let issuer = state.keys.current().issuer().to_owned();
    axum::Json(serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/sts/v1.0/issueToken"),
        "limited_access_token_endpoint": format!("{issuer}/sts/v1.0/issueLimitedAccessToken"),
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["subscription_key"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}
