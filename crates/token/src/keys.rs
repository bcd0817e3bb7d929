//! Signing keys: generation, sealing under the master key, states and rotation, and the in-memory key ring that
//! signs and verifies.
//!
//! A key moves pending → active → retired → removed. A pending key is published in JWKS but signs nothing; a
//! rotation promotes it, retires the previous active key and creates the next pending key, so every key is
//! published before its first signature. A retired key stays published until every token it signed has
//! expired ([`KeyRing::removable`]). Private keys are PKCS#8 sealed with AES-256-GCM under the master key, the
//! `kid` bound as associated data, and are never printed: `Debug` shows `<redacted>`.

use crate::error::TokenError;
use crate::jwks::{Jwk, Jwks};
use crate::jwt;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use std::fmt;
use tessera_core::Timestamp;
use tessera_core::claims::TokenType;

/// The key that seals signing keys at rest: 32 random bytes, given base64-encoded.
pub struct MasterKey(RandomizedNonceKey);

impl MasterKey {
    /// Parses a base64-encoded 32-byte key.
    pub fn from_base64(encoded: &str) -> Result<Self, TokenError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| TokenError::BadMasterKey)?;
        if bytes.len() != 32 {
            return Err(TokenError::BadMasterKey);
        }
        RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map(Self)
            .map_err(|_| TokenError::BadMasterKey)
    }

    /// A fresh random master key, base64-encoded, for a first start.
    pub fn generate_base64() -> Result<String, TokenError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenError::Crypto("random"))?;
        Ok(STANDARD.encode(bytes))
    }

    /// Encrypts `plaintext` with AES-256-GCM under a fresh random nonce, binding `aad` (what the secret is for,
    /// so that sealed data cannot be moved to another record); returns the nonce followed by the ciphertext.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mut data = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(aad), &mut data)
            .map_err(|_| TokenError::Crypto("seal"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, TokenError> {
        if sealed.len() < NONCE_LEN {
            return Err(TokenError::SealedKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| TokenError::SealedKey)?;
        let mut data = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut data)
            .map_err(|_| TokenError::SealedKey)?;
        Ok(plain.to_vec())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published, not yet signing.
    Pending,
    /// Signing (exactly one key at a time).
    Active,
    /// No longer signing; published until its tokens have expired.
    Retired,
}

impl KeyState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
    /// Parses the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Retired]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A signing key as stored: public half in the clear, private half sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// RFC 7638 JWK thumbprint of the public key.
    pub kid: String,
    /// Current state.
    pub state: KeyState,
    /// When it was generated (and published).
    pub created_at: Timestamp,
    /// When it started signing.
    pub activated_at: Option<Timestamp>,
    /// When it stopped signing.
    pub retired_at: Option<Timestamp>,
    /// Uncompressed SEC1 P-256 point (65 bytes).
    pub public_key: Vec<u8>,
    /// Nonce followed by the AES-256-GCM sealed PKCS#8 document.
    pub sealed_private: Vec<u8>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .field("sealed_private", &"<redacted>")
            .finish()
    }
}

impl StoredKey {
    /// Generates a new P-256 key in `state`, sealed under `master`.
    pub fn generate(master: &MasterKey, state: KeyState, now: Timestamp) -> Result<Self, TokenError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| TokenError::Crypto("generate"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| TokenError::Crypto("parse"))?;
        let public_key = pair.public_key().as_ref().to_vec();
        let kid = thumbprint(&public_key)?;
        let sealed_private = master.seal(kid.as_bytes(), pkcs8.as_ref())?;
        Ok(Self {
            kid,
            state,
            created_at: now,
            activated_at: (state == KeyState::Active).then_some(now),
            retired_at: None,
            public_key,
            sealed_private,
        })
    }
}

fn xy(public_key: &[u8]) -> Result<(String, String), TokenError> {
    match public_key {
        [4, rest @ ..] if rest.len() == 64 => Ok((
            URL_SAFE_NO_PAD.encode(&rest[..32]),
            URL_SAFE_NO_PAD.encode(&rest[32..]),
        )),
        _ => Err(TokenError::Crypto(
            "public key is not an uncompressed P-256 point",
        )),
    }
}

/// RFC 7638 thumbprint of an EC public key.
fn thumbprint(public_key: &[u8]) -> Result<String, TokenError> {
    let (x, y) = xy(public_key)?;
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes())))
}

/// What a rotation changes, computed from the stored keys and applied by the store in one transaction.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The pending key that starts signing (none if there was no pending key).
    pub promote: Option<String>,
    /// Keys that stop signing.
    pub retire: Vec<String>,
    /// The next pending key, published now.
    pub new_pending: StoredKey,
}

