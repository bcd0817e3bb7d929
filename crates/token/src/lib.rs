//! Tessera's tokens: ES256 JWTs signed by a ring of rotating keys whose private halves are sealed under a master
//! key, published as JWKS, and verified with the algorithm pinned and every claim checked against a given `now`.
//!
//! Why ES256: an asymmetric algorithm lets any resource server verify tokens from the JWKS without a shared
//! secret; P-256 ECDSA is the most widely supported such JOSE algorithm (every JWT library, browsers' WebCrypto,
//! Azure and OIDC tooling), with small keys and signatures and fast signing. Ed25519 would be faster still but is
//! missing from too many verifiers.

pub mod error;
pub mod jwks;
pub mod jwt;
pub mod keys;
mod low_s;
mod payload;

pub use error::TokenError;
pub use jwks::{Jwk, Jwks};
pub use keys::{KeyRing, KeyState, MasterKey, Rotation, StoredKey};
