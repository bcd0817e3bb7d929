//! The Face API v1.0 (docs/wire.md §5.1) for Face accounts: large person groups and their persons (`groups`), large
//! face lists (`lists`), and detection and recognition behind the Limited Access gate (`recognition`), over this
//! node's face engine (`engine`). What they share is in `common` (the caller, lookups, Azure's codes) and `image`
//! (the image body, detection models, the template of a face to enrol).

mod common;
mod engine;
mod groups;
mod image;
mod lists;
mod recognition;
mod state;

pub use engine::FaceService;
pub(crate) use state::FaceState;

/// The Face routes over `state`.
pub(crate) fn routes(state: FaceState) -> axum::Router {
    axum::Router::new()
        .merge(groups::routes())
        .merge(recognition::routes())
        .merge(lists::routes())
        .with_state(state)
}
