//! The audit chain: events are sealed in order, each with the SHA-256 of its predecessor, so that anyone holding
//! the log can check with one pass that nothing was altered, removed or reordered.
//!
//! The hash covers every field through an unambiguous, length-prefixed encoding; `details` is hashed as the exact
//! JSON text that is stored, so verification never depends on re-serialising it.

use crate::time::Timestamp;
use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Audited actions.
pub mod action {
    /// An STS bearer token was issued (or refused).
    pub const ISSUE_TOKEN: &str = "sts.issueToken";
    /// A limited access token was issued (or refused).
    pub const ISSUE_LIMITED_ACCESS_TOKEN: &str = "sts.issueLimitedAccessToken";
    /// A request went through the Limited Access gate.
    pub const GATE: &str = "limitedAccess.use";
    /// An authenticated caller was refused before reaching an operation (e.g. disabled account).
    pub const AUTHENTICATION: &str = "auth.refused";
    /// Admin: account created.
    pub const ACCOUNT_CREATE: &str = "admin.account.create";
    /// Admin: subscription key regenerated.
    pub const ACCOUNT_REGENERATE_KEY: &str = "admin.account.regenerateKey";
    /// Admin: Limited Access approvals replaced.
    pub const ACCOUNT_APPROVE: &str = "admin.account.approve";
    /// Admin: account made an ISV.
    pub const ISV_GRANT: &str = "admin.isv.grant";
    /// Admin: ISV cut off.
    pub const ISV_CUT_OFF: &str = "admin.isv.cutOff";
    /// Admin: account disabled.
    pub const ACCOUNT_DISABLE: &str = "admin.account.disable";
    /// Admin: account enabled.
    pub const ACCOUNT_ENABLE: &str = "admin.account.enable";
    /// Admin: every user token of an account revoked.
    pub const ACCOUNT_REVOKE_USER_TOKENS: &str = "admin.account.revokeUserTokens";
    /// Chat: a thread created (details: its participants; `direct` for a pair's direct thread).
    pub const CHAT_THREAD_CREATE: &str = "chat.thread.create";
    /// Chat: a thread's topic changed (the topic itself is not recorded).
    pub const CHAT_TOPIC_UPDATE: &str = "chat.thread.updateTopic";
    /// Chat: a thread deleted.
    pub const CHAT_THREAD_DELETE: &str = "chat.thread.delete";
    /// Chat: participants added (details: who).
    pub const CHAT_PARTICIPANTS_ADD: &str = "chat.participants.add";
    /// Chat: a participant removed (details: who).
    pub const CHAT_PARTICIPANT_REMOVE: &str = "chat.participants.remove";
    /// Chat: a message edited (details: its id; not its content).
    pub const CHAT_MESSAGE_EDIT: &str = "chat.message.edit";
    /// Chat: a message deleted (details: its id).
    pub const CHAT_MESSAGE_DELETE: &str = "chat.message.delete";
    /// Chat: a message sent, when `audit_chat_sends` is on (details: its id; not its content).
    pub const CHAT_MESSAGE_SEND: &str = "chat.message.send";
    /// Admin: signing keys rotated.
    pub const KEYS_ROTATE: &str = "admin.keys.rotate";
    /// Admin: a request with the admin key was refused.
    pub const ADMIN_REFUSED: &str = "admin.refused";
    /// A communication identity was created (or refused).
    pub const IDENTITY_CREATE: &str = "identity.create";
    /// A communication identity was deleted (or refused).
    pub const IDENTITY_DELETE: &str = "identity.delete";
    /// Every token of an identity was revoked (or refused).
    pub const IDENTITY_REVOKE: &str = "identity.revokeTokens";
    /// A user access token was issued by the trusted service (or refused).
    pub const USER_TOKEN_ISSUE: &str = "userToken.issue";
    /// A device refreshed its user access token (or was refused).
    pub const USER_TOKEN_REFRESH: &str = "userToken.refresh";
    /// A refresh session ended (reuse detected, or sign-out).
    pub const SESSION_END: &str = "userToken.sessionEnd";
    /// Face: a large person group was created.
    pub const FACE_GROUP_CREATE: &str = "face.largePersonGroup.create";
    /// Face: a large person group was renamed or its user data changed.
    pub const FACE_GROUP_UPDATE: &str = "face.largePersonGroup.update";
    /// Face: a large person group, and its persons, were deleted.
    pub const FACE_GROUP_DELETE: &str = "face.largePersonGroup.delete";
    /// Face: a person was created.
    pub const FACE_PERSON_CREATE: &str = "face.person.create";
    /// Face: a person was renamed or its user data changed.
    pub const FACE_PERSON_UPDATE: &str = "face.person.update";
    /// Face: a person was deleted.
    pub const FACE_PERSON_DELETE: &str = "face.person.delete";
    /// Face: a face was enrolled for a person.
    pub const FACE_ENROL: &str = "face.persistedFace.add";
    /// Face: an enrolled face was deleted.
    pub const FACE_UNENROL: &str = "face.persistedFace.delete";
    /// Face: a large person group was trained.
    pub const FACE_TRAIN: &str = "face.largePersonGroup.train";
    /// Face: a large face list was created.
    pub const FACE_LIST_CREATE: &str = "face.largeFaceList.create";
    /// Face: a large face list was renamed or its user data changed.
    pub const FACE_LIST_UPDATE: &str = "face.largeFaceList.update";
    /// Face: a large face list, and its faces, were deleted.
    pub const FACE_LIST_DELETE: &str = "face.largeFaceList.delete";
    /// Face: a face was added to a large face list.
    pub const FACE_LIST_ADD: &str = "face.largeFaceList.addFace";
    /// Face: a face was removed from a large face list.
    pub const FACE_LIST_REMOVE: &str = "face.largeFaceList.deleteFace";
    /// Face: a large face list was trained.
    pub const FACE_LIST_TRAIN: &str = "face.largeFaceList.train";
}

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action happened.
    Success,
    /// The action was refused.
    Denied,
}

