//! The chat service on the ACS Chat wire (docs/wire.md §4, api-version 2024-03-07), authorised by user access tokens
//! alone.
//!
//! The caller is the token's identity ([`UserToken`]: a revoked or deleted identity's token is refused at once).
//! Every handler asks [`tessera_core::chat::authorize`] (the one chat table) with the token's scopes and whether
//! the caller participates in the thread; a thread of another account, a deleted one or a malformed id are the
//! same 404. Participants are identities of the token's account that exist; others come back in
//! `invalidParticipants` (target = their raw id), as ACS answers them.
//!
//! Tessera's own `POST /chat/direct` sends a message by the recipient's name, in the pair's direct thread (found,
//! or created when the token may create threads). Paging follows docs/wire.md §4.3: `maxPageSize` on the first
//! request, then a relative `nextLink` carrying `continuationToken` (digits, dots and hex only, so it survives the
//! SDK's re-quoting) and `maxPageSize`.

use crate::chat::events::ChatHub;
use crate::chat::state::ChatState;
use crate::chat::views::{identifier, message_view, participant_view, thread_properties, time};
use crate::http::api_version::api_version;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery};
use crate::http::user_token::UserToken;
use crate::platform::state::AppState;
use axum::extract::FromRef;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_core::Timestamp;
use tessera_core::audit::action;
use tessera_core::chat::{
    self, ChatAction, MAX_CONTENT_BYTES, MAX_DIRECT_THREADS, MAX_PARTICIPANTS, Message, MessageContent,
    MessageType, NewMessage, Participant, Thread, ThreadId,
};
use tessera_core::identity::{IdentityId, IdentityKind, IdentityName};
use tessera_store::{StoreError, ThreadChange};
use tessera_wire::chat::{
    AddedParticipants, CreatedThread, InvalidParticipant, MessagePage, SentDirectMessage, SentMessage,
};
use uuid::Uuid;

/// The Chat `api-version`s Tessera answers (the SDK sends the newest).
pub const CHAT_API_VERSIONS: [&str; 3] = ["2021-09-07", "2023-11-07", "2024-03-07"];
/// Default and largest page sizes.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 200;
/// Largest chat request body: a message at its limit, as JSON-escaped as it may get, and its metadata.
const MAX_CHAT_BODY_BYTES: usize = 8 * MAX_CONTENT_BYTES;

/// The chat routes; a successful change wakes this node's event tail (see [`wake_tail`]).
pub(crate) fn routes(state: &ChatState) -> Router<ChatState> {
    let t = "/chat/threads/{thread}";
    // ACS action segments start with `:` (`participants/:add`).
    Router::new()
        .without_v07_checks()
        .route("/chat/threads", post(create_thread).get(list_threads))
        .route("/chat/direct", post(direct_message))
        .route("/chat/events", get(crate::chat::stream::events))
        .route(t, get(get_thread).patch(update_topic).delete(delete_thread))
        .route(&format!("{t}/messages"), post(send_message).get(list_messages))
        .route(
            &format!("{t}/messages/{{message}}"),
            get(get_message).patch(update_message).delete(delete_message),
        )
        .route(&format!("{t}/participants"), get(list_participants))
        .route(&format!("{t}/participants/:add"), post(add_participants))
        .route(&format!("{t}/participants/:remove"), post(remove_participant))
        .route(&format!("{t}/typing"), post(typing))
        .route(
            &format!("{t}/readReceipts"),
            post(send_read_receipt).get(list_read_receipts),
        )
        .layer(body::Limit::max(MAX_CHAT_BODY_BYTES))
        .route_layer(middleware::from_fn_with_state(state.clone(), wake_tail))
}

/// After a successful change (any chat request but a read), wakes this node's tail of the chat event log, so that
/// the change's event goes out at once rather than at the tail's next poll.
async fn wake_tail(State(hub): State<Arc<ChatHub>>, request: Request, next: Next) -> Response {
    let reads = request.method() == Method::GET;
    let response = next.run(request).await;
    if !reads && response.status().is_success() {
        hub.changed();
    }
    response
}

