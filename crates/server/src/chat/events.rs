//! Real-time chat: this node's tail of the store's chat event log, and its fan-out to the node's subscribers.
//!
//! Every change of a thread appends its event in the change's own transaction (`Store::post`, …), so the log is
//! the one source every node reads: [`tail`] polls it by `seq` every [`POLL`], and at once when this node made
//! the change ([`ChatHub::changed`]); it turns each event into what a subscriber receives (the message as the
//! REST API shows it, a receipt, a typing notice, a deletion) with as recipients the participants it reaches by
//! core's one visibility rule (present when it happened, the message inside their window; nothing of a deleted
//! thread but its deletion), and broadcasts it in process. A subscriber ([`crate::chat::stream::events`]) keeps the deliveries addressed
//! to its identity; one that resumes is given what it missed by [`replay`].
//!
//! PostgreSQL may make a `seq` visible after a higher one (transactions commit out of order), so the tail keeps a
//! floor below which every `seq` was seen, re-reads above it, skips what it already delivered, and gives up on a
//! gap after [`GAP_PATIENCE`] (a rolled-back transaction leaves one for good).

use crate::chat::views::{identifier, message_view};
use crate::platform::state::AppState;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_core::Timestamp;
use tessera_core::chat::{self, ChatEvent, ChatEventKind, ThreadId};
use tessera_core::identity::IdentityId;
use tessera_store::Audience;
use tessera_wire::chat::{MessageEvent, ReadReceiptEvent, ThreadDeletedEvent, TypingEvent};
use tokio::sync::{Notify, broadcast};

/// How often the log is read.
const POLL: Duration = Duration::from_millis(100);
/// How long a missing `seq` is waited for.
const GAP_PATIENCE: Duration = Duration::from_secs(5);
/// Events read at most per poll.
const BATCH: u32 = 1000;
/// Log events a resuming subscriber is replayed at most.
const REPLAY_MAX: usize = 10 * BATCH as usize;
/// Deliveries a slow subscriber may fall behind before it is told it lagged.
const BACKLOG: usize = 4096;
/// How long events are kept in the log.
pub const KEEP_EVENTS: Duration = Duration::from_secs(3600);

/// One event as subscribers receive it.
#[derive(Debug)]
pub struct Delivery {
    /// The event's place in the log (the SSE `id`, from which a subscriber resumes).
    pub seq: i64,
    /// The identities it is for.
    pub recipients: HashSet<IdentityId>,
    /// The SSE event name (`chatMessageReceived`, …).
    pub name: &'static str,
    /// The JSON payload.
    pub data: String,
}

/// This node's fan-out.
#[derive(Debug, Clone)]
pub struct ChatHub {
    sender: broadcast::Sender<Arc<Delivery>>,
    /// Wakes the tail before its next poll.
    wake: Arc<Notify>,
    /// Each identity's open streams and replays on this node.
    streams: Arc<Mutex<HashMap<IdentityId, Usage>>>,
    limits: StreamLimits,
}

/// What one identity may hold of this node's streams (`max_event_streams_per_identity`,
/// `max_event_replays_per_minute`). Per node: behind a balancer spreading one identity over N nodes, N times as
/// much, each node protecting itself.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Streams open at once.
    pub streams_per_identity: usize,
    /// Resumes with `Last-Event-ID` (each reads the log) per minute.
    pub replays_per_minute: u32,
}

/// One identity's use of the streams.
#[derive(Debug)]
struct Usage {
    open: usize,
    replays_since: Instant,
    replays: u32,
}

/// Why a stream is not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The identity holds its streams' worth already.
    TooManyStreams,
    /// The identity has replayed its minute's worth; retry after this many seconds.
    TooManyReplays(u64),
}

/// A stream's place among its identity's, given back when the stream ends.
#[derive(Debug)]
pub struct StreamPlace {
    streams: Arc<Mutex<HashMap<IdentityId, Usage>>>,
    identity: IdentityId,
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(usage) = streams.get_mut(&self.identity) {
            usage.open -= 1;
            if usage.open == 0 && usage.replays_since.elapsed() >= REPLAY_WINDOW {
                streams.remove(&self.identity);
            }
        }
    }
}

/// The window of `replays_per_minute`.
const REPLAY_WINDOW: Duration = Duration::from_secs(60);

impl ChatHub {
    /// A hub whose streams are held to `limits`.
    pub fn new(limits: StreamLimits) -> Self {
        Self {
            sender: broadcast::channel(BACKLOG).0,
            wake: Arc::default(),
            streams: Arc::default(),
            limits,
        }
    }

