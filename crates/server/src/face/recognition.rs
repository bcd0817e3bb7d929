//! Face detection and recognition (`/face/v1.0/detect`, `identify`, `verify`, `findsimilars`; docs/wire.md §5.1),
//! each behind the Limited Access gate with the requirement `tessera_core::face::FaceOperation` gives it. The gate
//! runs first, before anything about the request's faces or groups is looked up, and audits its decision.
//!
//! Images arrive as raw bytes (`application/octet-stream`, chunked or not), at most 6 MiB; Tessera never fetches
//! image URLs. Detection keeps each face's template under a face id for `faceIdTimeToLive` seconds (default and
//! most 24 h); face ids belong to the account that detected them and are `FaceNotFound` to every other.
//!
//! Find-similar searches given face ids, or the faces of a large face list (`super::lists`), which the policy
//! table gates with `LimitedAccess.HighRisk` as well.
//!
//! Every recognition model name is answered by the same network (see `tessera_core::face::RECOGNITION_MODELS`),
//! but as on Azure a face detected under one name is only compared with faces and groups of the same name.

use crate::face::common::{ensure_face_account, existing_group, existing_list, person_id, person_not_found};
use crate::face::engine::FaceService;
use crate::face::image::{ImageBody, MAX_IMAGE_BYTES, MIN_DETECTION_SCORE, check_detection_model};
use crate::face::state::FaceState;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::gate::LimitedAccess;
use crate::platform::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_core::face::{
    self, Detection, FACE_ID_TTL_SECS, FaceOperation, SAME_PERSON_COSINE, confidence, cosine_for_confidence,
};
use tessera_face::{DecodedImage, DetectedFace, Embedding, Engine, ImageLimits, Rect};
use tessera_wire::face::{
    self as wire, Candidate, FaceLandmarks, FaceRectangle, IdentifyResult, Point, SimilarFace, VerifyResult,
};
use uuid::Uuid;

/// Most faces one detection reports (the largest ones), as Azure.
const MAX_FACES: usize = 100;
/// Most face ids one identification takes.
const MAX_IDENTIFY_FACES: usize = 10;
/// Most candidate face ids of one find-similar, and most candidates returned.
const MAX_SIMILAR_CANDIDATES: usize = 1000;

/// The routes.
pub(crate) fn routes() -> Router<FaceState> {
    Router::new()
        .route(
            "/face/v1.0/detect",
            post(detect).layer(body::Limit::max(MAX_IMAGE_BYTES)),
        )
        .route("/face/v1.0/identify", post(identify))
        .route("/face/v1.0/verify", post(verify))
        .route("/face/v1.0/findsimilars", post(find_similar))
}

/// Checks a `recognitionModel` (absent means `recognition_01`) and returns it.
fn recognition_model(model: Option<String>) -> Result<String, ApiError> {
    let model = model.unwrap_or_else(|| face::RECOGNITION_MODELS[0].to_owned());
    face::check_recognition_model(&model).map_err(|e| ApiError::bad_request("BadArgument", e.to_string()))?;
    Ok(model)
}

/// A face the engine found, with its template when one was asked for.
struct Found {
    face: DetectedFace,
    template: Option<Embedding>,
}

/// Decodes `image` and finds its faces, largest first (at most [`MAX_FACES`]), with templates if `embed`.
fn find_faces(
    engine: &Engine,
    image: &[u8],
    limits: &ImageLimits,
    embed: bool,
) -> Result<Vec<Found>, tessera_face::FaceError> {
    let decoded = DecodedImage::decode(image, limits)?;
    let mut faces = engine.detect(&decoded, MIN_DETECTION_SCORE)?;
    faces.sort_by_key(|f| std::cmp::Reverse(u64::from(f.rect.width) * u64::from(f.rect.height)));
    faces.truncate(MAX_FACES);
    faces
        .into_iter()
        .map(|face| {
            let template = embed.then(|| engine.embed(&decoded, &face)).transpose()?;
            Ok(Found { face, template })
        })
        .collect()
}

