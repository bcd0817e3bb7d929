//! Decoding rows into domain values, shared by both backends: the column names and stored encodings are the
//! same in both schemas, only the SQL dialect differs.

use crate::ReadReceipt;
use crate::{Result, StoreError};
use sqlx::{ColumnIndex, Decode, Row, Type};
use std::collections::BTreeMap;
use tessera_core::audit::{Event, Outcome};
use tessera_core::chat::{
    ChatEvent, ChatEventKind, Member, Message, MessageContent, MessageType, NewMessage, Participant, Thread,
    ThreadId,
};
use tessera_core::face::{
    Detection, GroupId, LargeFaceList, LargePersonGroup, ListFace, PersistedFace, Person, Training,
};
use tessera_core::identity::{Identity, IdentityId, IdentityKind, IdentityName};
use tessera_core::session::{EndReason, Session};
use tessera_core::{Account, FlagSet, IsvGrant, KeyGenerations, KeySlot, ResourceId, Timestamp};
use tessera_token::{KeyState, StoredKey};

/// Flags as stored: names joined by commas.
pub(crate) fn flags_to_db(flags: FlagSet) -> String {
    flags.names().join(",")
}

fn flags_from_db(s: &str) -> Result<FlagSet> {
    let names: Vec<&str> = s.split(',').filter(|n| !n.is_empty()).collect();
    FlagSet::parse(&names).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

/// Reads a typed column.
fn col<'r, R, T>(row: &'r R, name: &'static str) -> Result<T>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(StoreError::Database)
}

/// The column types every backend must decode.
pub(crate) trait Decodes<R: Row>: for<'r> Decode<'r, R::Database> + Type<R::Database> {}
impl<R: Row, T> Decodes<R> for T where T: for<'r> Decode<'r, R::Database> + Type<R::Database> {}

pub(crate) fn account<R>(row: &R) -> Result<Account>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
    bool: Decodes<R>,
{
    let id: String = col(row, "id")?;
    let resource_id: String = col(row, "resource_id")?;
    let isv_flags: Option<String> = col(row, "isv_flags")?;
    let isv = match isv_flags {
        Some(f) => Some(IsvGrant {
            flags: flags_from_db(&f)?,
            cut_off_at: col::<R, Option<i64>>(row, "isv_cut_off_at")?.map(Timestamp::from_millis),
        }),
        None => None,
    };
    Ok(Account {
        id: uuid::Uuid::parse_str(&id).map_err(|_| corrupt("account id"))?,
        resource_id: ResourceId::parse(&resource_id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        approved_flags: flags_from_db(&col::<R, String>(row, "approved_flags")?)?,
        isv,
        disabled: col(row, "disabled")?,
        tokens_revoked_at: col::<R, Option<i64>>(row, "tokens_revoked_at")?.map(Timestamp::from_millis),
        isv_tokens_revoked_at: col::<R, Option<i64>>(row, "isv_tokens_revoked_at")?
            .map(Timestamp::from_millis),
        user_tokens_revoked_at: col::<R, Option<i64>>(row, "user_tokens_revoked_at")?
            .map(Timestamp::from_millis),
        key_generations: KeyGenerations {
            key1: generation(col(row, "key1_generation")?)?,
            key2: generation(col(row, "key2_generation")?)?,
        },
        created_at: Timestamp::from_millis(col(row, "created_at")?),
    })
}

fn generation(stored: i64) -> Result<u32> {
    u32::try_from(stored).map_err(|_| corrupt("a key generation out of range"))
}

pub(crate) fn slot<R>(row: &R) -> Result<KeySlot>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
{
    KeySlot::from_name(&col::<R, String>(row, "slot")?).ok_or_else(|| corrupt("key slot"))
}

pub(crate) fn signing_key<R>(row: &R) -> Result<StoredKey>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok(StoredKey {
        kid: col(row, "kid")?,
        state: KeyState::from_name(&col::<R, String>(row, "state")?).ok_or_else(|| corrupt("key state"))?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        activated_at: col::<R, Option<i64>>(row, "activated_at")?.map(Timestamp::from_millis),
        retired_at: col::<R, Option<i64>>(row, "retired_at")?.map(Timestamp::from_millis),
        public_key: col(row, "public_key")?,
        sealed_private: col(row, "sealed_private")?,
    })
}

