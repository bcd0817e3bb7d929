//! Chat (ACS Chat, docs/wire.md §4): thread ids, messages and their limits, and who may do what in a thread.
//!
//! - **Threads** ([`Thread`]) belong to one account; [`Participant`]s read and write them. They are named `19:<32 lowercase hex>@thread.v2`, ACS's form, made from a random UUID.
//! - **Messages** get ids that are decimal strings, strictly increasing within a thread and equal to the creation
//!   time in milliseconds unless a thread's previous message already took that millisecond ([`next_message_id`]);
//!   `sequenceId` counts a thread's messages from 1. An edit's `version` is made the same way from the message's
//!   previous version.
//! - **Direct messages** by name go to the pair's direct thread, whose id both sides compute
//!   ([`direct_thread_id`]).
//! - **Authorization** is one table, [`ChatAction::rule`]: the [`Capability`] the token's scopes must grant, and
//!   whether the caller must be a participant of the thread. [`authorize`] applies it; nothing else decides.
//!   Editing and deleting a message is further the sender's alone ([`check_own_message`]).
//! - **Visibility** is one rule for every way a participant learns of a message: REST reads and read receipts
//!   apply [`in_window`]; the event stream, live or replayed, applies [`event_reaches`], which adds that the
//!   identity was a participant when the event happened.

use crate::error::DomainError;
use crate::identity::IdentityId;
use crate::scope::{Capability, ScopeSet};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use uuid::Uuid;

/// Longest thread topic, characters.
pub const MAX_TOPIC_CHARS: usize = 250;
/// Largest message content, bytes of UTF-8 (ACS's limit is 28 KiB).
pub const MAX_CONTENT_BYTES: usize = 28 * 1024;
/// Longest display name of a sender or participant, characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// Most metadata entries on one message.
pub const MAX_METADATA_ENTRIES: usize = 32;
/// Longest metadata key or value, characters.
pub const MAX_METADATA_CHARS: usize = 1024;
/// Most participants one thread may have (ACS's limit).
pub const MAX_PARTICIPANTS: usize = 250;

/// A thread's id, `19:<32 lowercase hex>@thread.v2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadId(String);

impl ThreadId {
    /// A new thread's id from a random UUID.
    pub fn new(random: Uuid) -> Self {
        Self(format!("19:{}@thread.v2", random.simple()))
    }

    /// Parses an id as Tessera makes them; anything else names no thread.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let hex = raw.strip_prefix("19:").and_then(|r| r.strip_suffix("@thread.v2"));
        match hex {
            Some(h)
                if h.len() == 32
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(DomainError::InvalidThreadId(raw.chars().take(80).collect())),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many direct threads one pair of identities may go through (each deleted one moves them to the next).
pub const MAX_DIRECT_THREADS: u32 = 16;

/// The id of the `attempt`-th direct (1:1) thread between `a` and `b`, the same whichever of them asks: found or
/// created by id, so that two first messages racing on two nodes meet in one thread. A deleted direct thread is
/// followed by the next attempt's.
pub fn direct_thread_id(a: &IdentityId, b: &IdentityId, attempt: u32) -> ThreadId {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let seed = format!(
        "tessera direct thread\n{}\n{}\n{attempt}",
        low.as_str(),
        high.as_str()
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    ThreadId::new(Uuid::from_bytes(bytes))
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A chat thread of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Its id.
    pub id: ThreadId,
    /// The account whose identities chat in it.
    pub account: Uuid,
    /// Its topic.
    pub topic: String,
    /// The identity that created it.
    pub created_by: IdentityId,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was deleted (a deleted thread is gone for everyone).
    pub deleted_at: Option<Timestamp>,
    /// When its last message (of any type) was posted.
    pub last_message_at: Option<Timestamp>,
}

/// A thread participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// The identity.
    pub identity: IdentityId,
    /// How it is shown in the thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The earliest messages it may read (none: every message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_history_from: Option<Timestamp>,
}

/// What a message holds: text for `text`/`html`, the new topic for `topicUpdated`, the participants and who
/// acted for `participantAdded`/`participantRemoved` (ACS's `content` object).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageContent {
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The new topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The participants added or removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// Who added or removed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<IdentityId>,
}

/// A message to post; the store gives it its id, sequence id and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Its type.
    pub kind: MessageType,
    /// Its sender (none for system messages).
    pub sender: Option<IdentityId>,
    /// The sender's display name.
    pub sender_display_name: Option<String>,
    /// Its content.
    pub content: MessageContent,
    /// The sender's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A posted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its thread.
    pub thread: ThreadId,
    /// Its id, unique and increasing within the thread ([`next_message_id`]).
    pub id: u64,
    /// Its place in the thread, counting from 1.
    pub sequence_id: u64,
    /// Its version: its id, then a new one with each edit.
    pub version: u64,
    /// Its type, sender, display name, content and metadata.
    pub body: NewMessage,
    /// When it was posted.
    pub created_at: Timestamp,
    /// When it was last edited.
    pub edited_at: Option<Timestamp>,
    /// When it was deleted (its content is gone).
    pub deleted_at: Option<Timestamp>,
}