/// Lets the request through the gate for `operation`, or refuses it (403, audited).
async fn gate(state: &AppState, access: &LimitedAccess, operation: FaceOperation) -> Result<(), ApiError> {
    ensure_face_account(&access.caller)?;
    access
        .require_all(state, operation.requirement(), operation.name())
        .await
        .map(drop)
}

/// Query of a detection (the v1.0 SDK always sends every one of them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DetectQuery {
    return_face_id: Option<bool>,
    #[serde(default)]
    return_face_landmarks: bool,
    return_face_attributes: Option<String>,
    recognition_model: Option<String>,
    #[serde(default)]
    return_recognition_model: bool,
    detection_model: Option<String>,
    face_id_time_to_live: Option<i64>,
}

/// `POST /detect`: the faces in the image, largest first, each with a face id unless `returnFaceId=false`.
pub(crate) async fn detect(
    State(state): State<AppState>,
    State(engine): State<Arc<FaceService>>,
    access: LimitedAccess,
    ApiQuery(query): ApiQuery<DetectQuery>,
    ImageBody(image): ImageBody,
) -> Result<Response, ApiError> {
    let return_face_id = query.return_face_id.unwrap_or(true);
    gate(&state, &access, FaceOperation::Detect { return_face_id }).await?;
    if query
        .return_face_attributes
        .as_deref()
        .is_some_and(|a| !a.trim().is_empty())
    {
        return Err(ApiError::bad_request(
            "BadArgument",
            "face attributes are not supported: omit returnFaceAttributes",
        ));
    }
    check_detection_model(query.detection_model.as_deref())?;
    let model = recognition_model(query.recognition_model)?;
    let ttl = query.face_id_time_to_live.unwrap_or(FACE_ID_TTL_SECS);
    if !(60..=FACE_ID_TTL_SECS).contains(&ttl) {
        return Err(ApiError::bad_request(
            "BadArgument",
            format!("faceIdTimeToLive must be from 60 to {FACE_ID_TTL_SECS} seconds"),
        ));
    }
    let limits = engine.limits;
    let found = engine
        .run(move |engine| find_faces(engine, &image, &limits, return_face_id))
        .await?;
    let now = state.clock.now();
    let mut answer = Vec::with_capacity(found.len());
    for Found { face, template } in found {
        let mut view = wire::DetectedFace {
            face_id: None,
            face_rectangle: rectangle(&face.rect),
            recognition_model: query.return_recognition_model.then(|| model.clone()),
            face_landmarks: query.return_face_landmarks.then(|| landmarks(&face)),
        };
        if let Some(template) = template {
            let detection = Detection {
                id: Uuid::new_v4(),
                account: access.caller.account.id,
                recognition_model: model.clone(),
                template: template.values().to_vec(),
                created_at: now,
                expires_at: now.plus_secs(ttl),
            };
            state.store.save_detection(&detection).await?;
            view.face_id = Some(detection.id.to_string());
        }
        answer.push(view);
    }
    Ok(Json(answer).into_response())
}

fn rectangle(rect: &Rect) -> FaceRectangle {
    FaceRectangle {
        top: rect.top,
        left: rect.left,
        width: rect.width,
        height: rect.height,
    }
}

/// The five landmarks the detector finds, under Azure's names (left and right as seen in the image).
fn landmarks(face: &DetectedFace) -> FaceLandmarks {
    let point = |i: usize| Point {
        x: f64::from(face.landmarks[i].0),
        y: f64::from(face.landmarks[i].1),
    };
    FaceLandmarks {
        pupil_left: point(0),
        pupil_right: point(1),
        nose_tip: point(2),
        mouth_left: point(3),
        mouth_right: point(4),
    }
}

