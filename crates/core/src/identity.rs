//! Communication identities and the user access tokens issued to them.
//!
//! An identity is `8:acs:<account guid>_<uuid>`, belongs to one Communication account, may have a unique name
//! (compared case-insensitively, so `Bob@Contoso.com` and `bob@contoso.com` are one identity) and has a kind.
//! Revocation is a per-identity generation number: every token carries the generation it was issued under
//! (`rev`), revoking bumps it, and a token is live only while the two are equal, which needs no clock and has no
//! same-second ambiguity.

use crate::ResourceId;
use crate::claims::{TimeBound, TokenType};
use crate::error::DomainError;
use crate::scope::ScopeSet;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The prefix of ACS user identifiers.
pub const ACS_PREFIX: &str = "8:acs:";

/// An identity's id, `8:acs:<account guid>_<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityId {
    raw: String,
    account: Uuid,
}

impl IdentityId {
    /// A new id for an identity of `account`.
    pub fn new(account: Uuid, user: Uuid) -> Self {
        Self {
            raw: format!("{ACS_PREFIX}{}_{}", account.hyphenated(), user.hyphenated()),
            account,
        }
    }

    /// Parses an id; only ids of Tessera's form are accepted.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::InvalidIdentityId(raw.chars().take(128).collect());
        let rest = raw.strip_prefix(ACS_PREFIX).ok_or_else(bad)?;
        let (account, user) = rest.split_once('_').ok_or_else(bad)?;
        let account = Uuid::try_parse(account).map_err(|_| bad())?;
        let user = Uuid::try_parse(user).map_err(|_| bad())?;
        Ok(Self::new(account, user))
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The GUID of the account the identity belongs to.
    pub fn account(&self) -> Uuid {
        self.account
    }
}

impl TryFrom<String> for IdentityId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, DomainError> {
        Self::parse(&s)
    }
}

impl From<IdentityId> for String {
    fn from(id: IdentityId) -> String {
        id.raw
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// What an identity stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum IdentityKind {
    /// A person.
    #[default]
    Human,
    /// An automated participant.
    Bot,
    /// A phone number; its name must be E.164 (`+` and 8 to 15 digits).
    PhoneNumber,
}

/// Longest identity name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// A unique, case-insensitive identity name, stored lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentityName(String);

impl IdentityName {
    /// Validates a name for an identity of `kind`.
    pub fn parse(raw: &str, kind: IdentityKind) -> Result<Self, DomainError> {
        let name = raw.trim();
        let bad = |why: &str| DomainError::InvalidIdentityName(why.to_owned());
        // Counted as stored: lowercasing can lengthen a name ("İ" becomes two characters).
        let lowered = name.to_lowercase();
        if name.is_empty() || lowered.chars().count() > MAX_NAME_CHARS {
            return Err(bad("names are 1 to 256 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("names cannot contain control characters"));
        }
        if kind == IdentityKind::PhoneNumber {
            let digits = name.strip_prefix('+').unwrap_or_default();
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a phone number name is E.164: + and 8 to 15 digits"));
            }
        }
        Ok(Self(lowered))
    }

    /// The canonical (lowercased) name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An identity as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Its id.
    pub id: IdentityId,
    /// Unique name within its account, if it has one.
    pub name: Option<IdentityName>,
    /// Kind.
    pub kind: IdentityKind,
    /// Creation time.
    pub created_at: Timestamp,
    /// Revocation generation: tokens issued under an earlier one are dead.
    pub revocation: i64,
    /// Deletion time; a deleted identity's tokens are dead and it gets no new ones.
    pub deleted_at: Option<Timestamp>,
}

impl Identity {
    /// Whether a token with these claims is still honoured for this identity.
    pub fn honours(&self, claims: &UserClaims) -> bool {
        self.deleted_at.is_none() && claims.sub == self.id && claims.rev == self.revocation
    }

