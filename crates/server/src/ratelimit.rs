//! Slowing down guessing: each client address may fail authentication `limit` times per window; after that its
//! requests get 429 with `Retry-After` until the window ends. Successful requests are never counted.
//!
//! The counters are per node on purpose: they protect this node's CPU and the store from a burst of guesses, and
//! a guesser spread over N nodes still meets N×limit failures per window, far below what a 256-bit key needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failure counters by address.
#[derive(Debug)]
pub struct AuthFailures {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Most addresses tracked before expired windows are swept.
const SWEEP_AT: usize = 65_536;

impl AuthFailures {
    /// `limit` failures per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` if `ip` is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get(&ip) {
            Some((start, count)) if *count >= self.limit && start.elapsed() < self.window => {
                Err((self.window - start.elapsed()).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure for `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            let window = self.window;
            windows.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = windows.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
        metrics::counter!("tessera_auth_failures_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_within_the_window_only() {
        let f = AuthFailures::new(3, Duration::from_millis(200));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(f.check(ip).is_ok());
            f.record_failure(ip);
        }
        assert_eq!(f.check(ip), Err(1));
        assert!(f.check(other).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(f.check(ip).is_ok());
    }
}
