//! Tessera's request and response bodies, as serde types: the server serialises what it answers and parses what
//! it is sent with them, the client SDK and the CLI the other way round, and the tests read answers with them, so
//! a shape is written once. Domain values travel as `tessera_core`'s own types (an `Account`, a `FlagSet`, an
//! audit `Event`), which already say how they are written. No I/O.
//!
//! - [`error`]: the JSON error every refusal carries;
//! - [`admin`]: the operator's API;
//! - [`chat`]: chat on the ACS Chat wire, and its real-time events;
//! - [`face`]: the Face API v1.0;
//! - [`identity`]: communication identities and their user access tokens;
//! - [`sts`]: the token service and the gate's check.

pub mod admin;
pub mod chat;
pub mod error;
pub mod face;
pub mod identity;
pub mod sts;
