//! The face engine's one error type: every refusal says why, with a stable code.

use thiserror::Error;

/// Why an image was refused or the engine could not run. `code()` is the stable code sent to clients; where Azure
/// Face has a code for the same refusal (`InvalidImage`, `InvalidImageSize`) it is the same one.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FaceError {
    /// The body is not an image in a supported format (JPEG, PNG, BMP, GIF), or it is corrupt.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The image is too small or too large (bytes, sides or pixels).
    #[error("invalid image size: {0}")]
    InvalidImageSize(String),
    /// A model file is missing; the message says how to fetch it.
    #[error("face models missing: {0}")]
    ModelsMissing(String),
    /// A model file's SHA-256 is not the pinned one.
    #[error("face model altered: {0}")]
    ModelAltered(String),
    /// The inference engine failed (a model that does not load, or a run that fails).
    #[error("face engine failure: {0}")]
    EngineFailure(String),
}

impl FaceError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidImage(_) => "InvalidImage",
            Self::InvalidImageSize(_) => "InvalidImageSize",
            Self::ModelsMissing(_) => "ModelsMissing",
            Self::ModelAltered(_) => "ModelAltered",
            Self::EngineFailure(_) => "EngineFailure",
        }
    }

    /// An engine failure from anything displayable (tract's errors, I/O while loading).
    pub(crate) fn engine(context: &str, err: impl std::fmt::Display) -> Self {
        Self::EngineFailure(format!("{context}: {err}"))
    }
}
