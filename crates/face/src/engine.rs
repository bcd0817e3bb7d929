//! The engine: YuNet detection and SFace embeddings, with the pre- and post-processing of OpenCV's
//! `FaceDetectorYN` and `FaceRecognizerSF`.
//!
//! Detection: the image is shrunk (never enlarged) to fit 640×640 with `fast_image_resize`, keeping its aspect
//! ratio, and placed at the top left of a black 640×640 canvas, as OpenCV pads its input; the network gets BGR
//! channels with raw 0–255 values (OpenCV's `blobFromImage` defaults). The three heads (strides 8, 16, 32) are
//! decoded as OpenCV does: score = √(cls·obj) with both clamped to [0, 1], box centre `(col + dx, row + dy)·stride`,
//! size `exp(dw, dh)·stride`, landmarks `(col + lx, row + ly)·stride`; then non-maximum suppression (IoU 0.3 on the
//! integer boxes, at most 5000 candidates) and the coordinates are scaled back to the original image.
//!
//! Embedding: the similarity transform (rotation, uniform scale, translation; no reflection) that best maps the
//! five landmarks onto SFace's 112×112 template in the least-squares sense (Umeyama; in 2-D it has a closed form),
//! bilinear `warpAffine` with black borders, then the network on RGB 0–255 (`blobFromImage(…, swapRB = true)` of
//! OpenCV's BGR crop), and the 128 outputs L2-normalised.

use std::borrow::Cow;

use fast_image_resize as fr;

use crate::network::{Backend, Network};
use crate::{DecodedImage, FaceError, ModelFiles};

/// The detector's input side, pixels.
const DETECT_SIDE: usize = 640;
/// The recogniser's input side, pixels.
const ALIGN_SIDE: usize = 112;
/// The detector's input tensor: one BGR image.
const DETECTOR_INPUT: [usize; 4] = [1, 3, DETECT_SIDE, DETECT_SIDE];
/// The recogniser's input tensor: one aligned RGB crop.
const RECOGNIZER_INPUT: [usize; 4] = [1, 3, ALIGN_SIDE, ALIGN_SIDE];
/// YuNet's head strides.
const STRIDES: [usize; 3] = [8, 16, 32];
/// IoU above which the weaker of two boxes is suppressed (OpenCV's default for YuNet).
const NMS_IOU: f32 = 0.3;
/// Candidates kept before suppression (OpenCV's default `top_k`).
const TOP_K: usize = 5000;
/// Length of an [`Embedding`].
pub const EMBEDDING_LEN: usize = 128;
/// SFace's template: where the five landmarks sit in the 112×112 aligned crop.
const TEMPLATE: [(f64, f64); 5] = [
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
];

/// A rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge (column of the first pixel inside).
    pub left: u32,
    /// Top edge (row of the first pixel inside).
    pub top: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A face found by [`Engine::detect`], in the original image's coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectedFace {
    /// The face's box, clipped to the image.
    pub rect: Rect,
    /// In YuNet's order: right eye, left eye, nose tip, right mouth corner, left mouth corner (the subject's right
    /// and left: the right eye is on the image's left). Not clipped.
    pub landmarks: [(f32, f32); 5],
    /// Detection confidence in [0, 1].
    pub score: f32,
}

/// An L2-normalised SFace embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding([f32; EMBEDDING_LEN]);

impl Embedding {
    /// An embedding from stored values, normalised again; `None` unless there are [`EMBEDDING_LEN`] finite values
    /// with a non-zero norm.
    pub fn from_values(values: &[f32]) -> Option<Self> {
        let values: [f32; EMBEDDING_LEN] = values.try_into().ok()?;
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return None;
        }
        Some(Self(values.map(|v| v / norm)))
    }

    /// The values (unit length).
    pub fn values(&self) -> &[f32; EMBEDDING_LEN] {
        &self.0
    }

    /// Cosine similarity with `other`, in [-1, 1]; at least [`crate::SAME_PERSON_COSINE`] means the same person.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(other.0.iter()).map(|(a, b)| a * b).sum()
    }
}

