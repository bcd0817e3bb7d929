//! [`CommunicationTokenCredential`]: a user access token kept fresh.
//!
//! - [`CommunicationTokenCredential::token`] answers the held token while it has more than
//!   [`RefreshOptions::refresh_before`] left; otherwise it refreshes first. Concurrent callers share one refresh:
//!   the first runs it, the others wait for its result (the state sits behind one async mutex, held across the
//!   refresh).
//! - A failed refresh is retried no sooner than an exponential backoff ([`RefreshOptions::min_retry`] doubling up
//!   to [`RefreshOptions::max_retry`]); meanwhile callers get the held token while it is still valid, and
//!   [`crate::ClientError::TokenExpired`] once it is not.
//! - A refresher that answers a token already inside the refresh window is not asked again at once (no loop):
//!   the token is used, and the answer counts as a failure for the backoff. One that answers an expired token is
//!   a failure.
//! - With [`RefreshOptions::proactive`], a background task wakes when the token enters the refresh window, sends
//!   [`CredentialEvent::WillExpire`] (the seed's `token_will_expire`) and refreshes; it ends when the credential
//!   is dropped. Every refresh outcome is an event too ([`CommunicationTokenCredential::subscribe`]).
//!
//! Refreshers: [`refresher_fn`] wraps the trusted service's callback; [`DeviceRefresher`] uses the device's own
//! refresh session (`POST /access/:refreshAccessToken`), rotating its secret on every use.

use crate::{ClientError, Endpoint, json};
use async_trait::async_trait;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tessera_core::Timestamp;
use tessera_wire::identity as wire;
use tokio::sync::{Mutex, broadcast};

/// A user access token and its expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// When it stops being honoured.
    pub expires_on: Timestamp,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_on", &self.expires_on.to_rfc3339())
            .finish()
    }
}

impl AccessToken {
    /// A token with its `expiresOn` as answered (RFC 3339).
    ///
    /// # Errors
    ///
    /// [`ClientError::UnexpectedResponse`] when `expires_on` is not RFC 3339.
    pub fn parse(token: String, expires_on: &str) -> Result<Self, ClientError> {
        let expires_on = Timestamp::parse_rfc3339(expires_on).ok_or_else(|| {
            ClientError::UnexpectedResponse(format!("expiresOn {expires_on:?} is not RFC 3339"))
        })?;
        Ok(Self { token, expires_on })
    }
}

/// A token as issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The token and its expiry.
    pub token: AccessToken,
    /// The refresh secret of the device session, when one was asked for.
    pub refresh_token: Option<String>,
}

impl IssuedToken {
    /// The token of an answer, its expiry parsed.
    pub(crate) fn of(answer: wire::AccessToken) -> Result<Self, ClientError> {
        Ok(Self {
            token: AccessToken::parse(answer.token, &answer.expires_on)?,
            refresh_token: answer.refresh_token,
        })
    }
}

/// Fetches a fresh token for a credential.
#[async_trait]
pub trait TokenRefresher: Send + Sync + 'static {
    /// A new token; `current` is the one held (if any), which a device refresh presents.
    async fn refresh(&self, current: Option<&AccessToken>) -> Result<AccessToken, ClientError>;
}

/// The trusted service's callback as a refresher: `f` asks the backend for a new token.
pub fn refresher_fn<F, Fut>(f: F) -> impl TokenRefresher
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AccessToken, ClientError>> + Send + 'static,
{
    struct Callback<F>(F);
    #[async_trait]
    impl<F, Fut> TokenRefresher for Callback<F>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<AccessToken, ClientError>> + Send + 'static,
    {
        async fn refresh(&self, _: Option<&AccessToken>) -> Result<AccessToken, ClientError> {
            (self.0)().await
        }
    }
    Callback(f)
}

/// A device's refresh session: presents the current token and the session's refresh secret to
/// `POST /access/:refreshAccessToken`, and keeps the new secret the server answers (each secret works once; a
/// secret presented twice ends the session, as a thief's would).
pub struct DeviceRefresher {
    endpoint: Endpoint,
    secret: Mutex<String>,
}

impl std::fmt::Debug for DeviceRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRefresher")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl DeviceRefresher {
    /// A refresher for the session whose current refresh secret is `refresh_token`.
    pub fn new(endpoint: Endpoint, refresh_token: impl Into<String>) -> Self {
        Self {
            endpoint,
            secret: Mutex::new(refresh_token.into()),
        }
    }
}

