//! The router: every area's routes, the JSON fallbacks, and the layers (request id, tracing, metrics, body limit).

use crate::chat::{self, ChatState};
use crate::face::{self, FaceState};
use crate::http::body::{self, BodyTimeout, MAX_BODY_BYTES};
use crate::http::error::ApiError;
use crate::platform::state::AppState;
use crate::{admin, communication, ops, sts};
use axum::Extension;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The states of the areas that hold more than the platform's.
#[derive(Clone)]
pub(crate) struct Areas {
    pub(crate) chat: ChatState,
    pub(crate) face: FaceState,
}

/// Builds the application over `state`.
pub(crate) fn app(state: &AppState, areas: Areas) -> Router {
    // ACS action routes are literal segments starting with `:` (`/identities/{id}/:issueAccessToken`). Merging a
    // router that checks axum 0.7's syntax turns the check back on, so the areas without ACS routes come first.
    Router::new()
        .merge(face::routes(areas.face))
        .merge(sts::routes(state.clone()))
        .merge(admin::routes(state.clone()))
        .merge(ops::routes(state.clone()))
        .without_v07_checks()
        .merge(communication::routes(state.clone()))
        .merge(chat::routes(areas.chat))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(body::Limit::max(MAX_BODY_BYTES))
        .layer(Extension(BodyTimeout(state.config.request_body_timeout)))
        .layer(middleware::from_fn(track))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("-", MatchedPath::as_str);
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), route, request_id = id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn not_found() -> ApiError {
    ApiError::not_found("NotFound", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "this route does not take that method",
    )
}

/// Records request latency by route and status.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics::histogram!(
        "tessera_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}