/// What a chat event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatEventKind {
    /// A message was posted (a participant's, or a system message for a topic or participant change).
    MessageReceived,
    /// A message was edited.
    MessageEdited,
    /// A message was deleted.
    MessageDeleted,
    /// A participant read up to a message.
    ReadReceiptReceived,
    /// A participant is typing.
    TypingIndicatorReceived,
    /// The thread was deleted.
    ChatThreadDeleted,
}

impl ChatEventKind {
    const ALL: [Self; 6] = [
        Self::MessageReceived,
        Self::MessageEdited,
        Self::MessageDeleted,
        Self::ReadReceiptReceived,
        Self::TypingIndicatorReceived,
        Self::ChatThreadDeleted,
    ];

    /// The name events carry (ACS's real-time event names).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "chatMessageReceived",
            Self::MessageEdited => "chatMessageEdited",
            Self::MessageDeleted => "chatMessageDeleted",
            Self::ReadReceiptReceived => "readReceiptReceived",
            Self::TypingIndicatorReceived => "typingIndicatorReceived",
            Self::ChatThreadDeleted => "chatThreadDeleted",
        }
    }

    /// A kind by its name (as stored).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Something that happened in a thread, in the order of `seq` (the store's), for real-time delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEvent {
    /// Its place in the store's event log.
    pub seq: i64,
    /// The thread.
    pub thread: ThreadId,
    /// What happened.
    pub kind: ChatEventKind,
    /// The message concerned, if any.
    pub message: Option<u64>,
    /// The identity that acted (reader, typist), if not the message's sender.
    pub identity: Option<IdentityId>,
    /// The typist's display name.
    pub display_name: Option<String>,
    /// When it happened.
    pub at: Timestamp,
}

/// A message's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Plain text, sent by a participant.
    Text,
    /// HTML, sent by a participant.
    Html,
    /// The topic changed (system).
    TopicUpdated,
    /// Participants were added (system).
    ParticipantAdded,
    /// A participant was removed (system).
    ParticipantRemoved,
}

impl MessageType {
    const ALL: [Self; 5] = [
        Self::Text,
        Self::Html,
        Self::TopicUpdated,
        Self::ParticipantAdded,
        Self::ParticipantRemoved,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Html => "html",
            Self::TopicUpdated => "topicUpdated",
            Self::ParticipantAdded => "participantAdded",
            Self::ParticipantRemoved => "participantRemoved",
        }
    }

    /// Any type by its wire name (as stored).
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// The type of a message a participant sends: `text` (also when absent) or `html`; the system types are
    /// Tessera's to write.
    pub fn sendable(raw: Option<&str>) -> Result<Self, DomainError> {
        match raw.map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => Ok(Self::Text),
            Some("html") => Ok(Self::Html),
            Some(_) => Err(DomainError::InvalidChatMessage(
                "type must be text or html".to_owned(),
            )),
        }
    }
}

/// The id after `last` for a message or version created at `now`: `now` in milliseconds, or `last + 1` when that
/// is not later.
pub fn next_message_id(last: Option<u64>, now: Timestamp) -> u64 {
    let now = u64::try_from(now.millis()).unwrap_or(0);
    last.map_or(now, |last| now.max(last.saturating_add(1)))
}

