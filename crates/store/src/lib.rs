//! Tessera's storage. [`Store`] is the one interface the server uses; [`sqlite::SqliteStore`] and
//! [`postgres::PgStore`] implement it, each with its own migrations, and [`open`] picks one from a URL once at
//! start-up. The [`audit::AuditWriter`] sits on top of any store and batches audit appends (group commit).
//!
//! The PostgreSQL backend caches nothing: every read goes to the database, so any number of Tessera processes
//! sharing one PostgreSQL see each other's writes at once. The SQLite backend serves one process (it locks its
//! file) and so can keep an exact write-through cache of accounts.

mod account_cache;
mod accounts;
pub mod audit;
mod chat;
mod error;
pub mod postgres;
mod rows;
pub mod sqlite;

pub use error::StoreError;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_core::FlagSet;
use tessera_core::audit::{Event, Head, NewEvent, Outcome};
use tessera_core::chat::{ChatEvent, Member, Message, NewMessage, Participant, Thread, ThreadId};
use tessera_core::face::{
    Detection, GroupId, LargeFaceList, LargePersonGroup, ListFace, PersistedFace, Person, Training,
};
use tessera_core::identity::{Identity, IdentityId, IdentityName};
use tessera_core::secret::KeyHash;
use tessera_core::session::{EndReason, Session};
use tessera_core::{Account, IsvGrant, KeySlot, ResourceId, Timestamp};
use tessera_token::{Rotation, StoredKey};
use uuid::Uuid;

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One change to an account, applied as a single atomic update so that concurrent changes to different
/// fields never overwrite each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// Replace the approved Limited Access flags.
    ApprovedFlags(FlagSet),
    /// Make the account an ISV for these flags, or (None) remove its ISV standing.
    Isv(Option<IsvGrant>),
    /// Disable or re-enable.
    Disabled(bool),
    /// Revoke every user token of the account's identities issued until now (and with them every device
    /// session, which refreshes only with a live token of its own).
    RevokeUserTokens,
}

/// A subscription key to store: always its hash; for Communication accounts also the key itself, sealed under
/// the master key, because ACS HMAC authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Which slot.
    pub slot: KeySlot,
    /// SHA-256 of the key.
    pub hash: KeyHash,
    /// The key sealed under the master key (Communication accounts only).
    pub sealed: Option<Vec<u8>>,
}

/// A sealed access key of an enabled Communication account, for HMAC verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAccessKey {
    /// The account.
    pub account: Account,
    /// Which slot.
    pub slot: KeySlot,
    /// The key sealed under the master key.
    pub sealed: Vec<u8>,
}

/// What a posted message changes in its thread, in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadChange {
    /// Nothing: a participant's message.
    None,
    /// The topic.
    Topic(String),
    /// Adds these participants (those already there keep their admission; the thread's cap holds).
    AddParticipants(Vec<Participant>),
    /// Removes this participant.
    RemoveParticipant(IdentityId),
}

impl ThreadChange {
    /// The participant it removes: the posted message's event names it, so that its removal reaches it.
    pub fn removed(&self) -> Option<&IdentityId> {
        match self {
            Self::RemoveParticipant(identity) => Some(identity),
            Self::None | Self::Topic(_) | Self::AddParticipants(_) => None,
        }
    }
}

/// A signed checkpoint of the audit chain's head, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The number of events it vouches for.
    pub seq: i64,
    /// The hash of event `seq`, lowercase hex.
    pub head: String,
    /// The signed checkpoint (a `checkpoint+jwt`).
    pub token: String,
    /// When it was made.
    pub created_at: Timestamp,
}

/// Whom a thread's events may reach ([`tessera_core::chat::event_reaches`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    /// When the thread was deleted (then only its deletion is served).
    pub deleted_at: Option<Timestamp>,
    /// Its participants now, with their admission and window.
    pub members: Vec<Member>,
}

/// Who has read a thread up to which message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    /// The reader.
    pub identity: IdentityId,
    /// The last message read.
    pub message: u64,
    /// When the receipt was sent.
    pub read_at: Timestamp,
}