/// A chat request: a live user token, with a supported `api-version`.
pub struct Chat {
    token: UserToken,
    api_version: &'static str,
}

impl Chat {
    /// Records a change the caller made to `thread` in the audit chain (what changed, never message content).
    async fn audit(
        &self,
        state: &AppState,
        act: &str,
        thread: &ThreadId,
        details: Value,
    ) -> Result<(), ApiError> {
        state
            .event(&self.token.actor(), act, thread.as_str())
            .details(details)
            .record()
            .await?;
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Chat
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = &AppState::from_ref(state);
        let api_version = api_version(&parts.uri, &CHAT_API_VERSIONS)?;
        let token = <UserToken as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        Ok(Self { token, api_version })
    }
}

impl Chat {
    fn me(&self) -> &IdentityId {
        &self.token.identity.id
    }

    /// Whether the token may do `action` outside any thread.
    fn may(&self, action: ChatAction) -> Result<(), ApiError> {
        chat::authorize(self.token.claims.scp, action, false).map_err(ApiError::from)
    }

    /// The caller's account's live thread `raw`, once the token may do `action` in it.
    async fn thread(&self, state: &AppState, raw: &str, action: ChatAction) -> Result<Thread, ApiError> {
        Ok(self.thread_and_me(state, raw, action).await?.0)
    }

    /// As [`Chat::thread`], with the caller's own participation (read once, for the authorization).
    async fn thread_and_me(
        &self,
        state: &AppState,
        raw: &str,
        action: ChatAction,
    ) -> Result<(Thread, Option<Participant>), ApiError> {
        let not_found =
            || ApiError::not_found("ThreadNotFound", format!("Chat thread {raw} does not exist."));
        let id = ThreadId::parse(raw).map_err(|_| not_found())?;
        let thread = state
            .store
            .thread(self.token.account.id, &id)
            .await?
            .ok_or_else(not_found)?;
        let participant = state.store.participant(&id, self.me()).await?;
        chat::authorize(self.token.claims.scp, action, participant.is_some())?;
        Ok((thread, participant))
    }

    /// A relative `nextLink` for `path` with `continuation`.
    fn next_link(&self, path: &str, continuation: &str, page: u32) -> String {
        format!(
            "{path}?continuationToken={continuation}&maxPageSize={page}&api-version={}",
            self.api_version
        )
    }
}

/// The raw id an identifier model names (`rawId`, else `communicationUser.id`; both must agree).
fn raw_id_of(model: &Value) -> Result<String, ApiError> {
    let raw = model["rawId"].as_str();
    let user = model["communicationUser"]["id"].as_str();
    match (raw, user) {
        (Some(r), Some(u)) if r != u => Err(ApiError::bad_request(
            "InvalidIdentifier",
            "rawId and communicationUser.id name different identities",
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id.to_owned()),
        (None, None) => Err(ApiError::bad_request(
            "InvalidIdentifier",
            "an identifier needs rawId or communicationUser.id",
        )),
    }
}

/// A participant as sent (`{"communicationIdentifier", "displayName"?, "shareHistoryTime"?}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantBody {
    communication_identifier: Value,
    display_name: Option<String>,
    share_history_time: Option<String>,
}

/// The participants of `bodies` that are live identities of the caller's account, and a `ChatError` for each
/// of the others.
async fn admit(
    state: &AppState,
    caller: &Chat,
    bodies: &[ParticipantBody],
) -> Result<(Vec<Participant>, Vec<InvalidParticipant>), ApiError> {
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    for body in bodies {
        let raw = raw_id_of(&body.communication_identifier)?;
        if let Some(name) = &body.display_name {
            chat::check_display_name(name)?;
        }
        let share_history_from = match &body.share_history_time {
            None => None,
            Some(t) => Some(Timestamp::parse_rfc3339(t).ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidShareHistoryTime",
                    "shareHistoryTime must be an RFC 3339 time",
                )
            })?),
        };
        let live = match IdentityId::parse(&raw) {
            Ok(id) if id.account() == caller.token.account.id => state
                .store
                .identity(&id)
                .await?
                .filter(|i| i.deleted_at.is_none())
                .map(|i| i.id),
            _ => None,
        };
        match live {
            Some(identity) => admitted.push(Participant {
                identity,
                display_name: body.display_name.clone(),
                share_history_from,
            }),
            None => refused.push(InvalidParticipant {
                code: "404".to_owned(),
                message: "The identity does not exist in this account.".to_owned(),
                target: raw,
            }),
        }
    }
    Ok((admitted, refused))
}