impl Outcome {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
        }
    }
    /// Parses the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Success, Self::Denied]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// An event before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// When it happened.
    pub at: Timestamp,
    /// Who acted: `admin`, `account:<resource id>`, `anonymous`.
    pub actor: String,
    /// What was done, e.g. `sts.issueLimitedAccessToken`.
    pub action: String,
    /// What it was done to: a resource id, a key id, a token's `jti`.
    pub subject: String,
    /// Whether it happened.
    pub outcome: Outcome,
    /// Action-specific details, as JSON text.
    pub details: String,
    /// The ISV whose limited access token this event concerns, so that the ISV can read it.
    pub isv: Option<String>,
}

/// A sealed event, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Position in the chain, from 1 with no gaps.
    pub seq: i64,
    /// When it happened.
    pub at: Timestamp,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Whether it happened.
    pub outcome: Outcome,
    /// JSON text of the details.
    pub details: String,
    /// The ISV whose limited access token this event concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isv: Option<String>,
    /// Hash of the previous event (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    /// Hash of this event (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

/// The end of the chain that the next event links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Sequence number of the last event (0 when empty).
    pub seq: i64,
    /// Hash of the last event ([`GENESIS_HASH`] when empty).
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty chain.
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS_HASH,
    };

    /// Seals `new` as the next event and moves the head past it.
    pub fn seal(&mut self, new: NewEvent) -> Event {
        let seq = self.seq + 1;
        let hash = event_hash(&self.hash, seq, &new);
        let event = Event {
            seq,
            at: new.at,
            actor: new.actor,
            action: new.action,
            subject: new.subject,
            outcome: new.outcome,
            details: new.details,
            isv: new.isv,
            prev_hash: self.hash,
            hash,
        };
        *self = Head { seq, hash };
        event
    }
}

