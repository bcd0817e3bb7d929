//! The Face API v1.0 (`/face/v1.0/…`, WIRE-SPEC §5.1), for Face accounts authenticated by subscription key or
//! STS token: large person groups and their persons. Everything belongs to the calling account; another account's
//! group of the same id is a different group, and its persons are never visible.
//!
//! Success codes are the SDK's strict ones: create, update and delete answer 200 with an empty body. Errors use
//! Azure's Face codes (`LargePersonGroupNotFound`, `LargePersonGroupExists`, `PersonNotFound`, `BadArgument`).
//! Creations, updates and deletions are audited (they manage biometric enrolment).

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, NotFoundAs};
use crate::state::AppState;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_core::AccountKind;
use tessera_core::audit::action;
use tessera_core::face::{self, GroupId, LargePersonGroup, Person};
use tessera_store::StoreError;
use uuid::Uuid;

/// Largest page of a listing (`top`), as Azure.
const MAX_TOP: u32 = 1000;

/// The Face routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/face/v1.0/largepersongroups", get(list_groups))
        .route(
            "/face/v1.0/largepersongroups/{group}",
            get(read_group)
                .put(create_group)
                .patch(update_group)
                .delete(delete_group),
        )
        .route(
            "/face/v1.0/largepersongroups/{group}/persons",
            get(list_persons).post(create_person),
        )
        .route(
            "/face/v1.0/largepersongroups/{group}/persons/{person}",
            get(read_person).patch(update_person).delete(delete_person),
        )
}

/// An authenticated, enabled Face account.
pub struct FaceCaller(pub Caller);

impl FromRequestParts<AppState> for FaceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.account.kind() != AccountKind::Face {
            return Err(ApiError::forbidden(
                "NotAFaceAccount",
                "the Face API belongs to Face accounts (…/providers/Microsoft.CognitiveServices/accounts/…)",
            ));
        }
        Ok(Self(caller))
    }
}

fn group_not_found() -> ApiError {
    ApiError::not_found("LargePersonGroupNotFound", "Large person group is not found.")
}

fn person_not_found() -> ApiError {
    ApiError::not_found("PersonNotFound", "Person is not found.")
}

fn group_id(raw: &str) -> Result<GroupId, ApiError> {
    GroupId::parse(raw).map_err(|e| ApiError::bad_request("BadArgument", e.to_string()))
}

fn person_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| person_not_found())
}

fn bad_argument(e: tessera_core::DomainError) -> ApiError {
    ApiError::bad_request("BadArgument", e.to_string())
}

/// Records a management change.
async fn audit(state: &AppState, caller: &Caller, act: &str, subject: String) -> Result<(), ApiError> {
    state
        .event(&caller.actor(), act, &subject)
        .record()
        .await
        .map(drop)
}

fn group_view(group: &LargePersonGroup, with_model: bool) -> Value {
    let mut view = json!({
        "largePersonGroupId": group.id.as_str(),
        "name": group.name,
        "userData": group.user_data,
    });
    if with_model {
        view["recognitionModel"] = group.recognition_model.clone().into();
    }
    view
}

fn person_view(person: &Person) -> Value {
    json!({
        "personId": person.id,
        "name": person.name,
        "userData": person.user_data,
        "persistedFaceIds": [],
    })
}

/// Body of a group creation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateGroupBody {
    name: String,
    user_data: Option<String>,
    recognition_model: Option<String>,
}

/// `PUT /largepersongroups/{id}`: 200, empty.
pub async fn create_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CreateGroupBody>,
) -> Result<Response, ApiError> {
    let id = group_id(&raw)?;
    face::check_name_and_user_data(&body.name, body.user_data.as_deref()).map_err(bad_argument)?;
    let recognition_model = body.recognition_model.unwrap_or_else(|| "recognition_01".into());
    face::check_recognition_model(&recognition_model).map_err(bad_argument)?;
    let group = LargePersonGroup {
        account: caller.account.id,
        id,
        name: body.name,
        user_data: body.user_data,
        recognition_model,
        created_at: state.clock.now(),
    };
    state.store.create_group(&group).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "LargePersonGroupExists",
            "Large person group already exists.",
        ),
        other => other.into(),
    })?;
    audit(
        &state,
        &caller,
        action::FACE_GROUP_CREATE,
        group.id.as_str().to_owned(),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// Query of reads that may echo the recognition model.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadQuery {
    #[serde(default)]
    return_recognition_model: bool,
    start: Option<String>,
    top: Option<u32>,
}

/// `GET /largepersongroups/{id}`.
pub async fn read_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let group = state
        .store
        .group(caller.account.id, &group_id(&raw)?)
        .await?
        .ok_or_else(group_not_found)?;
    Ok(Json(group_view(&group, query.return_recognition_model)).into_response())
}