#[async_trait]
impl TokenRefresher for DeviceRefresher {
    async fn refresh(&self, current: Option<&AccessToken>) -> Result<AccessToken, ClientError> {
        let current = current.ok_or_else(|| {
            ClientError::TokenExpired("a device refresh needs the session's current token".to_owned())
        })?;
        let mut secret = self.secret.lock().await;
        let request = self
            .endpoint
            .request(reqwest::Method::POST, "/access/:refreshAccessToken")
            .bearer_auth(&current.token)
            .json(&serde_json::json!({"refreshToken": *secret}));
        let issued = IssuedToken::of(json::<wire::AccessToken>(request).await?)?;
        let next = issued.refresh_token.ok_or_else(|| {
            ClientError::UnexpectedResponse("the refresh answered no refreshToken".to_owned())
        })?;
        *secret = next;
        Ok(issued.token)
    }
}

/// When and how a credential refreshes.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// A token with less than this left is refreshed before use (ACS's SDKs use 10 minutes).
    pub refresh_before: Duration,
    /// The first retry delay after a failed refresh; it doubles with each failure.
    pub min_retry: Duration,
    /// The longest retry delay.
    pub max_retry: Duration,
    /// Refresh in the background when the token enters the refresh window, with a
    /// [`CredentialEvent::WillExpire`] first.
    pub proactive: bool,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        Self {
            refresh_before: Duration::from_secs(10 * 60),
            min_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            proactive: false,
        }
    }
}

/// What happened to a credential's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialEvent {
    /// The token enters the refresh window and will expire at this time (the seed's `token_will_expire`).
    WillExpire(Timestamp),
    /// A new token, valid until this time.
    Refreshed(Timestamp),
    /// A refresh failed (the reason); no new attempt before the given time.
    RefreshFailed(String, Timestamp),
}

/// The wall clock, or a test's.
pub(crate) type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

struct State {
    token: Option<AccessToken>,
    /// Failures since the last success.
    failures: u32,
    /// No refresh before this time (backoff, or a refresher that answered a token already due).
    quiet_until: Option<Timestamp>,
}

struct Inner {
    refresher: Box<dyn TokenRefresher>,
    options: RefreshOptions,
    clock: Clock,
    state: Mutex<State>,
    events: broadcast::Sender<CredentialEvent>,
}

/// A user access token that refreshes itself; cheap to clone (clones share the token).
#[derive(Clone)]
pub struct CommunicationTokenCredential {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CommunicationTokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommunicationTokenCredential")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// The SDK's one read of the wall clock (a device's; tokens' expiries are wall-clock times).
#[expect(
    clippy::disallowed_methods,
    reason = "the client SDK runs on the device's clock"
)]
fn system_now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CommunicationTokenCredential {
    /// A credential holding `initial` (if any; without one the first use refreshes), refreshed by `refresher`.
    /// With [`RefreshOptions::proactive`] it must be created inside a Tokio runtime.
    pub fn new(
        initial: Option<AccessToken>,
        refresher: impl TokenRefresher,
        options: RefreshOptions,
    ) -> Self {
        Self::with_clock(initial, refresher, options, Arc::new(system_now))
    }

    pub(crate) fn with_clock(
        initial: Option<AccessToken>,
        refresher: impl TokenRefresher,
        options: RefreshOptions,
        clock: Clock,
    ) -> Self {
        let proactive = options.proactive;
        let credential = Self {
            inner: Arc::new(Inner {
                refresher: Box::new(refresher),
                options,
                clock,
                state: Mutex::new(State {
                    token: initial,
                    failures: 0,
                    quiet_until: None,
                }),
                events: broadcast::channel(64).0,
            }),
        };
        if proactive {
            tokio::spawn(refresh_ahead(Arc::downgrade(&credential.inner)));
        }
        credential
    }

    /// The credential's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CredentialEvent> {
        self.inner.events.subscribe()
    }

    /// A token to send now: the held one while it is not due, else a refreshed one (see the module docs).
    ///
    /// # Errors
    ///
    /// [`ClientError::TokenExpired`] when no valid token is held and refreshing failed or must wait; the
    /// refresher's error when it fails with no valid token held.
    pub async fn token(&self) -> Result<AccessToken, ClientError> {
        self.inner.token().await
    }

    /// Tells the credential the server refused `token` as expired (the device's clock runs behind the
    /// server's): if it is still the one held, it is dropped, so the next [`token`](Self::token) refreshes (within
    /// the backoff, as always).
    pub async fn discard(&self, token: &AccessToken) {
        let mut state = self.inner.state.lock().await;
        if state.token.as_ref() == Some(token) {
            state.token = None;
        }
    }
}

