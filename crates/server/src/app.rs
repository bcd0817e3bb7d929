//! The router: every route, the JSON fallbacks, and the layers (request id, tracing, metrics, body limit).

use crate::body::{self, BodyTimeout, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::routes::identities::{self, Dialect};
use crate::routes::{access, admin, bench, chat, face, face_lists, face_recognition, ops, sts, wellknown};
use crate::state::AppState;
use axum::Extension;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the application over `state`.
pub fn app(state: AppState) -> Router {
    let bench_routes = state.config.bench_routes;
    // ACS action routes are literal segments starting with `:` (`/identities/{id}/:issueAccessToken`).
    // Merging a router that checks re-enables the checks, so routers without ACS routes are merged first.
    let mut router = Router::new()
        .merge(face::routes())
        .merge(face_recognition::routes())
        .merge(face_lists::routes())
        .without_v07_checks()
        .merge(identities::routes(Dialect::Acs))
        .merge(identities::routes(Dialect::Native))
        .merge(chat::routes(&state))
        .route("/access/me", get(access::me))
        .route("/access/:refreshAccessToken", post(access::refresh))
        .route("/sts/v1.0/issueToken", post(sts::issue_token))
        .route(
            "/sts/v1.0/issueLimitedAccessToken",
            post(sts::issue_limited_access_token),
        )
        .route("/sts/v1.0/limitedAccess/check", post(sts::check))
        .route("/sts/v1.0/limitedAccess/audit", get(sts::isv_audit))
        .route(
            "/admin/subscriptions/{*rest}",
            get(admin::account_route)
                .put(admin::account_route)
                .post(admin::account_route),
        )
        .route("/admin/accounts", get(admin::list_accounts))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/audit/checkpoints", get(admin::audit_checkpoints))
        .route("/admin/keys", get(admin::keys))
        .route("/admin/keys/rotate", post(admin::rotate_keys))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/openid-configuration", get(wellknown::discovery))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    if bench_routes {
        match bench::BenchSigner::new(state.clock.now()) {
            Ok(signer) => {
                router = router.merge(
                    Router::new()
                        .route("/bench/noop", post(bench::noop))
                        .route("/bench/sign", post(bench::sign))
                        .with_state(signer),
                );
            }
            Err(e) => tracing::error!(error = %e, "bench routes disabled: cannot create the throwaway key"),
        }
    }
    router
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
