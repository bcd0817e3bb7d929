//! The Face API v1.0 (`/face/v1.0/…`, docs/wire.md §5.1), for Face accounts authenticated by subscription key or
//! STS token: large person groups, their persons, the persons' enrolled faces, and training. Everything belongs
//! to the calling account; another account's group of the same id is a different group, and its persons are never
//! visible. None of it is gated (see `tessera_core::face`): it returns no identity decision. Detection and
//! recognition are in `super::recognition`.
//!
//! Success codes are the SDK's strict ones: create, update and delete answer 200 with an empty body, train 202.
//! Errors use Azure's Face codes (`LargePersonGroupNotFound`, `LargePersonGroupExists`, `PersonNotFound`,
//! `PersistedFaceNotFound`, `InvalidImage`, `BadArgument`). Every change is audited (it manages biometric
//! enrolment).
//!
//! Training is synchronous: `train` starts the group's next training generation (the faces enrolled until then
//! are the ones identification searches, see `tessera_core::face::Training`) and builds this node's index before
//! it answers 202, so the status is `succeeded` at once.

use crate::face::common::{
    FaceCaller, audit, bad_argument, existing_group, face_not_found, group_id, group_not_found, person_id,
    person_not_found, top,
};
use crate::face::engine::FaceService;
use crate::face::image::{self, ImageBody, TargetFace};
use crate::face::state::FaceState;
use crate::http::auth::Caller;
use crate::http::body;
use crate::http::error::{ApiError, NotFoundAs};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::platform::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::audit::action;
use tessera_core::face::{self, LargePersonGroup, PersistedFace, Person, Training};
use tessera_store::StoreError;
use tessera_wire::face::{self as wire, AddedFace, CreatedPerson, TrainingStatus};
use uuid::Uuid;

/// Longest `userData` of an enrolled face, characters (Azure's limit).
const MAX_FACE_USER_DATA_CHARS: usize = 1024;

/// The Face routes.
pub(crate) fn routes() -> Router<FaceState> {
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
        .route(
            "/face/v1.0/largepersongroups/{group}/persons/{person}/persistedfaces",
            post(add_face).layer(body::Limit::max(image::MAX_IMAGE_BYTES)),
        )
        .route(
            "/face/v1.0/largepersongroups/{group}/persons/{person}/persistedfaces/{face}",
            get(read_face).delete(delete_face),
        )
        .route("/face/v1.0/largepersongroups/{group}/train", post(train))
        .route(
            "/face/v1.0/largepersongroups/{group}/training",
            get(training_status),
        )
}

fn group_view(group: &LargePersonGroup, with_model: bool) -> wire::LargePersonGroup {
    wire::LargePersonGroup {
        large_person_group_id: group.id.as_str().to_owned(),
        name: group.name.clone(),
        user_data: group.user_data.clone(),
        recognition_model: with_model.then(|| group.recognition_model.clone()),
    }
}

fn person_view(person: &Person) -> wire::Person {
    wire::Person {
        person_id: person.id.to_string(),
        name: person.name.clone(),
        user_data: person.user_data.clone(),
        persisted_face_ids: person.persisted_face_ids.iter().map(Uuid::to_string).collect(),
    }
}

/// Body of a group creation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateGroupBody {
    pub(crate) name: String,
    pub(crate) user_data: Option<String>,
    pub(crate) recognition_model: Option<String>,
}

/// A checked creation body: name, user data and recognition model (default `recognition_01`).
pub(crate) struct CheckedCreation {
    /// Name.
    pub name: String,
    /// User data.
    pub user_data: Option<String>,
    /// Recognition model.
    pub recognition_model: String,
}

impl CreateGroupBody {
    /// Checks the name, user data and recognition model.
    pub fn checked(self) -> Result<CheckedCreation, ApiError> {
        face::check_name_and_user_data(&self.name, self.user_data.as_deref()).map_err(bad_argument)?;
        let recognition_model = self
            .recognition_model
            .unwrap_or_else(|| face::RECOGNITION_MODELS[0].into());
        face::check_recognition_model(&recognition_model).map_err(bad_argument)?;
        Ok(CheckedCreation {
            name: self.name,
            user_data: self.user_data,
            recognition_model,
        })
    }
}

