//! Fresh secrets and token ids from the system's random generator.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

/// The system random generator failed: nothing secret can be made.
#[derive(Debug, Error)]
#[error("the system random generator failed")]
pub(crate) struct RandomFailed;

/// A new 256-bit random secret, base64-encoded after `prefix` (the format of subscription and access keys,
/// which ACS clients base64-decode for HMAC).
pub(crate) fn new_secret(prefix: &str) -> Result<String, RandomFailed> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| RandomFailed)?;
    Ok(format!("{prefix}{}", STANDARD.encode(bytes)))
}

/// A new unique token id.
pub(crate) fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
