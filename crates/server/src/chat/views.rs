//! How chat answers look on the ACS Chat wire (docs/wire.md §4): identifiers, participants, threads and
//! messages, as the REST API and the event stream both show them (the types are `tessera_wire::chat`'s).

use tessera_core::Timestamp;
use tessera_core::chat::{Message, Participant, Thread};
use tessera_core::identity::IdentityId;
use tessera_wire::chat::{
    ChatMessage, ChatMessageContent, ChatParticipant, ChatThreadProperties, CommunicationIdentifier,
};

/// An identity as ACS answers one: `kind`, `rawId` and `communicationUser.id`, the two ids equal.
pub(crate) fn identifier(id: &IdentityId) -> CommunicationIdentifier {
    CommunicationIdentifier::user(id.as_str())
}

/// A participant as ACS answers one.
pub(crate) fn participant_view(p: &Participant) -> ChatParticipant {
    ChatParticipant {
        communication_identifier: identifier(&p.identity),
        display_name: p.display_name.clone(),
        share_history_time: p.share_history_from.map(time),
    }
}

/// A thread's properties as ACS answers them.
pub(crate) fn thread_properties(t: &Thread) -> ChatThreadProperties {
    ChatThreadProperties {
        id: t.id.as_str().to_owned(),
        topic: t.topic.clone(),
        created_on: time(t.created_at),
        created_by_communication_identifier: identifier(&t.created_by),
    }
}

/// A message as the REST API and the event stream show it.
pub(crate) fn message_view(m: &Message) -> ChatMessage {
    let body = &m.body;
    ChatMessage {
        id: m.id.to_string(),
        kind: body.kind.as_str().to_owned(),
        sequence_id: m.sequence_id.to_string(),
        version: m.version.to_string(),
        content: ChatMessageContent {
            message: body.content.message.clone(),
            topic: body.content.topic.clone(),
            participants: body.content.participants.iter().map(participant_view).collect(),
            initiator_communication_identifier: body.content.initiator.as_ref().map(identifier),
        },
        created_on: time(m.created_at),
        sender_communication_identifier: body.sender.as_ref().map(identifier),
        sender_display_name: body.sender_display_name.clone(),
        metadata: body.metadata.clone(),
        edited_on: m.edited_at.map(time),
        deleted_on: m.deleted_at.map(time),
    }
}

/// A time as ACS writes one (RFC 3339).
pub(crate) fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}
