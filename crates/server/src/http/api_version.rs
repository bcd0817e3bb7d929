//! The `api-version` query parameter of the Azure dialects, checked one way for every area: required (400
//! `MissingApiVersionParameter`), and one of the versions the area's table names (400 `UnsupportedApiVersion`),
//! both answers listing the versions served.

use crate::http::error::ApiError;
use axum::extract::Query;
use axum::http::Uri;
use std::collections::HashMap;

/// The request's `api-version`, as it appears in `supported`.
pub(crate) fn api_version(uri: &Uri, supported: &[&'static str]) -> Result<&'static str, ApiError> {
    let query = Query::<HashMap<String, String>>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request("InvalidQuery", e.body_text()))?;
    let Some(requested) = query.get("api-version") else {
        return Err(ApiError::bad_request(
            "MissingApiVersionParameter",
            format!(
                "the api-version query parameter is required; supported: {}",
                supported.join(", ")
            ),
        ));
    };
    supported.iter().copied().find(|s| s == requested).ok_or_else(|| {
        ApiError::bad_request(
            "UnsupportedApiVersion",
            format!("api-version must be one of {}", supported.join(", ")),
        )
    })
}