/// A live face id of the caller's, as a template: 400 `FaceNotFound` otherwise (unknown, expired, or another
/// account's: the same answer, so ids cannot be probed).
async fn live_face(
    state: &AppState,
    access: &LimitedAccess,
    raw: &str,
) -> Result<(Detection, Embedding), ApiError> {
    let mut found = live_faces(state, access, std::slice::from_ref(&raw)).await?;
    Ok(found.remove(0))
}

/// Each of `raws` as [`live_face`] answers it, in order, read from the store at once.
async fn live_faces(
    state: &AppState,
    access: &LimitedAccess,
    raws: &[&str],
) -> Result<Vec<(Detection, Embedding)>, ApiError> {
    let not_found =
        |raw: &str| ApiError::bad_request("FaceNotFound", format!("Face {raw} is not found or has expired."));
    let ids = raws
        .iter()
        .map(|raw| Uuid::try_parse(raw).map_err(|_| not_found(raw)))
        .collect::<Result<Vec<_>, _>>()?;
    let live: HashMap<Uuid, Detection> = state
        .store
        .detections(access.caller.account.id, &ids, state.clock.now())
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    raws.iter()
        .zip(&ids)
        .map(|(raw, id)| {
            let detection = live.get(id).cloned().ok_or_else(|| not_found(raw))?;
            let template = Embedding::from_values(&detection.template)
                .ok_or_else(|| ApiError::internal(&format_args!("face {id} has a corrupt template")))?;
            Ok((detection, template))
        })
        .collect()
}

/// Refuses comparing faces of different recognition models.
fn same_model(a: &str, b: &str) -> Result<(), ApiError> {
    if a == b {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "BadArgument",
            format!("faces and groups of different recognition models ({a}, {b}) cannot be compared"),
        ))
    }
}

fn person_groups_unsupported() -> ApiError {
    ApiError::bad_request(
        "BadArgument",
        "person groups are not supported: use a large person group (largePersonGroupId)",
    )
}

/// Body of an identification.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentifyBody {
    face_ids: Vec<String>,
    large_person_group_id: Option<String>,
    person_group_id: Option<String>,
    max_num_of_candidates_returned: Option<usize>,
    confidence_threshold: Option<f32>,
}

/// `POST /identify`: for each face id, the group's persons it most resembles, best first.
pub(crate) async fn identify(
    State(state): State<AppState>,
    State(engine): State<Arc<FaceService>>,
    access: LimitedAccess,
    ApiJson(body): ApiJson<IdentifyBody>,
) -> Result<Response, ApiError> {
    gate(&state, &access, FaceOperation::Identify).await?;
    if body.person_group_id.is_some() {
        return Err(person_groups_unsupported());
    }
    let raw_group = body
        .large_person_group_id
        .ok_or_else(|| ApiError::bad_request("BadArgument", "largePersonGroupId is required"))?;
    if body.face_ids.is_empty() || body.face_ids.len() > MAX_IDENTIFY_FACES {
        return Err(ApiError::bad_request(
            "BadArgument",
            format!("faceIds must hold 1 to {MAX_IDENTIFY_FACES} face ids"),
        ));
    }
    let k = candidates_limit(body.max_num_of_candidates_returned, 1, 100)?;
    let threshold = threshold(body.confidence_threshold)?;
    let group = existing_group(&state, &access.caller, &raw_group).await?;
    if !group.training.is_trained() {
        return Err(ApiError::bad_request(
            "LargePersonGroupNotTrained",
            "Large person group not trained.",
        ));
    }
    let raws: Vec<&str> = body.face_ids.iter().map(String::as_str).collect();
    let mut queries = Vec::with_capacity(raws.len());
    for (detection, template) in live_faces(&state, &access, &raws).await? {
        same_model(&detection.recognition_model, &group.recognition_model)?;
        queries.push((detection.id, template));
    }
    let index = engine.index(state.store.as_ref(), &group).await?;
    let min_cosine = cosine_for_confidence(threshold);
    let answer: Vec<IdentifyResult> = queries
        .iter()
        .map(|(id, template)| IdentifyResult {
            face_id: id.to_string(),
            candidates: index
                .search(template.values(), k, min_cosine)
                .into_iter()
                .map(|(person, cosine)| Candidate {
                    person_id: person.to_string(),
                    confidence: f64::from(confidence(cosine)),
                })
                .collect(),
        })
        .collect();
    Ok(Json(answer).into_response())
}