/// Checks a thread topic: 1 to [`MAX_TOPIC_CHARS`] characters, no control characters.
pub fn check_topic(topic: &str) -> Result<(), DomainError> {
    let count = topic.chars().count();
    if count == 0 || count > MAX_TOPIC_CHARS || topic.chars().any(char::is_control) {
        return Err(DomainError::InvalidTopic(format!(
            "a topic is 1 to {MAX_TOPIC_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// Checks a display name (of a sender or a participant): at most [`MAX_DISPLAY_NAME_CHARS`] characters, no
/// control characters.
pub fn check_display_name(name: &str) -> Result<(), DomainError> {
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(DomainError::InvalidChatMessage(format!(
            "a display name is at most {MAX_DISPLAY_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

/// Checks what a participant sends or edits: content of 1 to [`MAX_CONTENT_BYTES`] bytes, and metadata within
/// [`MAX_METADATA_ENTRIES`] entries of [`MAX_METADATA_CHARS`] characters.
pub fn check_message(content: &str, metadata: &BTreeMap<String, String>) -> Result<(), DomainError> {
    if content.is_empty() || content.len() > MAX_CONTENT_BYTES {
        return Err(DomainError::InvalidChatMessage(format!(
            "content is 1 to {MAX_CONTENT_BYTES} bytes of UTF-8 (this one is {})",
            content.len()
        )));
    }
    let too_long = |s: &String| s.chars().count() > MAX_METADATA_CHARS;
    if metadata.len() > MAX_METADATA_ENTRIES
        || metadata
            .iter()
            .any(|(k, v)| k.is_empty() || too_long(k) || too_long(v))
    {
        return Err(DomainError::InvalidChatMessage(format!(
            "metadata holds at most {MAX_METADATA_ENTRIES} entries, with non-empty keys and keys and values of at \
             most {MAX_METADATA_CHARS} characters"
        )));
    }
    Ok(())
}

/// Something a token's holder asks to do in chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatAction {
    /// Create a thread (its creator becomes a participant).
    CreateThread,
    /// List the threads the identity is in.
    ListThreads,
    /// Read a thread: its properties, messages, participants and read receipts.
    ReadThread,
    /// Change a thread's topic.
    UpdateTopic,
    /// Delete a thread.
    DeleteThread,
    /// Send a message; edit or delete one's own.
    WriteMessage,
    /// Send a read receipt or a typing notification.
    SignalActivity,
    /// Add participants.
    AddParticipants,
    /// Remove a participant (oneself included).
    RemoveParticipant,
    /// Receive a thread's events as they happen.
    Subscribe,
}

/// What an action needs: a capability of the token's scopes, and whether the caller must be in the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatRule {
    /// The capability the scopes must grant.
    pub capability: Capability,
    /// Whether the caller must be a participant of the thread.
    pub participant: bool,
}

impl ChatAction {
    /// The one table of chat authorization.
    ///
    /// | action | capability | participant |
    /// |---|---|---|
    /// | create a thread | manage threads | – |
    /// | list one's threads | send messages | – |
    /// | read a thread | send messages | ✓ |
    /// | change the topic | manage threads | ✓ |
    /// | delete a thread | manage threads | ✓ |
    /// | send, edit, delete messages | send messages | ✓ |
    /// | read receipts, typing | send messages | ✓ |
    /// | add participants | manage participants | ✓ |
    /// | remove a participant | manage participants | ✓ |
    /// | subscribe to events | send messages | – (each event goes to the thread's participants only) |
    pub const fn rule(self) -> ChatRule {
        use Capability::{ManageParticipants, ManageThreads, SendMessages};
        let (capability, participant) = match self {
            Self::CreateThread => (ManageThreads, false),
            Self::ListThreads | Self::Subscribe => (SendMessages, false),
            Self::ReadThread | Self::WriteMessage | Self::SignalActivity => (SendMessages, true),
            Self::UpdateTopic | Self::DeleteThread => (ManageThreads, true),
            Self::AddParticipants | Self::RemoveParticipant => (ManageParticipants, true),
        };
        ChatRule {
            capability,
            participant,
        }
    }

    /// Words for error messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::CreateThread => "create a thread",
            Self::ListThreads => "list threads",
            Self::ReadThread => "read this thread",
            Self::UpdateTopic => "change the topic",
            Self::DeleteThread => "delete this thread",
            Self::WriteMessage => "write messages",
            Self::SignalActivity => "send read receipts and typing notifications",
            Self::AddParticipants => "add participants",
            Self::RemoveParticipant => "remove participants",
            Self::Subscribe => "receive chat events",
        }
    }
}

/// Whether a token with `scopes`, whose identity is (`participant`) or is not in the thread, may do `action`.
pub fn authorize(scopes: ScopeSet, action: ChatAction, participant: bool) -> Result<(), DomainError> {
    let rule = action.rule();
    if !scopes.allows(rule.capability) {
        return Err(DomainError::ChatScopeMissing(action.describe()));
    }
    if rule.participant && !participant {
        return Err(DomainError::NotAParticipant);
    }
    Ok(())
}

/// The history window a participant is admitted with, `requested` by `adder` (the participant adding it, with
/// its own window): never wider than the adder's own, since nobody may share history it cannot read itself. A
/// window is set once, at admission: adding someone who already participates changes nothing of theirs (the
/// store keeps the first admission), so no participant can widen its own window or change another's.
pub fn admitted_window(adder: Option<Timestamp>, requested: Option<Timestamp>) -> Option<Timestamp> {
    match (adder, requested) {
        (Some(own), Some(asked)) => Some(own.max(asked)),
        (own, asked) => own.or(asked),
    }
}

/// Whether a participant whose history starts at `window` (none: the whole history) may read a message created
/// at `created_at`.
pub fn in_window(window: Option<Timestamp>, created_at: Timestamp) -> bool {
    window.is_none_or(|from| created_at >= from)
}

/// Where a page of an identity's threads continues (`continuationToken`): after the thread `thread` whose latest
/// activity was `at`, still listing from `since`. Written `<at ms>.<thread's 32 hex>[.<since ms>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsCursor {
    /// The last listed thread's activity.
    pub at: Timestamp,
    /// The last listed thread.
    pub thread: ThreadId,
    /// The list's start time.
    pub since: Option<Timestamp>,
}

impl ThreadsCursor {
    /// Parses a cursor this service wrote; anything else is `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let at = Timestamp::from_millis(parts.next()?.parse().ok()?);
        let hex = parts.next()?;
        let thread = ThreadId::parse(&format!("19:{hex}@thread.v2")).ok()?;
        let since = parts
            .next()
            .map(|s| s.parse().map(Timestamp::from_millis))
            .transpose()
            .ok()?;
        parts.next().is_none().then_some(Self { at, thread, since })
    }

    /// The cursor as written.
    pub fn encode(&self) -> String {
        let hex = &self.thread.as_str()[3..35];
        match self.since {
            Some(since) => format!("{}.{hex}.{}", self.at.millis(), since.millis()),
            None => format!("{}.{hex}", self.at.millis()),
        }
    }
}

/// Where a page of a thread's messages (newest first) continues: below message `before`, still from `since`.
/// Written `<before>[.<since ms>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagesCursor {
    /// The last listed message's id.
    pub before: u64,
    /// The list's start time.
    pub since: Option<Timestamp>,
}

impl MessagesCursor {
    /// Parses a cursor this service wrote; anything else is `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let before = parts.next()?.parse().ok()?;
        let since = parts
            .next()
            .map(|s| s.parse().map(Timestamp::from_millis))
            .transpose()
            .ok()?;
        parts.next().is_none().then_some(Self { before, since })
    }

    /// The cursor as written.
    pub fn encode(&self) -> String {
        match self.since {
            Some(since) => format!("{}.{}", self.before, since.millis()),
            None => self.before.to_string(),
        }
    }
}

/// The position in the chat event log a `Last-Event-ID` names: a non-negative decimal (what the stream sent as
/// `id`), surrounding spaces allowed; anything else is `None`.
pub fn parse_last_event_id(raw: &str) -> Option<i64> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    trimmed.parse().ok()
}

