//! Secrets as the rest of the system sees them: random keys shown once, stored and compared only as hashes.
//!
//! Subscription and admin keys are 256-bit random values, so a single SHA-256 is a sufficient one-way function
//! (no password-stretching is needed for keys nobody chose). Lookups go by hash; the final comparison of two
//! hashes is constant-time.

use aws_lc_rs::digest;
use std::fmt;

/// SHA-256 of a key, the only form in which keys are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, key.as_bytes()).as_ref());
        Self(out)
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &KeyHash) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }

    /// Lowercase hex, as stored.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lowercase hex.
    pub fn from_hex(s: &str) -> Option<Self> {
        hex::decode(s).ok()?.try_into().ok().map(Self)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_and_round_trip() {
        let a = KeyHash::of("k1");
        assert!(a.matches(&KeyHash::of("k1")));
        assert!(!a.matches(&KeyHash::of("k2")));
        assert_eq!(KeyHash::from_hex(&a.to_hex()), Some(a));
        assert_eq!(format!("{a:?}").len(), "KeyHash(…)".len() + 8);
    }
}