fn candidates_limit(asked: Option<usize>, default: usize, most: usize) -> Result<usize, ApiError> {
    match asked.unwrap_or(default) {
        n if (1..=most).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "BadArgument",
            format!("maxNumOfCandidatesReturned must be from 1 to {most}"),
        )),
    }
}

fn threshold(asked: Option<f32>) -> Result<f32, ApiError> {
    match asked.unwrap_or(0.5) {
        t if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(ApiError::bad_request(
            "BadArgument",
            "confidenceThreshold must be from 0 to 1",
        )),
    }
}

/// Body of a verification: two face ids, or a face id and a person of a large person group.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyBody {
    face_id1: Option<String>,
    face_id2: Option<String>,
    face_id: Option<String>,
    person_id: Option<String>,
    large_person_group_id: Option<String>,
    person_group_id: Option<String>,
}

/// `POST /verify`: whether two faces, or a face and a person's enrolled faces, show the same person.
pub(crate) async fn verify(
    State(state): State<AppState>,
    access: LimitedAccess,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Response, ApiError> {
    gate(&state, &access, FaceOperation::Verify).await?;
    if body.person_group_id.is_some() {
        return Err(person_groups_unsupported());
    }
    let cosine = match body {
        VerifyBody {
            face_id1: Some(first),
            face_id2: Some(second),
            face_id: None,
            person_id: None,
            large_person_group_id: None,
            ..
        } => {
            let (a, a_template) = live_face(&state, &access, &first).await?;
            let (b, b_template) = live_face(&state, &access, &second).await?;
            same_model(&a.recognition_model, &b.recognition_model)?;
            a_template.cosine(&b_template)
        }
        VerifyBody {
            face_id1: None,
            face_id2: None,
            face_id: Some(face),
            person_id: Some(person),
            large_person_group_id: Some(raw_group),
            ..
        } => {
            let (detection, template) = live_face(&state, &access, &face).await?;
            let group = existing_group(&state, &access.caller, &raw_group).await?;
            same_model(&detection.recognition_model, &group.recognition_model)?;
            let person = state
                .store
                .person(access.caller.account.id, &group.id, person_id(&person)?)
                .await?
                .ok_or_else(person_not_found)?;
            let enrolled = state
                .store
                .persisted_faces(access.caller.account.id, &group.id, Some(person.id))
                .await?;
            enrolled
                .iter()
                .filter_map(|f| Embedding::from_values(&f.template))
                .map(|e| template.cosine(&e))
                .reduce(f32::max)
                .ok_or_else(|| {
                    ApiError::bad_request("PersonFaceNotFound", "The person has no enrolled face.")
                })?
        }
        _ => {
            return Err(ApiError::bad_request(
                "BadArgument",
                "give faceId1 and faceId2, or faceId, personId and largePersonGroupId",
            ));
        }
    };
    Ok(Json(VerifyResult {
        is_identical: cosine >= SAME_PERSON_COSINE,
        confidence: f64::from(confidence(cosine)),
    })
    .into_response())
}

/// Body of a find-similar.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FindSimilarBody {
    face_id: String,
    face_ids: Option<Vec<String>>,
    face_list_id: Option<String>,
    large_face_list_id: Option<String>,
    max_num_of_candidates_returned: Option<usize>,
    mode: Option<String>,
}