impl Rotation {
    /// Plans a rotation at `now`.
    pub fn plan(stored: &[StoredKey], master: &MasterKey, now: Timestamp) -> Result<Self, TokenError> {
        let promote = stored
            .iter()
            .filter(|k| k.state == KeyState::Pending)
            .max_by_key(|k| k.created_at);
        let retire = match promote {
            Some(_) => stored
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| k.kid.clone())
                .collect(),
            None => Vec::new(),
        };
        Ok(Self {
            promote: promote.map(|k| k.kid.clone()),
            retire,
            new_pending: StoredKey::generate(master, KeyState::Pending, now)?,
        })
    }
}

/// The keys of a brand-new deployment: one active, and the pending key the first rotation will promote.
pub fn bootstrap(master: &MasterKey, now: Timestamp) -> Result<Vec<StoredKey>, TokenError> {
    Ok(vec![
        StoredKey::generate(master, KeyState::Active, now)?,
        StoredKey::generate(master, KeyState::Pending, now)?,
    ])
}

struct LoadedKey {
    kid: String,
    state: KeyState,
    jwk: Jwk,
    decoding: DecodingKey,
    signing: Option<EcdsaKeyPair>,
}

/// The published keys, in memory: the active one signs; all of them verify.
pub struct KeyRing {
    issuer: String,
    keys: Vec<LoadedKey>,
    active: Option<usize>,
    rng: SystemRandom,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .field(
                "kids",
                &self.keys.iter().map(|k| (&k.kid, k.state)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeyRing {
    /// Opens `stored` with `master`. Only the active key's private half is decrypted.
    pub fn load(issuer: &str, master: &MasterKey, stored: &[StoredKey]) -> Result<Self, TokenError> {
        let mut keys = Vec::with_capacity(stored.len());
        let mut active = None;
        for k in stored {
            let (x, y) = xy(&k.public_key)?;
            let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|_| TokenError::Crypto("jwk"))?;
            let signing = if k.state == KeyState::Active {
                let pkcs8 = master.open(k.kid.as_bytes(), &k.sealed_private)?;
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(|_| TokenError::SealedKey)?;
                if pair.public_key().as_ref() != k.public_key.as_slice() {
                    return Err(TokenError::SealedKey);
                }
                Some(pair)
            } else {
                None
            };
            let newer = |i: usize| stored[i].activated_at < k.activated_at;
            if signing.is_some() && active.is_none_or(newer) {
                active = Some(keys.len());
            }
            keys.push(LoadedKey {
                kid: k.kid.clone(),
                state: k.state,
                jwk: Jwk::es256(k.kid.clone(), x, y),
                decoding,
                signing,
            });
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            keys,
            active,
            rng: SystemRandom::new(),
        })
    }

    /// A ring that only verifies: the public halves of `stored`, nothing unsealed (for a verifier without the
    /// master key, as `tessera audit verify`).
    pub fn public(issuer: &str, stored: &[StoredKey]) -> Result<Self, TokenError> {
        let mut keys = Vec::with_capacity(stored.len());
        for k in stored {
            let (x, y) = xy(&k.public_key)?;
            let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|_| TokenError::Crypto("jwk"))?;
            keys.push(LoadedKey {
                kid: k.kid.clone(),
                state: k.state,
                jwk: Jwk::es256(k.kid.clone(), x, y),
                decoding,
                signing: None,
            });
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            keys,
            active: None,
            rng: SystemRandom::new(),
        })
    }

    /// The issuer (`iss`) this ring signs as and accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `kid` of the signing key.
    pub fn active_kid(&self) -> Option<&str> {
        self.active.map(|i| self.keys[i].kid.as_str())
    }

    /// Whether `kid` is published.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// Signs `claims` with the active key.
    pub fn sign<C: TokenType>(&self, claims: &C) -> Result<String, TokenError> {
        let key = self
            .active
            .map(|i| &self.keys[i])
            .ok_or(TokenError::NoActiveKey)?;
        let pair = key.signing.as_ref().ok_or(TokenError::NoActiveKey)?;
        jwt::sign(pair, &self.rng, &key.kid, C::TYP, claims)
    }

    /// Verifies a token of type `C` at `now`.
    pub fn verify<C: TokenType>(&self, token: &str, now: Timestamp) -> Result<C, TokenError> {
        jwt::verify(token, &self.issuer, now, |kid| {
            self.keys.iter().find(|k| k.kid == kid).map(|k| &k.decoding)
        })
    }

    /// The JWKS document: every published key.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }

    /// Retired keys whose every token has expired by `now`, given the longest token lifetime.
    pub fn removable(stored: &[StoredKey], now: Timestamp, max_token_lifetime_secs: i64) -> Vec<String> {
        stored
            .iter()
            .filter(|k| k.state == KeyState::Retired)
            .filter(|k| {
                k.retired_at
                    .is_some_and(|t| t.plus_secs(max_token_lifetime_secs) <= now)
            })
            .map(|k| k.kid.clone())
            .collect()
    }
}
