//! The chat service over HTTPS on the ACS Chat wire, on SQLite and PostgreSQL: threads, participants, messages,
//! paging by `nextLink`, read receipts and typing, and every refusal the token's scopes and participation call
//! for. Tokens come from the trusted service through the Rust SDK.

use crate::common;

use common::{Backend, Options, Resp, Server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tessera_client::{Endpoint, IdentityClient, IdentityKind, TokenRequest};
use tessera_server::FileConfig;

const V: &str = "api-version=2024-03-07";

struct Chat {
    s: Server,
    trusted: IdentityClient,
}

/// A user: id and token.
struct User {
    id: String,
    token: String,
}

impl Chat {
    async fn start(backend: Backend) -> Self {
        Self::on(Server::start(backend).await).await
    }

    /// Chat on the server `s`, with an account of its own.
    async fn on(s: Server) -> Self {
        let account = s.create_account(&common::communication_id("chat")).await;
        let trusted = IdentityClient::new(
            Endpoint::with_client(s.base.clone(), s.client.clone()),
            account.key(),
        );
        Self { s, trusted }
    }

    async fn user(&self, name: &str, scopes: &[&str]) -> User {
        let (identity, issued) = self
            .trusted
            .issue_token_by_name(name, IdentityKind::Human, &TokenRequest::scopes(scopes))
            .await
            .expect("a token");
        User {
            id: identity.id,
            token: issued.token.token,
        }
    }

    /// A chat call as `who`; `path` gets the api-version.
    async fn call(&self, who: &User, method: Method, path: &str, body: Option<Value>) -> Resp {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut request = self
            .s
            .request(method, &format!("{path}{sep}{V}"))
            .bearer_auth(&who.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.s.send(request).await
    }

    /// `participants/:add` on the thread at `thread` as `who`.
    async fn add(&self, who: &User, thread: &str, participants: Vec<Value>) -> Resp {
        let body = json!({ "participants": participants });
        self.call(
            who,
            Method::POST,
            &format!("{thread}/participants/:add"),
            Some(body),
        )
        .await
    }

    /// Follows `nextLink`s from the first page of `path` as the SDK does; returns every item.
    async fn all_pages(&self, who: &User, path: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 1;
        let mut page = self
            .call(who, Method::GET, path, None)
            .await
            .ok(StatusCode::OK)
            .json();
        loop {
            items.extend(page["value"].as_array().expect("value").iter().cloned());
            let Some(next) = page["nextLink"].as_str() else {
                break;
            };
            assert!(next.starts_with("/chat/threads") && !next.contains('+'), "{next}");
            page = self
                .s
                .send(self.s.request(Method::GET, next).bearer_auth(&who.token))
                .await
                .ok(StatusCode::OK)
                .json();
            pages += 1;
        }
        (items, pages)
    }
}

fn ident(id: &str) -> Value {
    json!({"rawId": id, "communicationUser": {"id": id}})
}

fn participant(u: &User, name: &str) -> Value {
    json!({"communicationIdentifier": ident(&u.id), "displayName": name})
}

fn thread_path(id: &str) -> String {
    format!("/chat/threads/{}", common::segment(id).replace('@', "%40"))
}

async fn the_seed_conversation(backend: Backend) {
    let c = Chat::start(backend).await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let eve = c.user("eve@contoso.com", &["chat"]).await;
    let kid = c.user("kid@contoso.com", &["chat.join.limited"]).await;
    let joiner = c.user("joiner@contoso.com", &["chat.join"]).await;
    let stranger = "8:acs:00000000-0000-4000-8000-000000000000_00000000-0000-4000-8000-000000000001";

    // Bob creates the thread with Sue; an identity of no account of Bob's is refused by name.
    let create = json!({"topic": "Lunch", "participants": [
        participant(&sue, "Sue"),
        {"communicationIdentifier": ident(stranger)},
    ]});
    let created =
        c.s.send(
            c.s.request(Method::POST, &format!("/chat/threads?{V}"))
                .bearer_auth(&bob.token)
                .header("repeatability-request-id", "b5b0c3f6-0000-4000-8000-000000000001")
                .json(&create),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let thread = created["chatThread"].clone();
    let id = thread["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("19:") && id.ends_with("@thread.v2"), "{id}");
    assert_eq!(thread["topic"], "Lunch");
    assert_eq!(
        thread["createdByCommunicationIdentifier"],
        json!({"kind": "communicationUser", "rawId": bob.id, "communicationUser": {"id": bob.id}})
    );
    assert_eq!(created["invalidParticipants"][0]["target"], stranger);
    // The same request again is the same thread.
    let again =
        c.s.send(
            c.s.request(Method::POST, &format!("/chat/threads?{V}"))
                .bearer_auth(&bob.token)
                .header("repeatability-request-id", "b5b0c3f6-0000-4000-8000-000000000001")
                .json(&create),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(again["chatThread"]["id"], id.as_str());
    let path = thread_path(&id);

    // Sue writes; Bob reads it, sender derived from Sue's token.
    let sent = c
        .call(
            &sue,
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({
                "content": "hello", "senderDisplayName": "Sue", "type": "text", "metadata": {"k": "v"}
            })),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let mid = sent["id"].as_str().unwrap().to_owned();
    let got = c
        .call(&bob, Method::GET, &format!("{path}/messages/{mid}"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(got["content"]["message"], "hello");
    assert_eq!(got["type"], "text");
    assert_eq!(got["sequenceId"], "1");
    assert_eq!(got["version"], mid.as_str());
    assert_eq!(got["senderDisplayName"], "Sue");
    assert_eq!(got["senderCommunicationIdentifier"]["rawId"], sue.id.as_str());
    assert_eq!(got["metadata"], json!({"k": "v"}));

    // Paging past one page: six more messages, two per page, newest first, each once.
    for n in 0..6 {
        c.call(
            &bob,
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({"content": format!("m{n}")})),
        )
        .await
        .ok(StatusCode::CREATED);
    }
    let (messages, pages) = c.all_pages(&bob, &format!("{path}/messages?maxPageSize=2")).await;
    let sequence: Vec<&str> = messages
        .iter()
        .map(|m| m["sequenceId"].as_str().unwrap())
        .collect();
    assert_eq!(sequence, ["7", "6", "5", "4", "3", "2", "1"]);
    assert_eq!(pages, 4);

    // Only participants read or write; another account's identity does not even see the thread.
    c.call(&eve, Method::GET, &path, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotAParticipant");
    c.call(
        &eve,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"content": "hi"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "NotAParticipant");
    let other = c.s.create_account(&common::communication_id("chat-other")).await;
    let outsider_client = IdentityClient::new(
        Endpoint::with_client(c.s.base.clone(), c.s.client.clone()),
        other.key(),
    );
    let (_, outsider) = outsider_client
        .issue_token_by_name("mallory", IdentityKind::Human, &TokenRequest::scopes(&["chat"]))
        .await
        .unwrap();
    let mallory = User {
        id: String::new(),
        token: outsider.token.token,
    };
    c.call(&mallory, Method::GET, &path, None)
        .await
        .error(StatusCode::NOT_FOUND, "ThreadNotFound");
    c.call(&bob, Method::GET, "/chat/threads/19%3Anope%40thread.v2", None)
        .await
        .error(StatusCode::NOT_FOUND, "ThreadNotFound");

    // Only the sender edits or deletes a message.
    c.call(
        &bob,
        Method::PATCH,
        &format!("{path}/messages/{mid}"),
        Some(json!({"content": "hijacked"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "NotTheSender");
    c.call(
        &sue,
        Method::PATCH,
        &format!("{path}/messages/{mid}"),
        Some(json!({"content": "hello!"})),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    let edited = c
        .call(&bob, Method::GET, &format!("{path}/messages/{mid}"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(edited["content"]["message"], "hello!");
    assert!(edited["editedOn"].is_string());
    assert_ne!(edited["version"], mid.as_str());
    c.call(&sue, Method::DELETE, &format!("{path}/messages/{mid}"), None)
        .await
        .ok(StatusCode::NO_CONTENT);
    let deleted = c
        .call(&bob, Method::GET, &format!("{path}/messages/{mid}"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert!(deleted["deletedOn"].is_string());
    assert_eq!(deleted["content"], json!({}));

    // Message limits.
    let too_long = "x".repeat(28 * 1024 + 1);
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"content": too_long})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidMessage");
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"content": "x", "type": "topicUpdated"})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidMessage");

    // Participants: chat.join.limited joins and sends, but adds or removes nobody; chat.join creates nothing.
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:add"),
        Some(json!({"participants": [
            participant(&kid, "Kid"), participant(&joiner, "Joiner")
        ]})),
    )
    .await
    .ok(StatusCode::CREATED);
    c.call(
        &kid,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"content": "hi all"})),
    )
    .await
    .ok(StatusCode::CREATED);
    // A participant whose shared history starts later reads nothing older, listed or by id.
    let late = c.user("late@contoso.com", &["chat"]).await;
    let add_late = json!({"participants": [
        {"communicationIdentifier": ident(&late.id), "shareHistoryTime": "2100-01-01T00:00:00.000Z"}
    ]});
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:add"),
        Some(add_late),
    )
    .await
    .ok(StatusCode::CREATED);
    let (visible, _) = c.all_pages(&late, &format!("{path}/messages")).await;
    assert_eq!(visible, Vec::<Value>::new());
    c.call(&late, Method::GET, &format!("{path}/messages/{mid}"), None)
        .await
        .error(StatusCode::NOT_FOUND, "MessageNotFound");
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:remove"),
        Some(ident(&late.id)),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    c.call(
        &kid,
        Method::POST,
        &format!("{path}/participants/:add"),
        Some(json!({"participants": [participant(&eve, "Eve")]})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "MissingScope");
    c.call(
        &kid,
        Method::POST,
        &format!("{path}/participants/:remove"),
        Some(ident(&sue.id)),
    )
    .await
    .error(StatusCode::FORBIDDEN, "MissingScope");
    c.call(
        &joiner,
        Method::POST,
        "/chat/threads",
        Some(json!({"topic": "mine"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "MissingScope");
    c.call(&joiner, Method::PATCH, &path, Some(json!({"topic": "renamed"})))
        .await
        .error(StatusCode::FORBIDDEN, "MissingScope");
    let (members, _) = c
        .all_pages(&bob, &format!("{path}/participants?maxPageSize=2"))
        .await;
    let mut names: Vec<&str> = members.iter().filter_map(|p| p["displayName"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Joiner", "Kid", "Sue"], "{members:?}");
    assert_eq!(members.len(), 4, "Bob too");
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:remove"),
        Some(ident(&joiner.id)),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    c.call(&joiner, Method::GET, &path, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotAParticipant");
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:remove"),
        Some(ident(&joiner.id)),
    )
    .await
    .error(StatusCode::NOT_FOUND, "ParticipantNotFound");

    // Topic, read receipts, typing.
    c.call(&bob, Method::PATCH, &path, Some(json!({"topic": "Dinner"})))
        .await
        .ok(StatusCode::NO_CONTENT);
    assert_eq!(
        c.call(&sue, Method::GET, &path, None)
            .await
            .ok(StatusCode::OK)
            .json()["topic"],
        "Dinner"
    );
    let newest = c
        .call(&sue, Method::GET, &format!("{path}/messages?maxPageSize=1"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(newest["value"][0]["type"], "topicUpdated");
    assert_eq!(newest["value"][0]["content"]["topic"], "Dinner");
    let last = newest["value"][0]["id"].as_str().unwrap().to_owned();
    c.call(
        &sue,
        Method::POST,
        &format!("{path}/readReceipts"),
        Some(json!({"chatMessageId": last})),
    )
    .await
    .ok(StatusCode::OK);
    let receipts = c
        .call(&bob, Method::GET, &format!("{path}/readReceipts"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(receipts["value"][0]["chatMessageId"], last.as_str());
    assert_eq!(
        receipts["value"][0]["senderCommunicationIdentifier"]["rawId"],
        sue.id.as_str()
    );
    c.call(
        &sue,
        Method::POST,
        &format!("{path}/typing"),
        Some(json!({"senderDisplayName": "Sue"})),
    )
    .await
    .ok(StatusCode::OK);

    // Threads of Bob, and a revoked identity's token refused at once.
    let (threads, _) = c.all_pages(&bob, "/chat/threads?maxPageSize=1").await;
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0]["topic"], "Dinner");
    c.trusted.revoke_tokens(&sue.id).await.unwrap();
    c.call(&sue, Method::GET, &path, None)
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");

    // The api-version is required; deleting the thread ends it for everyone.
    c.s.send(c.s.request(Method::GET, &path).bearer_auth(&bob.token))
        .await
        .error(StatusCode::BAD_REQUEST, "MissingApiVersionParameter");
    c.call(&bob, Method::DELETE, &path, None)
        .await
        .ok(StatusCode::NO_CONTENT);
    c.call(&bob, Method::GET, &path, None)
        .await
        .error(StatusCode::NOT_FOUND, "ThreadNotFound");
}

/// `POST /chat/direct`: Bob writes to Sue by name; both sides land in one direct thread.
async fn direct_messages_by_name(backend: Backend) {
    let c = Chat::start(backend).await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let joiner = c.user("joiner@contoso.com", &["chat.join"]).await;
    let dm = |who: &User, to: &str, content: &str| {
        let request =
            c.s.request(Method::POST, "/chat/direct")
                .bearer_auth(&who.token)
                .json(&json!({"to": to, "content": content, "senderDisplayName": "me"}));
        c.s.send(request)
    };
    let first = dm(&bob, "Sue@Contoso.com", "Hi Sue")
        .await
        .ok(StatusCode::CREATED)
        .json();
    let thread = first["chatThreadId"].as_str().unwrap().to_owned();
    let reply = dm(&sue, "bob@contoso.com", "Hi Bob")
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(reply["chatThreadId"], thread.as_str(), "one thread for the pair");
    let path = thread_path(&thread);
    let properties = c
        .call(&sue, Method::GET, &path, None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(properties["topic"], "bob@contoso.com and sue@contoso.com");
    let (messages, _) = c.all_pages(&sue, &format!("{path}/messages")).await;
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["content"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Hi Bob", "Hi Sue"]);
    assert_eq!(
        messages[1]["senderCommunicationIdentifier"]["rawId"],
        bob.id.as_str()
    );

    dm(&bob, "nobody@contoso.com", "hello?")
        .await
        .error(StatusCode::NOT_FOUND, "RecipientNotFound");
    dm(&bob, "bob@contoso.com", "me")
        .await
        .error(StatusCode::BAD_REQUEST, "RecipientIsSender");
    // A chat.join token writes in existing threads only: no new direct thread for it.
    dm(&joiner, "sue@contoso.com", "hi")
        .await
        .error(StatusCode::FORBIDDEN, "MissingScope");

    // After the pair's thread is deleted, the next message opens a new one.
    c.call(&bob, Method::DELETE, &path, None)
        .await
        .ok(StatusCode::NO_CONTENT);
    let fresh = dm(&sue, "bob@contoso.com", "again")
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_ne!(fresh["chatThreadId"], thread.as_str());
}

/// How long a test waits for an event it expects.
const EVENT_WAIT: Duration = Duration::from_secs(5);

/// An open event stream (`GET /chat/events`), read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
    /// The `id` of the last event read.
    last_id: Option<String>,
}

impl Events {
    async fn open(c: &Chat, who: &User) -> Self {
        Self::open_on(&c.s, who).await
    }

    /// A stream from the node `s`.
    async fn open_on(s: &Server, who: &User) -> Self {
        Self::resume_on(s, who, None).await
    }

    /// A stream from the node `s`, resuming after the event `last_id` when given.
    async fn resume_on(s: &Server, who: &User, last_id: Option<&str>) -> Self {
        let mut request = s.client.get(s.url("/chat/events")).bearer_auth(&who.token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the event stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
            last_id: None,
        }
    }

    /// The next event (name, JSON data) within `wait`, skipping keep-alive comments; `None` on timeout or end.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        self.last_id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap_or(Value::String(data))));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8 events"));
        }
    }

    /// The next event, which must be `name`. Delivery takes one poll of the event log (100 ms); the wait allows
    /// for a loaded machine, and latency is the benchmark's to measure.
    async fn expect(&mut self, name: &str) -> Value {
        let (got, data) = self
            .next(EVENT_WAIT)
            .await
            .unwrap_or_else(|| panic!("no {name} within {EVENT_WAIT:?}"));
        assert_eq!(got, name, "{data}");
        data
    }
}

/// Real-time delivery: a participant's stream gets messages, edits, deletions, receipts, typing and the thread's
/// deletion; a non-participant's gets none of them; a revoked or expired token ends the stream.
async fn events_reach_participants_only(backend: Backend) {
    let c = Chat::start(backend).await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let eve = c.user("eve@contoso.com", &["chat"]).await;
    let voip = c.user("caller@contoso.com", &["voip"]).await;
    c.s.send(c.s.request(Method::GET, "/chat/events").bearer_auth(&voip.token))
        .await
        .error(StatusCode::FORBIDDEN, "MissingScope");
    for bad in ["-1", "x", "1.5"] {
        c.s.send(
            c.s.request(Method::GET, "/chat/events")
                .bearer_auth(&bob.token)
                .header("last-event-id", bad),
        )
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidLastEventId");
    }
    let mut bobs = Events::open(&c, &bob).await;
    let mut sues = Events::open(&c, &sue).await;
    let mut eves = Events::open(&c, &eve).await;

    let created = c
        .call(
            &bob,
            Method::POST,
            "/chat/threads",
            Some(json!({"topic": "Live", "participants": [participant(&sue, "Sue")]})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let id = created["chatThread"]["id"].as_str().unwrap().to_owned();
    let path = thread_path(&id);
    let sent = c
        .call(
            &sue,
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({"content": "live!"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let mid = sent["id"].as_str().unwrap().to_owned();
    for stream in [&mut bobs, &mut sues] {
        let got = stream.expect("chatMessageReceived").await;
        assert_eq!(got["threadId"], id.as_str());
        assert_eq!(got["message"]["id"], mid.as_str());
        assert_eq!(got["message"]["content"]["message"], "live!");
        assert_eq!(
            got["message"]["senderCommunicationIdentifier"]["rawId"],
            sue.id.as_str()
        );
    }
    c.call(
        &sue,
        Method::PATCH,
        &format!("{path}/messages/{mid}"),
        Some(json!({"content": "live, edited"})),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    assert_eq!(
        bobs.expect("chatMessageEdited").await["message"]["content"]["message"],
        "live, edited"
    );
    c.call(
        &sue,
        Method::POST,
        &format!("{path}/typing"),
        Some(json!({"senderDisplayName": "Sue"})),
    )
    .await
    .ok(StatusCode::OK);
    let typing = bobs.expect("typingIndicatorReceived").await;
    assert_eq!(typing["senderDisplayName"], "Sue");
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/readReceipts"),
        Some(json!({"chatMessageId": mid})),
    )
    .await
    .ok(StatusCode::OK);
    // Sue's stream skipped her own typing: after her edit comes Bob's receipt.
    sues.expect("chatMessageEdited").await;
    let receipt = sues.expect("readReceiptReceived").await;
    assert_eq!(receipt["chatMessageId"], mid.as_str());
    assert_eq!(receipt["senderCommunicationIdentifier"]["rawId"], bob.id.as_str());
    c.call(&sue, Method::DELETE, &format!("{path}/messages/{mid}"), None)
        .await
        .ok(StatusCode::NO_CONTENT);
    assert!(bobs.expect("readReceiptReceived").await["chatMessageId"] == mid.as_str());
    assert!(bobs.expect("chatMessageDeleted").await["message"]["deletedOn"].is_string());
    sues.expect("chatMessageDeleted").await;

    // Eve is in no thread: nothing of it reached her.
    assert_eq!(eves.next(Duration::from_millis(500)).await, None);

    // Revoking Sue ends her stream; Bob's goes on until his token expires.
    c.trusted.revoke_tokens(&sue.id).await.unwrap();
    let (name, data) = sues
        .next(Duration::from_secs(10))
        .await
        .expect("the stream tells why it ends");
    assert_eq!(name, "tokenRevoked", "{data}");
    assert_eq!(sues.next(Duration::from_secs(1)).await, None, "and ends");
    c.call(&bob, Method::DELETE, &path, None)
        .await
        .ok(StatusCode::NO_CONTENT);
    assert_eq!(bobs.expect("chatThreadDeleted").await["threadId"], id.as_str());
    c.s.clock().advance_secs(25 * 3600);
    let (name, _) = bobs
        .next(Duration::from_secs(10))
        .await
        .expect("the stream tells why it ends");
    assert_eq!(name, "tokenExpired");
}

/// Every change of a thread reaches the audit chain under the identity that made it, with ids and never content;
/// message sends and repeated creations do not (ARCHITECTURE.md says why).
async fn chat_changes_are_audited(backend: Backend) {
    let c = Chat::start(backend).await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let kim = c.user("kim@contoso.com", &["chat"]).await;
    let create = |key: &'static str| {
        let request =
            c.s.request(Method::POST, &format!("/chat/threads?{V}"))
                .bearer_auth(&bob.token)
                .header("repeatability-request-id", key)
                .json(&json!({"topic": "Secret plans", "participants": [participant(&sue, "Sue")]}));
        c.s.send(request)
    };
    let created = create("once").await.ok(StatusCode::CREATED).json();
    create("once").await.ok(StatusCode::CREATED);
    let id = created["chatThread"]["id"].as_str().unwrap().to_owned();
    let path = thread_path(&id);
    c.call(
        &bob,
        Method::PATCH,
        &path,
        Some(json!({"topic": "More secret plans"})),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    c.add(&bob, &path, vec![participant(&kim, "Kim")])
        .await
        .ok(StatusCode::CREATED);
    c.add(&bob, &path, vec![participant(&kim, "Kim")])
        .await
        .ok(StatusCode::CREATED);
    let sent = c
        .call(
            &sue,
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({"content": "the password is hunter2"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let mid = sent["id"].as_str().unwrap().to_owned();
    let message = format!("{path}/messages/{mid}");
    c.call(
        &sue,
        Method::PATCH,
        &message,
        Some(json!({"content": "never mind"})),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    c.call(&sue, Method::DELETE, &message, None)
        .await
        .ok(StatusCode::NO_CONTENT);
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:remove"),
        Some(ident(&kim.id)),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    c.call(&bob, Method::DELETE, &path, None)
        .await
        .ok(StatusCode::NO_CONTENT);

    let events = c.s.audit(&[("subject", &id)]).await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    let (as_bob, as_sue) = (format!("identity:{}", bob.id), format!("identity:{}", sue.id));
    assert_eq!(
        seen,
        [
            ("chat.thread.create", as_bob.as_str()),
            ("chat.thread.updateTopic", as_bob.as_str()),
            ("chat.participants.add", as_bob.as_str()),
            ("chat.message.edit", as_sue.as_str()),
            ("chat.message.delete", as_sue.as_str()),
            ("chat.participants.remove", as_bob.as_str()),
            ("chat.thread.delete", as_bob.as_str()),
        ],
        "one creation for two requests, one add for a no-op re-add, no send"
    );
    let details: Vec<Value> = events.iter().map(common::details).collect();
    let mut members: Vec<&str> = details[0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut expected = [bob.id.as_str(), sue.id.as_str()];
    expected.sort_unstable();
    assert_eq!(members, expected);
    assert_eq!(details[2]["added"], json!([kim.id]));
    assert_eq!(details[3]["messageId"], mid.as_str());
    assert_eq!(details[5]["removed"], kim.id.as_str());
    for event in &events {
        assert!(
            !event.details.contains("hunter2")
                && !event.details.contains("never mind")
                && !event.details.contains("plans"),
            "no content in the audit: {}",
            event.details
        );
    }

    // A direct thread's creation is audited too, as direct.
    let first =
        c.s.send(
            c.s.request(Method::POST, "/chat/direct")
                .bearer_auth(&bob.token)
                .json(&json!({"to": "sue@contoso.com", "content": "hi"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let direct =
        c.s.audit(&[("subject", first["chatThreadId"].as_str().unwrap())])
            .await;
    assert_eq!(direct.len(), 1);
    assert_eq!(
        (
            direct[0].action.as_str(),
            common::details(&direct[0])["direct"].as_bool()
        ),
        ("chat.thread.create", Some(true))
    );
    c.s.verify_audit_chain(100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_changes_are_audited_on_sqlite() {
    chat_changes_are_audited(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_changes_are_audited_on_postgres() {
    chat_changes_are_audited(Backend::Postgres).await;
}

/// With `audit_chat_sends`, each message sent (to a thread or directly) is audited under its sender, by id and never
/// by content; without it (the default, `chat_changes_are_audited`), no send is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_audited_when_configured() {
    let c = Chat::on(
        Server::start_with(Options {
            file: FileConfig {
                audit_chat_sends: Some(true),
                ..FileConfig::default()
            },
            ..Options::default()
        })
        .await,
    )
    .await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let created = c
        .call(
            &bob,
            Method::POST,
            "/chat/threads",
            Some(json!({"topic": "Audited", "participants": [participant(&sue, "Sue")]})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let thread = created["chatThread"]["id"].as_str().unwrap().to_owned();
    let sent = c
        .call(
            &sue,
            Method::POST,
            &format!("{}/messages", thread_path(&thread)),
            Some(json!({"content": "the password is hunter2"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let direct =
        c.s.send(
            c.s.request(Method::POST, "/chat/direct")
                .bearer_auth(&bob.token)
                .json(&json!({"to": "sue@contoso.com", "content": "hunter3"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let sends = c.s.audit(&[("action", "chat.message.send")]).await;
    let seen: Vec<(String, String, Value)> = sends
        .iter()
        .map(|e| {
            (
                e.subject.clone(),
                e.actor.clone(),
                common::details(e)["messageId"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (thread, format!("identity:{}", sue.id), sent["id"].clone()),
            (
                direct["chatThreadId"].as_str().unwrap().to_owned(),
                format!("identity:{}", bob.id),
                direct["id"].clone()
            ),
        ]
    );
    assert!(sends.iter().all(|e| !e.details.contains("hunter")));
    c.s.verify_audit_chain(100).await;
}

/// Typing notifications are limited per identity (each is a row of the event log): past
/// `max_typing_per_minute`, 429 with `Retry-After`; another identity is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_is_limited_per_identity() {
    let c = Chat::on(
        Server::start_with(Options {
            file: FileConfig {
                max_typing_per_minute: Some(3),
                ..FileConfig::default()
            },
            ..Options::default()
        })
        .await,
    )
    .await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let created = c
        .call(
            &bob,
            Method::POST,
            "/chat/threads",
            Some(json!({"topic": "Typing", "participants": [participant(&sue, "Sue")]})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let typing = format!(
        "{}/typing",
        thread_path(created["chatThread"]["id"].as_str().unwrap())
    );
    let body = || Some(json!({}));
    for _ in 0..3 {
        c.call(&bob, Method::POST, &typing, body())
            .await
            .ok(StatusCode::OK);
    }
    let limited = c.call(&bob, Method::POST, &typing, body()).await;
    limited.error(StatusCode::TOO_MANY_REQUESTS, "TooManyTypingNotifications");
    assert!(limited.header("retry-after").parse::<u64>().is_ok());
    c.call(&sue, Method::POST, &typing, body())
        .await
        .ok(StatusCode::OK);
}

/// One identity holds a bounded number of streams on a node, and resumes a bounded number of times a minute;
/// others are not affected, and a closed stream gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_identity() {
    let c = Chat::on(
        Server::start_with(Options {
            file: FileConfig {
                max_event_streams_per_identity: Some(2),
                max_event_replays_per_minute: Some(3),
                ..FileConfig::default()
            },
            ..Options::default()
        })
        .await,
    )
    .await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let open = |who: &User, last_id: Option<&str>| {
        let mut request = c.s.request(Method::GET, "/chat/events").bearer_auth(&who.token);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        request
    };
    let first = Events::open(&c, &bob).await;
    let _second = Events::open(&c, &bob).await;
    let message =
        c.s.send(open(&bob, None))
            .await
            .error(StatusCode::TOO_MANY_REQUESTS, "TooManyEventStreams");
    assert!(message.contains("2 event streams"), "{message}");
    let _sues = Events::open(&c, &sue).await;
    drop(first);
    // The server notices a closed connection and gives its place back: wait for that, counting no replay.
    let when_free = |who: &User, last_id: Option<&'static str>| {
        let request = open(who, last_id);
        async move {
            let deadline = tokio::time::Instant::now() + EVENT_WAIT;
            loop {
                let response = request.try_clone().unwrap().send().await.unwrap();
                if response.status() == StatusCode::OK {
                    return response;
                }
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "TooManyEventStreams", "{body}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "a closed stream's place came back"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    drop(when_free(&bob, None).await);

    // Resumes: three a minute, then 429 with Retry-After; a stream that does not resume still opens.
    for _ in 0..3 {
        drop(when_free(&sue, Some("0")).await);
    }
    let refused = c.s.send(open(&sue, Some("0"))).await;
    refused.error(StatusCode::TOO_MANY_REQUESTS, "TooManyEventReplays");
    let retry: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    drop(when_free(&sue, None).await);
}

/// A history window is set once, at admission, and never wider than the adder's: re-adding oneself or another
/// changes neither window nor display name. A thread holds at most 250 participants over any number of `:add`s.
async fn windows_hold_and_threads_are_capped(backend: Backend) {
    let c = Chat::start(backend).await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let late = c.user("late@contoso.com", &["chat"]).await;
    let newbie = c.user("newbie@contoso.com", &["chat"]).await;
    let created = c
        .call(
            &bob,
            Method::POST,
            "/chat/threads",
            Some(json!({"topic": "Windows"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let path = thread_path(created["chatThread"]["id"].as_str().unwrap());
    let old = c
        .call(
            &bob,
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({"content": "before"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let old_id = old["id"].as_str().unwrap().to_owned();
    let old = format!("{path}/messages/{old_id}");
    c.add(
        &bob,
        &path,
        vec![json!({"communicationIdentifier": ident(&late.id), "shareHistoryTime": "2100-01-01T00:00:00Z"})],
    )
    .await
    .ok(StatusCode::CREATED);
    c.call(&late, Method::GET, &old, None)
        .await
        .error(StatusCode::NOT_FOUND, "MessageNotFound");
    // A read receipt is no oracle either: a message before the window is as absent as one that never was.
    for id in [old_id.as_str(), "999999999"] {
        c.call(
            &late,
            Method::POST,
            &format!("{path}/readReceipts"),
            Some(json!({ "chatMessageId": id })),
        )
        .await
        .error(StatusCode::NOT_FOUND, "MessageNotFound");
    }

    // Late re-adds itself with the whole history, and Bob with a window and a new name: nothing changes.
    c.add(&late, &path, vec![participant(&late, "Late")])
        .await
        .ok(StatusCode::CREATED);
    c.add(
        &late,
        &path,
        vec![
            json!({"communicationIdentifier": ident(&bob.id), "displayName": "Mallory",
                    "shareHistoryTime": "2100-01-01T00:00:00Z"}),
        ],
    )
    .await
    .ok(StatusCode::CREATED);
    c.call(&late, Method::GET, &old, None)
        .await
        .error(StatusCode::NOT_FOUND, "MessageNotFound");
    c.call(&bob, Method::GET, &old, None).await.ok(StatusCode::OK);
    let (members, _) = c.all_pages(&bob, &format!("{path}/participants")).await;
    let bobs = members
        .iter()
        .find(|p| p["communicationIdentifier"]["rawId"] == bob.id.as_str())
        .expect("Bob is there");
    assert_eq!(bobs.get("displayName"), None, "{bobs}");
    assert_eq!(bobs.get("shareHistoryTime"), None, "{bobs}");
    let (messages, _) = c.all_pages(&bob, &format!("{path}/messages")).await;
    let added: Vec<_> = messages
        .iter()
        .filter(|m| m["type"] == "participantAdded")
        .collect();
    assert_eq!(added.len(), 1, "no-op adds post no message: {added:?}");

    // Whom Late adds sees no more than Late does.
    c.add(&late, &path, vec![participant(&newbie, "Newbie")])
        .await
        .ok(StatusCode::CREATED);
    c.call(&newbie, Method::GET, &old, None)
        .await
        .error(StatusCode::NOT_FOUND, "MessageNotFound");

    // 3 are in; 247 more fill the thread over two calls, and then nobody else gets in.
    let mut crowd = Vec::new();
    for _ in 0..248 {
        let identity = c
            .trusted
            .create(None, IdentityKind::Human)
            .await
            .expect("an identity");
        crowd.push(json!({"communicationIdentifier": ident(&identity.id)}));
    }
    let last = crowd.pop().unwrap();
    let too_many: Vec<Value> = (0..251).map(|_| crowd[0].clone()).collect();
    c.add(&bob, &path, too_many)
        .await
        .error(StatusCode::BAD_REQUEST, "TooManyParticipants");
    c.add(&bob, &path, crowd[..200].to_vec())
        .await
        .ok(StatusCode::CREATED);
    c.add(&bob, &path, crowd[200..].to_vec())
        .await
        .ok(StatusCode::CREATED);
    let (members, _) = c.all_pages(&bob, &format!("{path}/participants")).await;
    assert_eq!(members.len(), 250);
    c.add(&bob, &path, vec![last])
        .await
        .error(StatusCode::BAD_REQUEST, "TooManyParticipants");
    c.add(&bob, &path, vec![participant(&late, "Late")])
        .await
        .ok(StatusCode::CREATED);
    let (members, _) = c.all_pages(&bob, &format!("{path}/participants")).await;
    assert_eq!(members.len(), 250, "a full thread stays full");
}

/// The event stream applies the one visibility rule, live and replayed: an event reaches an identity only if it
/// was a participant when the event happened and the message is inside its window; a removed participant hears
/// of its removal and no more; of a deleted thread only the deletion is served.
async fn events_honour_windows_and_presence(backend: Backend) {
    let c = Chat::start(backend).await;
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let late = c.user("late@contoso.com", &["chat"]).await;
    let newbie = c.user("newbie@contoso.com", &["chat"]).await;
    let mut bobs = Events::open(&c, &bob).await;
    let created = c
        .call(
            &bob,
            Method::POST,
            "/chat/threads",
            Some(json!({"topic": "History"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let path = thread_path(created["chatThread"]["id"].as_str().unwrap());
    let post = |text: &'static str| {
        let (c, bob, path) = (&c, &bob, &path);
        async move {
            let sent = c
                .call(
                    bob,
                    Method::POST,
                    &format!("{path}/messages"),
                    Some(json!({ "content": text })),
                )
                .await
                .ok(StatusCode::CREATED)
                .json();
            sent["id"].as_str().unwrap().to_owned()
        }
    };
    let edit = |id: String, text: &'static str| {
        let (c, bob, path) = (&c, &bob, &path);
        async move {
            c.call(
                bob,
                Method::PATCH,
                &format!("{path}/messages/{id}"),
                Some(json!({ "content": text })),
            )
            .await
            .ok(StatusCode::NO_CONTENT);
        }
    };
    let receipt = |id: String| {
        let (c, bob, path) = (&c, &bob, &path);
        async move {
            c.call(
                bob,
                Method::POST,
                &format!("{path}/readReceipts"),
                Some(json!({ "chatMessageId": id })),
            )
            .await
            .ok(StatusCode::OK);
        }
    };
    let old = post("old").await;
    bobs.expect("chatMessageReceived").await;

    // Late is admitted a minute later with a window from half a minute before: "old" is outside it.
    c.s.clock().advance_secs(60);
    let window = tessera_core::Timestamp::from_millis(c.s.clock().now().millis() - 30_000);
    c.add(
        &bob,
        &path,
        vec![json!({"communicationIdentifier": ident(&late.id), "shareHistoryTime": window.to_rfc3339()})],
    )
    .await
    .ok(StatusCode::CREATED);
    edit(old.clone(), "old, edited").await;
    let new = post("new").await;
    for name in ["chatMessageReceived", "chatMessageEdited", "chatMessageReceived"] {
        bobs.expect(name).await;
    }

    // Replayed from the log's start, Late gets its admission and "new": not "old", not the edit of "old".
    let mut lates = Events::resume_on(&c.s, &late, Some("0")).await;
    let admitted = lates.expect("chatMessageReceived").await;
    assert_eq!(admitted["message"]["type"], "participantAdded", "{admitted}");
    let got = lates.expect("chatMessageReceived").await;
    assert_eq!(got["message"]["id"], new.as_str(), "{got}");
    assert_eq!(
        lates.next(Duration::from_millis(500)).await,
        None,
        "nothing before the window"
    );

    // Live, the same: another edit of "old" and a receipt of it pass Late by; those of "new" reach it.
    edit(old.clone(), "old, edited again").await;
    receipt(old.clone()).await;
    edit(new.clone(), "new, edited").await;
    let got = lates.expect("chatMessageEdited").await;
    assert_eq!(got["message"]["content"]["message"], "new, edited", "{got}");
    receipt(new.clone()).await;
    assert_eq!(
        lates.expect("readReceiptReceived").await["chatMessageId"],
        new.as_str()
    );
    c.call(&late, Method::GET, &format!("{path}/messages/{old}"), None)
        .await
        .error(StatusCode::NOT_FOUND, "MessageNotFound");

    // Newbie may read the whole history, but its replay starts at its admission: it was not there before.
    c.add(&bob, &path, vec![participant(&newbie, "Newbie")])
        .await
        .ok(StatusCode::CREATED);
    c.call(&newbie, Method::GET, &format!("{path}/messages/{old}"), None)
        .await
        .ok(StatusCode::OK);
    let mut newbies = Events::resume_on(&c.s, &newbie, Some("0")).await;
    let admitted = newbies.expect("chatMessageReceived").await;
    assert_eq!(admitted["message"]["type"], "participantAdded", "{admitted}");
    assert_eq!(
        admitted["message"]["content"]["participants"][0]["communicationIdentifier"]["rawId"],
        newbie.id.as_str()
    );
    assert_eq!(newbies.next(Duration::from_millis(500)).await, None);

    // Removed, Newbie hears of its removal, then nothing more of the thread.
    c.call(
        &bob,
        Method::POST,
        &format!("{path}/participants/:remove"),
        Some(ident(&newbie.id)),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    let removed = newbies.expect("chatMessageReceived").await;
    assert_eq!(removed["message"]["type"], "participantRemoved", "{removed}");
    post("after Newbie").await;
    assert_eq!(
        lates.expect("chatMessageReceived").await["message"]["type"],
        "participantAdded"
    );
    assert_eq!(
        lates.expect("chatMessageReceived").await["message"]["type"],
        "participantRemoved"
    );
    assert_eq!(
        lates.expect("chatMessageReceived").await["message"]["content"]["message"],
        "after Newbie"
    );
    assert_eq!(newbies.next(Duration::from_millis(500)).await, None);

    // Deleted, the thread serves nothing but its deletion, live or replayed.
    c.call(&bob, Method::DELETE, &path, None)
        .await
        .ok(StatusCode::NO_CONTENT);
    lates.expect("chatThreadDeleted").await;
    for who in [&bob, &late] {
        let mut replayed = Events::resume_on(&c.s, who, Some("0")).await;
        replayed.expect("chatThreadDeleted").await;
        assert_eq!(replayed.next(Duration::from_millis(500)).await, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_honour_windows_and_presence_on_sqlite() {
    events_honour_windows_and_presence(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_honour_windows_and_presence_on_postgres() {
    events_honour_windows_and_presence(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_hold_and_threads_are_capped_on_sqlite() {
    windows_hold_and_threads_are_capped(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_hold_and_threads_are_capped_on_postgres() {
    windows_hold_and_threads_are_capped(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_participants_only_on_sqlite() {
    events_reach_participants_only(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_participants_only_on_postgres() {
    events_reach_participants_only(Backend::Postgres).await;
}

/// Two nodes on one PostgreSQL: a message posted through one reaches a subscriber of the other, and a subscriber
/// resumes on either node where its stream broke off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_on_postgres() {
    let url = tokio::task::spawn_blocking(tessera_testkit::postgres_url)
        .await
        .expect("a PostgreSQL database");
    let master_key = common::master_key();
    let node = || {
        Server::start_with(Options {
            database_url: Some(url.clone()),
            master_key: Some(master_key.clone()),
            file: FileConfig {
                public_url: Some("https://tessera.cluster.test".to_owned()),
                ..FileConfig::default()
            },
            ..Options::default()
        })
    };
    let (a, b) = (node().await, node().await);
    let account = a.create_account(&common::communication_id("chat-nodes")).await;
    let trusted = IdentityClient::new(
        Endpoint::with_client(a.base.clone(), a.client.clone()),
        account.key(),
    );
    let c = Chat { s: a, trusted };
    let bob = c.user("bob@contoso.com", &["chat"]).await;
    let sue = c.user("sue@contoso.com", &["chat"]).await;
    let mut on_b = Events::open_on(&b, &bob).await;
    let created = c
        .call(
            &bob,
            Method::POST,
            "/chat/threads",
            Some(json!({"topic": "Nodes", "participants": [participant(&sue, "Sue")]})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let path = thread_path(created["chatThread"]["id"].as_str().unwrap());
    c.call(
        &sue,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"content": "from node A"})),
    )
    .await
    .ok(StatusCode::CREATED);
    let got = on_b.expect("chatMessageReceived").await;
    assert_eq!(got["message"]["content"]["message"], "from node A");

    // Bob's stream breaks; two messages are posted meanwhile. Resuming on the other node with the last id he read,
    // he gets both, in order, then the live ones, and nothing twice.
    let seen = on_b.last_id.clone().expect("events carry their id");
    drop(on_b);
    for text in ["while away 1", "while away 2"] {
        c.call(
            &sue,
            Method::POST,
            &format!("{path}/messages"),
            Some(json!({"content": text})),
        )
        .await
        .ok(StatusCode::CREATED);
    }
    let mut resumed = Events::resume_on(&c.s, &bob, Some(&seen)).await;
    for text in ["while away 1", "while away 2"] {
        let got = resumed.expect("chatMessageReceived").await;
        assert_eq!(got["message"]["content"]["message"], text);
    }
    c.call(
        &sue,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"content": "back"})),
    )
    .await
    .ok(StatusCode::CREATED);
    let got = resumed.expect("chatMessageReceived").await;
    assert_eq!(got["message"]["content"]["message"], "back");
    assert_eq!(resumed.next(Duration::from_millis(500)).await, None, "no repeats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_by_name_on_sqlite() {
    direct_messages_by_name(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_by_name_on_postgres() {
    direct_messages_by_name(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_conversation_on_sqlite() {
    the_seed_conversation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_conversation_on_postgres() {
    the_seed_conversation(Backend::Postgres).await;
}