/// A participant as the event stream sees it: when it was admitted, and its history window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The identity.
    pub identity: IdentityId,
    /// The earliest messages it may read (none: every message).
    pub share_history_from: Option<Timestamp>,
    /// When it was (last) added to the thread.
    pub added_at: Timestamp,
}

/// Whether an event that happened `at` reaches `member`: only if it was a participant then, and, for an event
/// about a message created at `message_at` (a post, an edit, a deletion, a read receipt), only if the message is
/// inside its window. So a late joiner replaying the log learns nothing from before it joined, and an edit of a
/// message before its window is as invisible live as the message is to `GET`.
pub fn event_reaches(member: &Member, at: Timestamp, message_at: Option<Timestamp>) -> bool {
    member.added_at <= at && message_at.is_none_or(|created| in_window(member.share_history_from, created))
}

/// Only a message's sender edits or deletes it; system messages are nobody's to change.
pub fn check_own_message(sender: Option<&str>, caller: &str) -> Result<(), DomainError> {
    if sender == Some(caller) {
        Ok(())
    } else {
        Err(DomainError::NotTheSender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(names: &[&str]) -> ScopeSet {
        ScopeSet::parse(names).unwrap()
    }

    #[test]
    fn an_admitted_window_is_never_wider_than_the_adders() {
        let (t1, t2) = (Timestamp::from_millis(1_000), Timestamp::from_millis(2_000));
        assert_eq!(admitted_window(None, None), None, "both see everything");
        assert_eq!(admitted_window(None, Some(t1)), Some(t1));
        assert_eq!(
            admitted_window(Some(t2), None),
            Some(t2),
            "no wider than the adder's"
        );
        assert_eq!(admitted_window(Some(t2), Some(t1)), Some(t2));
        assert_eq!(admitted_window(Some(t1), Some(t2)), Some(t2), "narrower is fine");
        assert!(in_window(None, t1));
        assert!(in_window(Some(t1), t1) && in_window(Some(t1), t2));
        assert!(!in_window(Some(t2), t1));
    }

    #[test]
    fn cursors_and_event_ids_round_trip_and_refuse_the_rest() {
        let thread = ThreadId::new(Uuid::from_u128(0xabc));
        for since in [None, Some(Timestamp::from_millis(5))] {
            let cursor = ThreadsCursor {
                at: Timestamp::from_millis(1_700_000_000_000),
                thread: thread.clone(),
                since,
            };
            assert_eq!(ThreadsCursor::parse(&cursor.encode()), Some(cursor));
            let messages = MessagesCursor { before: 42, since };
            assert_eq!(MessagesCursor::parse(&messages.encode()), Some(messages));
        }
        let hex = &thread.as_str()[3..35];
        for bad in [
            "",
            "1",
            "x.y",
            &format!("1.{hex}.2.3"),
            &format!("1.{hex}.x"),
            &format!("-.{hex}"),
            "1.abc",
        ] {
            assert_eq!(ThreadsCursor::parse(bad), None, "{bad:?}");
        }
        for bad in ["", "x", "-1", "1.2.3", "1.", "1.x"] {
            assert_eq!(MessagesCursor::parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse_last_event_id(" 17 "), Some(17));
        for bad in ["", "-1", "+1", "1.5", "x", "99999999999999999999"] {
            assert_eq!(parse_last_event_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn events_reach_those_present_and_inside_their_window() {
        let t = Timestamp::from_millis;
        let member = Member {
            identity: IdentityId::new(Uuid::nil(), Uuid::from_u128(1)),
            share_history_from: Some(t(2_000)),
            added_at: t(3_000),
        };
        assert!(!event_reaches(&member, t(2_999), None), "before it was added");
        assert!(event_reaches(&member, t(3_000), None), "its own admission");
        assert!(
            event_reaches(&member, t(5_000), Some(t(2_000))),
            "a message at its window's start"
        );
        assert!(
            !event_reaches(&member, t(5_000), Some(t(1_999))),
            "an edit of a message before its window"
        );
        let everything = Member {
            share_history_from: None,
            ..member
        };
        assert!(event_reaches(&everything, t(5_000), Some(t(1))));
        assert!(
            !event_reaches(&everything, t(1_000), Some(t(1))),
            "but only from its admission on"
        );
    }

    #[test]
    fn thread_ids_round_trip_and_strangers_are_refused() {
        let id = ThreadId::new(Uuid::from_u128(0xabc));
        assert_eq!(id.as_str(), "19:00000000000000000000000000000abc@thread.v2");
        assert_eq!(ThreadId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "19:@thread.v2",
            "19:00000000000000000000000000000ABC@thread.v2",
            "19:00000000000000000000000000000abc@thread.v1",
            "20:00000000000000000000000000000abc@thread.v2",
            "19:00000000000000000000000000000abcd@thread.v2",
            "19:0000000000000000000000000000-abc@thread.v2",
        ] {
            assert_eq!(
                ThreadId::parse(bad).unwrap_err().code(),
                "InvalidThreadId",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_direct_thread_is_the_same_from_either_side_and_moves_on_after_deletion() {
        let (bob, sue) = (
            IdentityId::new(Uuid::nil(), Uuid::from_u128(1)),
            IdentityId::new(Uuid::nil(), Uuid::from_u128(2)),
        );
        let first = direct_thread_id(&bob, &sue, 0);
        assert_eq!(first, direct_thread_id(&sue, &bob, 0));
        assert_ne!(first, direct_thread_id(&bob, &sue, 1));
        assert_ne!(
            first,
            direct_thread_id(&bob, &IdentityId::new(Uuid::nil(), Uuid::from_u128(3)), 0)
        );
        assert_eq!(ThreadId::parse(first.as_str()).unwrap(), first);
    }

    #[test]
    fn message_ids_follow_the_clock_and_never_repeat() {
        let t = Timestamp::from_millis(1_596_823_919_339);
        assert_eq!(next_message_id(None, t), 1_596_823_919_339);
        assert_eq!(next_message_id(Some(1_596_823_919_000), t), 1_596_823_919_339);
        assert_eq!(next_message_id(Some(1_596_823_919_339), t), 1_596_823_919_340);
        assert_eq!(
            next_message_id(Some(1_596_823_919_400), t),
            1_596_823_919_401,
            "a clock behind"
        );
    }

    #[test]
    fn only_text_and_html_are_sent_by_participants() {
        assert_eq!(MessageType::sendable(None).unwrap(), MessageType::Text);
        assert_eq!(MessageType::sendable(Some("Html")).unwrap(), MessageType::Html);
        assert!(MessageType::sendable(Some("topicUpdated")).is_err());
        for t in MessageType::ALL {
            assert_eq!(MessageType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn content_topic_and_metadata_limits() {
        let none = BTreeMap::new();
        assert!(check_message("hello", &none).is_ok());
        assert!(check_message("", &none).is_err());
        assert!(check_message(&"é".repeat(MAX_CONTENT_BYTES / 2), &none).is_ok());
        let err = check_message(&"x".repeat(MAX_CONTENT_BYTES + 1), &none).unwrap_err();
        assert_eq!(err.code(), "InvalidMessage");
        let many: BTreeMap<String, String> = (0..=MAX_METADATA_ENTRIES)
            .map(|n| (n.to_string(), "v".into()))
            .collect();
        assert!(check_message("hi", &many).is_err());
        let empty_key = BTreeMap::from([(String::new(), "v".to_owned())]);
        assert!(check_message("hi", &empty_key).is_err());
        assert!(check_topic("Lunch").is_ok());
        assert_eq!(check_topic("").unwrap_err().code(), "InvalidTopic");
        assert!(check_topic(&"t".repeat(MAX_TOPIC_CHARS + 1)).is_err());
        assert!(check_topic("a\nb").is_err());
        assert!(check_display_name("Bob").is_ok());
        assert!(check_display_name("B\u{0}b").is_err());
    }

    #[test]
    fn the_scopes_of_the_issue_decide() {
        use ChatAction::*;
        let chat = scopes(&["chat"]);
        let manage = scopes(&["chat:manage_threads"]);
        let join = scopes(&["chat.join"]);
        let limited = scopes(&["chat.join.limited"]);
        let voip = scopes(&["voip"]);
        // chat and chat:manage_threads create and delete threads and manage participants.
        for s in [chat, manage] {
            assert!(authorize(s, CreateThread, false).is_ok());
            assert!(authorize(s, DeleteThread, true).is_ok());
            assert!(authorize(s, AddParticipants, true).is_ok());
            assert!(authorize(s, RemoveParticipant, true).is_ok());
        }
        // chat.join works in existing threads and sends, but creates none.
        assert_eq!(
            authorize(join, CreateThread, false).unwrap_err().code(),
            "MissingScope"
        );
        assert!(authorize(join, WriteMessage, true).is_ok());
        assert!(authorize(join, AddParticipants, true).is_ok());
        // chat.join.limited cannot add or remove participants.
        assert!(authorize(limited, WriteMessage, true).is_ok());
        assert!(authorize(limited, AddParticipants, true).is_err());
        assert!(authorize(limited, RemoveParticipant, true).is_err());
        // Only participants read or write a thread.
        for action in [
            ReadThread,
            WriteMessage,
            SignalActivity,
            UpdateTopic,
            DeleteThread,
            AddParticipants,
        ] {
            assert_eq!(
                authorize(chat, action, false).unwrap_err(),
                DomainError::NotAParticipant,
                "{action:?}"
            );
        }
        // A token for calls only does nothing in chat.
        for action in [CreateThread, ListThreads, ReadThread, Subscribe] {
            assert!(authorize(voip, action, true).is_err(), "{action:?}");
        }
    }

    #[test]
    fn only_the_sender_changes_a_message() {
        assert!(check_own_message(Some("8:acs:a_b"), "8:acs:a_b").is_ok());
        assert_eq!(
            check_own_message(Some("8:acs:a_b"), "8:acs:a_c").unwrap_err(),
            DomainError::NotTheSender
        );
        assert!(check_own_message(None, "8:acs:a_b").is_err(), "system messages");
    }
}
