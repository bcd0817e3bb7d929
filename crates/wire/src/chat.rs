//! Chat on the ACS Chat wire (docs/wire.md §4) as Tessera answers it: identifiers, participants, threads, messages,
//! the answers a device reads back, and the data of each real-time event of `GET /chat/events`. Times are RFC 3339
//! strings, as ACS writes them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An identity as ACS names one. Tessera answers `kind`, `rawId` and `communicationUser.id`, the two ids equal; a
/// request may carry either id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationIdentifier {
    /// `communicationUser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The identity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_id: Option<String>,
    /// The identity id again, as a Communication user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication_user: Option<CommunicationUser>,
}

/// A Communication user's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunicationUser {
    /// The identity id (`8:acs:…`).
    pub id: String,
}

impl CommunicationIdentifier {
    /// The identifier of the identity `id`, as Tessera answers it.
    pub fn user(id: &str) -> Self {
        Self {
            kind: Some("communicationUser".to_owned()),
            raw_id: Some(id.to_owned()),
            communication_user: Some(CommunicationUser { id: id.to_owned() }),
        }
    }

    /// The identity id it names: `rawId`, else `communicationUser.id`.
    pub fn id(&self) -> Option<&str> {
        self.raw_id
            .as_deref()
            .or(self.communication_user.as_ref().map(|u| u.id.as_str()))
    }
}

/// A participant of a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatParticipant {
    /// Who.
    pub communication_identifier: CommunicationIdentifier,
    /// The name shown for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// From when they may read the thread's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_history_time: Option<String>,
}

/// A thread's properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatThreadProperties {
    /// `19:…@thread.v2`.
    pub id: String,
    /// Its topic.
    pub topic: String,
    /// When it was created.
    pub created_on: String,
    /// Who created it.
    pub created_by_communication_identifier: CommunicationIdentifier,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Its id, increasing within the thread.
    pub id: String,
    /// `text`, `html`, or a system type (`topicUpdated`, `participantAdded`, `participantRemoved`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its place in the thread.
    pub sequence_id: String,
    /// Its version, bumped by an edit.
    pub version: String,
    /// What it says.
    pub content: ChatMessageContent,
    /// When it was posted.
    pub created_on: String,
    /// Who sent it (none for a system message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_communication_identifier: Option<CommunicationIdentifier>,
    /// The sender's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_display_name: Option<String>,
    /// The sender's metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When it was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_on: Option<String>,
    /// When it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_on: Option<String>,
}

/// A message's content: its text, or what a system message says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessageContent {
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The new topic (`topicUpdated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Who was added or removed (`participantAdded`, `participantRemoved`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<ChatParticipant>,
    /// Who added or removed them, or changed the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_communication_identifier: Option<CommunicationIdentifier>,
}

/// A participant a request named that was not admitted (`target` is its raw id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidParticipant {
    /// Why, as ACS writes it (`"404"`).
    pub code: String,
    /// What the caller is told.
    pub message: String,
    /// The raw id it named.
    pub target: String,
}

/// `POST /chat/threads` (201): the thread, and the participants not admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedThread {
    /// The thread.
    pub chat_thread: ChatThreadProperties,
    /// The participants not admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_participants: Vec<InvalidParticipant>,
}

/// `POST …/participants/:add` (201): the participants not admitted, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddedParticipants {
    /// The participants not admitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_participants: Vec<InvalidParticipant>,
}

/// `POST …/messages` (201): the new message's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Its id.
    pub id: String,
}

/// `POST /chat/direct` (201, Tessera's own): the pair's direct thread and the new message's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentDirectMessage {
    /// The direct thread.
    pub chat_thread_id: String,
    /// The message's id.
    pub id: String,
}

/// `GET …/messages`: a page of messages, newest first, and the link to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// The messages.
    pub value: Vec<ChatMessage>,
    /// The next page, relative, with its own `api-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// The data of `chatMessageReceived`, `chatMessageEdited` and `chatMessageDeleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent {
    /// The thread.
    pub thread_id: String,
    /// The message as it is now.
    pub message: ChatMessage,
}

/// The data of `readReceiptReceived`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReceiptEvent {
    /// The thread.
    pub thread_id: String,
    /// Who read.
    pub sender_communication_identifier: CommunicationIdentifier,
    /// Up to which message.
    pub chat_message_id: String,
    /// When.
    pub read_on: String,
}

/// The data of `typingIndicatorReceived`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingEvent {
    /// The thread.
    pub thread_id: String,
    /// Who is typing.
    pub sender_communication_identifier: CommunicationIdentifier,
    /// Their display name (`null` when they gave none).
    pub sender_display_name: Option<String>,
    /// When.
    pub received_on: String,
}

/// The data of `chatThreadDeleted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadDeletedEvent {
    /// The thread.
    pub thread_id: String,
    /// When.
    pub deleted_on: String,
}
