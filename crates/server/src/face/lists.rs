//! Large face lists (`/face/v1.0/largefacelists/…`, docs/wire.md §5.1): stored collections of faces, not persons,
//! that `findsimilars` searches with `largeFaceListId` (gated with `Face.Identification` and
//! `LimitedAccess.HighRisk`, see `tessera_core::face`). Managing a list is not gated, like person groups: it
//! returns no identity decision. Lists, and their faces, belong to the calling account.
//!
//! Training is synchronous and only records that the list was trained (Azure refuses find-similar on a list that
//! never was); find-similar then searches the list's faces as they are, exactly.

use crate::face::common::{
    FaceCaller, audit, bad_argument, existing_list, face_not_found, group_id, list_not_found, top,
};
use crate::face::engine::FaceService;
use crate::face::groups::{AddFaceQuery, CreateGroupBody, ReadQuery, UpdateBody, training_view};
use crate::face::image::{self, ImageBody};
use crate::face::state::FaceState;
use crate::http::body;
use crate::http::error::{ApiError, NotFoundAs};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::platform::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tessera_core::audit::action;
use tessera_core::face::{self, GroupId, LargeFaceList, ListFace};
use tessera_store::StoreError;
use tessera_wire::face::{self as wire, AddedFace};
use uuid::Uuid;

/// The routes.
pub(crate) fn routes() -> Router<FaceState> {
    Router::new()
        .route("/face/v1.0/largefacelists", get(list_lists))
        .route(
            "/face/v1.0/largefacelists/{list}",
            get(read_list)
                .put(create_list)
                .patch(update_list)
                .delete(delete_list),
        )
        .route(
            "/face/v1.0/largefacelists/{list}/persistedfaces",
            get(list_faces)
                .post(add_face)
                .layer(body::Limit::max(image::MAX_IMAGE_BYTES)),
        )
        .route(
            "/face/v1.0/largefacelists/{list}/persistedfaces/{face}",
            delete(delete_face),
        )
        .route("/face/v1.0/largefacelists/{list}/train", post(train))
        .route("/face/v1.0/largefacelists/{list}/training", get(training_status))
}

fn list_view(list: &LargeFaceList, with_model: bool) -> wire::LargeFaceList {
    wire::LargeFaceList {
        large_face_list_id: list.id.as_str().to_owned(),
        name: list.name.clone(),
        user_data: list.user_data.clone(),
        recognition_model: with_model.then(|| list.recognition_model.clone()),
    }
}