/// The identity ids of `participants`, for the audit.
fn ids(participants: &[Participant]) -> Vec<&str> {
    participants.iter().map(|p| p.identity.as_str()).collect()
}

/// Body of a thread creation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThreadBody {
    topic: String,
    #[serde(default)]
    participants: Vec<ParticipantBody>,
}

/// `POST /chat/threads` (`repeatability-request-id` makes it idempotent): 201
/// `{"chatThread", "invalidParticipants"?}`. The creator is a participant.
pub async fn create_thread(
    State(state): State<AppState>,
    caller: Chat,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateThreadBody>,
) -> Result<Response, ApiError> {
    caller.may(ChatAction::CreateThread)?;
    chat::check_topic(&body.topic)?;
    if body.participants.len() >= MAX_PARTICIPANTS {
        return Err(too_many_participants());
    }
    let repeatability = headers
        .get("repeatability-request-id")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::bad_request("InvalidHeader", "repeatability-request-id must be text"))?;
    let (mut admitted, refused) = admit(&state, &caller, &body.participants).await?;
    if !admitted.iter().any(|p| p.identity == *caller.me()) {
        admitted.push(Participant {
            identity: caller.me().clone(),
            display_name: None,
            share_history_from: None,
        });
    }
    let thread = Thread {
        id: ThreadId::new(Uuid::new_v4()),
        account: caller.token.account.id,
        topic: body.topic,
        created_by: caller.me().clone(),
        created_at: state.clock.now(),
        deleted_at: None,
        last_message_at: None,
    };
    let id = thread.id.clone();
    let thread = state
        .store
        .create_thread(&thread, &admitted, repeatability.as_deref())
        .await?;
    // A repeated creation answers the first thread and creates nothing.
    if thread.id == id {
        let details = json!({"participants": ids(&admitted), "direct": false});
        caller
            .audit(&state, action::CHAT_THREAD_CREATE, &thread.id, details)
            .await?;
    }
    let answer = CreatedThread {
        chat_thread: thread_properties(&thread),
        invalid_participants: refused,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Paging of a list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    max_page_size: Option<u32>,
    start_time: Option<String>,
    skip: Option<u32>,
    continuation_token: Option<String>,
}

impl PageQuery {
    fn size(&self) -> Result<u32, ApiError> {
        match self.max_page_size {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(
                "InvalidPageSize",
                format!("maxPageSize must be from 1 to {MAX_PAGE}"),
            )),
        }
    }

    fn since(&self) -> Result<Option<Timestamp>, ApiError> {
        self.start_time
            .as_deref()
            .map(|t| {
                Timestamp::parse_rfc3339(t).ok_or_else(|| {
                    ApiError::bad_request("InvalidStartTime", "startTime must be an RFC 3339 time")
                })
            })
            .transpose()
    }

    fn bad_continuation() -> ApiError {
        ApiError::bad_request(
            "InvalidContinuationToken",
            "the continuationToken is not one this service gave",
        )
    }
}