fn event_hash(prev: &[u8; 32], seq: i64, e: &NewEvent) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"tessera-audit-v1");
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&e.at.millis().to_be_bytes());
    let isv = e.isv.as_deref();
    for field in [
        Some(e.actor.as_str()),
        Some(e.action.as_str()),
        Some(e.subject.as_str()),
        Some(e.outcome.as_str()),
        Some(e.details.as_str()),
        isv,
    ] {
        match field {
            Some(f) => {
                ctx.update(&[1]);
                ctx.update(&(f.len() as u64).to_be_bytes());
                ctx.update(f.as_bytes());
            }
            None => ctx.update(&[0]),
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The first place where a chain fails to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// Sequence number of the offending event (or the one expected there).
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broken link at event {}: {}", self.seq, self.reason)
    }
}

/// Checks a chain one event at a time, so that a log of any length can be streamed through it.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: Head,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { head: Head::EMPTY }
    }
}

impl ChainVerifier {
    /// Checks the next event.
    pub fn push(&mut self, e: &Event) -> Result<(), BrokenLink> {
        let expected = self.head.seq + 1;
        let broken = |reason: &str| {
            Err(BrokenLink {
                seq: e.seq,
                reason: reason.to_owned(),
            })
        };
        if e.seq != expected {
            return Err(BrokenLink {
                seq: expected,
                reason: format!("event {expected} is missing (next event found is {})", e.seq),
            });
        }
        if e.prev_hash != self.head.hash {
            return broken("prev_hash does not match the previous event's hash");
        }
        let new = NewEvent {
            at: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            outcome: e.outcome,
            details: e.details.clone(),
            isv: e.isv.clone(),
        };
        if event_hash(&self.head.hash, e.seq, &new) != e.hash {
            return broken("the event's content does not match its hash");
        }
        self.head = Head {
            seq: e.seq,
            hash: e.hash,
        };
        Ok(())
    }

    /// The last verified event.
    pub fn head(&self) -> Head {
        self.head
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into()
            .map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: i64) -> NewEvent {
        NewEvent {
            at: Timestamp::from_millis(i),
            actor: "admin".into(),
            action: "admin.account.create".into(),
            subject: format!("s{i}"),
            outcome: Outcome::Success,
            details: format!("{{\"n\":{i}}}"),
            isv: None,
        }
    }

    fn chain(n: i64) -> Vec<Event> {
        let mut head = Head::EMPTY;
        (1..=n).map(|i| head.seal(ev(i))).collect()
    }

    fn verify(events: &[Event]) -> Result<(), BrokenLink> {
        let mut v = ChainVerifier::default();
        events.iter().try_for_each(|e| v.push(e))
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(5);
        assert_eq!(events[0].prev_hash, GENESIS_HASH);
        assert_eq!(events[4].seq, 5);
        assert_eq!(verify(&events), Ok(()));
    }

    #[test]
    fn tampering_names_the_first_broken_link() {
        let mut events = chain(5);
        events[2].details = "{\"n\":99}".into();
        assert_eq!(verify(&events).unwrap_err().seq, 3);

        let mut events = chain(5);
        events.remove(1);
        let err = verify(&events).unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(err.reason.contains("missing"));

        let mut events = chain(5);
        events[3].outcome = Outcome::Denied;
        assert_eq!(verify(&events).unwrap_err().seq, 4);

        let mut events = chain(5);
        events[4].isv = Some("/subscriptions/x".into());
        assert_eq!(verify(&events).unwrap_err().seq, 5);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = ev(1);
        let mut b = ev(1);
        a.actor = "ab".into();
        a.action = "c".into();
        b.actor = "a".into();
        b.action = "bc".into();
        let (mut h1, mut h2) = (Head::EMPTY, Head::EMPTY);
        assert_ne!(h1.seal(a).hash, h2.seal(b).hash);
    }
}
