//! The Face service's domain: which Limited Access flags each operation needs (one table, [`FaceOperation`]),
//! and the identifiers and names of large person groups and their persons.
//!
//! | operation | needs (every row: one of the flags listed) |
//! |---|---|
//! | `detect` without face ids (`returnFaceId=false`) | nothing |
//! | `detect` with face ids (`returnFaceId=true`, the v1.0 SDK's default) | `Face.Identification` or `Face.Verification` |
//! | `identify` | `Face.Identification` |
//! | `findsimilars` among given face ids | `Face.Identification` |
//! | `findsimilars` against a large face list | `Face.Identification`, **and** `LimitedAccess.HighRisk` |
//! | `verify` (face to face, face to person) | `Face.Verification` |
//! | person groups, persons, enrolment, training | nothing (they return no identity decision) |
//!
//! `LimitedAccess.HighRisk` marks one-to-many search over an arbitrary collection of faces that are not enrolled
//! persons (a face list): the use that turns face recognition into a face search engine. Identification against
//! persons a customer enrolled, and verification, are the approved features themselves.

use crate::error::DomainError;
use crate::flags::{FeatureFlag, FlagSet};

/// A Face operation that may be gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaceOperation {
    /// Detection; with face ids the result can be fed to identification or verification.
    Detect {
        /// Whether face ids are returned.
        return_face_id: bool,
    },
    /// One-to-many identification against a large person group.
    Identify,
    /// Similar faces among given face ids, or in a large face list.
    FindSimilar {
        /// Whether the candidates are a large face list (a stored collection) rather than given face ids.
        in_face_list: bool,
    },
    /// One-to-one verification (face to face, or face to person).
    Verify,
    /// Group, person, enrolment and training management.
    Manage,
}

const IDENTIFICATION: FlagSet = FlagSet::EMPTY.with(FeatureFlag::FaceIdentification);
const VERIFICATION: FlagSet = FlagSet::EMPTY.with(FeatureFlag::FaceVerification);
const EITHER: FlagSet = IDENTIFICATION.with(FeatureFlag::FaceVerification);
const HIGH_RISK: FlagSet = FlagSet::EMPTY.with(FeatureFlag::LimitedAccessHighRisk);

impl FaceOperation {
    /// What the operation needs: every clause, each met by any one of its flags (see the module's table).
    pub const fn requirement(self) -> &'static [FlagSet] {
        match self {
            Self::Detect {
                return_face_id: false,
            }
            | Self::Manage => &[],
            Self::Detect { return_face_id: true } => &[EITHER],
            Self::Identify | Self::FindSimilar { in_face_list: false } => &[IDENTIFICATION],
            Self::FindSimilar { in_face_list: true } => &[IDENTIFICATION, HIGH_RISK],
            Self::Verify => &[VERIFICATION],
        }
    }

    /// The name recorded in the audit log.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Detect {
                return_face_id: false,
            } => "face.detect",
            Self::Detect { return_face_id: true } => "face.detect.faceId",
            Self::Identify => "face.identify",
            Self::FindSimilar { in_face_list: false } => "face.findSimilar",
            Self::FindSimilar { in_face_list: true } => "face.findSimilar.faceList",
            Self::Verify => "face.verify",
            Self::Manage => "face.manage",
        }
    }
}

/// Longest group id, characters (the SDKs check it client-side too).
pub const MAX_GROUP_ID_CHARS: usize = 64;
/// Longest group or person name, characters (Azure's limit).
pub const MAX_NAME_CHARS: usize = 128;
/// Longest `userData`, characters (Azure's limit for groups and persons).
pub const MAX_USER_DATA_CHARS: usize = 16 * 1024;

/// A large person group's id: `^[a-z0-9-_]{1,64}$`, chosen by the caller, unique within its account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

impl GroupId {
    /// Parses an id.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid = !raw.is_empty()
            && raw.len() <= MAX_GROUP_ID_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::InvalidGroupId(raw.chars().take(80).collect()))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a group or person name (1 to 128 characters, no control characters) and its optional `userData`.
