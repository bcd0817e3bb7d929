//! Liveness, readiness and metrics.

use crate::http::auth::Admin;
use crate::http::error::ApiError;
use crate::platform::state::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the store answers and a signing key is loaded.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await.is_ok();
    let keys = state.keys.current().active_kid().is_some();
    let status = if store && keys {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
        "store": if store { "ok" } else { "unreachable" },
        "signingKey": if keys { "loaded" } else { "missing" },
    });
    (status, axum::Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format; behind the admin key with `metrics_require_admin_key` (the key is only
/// checked then, so an open endpoint never counts a scraper's missing key as a failed authentication).
pub async fn metrics(State(state): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    if state.config.metrics_require_admin_key {
        Admin::from_request_parts(&mut parts, &state).await?;
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response())
}