impl Inner {
    async fn token(&self) -> Result<AccessToken, ClientError> {
        let mut state = self.state.lock().await;
        let now = (self.clock)();
        let due_at = |t: &AccessToken| t.expires_on.millis() - millis(self.options.refresh_before);
        let valid = state.token.clone().filter(|t| t.expires_on > now);
        if let Some(token) = &valid
            && now.millis() < due_at(token)
        {
            return Ok(token.clone());
        }
        if let Some(quiet_until) = state.quiet_until
            && now < quiet_until
        {
            return valid.ok_or_else(|| {
                ClientError::TokenExpired(format!(
                    "the token expired and the next refresh is not before {}",
                    quiet_until.to_rfc3339()
                ))
            });
        }
        let outcome = match self.refresher.refresh(valid.as_ref()).await {
            Ok(fresh) if fresh.expires_on <= (self.clock)() => {
                Err(ClientError::RefreshedTokenExpired(fresh.expires_on.to_rfc3339()))
            }
            other => other,
        };
        let now = (self.clock)();
        let backoff = |failures: u32| {
            let delay = self
                .options
                .min_retry
                .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
                .min(self.options.max_retry);
            Timestamp::from_millis(now.millis() + millis(delay))
        };
        match outcome {
            Ok(fresh) => {
                // A token already due is used, but counts as a failure for the backoff: a refresher that keeps
                // answering short-lived tokens is asked less and less often, never in a loop.
                if now.millis() >= due_at(&fresh) {
                    state.failures = state.failures.saturating_add(1);
                    state.quiet_until = Some(backoff(state.failures));
                } else {
                    state.failures = 0;
                    state.quiet_until = None;
                }
                state.token = Some(fresh.clone());
                let _ = self.events.send(CredentialEvent::Refreshed(fresh.expires_on));
                Ok(fresh)
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let retry_at = backoff(state.failures);
                state.quiet_until = Some(retry_at);
                let _ = self
                    .events
                    .send(CredentialEvent::RefreshFailed(e.to_string(), retry_at));
                match state.token.clone().filter(|t| t.expires_on > now) {
                    Some(still_valid) => Ok(still_valid),
                    None => Err(e),
                }
            }
        }
    }

    /// When the background task should next look: when the held token becomes due, or when a quiet period ends.
    async fn next_wake(&self) -> Timestamp {
        let state = self.state.lock().await;
        let due = state.token.as_ref().map_or(Timestamp::from_millis(0), |t| {
            Timestamp::from_millis(t.expires_on.millis() - millis(self.options.refresh_before))
        });
        match state.quiet_until {
            Some(quiet) if quiet > due => quiet,
            _ => due,
        }
    }
}

