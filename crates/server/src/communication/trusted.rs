//! The trusted service of a Communication account: the backend that creates identities and issues their user
//! access tokens.
//!
//! [`TrustedService`] authenticates it as the Azure SDKs do, by ACS HMAC-SHA256 over the request with one of the
//! account's access keys (`tessera_core::acs_hmac`), or by the foundation's credentials (subscription key, STS
//! bearer token). HMAC covers the body, so the extractor buffers it and hands it on parsed. A request signed
//! with no known key, outside the date window, or with a body that does not match its hash is a 401 JSON error;
//! a Face account gets a 403.
//!
//! HMAC names no account: the signature is checked against the access keys of every enabled Communication
//! account (unsealed from the store on every request, so that a regenerated key stops working on every node at
//! once). The cost grows with the number of Communication accounts, which a self-hosted deployment keeps small.

use crate::http::auth::{self, Caller, Credential, access_key_aad};
use crate::http::body;
use crate::http::error::ApiError;
use crate::platform::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use tessera_core::AccountKind;
use tessera_core::acs_hmac::{self, SignedRequest};

/// An authenticated trusted service of an enabled Communication account, and its JSON body (an empty body reads
/// as `{}`, as the Python SDK sends `create_user` with no body).
#[derive(Debug)]
pub struct TrustedService<T> {
    /// The caller.
    pub caller: Caller,
    /// The parsed body, or why it could not be parsed (the handler decides when to report it, so that the
    /// refusal is audited under the authenticated caller).
    pub body: Result<T, ApiError>,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for TrustedService<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = body::MAX_BODY_BYTES;
        let (parts, bytes) = body::read_within(req, body::too_large, |req| async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, limit)
                .await
                .map_err(|_| body::too_large(limit))?;
            Ok((parts, bytes))
        })
        .await?;
        let authorization = auth::header(&parts.headers, "authorization")?;
        let attempt = async {
            if acs_hmac::is_hmac(authorization) {
                by_signature(&parts, &bytes, state).await
            } else {
                auth::authenticate(&parts.headers, state).await
            }
        };
        let caller = auth::rate_limited(&parts, state, attempt).await?;
        let caller = auth::admit(caller, &parts, state).await?;
        if caller.account.kind() != AccountKind::Communication {
            return Err(ApiError::forbidden(
                "NotACommunicationAccount",
                "identities belong to Communication accounts (…/providers/Microsoft.Communication/communicationServices/…)",
            ));
        }
        Ok(Self {
            caller,
            body: parse_body(&bytes),
        })
    }
}

fn parse_body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| {
        if e.is_data() {
            ApiError::bad_request("InvalidRequestBody", e.to_string())
        } else {
            ApiError::bad_request("InvalidJson", "the body is not valid JSON")
        }
    })
}

/// Finds the enabled Communication account whose access key signed the request. With `acs_host_suffix`, the
/// signed host names the account (`<account id>.<suffix>`), so only its two keys are opened and tried, whatever
/// the number of accounts; a request to no account's endpoint is tried against every account's keys only where
/// `acs_search_all_accounts` allows it. `tessera_hmac_keys_tried_total` counts the keys tried.
async fn by_signature(parts: &Parts, body: &[u8], state: &AppState) -> Result<Caller, ApiError> {
    let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let host = text("host")
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let request = SignedRequest {
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |p| p.as_str()),
        host,
        tls: state.config.tls != crate::platform::config::TlsMode::Off,
        date: text("x-ms-date"),
        content_sha256: text("x-ms-content-sha256"),
        authorization: text("authorization"),
        body,
    };
    let candidates = match state.config.acs_account_of_host(host) {
        Some(Some(account)) => state.store.access_keys_of(account).await?,
        None if state.config.acs_search_all_accounts => state.store.access_keys().await?,
        Some(None) | None => {
            return Err(ApiError::unauthorized(
                "UnknownAccountEndpoint",
                "sign requests to your account's own endpoint, the one its connection string names",
            ));
        }
    };
    metrics::counter!("tessera_hmac_keys_tried_total").increment(candidates.len() as u64);
    let master = state.keys.master();
    let keys = candidates
        .iter()
        .map(|k| {
            let key = master
                .open(access_key_aad(k.account.id, k.slot).as_bytes(), &k.sealed)
                .map_err(|e| {
                    ApiError::internal(&format_args!("sealed access key of {}: {e}", k.account.id))
                })?;
            // The SDKs base64-decode the access key and sign with the bytes.
            STANDARD
                .decode(&key)
                .map_err(|e| ApiError::internal(&format_args!("access key of {}: {e}", k.account.id)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let index = acs_hmac::verify(&request, &refs, state.clock.now())
        .map_err(|e| ApiError::unauthorized(e.code(), e.to_string()))?;
    let signer = &candidates[index];
    Ok(Caller {
        account: signer.account.clone(),
        credential: Credential::AccessKey(signer.slot),
    })
}
