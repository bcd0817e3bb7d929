//! The domain error: every rule that refuses says why, with a stable code.

use thiserror::Error;

/// A refusal by a domain rule. `code()` is the stable, documented error code sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The resource id is not a well-formed ARM resource id.
    #[error("invalid resource id: {0}")]
    InvalidResourceId(String),
    /// The resource id names a provider/type Tessera does not host.
    #[error("unsupported resource type: {0}")]
    UnsupportedResourceType(String),
    /// A feature flag name that Tessera does not know.
    #[error("unknown feature flag: {0}")]
    UnknownFeatureFlag(String),
    /// No feature flag was requested.
    #[error("at least one feature flag is required")]
    NoFeatureFlags,
    /// `expiredTime` is missing a number or out of range.
    #[error("expiredTime must be an integer number of seconds from {min} to {max}")]
    InvalidLifetime {
        /// Inclusive lower bound, seconds.
        min: i64,
        /// Inclusive upper bound, seconds.
        max: i64,
    },
    /// The caller is not an ISV, or its ISV status was cut off.
    #[error("this account is not an active limited-access ISV")]
    NotAnIsv,
    /// The ISV asked to grant a flag it may not grant.
    #[error("this ISV may not grant {0}")]
    FlagNotGrantable(String),
    /// The target account cannot receive limited access tokens (wrong kind or disabled).
    #[error("the target account cannot receive limited access tokens: {0}")]
    InvalidTarget(String),
    /// Not an identity id of the form `8:acs:<account guid>_<uuid>`.
    #[error("invalid identity id: {0}")]
    InvalidIdentityId(String),
    /// An identity name that breaks the naming rules.
    #[error("invalid identity name: {0}")]
    InvalidIdentityName(String),
    /// `expiresInMinutes` out of range.
    #[error("expiresInMinutes must be from {min} to {max}")]
    InvalidTokenLifetime {
        /// Inclusive lower bound, minutes.
        min: i64,
        /// Inclusive upper bound, minutes.
        max: i64,
    },
    /// A user access token scope that Tessera does not know.
    #[error("unknown scope: {0}")]
    UnknownScope(String),
    /// A user access token must have at least one scope.
    #[error("at least one scope is required")]
    NoScopes,
    /// `sessionMinutes` out of range.
    #[error("sessionMinutes must be from {min} (the token's lifetime) to {max}")]
    InvalidSessionLifetime {
        /// Inclusive lower bound, minutes.
        min: i64,
        /// Inclusive upper bound, minutes.
        max: i64,
    },
    /// A large person group id that breaks `^[a-z0-9-_]{1,64}$`.
    #[error("invalid group id {0:?}: use 1 to 64 characters from a-z, 0-9, - and _")]
    InvalidGroupId(String),
    /// A group or person name, or its userData, out of bounds.
    #[error("{0}")]
    InvalidName(String),
    /// Flags for an ISV grant must be approved for the account first.
    #[error("the account must hold {0} before it can grant it")]
    FlagNotHeld(String),
    /// Not a chat thread id (`19:<32 hex>@thread.v2`).
    #[error("invalid chat thread id {0:?}")]
    InvalidThreadId(String),
    /// A thread topic out of bounds.
    #[error("{0}")]
    InvalidTopic(String),
    /// A chat message (type, content, metadata or display name) out of bounds.
    #[error("{0}")]
    InvalidChatMessage(String),
    /// The token's scopes do not allow this chat action.
    #[error("the token's scopes do not allow it to {0}")]
    ChatScopeMissing(&'static str),
    /// The token's identity is not a participant of the thread.
    #[error("the identity is not a participant of this thread")]
    NotAParticipant,
    /// Only a message's sender edits or deletes it.
    #[error("only the sender of a message may change it")]
    NotTheSender,
}

impl DomainError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidResourceId(_) => "InvalidResourceId",
            Self::UnsupportedResourceType(_) => "UnsupportedResourceType",
            Self::UnknownFeatureFlag(_) => "UnknownFeatureFlag",
            Self::NoFeatureFlags => "NoFeatureFlags",
            Self::InvalidLifetime { .. } => "InvalidExpiredTime",
            Self::NotAnIsv => "NotAnIsv",
            Self::FlagNotGrantable(_) => "FlagNotGrantable",
            Self::InvalidTarget(_) => "InvalidTarget",
            Self::FlagNotHeld(_) => "FlagNotHeld",
            Self::UnknownScope(_) => "UnknownScope",
            Self::InvalidIdentityId(_) => "InvalidIdentityId",
            Self::InvalidIdentityName(_) => "InvalidIdentityName",
            Self::InvalidTokenLifetime { .. } => "InvalidTokenLifetime",
            Self::NoScopes => "NoScopes",
            Self::InvalidSessionLifetime { .. } => "InvalidSessionLifetime",
            Self::InvalidGroupId(_) => "InvalidGroupId",
            Self::InvalidName(_) => "BadArgument",
            Self::InvalidThreadId(_) => "InvalidThreadId",
            Self::InvalidTopic(_) => "InvalidTopic",
            Self::InvalidChatMessage(_) => "InvalidMessage",
            Self::ChatScopeMissing(_) => "MissingScope",
            Self::NotAParticipant => "NotAParticipant",
            Self::NotTheSender => "NotTheSender",
        }
    }
}