/// `PUT /largefacelists/{id}`: 200, empty.
pub(crate) async fn create_list(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<CreateGroupBody>,
) -> Result<Response, ApiError> {
    let id = group_id(&raw)?;
    let body = body.checked()?;
    let list = LargeFaceList {
        account: caller.account.id,
        id,
        name: body.name,
        user_data: body.user_data,
        recognition_model: body.recognition_model,
        created_at: state.clock.now(),
        trained_at: None,
    };
    state.store.create_face_list(&list).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "LargeFaceListExists",
            "Large face list already exists.",
        ),
        other => other.into(),
    })?;
    audit(
        &state,
        &caller,
        action::FACE_LIST_CREATE,
        list.id.as_str().to_owned(),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /largefacelists/{id}`.
pub(crate) async fn read_list(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let list = existing_list(&state, caller.account.id, &raw).await?;
    Ok(Json(list_view(&list, query.return_recognition_model)).into_response())
}

/// `GET /largefacelists?start=&top=`: lists by id, after `start`.
pub(crate) async fn list_lists(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let start = query.start.as_deref().map(group_id).transpose()?;
    let lists = state
        .store
        .list_face_lists(caller.account.id, start.as_ref(), top(query.top)?)
        .await?;
    let view: Vec<wire::LargeFaceList> = lists
        .iter()
        .map(|l| list_view(l, query.return_recognition_model))
        .collect();
    Ok(Json(view).into_response())
}

/// `PATCH /largefacelists/{id}`: 200, empty.
pub(crate) async fn update_list(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let list = existing_list(&state, caller.account.id, &raw).await?;
    let name = body.name.unwrap_or(list.name);
    let user_data = body.user_data.or(list.user_data);
    face::check_name_and_user_data(&name, user_data.as_deref()).map_err(bad_argument)?;
    state
        .store
        .update_face_list(caller.account.id, &list.id, &name, user_data.as_deref())
        .await
        .not_found_as(list_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_LIST_UPDATE,
        list.id.as_str().to_owned(),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /largefacelists/{id}`: 200, empty; its faces go with it.
pub(crate) async fn delete_list(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = group_id(&raw)?;
    state
        .store
        .delete_face_list(caller.account.id, &id)
        .await
        .not_found_as(list_not_found)?;
    audit(&state, &caller, action::FACE_LIST_DELETE, id.as_str().to_owned()).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /largefacelists/{id}/persistedfaces?userData=&targetFace=&detectionModel=`: 200 `{"persistedFaceId"}`.
pub(crate) async fn add_face(
    State(state): State<AppState>,
    State(engine): State<Arc<FaceService>>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<AddFaceQuery>,
    ImageBody(image): ImageBody,
) -> Result<Response, ApiError> {
    let list = existing_list(&state, caller.account.id, &raw).await?;
    let template = query.template(&engine, image).await?;
    let added = ListFace {
        id: Uuid::new_v4(),
        account: caller.account.id,
        list: list.id,
        template,
        user_data: query.user_data,
        created_at: state.clock.now(),
    };
    state
        .store
        .add_list_face(&added)
        .await
        .not_found_as(list_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_LIST_ADD,
        format!("{}/{}", added.list.as_str(), added.id),
    )
    .await?;
    Ok(Json(AddedFace {
        persisted_face_id: added.id.to_string(),
    })
    .into_response())
}

/// `GET /largefacelists/{id}/persistedfaces?start=&top=`: `[{"persistedFaceId","userData"}]` by id.
pub(crate) async fn list_faces(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<Response, ApiError> {
    let list = existing_list(&state, caller.account.id, &raw).await?;
    let start = query
        .start
        .as_deref()
        .map(|s| {
            Uuid::try_parse(s).map_err(|_| ApiError::bad_request("BadArgument", "start is not a face id"))
        })
        .transpose()?;
    let faces = state
        .store
        .list_faces(caller.account.id, &list.id, start, top(query.top)?)
        .await?;
    let view: Vec<wire::PersistedFace> = faces
        .iter()
        .map(|f| wire::PersistedFace {
            persisted_face_id: f.id.to_string(),
            user_data: f.user_data.clone(),
        })
        .collect();
    Ok(Json(view).into_response())
}

/// `DELETE /largefacelists/{id}/persistedfaces/{persistedFaceId}`: 200, empty.
pub(crate) async fn delete_face(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path((raw, raw_face)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let list = existing_list(&state, caller.account.id, &raw).await?;
    let id = Uuid::try_parse(&raw_face).map_err(|_| face_not_found())?;
    state
        .store
        .delete_list_face(caller.account.id, &list.id, id)
        .await
        .not_found_as(face_not_found)?;
    audit(
        &state,
        &caller,
        action::FACE_LIST_REMOVE,
        format!("{}/{id}", list.id.as_str()),
    )
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /largefacelists/{id}/train`: 202, empty.
pub(crate) async fn train(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id: GroupId = group_id(&raw)?;
    state
        .store
        .train_face_list(caller.account.id, &id, state.clock.now())
        .await
        .not_found_as(list_not_found)?;
    audit(&state, &caller, action::FACE_LIST_TRAIN, id.as_str().to_owned()).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /largefacelists/{id}/training`.
pub(crate) async fn training_status(
    State(state): State<AppState>,
    FaceCaller(caller): FaceCaller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let list = existing_list(&state, caller.account.id, &raw).await?;
    Ok(training_view(list.created_at, list.trained_at))
}
