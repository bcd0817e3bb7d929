//! Errors of minting, verifying and key handling.

use thiserror::Error;

/// Why a token was refused, or a key operation failed. `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url segments of JSON, or too long.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` is not ES256 (this includes `none`).
    #[error("the token's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The header `typ` is not the one expected here.
    #[error("the token is of the wrong type")]
    WrongType,
    /// No `kid`, or a `kid` this deployment does not publish.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `iss` is not this deployment.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// `aud` is not the audience expected here.
    #[error("the token is for another audience")]
    WrongAudience,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The claims do not have the shape of this token type.
    #[error("the token's claims are invalid")]
    InvalidClaims,
    /// The master key cannot open a stored signing key (wrong master key or altered data).
    #[error("a stored signing key cannot be decrypted: wrong master key or altered key data")]
    SealedKey,
    /// The master key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
    /// No active signing key is loaded.
    #[error("no active signing key")]
    NoActiveKey,
    /// A crypto library failure.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}

impl TokenError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "TokenMalformed",
            Self::AlgorithmNotAllowed => "TokenAlgorithmNotAllowed",
            Self::WrongType => "TokenTypeMismatch",
            Self::UnknownKey => "TokenKeyUnknown",
            Self::BadSignature => "TokenSignatureInvalid",
            Self::WrongIssuer => "TokenIssuerMismatch",
            Self::WrongAudience => "TokenAudienceMismatch",
            Self::Expired => "TokenExpired",
            Self::NotYetValid => "TokenNotYetValid",
            Self::InvalidClaims => "TokenClaimsInvalid",
            Self::SealedKey => "SealedKeyUnreadable",
            Self::BadMasterKey => "BadMasterKey",
            Self::NoActiveKey => "NoActiveSigningKey",
            Self::Crypto(_) => "CryptoFailure",
        }
    }
}
