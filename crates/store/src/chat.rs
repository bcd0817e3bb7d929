//! What both backends compute the same way inside their chat transactions: the next message's numbers, an edit's
//! new version, and the participant cap; and the statements both run as they are.

use crate::{Result, StoreError};
use std::collections::BTreeMap;
use tessera_core::Timestamp;
use tessera_core::chat::{MAX_PARTICIPANTS, Message, NewMessage, ThreadId, next_message_id};

/// The chat events after `$2` of the threads `$1` participates in, or naming it, at most `$3`.
pub(crate) const EVENTS_FOR: &str = "SELECT * FROM chat_events
     WHERE seq > $2
       AND (identity_id = $1 OR thread_id IN (SELECT thread_id FROM chat_participants WHERE identity_id = $1))
     ORDER BY seq LIMIT $3";

/// A thread's deletion and participants with their admissions (one row with null participant columns when it has
/// none; no row when there is no such thread), read by [`crate::rows::audience`].
pub(crate) const AUDIENCE: &str = "SELECT t.deleted_at, p.identity_id, p.share_history_from, p.added_at
     FROM chat_threads t LEFT JOIN chat_participants p ON p.thread_id = t.id
     WHERE t.id = $1";

/// `LimitReached` when a thread holds `count` participants, more than [`MAX_PARTICIPANTS`] (the transaction that
/// added them then rolls back).
pub(crate) fn within_participant_cap(count: i64) -> Result<()> {
    if usize::try_from(count).unwrap_or(usize::MAX) > MAX_PARTICIPANTS {
        return Err(StoreError::LimitReached(format!(
            "a thread has at most {MAX_PARTICIPANTS} participants"
        )));
    }
    Ok(())
}

/// The message `message` becomes when posted at `now` in `thread`, whose last message id and sequence id (as
/// stored, 0 for none) are `last_id` and `last_sequence`.
pub(crate) fn posting(
    thread: &ThreadId,
    last_id: i64,
    last_sequence: i64,
    message: &NewMessage,
    now: Timestamp,
) -> Result<Message> {
    let last = u64::try_from(last_id).map_err(|_| StoreError::Corrupt("a negative message id".into()))?;
    let id = next_message_id((last > 0).then_some(last), now);
    let sequence_id =
        u64::try_from(last_sequence).map_err(|_| StoreError::Corrupt("a negative sequence id".into()))? + 1;
    Ok(Message {
        thread: thread.clone(),
        id,
        sequence_id,
        version: id,
        body: message.clone(),
        created_at: now,
        edited_at: None,
        deleted_at: None,
    })
}

/// `message` with new content (and metadata, when given) and a new version, edited at `now`.
pub(crate) fn edited(
    mut message: Message,
    content: &str,
    metadata: Option<&BTreeMap<String, String>>,
    now: Timestamp,
) -> Message {
    message.body.content.message = Some(content.to_owned());
    if let Some(metadata) = metadata {
        message.body.metadata = metadata.clone();
    }
    message.version = next_message_id(Some(message.version), now);
    message.edited_at = Some(now);
    message
}
