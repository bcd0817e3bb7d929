//! What the Face handlers hold: the platform's state and this node's face engine.

use crate::face::engine::FaceService;
use crate::platform::state::AppState;
use axum::extract::FromRef;
use std::sync::Arc;

/// The Face area's router state. Handlers that need only the platform take `State<AppState>`.
#[derive(Clone)]
pub(crate) struct FaceState {
    /// The platform's state.
    pub(crate) app: AppState,
    /// The face engine and this node's identification indexes.
    pub(crate) engine: Arc<FaceService>,
}

impl FromRef<FaceState> for AppState {
    fn from_ref(state: &FaceState) -> Self {
        state.app.clone()
    }
}

impl FromRef<FaceState> for Arc<FaceService> {
    fn from_ref(state: &FaceState) -> Self {
        state.engine.clone()
    }
}