/// The two loaded networks. Cheap to clone and share: `detect` and `embed` take `&self` and may be called
/// concurrently.
#[derive(Clone)]
pub struct Engine {
    backend: &'static str,
    detector: Network,
    /// For each stride, the output indices of cls, obj, bbox and kps.
    heads: [[usize; 4]; 3],
    recognizer: Network,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Verifies the model files' hashes, then loads both networks on `backend`.
    ///
    /// # Errors
    ///
    /// [`FaceError::ModelsMissing`] or [`FaceError::ModelAltered`] from [`ModelFiles::verify`] (or, for ONNX
    /// Runtime, from [`crate::models::verify_onnxruntime`]); [`FaceError::EngineFailure`] if a model does not load
    /// or the backend is not built in.
    pub fn load(files: &ModelFiles, backend: &Backend) -> Result<Self, FaceError> {
        files.verify()?;
        let detector = Network::load(&files.detector, DETECTOR_INPUT, backend)?;
        let index = |name: String| {
            detector
                .output_index(&name)
                .ok_or_else(|| FaceError::EngineFailure(format!("the detector has no output {name}")))
        };
        let mut heads = [[0; 4]; 3];
        for (head, stride) in heads.iter_mut().zip(STRIDES) {
            for (slot, kind) in head.iter_mut().zip(["cls", "obj", "bbox", "kps"]) {
                *slot = index(format!("{kind}_{stride}"))?;
            }
        }
        let recognizer = Network::load(&files.recognizer, RECOGNIZER_INPUT, backend)?;
        Ok(Self {
            backend: backend.name(),
            detector,
            heads,
            recognizer,
        })
    }

    /// The backend's name (`tract`, `onnxruntime`).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Finds the faces whose score is at least `min_score`, best first.
    ///
    /// # Errors
    ///
    /// [`FaceError::EngineFailure`] if the network fails.
    pub fn detect(&self, image: &DecodedImage, min_score: f32) -> Result<Vec<DetectedFace>, FaceError> {
        let (width, height) = (image.width(), image.height());
        let fit = (DETECT_SIDE as f64 / f64::from(width.max(height))).min(1.0);
        let side = |v: u32| ((f64::from(v) * fit).round() as u32).clamp(1, DETECT_SIDE as u32);
        let (w, h) = (side(width), side(height));
        let pixels = shrink(image, w, h)?;

        let plane = DETECT_SIDE * DETECT_SIDE;
        let mut input = vec![0f32; 3 * plane];
        for y in 0..h as usize {
            for x in 0..w as usize {
                let p = (y * w as usize + x) * 3;
                let at = y * DETECT_SIDE + x;
                // BGR: OpenCV's channel order.
                input[at] = f32::from(pixels[p + 2]);
                input[plane + at] = f32::from(pixels[p + 1]);
                input[2 * plane + at] = f32::from(pixels[p]);
            }
        }
        let outputs = self.detector.run(input, DETECTOR_INPUT)?;
        let slice = |i: usize| {
            outputs
                .get(i)
                .map(Vec::as_slice)
                .ok_or_else(|| FaceError::EngineFailure(format!("detector output {i} missing")))
        };

        let mut candidates = Vec::new();
        for (head, stride) in self.heads.iter().zip(STRIDES) {
            let cols = DETECT_SIDE / stride;
            let cells = cols * cols;
            let [cls, obj, bbox, kps] = [slice(head[0])?, slice(head[1])?, slice(head[2])?, slice(head[3])?];
            if cls.len() != cells || obj.len() != cells || bbox.len() != 4 * cells || kps.len() != 10 * cells
            {
                return Err(FaceError::EngineFailure(format!(
                    "unexpected detector output sizes for stride {stride}"
                )));
            }
            let s = stride as f32;
            for idx in 0..cells {
                let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
                if score < min_score {
                    continue;
                }
                let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
                let b = &bbox[idx * 4..idx * 4 + 4];
                let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
                let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
                let k = &kps[idx * 10..idx * 10 + 10];
                let landmarks = std::array::from_fn(|n| ((k[2 * n] + c) * s, (k[2 * n + 1] + r) * s));
                candidates.push(Candidate {
                    x: cx - bw / 2.0,
                    y: cy - bh / 2.0,
                    w: bw,
                    h: bh,
                    landmarks,
                    score,
                });
            }
        }

        let (sx, sy) = (w as f32 / width as f32, h as f32 / height as f32);
        Ok(suppress(candidates)
            .into_iter()
            .filter_map(|c| c.to_face(sx, sy, width, height))
            .collect())
    }

