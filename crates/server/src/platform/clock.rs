//! The edge where the wall clock is read. Everything below takes the time as a parameter.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tessera_core::Timestamp;

/// The service's clock: the system time plus an offset that tests can move to cross expiry times without
/// sleeping. The offset is zero in production.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The current time.
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the server reads the wall clock"
    )]
    pub fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ms = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
        Timestamp::from_millis(ms.saturating_add(self.offset_ms.load(Ordering::Relaxed)))
    }

    /// Moves this clock (and every clone of it) forward by `secs`.
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::Relaxed);
    }
}