pub fn check_name_and_user_data(name: &str, user_data: Option<&str>) -> Result<(), DomainError> {
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(DomainError::InvalidName(format!(
            "a name is 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    if user_data.is_some_and(|d| d.chars().count() > MAX_USER_DATA_CHARS) {
        return Err(DomainError::InvalidName(format!(
            "userData is at most {MAX_USER_DATA_CHARS} characters"
        )));
    }
    Ok(())
}

/// The recognition models Tessera answers for (every one is served by the same SFace network; the name is
/// recorded and echoed, as clients choose it per group).
pub const RECOGNITION_MODELS: [&str; 4] = [
    "recognition_01",
    "recognition_02",
    "recognition_03",
    "recognition_04",
];

/// Checks a `recognitionModel` value.
pub fn check_recognition_model(model: &str) -> Result<(), DomainError> {
    if RECOGNITION_MODELS.contains(&model) {
        Ok(())
    } else {
        Err(DomainError::InvalidName(format!(
            "recognitionModel must be one of {}",
            RECOGNITION_MODELS.join(", ")
        )))
    }
}

/// A large person group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargePersonGroup {
    /// The owning account.
    pub account: uuid::Uuid,
    /// Its id, unique within the account.
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// Caller's data.
    pub user_data: Option<String>,
    /// The recognition model named at creation.
    pub recognition_model: String,
    /// Creation time.
    pub created_at: crate::Timestamp,
    /// What identification searches.
    pub training: Training,
}

/// A group's training. Training freezes the set of faces identification searches: the index of generation `G` holds
/// the faces enrolled before `G` was trained that still exist. Faces enrolled later wait for the next training;
/// removed faces and persons leave at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Training {
    /// How many times the group has been trained; 0: never (identification is refused).
    pub generation: i64,
    /// When it was last trained.
    pub trained_at: Option<crate::Timestamp>,
    /// How many faces and persons have been removed from the group: an index built before a removal is stale.
    pub removals: i64,
}

impl Training {
    /// Whether the group has been trained at least once.
    pub const fn is_trained(&self) -> bool {
        self.generation > 0
    }
}

/// A person in a large person group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Random id.
    pub id: uuid::Uuid,
    /// The owning account.
    pub account: uuid::Uuid,
    /// Its group.
    pub group: GroupId,
    /// Display name.
    pub name: String,
    /// Caller's data.
    pub user_data: Option<String>,
    /// Creation time.
    pub created_at: crate::Timestamp,
    /// The ids of the faces enrolled for the person, in id order.
    pub persisted_face_ids: Vec<uuid::Uuid>,
}

/// Cosine similarity of two templates at or above which they show the same person.
///
/// OpenCV publishes 0.363 for SFace (`FaceRecognizerSF`, chosen on LFW's well-lit, frontal faces). Tessera is
/// stricter, because a false match is the costly error of an identity decision and one-to-many identification
/// multiplies the chances of one: measured with this engine, photographs of one person score 0.68–0.87 against each
/// other and different people's portraits below 0.33, but small (about 90 pixels) black-and-white faces of a group
/// photograph score up to 0.50 against other people's, and one scored 0.38 against a painted portrait. 0.55 keeps
/// every same-person pair seen above it and every different-person pair seen below it, with a margin each way.
pub const SAME_PERSON_COSINE: f32 = 0.55;

/// The confidence Azure's clients expect (0 to 1, "identical" from 0.5) for a cosine similarity: piecewise linear,
/// 0 at or below cosine 0, 0.5 at [`SAME_PERSON_COSINE`], 1 at cosine 1. Verification answers `isIdentical` when the
/// confidence is at least 0.5, exactly when the cosine reaches the threshold.
pub fn confidence(cosine: f32) -> f32 {
    if !cosine.is_finite() || cosine <= 0.0 {
        0.0
    } else if cosine < SAME_PERSON_COSINE {
        0.5 * cosine / SAME_PERSON_COSINE
    } else {
        (0.5 + 0.5 * (cosine - SAME_PERSON_COSINE) / (1.0 - SAME_PERSON_COSINE)).min(1.0)
    }
}

/// The least cosine whose [`confidence`] reaches `confidence` (the inverse of [`confidence`] on (0, 1]); searches
/// use it to skip candidates below a confidence threshold without scoring them twice.
pub fn cosine_for_confidence(confidence: f32) -> f32 {
    if confidence <= 0.0 {
        f32::NEG_INFINITY
    } else if confidence < 0.5 {
        2.0 * confidence * SAME_PERSON_COSINE
    } else {
        SAME_PERSON_COSINE + (2.0 * confidence - 1.0) * (1.0 - SAME_PERSON_COSINE)
    }
}

/// How long a detected face's id can be used, seconds (Azure keeps face ids 24 hours).
pub const FACE_ID_TTL_SECS: i64 = 86_400;

/// A face found by `detect` and kept under a face id for [`FACE_ID_TTL_SECS`], for identify, verify and find-similar.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The face id.
    pub id: uuid::Uuid,
    /// The account that detected it (the only one that may use the id).
    pub account: uuid::Uuid,
    /// The recognition model named in the request.
    pub recognition_model: String,
    /// The face's template (the recognition network's unit-length embedding).
    pub template: Vec<f32>,
    /// Detection time.
    pub created_at: crate::Timestamp,
    /// End of the id's life.
    pub expires_at: crate::Timestamp,
}

