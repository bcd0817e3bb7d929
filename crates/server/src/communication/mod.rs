//! Communication identities and their user access tokens on the ACS Identity wire and Tessera's `/v1` dialect
//! (`identities`, authenticated as the account's trusted service by `trusted`), what a device does with its token
//! (`access`: who am I, refresh), and the minting of user tokens (`grant`).

mod access;
pub(crate) mod grant;
mod identities;
mod trusted;

use crate::platform::state::AppState;
use axum::Router;
use axum::routing::{get, post};
use identities::Dialect;

/// The identity and device routes over `state`. ACS action segments start with `:`, so axum's 0.7-syntax check
/// is off here, and the router is merged after those that keep it.
pub(crate) fn routes(state: AppState) -> Router {
    Router::new()
        .without_v07_checks()
        .merge(identities::routes(Dialect::Acs))
        .merge(identities::routes(Dialect::Native))
        .route("/access/me", get(access::me))
        .route("/access/:refreshAccessToken", post(access::refresh))
        .with_state(state)
}
