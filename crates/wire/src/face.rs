//! The Face API v1.0 (docs/wire.md §5.1) as Tessera answers it: large person groups, their persons and enrolled
//! faces, large face lists, training status, and what detect, identify, verify and find-similar return. Ids are
//! strings (persons and faces are UUIDs), times RFC 3339, as Azure writes them; a `null` Azure writes is kept.

use serde::{Deserialize, Serialize};

/// A large person group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LargePersonGroup {
    /// Its id, chosen by the caller.
    pub large_person_group_id: String,
    /// Its name.
    pub name: String,
    /// The caller's data (`null` when none).
    pub user_data: Option<String>,
    /// Its recognition model, when asked for (`returnRecognitionModel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognition_model: Option<String>,
}

/// A person of a large person group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Its id.
    pub person_id: String,
    /// Its name.
    pub name: String,
    /// The caller's data (`null` when none).
    pub user_data: Option<String>,
    /// Its enrolled faces.
    pub persisted_face_ids: Vec<String>,
}

/// A person just created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedPerson {
    /// Its id.
    pub person_id: String,
}

/// A face just enrolled or added to a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedFace {
    /// Its id.
    pub persisted_face_id: String,
}

/// An enrolled face, or a face of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistedFace {
    /// Its id.
    pub persisted_face_id: String,
    /// The caller's data (`null` when none).
    pub user_data: Option<String>,
}

/// A large face list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LargeFaceList {
    /// Its id, chosen by the caller.
    pub large_face_list_id: String,
    /// Its name.
    pub name: String,
    /// The caller's data (`null` when none).
    pub user_data: Option<String>,
    /// Its recognition model, when asked for (`returnRecognitionModel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognition_model: Option<String>,
}

/// A group's or a list's training status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingStatus {
    /// `nonstarted` until the first training, then `succeeded`.
    pub status: String,
    /// When the group or list was created.
    pub created_date_time: String,
    /// The last training, or the creation.
    pub last_action_date_time: String,
    /// The last training (`null` before the first).
    pub last_successful_training_date_time: Option<String>,
    /// Always `null`: training does not fail.
    pub message: Option<String>,
}

/// A detected face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectedFace {
    /// Its id, kept for `faceIdTimeToLive` seconds, when asked for (`returnFaceId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    /// Where it is.
    pub face_rectangle: FaceRectangle,
    /// The recognition model, when asked for (`returnRecognitionModel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recognition_model: Option<String>,
    /// Its landmarks, when asked for (`returnFaceLandmarks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_landmarks: Option<FaceLandmarks>,
}

/// A face's box in the image, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceRectangle {
    /// Top edge.
    pub top: u32,
    /// Left edge.
    pub left: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The five landmarks the detector finds, under Azure's names (left and right as seen in the image).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaceLandmarks {
    /// The left pupil.
    pub pupil_left: Point,
    /// The right pupil.
    pub pupil_right: Point,
    /// The tip of the nose.
    pub nose_tip: Point,
    /// The left corner of the mouth.
    pub mouth_left: Point,
    /// The right corner of the mouth.
    pub mouth_right: Point,
}

/// A point in the image, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Across.
    pub x: f64,
    /// Down.
    pub y: f64,
}

/// Who a face may be, among a group's persons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentifyResult {
    /// The face asked about.
    pub face_id: String,
    /// The persons it may be, most likely first.
    pub candidates: Vec<Candidate>,
}

/// A person a face may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The person.
    pub person_id: String,
    /// How likely, 0 to 1.
    pub confidence: f64,
}

/// Whether two faces, or a face and a person, are the same person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResult {
    /// The same person.
    pub is_identical: bool,
    /// How likely, 0 to 1.
    pub confidence: f64,
}

/// A face like the one asked about: a detected face, or a face of a large face list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimilarFace {
    /// A detected face's id (when searching face ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    /// A list face's id (when searching a large face list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted_face_id: Option<String>,
    /// How alike, 0 to 1.
    pub confidence: f64,
}
