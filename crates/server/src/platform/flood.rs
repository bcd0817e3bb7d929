//! Bounds on what authenticated callers can make this node write durably.
//!
//! - **Refusals are aggregated.** A refusal is an audit event, fsync'd; the same refusal repeated (same actor,
//!   action, subject and details) within `refusal_aggregation_secs` is written once, and the repeats are counted
//!   and written as one more event when the window closes (`details.repeated`, with the window's `from` and
//!   `until`), by [`Denials::admit`] and the flush in `crate::server`. The chain stays complete: nothing is
//!   dropped, only folded.
//! - **Refusals are limited per actor**: past `max_refusals_per_minute`, a further refusal of the same actor is
//!   answered 429 `TooManyRefusals` with `Retry-After` (and still counted).
//! - **Typing is limited per identity** (`max_typing_per_minute`), each notification being a row of the event
//!   log: one more is 429 `TooManyTypingNotifications` with `Retry-After`.
//!
//! The counters are per node, as the other limits: each node protects its own share of the store's writes.

use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tessera_core::Timestamp;
use tessera_core::audit::NewEvent;

/// Most distinct refusals (or actors, or typists) tracked at once; past it, new ones are not folded but still
/// limited by their actor's count when that is tracked.
const TRACKED_MAX: usize = 65_536;
/// The window of the per-minute limits.
const MINUTE: Duration = Duration::from_secs(60);

/// Counts within one window.
#[derive(Debug, Clone, Copy)]
struct Window {
    since: Instant,
    count: u32,
}

/// A refusal folded into its first occurrence.
#[derive(Debug)]
struct Folded {
    since: Instant,
    /// The first occurrence, as written.
    first: NewEvent,
    /// Repeats since, not yet written.
    repeats: u64,
    last_at: Timestamp,
}

/// A per-key count of events in a sliding minute.
#[derive(Debug, Default)]
struct PerMinute {
    windows: Mutex<HashMap<String, Window>>,
    sweeps: crate::platform::ratelimit::SweepGate,
}

impl PerMinute {
    /// Counts one event of `key`; `Err(seconds to wait)` if it is past `limit` this minute.
    fn count(&self, key: &str, limit: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= TRACKED_MAX && !windows.contains_key(key) {
            if self.sweeps.due(now) {
                windows.retain(|_, w| now.duration_since(w.since) < MINUTE);
            }
            if windows.len() >= TRACKED_MAX {
                return Ok(());
            }
        }
        let window = windows
            .entry(key.to_owned())
            .or_insert(Window { since: now, count: 0 });
        if now.duration_since(window.since) >= MINUTE {
            *window = Window { since: now, count: 0 };
        }
        window.count = window.count.saturating_add(1);
        if window.count > limit {
            return Err((MINUTE.saturating_sub(now.duration_since(window.since))).as_secs() + 1);
        }
        Ok(())
    }
}

/// A per-minute limit reached: the refusal's code and message, and the seconds to wait (answered 429 with
/// `Retry-After`, by `crate::http::error`).
#[derive(Debug, Clone)]
pub struct OverLimit {
    code: &'static str,
    message: String,
    retry_after: u64,
}

impl OverLimit {
    /// The refusal's code.
    pub fn code(&self) -> &'static str {
        self.code
    }
    /// What the caller is told.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Seconds until the caller may try again.
    pub fn retry_after(&self) -> u64 {
        self.retry_after
    }
    /// The answer's status: 429.
    pub fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }
}

/// What to do with a refusal's audit event.
#[derive(Debug)]
pub enum Admission {
    /// Write it (the first of its kind in its window).
    Write,
    /// Folded into the first; nothing to write now.
    Folded,
}

/// This node's refusal folding and limits.
#[derive(Debug)]
pub struct Denials {
    window: Duration,
    per_actor: u32,
    folded: Mutex<HashMap<(String, String, String, String), Folded>>,
    actors: PerMinute,
}

impl Denials {
    /// Folding repeats within `window`; at most `per_actor` refusals of one actor a minute.
    pub fn new(window: Duration, per_actor: u32) -> Self {
        Self {
            window,
            per_actor,
            folded: Mutex::default(),
            actors: PerMinute::default(),
        }
    }

    /// Decides about the refusal `event`: written, or folded into an earlier identical one; and 429 when its
    /// actor is over its limit (the refusal is counted either way). Returns the events due to be written before
    /// it (a closed window's repeats).
    pub fn admit(&self, event: &NewEvent) -> (Result<Admission, OverLimit>, Vec<NewEvent>) {
        let limited = self.actors.count(&event.actor, self.per_actor).err();
        let key = (
            event.actor.clone(),
            event.action.clone(),
            event.subject.clone(),
            event.details.clone(),
        );
        let now = Instant::now();
        let mut folded = self
            .folded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut due = Vec::new();
        let room = folded.len() < TRACKED_MAX;
        let admission = match folded.get_mut(&key) {
            Some(f) if now.duration_since(f.since) < self.window => {
                f.repeats += 1;
                f.last_at = event.at;
                Admission::Folded
            }
            Some(_) => {
                due.extend(folded.remove(&key).and_then(summary));
                folded.insert(key, fold(event, now));
                Admission::Write
            }
            None if room => {
                folded.insert(key, fold(event, now));
                Admission::Write
            }
            None => Admission::Write,
        };
        let answer = match limited {
            Some(wait) => Err(OverLimit {
                code: "TooManyRefusals",
                message: format!("this caller was refused too often; retry in {wait} s"),
                retry_after: wait,
            }),
            None => Ok(admission),
        };
        (answer, due)
    }