    /// Aligns `face` in `image` (which it was detected in) and computes its embedding.
    ///
    /// # Errors
    ///
    /// [`FaceError::EngineFailure`] if the landmarks are degenerate or the network fails.
    pub fn embed(&self, image: &DecodedImage, face: &DetectedFace) -> Result<Embedding, FaceError> {
        let transform = similarity_to_template(&face.landmarks)
            .ok_or_else(|| FaceError::EngineFailure("the face's landmarks are degenerate".into()))?;
        let crop = warp_affine(image, &transform);
        let outputs = self.recognizer.run(crop, RECOGNIZER_INPUT)?;
        let values = outputs
            .first()
            .ok_or_else(|| FaceError::EngineFailure("the recogniser has no output".into()))?;
        Embedding::from_values(values).ok_or_else(|| {
            FaceError::EngineFailure(format!(
                "the recogniser gave {} values, not a usable embedding",
                values.len()
            ))
        })
    }
}

/// The image resized to `w`×`h` (area-averaging, like OpenCV's `INTER_AREA`), or borrowed when that is its size.
fn shrink(image: &DecodedImage, w: u32, h: u32) -> Result<Cow<'_, [u8]>, FaceError> {
    if (w, h) == (image.width(), image.height()) {
        return Ok(Cow::Borrowed(image.rgb()));
    }
    let src = fr::images::ImageRef::new(image.width(), image.height(), image.rgb(), fr::PixelType::U8x3)
        .map_err(|e| FaceError::engine("resizing", e))?;
    let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
    fr::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Box)),
        )
        .map_err(|e| FaceError::engine("resizing", e))?;
    Ok(Cow::Owned(dst.into_vec()))
}

/// A decoded detection in the detector's 640×640 frame.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    landmarks: [(f32, f32); 5],
    score: f32,
}

impl Candidate {
    /// OpenCV suppresses on the boxes truncated to integers (`Rect2i`); so does this.
    fn int_box(&self) -> (i64, i64, i64, i64) {
        (self.x as i64, self.y as i64, self.w as i64, self.h as i64)
    }

    fn iou(&self, other: &Candidate) -> f32 {
        let (ax, ay, aw, ah) = self.int_box();
        let (bx, by, bw, bh) = other.int_box();
        let iw = ((ax + aw).min(bx + bw) - ax.max(bx)).max(0);
        let ih = ((ay + ah).min(by + bh) - ay.max(by)).max(0);
        let inter = iw * ih;
        let union = aw * ah + bw * bh - inter;
        if union <= 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }

    /// In the original image: `sx`, `sy` are the detector frame's scale factors.
    fn to_face(self, sx: f32, sy: f32, width: u32, height: u32) -> Option<DetectedFace> {
        let left = (self.x / sx).round().clamp(0.0, width as f32) as u32;
        let top = (self.y / sy).round().clamp(0.0, height as f32) as u32;
        let right = ((self.x + self.w) / sx).round().clamp(0.0, width as f32) as u32;
        let bottom = ((self.y + self.h) / sy).round().clamp(0.0, height as f32) as u32;
        (right > left && bottom > top).then(|| DetectedFace {
            rect: Rect {
                left,
                top,
                width: right - left,
                height: bottom - top,
            },
            landmarks: self.landmarks.map(|(x, y)| (x / sx, y / sy)),
            score: self.score,
        })
    }
}

/// Greedy non-maximum suppression, best score first, as OpenCV's `NMSBoxes` (eta 1).
fn suppress(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(TOP_K);
    let mut kept: Vec<Candidate> = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.iou(&c) <= NMS_IOU) {
            kept.push(c);
        }
    }
    kept
}

