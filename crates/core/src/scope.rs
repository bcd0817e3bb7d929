//! User access token scopes: the ACS scopes (`chat`, `voip`, `chat.join`, `chat.join.limited`, `voip.join`) and
//! the fine scopes (`chat:send_message`, `chat:manage_threads`, `voip:adhoc`, `voip:pstn`, `rooms:manage`), related
//! by one table, [`Scope::capabilities`]: each scope grants a set of [`Capability`]s, and every check asks
//! [`ScopeSet::allows`] for a capability, never for a scope name.
//!
//! | scope | send messages | manage threads | manage participants | join calls | start calls | PSTN calls | manage rooms |
//! |---|---|---|---|---|---|---|---|
//! | `chat` | ✓ | ✓ | ✓ | | | | |
//! | `chat.join` | ✓ | | ✓ | | | | |
//! | `chat.join.limited` | ✓ | | | | | | |
//! | `chat:send_message` | ✓ | | | | | | |
//! | `chat:manage_threads` | | ✓ | ✓ | | | | |
//! | `voip` | | | | ✓ | ✓ | ✓ | |
//! | `voip.join` | | | | ✓ | | | |
//! | `voip:adhoc` | | | | ✓ | ✓ | | |
//! | `voip:pstn` | | | | ✓ | | ✓ | |
//! | `rooms:manage` | | | | | | | ✓ |

use crate::error::DomainError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One thing a user access token may let its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Read and send messages, read receipts and typing notifications in threads the identity is in.
    SendMessages,
    /// Create and delete threads, change their topic.
    ManageThreads,
    /// Add and remove participants.
    ManageParticipants,
    /// Join calls.
    JoinCalls,
    /// Start calls between identities.
    StartCalls,
    /// Call phone numbers.
    PstnCalls,
    /// Create and manage rooms.
    ManageRooms,
}

impl Capability {
    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A scope a token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `chat`.
    Chat,
    /// `chat.join`.
    ChatJoin,
    /// `chat.join.limited`.
    ChatJoinLimited,
    /// `chat:send_message`.
    ChatSendMessage,
    /// `chat:manage_threads`.
    ChatManageThreads,
    /// `voip`.
    Voip,
    /// `voip.join`.
    VoipJoin,
    /// `voip:adhoc`.
    VoipAdhoc,
    /// `voip:pstn`.
    VoipPstn,
    /// `rooms:manage`.
    RoomsManage,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 10] = [
        Self::Chat,
        Self::ChatJoin,
        Self::ChatJoinLimited,
        Self::ChatSendMessage,
        Self::ChatManageThreads,
        Self::Voip,
        Self::VoipJoin,
        Self::VoipAdhoc,
        Self::VoipPstn,
        Self::RoomsManage,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::ChatJoin => "chat.join",
            Self::ChatJoinLimited => "chat.join.limited",
            Self::ChatSendMessage => "chat:send_message",
            Self::ChatManageThreads => "chat:manage_threads",
            Self::Voip => "voip",
            Self::VoipJoin => "voip.join",
            Self::VoipAdhoc => "voip:adhoc",
            Self::VoipPstn => "voip:pstn",
            Self::RoomsManage => "rooms:manage",
        }
    }

    /// The table: what this scope grants.
    pub const fn capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            Self::Chat => &[SendMessages, ManageThreads, ManageParticipants],
            Self::ChatJoin => &[SendMessages, ManageParticipants],
            Self::ChatJoinLimited | Self::ChatSendMessage => &[SendMessages],
            Self::ChatManageThreads => &[ManageThreads, ManageParticipants],
            Self::Voip => &[JoinCalls, StartCalls, PstnCalls],
            Self::VoipJoin => &[JoinCalls],
            Self::VoipAdhoc => &[JoinCalls, StartCalls],
            Self::VoipPstn => &[JoinCalls, PstnCalls],
            Self::RoomsManage => &[ManageRooms],
        }
    }

    /// Parses a wire name (case-sensitive, as the SDKs send them).
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| DomainError::UnknownScope(name.chars().take(64).collect()))
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The scopes of one token. Serialised as a JSON array of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u16);