/// `POST /findsimilars` among given face ids (answered as `faceId`) or the faces of a trained large face list
/// (answered as `persistedFaceId`): the most similar first; `matchPerson` (the default) keeps only the faces that
/// show the same person, `matchFace` the most similar ones whoever they show.
pub(crate) async fn find_similar(
    State(state): State<AppState>,
    access: LimitedAccess,
    ApiJson(body): ApiJson<FindSimilarBody>,
) -> Result<Response, ApiError> {
    let in_face_list = body.face_list_id.is_some() || body.large_face_list_id.is_some();
    gate(&state, &access, FaceOperation::FindSimilar { in_face_list }).await?;
    if body.face_list_id.is_some() {
        return Err(ApiError::bad_request(
            "BadArgument",
            "face lists are not supported: use a large face list (largeFaceListId)",
        ));
    }
    let k = candidates_limit(body.max_num_of_candidates_returned, 20, MAX_SIMILAR_CANDIDATES)?;
    let match_person = match body.mode.as_deref() {
        None | Some("matchPerson") => true,
        Some("matchFace") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "BadArgument",
                "mode must be matchPerson or matchFace",
            ));
        }
    };
    let (query, template) = live_face(&state, &access, &body.face_id).await?;
    let (candidates, from_list) = match (body.large_face_list_id, body.face_ids) {
        (Some(raw_list), None) => (list_candidates(&state, &access, &query, &raw_list).await?, true),
        (None, Some(ids)) if !ids.is_empty() && ids.len() <= MAX_SIMILAR_CANDIDATES => {
            let raws: Vec<&str> = ids.iter().map(String::as_str).collect();
            let mut candidates = Vec::with_capacity(raws.len());
            for (candidate, candidate_template) in live_faces(&state, &access, &raws).await? {
                same_model(&query.recognition_model, &candidate.recognition_model)?;
                candidates.push((candidate.id, candidate_template));
            }
            (candidates, false)
        }
        _ => {
            return Err(ApiError::bad_request(
                "BadArgument",
                format!("give faceIds (1 to {MAX_SIMILAR_CANDIDATES} face ids) or largeFaceListId"),
            ));
        }
    };
    let mut scored: Vec<(Uuid, f32)> = candidates
        .iter()
        .map(|(id, candidate)| (*id, template.cosine(candidate)))
        .filter(|(_, cosine)| !match_person || *cosine >= SAME_PERSON_COSINE)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.dedup_by_key(|(id, _)| *id);
    scored.truncate(k);
    let answer: Vec<SimilarFace> = scored
        .into_iter()
        .map(|(id, cosine)| {
            let id = Some(id.to_string());
            let (face_id, persisted_face_id) = if from_list { (None, id) } else { (id, None) };
            SimilarFace {
                face_id,
                persisted_face_id,
                confidence: f64::from(confidence(cosine)),
            }
        })
        .collect();
    Ok(Json(answer).into_response())
}

/// Most faces of a large face list that one find-similar reads, page by page.
const LIST_PAGE: u32 = 1000;

/// The faces of the caller's trained large face list, as candidates for `query`.
async fn list_candidates(
    state: &AppState,
    access: &LimitedAccess,
    query: &Detection,
    raw_list: &str,
) -> Result<Vec<(Uuid, Embedding)>, ApiError> {
    let list = existing_list(state, access.caller.account.id, raw_list).await?;
    if list.trained_at.is_none() {
        return Err(ApiError::bad_request(
            "LargeFaceListNotTrained",
            "Large face list not trained.",
        ));
    }
    same_model(&query.recognition_model, &list.recognition_model)?;
    let mut candidates = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .list_faces(access.caller.account.id, &list.id, after, LIST_PAGE)
            .await?;
        after = page.last().map(|f| f.id);
        for face in &page {
            let template = Embedding::from_values(&face.template).ok_or_else(|| {
                ApiError::internal(&format_args!("list face {} has a corrupt template", face.id))
            })?;
            candidates.push((face.id, template));
        }
        if page.len() < LIST_PAGE as usize {
            return Ok(candidates);
        }
    }
}
