//! Running a network on one of two backends: tract (pure Rust, always built, the default) or ONNX Runtime (the
//! `onnxruntime` feature: the `ort` crate with `load-dynamic`, loading the pinned library of the `onnxruntime` PyPI
//! wheel at run time). Both get the same folded model ([`crate::onnx::read_folded`]) and one input tensor, and
//! answer with every output flattened, in the graph's output order; the pre- and post-processing around them is
//! the engine's, shared.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::FaceError;
use crate::onnx::{self, FoldedModel};

/// Which inference engine runs the networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backend {
    /// tract: pure Rust, nothing to install.
    #[default]
    Tract,
    /// ONNX Runtime, loaded from this library file (checked against its pinned hash before it is loaded; see
    /// [`crate::models::fetch_onnxruntime`]). Needs the crate's `onnxruntime` feature; one library per process.
    OnnxRuntime {
        /// `libonnxruntime.so.1.22.1` from the `onnxruntime==1.22.1` wheel.
        library: PathBuf,
    },
}

impl Backend {
    /// Short name for logs and benchmarks.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tract => "tract",
            Self::OnnxRuntime { .. } => "onnxruntime",
        }
    }
}

/// One loaded network. Cheap to clone; `run` takes `&self` and may be called from several threads.
#[derive(Clone)]
pub(crate) struct Network {
    outputs: Vec<String>,
    runner: Runner,
}

#[derive(Clone)]
enum Runner {
    Tract(Arc<TypedRunnableModel>),
    #[cfg(feature = "onnxruntime")]
    OnnxRuntime(Arc<crate::onnxruntime::Session>),
}

impl Network {
    /// Reads the model at `path` and loads it on `backend`, with its one input fixed to `input_shape` (f32).
    pub(crate) fn load(path: &Path, input_shape: [usize; 4], backend: &Backend) -> Result<Self, FaceError> {
        let model = onnx::read_folded(path)?;
        let runner = match backend {
            Backend::Tract => Runner::Tract(onnx::tract_plan(&model, &input_shape)?),
            Backend::OnnxRuntime { library } => on_onnxruntime(&model, input_shape, library)?,
        };
        Ok(Self {
            outputs: model.outputs,
            runner,
        })
    }

    /// The position of the output called `name` in what [`Network::run`] returns.
    pub(crate) fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o == name)
    }

    /// Runs the network on `input` (row-major, of the shape given at load) and returns every output flattened.
    pub(crate) fn run(&self, input: Vec<f32>, shape: [usize; 4]) -> Result<Vec<Vec<f32>>, FaceError> {
        match &self.runner {
            Runner::Tract(plan) => {
                let tensor =
                    Tensor::from_shape(&shape, &input).map_err(|e| FaceError::engine("network input", e))?;
                plan.run(tvec!(tensor.into()))
                    .map_err(|e| FaceError::engine("running the network", e))?
                    .iter()
                    .map(|t| {
                        t.try_as_plain_ram()
                            .and_then(|t| t.as_slice::<f32>())
                            .map(<[f32]>::to_vec)
                            .map_err(|e| FaceError::engine("network output", e))
                    })
                    .collect()
            }
            #[cfg(feature = "onnxruntime")]
            Runner::OnnxRuntime(session) => session.run(input, shape, &self.outputs),
        }
    }
}

#[cfg(feature = "onnxruntime")]
fn on_onnxruntime(model: &FoldedModel, input_shape: [usize; 4], library: &Path) -> Result<Runner, FaceError> {
    crate::onnxruntime::Session::load(model, input_shape, library).map(|s| Runner::OnnxRuntime(Arc::new(s)))
}

#[cfg(not(feature = "onnxruntime"))]
fn on_onnxruntime(_: &FoldedModel, _: [usize; 4], _: &Path) -> Result<Runner, FaceError> {
    Err(FaceError::EngineFailure(
        "this build has no ONNX Runtime backend: build with `--features onnxruntime`, or use the tract backend".into(),
    ))
}