/// `GET /chat/threads`: the caller's threads, most recent activity first.
pub async fn list_threads(
    State(state): State<AppState>,
    caller: Chat,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    caller.may(ChatAction::ListThreads)?;
    let size = query.size()?;
    // The continuation is `<activity ms>.<thread hex>`, with the start time carried as a third part.
    let (after, since) = match &query.continuation_token {
        None => (None, query.since()?),
        Some(token) => {
            let cursor = chat::ThreadsCursor::parse(token).ok_or_else(PageQuery::bad_continuation)?;
            (Some((cursor.at, cursor.thread)), cursor.since)
        }
    };
    let threads = state
        .store
        .threads_of(caller.me(), after.as_ref().map(|(at, id)| (*at, id)), since, size)
        .await?;
    let value: Vec<Value> = threads
        .iter()
        .map(|t| {
            let mut v = json!({"id": t.id.as_str(), "topic": t.topic});
            if let Some(at) = t.last_message_at {
                v["lastMessageReceivedOn"] = time(at).into();
            }
            v
        })
        .collect();
    let mut answer = json!({"value": value});
    if let Some(last) = threads.last().filter(|_| threads.len() == size as usize) {
        let token = chat::ThreadsCursor {
            at: last.last_message_at.unwrap_or(last.created_at),
            thread: last.id.clone(),
            since,
        }
        .encode();
        answer["nextLink"] = caller.next_link("/chat/threads", &token, size).into();
    }
    Ok(Json(answer).into_response())
}

/// `GET /chat/threads/{id}`.
pub async fn get_thread(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::ReadThread).await?;
    Ok(Json(thread_properties(&thread)).into_response())
}

/// Body of a topic change.
#[derive(Debug, Deserialize)]
pub struct TopicBody {
    topic: String,
}

