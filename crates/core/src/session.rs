//! Device refresh sessions: how an end-user device renews its user access token without the trusted service.
//!
//! When the trusted service issues a token it may open a session (`sessionMinutes`). The device then holds two
//! things: the short-lived access token (it names the session in `sid`) and a refresh secret. A refresh
//! presents both; the secret is single-use and rotates at every refresh, each secret carrying the session's
//! generation it was issued at.
//!
//! Threat model (the rules below, in [`Session::check_refresh`]):
//! - **A stolen access token alone** cannot refresh: the secret is needed too, and the token dies at its `exp`.
//! - **A stolen refresh secret alone** cannot refresh: a live access token of the same session is needed too.
//! - **Both stolen** (device compromise or a copied store): the first of the thief and the device to refresh
//!   wins; when the other presents its now-spent secret, that is *reuse*, and reuse ends the session for good,
//!   so every token carrying its `sid` is refused from then on, the thief's included. The device's user signs
//!   in again through the trusted service.
//! - **Never widening:** a refreshed token has at most the scopes of the token presented, the same subject and
//!   actor, and it never outlives the session's end (`expires_at`, set by the trusted service at issuance).
//! - **Never outliving revocation or deletion:** the presented token must still be honoured by its identity
//!   (same revocation generation, identity not deleted), so revoking or deleting the identity ends every session.

use crate::error::DomainError;
use crate::identity::IdentityId;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Longest session the trusted service may open: 30 days, in minutes.
pub const MAX_SESSION_MINUTES: i64 = 30 * 24 * 60;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    /// A spent refresh secret was presented again.
    SecretReused,
    /// The device or the trusted service ended it.
    SignedOut,
}

impl EndReason {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SecretReused => "secretReused",
            Self::SignedOut => "signedOut",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::SecretReused, Self::SignedOut]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// A device refresh session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Random id, carried by the session's tokens as `sid`.
    pub id: String,
    /// The identity whose tokens the session renews.
    pub identity: IdentityId,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Its hard end: no token of the session expires later.
    pub expires_at: Timestamp,
    /// Lifetime of each refreshed token, minutes (that of the first token).
    pub token_lifetime_minutes: i64,
    /// Generation of the one refresh secret that is valid now; every refresh increments it.
    pub generation: i64,
    /// When and why it ended, if it has.
    pub ended: Option<(Timestamp, EndReason)>,
}

/// Why a refresh is refused. `code()` is stable and documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// The refresh secret is unknown, or belongs to another session than the token's.
    UnknownSecret,
    /// The secret was already spent: the session is ended now.
    SecretReused,
    /// The session ended earlier (reuse, or sign-out).
    SessionEnded,
    /// The session's lifetime is over.
    SessionExpired,
    /// The refresh asked for scopes the presented token does not have.
    ScopeWidening,
}

impl RefreshRefusal {
    /// Stable machine-readable code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::UnknownSecret => "InvalidRefreshToken",
            Self::SecretReused => "RefreshTokenReused",
            Self::SessionEnded => "SessionEnded",
            Self::SessionExpired => "SessionExpired",
            Self::ScopeWidening => "ScopeWidening",
        }
    }

    /// Human-readable explanation.
    pub const fn message(self) -> &'static str {
        match self {
            Self::UnknownSecret => "the refresh token is not valid for this access token",
            Self::SecretReused => {
                "this refresh token was already used; the session is ended and its tokens are refused"
            }
            Self::SessionEnded => "the session has ended; sign in again through the trusted service",
            Self::SessionExpired => {
                "the session's lifetime is over; sign in again through the trusted service"
            }
            Self::ScopeWidening => "a refresh cannot add scopes the presented token does not have",
        }
    }
}

/// The session length the trusted service asked for: from the token's lifetime to [`MAX_SESSION_MINUTES`].
pub fn session_minutes(requested: i64, token_lifetime_minutes: i64) -> Result<i64, DomainError> {
    if (token_lifetime_minutes..=MAX_SESSION_MINUTES).contains(&requested) {
        Ok(requested)
    } else {
        Err(DomainError::InvalidSessionLifetime {
            min: token_lifetime_minutes,
            max: MAX_SESSION_MINUTES,
        })
    }
}

impl Session {
    /// Whether tokens carrying this session's id are still honoured (it has not ended; expiry is left to the
    /// tokens' own `exp`, which never passes the session's end).
    pub fn is_live(&self) -> bool {
        self.ended.is_none()
    }

    /// Decides a refresh that presents a secret of `secret_generation` of this session, at `now`. The caller has
    /// already checked that the presented token is valid, honoured by its identity, and names this session.
    /// [`RefreshRefusal::SecretReused`] means the caller must end the session.
    pub fn check_refresh(&self, secret_generation: i64, now: Timestamp) -> Result<(), RefreshRefusal> {
        if self.ended.is_some() {
            return Err(RefreshRefusal::SessionEnded);
        }
        if secret_generation != self.generation {
            return Err(RefreshRefusal::SecretReused);
        }
        if now >= self.expires_at {
            return Err(RefreshRefusal::SessionExpired);
        }
        Ok(())
    }

    /// `exp` of a token refreshed at `now`: one token lifetime, cut at the session's end.
    pub fn refreshed_expiry(&self, now: Timestamp) -> i64 {
        (now.secs() + self.token_lifetime_minutes * 60).min(self.expires_at.secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn session() -> Session {
        Session {
            id: "s1".into(),
            identity: IdentityId::new(Uuid::from_u128(1), Uuid::from_u128(2)),
            created_at: Timestamp::from_secs(1000),
            expires_at: Timestamp::from_secs(1000 + 7200),
            token_lifetime_minutes: 60,
            generation: 3,
            ended: None,
        }
    }

    #[test]
    fn only_the_current_secret_refreshes_and_an_older_one_is_reuse() {
        let s = session();
        assert_eq!(s.check_refresh(3, Timestamp::from_secs(2000)), Ok(()));
        assert_eq!(
            s.check_refresh(2, Timestamp::from_secs(2000)),
            Err(RefreshRefusal::SecretReused)
        );
        assert_eq!(
            s.check_refresh(0, Timestamp::from_secs(2000)),
            Err(RefreshRefusal::SecretReused)
        );
    }

    #[test]
    fn ended_and_expired_sessions_refuse() {
        let mut s = session();
        assert_eq!(
            s.check_refresh(3, Timestamp::from_secs(1000 + 7200)),
            Err(RefreshRefusal::SessionExpired)
        );
        s.ended = Some((Timestamp::from_secs(1500), EndReason::SecretReused));
        assert!(!s.is_live());
        assert_eq!(
            s.check_refresh(3, Timestamp::from_secs(2000)),
            Err(RefreshRefusal::SessionEnded)
        );
    }

    #[test]
    fn refreshed_tokens_never_outlive_the_session() {
        let s = session();
        assert_eq!(s.refreshed_expiry(Timestamp::from_secs(2000)), 2000 + 3600);
        assert_eq!(s.refreshed_expiry(Timestamp::from_secs(7000)), 8200);
    }

    #[test]
    fn session_lengths_run_from_the_token_lifetime_to_thirty_days() {
        assert_eq!(session_minutes(60, 60), Ok(60));
        assert_eq!(session_minutes(MAX_SESSION_MINUTES, 60), Ok(MAX_SESSION_MINUTES));
        for bad in [59, MAX_SESSION_MINUTES + 1, 0] {
            assert_eq!(
                session_minutes(bad, 60).unwrap_err().code(),
                "InvalidSessionLifetime"
            );
        }
        assert!(EndReason::from_name("secretReused") == Some(EndReason::SecretReused));
    }
}
