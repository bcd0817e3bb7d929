//! Chat on the ACS Chat wire, authorised by user access tokens alone: threads, messages, participants, typing and
//! read receipts (`rest`, answers shaped by `views`), and the real-time events (`events` tails the chat event log
//! and fans it out on this node; `stream` serves a device's `GET /chat/events`).

mod events;
mod rest;
mod state;
mod stream;
mod views;

pub(crate) use events::{ChatHub, StreamLimits, tail};
pub(crate) use state::ChatState;

/// The chat routes over `state`.
pub(crate) fn routes(state: ChatState) -> axum::Router {
    rest::routes(&state).with_state(state)
}