impl ScopeSet {
    /// Parses scope names: an unknown name is refused, and so is an empty list (a token must be for something).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, DomainError> {
        let set = names
            .iter()
            .try_fold(Self(0), |set, n| Ok(set.with(Scope::parse(n.as_ref())?)))?;
        if set.0 == 0 {
            return Err(DomainError::NoScopes);
        }
        Ok(set)
    }

    /// This set plus `scope`.
    #[must_use]
    pub const fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    /// The scopes, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.0 & s.bit() != 0)
    }

    /// The capabilities these scopes grant together.
    pub fn capabilities(self) -> CapabilitySet {
        CapabilitySet(
            self.iter()
                .flat_map(|s| s.capabilities())
                .fold(0, |bits, c| bits | c.bit()),
        )
    }

    /// The one check every operation makes.
    pub fn allows(self, capability: Capability) -> bool {
        self.capabilities().0 & capability.bit() != 0
    }

    /// Whether `self` grants nothing that `other` does not: a refresh may narrow scopes, never widen them.
    pub fn within(self, other: ScopeSet) -> bool {
        let (mine, theirs) = (self.capabilities().0, other.capabilities().0);
        mine & !theirs == 0
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapabilitySet(u8);

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Scope::name))
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Self::parse(&names).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    fn set(names: &[&str]) -> ScopeSet {
        ScopeSet::parse(names).unwrap()
    }

    #[test]
    fn the_table_relates_acs_and_fine_scopes() {
        assert!(set(&["chat"]).allows(ManageThreads));
        assert!(set(&["chat.join"]).allows(ManageParticipants));
        assert!(!set(&["chat.join"]).allows(ManageThreads));
        assert!(!set(&["chat.join.limited"]).allows(ManageParticipants));
        assert!(set(&["chat.join.limited"]).allows(SendMessages));
        assert!(set(&["chat:manage_threads"]).allows(ManageParticipants));
        assert!(!set(&["chat:manage_threads"]).allows(SendMessages));
        assert!(!set(&["voip.join"]).allows(StartCalls));
        assert!(set(&["voip"]).allows(PstnCalls));
        assert!(!set(&["voip:adhoc"]).allows(PstnCalls));
        assert!(!set(&["voip"]).allows(SendMessages));
        assert!(set(&["rooms:manage"]).allows(ManageRooms));
        // Every scope is in the table and grants something.
        for s in Scope::ALL {
            assert!(!s.capabilities().is_empty(), "{s}");
            assert_eq!(Scope::parse(s.name()), Ok(s));
        }
    }

    #[test]
    fn unknown_and_empty_scopes_are_refused() {
        assert_eq!(
            ScopeSet::parse(&["chat", "Chat"]).unwrap_err().code(),
            "UnknownScope"
        );
        assert_eq!(ScopeSet::parse::<&str>(&[]).unwrap_err().code(), "NoScopes");
        assert!(serde_json::from_str::<ScopeSet>(r#"["voip","admin"]"#).is_err());
    }

    #[test]
    fn narrowing_is_within_widening_is_not() {
        assert!(set(&["chat.join.limited"]).within(set(&["chat"])));
        assert!(set(&["chat:send_message"]).within(set(&["chat.join.limited"])));
        assert!(set(&["voip.join", "chat.join"]).within(set(&["chat", "voip"])));
        assert!(!set(&["chat"]).within(set(&["chat.join"])));
        assert!(!set(&["chat.join"]).within(set(&["chat.join.limited"])));
        assert!(!set(&["voip:pstn"]).within(set(&["voip:adhoc"])));
    }

    #[test]
    fn serialises_as_names_in_table_order() {
        assert_eq!(
            serde_json::to_string(&set(&["voip", "chat"])).unwrap(),
            r#"["chat","voip"]"#
        );
    }
}