    /// Whether a token whose actor is `actor` is still honoured by this identity (the actor): not deleted, and
    /// its tokens not revoked since.
    pub fn honours_actor(&self, actor: &Actor) -> bool {
        self.deleted_at.is_none() && actor.sub == self.id && actor.rev == self.revocation
    }
}

/// Shortest user access token lifetime, minutes (ACS's bound, and Tessera's).
pub const MIN_LIFETIME_MINUTES: i64 = 60;
/// Longest user access token lifetime, minutes (ACS's bound, and Tessera's).
pub const MAX_LIFETIME_MINUTES: i64 = 1440;
/// Default lifetime on the ACS wire: 24 hours, as ACS.
pub const ACS_DEFAULT_LIFETIME_MINUTES: i64 = 1440;
/// Default lifetime on Tessera's own API: 12 hours.
pub const NATIVE_DEFAULT_LIFETIME_MINUTES: i64 = 720;

/// The lifetime of a user access token: `expires_in_minutes` if given, which must lie in
/// [`MIN_LIFETIME_MINUTES`]..=[`MAX_LIFETIME_MINUTES`], else `default`.
pub fn token_lifetime_minutes(expires_in_minutes: Option<i64>, default: i64) -> Result<i64, DomainError> {
    match expires_in_minutes {
        None => Ok(default),
        Some(m) if (MIN_LIFETIME_MINUTES..=MAX_LIFETIME_MINUTES).contains(&m) => Ok(m),
        Some(_) => Err(DomainError::InvalidTokenLifetime {
            min: MIN_LIFETIME_MINUTES,
            max: MAX_LIFETIME_MINUTES,
        }),
    }
}

/// The party acting on behalf of the token's subject (RFC 8693 `act`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting identity.
    pub sub: IdentityId,
    /// The acting identity's revocation generation at issuance: revoking the actor's tokens ends these too.
    pub rev: i64,
}

/// A user access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    /// Issuer URL.
    pub iss: String,
    /// [`UserClaims::AUDIENCE`].
    pub aud: String,
    /// The identity.
    pub sub: IdentityId,
    /// The identity's Communication account (canonical ARM id).
    pub rid: ResourceId,
    /// Scopes.
    pub scp: ScopeSet,
    /// Revocation generation the token was issued under.
    pub rev: i64,
    /// Refresh session the token belongs to, if it may be refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Who acts for `sub`, when the trusted service issued this token on another identity's behalf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Issued at, seconds.
    pub iat: i64,
    /// Not before, seconds.
    pub nbf: i64,
    /// Expiry, seconds (an integer, as the SDKs require).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

impl TimeBound for UserClaims {
    fn nbf(&self) -> i64 {
        self.nbf
    }
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl TokenType for UserClaims {
    const TYP: &'static str = "user+jwt";
    const AUDIENCE: &'static str = "urn:tessera:communication";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `domain_parsers` fuzzer: a name within the limit lowercased to one past it, which `parse`
    /// itself then refused.
    #[test]
    fn regression_a_name_is_counted_as_stored() {
        let long = "\u{130}".repeat(129);
        assert!(IdentityName::parse(&long, IdentityKind::Human).is_err());
        let fits = "\u{130}".repeat(128);
        let name = IdentityName::parse(&fits, IdentityKind::Human).unwrap();
        assert_eq!(
            IdentityName::parse(name.as_str(), IdentityKind::Human).unwrap(),
            name
        );
    }

    const ACCOUNT: Uuid = Uuid::from_u128(0x9b665d53_8164_4923_ad5d_5e983b07d2e7);

    #[test]
    fn ids_round_trip_and_name_their_account() {
        let id = IdentityId::new(ACCOUNT, Uuid::from_u128(6));
        assert_eq!(
            id.as_str(),
            "8:acs:9b665d53-8164-4923-ad5d-5e983b07d2e7_00000000-0000-0000-0000-000000000006"
        );
        assert_eq!(IdentityId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.account(), ACCOUNT);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        for bad in [
            "",
            "8:acs:",
            "4:+14255550123",
            "8:acs:nope_x",
            "8:acs:9b665d53-8164-4923-ad5d-5e983b07d2e7",
            "8:spool:x_y",
        ] {
            assert_eq!(
                IdentityId::parse(bad).unwrap_err().code(),
                "InvalidIdentityId",
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_case_insensitive_and_phone_numbers_are_e164() {
        let a = IdentityName::parse(" Bob@Contoso.com ", IdentityKind::Human).unwrap();
        assert_eq!(
            a,
            IdentityName::parse("bob@contoso.com", IdentityKind::Human).unwrap()
        );
        assert_eq!(a.as_str(), "bob@contoso.com");
        assert!(IdentityName::parse("+14255550123", IdentityKind::PhoneNumber).is_ok());
        for bad in ["14255550123", "+1425", "+1425555012x", "+1234567890123456"] {
            assert!(
                IdentityName::parse(bad, IdentityKind::PhoneNumber).is_err(),
                "{bad}"
            );
        }
        assert!(IdentityName::parse("", IdentityKind::Human).is_err());
        assert!(IdentityName::parse("a\u{0}b", IdentityKind::Bot).is_err());
        assert!(IdentityName::parse(&"x".repeat(257), IdentityKind::Human).is_err());
    }

    #[test]
    fn acs_lifetimes() {
        assert_eq!(
            token_lifetime_minutes(None, ACS_DEFAULT_LIFETIME_MINUTES),
            Ok(1440)
        );
        assert_eq!(
            token_lifetime_minutes(None, NATIVE_DEFAULT_LIFETIME_MINUTES),
            Ok(720)
        );
        assert_eq!(token_lifetime_minutes(Some(60), 720), Ok(60));
        assert_eq!(token_lifetime_minutes(Some(1440), 720), Ok(1440));
        for bad in [59, 1441, 0, -5] {
            assert_eq!(
                token_lifetime_minutes(Some(bad), 720).unwrap_err().code(),
                "InvalidTokenLifetime"
            );
        }
    }

    #[test]
    fn revocation_and_deletion_end_tokens() {
        let id = IdentityId::new(ACCOUNT, Uuid::from_u128(1));
        let mut identity = Identity {
            id: id.clone(),
            name: None,
            kind: IdentityKind::Human,
            created_at: Timestamp::from_secs(0),
            revocation: 0,
            deleted_at: None,
        };
        let claims = UserClaims {
            iss: "https://t".into(),
            aud: UserClaims::AUDIENCE.into(),
            sub: id,
            rid: ResourceId::parse(
                "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.Communication/communicationServices/c1",
            )
            .unwrap(),
            scp: ScopeSet::parse(&["chat"]).unwrap(),
            rev: 0,
            sid: None,
            act: None,
            iat: 0,
            nbf: 0,
            exp: 3600,
            jti: "j".into(),
        };
        assert!(identity.honours(&claims));
        identity.revocation = 1;
        assert!(!identity.honours(&claims));
        assert!(identity.honours(&UserClaims {
            rev: 1,
            ..claims.clone()
        }));
        identity.deleted_at = Some(Timestamp::from_secs(9));
        assert!(!identity.honours(&UserClaims {
            rev: 1,
            ..claims.clone()
        }));
        let other = IdentityId::new(ACCOUNT, Uuid::from_u128(2));
        identity.deleted_at = None;
        assert!(!identity.honours(&UserClaims {
            rev: 1,
            sub: other,
            ..claims
        }));
    }
}
