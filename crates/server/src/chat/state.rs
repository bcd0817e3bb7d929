//! What the chat handlers hold: the platform's state and this node's event hub.

use crate::chat::events::ChatHub;
use crate::platform::state::AppState;
use axum::extract::FromRef;
use std::sync::Arc;

/// The chat area's router state. Handlers that need only the platform take `State<AppState>`.
#[derive(Clone)]
pub(crate) struct ChatState {
    /// The platform's state.
    pub(crate) app: AppState,
    /// This node's fan-out of chat events.
    pub(crate) hub: Arc<ChatHub>,
}

impl FromRef<ChatState> for AppState {
    fn from_ref(state: &ChatState) -> Self {
        state.app.clone()
    }
}

impl FromRef<ChatState> for Arc<ChatHub> {
    fn from_ref(state: &ChatState) -> Self {
        state.hub.clone()
    }
}