/// `PUT /largepersongroups/{id}`: 200, empty.
pub(crate) async fn create_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CreateGroupBody>,
) -> Result<Response, ApiError> {
    let id = group_id(&raw)?;
    let body = body.checked()?;
    let group = LargePersonGroup {
        account: caller.account.id,
        id,
        name: body.name,
        user_data: body.user_data,
        recognition_model: body.recognition_model,
        created_at: state.clock.now(),
        training: Training::default(),
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
pub(crate) struct ReadQuery {
    #[serde(default)]
    pub(crate) return_recognition_model: bool,
    pub(crate) start: Option<String>,
    pub(crate) top: Option<u32>,
}

/// `GET /largepersongroups/{id}`.
pub(crate) async fn read_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw).await?;
    Ok(Json(group_view(&group, query.return_recognition_model)).into_response())
}

/// `GET /largepersongroups?start=&top=`: groups by id, after `start`.
pub(crate) async fn list_groups(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let start = query.start.as_deref().map(group_id).transpose()?;
    let groups = state
        .store
        .list_groups(caller.account.id, start.as_ref(), top(query.top)?)
        .await?;
    let view: Vec<wire::LargePersonGroup> = groups
        .iter()
        .map(|g| group_view(g, query.return_recognition_model))
        .collect();
    Ok(Json(view).into_response())
}

/// Body of an update: each field replaces the stored one when present.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateBody {
    pub(crate) name: Option<String>,
    pub(crate) user_data: Option<String>,
}

/// `PATCH /largepersongroups/{id}`: 200, empty.
pub(crate) async fn update_group(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw).await?;
    let id = group.id;
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
pub(crate) async fn delete_group(
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
pub(crate) struct CreatePersonBody {
    name: String,
    user_data: Option<String>,
}

/// `POST /largepersongroups/{id}/persons`: 200 `{"personId"}`.
pub(crate) async fn create_person(
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
        persisted_face_ids: Vec::new(),
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
    Ok(Json(CreatedPerson {
        person_id: person.id.to_string(),
    })
    .into_response())
}

/// The person of a route, if it exists in that group of the caller's.
async fn existing_person(
    state: &AppState,
    caller: &Caller,
    raw_group: &str,
    raw_person: &str,
) -> Result<Person, ApiError> {
    let group = existing_group(state, caller, raw_group).await?;
    state
        .store
        .person(caller.account.id, &group.id, person_id(raw_person)?)
        .await?
        .ok_or_else(person_not_found)
}

/// `GET /largepersongroups/{id}/persons?start=&top=`.
pub(crate) async fn list_persons(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw).await?.id;
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
pub(crate) async fn read_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let person = existing_person(&state, &caller, &raw_group, &raw_person).await?;
    Ok(Json(person_view(&person)).into_response())
}

/// `PATCH /largepersongroups/{id}/persons/{personId}`: 200, empty.
pub(crate) async fn update_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let person = existing_person(&state, &caller, &raw_group, &raw_person).await?;
    let (group, id) = (person.group, person.id);
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
pub(crate) async fn delete_person(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw_group).await?.id;
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

/// Query of an enrolment.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddFaceQuery {
    pub(crate) user_data: Option<String>,
    pub(crate) target_face: Option<String>,
    pub(crate) detection_model: Option<String>,
}

/// `POST …/persons/{personId}/persistedfaces?userData=&targetFace=l,t,w,h&detectionModel=`: 200
/// `{"persistedFaceId"}`. The image must show exactly one face, or `targetFace` must point at one.
pub(crate) async fn add_face(
    State(state): State<AppState>,
    State(engine): State<Arc<FaceService>>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<AddFaceQuery>,
    ImageBody(image): ImageBody,
) -> Result<Response, ApiError> {
    let person = existing_person(&state, &caller, &raw_group, &raw_person).await?;
    let template = query.template(&engine, image).await?;
    let enrolled = PersistedFace {
        id: Uuid::new_v4(),
        account: caller.account.id,
        group: person.group,
        person: person.id,
        template,
        user_data: query.user_data,
        created_at: state.clock.now(),
    };
    state
        .store
        .add_persisted_face(&enrolled)
        .await
        .not_found_as(person_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_ENROL,
        format!("{}/{}/{}", enrolled.group.as_str(), enrolled.person, enrolled.id),
    )
    .await?;
    Ok(Json(AddedFace {
        persisted_face_id: enrolled.id.to_string(),
    })
    .into_response())
}

