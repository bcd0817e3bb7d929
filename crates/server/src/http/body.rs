//! Request bodies: how large and how slow they may be.
//!
//! Every route has a body limit: [`MAX_BODY_BYTES`] unless it sets its own with [`Limit`] (a layer that sets both
//! axum's extractor limit and the [`BodyLimit`] that [`read_within`] checks). Every body extractor (`ApiJson`, the
//! image body, the trusted service's) reads through [`read_within`], which answers at once, before a byte of the
//! body is read, when `Content-Length` declares more than the limit, and answers 408 `RequestBodyTimeout` when the
//! whole body has not arrived within `request_body_timeout_secs` of the extractor starting: a client trickling a
//! byte a second cannot hold a request (tower-http's body timeout restarts on every frame, so it would not stop
//! that). Either early answer reaches a client still uploading thanks to `crate::platform::linger`.

use crate::http::error::ApiError;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, StatusCode, header};
use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// The default body limit, bytes: the STS, identity and admin bodies are small JSON documents.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The body limit of the route serving a request, bytes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// How long a request's whole body may take to arrive (`request_body_timeout_secs`).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// The layer setting a route's body limit (or the router's default).
#[derive(Debug, Clone, Copy)]
pub struct Limit(usize);

impl Limit {
    /// At most `bytes`.
    pub fn max(bytes: usize) -> Self {
        Self(bytes)
    }
}

impl<S> Layer<S> for Limit {
    type Service = Limited<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Limited {
            inner: DefaultBodyLimit::max(self.0).layer(inner),
            max: self.0,
        }
    }
}

/// A service under [`Limit`].
#[derive(Debug, Clone)]
pub struct Limited<S> {
    inner: S,
    max: usize,
}

impl<S, B> Service<axum::http::Request<B>> for Limited<S>
where
    S: Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> S::Future {
        request.extensions_mut().insert(BodyLimit(self.max));
        self.inner.call(request)
    }
}

/// The length `headers` declare, if they do.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `read` (an extractor reading `request`'s body) under the route's rules: `too_large(limit)` at once when
/// the declared length passes the limit, 408 `RequestBodyTimeout` when `read` has not finished in time.
pub async fn read_within<T, F>(
    request: Request,
    too_large: impl FnOnce(usize) -> ApiError,
    read: impl FnOnce(Request) -> F,
) -> Result<T, ApiError>
where
    F: Future<Output = Result<T, ApiError>>,
{
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .map_or(MAX_BODY_BYTES, |l| l.0);
    if declared_length(request.headers()).is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let timeout = request
        .extensions()
        .get::<BodyTimeout>()
        .map_or(Duration::from_secs(60), |t| t.0);
    tokio::time::timeout(timeout, read(request))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestBodyTimeout",
                format!("the request body did not arrive within {} s", timeout.as_secs()),
            ))
        })
}

/// 413 `RequestBodyTooLarge`.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestBodyTooLarge",
        format!("the request body is larger than {limit} bytes"),
    )
}