fn hash32(v: Vec<u8>) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| corrupt("audit hash length"))
}

pub(crate) fn event<R>(row: &R) -> Result<Event>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok(Event {
        seq: col(row, "seq")?,
        at: Timestamp::from_millis(col(row, "at")?),
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        subject: col(row, "subject")?,
        outcome: Outcome::from_name(&col::<R, String>(row, "outcome")?).ok_or_else(|| corrupt("outcome"))?,
        details: col(row, "details")?,
        isv: col(row, "isv")?,
        prev_hash: hash32(col(row, "prev_hash")?)?,
        hash: hash32(col(row, "hash")?)?,
    })
}

/// An identity kind as stored.
pub(crate) fn kind_to_db(kind: IdentityKind) -> &'static str {
    match kind {
        IdentityKind::Human => "human",
        IdentityKind::Bot => "bot",
        IdentityKind::PhoneNumber => "phoneNumber",
    }
}

pub(crate) fn identity<R>(row: &R) -> Result<Identity>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    let kind = match col::<R, String>(row, "kind")?.as_str() {
        "human" => IdentityKind::Human,
        "bot" => IdentityKind::Bot,
        "phoneNumber" => IdentityKind::PhoneNumber,
        _ => return Err(corrupt("identity kind")),
    };
    let name = col::<R, Option<String>>(row, "name")?
        .map(|n| IdentityName::parse(&n, kind).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()?;
    Ok(Identity {
        id: IdentityId::parse(&col::<R, String>(row, "id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        name,
        kind,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        revocation: col(row, "revocation")?,
        deleted_at: col::<R, Option<i64>>(row, "deleted_at")?.map(Timestamp::from_millis),
    })
}

pub(crate) fn session<R>(row: &R) -> Result<Session>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    let ended_at = col::<R, Option<i64>>(row, "ended_at")?.map(Timestamp::from_millis);
    let reason = col::<R, Option<String>>(row, "end_reason")?;
    let ended = match (ended_at, reason) {
        (None, None) => None,
        (Some(at), Some(reason)) => Some((
            at,
            EndReason::from_name(&reason).ok_or_else(|| corrupt("session end reason"))?,
        )),
        _ => return Err(corrupt("session end")),
    };
    Ok(Session {
        id: col(row, "id")?,
        identity: IdentityId::parse(&col::<R, String>(row, "identity_id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        expires_at: Timestamp::from_millis(col(row, "expires_at")?),
        token_lifetime_minutes: col(row, "token_lifetime_minutes")?,
        generation: col(row, "generation")?,
        ended,
    })
}

pub(crate) fn group<R>(row: &R) -> Result<LargePersonGroup>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    Ok(LargePersonGroup {
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        id: group_id(&col::<R, String>(row, "group_id")?)?,
        name: col(row, "name")?,
        user_data: col(row, "user_data")?,
        recognition_model: col(row, "recognition_model")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        training: training(row)?,
    })
}

/// A group's training columns.
pub(crate) fn training<R>(row: &R) -> Result<Training>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    Ok(Training {
        generation: col(row, "training_generation")?,
        trained_at: col::<R, Option<i64>>(row, "trained_at")?.map(Timestamp::from_millis),
        removals: col(row, "removals")?,
    })
}

pub(crate) fn person<R>(row: &R) -> Result<Person>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
{
    Ok(Person {
        id: uuid(&col::<R, String>(row, "id")?)?,
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        group: group_id(&col::<R, String>(row, "group_id")?)?,
        name: col(row, "name")?,
        user_data: col(row, "user_data")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        persisted_face_ids: Vec::new(),
    })
}

/// Fills in the face ids of `persons` (in id order) from (`person_id`, `id`) rows in that order; faces of other
/// persons are skipped.
pub(crate) fn attach_face_ids<R>(persons: &mut [Person], faces: &[R]) -> Result<()>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
{
    for row in faces {
        let owner = uuid(&col::<R, String>(row, "person_id")?)?;
        if let Ok(i) = persons.binary_search_by_key(&owner, |p| p.id) {
            persons[i]
                .persisted_face_ids
                .push(uuid(&col::<R, String>(row, "id")?)?);
        }
    }
    Ok(())
}

/// A template as stored: little-endian f32 values.
pub(crate) fn template_to_db(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn template(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(corrupt("face template"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

pub(crate) fn detection<R>(row: &R) -> Result<Detection>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    i64: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok(Detection {
        id: uuid(&col::<R, String>(row, "id")?)?,
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        recognition_model: col(row, "recognition_model")?,
        template: template(&col::<R, Vec<u8>>(row, "template")?)?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        expires_at: Timestamp::from_millis(col(row, "expires_at")?),
    })
}

pub(crate) fn persisted_face<R>(row: &R) -> Result<PersistedFace>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok(PersistedFace {
        id: uuid(&col::<R, String>(row, "id")?)?,
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        group: group_id(&col::<R, String>(row, "group_id")?)?,
        person: uuid(&col::<R, String>(row, "person_id")?)?,
        template: template(&col::<R, Vec<u8>>(row, "template")?)?,
        user_data: col(row, "user_data")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
    })
}

pub(crate) fn face_list<R>(row: &R) -> Result<LargeFaceList>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    Ok(LargeFaceList {
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        id: group_id(&col::<R, String>(row, "list_id")?)?,
        name: col(row, "name")?,
        user_data: col(row, "user_data")?,
        recognition_model: col(row, "recognition_model")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        trained_at: col::<R, Option<i64>>(row, "trained_at")?.map(Timestamp::from_millis),
    })
}

pub(crate) fn list_face<R>(row: &R) -> Result<ListFace>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok(ListFace {
        id: uuid(&col::<R, String>(row, "id")?)?,
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        list: group_id(&col::<R, String>(row, "list_id")?)?,
        template: template(&col::<R, Vec<u8>>(row, "template")?)?,
        user_data: col(row, "user_data")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
    })
}

/// A (`person_id`, `template`) row: a template to search, with its person.
pub(crate) fn person_template<R>(row: &R) -> Result<(uuid::Uuid, Vec<f32>)>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok((
        uuid(&col::<R, String>(row, "person_id")?)?,
        template(&col::<R, Vec<u8>>(row, "template")?)?,
    ))
}