    /// The repeats of windows closed by now (or of all windows, `all`, at shutdown), to be written.
    pub fn closed(&self, all: bool) -> Vec<NewEvent> {
        let now = Instant::now();
        let mut folded = self
            .folded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let closed: Vec<_> = folded
            .iter()
            .filter(|(_, f)| all || now.duration_since(f.since) >= self.window)
            .map(|(k, _)| k.clone())
            .collect();
        closed
            .into_iter()
            .filter_map(|k| folded.remove(&k).and_then(summary))
            .collect()
    }
}

fn fold(event: &NewEvent, now: Instant) -> Folded {
    Folded {
        since: now,
        first: event.clone(),
        repeats: 0,
        last_at: event.at,
    }
}

/// The event that records a window's repeats, if there were any.
fn summary(f: Folded) -> Option<NewEvent> {
    if f.repeats == 0 {
        return None;
    }
    let mut details: serde_json::Value =
        serde_json::from_str(&f.first.details).unwrap_or_else(|_| serde_json::json!({}));
    if !details.is_object() {
        details = serde_json::json!({ "details": details });
    }
    details["repeated"] = f.repeats.into();
    details["from"] = f.first.at.to_rfc3339().into();
    details["until"] = f.last_at.to_rfc3339().into();
    Some(NewEvent {
        at: f.last_at,
        details: details.to_string(),
        ..f.first
    })
}

/// This node's typing limit.
#[derive(Debug)]
pub struct Typing {
    per_identity: u32,
    counts: PerMinute,
}

impl Typing {
    /// At most `per_identity` notifications of one identity a minute.
    pub fn new(per_identity: u32) -> Self {
        Self {
            per_identity,
            counts: PerMinute::default(),
        }
    }

    /// Counts a typing notification of `identity`: 429 past its limit.
    pub fn count(&self, identity: &str) -> Result<(), OverLimit> {
        self.counts
            .count(identity, self.per_identity)
            .map_err(|wait| OverLimit {
                code: "TooManyTypingNotifications",
                message: format!("this identity sends typing notifications too often; retry in {wait} s"),
                retry_after: wait,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::audit::Outcome;

    fn refusal(actor: &str, code: &str, at: i64) -> NewEvent {
        NewEvent {
            at: Timestamp::from_secs(at),
            actor: actor.to_owned(),
            action: "limitedAccess.use".to_owned(),
            subject: "/subscriptions/x".to_owned(),
            outcome: Outcome::Denied,
            details: serde_json::json!({ "reason": code }).to_string(),
            isv: None,
        }
    }

    #[test]
    fn repeats_are_folded_and_counted_and_actors_limited() {
        let d = Denials::new(Duration::from_millis(200), 5);
        let (first, due) = d.admit(&refusal("a", "NotApproved", 1));
        assert!(matches!(first, Ok(Admission::Write)) && due.is_empty());
        for at in 2..5 {
            assert!(matches!(
                d.admit(&refusal("a", "NotApproved", at)).0,
                Ok(Admission::Folded)
            ));
        }
        assert!(
            matches!(
                d.admit(&refusal("a", "FlagNotInToken", 5)).0,
                Ok(Admission::Write)
            ),
            "another refusal"
        );
        let (over, _) = d.admit(&refusal("a", "NotApproved", 6));
        assert_eq!(
            over.unwrap_err().code(),
            "TooManyRefusals",
            "the sixth of actor a this minute"
        );
        assert!(matches!(
            d.admit(&refusal("b", "NotApproved", 6)).0,
            Ok(Admission::Write)
        ));
        assert!(d.closed(false).is_empty(), "windows still open");
        std::thread::sleep(Duration::from_millis(250));
        let written = d.closed(false);
        assert_eq!(written.len(), 1, "only a's NotApproved repeated: {written:?}");
        let details: serde_json::Value = serde_json::from_str(&written[0].details).unwrap();
        assert_eq!(details["repeated"], 4);
        assert_eq!(details["reason"], "NotApproved");
        assert_eq!(details["from"], Timestamp::from_secs(1).to_rfc3339());
        assert_eq!(details["until"], Timestamp::from_secs(6).to_rfc3339());
        assert!(d.closed(true).is_empty());
    }

    #[test]
    fn typing_is_limited_per_identity() {
        let t = Typing::new(3);
        for _ in 0..3 {
            t.count("x").unwrap();
        }
        let e = t.count("x").unwrap_err();
        assert_eq!(
            (e.code(), e.status()),
            ("TooManyTypingNotifications", StatusCode::TOO_MANY_REQUESTS)
        );
        t.count("y").unwrap();
    }
}
