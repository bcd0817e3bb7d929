//! One encoding per token: ECDSA signatures `(r, s)` and `(r, n − s)` both verify, so without a rule every token
//! would have a twin with a different signature segment (and a different hash, for whoever de-duplicates or
//! blocks tokens by their bytes). Tessera signs with `s ≤ n/2` and refuses a higher `s`, the rule BIP-62 and
//! libsecp256k1 apply, here on P-256.

/// The order n of the P-256 group, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// ⌊n / 2⌋, big-endian: the highest `s` accepted.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde,
    0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Length of a JOSE ES256 signature: `r ‖ s`, 32 bytes each.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// Whether `signature` is a JOSE ES256 signature with `s ≤ n/2`. Equal-length big-endian byte strings compare as
/// the numbers they encode.
pub(crate) fn is_canonical(signature: &[u8]) -> bool {
    signature.len() == SIGNATURE_LEN && signature[32..] <= HALF_ORDER[..]
}

/// Replaces a high `s` by `n − s`, which verifies the same.
pub(crate) fn canonicalize(signature: &mut [u8; SIGNATURE_LEN]) {
    if signature[32..] > HALF_ORDER[..] {
        negate_s(signature);
    }
}

/// `s ← n − s`, for `0 < s < n`.
fn negate_s(signature: &mut [u8; SIGNATURE_LEN]) {
    let mut borrow = 0u8;
    for (s, n) in signature[32..].iter_mut().zip(ORDER).rev() {
        let (difference, under) = n.overflowing_sub(*s);
        let (difference, under_again) = difference.overflowing_sub(borrow);
        *s = difference;
        borrow = u8::from(under || under_again);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::bootstrap;
    use crate::{KeyRing, MasterKey, TokenError};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use tessera_core::claims::{StsClaims, TokenType};
    use tessera_core::{KeySlot, ResourceId, Timestamp};

    #[test]
    fn half_order_is_half_the_order() {
        let mut doubled = [0u8; 32];
        let mut carry = 1u16; // n is odd: ⌊n/2⌋ · 2 + 1 = n
        for (d, h) in doubled.iter_mut().zip(HALF_ORDER).rev() {
            let sum = u16::from(h) * 2 + carry;
            *d = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!((doubled, carry), (ORDER, 0));
    }

    #[test]
    fn negation_is_an_involution_that_crosses_the_half() {
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[32..].copy_from_slice(&HALF_ORDER);
        negate_s(&mut signature);
        assert!(!is_canonical(&signature), "n − ⌊n/2⌋ = ⌊n/2⌋ + 1 is high");
        negate_s(&mut signature);
        assert_eq!(signature[32..], HALF_ORDER);
        assert!(is_canonical(&signature));
    }

    /// Every token is signed low-s, and its high-s twin, a valid ECDSA signature, is refused.
    #[test]
    fn a_tokens_high_s_twin_is_refused() {
        const ISS: &str = "https://tessera.test";
        let now = Timestamp::from_secs(1_800_000_000);
        let master = MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap();
        let ring = KeyRing::load(ISS, &master, &bootstrap(&master, now).unwrap()).unwrap();
        let claims = StsClaims {
            iss: ISS.into(),
            aud: StsClaims::AUDIENCE.into(),
            sub: ResourceId::parse(
                "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/client1",
            )
            .unwrap(),
            iat: now.secs(),
            nbf: now.secs(),
            exp: now.secs() + 600,
            jti: "j".into(),
            kslot: KeySlot::Key1,
            kgen: 1,
        };
        for _ in 0..64 {
            let token = ring.sign(&claims).unwrap();
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let mut signature: [u8; SIGNATURE_LEN] =
                URL_SAFE_NO_PAD.decode(signature).unwrap().try_into().unwrap();
            assert!(is_canonical(&signature), "{token}");
            ring.verify::<StsClaims>(&token, now).unwrap();
            negate_s(&mut signature);
            let twin = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
            assert_eq!(
                ring.verify::<StsClaims>(&twin, now),
                Err(TokenError::BadSignature),
                "{twin}"
            );
        }
    }
}