fn uuid(s: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|_| corrupt("uuid"))
}

fn group_id(s: &str) -> Result<GroupId> {
    GroupId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn sealed_access_key<R>(row: &R) -> Result<crate::SealedAccessKey>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
    bool: Decodes<R>,
    Vec<u8>: Decodes<R>,
{
    Ok(crate::SealedAccessKey {
        account: account(row)?,
        slot: slot(row)?,
        sealed: col(row, "sealed_key")?,
    })
}

/// A message id, sequence id or version as stored (they fit in an `i64`: millisecond clocks do).
pub(crate) fn u64_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u64_from_db(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| corrupt("a negative message number"))
}

fn optional_time<R>(row: &R, name: &'static str) -> Result<Option<Timestamp>>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Option<i64>: Decodes<R>,
{
    Ok(col::<R, Option<i64>>(row, name)?.map(Timestamp::from_millis))
}

fn identity_id(raw: &str) -> Result<IdentityId> {
    IdentityId::parse(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn thread<R>(row: &R) -> Result<Thread>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    Ok(Thread {
        id: ThreadId::parse(&col::<R, String>(row, "id")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        account: uuid(&col::<R, String>(row, "account_id")?)?,
        topic: col(row, "topic")?,
        created_by: identity_id(&col::<R, String>(row, "created_by")?)?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        deleted_at: optional_time(row, "deleted_at")?,
        last_message_at: optional_time(row, "last_message_at")?,
    })
}

pub(crate) fn participant<R>(row: &R) -> Result<Participant>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    Ok(Participant {
        identity: identity_id(&col::<R, String>(row, "identity_id")?)?,
        display_name: col(row, "display_name")?,
        share_history_from: optional_time(row, "share_history_from")?,
    })
}

/// A thread's [`crate::Audience`] from the rows of [`crate::chat::AUDIENCE`]; `None` when there are none.
pub(crate) fn audience<R>(rows: &[R]) -> Result<Option<crate::Audience>>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Option<String>: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut members = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(identity) = col::<R, Option<String>>(row, "identity_id")? else {
            continue;
        };
        members.push(Member {
            identity: identity_id(&identity)?,
            share_history_from: optional_time(row, "share_history_from")?,
            added_at: optional_time(row, "added_at")?
                .ok_or_else(|| corrupt("a participant without added_at"))?,
        });
    }
    Ok(Some(crate::Audience {
        deleted_at: optional_time(first, "deleted_at")?,
        members,
    }))
}