/// Filters and paging of an audit query. Events come in ascending `seq`, after `after_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events with this actor.
    pub actor: Option<String>,
    /// Only events with this action.
    pub action: Option<String>,
    /// Only events about this subject.
    pub subject: Option<String>,
    /// Only events with this outcome.
    pub outcome: Option<Outcome>,
    /// Only events concerning this ISV's tokens.
    pub isv: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Paging cursor: only events with a larger `seq`.
    pub after_seq: i64,
    /// Page size (the store caps it at [`MAX_AUDIT_PAGE`]).
    pub limit: u32,
}

/// Largest audit page returned.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// The storage interface. Every implementation passes the same suite (`crates/store/tests/store/suite.rs`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Reads a setting.
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Writes a setting unless it exists; returns whether it was written.
    async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool>;

    /// Creates an account with its key hashes. `Conflict` if the resource id exists.
    async fn create_account(&self, account: &Account, keys: &[NewKey], now: Timestamp) -> Result<()>;
    /// Looks an account up by resource id.
    async fn account(&self, resource_id: &ResourceId) -> Result<Option<Account>>;
    /// Looks an account up by the hash of one of its keys.
    async fn account_by_key(&self, key: &KeyHash) -> Result<Option<(Account, KeySlot)>>;
    /// Lists accounts by resource id, after `after`.
    async fn list_accounts(&self, after: Option<&ResourceId>, limit: u32) -> Result<Vec<Account>>;
    /// Applies one change. `NotFound` if there is no such account.
    async fn update_account(&self, id: Uuid, change: &AccountChange, now: Timestamp) -> Result<Account>;
    /// Replaces the key in `key.slot`.
    async fn set_account_key(&self, id: Uuid, key: &NewKey, now: Timestamp) -> Result<()>;
    /// The sealed access keys of every enabled Communication account.
    async fn access_keys(&self) -> Result<Vec<SealedAccessKey>>;
    /// The sealed access keys of the account `id`, if it is an enabled Communication account.
    async fn access_keys_of(&self, id: Uuid) -> Result<Vec<SealedAccessKey>>;

    /// Every published signing key.
    async fn signing_keys(&self) -> Result<Vec<StoredKey>>;
    /// Inserts the first keys unless any key exists (several nodes may start at once); returns whether it did.
    async fn bootstrap_signing_keys(&self, keys: &[StoredKey]) -> Result<bool>;
    /// Applies a rotation atomically. `Conflict` if another rotation got there first.
    async fn rotate_signing_keys(&self, rotation: &Rotation, now: Timestamp) -> Result<()>;
    /// Removes retired keys.
    async fn remove_signing_keys(&self, kids: &[String]) -> Result<()>;

    /// Creates an identity. `Conflict` if a live identity of the account already has its name.
    async fn create_identity(&self, identity: &Identity) -> Result<()>;
    /// Looks an identity up by id (deleted ones included, with `deleted_at` set).
    async fn identity(&self, id: &IdentityId) -> Result<Option<Identity>>;
    /// Looks a live identity up by its name within an account.
    async fn identity_by_name(&self, account: Uuid, name: &IdentityName) -> Result<Option<Identity>>;
    /// Lists an account's live identities by id, after `after`.
    async fn list_identities(
        &self,
        account: Uuid,
        after: Option<&IdentityId>,
        limit: u32,
    ) -> Result<Vec<Identity>>;
    /// Ends every token issued so far to a live identity (bumps its revocation generation); returns the
    /// identity as it now is. `NotFound` if there is no live identity with this id.
    async fn revoke_identity_tokens(&self, id: &IdentityId) -> Result<Identity>;
    /// Deletes a live identity (its tokens die with it). `NotFound` if there is none.
    async fn delete_identity(&self, id: &IdentityId, now: Timestamp) -> Result<()>;

    /// Opens a device refresh session with its first refresh secret (at the session's generation).
    async fn create_session(&self, session: &Session, secret: &KeyHash) -> Result<()>;
    /// Looks a session up by id.
    async fn session(&self, id: &str) -> Result<Option<Session>>;
    /// The session a refresh secret was issued for, and the generation it was issued at.
    async fn refresh_secret(&self, secret: &KeyHash) -> Result<Option<(String, i64)>>;
    /// Moves a live session from `generation` to the next, whose secret is `secret`, atomically; `false` (and
    /// nothing changed) if the session has ended or is no longer at `generation` (a concurrent refresh won).
    async fn advance_session(&self, id: &str, generation: i64, secret: &KeyHash) -> Result<bool>;
    /// Ends a session, unless it has ended already.
    async fn end_session(&self, id: &str, reason: EndReason, now: Timestamp) -> Result<()>;

    /// Creates a large person group. `Conflict` if the account has one with this id.
    async fn create_group(&self, group: &LargePersonGroup) -> Result<()>;
    /// Looks a group of `account` up.
    async fn group(&self, account: Uuid, id: &GroupId) -> Result<Option<LargePersonGroup>>;
    /// Lists an account's groups by id, after `after`.
    async fn list_groups(
        &self,
        account: Uuid,
        after: Option<&GroupId>,
        limit: u32,
    ) -> Result<Vec<LargePersonGroup>>;
    /// Replaces a group's name and user data. `NotFound` if there is no such group.
    async fn update_group(
        &self,
        account: Uuid,
        id: &GroupId,
        name: &str,
        user_data: Option<&str>,
    ) -> Result<()>;
    /// Deletes a group and its persons. `NotFound` if there is no such group.
    async fn delete_group(&self, account: Uuid, id: &GroupId) -> Result<()>;
    /// Creates a person. `NotFound` if its group does not exist.
    async fn create_person(&self, person: &Person) -> Result<()>;
    /// Looks a person of a group up, with its enrolled face ids.
    async fn person(&self, account: Uuid, group: &GroupId, id: Uuid) -> Result<Option<Person>>;
    /// Lists a group's persons by id, after `after`, each with its enrolled face ids.
    async fn list_persons(
        &self,
        account: Uuid,
        group: &GroupId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Person>>;
    /// Replaces a person's name and user data. `NotFound` if there is no such person in the group.
    async fn update_person(
        &self,
        account: Uuid,
        group: &GroupId,
        id: Uuid,
        name: &str,
        user_data: Option<&str>,
    ) -> Result<()>;
    /// Deletes a person and its faces, and counts a removal in its group (in one transaction). `NotFound` if
    /// there is no such person in the group.
    async fn delete_person(&self, account: Uuid, group: &GroupId, id: Uuid) -> Result<()>;
    /// Trains a group: starts its next training generation at `now` and returns the new training state.
    /// `NotFound` if there is no such group.
    async fn train_group(&self, account: Uuid, group: &GroupId, now: Timestamp) -> Result<Training>;
    /// The templates identification searches at training generation `generation`: those of the faces enrolled
    /// before it (`enrolled_generation < generation`) that still exist, as (person, template), in (person, face)
    /// order.
    async fn trained_templates(
        &self,
        account: Uuid,
        group: &GroupId,
        generation: i64,
    ) -> Result<Vec<(Uuid, Vec<f32>)>>;

    /// Keeps a detected face under its id until it expires.
    async fn save_detection(&self, detection: &Detection) -> Result<()>;
    /// The live (unexpired at `now`) detected faces of `account` among `ids`, in one read and in no particular
    /// order; an id that is unknown, expired or another account's is left out.
    async fn detections(&self, account: Uuid, ids: &[Uuid], now: Timestamp) -> Result<Vec<Detection>>;
    /// Deletes the detected faces that expired before `now`; returns how many.
    async fn purge_detections(&self, now: Timestamp) -> Result<u64>;
    /// Enrols a face for a person, recording the group's current training generation (the face joins the index
    /// at the next training). `NotFound` if the person is not in that group of that account.
    async fn add_persisted_face(&self, face: &PersistedFace) -> Result<()>;
    /// Deletes an enrolled face and counts a removal in its group (in one transaction). `NotFound` if the person
    /// has no such face.
    async fn delete_persisted_face(
        &self,
        account: Uuid,
        group: &GroupId,
        person: Uuid,
        id: Uuid,
    ) -> Result<()>;
    /// The faces enrolled in a group, or for one person of it, in (person, id) order.
    async fn persisted_faces(
        &self,
        account: Uuid,
        group: &GroupId,
        person: Option<Uuid>,
    ) -> Result<Vec<PersistedFace>>;

    /// Creates a large face list. `Conflict` if the account has one of that id.
    async fn create_face_list(&self, list: &LargeFaceList) -> Result<()>;
    /// Looks a large face list up.
    async fn face_list(&self, account: Uuid, id: &GroupId) -> Result<Option<LargeFaceList>>;
    /// Lists an account's large face lists by id, after `after`.
    async fn list_face_lists(
        &self,
        account: Uuid,
        after: Option<&GroupId>,
        limit: u32,
    ) -> Result<Vec<LargeFaceList>>;
    /// Replaces a list's name and user data. `NotFound` if there is no such list.
    async fn update_face_list(
        &self,
        account: Uuid,
        id: &GroupId,
        name: &str,
        user_data: Option<&str>,
    ) -> Result<()>;
    /// Deletes a list and its faces. `NotFound` if there is no such list.
    async fn delete_face_list(&self, account: Uuid, id: &GroupId) -> Result<()>;
    /// Records a training of the list at `now`. `NotFound` if there is no such list.
    async fn train_face_list(&self, account: Uuid, id: &GroupId, now: Timestamp) -> Result<()>;
    /// Adds a face to a list. `NotFound` if the account has no such list.
    async fn add_list_face(&self, face: &ListFace) -> Result<()>;
    /// Deletes a face of a list. `NotFound` if the list has no such face.
    async fn delete_list_face(&self, account: Uuid, list: &GroupId, id: Uuid) -> Result<()>;
    /// The faces of a list, in id order, after `after`, at most `limit`.
    async fn list_faces(
        &self,
        account: Uuid,
        list: &GroupId,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ListFace>>;

    /// Creates a thread with its participants. With a `repeatability` id (ACS's `repeatability-request-id`), a
    /// second creation by the same creator with the same id creates nothing and answers the first thread.
    async fn create_thread(
        &self,
        thread: &Thread,
        participants: &[Participant],
        repeatability: Option<&str>,
    ) -> Result<Thread>;
    /// A thread of `account` that is not deleted.
    async fn thread(&self, account: Uuid, id: &ThreadId) -> Result<Option<Thread>>;
    /// Marks a thread deleted at `now`. `NotFound` if it does not exist or is already deleted.
    async fn delete_thread(&self, account: Uuid, id: &ThreadId, now: Timestamp) -> Result<()>;
    /// The live threads `identity` participates in, most recent activity (last message, else creation) first,
    /// after the page position `after` (activity, id), active at or after `since`, at most `limit`.
    async fn threads_of(
        &self,
        identity: &IdentityId,
        after: Option<(Timestamp, &ThreadId)>,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<Thread>>;
    /// `identity` as a participant of `thread`.
    async fn participant(&self, thread: &ThreadId, identity: &IdentityId) -> Result<Option<Participant>>;
    /// A thread's participants in the order they were added, skipping `skip`, at most `limit`.
    async fn participants(&self, thread: &ThreadId, skip: u32, limit: u32) -> Result<Vec<Participant>>;
    /// Applies `change` to a live thread and posts `message` in the same transaction: the message gets the
    /// thread's next id ([`tessera_core::chat::next_message_id`]) and sequence id. `NotFound` if the thread is
    /// gone, or when removing someone who is not a participant.
    async fn post(
        &self,
        thread: &ThreadId,
        change: &ThreadChange,
        message: &NewMessage,
        now: Timestamp,
    ) -> Result<Message>;
    /// A message of a thread (deleted ones too: they answer with `deletedOn`).
    async fn message(&self, thread: &ThreadId, id: u64) -> Result<Option<Message>>;
    /// A thread's messages, newest first, with ids below `before`, created at or after `since`, at most `limit`.
    async fn messages(
        &self,
        thread: &ThreadId,
        before: Option<u64>,
        since: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<Message>>;
    /// Replaces a live message's content (and metadata, when given) at `now` with a new version. `NotFound` if
    /// the message does not exist or is deleted.
    async fn edit_message(
        &self,
        thread: &ThreadId,
        id: u64,
        content: &str,
        metadata: Option<&BTreeMap<String, String>>,
        now: Timestamp,
    ) -> Result<Message>;
    /// Marks a message deleted and drops its content. `NotFound` if it does not exist or is already deleted.
    async fn delete_message(&self, thread: &ThreadId, id: u64, now: Timestamp) -> Result<()>;
    /// Records that `identity` has read up to message `message` (a later receipt replaces an earlier one).
    async fn save_read_receipt(
        &self,
        thread: &ThreadId,
        identity: &IdentityId,
        message: u64,
        now: Timestamp,
    ) -> Result<()>;
    /// A thread's read receipts, one per identity, in identity order, skipping `skip`, at most `limit`.
    async fn read_receipts(&self, thread: &ThreadId, skip: u32, limit: u32) -> Result<Vec<ReadReceipt>>;
    /// Appends a typing notification to the chat event log (nothing else of it is kept).
    async fn record_typing(
        &self,
        thread: &ThreadId,
        identity: &IdentityId,
        display_name: Option<&str>,
        now: Timestamp,
    ) -> Result<()>;
    /// The chat events with `seq` above `after`, in `seq` order, at most `limit`. Every change of a thread
    /// (posting, editing, deleting a message, a read receipt, deleting the thread) appends its event in the same
    /// transaction. On PostgreSQL a `seq` may become visible after a higher one (transactions commit out of
    /// order): a reader re-reads from its last gap.
    async fn chat_events_after(&self, after: i64, limit: u32) -> Result<Vec<ChatEvent>>;
    /// The chat events with `seq` above `after` that may concern `identity`: those of threads it participates in
    /// and those that name it (its removal), in `seq` order, at most `limit`.
    async fn chat_events_for(&self, identity: &IdentityId, after: i64, limit: u32) -> Result<Vec<ChatEvent>>;
    /// Whom `thread`'s events may reach; `None` if there is no such thread.
    async fn chat_audience(&self, thread: &ThreadId) -> Result<Option<Audience>>;
    /// The highest chat event `seq` so far (0 if none).
    async fn last_chat_event(&self) -> Result<i64>;
    /// Deletes the chat events older than `before`; returns how many.
    async fn purge_chat_events(&self, before: Timestamp) -> Result<u64>;

    /// Seals and appends events to the audit chain in one transaction, after any other writer's.
    async fn append_audit(&self, events: Vec<NewEvent>) -> Result<Vec<Event>>;
    /// Reads audit events.
    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<Event>>;
    /// The chain's head: its last event's `seq` and hash ([`Head::EMPTY`] when empty).
    async fn audit_head(&self) -> Result<Head>;
    /// Keeps a signed checkpoint of the head at `seq` (a second one for the same `seq` is ignored).
    async fn add_audit_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<()>;
    /// The checkpoints with `seq` above `after`, oldest first, at most `limit`.
    async fn audit_checkpoints(&self, after: i64, limit: u32) -> Result<Vec<AuditCheckpoint>>;
    /// The latest checkpoint, if any.
    async fn latest_audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>>;
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing) or `postgres://…`, and migrates it.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://…",
            redact_url(url)
        )))
    }
}

/// Opens a store to read a database that a server may be using (`tessera audit verify`): SQLite read-only and
/// without the process lock; PostgreSQL as usual.
pub async fn open_read_only(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect_read_only(url).await?))
    } else {
        open(url).await
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5/db"),
            "postgres://u:<redacted>@h:5/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