/// `GET /largepersongroups?start=&top=`: groups by id, after `start`.
pub async fn list_groups(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let start = query.start.as_deref().map(group_id).transpose()?;
    let groups = state
        .store
        .list_groups(caller.account.id, start.as_ref(), top(query.top)?)
        .await?;
    let view: Vec<Value> = groups
        .iter()
        .map(|g| group_view(g, query.return_recognition_model))
        .collect();
    Ok(Json(view).into_response())
}

fn top(top: Option<u32>) -> Result<u32, ApiError> {
    match top {
        None => Ok(MAX_TOP),
        Some(n @ 1..=MAX_TOP) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "BadArgument",
            format!("top must be from 1 to {MAX_TOP}"),
        )),
    }
}

/// Body of an update: each field replaces the stored one when present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBody {
    name: Option<String>,
    user_data: Option<String>,
}

/// `PATCH /largepersongroups/{id}`: 200, empty.
pub async fn update_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let id = group_id(&raw)?;
    let group = state
        .store
        .group(caller.account.id, &id)
        .await?
        .ok_or_else(group_not_found)?;
    let name = body.name.unwrap_or(group.name);
    let user_data = body.user_data.or(group.user_data);
    face::check_name_and_user_data(&name, user_data.as_deref()).map_err(bad_argument)?;
    state
        .store
        .update_group(caller.account.id, &id, &name, user_data.as_deref())
        .await
        .not_found_as(group_not_found)?;
    audit(&state, &caller, action::FACE_GROUP_UPDATE, id.as_str().to_owned()).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /largepersongroups/{id}`: 200, empty; its persons go with it.
pub async fn delete_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = group_id(&raw)?;
    state
        .store
        .delete_group(caller.account.id, &id)
        .await
        .not_found_as(group_not_found)?;
    audit(&state, &caller, action::FACE_GROUP_DELETE, id.as_str().to_owned()).await?;
    Ok(StatusCode::OK.into_response())
}

/// Body of a person creation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePersonBody {
    name: String,
    user_data: Option<String>,
}

/// `POST /largepersongroups/{id}/persons`: 200 `{"personId"}`.
pub async fn create_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CreatePersonBody>,
) -> Result<Response, ApiError> {
    let group = group_id(&raw)?;
    face::check_name_and_user_data(&body.name, body.user_data.as_deref()).map_err(bad_argument)?;
    let person = Person {
        id: Uuid::new_v4(),
        account: caller.account.id,
        group,
        name: body.name,
        user_data: body.user_data,
        created_at: state.clock.now(),
    };
    state
        .store
        .create_person(&person)
        .await
        .not_found_as(group_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_PERSON_CREATE,
        format!("{}/{}", person.group.as_str(), person.id),
    )
    .await?;
    Ok(Json(json!({"personId": person.id})).into_response())
}

/// The group of a person route, if it exists for the caller.
async fn existing_group(state: &AppState, caller: &Caller, raw: &str) -> Result<GroupId, ApiError> {
    let id = group_id(raw)?;
    state
        .store
        .group(caller.account.id, &id)
        .await?
        .ok_or_else(group_not_found)?;
    Ok(id)
}

/// `GET /largepersongroups/{id}/persons?start=&top=`.
pub async fn list_persons(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw).await?;
    let start = query
        .start
        .as_deref()
        .map(|s| {
            Uuid::try_parse(s).map_err(|_| ApiError::bad_request("BadArgument", "start is not a person id"))
        })
        .transpose()?;
    let persons = state
        .store
        .list_persons(caller.account.id, &group, start, top(query.top)?)
        .await?;
    Ok(Json(persons.iter().map(person_view).collect::<Vec<_>>()).into_response())
}

/// `GET /largepersongroups/{id}/persons/{personId}`.
pub async fn read_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw_group).await?;
    let person = state
        .store
        .person(caller.account.id, &group, person_id(&raw_person)?)
        .await?
        .ok_or_else(person_not_found)?;
    Ok(Json(person_view(&person)).into_response())
}

/// `PATCH /largepersongroups/{id}/persons/{personId}`: 200, empty.
pub async fn update_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw_group).await?;
    let id = person_id(&raw_person)?;
    let person = state
        .store
        .person(caller.account.id, &group, id)
        .await?
        .ok_or_else(person_not_found)?;
    let name = body.name.unwrap_or(person.name);
    let user_data = body.user_data.or(person.user_data);
    face::check_name_and_user_data(&name, user_data.as_deref()).map_err(bad_argument)?;
    state
        .store
        .update_person(caller.account.id, &group, id, &name, user_data.as_deref())
        .await
        .not_found_as(person_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_PERSON_UPDATE,
        format!("{}/{id}", group.as_str()),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /largepersongroups/{id}/persons/{personId}`: 200, empty.
pub async fn delete_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw_group).await?;
    let id = person_id(&raw_person)?;
    state
        .store
        .delete_person(caller.account.id, &group, id)
        .await
        .not_found_as(person_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_PERSON_DELETE,
        format!("{}/{id}", group.as_str()),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}
