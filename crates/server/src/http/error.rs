//! Every error becomes an HTTP response here, and only here: `{"error":{"code","message"}}` as JSON, 401 with
//! `WWW-Authenticate`, 429 with `Retry-After`, and no internal detail in the body (internal errors are logged
//! with the request's span and answered with a generic message).

use crate::platform::flood::OverLimit;
use crate::platform::state::AuditError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use tessera_core::DomainError;
use tessera_store::StoreError;
use tessera_wire::error::{ErrorBody, ErrorDetail};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// Any status, code and message.
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_secs: None,
        }
    }
    /// 400.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 401, with `WWW-Authenticate`.
    pub fn unauthorized(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    /// 403.
    pub fn forbidden(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    /// 404.
    pub fn not_found(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64, why: &str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("{why}; retry in {retry_after_secs} s"),
        )
        .retry_after(retry_after_secs)
    }
    /// 500 with a generic message; `detail` goes to the log only.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "an internal error occurred",
        )
    }
    /// 503 with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message).retry_after(1)
    }
    /// The same answer with a `Retry-After` of at least one second.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The code.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="tessera", error="invalid_token""#),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match e {
            DomainError::NotAnIsv
            | DomainError::FlagNotGrantable(_)
            | DomainError::InvalidTarget(_)
            | DomainError::ChatScopeMissing(_)
            | DomainError::NotAParticipant
            | DomainError::NotTheSender => StatusCode::FORBIDDEN,
            DomainError::FlagNotHeld(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::new(StatusCode::CONFLICT, "Conflict", what),
            StoreError::NotFound(what) => Self::not_found("NotFound", what),
            StoreError::LimitReached(what) => Self::bad_request("LimitReached", what),
            other => Self::internal(&other),
        }
    }
}

impl From<OverLimit> for ApiError {
    fn from(limit: OverLimit) -> Self {
        Self::new(limit.status(), limit.code(), limit.message()).retry_after(limit.retry_after())
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::NotRecorded(_) => Self::internal(&e),
            AuditError::OverLimit(limit) => limit.into(),
        }
    }
}

/// Store results whose `NotFound` has a route-specific answer (e.g. Azure's `PersonNotFound`); every other store
/// error maps as usual.
pub trait NotFoundAs<T> {
    /// Replaces `StoreError::NotFound` by `answer()`.
    fn not_found_as(self, answer: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T> NotFoundAs<T> for Result<T, StoreError> {
    fn not_found_as(self, answer: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        self.map_err(|e| match e {
            StoreError::NotFound(_) => answer(),
            other => other.into(),
        })
    }
}
