//! The ONNX Runtime backend (`onnxruntime` feature): `ort` with `load-dynamic`, so nothing is linked or
//! downloaded at build time; the library is the pinned one of the `onnxruntime==1.22.1` wheel, hash-checked before
//! the process loads it. One library per process (ONNX Runtime's environment is global).
//!
//! `ort` runs a session through `&mut`, so each network's session sits behind a mutex: concurrent callers of one
//! network take turns, and each run uses ONNX Runtime's own intra-op thread pool over every core.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use prost::Message as _;

use crate::onnx::FoldedModel;
use crate::{FaceError, models};

/// The library this process loaded, once.
static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Verifies and loads `library` into the process, once; a later call with another path is refused.
fn initialise(library: &Path) -> Result<(), FaceError> {
    let loaded = LOADED.get_or_init(|| {
        models::verify_onnxruntime(library).map_err(|e| e.to_string())?;
        ort::init_from(library.display().to_string())
            .with_name("tessera-face")
            .commit()
            .map_err(|e| format!("loading ONNX Runtime from {}: {e}", library.display()))?;
        Ok(library.to_path_buf())
    });
    match loaded {
        Ok(path) if path == library => Ok(()),
        Ok(path) => Err(FaceError::EngineFailure(format!(
            "this process already runs ONNX Runtime from {}; it cannot load {} too",
            path.display(),
            library.display()
        ))),
        Err(reason) => Err(FaceError::EngineFailure(reason.clone())),
    }
}

/// One network's ONNX Runtime session.
pub(crate) struct Session {
    session: Mutex<ort::session::Session>,
}

impl Session {
    /// Loads the folded `model` from memory, after checking that its one input has `input_shape`.
    pub(crate) fn load(
        model: &FoldedModel,
        input_shape: [usize; 4],
        library: &Path,
    ) -> Result<Self, FaceError> {
        initialise(library)?;
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let session = ort::session::Session::builder()
            .and_then(|b| b.with_intra_threads(threads))
            .and_then(|b| b.commit_from_memory(&model.proto.encode_to_vec()))
            .map_err(|e| FaceError::engine("loading the model into ONNX Runtime", e))?;
        let expected: Vec<i64> = input_shape.iter().map(|&d| d as i64).collect();
        match session.inputs.as_slice() {
            [input] if input.input_type.tensor_shape().is_some_and(|s| **s == *expected) => {}
            inputs => {
                return Err(FaceError::EngineFailure(format!(
                    "the model's inputs are {:?}, expected one of shape {expected:?}",
                    inputs
                        .iter()
                        .map(|i| (&i.name, &i.input_type))
                        .collect::<Vec<_>>()
                )));
            }
        }
        Ok(Self {
            session: Mutex::new(session),
        })
    }

    /// Runs the session on `input` and returns the outputs named `outputs`, flattened, in that order.
    pub(crate) fn run(
        &self,
        input: Vec<f32>,
        shape: [usize; 4],
        outputs: &[String],
    ) -> Result<Vec<Vec<f32>>, FaceError> {
        let tensor = ort::value::Tensor::from_array((shape, input))
            .map_err(|e| FaceError::engine("network input", e))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| FaceError::EngineFailure("an earlier run panicked".into()))?;
        let results = session
            .run(ort::inputs![tensor])
            .map_err(|e| FaceError::engine("running the network", e))?;
        outputs
            .iter()
            .map(|name| {
                let value = results
                    .get(name.as_str())
                    .ok_or_else(|| FaceError::EngineFailure(format!("the network gave no output {name}")))?;
                value
                    .try_extract_tensor::<f32>()
                    .map(|(_, values)| values.to_vec())
                    .map_err(|e| FaceError::engine("network output", e))
            })
            .collect()
    }
}