    /// Tells the tail this node just changed a thread, so that it reads the log now rather than at its next poll
    /// (changes made on other nodes wait for the poll).
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// The deliveries from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Delivery>> {
        self.sender.subscribe()
    }

    /// A place for one more stream of `identity`, which `replays` the log or not.
    pub fn open(&self, identity: &IdentityId, replays: bool) -> Result<StreamPlace, StreamRefusal> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let usage = streams.entry(identity.clone()).or_insert(Usage {
            open: 0,
            replays_since: now,
            replays: 0,
        });
        if now.duration_since(usage.replays_since) >= REPLAY_WINDOW {
            usage.replays_since = now;
            usage.replays = 0;
        }
        if replays && usage.replays >= self.limits.replays_per_minute {
            let left = REPLAY_WINDOW.saturating_sub(now.duration_since(usage.replays_since));
            return Err(StreamRefusal::TooManyReplays(left.as_secs() + 1));
        }
        if usage.open >= self.limits.streams_per_identity {
            return Err(StreamRefusal::TooManyStreams);
        }
        usage.replays += u32::from(replays);
        usage.open += 1;
        Ok(StreamPlace {
            streams: self.streams.clone(),
            identity: identity.clone(),
        })
    }
}

/// Which `seq`s the tail has seen.
#[derive(Debug, Default)]
struct Seen {
    /// Every `seq` at or below it was delivered or given up on.
    floor: i64,
    /// Delivered `seq`s above the floor.
    above: BTreeSet<i64>,
    /// Since when the `seq` right above the floor has been missing.
    gap_since: Option<Instant>,
}

impl Seen {
    /// Whether `seq` is new (and marks it seen).
    fn first_time(&mut self, seq: i64) -> bool {
        seq > self.floor && self.above.insert(seq)
    }

    /// Moves the floor over what was seen, and over a gap waited for long enough.
    fn advance(&mut self, now: Instant) {
        loop {
            if self.above.remove(&(self.floor + 1)) {
                self.floor += 1;
                self.gap_since = None;
            } else if self.above.is_empty() {
                self.gap_since = None;
                return;
            } else if self
                .gap_since
                .is_some_and(|since| now.duration_since(since) >= GAP_PATIENCE)
            {
                self.floor += 1;
                self.gap_since = None;
            } else {
                self.gap_since.get_or_insert(now);
                return;
            }
        }
    }
}

