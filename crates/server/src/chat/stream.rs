//! `GET /chat/events` (Tessera's own, Server-Sent Events): a device's real-time chat events, authorised by its
//! token, resumable with `Last-Event-ID`.
//!
//! The stream carries the events of every thread the token's identity is in: `chatMessageReceived`,
//! `chatMessageEdited`, `chatMessageDeleted`, `readReceiptReceived`, `typingIndicatorReceived`,
//! `chatThreadDeleted`, each with JSON `data` and the event's place in the chat event log as its `id`. A client
//! that reconnects with `Last-Event-ID` first gets what it missed since (the log keeps an hour), then the live
//! events; delivery is at least once, in log order per node. A subscriber too slow to keep up, or too far behind
//! to replay, gets `lagged` with how many events it may have missed.
//!
//! One identity holds at most `max_event_streams_per_identity` streams on a node (one more is 429
//! `TooManyEventStreams`) and resumes at most `max_event_replays_per_minute` times a minute (429
//! `TooManyEventReplays` with `Retry-After`): a replay reads up to 10,000 events of the log.
//!
//! The token is checked again every [`RECHECK`]: once it expires the stream sends `tokenExpired` and ends (the
//! client reconnects with a fresh token); once it is revoked, its identity deleted, its session ended or its
//! account disabled, the stream sends `tokenRevoked` (`data` holds the code) and ends.

use crate::chat::events::{ChatHub, Delivery, StreamPlace, StreamRefusal, replay};
use crate::http::error::ApiError;
use crate::http::user_token::UserToken;
use crate::platform::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::json;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::chat::{self, ChatAction};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::time::Instant;

/// How often a subscriber's token is checked again (revocation, deletion, session end, expiry).
const RECHECK: Duration = Duration::from_secs(2);

/// A subscriber's stream state.
struct Subscriber {
    /// Its place among its identity's streams, for as long as it lives.
    _place: StreamPlace,
    state: AppState,
    token: UserToken,
    live: Receiver<Arc<Delivery>>,
    /// What the stream sends before the live events: a resume's replay and, if any, its `lagged`.
    backlog: VecDeque<Event>,
    /// The replayed events' `seq`s, which the live events must not repeat.
    replayed: HashSet<i64>,
    next_check: Instant,
    ended: bool,
}

fn event_of(d: &Delivery) -> Event {
    Event::default()
        .id(d.seq.to_string())
        .event(d.name)
        .data(d.data.clone())
}

fn lagged(missed: u64) -> Event {
    Event::default().event("lagged").data(missed.to_string())
}

impl Subscriber {
    /// The next event for this subscriber; `None` once the stream ended.
    async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.backlog.pop_front() {
            return Some(event);
        }
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                delivery = self.live.recv() => match delivery {
                    Ok(d) if d.recipients.contains(&self.token.identity.id) && !self.replayed.contains(&d.seq) => {
                        return Some(event_of(&d));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => return Some(lagged(missed)),
                    Err(RecvError::Closed) => return None,
                },
                () = tokio::time::sleep_until(self.next_check) => {
                    self.next_check += RECHECK;
                    if let Err(e) = crate::http::user_token::live(&self.state, self.token.claims.clone()).await {
                        self.ended = true;
                        let name = if e.code() == "TokenExpired" { "tokenExpired" } else { "tokenRevoked" };
                        let data = json!({"code": e.code(), "message": e.message()}).to_string();
                        return Some(Event::default().event(name).data(data));
                    }
                }
            }
        }
    }
}

/// `GET /chat/events`: see the module's documentation.
pub(crate) async fn events(
    State(state): State<AppState>,
    State(hub): State<Arc<ChatHub>>,
    token: UserToken,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    chat::authorize(token.claims.scp, ChatAction::Subscribe, false)?;
    let resume_after = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(chat::parse_last_event_id)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "InvalidLastEventId",
                        "Last-Event-ID must be the id of an event this stream sent",
                    )
                })?,
        ),
    };
    let place = hub
        .open(&token.identity.id, resume_after.is_some())
        .map_err(|refusal| match refusal {
            StreamRefusal::TooManyStreams => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyEventStreams",
                format!(
                    "this identity has {} event streams open on this node; close one first",
                    state.config.max_event_streams_per_identity
                ),
            ),
            StreamRefusal::TooManyReplays(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyEventReplays",
                format!("this identity resumed its event stream too often; retry in {wait} s"),
            )
            .retry_after(wait),
        })?;
    // Subscribed before the replay is read, so nothing falls between the two.
    let live = hub.subscribe();
    let mut backlog = VecDeque::new();
    let mut replayed = HashSet::new();
    if let Some(after) = resume_after {
        let (missed, beyond) = replay(&state, after, &token.identity.id).await?;
        for d in &missed {
            replayed.insert(d.seq);
            backlog.push_back(event_of(d));
        }
        if beyond > 0 {
            backlog.push_back(lagged(beyond));
        }
    }
    let subscriber = Subscriber {
        _place: place,
        state,
        token,
        live,
        backlog,
        replayed,
        next_check: Instant::now() + RECHECK,
        ended: false,
    };
    let stream = futures::stream::unfold(subscriber, |mut sub| async move {
        sub.next().await.map(|event| (Ok(event), sub))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
