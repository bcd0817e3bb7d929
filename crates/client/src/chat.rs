//! A device's chat client: the ACS Chat wire (api-version 2024-03-07) and Tessera's direct messages by name, with
//! the token of a [`CommunicationTokenCredential`] on every request (refreshed by it when due).

use crate::credential::CommunicationTokenCredential;
use crate::events::ChatEvents;
use crate::message::ChatMessage;
use crate::{ClientError, Endpoint, checked, json, segment};
use reqwest::Method;
use serde_json::json as body;
use tessera_wire::chat::{
    self as wire, AddedParticipants, ChatParticipant, CommunicationIdentifier, CreatedThread,
    InvalidParticipant, MessagePage, SentDirectMessage, SentMessage,
};

/// The Chat API version this client speaks.
pub const CHAT_API_VERSION: &str = "2024-03-07";
/// Page size the client asks for when listing.
const PAGE: u32 = 100;

/// A thread's properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatThread {
    /// `19:…@thread.v2`.
    pub id: String,
    /// Its topic.
    pub topic: String,
    /// Its creator's identity id.
    pub created_by: String,
}

impl From<wire::ChatThreadProperties> for ChatThread {
    fn from(thread: wire::ChatThreadProperties) -> Self {
        Self {
            created_by: thread
                .created_by_communication_identifier
                .id()
                .unwrap_or_default()
                .to_owned(),
            id: thread.id,
            topic: thread.topic,
        }
    }
}

/// An identifier as a request names one: both ids.
fn identifier(id: &str) -> CommunicationIdentifier {
    CommunicationIdentifier {
        kind: None,
        ..CommunicationIdentifier::user(id)
    }
}

/// Participants to add, by identity id.
fn participants(ids: &[&str]) -> Vec<ChatParticipant> {
    ids.iter()
        .map(|id| ChatParticipant {
            communication_identifier: identifier(id),
            display_name: None,
            share_history_time: None,
        })
        .collect()
}

/// The raw ids of participants the server did not admit.
fn targets(refused: Vec<InvalidParticipant>) -> Vec<String> {
    refused.into_iter().map(|p| p.target).collect()
}

/// Chat as one identity, the holder of `credential`.
#[derive(Debug, Clone)]
pub struct ChatClient {
    endpoint: Endpoint,
    credential: CommunicationTokenCredential,
}

impl ChatClient {
    /// A client sending `credential`'s token.
    pub fn new(endpoint: Endpoint, credential: CommunicationTokenCredential) -> Self {
        Self { endpoint, credential }
    }

    /// A request to `path` (with the api-version) carrying the current token.
    async fn request(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        let token = self.credential.token().await?;
        let sep = if path.contains('?') { '&' } else { '?' };
        Ok(self
            .endpoint
            .request(method, &format!("{path}{sep}api-version={CHAT_API_VERSION}"))
            .bearer_auth(token.token))
    }

    fn thread_path(thread: &str) -> String {
        format!("/chat/threads/{}", segment(thread))
    }

    /// Creates a thread with the caller and `participants` (identity ids); the request carries a fresh
    /// `repeatability-request-id`. Returns the thread and the ids the server refused.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`MissingScope` without `chat`/`chat:manage_threads`, `InvalidTopic`, …).
    pub async fn create_thread(
        &self,
        topic: &str,
        participants: &[&str],
    ) -> Result<(ChatThread, Vec<String>), ClientError> {
        let participants = self::participants(participants);
        let request = self
            .request(Method::POST, "/chat/threads")
            .await?
            .header("repeatability-request-id", uuid::Uuid::new_v4().to_string())
            .json(&body!({"topic": topic, "participants": participants}));
        let created: CreatedThread = json(request).await?;
        Ok((created.chat_thread.into(), targets(created.invalid_participants)))
    }