/// `[[a, -b, tx], [b, a, ty]]` mapping image points onto the template: the least-squares similarity transform
/// without reflection. `None` when the landmarks all coincide (or are not finite).
fn similarity_to_template(landmarks: &[(f32, f32); 5]) -> Option<[f64; 6]> {
    let src: Vec<(f64, f64)> = landmarks
        .iter()
        .map(|&(x, y)| (f64::from(x), f64::from(y)))
        .collect();
    let mean = |points: &[(f64, f64)]| {
        let n = points.len() as f64;
        let (sx, sy) = points
            .iter()
            .fold((0.0, 0.0), |(ax, ay), &(x, y)| (ax + x, ay + y));
        (sx / n, sy / n)
    };
    let (smx, smy) = mean(&src);
    let (dmx, dmy) = mean(&TEMPLATE);
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (&(x, y), &(u, v)) in src.iter().zip(TEMPLATE.iter()) {
        let (sx, sy, dx, dy) = (x - smx, y - smy, u - dmx, v - dmy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if !(norm.is_finite() && norm > 1e-9) {
        return None;
    }
    let (a, b) = (dot / norm, cross / norm);
    let tx = dmx - (a * smx - b * smy);
    let ty = dmy - (b * smx + a * smy);
    Some([a, -b, tx, b, a, ty])
}

/// The 112×112 aligned crop as planar RGB f32 (0–255): each crop pixel samples the image bilinearly at the inverse
/// transform of its position; outside the image is black (OpenCV `warpAffine`, `INTER_LINEAR`, constant border).
fn warp_affine(image: &DecodedImage, m: &[f64; 6]) -> Vec<f32> {
    let [a, nb, tx, b, _, ty] = *m;
    debug_assert_eq!(nb, -b);
    let det = a * a + b * b;
    let (w, h) = (image.width() as i64, image.height() as i64);
    let rgb = image.rgb();
    let pixel = |x: i64, y: i64, ch: usize| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            f64::from(rgb[((y * w + x) * 3) as usize + ch])
        }
    };
    let plane = ALIGN_SIDE * ALIGN_SIDE;
    let mut out = vec![0f32; 3 * plane];
    for v in 0..ALIGN_SIDE {
        for u in 0..ALIGN_SIDE {
            let (du, dv) = (u as f64 - tx, v as f64 - ty);
            // The inverse of [[a, -b], [b, a]] is [[a, b], [-b, a]] / (a² + b²).
            let x = (a * du + b * dv) / det;
            let y = (-b * du + a * dv) / det;
            let (x0, y0) = (x.floor(), y.floor());
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for ch in 0..3 {
                let top = pixel(x0, y0, ch) * (1.0 - fx) + pixel(x0 + 1, y0, ch) * fx;
                let bottom = pixel(x0, y0 + 1, ch) * (1.0 - fx) + pixel(x0 + 1, y0 + 1, ch) * fx;
                out[ch * plane + v * ALIGN_SIDE + u] = (top * (1.0 - fy) + bottom * fy) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_maps_onto_itself() {
        let landmarks = TEMPLATE.map(|(x, y)| (x as f32, y as f32));
        let m = similarity_to_template(&landmarks).unwrap();
        for (got, want) in m.iter().zip([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]) {
            assert!((got - want).abs() < 1e-5, "{m:?}");
        }
    }

    #[test]
    fn a_scaled_rotated_shifted_template_is_undone() {
        // Landmarks = template rotated by 30°, scaled ×2 and shifted: the transform must invert exactly that.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let landmarks = TEMPLATE.map(|(x, y)| {
            (
                (2.0 * (c * x - s * y) + 100.0) as f32,
                (2.0 * (s * x + c * y) + 50.0) as f32,
            )
        });
        let [a, nb, tx, b, a2, ty] = similarity_to_template(&landmarks).unwrap();
        assert!((a - c / 2.0).abs() < 1e-6 && (a2 - a).abs() < 1e-12 && (nb + b).abs() < 1e-12);
        assert!((b + s / 2.0).abs() < 1e-6, "b = {b}");
        for ((x, y), (u, v)) in landmarks.iter().zip(TEMPLATE) {
            let (x, y) = (f64::from(*x), f64::from(*y));
            assert!((a * x + nb * y + tx - u).abs() < 1e-3 && (b * x + a * y + ty - v).abs() < 1e-3);
        }
    }

    #[test]
    fn identical_landmarks_are_degenerate() {
        assert!(similarity_to_template(&[(5.0, 5.0); 5]).is_none());
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_boxes() {
        let c = |x: f32, score: f32| Candidate {
            x,
            y: 0.0,
            w: 100.0,
            h: 100.0,
            landmarks: [(0.0, 0.0); 5],
            score,
        };
        let kept = suppress(vec![c(0.0, 0.8), c(10.0, 0.9), c(300.0, 0.7)]);
        let xs: Vec<f32> = kept.iter().map(|k| k.x).collect();
        assert_eq!(xs, vec![10.0, 300.0]);
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
    }
}
