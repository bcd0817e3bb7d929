//! The JWKS document published at `/.well-known/jwks.json`.

use serde::{Deserialize, Serialize};

/// A public EC key as a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `ES256`.
    pub alg: String,
    /// base64url x coordinate.
    pub x: String,
    /// base64url y coordinate.
    pub y: String,
}

impl Jwk {
    pub(crate) fn es256(kid: String, x: String, y: String) -> Self {
        Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            kid,
            use_: "sig".into(),
            alg: "ES256".into(),
            x,
            y,
        }
    }
}

/// A JWK set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}