/// The proactive refresher: sleeps until the token is due, announces it, refreshes; ends with the credential.
async fn refresh_ahead(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let wake = strong.next_wake().await;
        let wait = u64::try_from(wake.millis() - (strong.clock)().millis()).unwrap_or(0);
        drop(strong);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let Some(strong) = inner.upgrade() else { return };
        let expires_on = strong.state.lock().await.token.as_ref().map(|t| t.expires_on);
        if let Some(expires_on) = expires_on {
            let _ = strong.events.send(CredentialEvent::WillExpire(expires_on));
        }
        // The outcome is in the events; a failure sets the quiet period the next wake honours.
        let _ = strong.token().await;
        // Never spin: wait at least a millisecond between rounds even if the clock did not move.
        drop(strong);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A clock that follows Tokio's (paused) time from a fixed wall-clock start.
    fn test_clock() -> Clock {
        let start = tokio::time::Instant::now();
        Arc::new(move || Timestamp::from_millis(1_800_000_000_000 + millis(start.elapsed())))
    }

    /// A refresher answering tokens that live `lifetime` from its clock (or failing when `None`), after `delay`,
    /// and counting its calls.
    struct Scripted {
        calls: Arc<AtomicU32>,
        lifetime: Option<Duration>,
        delay: Duration,
        clock: Clock,
    }

    #[async_trait]
    impl TokenRefresher for Scripted {
        async fn refresh(&self, _: Option<&AccessToken>) -> Result<AccessToken, ClientError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            let lifetime = self
                .lifetime
                .ok_or_else(|| ClientError::Transport("down".into()))?;
            Ok(AccessToken {
                token: format!("t{n}"),
                expires_on: Timestamp::from_millis((self.clock)().millis() + millis(lifetime)),
            })
        }
    }

    fn credential(
        initial_lifetime: Option<Duration>,
        lifetime: Option<Duration>,
        delay: Duration,
        proactive: bool,
    ) -> (CommunicationTokenCredential, Arc<AtomicU32>) {
        let clock = test_clock();
        let calls = Arc::new(AtomicU32::new(0));
        let initial = initial_lifetime.map(|l| AccessToken {
            token: "t0".into(),
            expires_on: Timestamp::from_millis(clock().millis() + millis(l)),
        });
        let refresher = Scripted {
            calls: calls.clone(),
            lifetime,
            delay,
            clock: clock.clone(),
        };
        let options = RefreshOptions {
            proactive,
            ..RefreshOptions::default()
        };
        (
            CommunicationTokenCredential::with_clock(initial, refresher, options, clock),
            calls,
        )
    }

    const HOUR: Duration = Duration::from_secs(3600);
    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_fresh_token_is_used_and_a_due_one_refreshed_once_for_all_callers() {
        let (c, calls) = credential(Some(HOUR), Some(HOUR), Duration::from_millis(200), false);
        assert_eq!(c.token().await.unwrap().token, "t0");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        tokio::time::advance(HOUR - 5 * MINUTE).await;
        let callers: Vec<_> = (0..10)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.token().await.unwrap().token })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), "t1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one refresh for ten callers");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_and_a_valid_token_is_still_served() {
        let (c, calls) = credential(Some(5 * MINUTE), None, Duration::ZERO, false);
        let mut events = c.subscribe();
        let now = || (c.inner.clock)().millis();
        // Each failure: the held token (still valid) is served, and the next attempt waits 1 s, 2 s, 4 s.
        for (attempt, delay_ms) in [(1, 1000), (2, 2000), (3, 4000)] {
            assert_eq!(c.token().await.unwrap().token, "t0", "still valid");
            assert_eq!(calls.load(Ordering::SeqCst), attempt);
            let CredentialEvent::RefreshFailed(_, retry_at) = events.recv().await.unwrap() else {
                panic!("a failure event")
            };
            assert_eq!(retry_at.millis() - now(), delay_ms);
            tokio::time::advance(Duration::from_millis(u64::try_from(delay_ms).unwrap() - 1)).await;
            c.token().await.unwrap();
            assert_eq!(
                calls.load(Ordering::SeqCst),
                attempt,
                "nothing asked within the backoff"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        // Once the token has expired, the refresher's error comes through.
        tokio::time::advance(5 * MINUTE).await;
        let err = c.token().await.unwrap_err();
        assert!(matches!(err, ClientError::Transport(_)), "{err}");
        let err = c.token().await.unwrap_err();
        assert!(
            matches!(err, ClientError::TokenExpired(_)),
            "within the backoff: {err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresher_of_short_tokens_is_not_looped_on() {
        // Every answer lives one minute, inside the ten-minute window: each use would refresh again.
        let (c, calls) = credential(None, Some(MINUTE), Duration::ZERO, false);
        for _ in 0..6000 {
            c.token().await.unwrap();
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        // Sixty seconds of constant use: attempts at 0, 1, 3, 7, 15, 31 s (backoff doubling from 1 s).
        let n = calls.load(Ordering::SeqCst);
        assert!((5..=7).contains(&n), "{n} refreshes in a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_answer_is_a_failure() {
        let (c, _) = credential(None, Some(Duration::ZERO), Duration::ZERO, false);
        let err = c.token().await.unwrap_err();
        assert!(matches!(err, ClientError::RefreshedTokenExpired(_)), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn proactive_refresh_announces_the_expiry_then_refreshes() {
        let (c, calls) = credential(Some(HOUR), Some(HOUR), Duration::ZERO, true);
        let mut events = c.subscribe();
        let expires_on = Timestamp::from_millis((c.inner.clock)().millis() + millis(HOUR));
        let first = tokio::time::timeout(HOUR, events.recv()).await.unwrap().unwrap();
        assert_eq!(first, CredentialEvent::WillExpire(expires_on));
        assert!(
            (c.inner.clock)().millis() <= expires_on.millis() - millis(10 * MINUTE),
            "ahead of the window"
        );
        let second = events.recv().await.unwrap();
        assert!(matches!(second, CredentialEvent::Refreshed(_)), "{second:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.token().await.unwrap().token, "t1", "no second refresh");
        drop(c);
    }
}
