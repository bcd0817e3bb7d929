//! An image to find faces in: the body it arrives as ([`ImageBody`], raw bytes up to [`MAX_IMAGE_BYTES`]; Tessera
//! never fetches image URLs), the face to pick in it (`targetFace`), the detection models, and the template of the
//! one face to enrol.

use crate::face::engine::FaceService;
use crate::http::body;
use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use tessera_face::{DecodedImage, Rect};

/// Largest image body, bytes (Azure's limit).
pub(crate) const MAX_IMAGE_BYTES: usize = 6 * 1024 * 1024;

/// Least detector score of a face that is reported.
pub(crate) const MIN_DETECTION_SCORE: f32 = 0.7;

/// Detection models accepted (all served by the same detector).
const DETECTION_MODELS: [&str; 3] = ["detection_01", "detection_02", "detection_03"];

/// An image body: the raw bytes of a JPEG, PNG, BMP or GIF.
pub(crate) struct ImageBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for ImageBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if json {
            return Err(ApiError::bad_request(
                "InvalidURL",
                "Tessera does not fetch images from URLs: send the image itself as application/octet-stream",
            ));
        }
        let too_large = |_| {
            ApiError::bad_request(
                "InvalidImageSize",
                format!("the image is larger than {MAX_IMAGE_BYTES} bytes"),
            )
        };
        let bytes = body::read_within(req, too_large, |req| async move {
            Bytes::from_request(req, state).await.map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(MAX_IMAGE_BYTES)
                } else {
                    ApiError::bad_request("InvalidImage", rejection.body_text())
                }
            })
        })
        .await?;
        Ok(Self(bytes))
    }
}

/// A `targetFace` query value: `left,top,width,height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetFace(Rect);

impl TargetFace {
    /// Parses `left,top,width,height` (non-negative integers, non-empty box).
    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::bad_request(
                "BadArgument",
                "targetFace must be left,top,width,height in pixels",
            )
        };
        let values: Vec<u32> = raw
            .split(',')
            .map(|v| v.trim().parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        match values[..] {
            [left, top, width, height] if width > 0 && height > 0 => Ok(Self(Rect {
                left,
                top,
                width,
                height,
            })),
            _ => Err(bad()),
        }
    }
}

/// Checks a `detectionModel` (absent means `detection_01`).
pub(crate) fn check_detection_model(model: Option<&str>) -> Result<(), ApiError> {
    match model {
        None => Ok(()),
        Some(m) if DETECTION_MODELS.contains(&m) => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "BadArgument",
            format!("detectionModel must be one of {}", DETECTION_MODELS.join(", ")),
        )),
    }
}

/// The template of the one face to enrol: the image's only face, or the detected face that best overlaps
/// `target`. 400 `InvalidImage` when there is none, or more than one without a target.
pub(crate) async fn enrolment_template(
    engine: &FaceService,
    image: Bytes,
    target: Option<TargetFace>,
) -> Result<Vec<f32>, ApiError> {
    let limits = engine.limits;
    let chosen = engine
        .run(move |engine| {
            let decoded = DecodedImage::decode(&image, &limits)?;
            let faces = engine.detect(&decoded, MIN_DETECTION_SCORE)?;
            let chosen = match target {
                Some(TargetFace(rect)) => faces
                    .iter()
                    .map(|f| (overlap(&f.rect, &rect), f))
                    .filter(|(iou, _)| *iou >= 0.5)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, f)| Ok(*f)),
                None => match faces.as_slice() {
                    [] => None,
                    [one] => Some(Ok(*one)),
                    _ => Some(Err(())),
                },
            };
            Ok(match chosen {
                Some(Ok(face)) => Some(Ok(engine.embed(&decoded, &face)?)),
                Some(Err(())) => Some(Err(())),
                None => None,
            })
        })
        .await?;
    match chosen {
        Some(Ok(template)) => Ok(template.values().to_vec()),
        Some(Err(())) => Err(ApiError::bad_request(
            "InvalidImage",
            "There is more than 1 face in the image; give targetFace to choose one.",
        )),
        None => Err(ApiError::bad_request(
            "InvalidImage",
            "No face detected in the image or in the specified targetFace area.",
        )),
    }
}

/// Intersection over union of two boxes.
fn overlap(a: &Rect, b: &Rect) -> f32 {
    let span = |a0: u32, a1: u32, b0: u32, b1: u32| (a1.min(b1)).saturating_sub(a0.max(b0));
    let inter = u64::from(span(a.left, a.left + a.width, b.left, b.left + b.width))
        * u64::from(span(a.top, a.top + a.height, b.top, b.top + b.height));
    let union = u64::from(a.width) * u64::from(a.height) + u64::from(b.width) * u64::from(b.height) - inter;
    if union == 0 {
        0.0
    } else {
        inter as f32 / union as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_faces_parse_as_azure_writes_them() {
        assert_eq!(
            TargetFace::parse("10,20,30,40").unwrap(),
            TargetFace(Rect {
                left: 10,
                top: 20,
                width: 30,
                height: 40
            })
        );
        for bad in ["", "1,2,3", "1,2,3,4,5", "1,2,0,4", "-1,2,3,4", "a,b,c,d"] {
            assert_eq!(TargetFace::parse(bad).unwrap_err().code(), "BadArgument", "{bad}");
        }
    }

    #[test]
    fn overlap_is_intersection_over_union() {
        let a = Rect {
            left: 0,
            top: 0,
            width: 10,
            height: 10,
        };
        let b = Rect { left: 5, ..a };
        assert_eq!(overlap(&a, &a), 1.0);
        assert!((overlap(&a, &b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(overlap(&a, &Rect { left: 20, ..a }), 0.0);
    }
}