/// `PATCH /chat/threads/{id}` `{"topic"}`: 204, with a `topicUpdated` message.
pub async fn update_topic(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TopicBody>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::UpdateTopic).await?;
    chat::check_topic(&body.topic)?;
    let content = MessageContent {
        topic: Some(body.topic.clone()),
        initiator: Some(caller.me().clone()),
        ..MessageContent::default()
    };
    post_system(
        &state,
        &thread,
        ThreadChange::Topic(body.topic),
        MessageType::TopicUpdated,
        content,
    )
    .await?;
    caller
        .audit(&state, action::CHAT_TOPIC_UPDATE, &thread.id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /chat/threads/{id}`: 204.
pub async fn delete_thread(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::DeleteThread).await?;
    state
        .store
        .delete_thread(thread.account, &thread.id, state.clock.now())
        .await
        .map_err(gone_as_not_found)?;
    caller
        .audit(&state, action::CHAT_THREAD_DELETE, &thread.id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Posts a system message (no sender) with its change.
async fn post_system(
    state: &AppState,
    thread: &Thread,
    change: ThreadChange,
    kind: MessageType,
    content: MessageContent,
) -> Result<Message, ApiError> {
    let message = NewMessage {
        kind,
        sender: None,
        sender_display_name: None,
        content,
        metadata: BTreeMap::new(),
    };
    state
        .store
        .post(&thread.id, &change, &message, state.clock.now())
        .await
        .map_err(gone_as_not_found)
}

/// A thread or message deleted meanwhile is a 404 like any missing one; a full thread is `TooManyParticipants`.
fn gone_as_not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => ApiError::not_found("NotFound", format!("{what} does not exist")),
        StoreError::LimitReached(_) => too_many_participants(),
        other => other.into(),
    }
}

fn too_many_participants() -> ApiError {
    ApiError::bad_request(
        "TooManyParticipants",
        format!("a thread has at most {MAX_PARTICIPANTS} participants"),
    )
}

/// Body of a message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendBody {
    content: String,
    sender_display_name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl SendBody {
    /// The message the caller sends, checked.
    fn into_message(self, sender: &IdentityId) -> Result<NewMessage, ApiError> {
        let kind = MessageType::sendable(self.kind.as_deref())?;
        chat::check_message(&self.content, &self.metadata)?;
        if let Some(name) = &self.sender_display_name {
            chat::check_display_name(name)?;
        }
        Ok(NewMessage {
            kind,
            sender: Some(sender.clone()),
            sender_display_name: self.sender_display_name,
            content: MessageContent {
                message: Some(self.content),
                ..MessageContent::default()
            },
            metadata: self.metadata,
        })
    }
}

/// Posts a participant's message; audited when `audit_chat_sends` is on.
async fn post_message(
    state: &AppState,
    caller: &Chat,
    thread: &ThreadId,
    message: &NewMessage,
) -> Result<Message, ApiError> {
    let posted = state
        .store
        .post(thread, &ThreadChange::None, message, state.clock.now())
        .await
        .map_err(gone_as_not_found)?;
    if state.config.audit_chat_sends {
        let details = json!({"messageId": posted.id.to_string()});
        caller
            .audit(state, action::CHAT_MESSAGE_SEND, thread, details)
            .await?;
    }
    Ok(posted)
}

/// `POST /chat/threads/{id}/messages`: 201 `{"id"}`.
pub async fn send_message(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::WriteMessage).await?;
    let message = body.into_message(caller.me())?;
    let posted = post_message(&state, &caller, &thread.id, &message).await?;
    let answer = SentMessage {
        id: posted.id.to_string(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Body of a direct message: the recipient's name and the message.
#[derive(Debug, Deserialize)]
pub struct DirectBody {
    to: String,
    #[serde(flatten)]
    message: SendBody,
}

/// `POST /chat/direct` `{"to": "<name>", "content", …}` (Tessera's own): 201 `{"chatThreadId", "id"}`. The pair's
/// direct thread ([`chat::direct_thread_id`]) is found, or created with both of them when the token may create
/// threads; a deleted one is followed by the next.
pub async fn direct_message(
    State(state): State<AppState>,
    token: UserToken,
    ApiJson(body): ApiJson<DirectBody>,
) -> Result<Response, ApiError> {
    let caller = Chat {
        token,
        api_version: CHAT_API_VERSIONS[CHAT_API_VERSIONS.len() - 1],
    };
    let account = caller.token.account.id;
    let kind = if body.to.trim_start().starts_with('+') {
        IdentityKind::PhoneNumber
    } else {
        IdentityKind::Human
    };
    let name = IdentityName::parse(&body.to, kind)?;
    let to = state
        .store
        .identity_by_name(account, &name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "RecipientNotFound",
                format!("No identity is called {}.", name.as_str()),
            )
        })?;
    if to.id == *caller.me() {
        return Err(ApiError::bad_request(
            "RecipientIsSender",
            "a direct message goes to someone else",
        ));
    }
    let message = body.message.into_message(caller.me())?;
    let thread = direct_thread(&state, &caller, &to).await?;
    let participant = state.store.participant(&thread.id, caller.me()).await?;
    chat::authorize(
        caller.token.claims.scp,
        ChatAction::WriteMessage,
        participant.is_some(),
    )?;
    let posted = post_message(&state, &caller, &thread.id, &message).await?;
    let answer = SentDirectMessage {
        chat_thread_id: thread.id.as_str().to_owned(),
        id: posted.id.to_string(),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The live direct thread of the caller and `to`, created if there is none.
async fn direct_thread(
    state: &AppState,
    caller: &Chat,
    to: &tessera_core::identity::Identity,
) -> Result<Thread, ApiError> {
    let account = caller.token.account.id;
    let title = |i: &tessera_core::identity::Identity| {
        i.name
            .as_ref()
            .map_or_else(|| i.id.as_str().to_owned(), |n| n.as_str().to_owned())
    };
    let participants = [&caller.token.identity, to].map(|i| Participant {
        identity: i.id.clone(),
        display_name: i.name.as_ref().map(|n| n.as_str().to_owned()),
        share_history_from: None,
    });
    for attempt in 0..MAX_DIRECT_THREADS {
        let id = chat::direct_thread_id(caller.me(), &to.id, attempt);
        if let Some(thread) = state.store.thread(account, &id).await? {
            return Ok(thread);
        }
        caller.may(ChatAction::CreateThread)?;
        let thread = Thread {
            id: id.clone(),
            account,
            topic: format!("{} and {}", title(&caller.token.identity), title(to))
                .chars()
                .take(chat::MAX_TOPIC_CHARS)
                .collect(),
            created_by: caller.me().clone(),
            created_at: state.clock.now(),
            deleted_at: None,
            last_message_at: None,
        };
        match state.store.create_thread(&thread, &participants, None).await {
            Ok(created) => {
                let details = json!({"participants": ids(&participants), "direct": true});
                caller
                    .audit(state, action::CHAT_THREAD_CREATE, &created.id, details)
                    .await?;
                return Ok(created);
            }
            // Created meanwhile by the other side (live now), or deleted before (move on to the next).
            Err(StoreError::Conflict(_)) => {
                if let Some(thread) = state.store.thread(account, &id).await? {
                    return Ok(thread);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "DirectThreadsExhausted",
        format!(
            "these two identities have deleted {MAX_DIRECT_THREADS} direct threads; create a thread instead"
        ),
    ))
}

/// `GET /chat/threads/{id}/messages`: newest first; the continuation is the last id given (and the start time).
pub async fn list_messages(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (thread, me) = caller.thread_and_me(&state, &raw, ChatAction::ReadThread).await?;
    let size = query.size()?;
    let (before, since) = match &query.continuation_token {
        None => (None, query.since()?),
        Some(token) => {
            let cursor = chat::MessagesCursor::parse(token).ok_or_else(PageQuery::bad_continuation)?;
            (Some(cursor.before), cursor.since)
        }
    };
    // A participant added with a history start reads nothing older.
    let since = match (since, me.and_then(|p| p.share_history_from)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let messages = state.store.messages(&thread.id, before, since, size).await?;
    let next_link = messages
        .last()
        .filter(|_| messages.len() == size as usize)
        .map(|last| {
            let token = chat::MessagesCursor {
                before: last.id,
                since,
            }
            .encode();
            caller.next_link(
                &format!("/chat/threads/{}/messages", encode(thread.id.as_str())),
                &token,
                size,
            )
        });
    let answer = MessagePage {
        value: messages.iter().map(message_view).collect(),
        next_link,
    };
    Ok(Json(answer).into_response())
}

/// A path segment, percent-encoded (thread ids hold `:` and `@`).
fn encode(raw: &str) -> String {
    raw.replace(':', "%3A").replace('@', "%40")
}

/// The message `raw` of `thread`: 404 `MessageNotFound` otherwise.
async fn existing_message(state: &AppState, thread: &Thread, raw: &str) -> Result<Message, ApiError> {
    let not_found = || ApiError::not_found("MessageNotFound", format!("Message {raw} does not exist."));
    let id: u64 = raw.parse().map_err(|_| not_found())?;
    state.store.message(&thread.id, id).await?.ok_or_else(not_found)
}

/// The message `raw` as `me` may see it: one older than `me`'s history window does not exist for `me` (the same
/// 404 as a message that never existed, so that neither a read nor a read receipt tells them apart).
async fn visible_message(
    state: &AppState,
    thread: &Thread,
    me: Option<&Participant>,
    raw: &str,
) -> Result<Message, ApiError> {
    let message = existing_message(state, thread, raw).await?;
    if chat::in_window(me.and_then(|p| p.share_history_from), message.created_at) {
        Ok(message)
    } else {
        Err(ApiError::not_found(
            "MessageNotFound",
            format!("Message {raw} does not exist."),
        ))
    }
}

/// `GET /chat/threads/{id}/messages/{mid}`.
pub async fn get_message(
    State(state): State<AppState>,
    caller: Chat,
    Path((raw, mid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (thread, me) = caller.thread_and_me(&state, &raw, ChatAction::ReadThread).await?;
    let message = visible_message(&state, &thread, me.as_ref(), &mid).await?;
    Ok(Json(message_view(&message)).into_response())
}

/// Body of a message edit.
#[derive(Debug, Deserialize)]
pub struct EditBody {
    content: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

/// `PATCH /chat/threads/{id}/messages/{mid}`: 204; the sender's own messages only.
pub async fn update_message(
    State(state): State<AppState>,
    caller: Chat,
    Path((raw, mid)): Path<(String, String)>,
    ApiJson(body): ApiJson<EditBody>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::WriteMessage).await?;
    let message = existing_message(&state, &thread, &mid).await?;
    chat::check_own_message(
        message.body.sender.as_ref().map(IdentityId::as_str),
        caller.me().as_str(),
    )?;
    let content = body
        .content
        .or(message.body.content.message.clone())
        .unwrap_or_default();
    chat::check_message(&content, body.metadata.as_ref().unwrap_or(&message.body.metadata))?;
    state
        .store
        .edit_message(
            &thread.id,
            message.id,
            &content,
            body.metadata.as_ref(),
            state.clock.now(),
        )
        .await
        .map_err(gone_as_not_found)?;
    let details = json!({"messageId": message.id.to_string()});
    caller
        .audit(&state, action::CHAT_MESSAGE_EDIT, &thread.id, details)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /chat/threads/{id}/messages/{mid}`: 204; the sender's own messages only.
pub async fn delete_message(
    State(state): State<AppState>,
    caller: Chat,
    Path((raw, mid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::WriteMessage).await?;
    let message = existing_message(&state, &thread, &mid).await?;
    chat::check_own_message(
        message.body.sender.as_ref().map(IdentityId::as_str),
        caller.me().as_str(),
    )?;
    state
        .store
        .delete_message(&thread.id, message.id, state.clock.now())
        .await
        .map_err(gone_as_not_found)?;
    let details = json!({"messageId": message.id.to_string()});
    caller
        .audit(&state, action::CHAT_MESSAGE_DELETE, &thread.id, details)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A `skip`-paged answer of `value`, with a `nextLink` when the page is full.
fn skip_page<T: Serialize>(caller: &Chat, path: &str, skip: u32, size: u32, value: Vec<T>) -> Response {
    let full = value.len() == size as usize;
    let mut answer = json!({"value": value});
    if full {
        answer["nextLink"] = caller.next_link(path, &(skip + size).to_string(), size).into();
    }
    Json(answer).into_response()
}

/// The `skip` of a skip-paged list: the query's, or the continuation's.
fn skip_of(query: &PageQuery) -> Result<u32, ApiError> {
    match &query.continuation_token {
        Some(token) => token.parse().map_err(|_| PageQuery::bad_continuation()),
        None => Ok(query.skip.unwrap_or(0)),
    }
}

/// `GET /chat/threads/{id}/participants`.
pub async fn list_participants(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::ReadThread).await?;
    let (size, skip) = (query.size()?, skip_of(&query)?);
    let participants = state.store.participants(&thread.id, skip, size).await?;
    let path = format!("/chat/threads/{}/participants", encode(thread.id.as_str()));
    Ok(skip_page(
        &caller,
        &path,
        skip,
        size,
        participants.iter().map(participant_view).collect(),
    ))
}

/// Body of `participants/:add`.
#[derive(Debug, Deserialize)]
pub struct AddBody {
    participants: Vec<ParticipantBody>,
}

/// `POST /chat/threads/{id}/participants/:add`: 201 `{}` or `{"invalidParticipants"}`, with a
/// `participantAdded` message naming those who were not in the thread yet. Someone already in it keeps their
/// display name and history window (answered as a success without change, as ACS does); a newcomer's window is
/// never wider than the caller's own ([`chat::admitted_window`]); a thread holds at most [`MAX_PARTICIPANTS`]
/// (400 `TooManyParticipants`, nothing added).
pub async fn add_participants(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<Response, ApiError> {
    let (thread, me) = caller
        .thread_and_me(&state, &raw, ChatAction::AddParticipants)
        .await?;
    if body.participants.is_empty() || body.participants.len() > MAX_PARTICIPANTS {
        return Err(too_many_participants());
    }
    let own_window = me.and_then(|p| p.share_history_from);
    let (mut admitted, refused) = admit(&state, &caller, &body.participants).await?;
    let mut newcomers = Vec::with_capacity(admitted.len());
    for mut p in admitted.drain(..) {
        let known = newcomers.iter().any(|n: &Participant| n.identity == p.identity);
        if !known && state.store.participant(&thread.id, &p.identity).await?.is_none() {
            p.share_history_from = chat::admitted_window(own_window, p.share_history_from);
            newcomers.push(p);
        }
    }
    let admitted = newcomers;
    if !admitted.is_empty() {
        let content = MessageContent {
            participants: admitted.clone(),
            initiator: Some(caller.me().clone()),
            ..MessageContent::default()
        };
        let details = json!({"added": ids(&admitted)});
        post_system(
            &state,
            &thread,
            ThreadChange::AddParticipants(admitted),
            MessageType::ParticipantAdded,
            content,
        )
        .await?;
        caller
            .audit(&state, action::CHAT_PARTICIPANTS_ADD, &thread.id, details)
            .await?;
    }
    let answer = AddedParticipants {
        invalid_participants: refused,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /chat/threads/{id}/participants/:remove` with the bare identifier: 204, with a `participantRemoved`
/// message.
pub async fn remove_participant(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiJson(model): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::RemoveParticipant).await?;
    let raw_id = raw_id_of(&model)?;
    let not_in = || ApiError::not_found("ParticipantNotFound", format!("{raw_id} is not a participant."));
    let identity = IdentityId::parse(&raw_id).map_err(|_| not_in())?;
    let removed = state
        .store
        .participant(&thread.id, &identity)
        .await?
        .ok_or_else(not_in)?;
    let content = MessageContent {
        participants: vec![removed],
        initiator: Some(caller.me().clone()),
        ..MessageContent::default()
    };
    let details = json!({"removed": identity.as_str()});
    post_system(
        &state,
        &thread,
        ThreadChange::RemoveParticipant(identity),
        MessageType::ParticipantRemoved,
        content,
    )
    .await?;
    caller
        .audit(&state, action::CHAT_PARTICIPANT_REMOVE, &thread.id, details)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Body of a typing notification.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingBody {
    sender_display_name: Option<String>,
}

/// `POST /chat/threads/{id}/typing`: 200; the other participants' event streams get it (only the event log
/// keeps it, for an hour).
pub async fn typing(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<TypingBody>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::SignalActivity).await?;
    if let Some(name) = &body.sender_display_name {
        chat::check_display_name(name)?;
    }
    state.typing.count(caller.me().as_str())?;
    state
        .store
        .record_typing(
            &thread.id,
            caller.me(),
            body.sender_display_name.as_deref(),
            state.clock.now(),
        )
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// Body of a read receipt.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptBody {
    chat_message_id: String,
}

/// `POST /chat/threads/{id}/readReceipts` `{"chatMessageId"}`: 200.
pub async fn send_read_receipt(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<ReceiptBody>,
) -> Result<Response, ApiError> {
    let (thread, me) = caller
        .thread_and_me(&state, &raw, ChatAction::SignalActivity)
        .await?;
    let message = visible_message(&state, &thread, me.as_ref(), &body.chat_message_id).await?;
    state
        .store
        .save_read_receipt(&thread.id, caller.me(), message.id, state.clock.now())
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /chat/threads/{id}/readReceipts`.
pub async fn list_read_receipts(
    State(state): State<AppState>,
    caller: Chat,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let thread = caller.thread(&state, &raw, ChatAction::ReadThread).await?;
    let (size, skip) = (query.size()?, skip_of(&query)?);
    let receipts = state.store.read_receipts(&thread.id, skip, size).await?;
    let value = receipts
        .iter()
        .map(|r| {
            json!({
                "senderCommunicationIdentifier": identifier(&r.identity),
                "chatMessageId": r.message.to_string(),
                "readOn": time(r.read_at),
            })
        })
        .collect();
    let path = format!("/chat/threads/{}/readReceipts", encode(thread.id.as_str()));
    Ok(skip_page(&caller, &path, skip, size, value))
}
