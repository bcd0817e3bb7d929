//! A device's real-time chat events (Tessera's `GET /chat/events`, Server-Sent Events) as typed [`ChatEvent`]s.
//!
//! [`ChatEvents`] holds one stream open on its credential's current token and keeps it open: when the server ends
//! the stream because the token expired, or the connection breaks or goes quiet for [`IDLE`], it reconnects with a
//! fresh token from the credential and `Last-Event-ID`, so the server replays what was missed (at least once).
//! When the server says the token was revoked (or its identity deleted, its session ended), the stream ends.

use crate::credential::{AccessToken, CommunicationTokenCredential};
use crate::message::ChatMessage;
use crate::{ClientError, Endpoint, checked};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::pin::Pin;
use std::time::Duration;
use tessera_wire::chat::{
    CommunicationIdentifier, MessageEvent, ReadReceiptEvent, ThreadDeletedEvent, TypingEvent,
};
use tessera_wire::error::ErrorDetail;

/// How long a stream may stay silent (the server sends a keep-alive every 15 s) before it is taken as broken.
pub const IDLE: Duration = Duration::from_secs(45);
/// First and longest wait between failed connection attempts.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LONGEST_RETRY: Duration = Duration::from_secs(30);
/// A stream that ends sooner than this counts as a failed attempt (a server that accepts and hangs up at once
/// is not reconnected to in a loop).
const SHORTEST_STREAM: Duration = Duration::from_secs(5);

/// One chat event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// A message was posted (also system messages: topic updated, participants added or removed).
    MessageReceived {
        /// The thread.
        thread_id: String,
        /// The message.
        message: ChatMessage,
    },
    /// A message was edited.
    MessageEdited {
        /// The thread.
        thread_id: String,
        /// The message as edited.
        message: ChatMessage,
    },
    /// A message was deleted.
    MessageDeleted {
        /// The thread.
        thread_id: String,
        /// The message (`deleted` is set).
        message: ChatMessage,
    },
    /// A participant read up to a message.
    ReadReceipt {
        /// The thread.
        thread_id: String,
        /// The reader's identity id.
        reader: String,
        /// The message read.
        message_id: String,
        /// When (RFC 3339).
        read_on: String,
    },
    /// Another participant is typing.
    Typing {
        /// The thread.
        thread_id: String,
        /// The typist's identity id.
        sender: String,
        /// The typist's display name, if it gave one.
        display_name: Option<String>,
        /// When (RFC 3339).
        received_on: String,
    },
    /// A thread was deleted.
    ThreadDeleted {
        /// The thread.
        thread_id: String,
        /// When (RFC 3339).
        deleted_on: String,
    },
    /// The server could not keep up with this subscriber, or could not replay all it missed: up to `missed`
    /// events were lost (re-read the threads to catch up).
    Lagged {
        /// An upper bound of the events lost.
        missed: u64,
    },
}

impl ChatEvent {
    /// The typed event of an SSE event named `name`; `None` for a name this SDK does not know.
    fn parse(name: &str, data: &str) -> Result<Option<Self>, ClientError> {
        if name == "lagged" {
            let missed = data.trim().parse().map_err(|_| bad(name, data))?;
            return Ok(Some(Self::Lagged { missed }));
        }
        if !matches!(
            name,
            "chatMessageReceived"
                | "chatMessageEdited"
                | "chatMessageDeleted"
                | "readReceiptReceived"
                | "typingIndicatorReceived"
                | "chatThreadDeleted"
        ) {
            return Ok(None);
        }
        fn read<T: DeserializeOwned>(name: &str, data: &str) -> Result<T, ClientError> {
            serde_json::from_str(data).map_err(|_| bad(name, data))
        }
        let sender = |identifier: &CommunicationIdentifier| {
            identifier.id().map(str::to_owned).ok_or_else(|| bad(name, data))
        };
        Ok(Some(match name {
            "chatMessageReceived" | "chatMessageEdited" | "chatMessageDeleted" => {
                let MessageEvent { thread_id, message } = read(name, data)?;
                let message = message.into();
                match name {
                    "chatMessageReceived" => Self::MessageReceived { thread_id, message },
                    "chatMessageEdited" => Self::MessageEdited { thread_id, message },
                    _ => Self::MessageDeleted { thread_id, message },
                }
            }
            "readReceiptReceived" => {
                let receipt: ReadReceiptEvent = read(name, data)?;
                Self::ReadReceipt {
                    reader: sender(&receipt.sender_communication_identifier)?,
                    thread_id: receipt.thread_id,
                    message_id: receipt.chat_message_id,
                    read_on: receipt.read_on,
                }
            }
            "typingIndicatorReceived" => {
                let typing: TypingEvent = read(name, data)?;
                Self::Typing {
                    sender: sender(&typing.sender_communication_identifier)?,
                    thread_id: typing.thread_id,
                    display_name: typing.sender_display_name,
                    received_on: typing.received_on,
                }
            }
            "chatThreadDeleted" => {
                let deleted: ThreadDeletedEvent = read(name, data)?;
                Self::ThreadDeleted {
                    thread_id: deleted.thread_id,
                    deleted_on: deleted.deleted_on,
                }
            }
            _ => unreachable!("known names are matched above"),
        }))
    }
}

