//! Tessera's HTTP service.
//!
//! [`app`] builds the router over an [`AppState`]; [`serve`] opens the store, loads keys, and listens over HTTPS
//! (or plain HTTP). Handlers live in `routes`, authentication in `auth`, the Limited Access gate in `gate`, and
//! every error becomes an HTTP response in exactly one place, `error`.

mod app;
pub mod auth;
mod body;
mod bootstrap;
pub mod chat_events;
pub mod clock;
pub mod config;
mod connections;
pub mod error;
pub mod face_engine;
mod flood;
mod forwarded;
pub mod gate;
mod keyring;
mod linger;
mod metrics_setup;
mod ratelimit;
mod routes;
mod server;
mod state;
pub mod tls;
pub mod trusted;
pub mod user_token;

pub use app::app;
pub use clock::Clock;
pub use config::{Config, FaceBackendName, FaceFileConfig, FileConfig, TlsMode};
pub use server::{Running, serve, start};
pub use state::AppState;
