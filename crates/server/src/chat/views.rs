//! How chat answers look on the ACS Chat wire (docs/wire.md §4): identifiers, participants, threads and
//! messages, as the REST API and the event stream both show them.

use serde_json::{Value, json};
use tessera_core::Timestamp;
use tessera_core::chat::{Message, Participant, Thread};
use tessera_core::identity::IdentityId;

/// An identity as ACS answers one: `kind`, `rawId` and `communicationUser.id`, the two ids equal.
pub(crate) fn identifier(id: &IdentityId) -> Value {
    json!({"kind": "communicationUser", "rawId": id.as_str(), "communicationUser": {"id": id.as_str()}})
}

/// A participant as ACS answers one.
pub(crate) fn participant_view(p: &Participant) -> Value {
    let mut v = json!({"communicationIdentifier": identifier(&p.identity)});
    if let Some(name) = &p.display_name {
        v["displayName"] = name.clone().into();
    }
    if let Some(from) = p.share_history_from {
        v["shareHistoryTime"] = time(from);
    }
    v
}

/// A thread's properties as ACS answers them.
pub(crate) fn thread_properties(t: &Thread) -> Value {
    json!({
        "id": t.id.as_str(),
        "topic": t.topic,
        "createdOn": time(t.created_at),
        "createdByCommunicationIdentifier": identifier(&t.created_by),
    })
}

/// A message as the REST API and the event stream show it.
pub(crate) fn message_view(m: &Message) -> Value {
    let body = &m.body;
    let mut content = json!({});
    if let Some(text) = &body.content.message {
        content["message"] = text.clone().into();
    }
    if let Some(topic) = &body.content.topic {
        content["topic"] = topic.clone().into();
    }
    if !body.content.participants.is_empty() {
        content["participants"] = body.content.participants.iter().map(participant_view).collect();
    }
    if let Some(initiator) = &body.content.initiator {
        content["initiatorCommunicationIdentifier"] = identifier(initiator);
    }
    let mut v = json!({
        "id": m.id.to_string(),
        "type": body.kind.as_str(),
        "sequenceId": m.sequence_id.to_string(),
        "version": m.version.to_string(),
        "content": content,
        "createdOn": time(m.created_at),
    });
    if let Some(sender) = &body.sender {
        v["senderCommunicationIdentifier"] = identifier(sender);
    }
    if let Some(name) = &body.sender_display_name {
        v["senderDisplayName"] = name.clone().into();
    }
    if !body.metadata.is_empty() {
        v["metadata"] = json!(body.metadata);
    }
    if let Some(at) = m.edited_at {
        v["editedOn"] = time(at);
    }
    if let Some(at) = m.deleted_at {
        v["deletedOn"] = time(at);
    }
    v
}

/// A time as ACS writes one (RFC 3339).
pub(crate) fn time(t: Timestamp) -> Value {
    t.to_rfc3339().into()
}
