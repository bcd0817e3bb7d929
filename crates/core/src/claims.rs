//! The claims Tessera signs, one struct per token type, and the constants that tell the types apart.
//!
//! Each type has its own JOSE `typ` and `aud`, so a token of one type is never accepted as another.

use crate::account::KeySlot;
use crate::arm::ResourceId;
use crate::flags::FlagSet;
use serde::{Deserialize, Serialize};

/// The time window every token carries, checked against a `now` that the caller passes in.
pub trait TimeBound {
    /// Not before, seconds since the epoch.
    fn nbf(&self) -> i64;
    /// Expiry, seconds since the epoch.
    fn exp(&self) -> i64;
}

/// A token type: its header `typ` and its audience.
pub trait TokenType: Serialize + for<'de> Deserialize<'de> + TimeBound {
    /// JOSE header `typ`.
    const TYP: &'static str;
    /// `aud` claim.
    const AUDIENCE: &'static str;
}

/// A limited access token: an ISV lets one client account use some gated features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitedAccessClaims {
    /// Issuer URL of this Tessera deployment.
    pub iss: String,
    /// [`LimitedAccessClaims::AUDIENCE`].
    pub aud: String,
    /// The client account the token is for (canonical ARM id).
    pub sub: ResourceId,
    /// The features granted.
    pub flags: FlagSet,
    /// The issuing ISV account (canonical ARM id).
    pub isv: ResourceId,
    /// Issued at, seconds.
    pub iat: i64,
    /// Not before, seconds.
    pub nbf: i64,
    /// Expiry, seconds.
    pub exp: i64,
    /// Unique token id, recorded in the audit log.
    pub jti: String,
}

impl TimeBound for LimitedAccessClaims {
    fn nbf(&self) -> i64 {
        self.nbf
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl TokenType for LimitedAccessClaims {
    const TYP: &'static str = "lat+jwt";
    const AUDIENCE: &'static str = "urn:tessera:limited-access";
}

/// An STS bearer token: a 10-minute stand-in for an account's subscription key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsClaims {
    /// Issuer URL of this Tessera deployment.
    pub iss: String,
    /// [`StsClaims::AUDIENCE`].
    pub aud: String,
    /// The account (canonical ARM id).
    pub sub: ResourceId,
    /// Issued at, seconds.
    pub iat: i64,
    /// Not before, seconds.
    pub nbf: i64,
    /// Expiry, seconds.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The key slot whose key minted it.
    pub kslot: KeySlot,
    /// That slot's generation then ([`crate::Account::minted_by_current_key`]): regenerating the slot kills it.
    pub kgen: u32,
}

impl TimeBound for StsClaims {
    fn nbf(&self) -> i64 {
        self.nbf
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl TokenType for StsClaims {
    const TYP: &'static str = "sts+jwt";
    const AUDIENCE: &'static str = "urn:tessera:sts";
}

/// Lifetime of an STS bearer token, seconds.
pub const STS_TOKEN_LIFETIME_SECS: i64 = 600;

/// A signed checkpoint of the audit chain's head: the chain had `seq` events and its last one hashed to `head`
/// when the issuer signed it. Signed with a signing key, whose private half is sealed under the master key, so the
/// database alone cannot forge one: deleting events after a checkpoint (truncation) is detected by checking it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointClaims {
    /// Issuer URL of this Tessera deployment.
    pub iss: String,
    /// [`CheckpointClaims::AUDIENCE`].
    pub aud: String,
    /// The number of events (the last one's `seq`).
    pub seq: i64,
    /// The last event's hash, lowercase hex.
    pub head: String,
    /// Signed at, seconds.
    pub iat: i64,
    /// Not before, seconds.
    pub nbf: i64,
    /// Expiry, seconds: [`CHECKPOINT_LIFETIME_SECS`] after signing, so that archived checkpoints stay checkable.
    pub exp: i64,
}

/// How long a checkpoint's signature is accepted: ten years.
pub const CHECKPOINT_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

impl TimeBound for CheckpointClaims {
    fn nbf(&self) -> i64 {
        self.nbf
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl TokenType for CheckpointClaims {
    const TYP: &'static str = "checkpoint+jwt";
    const AUDIENCE: &'static str = "urn:tessera:audit";
}