/// Tails the log from its current end, delivering every new event, until the node stops; purges old events.
pub(crate) async fn tail(state: AppState, hub: Arc<ChatHub>) {
    let mut seen = Seen::default();
    loop {
        match state.store.last_chat_event().await {
            Ok(last) => {
                seen.floor = last;
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the chat event log failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let mut purge = tokio::time::interval(KEEP_EVENTS / 4);
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = poll.tick() => deliver_logged(&state, &hub, &mut seen).await,
            () = hub.wake.notified() => deliver_logged(&state, &hub, &mut seen).await,
            _ = purge.tick() => {
                let before = Timestamp::from_millis(
                    state.clock.now().millis() - i64::try_from(KEEP_EVENTS.as_millis()).unwrap_or(i64::MAX),
                );
                if let Err(e) = state.store.purge_chat_events(before).await {
                    tracing::warn!(error = %e, "purging old chat events failed; retrying later");
                }
            }
        }
    }
}

async fn deliver_logged(state: &AppState, hub: &ChatHub, seen: &mut Seen) {
    if let Err(e) = deliver_new(state, hub, seen).await {
        tracing::warn!(error = %e, "delivering chat events failed; retrying");
    }
}

async fn deliver_new(state: &AppState, hub: &ChatHub, seen: &mut Seen) -> tessera_store::Result<()> {
    let events = state.store.chat_events_after(seen.floor, BATCH).await?;
    let mut audiences = Audiences::default();
    for event in events {
        if seen.first_time(event.seq)
            && hub.sender.receiver_count() > 0
            && let Some(delivery) = delivery(state, &event, &mut audiences).await?
        {
            let _ = hub.sender.send(Arc::new(delivery));
        }
    }
    seen.advance(Instant::now());
    Ok(())
}

/// What a subscriber resuming after `after` missed: the deliveries addressed to `identity` in the log since, oldest
/// first, at most [`REPLAY_MAX`] of the log's events of its threads read (the store filters them,
/// [`tessera_store::Store::chat_events_for`]); and how many more the log holds past those (a subscriber too far
/// behind is told it lagged). The log keeps [`KEEP_EVENTS`]; a resume from before that replays what is left.
pub async fn replay(
    state: &AppState,
    after: i64,
    identity: &IdentityId,
) -> tessera_store::Result<(Vec<Delivery>, u64)> {
    let mut missed = Vec::new();
    let mut audiences = Audiences::default();
    let mut from = after;
    let mut read = 0;
    while read < REPLAY_MAX {
        let events = state.store.chat_events_for(identity, from, BATCH).await?;
        let Some(last) = events.last() else { break };
        from = last.seq;
        read += events.len();
        let full = events.len() == BATCH as usize;
        for event in &events {
            if let Some(d) = delivery(state, event, &mut audiences).await?
                && d.recipients.contains(identity)
            {
                missed.push(d);
            }
        }
        if !full {
            return Ok((missed, 0));
        }
    }
    let beyond = state.store.last_chat_event().await? - from;
    Ok((missed, u64::try_from(beyond).unwrap_or(0)))
}

/// The audiences of the threads one batch of events concerns, each read once.
#[derive(Default)]
struct Audiences(HashMap<ThreadId, Option<Arc<Audience>>>);

impl Audiences {
    async fn of(
        &mut self,
        state: &AppState,
        thread: &ThreadId,
    ) -> tessera_store::Result<Option<Arc<Audience>>> {
        if let Some(known) = self.0.get(thread) {
            return Ok(known.clone());
        }
        let read = state.store.chat_audience(thread).await?.map(Arc::new);
        self.0.insert(thread.clone(), read.clone());
        Ok(read)
    }
}

/// An event's `data`, JSON. The event types hold strings and maps of strings only, so writing one cannot fail.
fn data_of<T: Serialize>(data: &T) -> String {
    serde_json::to_string(data).unwrap_or_default()
}

/// What subscribers receive of `event`, or nothing when what it names is gone or its thread was deleted (then
/// only the deletion itself is served). Its recipients are the thread's participants it reaches by the one
/// visibility rule, [`chat::event_reaches`]; a removed participant hears of its own removal, and a typist is not
/// told of its own typing.
async fn delivery(
    state: &AppState,
    event: &ChatEvent,
    audiences: &mut Audiences,
) -> tessera_store::Result<Option<Delivery>> {
    let Some(audience) = audiences.of(state, &event.thread).await? else {
        return Ok(None);
    };
    if audience.deleted_at.is_some() && event.kind != ChatEventKind::ChatThreadDeleted {
        return Ok(None);
    }
    let thread = event.thread.as_str();
    let (message_at, data) = match event.kind {
        ChatEventKind::MessageReceived | ChatEventKind::MessageEdited | ChatEventKind::MessageDeleted => {
            let Some(id) = event.message else { return Ok(None) };
            let Some(message) = state.store.message(&event.thread, id).await? else {
                return Ok(None);
            };
            let data = data_of(&MessageEvent {
                thread_id: thread.to_owned(),
                message: message_view(&message),
            });
            (Some(message.created_at), data)
        }
        ChatEventKind::ReadReceiptReceived => {
            let (Some(reader), Some(id)) = (&event.identity, event.message) else {
                return Ok(None);
            };
            let Some(message) = state.store.message(&event.thread, id).await? else {
                return Ok(None);
            };
            let data = data_of(&ReadReceiptEvent {
                thread_id: thread.to_owned(),
                sender_communication_identifier: identifier(reader),
                chat_message_id: id.to_string(),
                read_on: event.at.to_rfc3339(),
            });
            (Some(message.created_at), data)
        }
        ChatEventKind::TypingIndicatorReceived => {
            let Some(typist) = &event.identity else {
                return Ok(None);
            };
            let data = data_of(&TypingEvent {
                thread_id: thread.to_owned(),
                sender_communication_identifier: identifier(typist),
                sender_display_name: event.display_name.clone(),
                received_on: event.at.to_rfc3339(),
            });
            (None, data)
        }
        ChatEventKind::ChatThreadDeleted => (
            None,
            data_of(&ThreadDeletedEvent {
                thread_id: thread.to_owned(),
                deleted_on: event.at.to_rfc3339(),
            }),
        ),
    };
    let mut recipients: HashSet<IdentityId> = audience
        .members
        .iter()
        .filter(|member| chat::event_reaches(member, event.at, message_at))
        .map(|member| member.identity.clone())
        .collect();
    match (event.kind, &event.identity) {
        (ChatEventKind::MessageReceived, Some(removed)) => {
            recipients.insert(removed.clone());
        }
        (ChatEventKind::TypingIndicatorReceived, Some(typist)) => {
            recipients.remove(typist);
        }
        _ => {}
    }
    Ok(Some(Delivery {
        seq: event.seq,
        recipients,
        name: event.kind.as_str(),
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_waits_for_a_gap_then_moves_on() {
        let t0 = Instant::now();
        let mut seen = Seen {
            floor: 10,
            ..Seen::default()
        };
        assert!(seen.first_time(11) && seen.first_time(13));
        assert!(
            !seen.first_time(11) && !seen.first_time(9),
            "seen, or below the floor"
        );
        seen.advance(t0);
        assert_eq!(seen.floor, 11, "12 is missing");
        // 12 commits late: delivered once, and the floor passes 13 too.
        assert!(seen.first_time(12));
        seen.advance(t0 + Duration::from_secs(1));
        assert_eq!(seen.floor, 13);
        // 14 never comes (a rollback): after the patience, the floor moves over it.
        assert!(seen.first_time(15));
        seen.advance(t0 + Duration::from_secs(2));
        assert_eq!(seen.floor, 13);
        seen.advance(t0 + Duration::from_secs(2) + GAP_PATIENCE);
        assert_eq!(seen.floor, 15);
        assert!(seen.above.is_empty());
    }
}
