//! A chat message as the SDK gives it, from the REST API and the event stream alike.

use tessera_wire::chat as wire;

/// A message as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Its id (increasing within the thread).
    pub id: String,
    /// `text`, `html`, or a system type (`topicUpdated`, `participantAdded`, `participantRemoved`).
    pub kind: String,
    /// Its place in the thread.
    pub sequence_id: String,
    /// The text (none for system messages and deleted ones).
    pub content: Option<String>,
    /// The sender's identity id (none for system messages).
    pub sender: Option<String>,
    /// The sender's display name.
    pub sender_display_name: Option<String>,
    /// When it was posted (RFC 3339).
    pub created_on: String,
    /// Whether it was deleted.
    pub deleted: bool,
}

impl From<wire::ChatMessage> for ChatMessage {
    fn from(message: wire::ChatMessage) -> Self {
        Self {
            sender: message
                .sender_communication_identifier
                .as_ref()
                .and_then(|s| s.id())
                .map(str::to_owned),
            deleted: message.deleted_on.is_some(),
            id: message.id,
            kind: message.kind,
            sequence_id: message.sequence_id,
            content: message.content.message,
            sender_display_name: message.sender_display_name,
            created_on: message.created_on,
        }
    }
}