/// An audit checkpoint.
pub(crate) fn checkpoint<R>(row: &R) -> Result<crate::AuditCheckpoint>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    i64: Decodes<R>,
{
    Ok(crate::AuditCheckpoint {
        seq: col(row, "seq")?,
        head: col(row, "head")?,
        token: col(row, "token")?,
        created_at: Timestamp::from_millis(col(row, "created_at")?),
    })
}

/// A message's content as stored (JSON).
pub(crate) fn content_to_db(content: &MessageContent) -> String {
    serde_json::to_string(content).unwrap_or_else(|_| "{}".to_owned())
}

/// Message metadata as stored (a JSON object).
pub(crate) fn metadata_to_db(metadata: &BTreeMap<String, String>) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn message<R>(row: &R) -> Result<Message>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    let json = |name: &'static str| -> Result<String> { col::<R, String>(row, name) };
    let kind: String = col(row, "kind")?;
    Ok(Message {
        thread: ThreadId::parse(&col::<R, String>(row, "thread_id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        id: u64_from_db(col(row, "id")?)?,
        sequence_id: u64_from_db(col(row, "sequence_id")?)?,
        version: u64_from_db(col(row, "version")?)?,
        body: NewMessage {
            kind: MessageType::parse(&kind).ok_or_else(|| corrupt("an unknown message type"))?,
            sender: col::<R, Option<String>>(row, "sender_id")?
                .as_deref()
                .map(identity_id)
                .transpose()?,
            sender_display_name: col(row, "sender_display_name")?,
            content: serde_json::from_str(&json("content")?).map_err(|_| corrupt("message content"))?,
            metadata: serde_json::from_str(&json("metadata")?).map_err(|_| corrupt("message metadata"))?,
        },
        created_at: Timestamp::from_millis(col(row, "created_at")?),
        edited_at: optional_time(row, "edited_at")?,
        deleted_at: optional_time(row, "deleted_at")?,
    })
}

pub(crate) fn read_receipt<R>(row: &R) -> Result<ReadReceipt>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    i64: Decodes<R>,
{
    Ok(ReadReceipt {
        identity: identity_id(&col::<R, String>(row, "identity_id")?)?,
        message: u64_from_db(col(row, "message_id")?)?,
        read_at: Timestamp::from_millis(col(row, "read_at")?),
    })
}

pub(crate) fn chat_event<R>(row: &R) -> Result<ChatEvent>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    String: Decodes<R>,
    Option<String>: Decodes<R>,
    i64: Decodes<R>,
    Option<i64>: Decodes<R>,
{
    let kind: String = col(row, "kind")?;
    Ok(ChatEvent {
        seq: col(row, "seq")?,
        thread: ThreadId::parse(&col::<R, String>(row, "thread_id")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kind: ChatEventKind::parse(&kind).ok_or_else(|| corrupt("an unknown chat event kind"))?,
        message: col::<R, Option<i64>>(row, "message_id")?
            .map(u64_from_db)
            .transpose()?,
        identity: col::<R, Option<String>>(row, "identity_id")?
            .as_deref()
            .map(identity_id)
            .transpose()?,
        display_name: col(row, "display_name")?,
        at: Timestamp::from_millis(col(row, "created_at")?),
    })
}
