//! HTTP handlers, one module per surface.

pub mod access;
pub mod admin;
pub mod bench;
pub mod chat;
pub mod chat_stream;
pub mod face;
pub mod face_lists;
pub mod face_recognition;
pub mod identities;
pub mod ops;
pub mod sts;
pub mod wellknown;

use crate::bootstrap::StartError;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A new 256-bit random secret, base64-encoded after `prefix` (the format of subscription and access keys,
/// which ACS clients base64-decode for HMAC).
pub fn new_secret(prefix: &str) -> Result<String, StartError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StartError("the system random generator failed".into()))?;
    Ok(format!("{prefix}{}", STANDARD.encode(bytes)))
}

/// A new unique token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