impl AddFaceQuery {
    /// Checks the query, then finds the face to add in `image` and returns its template.
    pub(crate) async fn template(
        &self,
        engine: &FaceService,
        image: axum::body::Bytes,
    ) -> Result<Vec<f32>, ApiError> {
        image::check_detection_model(self.detection_model.as_deref())?;
        if self
            .user_data
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_FACE_USER_DATA_CHARS)
        {
            return Err(ApiError::bad_request(
                "BadArgument",
                format!("userData is at most {MAX_FACE_USER_DATA_CHARS} characters"),
            ));
        }
        let target = self.target_face.as_deref().map(TargetFace::parse).transpose()?;
        image::enrolment_template(engine, image, target).await
    }
}

/// `GET …/persons/{personId}/persistedfaces/{persistedFaceId}`: `{"persistedFaceId","userData"}`.
pub(crate) async fn read_face(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person, raw_face)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let person = existing_person(&state, &caller, &raw_group, &raw_person).await?;
    let id = Uuid::try_parse(&raw_face).map_err(|_| face_not_found())?;
    let faces = state
        .store
        .persisted_faces(caller.account.id, &person.group, Some(person.id))
        .await?;
    let enrolled = faces.iter().find(|f| f.id == id).ok_or_else(face_not_found)?;
    Ok(Json(wire::PersistedFace {
        persisted_face_id: enrolled.id.to_string(),
        user_data: enrolled.user_data.clone(),
    })
    .into_response())
}

/// `DELETE …/persons/{personId}/persistedfaces/{persistedFaceId}`: 200, empty. The face leaves identification at
/// once (the group's index is stale from then on).
pub(crate) async fn delete_face(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw_group, raw_person, raw_face)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let person = existing_person(&state, &caller, &raw_group, &raw_person).await?;
    let id = Uuid::try_parse(&raw_face).map_err(|_| face_not_found())?;
    state
        .store
        .delete_persisted_face(caller.account.id, &person.group, person.id, id)
        .await
        .not_found_as(face_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_UNENROL,
        format!("{}/{}/{id}", person.group.as_str(), person.id),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /largepersongroups/{id}/train`: 202, empty, once the new training's index is built on this node.
pub(crate) async fn train(
    State(state): State<AppState>,
    State(engine): State<Arc<FaceService>>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let mut group = existing_group(&state, &caller, &raw).await?;
    group.training = state
        .store
        .train_group(caller.account.id, &group.id, state.clock.now())
        .await
        .not_found_as(group_not_found)?;
    engine.index(state.store.as_ref(), &group).await?;
    audit(
        &state,
        &caller,
        action::FACE_TRAIN,
        format!("{}#{}", group.id.as_str(), group.training.generation),
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /largepersongroups/{id}/training`: `nonstarted` until the first training, then `succeeded`.
pub(crate) async fn training_status(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let group = existing_group(&state, &caller, &raw).await?;
    Ok(training_view(group.created_at, group.training.trained_at))
}

/// A training status: `nonstarted` until the first training, then `succeeded` (training is synchronous).
pub(crate) fn training_view(created_at: Timestamp, trained_at: Option<Timestamp>) -> Response {
    let created = created_at.to_rfc3339();
    let trained = trained_at.map(Timestamp::to_rfc3339);
    Json(TrainingStatus {
        status: if trained.is_some() {
            "succeeded"
        } else {
            "nonstarted"
        }
        .to_owned(),
        last_action_date_time: trained.clone().unwrap_or_else(|| created.clone()),
        created_date_time: created,
        last_successful_training_date_time: trained,
        message: None,
    })
    .into_response()
}
