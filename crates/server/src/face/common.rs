//! What every Face handler shares: the Face caller, the account's groups and lists looked up by a route's id,
//! Azure's Face error codes, listing sizes, and the audit of a management change.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::platform::state::AppState;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use tessera_core::AccountKind;
use tessera_core::face::{GroupId, LargeFaceList, LargePersonGroup};
use uuid::Uuid;

/// An authenticated, enabled Face account.
pub(crate) struct FaceCaller(pub(crate) Caller);

impl<S: Send + Sync> FromRequestParts<S> for FaceCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        let caller = <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        ensure_face_account(&caller)?;
        Ok(Self(caller))
    }
}

/// Refuses callers that are not Face accounts (403 `NotAFaceAccount`).
pub(crate) fn ensure_face_account(caller: &Caller) -> Result<(), ApiError> {
    if caller.account.kind() == AccountKind::Face {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "NotAFaceAccount",
            "the Face API belongs to Face accounts (…/providers/Microsoft.CognitiveServices/accounts/…)",
        ))
    }
}

/// 404 `LargePersonGroupNotFound`.
pub(crate) fn group_not_found() -> ApiError {
    ApiError::not_found("LargePersonGroupNotFound", "Large person group is not found.")
}

/// 404 `PersonNotFound`.
pub(crate) fn person_not_found() -> ApiError {
    ApiError::not_found("PersonNotFound", "Person is not found.")
}

/// 404 `PersistedFaceNotFound`.
pub(crate) fn face_not_found() -> ApiError {
    ApiError::not_found("PersistedFaceNotFound", "Persisted face is not found.")
}

/// A group id from a path or body (400 `BadArgument` if malformed).
pub(crate) fn group_id(raw: &str) -> Result<GroupId, ApiError> {
    GroupId::parse(raw).map_err(|e| ApiError::bad_request("BadArgument", e.to_string()))
}

/// A person id from a path or body (404 `PersonNotFound` if it cannot be one).
pub(crate) fn person_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| person_not_found())
}

/// 400 `BadArgument` for a domain refusal.
pub(crate) fn bad_argument(e: tessera_core::DomainError) -> ApiError {
    ApiError::bad_request("BadArgument", e.to_string())
}

/// Records a management change.
pub(crate) async fn audit(
    state: &AppState,
    caller: &Caller,
    act: &str,
    subject: String,
) -> Result<(), ApiError> {
    state
        .event(&caller.actor(), act, &subject)
        .record()
        .await
        .map_err(ApiError::from)
}

/// Largest page of a listing (`top`), as Azure.
const MAX_TOP: u32 = 1000;

/// The page size of a listing: `top` (1 to 1000), 1000 by default.
pub(crate) fn top(top: Option<u32>) -> Result<u32, ApiError> {
    match top {
        None => Ok(MAX_TOP),
        Some(n @ 1..=MAX_TOP) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "BadArgument",
            format!("top must be from 1 to {MAX_TOP}"),
        )),
    }
}

/// The group of a route, if it exists for the caller.
pub(crate) async fn existing_group(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<LargePersonGroup, ApiError> {
    state
        .store
        .group(caller.account.id, &group_id(raw)?)
        .await?
        .ok_or_else(group_not_found)
}

/// 404 `LargeFaceListNotFound`.
pub(crate) fn list_not_found() -> ApiError {
    ApiError::not_found("LargeFaceListNotFound", "Large face list is not found.")
}

/// The caller's list of a route.
pub(crate) async fn existing_list(
    state: &AppState,
    account: Uuid,
    raw: &str,
) -> Result<LargeFaceList, ApiError> {
    state
        .store
        .face_list(account, &group_id(raw)?)
        .await?
        .ok_or_else(list_not_found)
}