    /// A thread's properties.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (404 `ThreadNotFound`, 403 `NotAParticipant`).
    pub async fn thread(&self, thread: &str) -> Result<ChatThread, ClientError> {
        let thread: wire::ChatThreadProperties =
            json(self.request(Method::GET, &Self::thread_path(thread)).await?).await?;
        Ok(thread.into())
    }

    /// Sends a text message; returns its id.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`InvalidMessage`, `NotAParticipant`, …).
    pub async fn send(
        &self,
        thread: &str,
        content: &str,
        display_name: Option<&str>,
    ) -> Result<String, ClientError> {
        let mut message = body!({"content": content, "type": "text"});
        if let Some(name) = display_name {
            message["senderDisplayName"] = name.into();
        }
        let path = format!("{}/messages", Self::thread_path(thread));
        let sent: SentMessage = json(self.request(Method::POST, &path).await?.json(&message)).await?;
        Ok(sent.id)
    }

    /// Sends a text message to the identity called `to`, in the pair's direct thread (Tessera's
    /// `POST /chat/direct`); returns the thread id and the message id.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`RecipientNotFound`, `MissingScope` when a thread would be needed and the token
    /// may not create one, …).
    pub async fn send_direct(&self, to: &str, content: &str) -> Result<(String, String), ClientError> {
        let token = self.credential.token().await?;
        let request = self
            .endpoint
            .request(Method::POST, "/chat/direct")
            .bearer_auth(token.token)
            .json(&body!({"to": to, "content": content}));
        let sent: SentDirectMessage = json(request).await?;
        Ok((sent.chat_thread_id, sent.id))
    }

    /// The thread's messages, newest first, at most `limit`, following `nextLink` across pages.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`NotAParticipant`, …).
    pub async fn messages(&self, thread: &str, limit: usize) -> Result<Vec<ChatMessage>, ClientError> {
        let mut messages = Vec::new();
        let first = format!("{}/messages?maxPageSize={PAGE}", Self::thread_path(thread));
        let mut page: MessagePage = json(self.request(Method::GET, &first).await?).await?;
        loop {
            for item in page.value {
                if messages.len() == limit {
                    return Ok(messages);
                }
                messages.push(item.into());
            }
            let Some(next) = page.next_link else {
                return Ok(messages);
            };
            // The link carries its own api-version; it is sent as given, with a current token.
            let token = self.credential.token().await?;
            page = json(self.endpoint.request(Method::GET, &next).bearer_auth(token.token)).await?;
        }
    }

    /// Adds participants (identity ids); returns the ids the server refused.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`MissingScope` for `chat.join.limited`, `NotAParticipant`, …).
    pub async fn add_participants(&self, thread: &str, ids: &[&str]) -> Result<Vec<String>, ClientError> {
        let path = format!("{}/participants/:add", Self::thread_path(thread));
        let answer: AddedParticipants = json(
            self.request(Method::POST, &path)
                .await?
                .json(&body!({"participants": participants(ids)})),
        )
        .await?;
        Ok(targets(answer.invalid_participants))
    }

    /// Removes a participant.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`ParticipantNotFound`, `MissingScope`, …).
    pub async fn remove_participant(&self, thread: &str, id: &str) -> Result<(), ClientError> {
        let path = format!("{}/participants/:remove", Self::thread_path(thread));
        checked(self.request(Method::POST, &path).await?.json(&identifier(id)))
            .await
            .map(drop)
    }

    /// The real-time events of every thread this identity is in (messages, edits, deletions, read receipts,
    /// typing, thread deletions), on this client's credential; see [`ChatEvents`].
    pub fn events(&self) -> ChatEvents {
        ChatEvents::new(self.endpoint.clone(), self.credential.clone())
    }

    /// Deletes a thread for everyone.
    ///
    /// # Errors
    ///
    /// [`ClientError::Refused`] (`MissingScope`, `NotAParticipant`, `ThreadNotFound`).
    pub async fn delete_thread(&self, thread: &str) -> Result<(), ClientError> {
        checked(self.request(Method::DELETE, &Self::thread_path(thread)).await?)
            .await
            .map(drop)
    }
}
