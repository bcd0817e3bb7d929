//! Compact JWS: signing with a held key pair, verification with the algorithm, type, issuer, audience, key and
//! time window all pinned.
//!
//! Signing is done here rather than by `jsonwebtoken::encode`, which re-parses the PKCS#8 key on every call and
//! cannot produce the SDK-safe payload encoding (see `payload`). Verification of the signature and of `iss`/`aud`
//! is `jsonwebtoken`'s; this module adds the checks it does not make: the header is parsed first so that `alg`
//! other than ES256 (`none` included) and `crit` are refused, `typ` must be the expected type's, the `kid` must
//! be published, the signature must be low-s (`low_s`), and `exp`/`nbf` are checked against a `now` passed in.

use crate::error::TokenError;
use crate::low_s;
use crate::payload::encode_segment;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::EcdsaKeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tessera_core::Timestamp;
use tessera_core::claims::TokenType;

/// Longest token accepted, bytes.
pub const MAX_TOKEN_LEN: usize = 8192;
/// Tolerated clock skew between nodes for `nbf`, seconds. `exp` gets none.
pub const NBF_LEEWAY_SECS: i64 = 60;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'a str,
}

#[derive(Deserialize)]
struct ReceivedHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

pub(crate) fn sign<C: Serialize>(
    pair: &EcdsaKeyPair,
    rng: &SystemRandom,
    kid: &str,
    typ: &str,
    claims: &C,
) -> Result<String, TokenError> {
    let header = encode_segment(&Header {
        alg: "ES256",
        kid,
        typ,
    })
    .map_err(|_| TokenError::InvalidClaims)?;
    let payload = encode_segment(claims).map_err(|_| TokenError::InvalidClaims)?;
    let mut token = String::with_capacity(header.len() + payload.len() + 90);
    token.push_str(&header);
    token.push('.');
    token.push_str(&payload);
    let sig = pair
        .sign(rng, token.as_bytes())
        .map_err(|_| TokenError::Crypto("sign"))?;
    let mut sig: [u8; low_s::SIGNATURE_LEN] =
        sig.as_ref().try_into().map_err(|_| TokenError::Crypto("sign"))?;
    low_s::canonicalize(&mut sig);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    Ok(token)
}

pub(crate) fn verify<'k, C: TokenType>(
    token: &str,
    issuer: &str,
    now: Timestamp,
    key_for: impl Fn(&str) -> Option<&'k DecodingKey>,
) -> Result<C, TokenError> {
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header_b64 = token.split('.').next().unwrap_or_default();
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| TokenError::Malformed)?;
    let header: ReceivedHeader = serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if header.alg != "ES256" {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    if !header.typ.is_some_and(|t| t.eq_ignore_ascii_case(C::TYP)) {
        return Err(TokenError::WrongType);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(key_for)
        .ok_or(TokenError::UnknownKey)?;

    let signature = token.rsplit('.').next().unwrap_or_default();
    let canonical = URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|signature| low_s::is_canonical(&signature));
    if !canonical {
        return Err(TokenError::BadSignature);
    }

    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = HashSet::new();
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[C::AUDIENCE]);
    let claims = jsonwebtoken::decode::<C>(token, key, &validation).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::WrongAudience,
        ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) | ErrorKind::MissingRequiredClaim(_) => {
            TokenError::InvalidClaims
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
        _ => TokenError::Malformed,
    })?;
    let claims = claims.claims;
    if claims.exp() <= claims.nbf() {
        return Err(TokenError::InvalidClaims);
    }
    let now = now.secs();
    if now < claims.nbf().saturating_sub(NBF_LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    if now >= claims.exp() {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}