fn bad(name: &str, data: &str) -> ClientError {
    ClientError::UnexpectedResponse(format!("a {name} event this SDK cannot read: {data}"))
}

type SseStream = Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<ClientError>>> + Send>>;

/// The chat events of every thread the credential's identity is in, from when it was opened on; see the
/// module's documentation. Read with [`ChatEvents::next`].
///
/// A `tokenExpired` from the server, or a 401 `TokenExpired` on connection, discards the token from the
/// credential ([`CommunicationTokenCredential::discard`]), so the reconnection refreshes even when the device's
/// clock runs behind the server's.
pub struct ChatEvents {
    endpoint: Endpoint,
    credential: CommunicationTokenCredential,
    stream: Option<SseStream>,
    /// The token the open stream was opened with, and when.
    token: Option<AccessToken>,
    opened_at: Option<tokio::time::Instant>,
    last_event_id: Option<String>,
    /// The wait before the next connection attempt, after a failure.
    retry: Option<Duration>,
    ended: bool,
}

impl std::fmt::Debug for ChatEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEvents")
            .field("connected", &self.stream.is_some())
            .field("last_event_id", &self.last_event_id)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ChatEvents {
    pub(crate) fn new(endpoint: Endpoint, credential: CommunicationTokenCredential) -> Self {
        Self {
            endpoint,
            credential,
            stream: None,
            token: None,
            opened_at: None,
            last_event_id: None,
            retry: None,
            ended: false,
        }
    }

    /// Opens the stream now (the first [`next`](Self::next) would otherwise), so that no event sent from here on
    /// is missed.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next) when a connection attempt fails.
    pub async fn connect(&mut self) -> Result<(), ClientError> {
        if self.stream.is_none() {
            self.stream = Some(self.open().await?);
        }
        Ok(())
    }

    /// The open stream is over: the next attempt comes at once after a stream that lived, after a growing wait
    /// after one that did not.
    fn closed(&mut self) {
        self.stream = None;
        let lived = self.opened_at.take().map_or(Duration::ZERO, |at| at.elapsed());
        self.retry = (lived < SHORTEST_STREAM).then(|| backoff(self.retry));
    }

    /// The next event; `None` once the stream has ended for good. Cancel-safe: dropping a pending call (in a
    /// `select!`) loses no event.
    ///
    /// A failed connection attempt comes back as an error: [`ClientError::Transport`], a 5xx/429 refusal or a
    /// credential waiting out its refresh backoff is retried by the next call, after a wait that doubles from 1 s
    /// to 30 s (a stream that ends within 5 s of opening counts as a failed attempt); any other refusal (a revoked
    /// token, a token without a chat scope, a refresher's refusal) ends the stream. A
    /// `tokenRevoked` from the server ends it too, as a 401 refusal with the server's code (`TokenRevoked`,
    /// `IdentityDeleted`, `SessionEnded`, `AccountDisabled`).
    pub async fn next(&mut self) -> Option<Result<ChatEvent, ClientError>> {
        loop {
            if self.ended {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                if let Some(wait) = self.retry {
                    tokio::time::sleep(wait).await;
                }
                match self.open().await {
                    Ok(stream) => {
                        self.stream = Some(stream);
                        continue;
                    }
                    Err(e) => {
                        if retryable(&e) {
                            self.retry = Some(backoff(self.retry));
                        } else {
                            self.ended = true;
                        }
                        return Some(Err(e));
                    }
                }
            };
            let Some(Ok(event)) = stream.next().await else {
                // Ended, broken or silent: reconnect.
                self.closed();
                continue;
            };
            if !event.id.is_empty() {
                self.last_event_id = Some(event.id.clone());
            }
            match event.event.as_str() {
                "tokenExpired" => {
                    // Expired by the server's clock: the next connection refreshes, whatever the device's says.
                    self.closed();
                    if let Some(token) = self.token.take() {
                        self.credential.discard(&token).await;
                    }
                }
                "tokenRevoked" => {
                    self.stream = None;
                    self.ended = true;
                    let why =
                        serde_json::from_str::<ErrorDetail>(&event.data).unwrap_or_else(|_| ErrorDetail {
                            code: "TokenRevoked".to_owned(),
                            message: "TokenRevoked".to_owned(),
                        });
                    return Some(Err(ClientError::Refused {
                        status: 401,
                        code: why.code,
                        message: why.message,
                    }));
                }
                name => match ChatEvent::parse(name, &event.data) {
                    Ok(Some(chat_event)) => return Some(Ok(chat_event)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                },
            }
        }
    }

    /// A new stream on a current token, resuming after the last event seen. A token the server finds expired is
    /// discarded from the credential, so the next attempt refreshes.
    async fn open(&mut self) -> Result<SseStream, ClientError> {
        let token = self.credential.token().await?;
        let mut request = self
            .endpoint
            .request(Method::GET, "/chat/events")
            .bearer_auth(&token.token)
            .header("accept", "text/event-stream");
        if let Some(id) = &self.last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = match checked(request).await {
            Ok(response) => response,
            Err(e) => {
                if expired(&e) {
                    self.credential.discard(&token).await;
                }
                return Err(e);
            }
        };
        self.token = Some(token);
        self.opened_at = Some(tokio::time::Instant::now());
        // Every chunk, keep-alives included, must come within IDLE; a silence is a broken connection.
        let watched = futures::stream::unfold(response.bytes_stream(), |mut bytes| async move {
            match tokio::time::timeout(IDLE, bytes.next()).await {
                Ok(Some(chunk)) => Some((chunk.map_err(ClientError::from), bytes)),
                Ok(None) => None,
                Err(_) => Some((
                    Err(ClientError::Transport(format!(
                        "the event stream was silent for {IDLE:?}"
                    ))),
                    bytes,
                )),
            }
        });
        Ok(Box::pin(watched.eventsource()))
    }
}

/// Whether the server refused a token as expired.
fn expired(e: &ClientError) -> bool {
    matches!(e, ClientError::Refused { status: 401, code, .. } if code == "TokenExpired")
}

/// The wait after `previous`: 1 s, doubling to 30 s.
fn backoff(previous: Option<Duration>) -> Duration {
    previous.map_or(FIRST_RETRY, |wait| (wait * 2).min(LONGEST_RETRY))
}

/// Whether a failed connection attempt is worth another: anything but a refusal for good (a 4xx other than 429 and
/// an expired token). A credential waiting out its refresh backoff is retried; its refresher's refusal is not.
fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Refused { status, .. } => *status >= 500 || *status == 429 || expired(e),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_typed_and_unknown_ones_skipped() {
        let data = r#"{"threadId":"19:t@thread.v2","senderCommunicationIdentifier":{"rawId":"8:acs:a_b",
            "communicationUser":{"id":"8:acs:a_b"}},"chatMessageId":"17","readOn":"2026-12-02T10:00:00Z"}"#;
        assert_eq!(
            ChatEvent::parse("readReceiptReceived", data).unwrap(),
            Some(ChatEvent::ReadReceipt {
                thread_id: "19:t@thread.v2".into(),
                reader: "8:acs:a_b".into(),
                message_id: "17".into(),
                read_on: "2026-12-02T10:00:00Z".into(),
            })
        );
        assert_eq!(
            ChatEvent::parse("lagged", "12").unwrap(),
            Some(ChatEvent::Lagged { missed: 12 })
        );
        assert_eq!(ChatEvent::parse("somethingNew", "{}").unwrap(), None);
        assert!(matches!(
            ChatEvent::parse("chatThreadDeleted", r#"{"threadId":"19:t@thread.v2"}"#),
            Err(ClientError::UnexpectedResponse(_))
        ));
    }

    #[test]
    fn only_passing_failures_are_retried() {
        let refused = |status| ClientError::Refused {
            status,
            code: String::new(),
            message: String::new(),
        };
        assert!(retryable(&ClientError::Transport("reset".into())));
        assert!(retryable(&refused(503)) && retryable(&refused(429)));
        assert!(!retryable(&refused(401)) && !retryable(&refused(403)));
        let expired = ClientError::Refused {
            status: 401,
            code: "TokenExpired".into(),
            message: String::new(),
        };
        assert!(retryable(&expired), "retried with a refreshed token");
        assert!(retryable(&ClientError::TokenExpired(
            "refresh backing off".into()
        )));
        assert_eq!(backoff(None), FIRST_RETRY);
        assert_eq!(backoff(Some(Duration::from_secs(16))), LONGEST_RETRY);
        assert_eq!(backoff(Some(LONGEST_RETRY)), LONGEST_RETRY);
    }
}
