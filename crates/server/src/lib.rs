//! Tessera's HTTP service, one room per product.
//!
//! `platform` holds what every area stands on (state, configuration, keys, limits) and `http` the shared HTTP layer
//! (the error type, bodies, authentication, the gate). Each product area — `sts`, `communication`, `chat`, `face`,
//! `admin`, `ops` — has its routes, extractors and views in its own folder, uses `platform` and `http`, and never
//! another area (the tidy test checks). `app` merges the areas' routes and adds the layers; `server` opens the
//! store, builds the state, and listens over HTTPS (or plain HTTP).

mod admin;
mod app;
mod chat;
mod communication;
mod face;
mod http;
mod ops;
mod platform;
mod server;
mod sts;

pub use http::auth::access_key_aad;
pub use platform::clock::Clock;
pub use platform::config::{self, Config, FaceBackendName, FaceFileConfig, FileConfig, TlsMode};
pub use platform::state::AppState;
pub use server::{Running, serve, start};
