//! Running the node: liveness, readiness and metrics (`health`), and the benchmark's baseline routes (`bench`,
//! mounted only with the hidden `--bench-routes` flag).

mod bench;
mod health;

use crate::platform::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The operations routes over `state`, with the benchmark baselines when configured.
pub(crate) fn routes(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state.clone());
    if state.config.bench_routes {
        match bench::BenchSigner::new(state.clock.now()) {
            Ok(signer) => {
                router = router.merge(
                    Router::new()
                        .route("/bench/noop", post(bench::noop))
                        .route("/bench/sign", post(bench::sign))
                        .with_state(signer),
                );
            }
            Err(e) => tracing::error!(error = %e, "bench routes disabled: cannot create the throwaway key"),
        }
    }
    router
}