/// A large face list: a stored collection of faces, not persons, that find-similar searches (gated with
/// `LimitedAccess.HighRisk`, see the module's table). Its id follows the rules of a [`GroupId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeFaceList {
    /// The owning account.
    pub account: uuid::Uuid,
    /// Its id, unique within the account.
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// Caller's data.
    pub user_data: Option<String>,
    /// The recognition model named at creation.
    pub recognition_model: String,
    /// Creation time.
    pub created_at: crate::Timestamp,
    /// When it was last trained (find-similar needs one training).
    pub trained_at: Option<crate::Timestamp>,
}

/// A face in a large face list; its template is kept until the face or its list is deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct ListFace {
    /// The persisted face id.
    pub id: uuid::Uuid,
    /// The owning account.
    pub account: uuid::Uuid,
    /// Its list.
    pub list: GroupId,
    /// The face's template.
    pub template: Vec<f32>,
    /// Caller's data.
    pub user_data: Option<String>,
    /// Addition time.
    pub created_at: crate::Timestamp,
}

/// A face enrolled for a person: its template is kept until the face, its person or its group is deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedFace {
    /// The persisted face id.
    pub id: uuid::Uuid,
    /// The owning account.
    pub account: uuid::Uuid,
    /// The person's group.
    pub group: GroupId,
    /// The person.
    pub person: uuid::Uuid,
    /// The face's template.
    pub template: Vec<f32>,
    /// Caller's data.
    pub user_data: Option<String>,
    /// Enrolment time.
    pub created_at: crate::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use FeatureFlag::*;

    #[test]
    fn the_table() {
        let flags = |op: FaceOperation| -> Vec<Vec<FeatureFlag>> {
            op.requirement().iter().map(|c| c.iter().collect()).collect()
        };
        assert!(
            flags(FaceOperation::Detect {
                return_face_id: false
            })
            .is_empty()
        );
        assert_eq!(
            flags(FaceOperation::Detect { return_face_id: true }),
            [vec![FaceIdentification, FaceVerification]]
        );
        assert_eq!(flags(FaceOperation::Identify), [vec![FaceIdentification]]);
        assert_eq!(flags(FaceOperation::Verify), [vec![FaceVerification]]);
        assert_eq!(
            flags(FaceOperation::FindSimilar { in_face_list: true }),
            [vec![FaceIdentification], vec![LimitedAccessHighRisk]]
        );
        assert!(flags(FaceOperation::Manage).is_empty());
    }

    #[test]
    fn confidence_is_one_half_at_the_same_person_threshold() {
        assert_eq!(confidence(-0.4), 0.0);
        assert_eq!(confidence(0.0), 0.0);
        assert!((confidence(SAME_PERSON_COSINE) - 0.5).abs() < 1e-6);
        assert!(confidence(SAME_PERSON_COSINE - 1e-4) < 0.5);
        assert_eq!(confidence(1.0), 1.0);
        assert_eq!(confidence(f32::NAN), 0.0);
        let mut last = 0.0;
        for i in 0..=100 {
            let c = confidence(i as f32 / 100.0);
            assert!(c >= last, "monotonic");
            last = c;
        }
    }

    #[test]
    fn confidence_thresholds_map_back_to_cosines() {
        assert_eq!(cosine_for_confidence(0.0), f32::NEG_INFINITY);
        for c in [0.1f32, 0.25, 0.5, 0.6, 0.9, 1.0] {
            let cosine = cosine_for_confidence(c);
            assert!((confidence(cosine) - c).abs() < 1e-5, "{c} -> {cosine}");
        }
        assert!((cosine_for_confidence(0.5) - SAME_PERSON_COSINE).abs() < 1e-6);
    }

    #[test]
    fn group_ids_and_names() {
        for ok in ["grp-1", "a", "x_y-0", &"a".repeat(64)] {
            assert_eq!(GroupId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "Grp", "a b", "a/b", "é", &"a".repeat(65)] {
            assert_eq!(GroupId::parse(bad).unwrap_err().code(), "InvalidGroupId", "{bad}");
        }
        assert!(check_name_and_user_data("Alice", Some("x")).is_ok());
        assert!(check_name_and_user_data("", None).is_err());
        assert!(check_name_and_user_data(&"n".repeat(129), None).is_err());
        assert!(check_name_and_user_data("a\nb", None).is_err());
        assert!(check_name_and_user_data("a", Some(&"d".repeat(16 * 1024 + 1))).is_err());
    }
}
