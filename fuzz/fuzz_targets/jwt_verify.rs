//! Token verification (`KeyRing::verify`) as each token type at a fixed time: junk, mutated valid tokens, and
//! validly signed tokens whose header or claims the fuzzer writes are refused with an error, never a panic; a
//! mutated token that verifies must be the signed token itself; a token of one type never verifies as another;
//! accepted claims obey the pinned rules (issuer, audience, time window, header) and re-sign and verify to the
//! same value.
//!
//! Input: `mode` byte, then
//! - 0: a token (UTF-8, lossy), verified as every type;
//! - 1: `kind` byte, then edits (position, operation, byte) applied to a valid token of that kind;
//! - 2: `kind` byte, then the header JSON of a token of that kind, signed with the active key;
//! - 3: `kind` byte, then the claims JSON under the standard header of that kind, signed with the active key.
//!
//! The ring is deterministic (fixed master key and signing keys), so tokens in the corpus stay valid across runs.

#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use aws_lc_rs::agreement;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::fuzz_target;
use tessera_core::claims::{LimitedAccessClaims, StsClaims, TokenType};
use tessera_core::identity::{Actor, IdentityId, UserClaims};
use tessera_core::scope::ScopeSet;
use tessera_core::{FeatureFlag, FlagSet, KeySlot, ResourceId, Timestamp};
use tessera_token::{KeyRing, KeyState, MasterKey, StoredKey};

const ISS: &str = "https://tessera.fuzz";
const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);
const ACTIVE_KID: &str = "fuzz-active-key";
const PENDING_KID: &str = "fuzz-pending-key";
/// The group order n of P-256 and ⌊n/2⌋, big-endian: Tessera signs and accepts `s ≤ n/2` only.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xde,
    0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sts,
    Lat,
    User,
}

const KINDS: [Kind; 3] = [Kind::Sts, Kind::Lat, Kind::User];

impl Kind {
    fn of(byte: u8) -> Self {
        KINDS[usize::from(byte) % KINDS.len()]
    }
    fn typ(self) -> &'static str {
        match self {
            Self::Sts => StsClaims::TYP,
            Self::Lat => LimitedAccessClaims::TYP,
            Self::User => UserClaims::TYP,
        }
    }
}

struct Fixture {
    ring: KeyRing,
    /// The active key's pair, to sign what the fuzzer writes.
    signer: EcdsaKeyPair,
    /// A valid token of each kind, in [`KINDS`] order.
    tokens: [String; 3],
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let master = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).expect("master key");
    let (signer, active) = fixed_key(&master, 1, ACTIVE_KID, KeyState::Active);
    let (_, pending) = fixed_key(&master, 2, PENDING_KID, KeyState::Pending);
    let ring = KeyRing::load(ISS, &master, &[active, pending]).expect("ring");
    assert_eq!(ring.active_kid(), Some(ACTIVE_KID));
    let tokens = [
        ring.sign(&sts_claims()).expect("sign"),
        ring.sign(&lat_claims()).expect("sign"),
        ring.sign(&user_claims()).expect("sign"),
    ];
    Fixture { ring, signer, tokens }
});

/// A P-256 key from a fixed scalar, stored as Tessera stores keys.
fn fixed_key(master: &MasterKey, seed: u8, kid: &str, state: KeyState) -> (EcdsaKeyPair, StoredKey) {
    let mut scalar = [seed; 32];
    scalar[0] = 0x11;
    let public = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &scalar)
        .expect("private key")
        .compute_public_key()
        .expect("public key");
    let pair = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &scalar,
        public.as_ref(),
    )
    .expect("key pair");
    let pkcs8 = pair.to_pkcs8v1().expect("pkcs8");
    let stored = StoredKey {
        kid: kid.to_owned(),
        state,
        created_at: NOW.plus_secs(-86_400),
        activated_at: (state == KeyState::Active).then_some(NOW.plus_secs(-3_600)),
        retired_at: None,
        public_key: pair.public_key().as_ref().to_vec(),
        sealed_private: master.seal(kid.as_bytes(), pkcs8.as_ref()).expect("seal"),
    };
    (pair, stored)
}

fn rid(provider: &str, name: &str) -> ResourceId {
    ResourceId::parse(&format!(
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/{provider}/{name}"
    ))
    .expect("resource id")
}

fn sts_claims() -> StsClaims {
    StsClaims {
        iss: ISS.into(),
        aud: StsClaims::AUDIENCE.into(),
        sub: rid("Microsoft.CognitiveServices/accounts", "client1"),
        iat: NOW.secs() - 60,
        nbf: NOW.secs() - 60,
        exp: NOW.secs() + 540,
        jti: "sts-1".into(),
        kslot: KeySlot::Key2,
        kgen: 3,
    }
}

fn lat_claims() -> LimitedAccessClaims {
    LimitedAccessClaims {
        iss: ISS.into(),
        aud: LimitedAccessClaims::AUDIENCE.into(),
        sub: rid("Microsoft.CognitiveServices/accounts", "client1"),
        flags: FlagSet::EMPTY
            .with(FeatureFlag::FaceIdentification)
            .with(FeatureFlag::LimitedAccessHighRisk),
        isv: rid("Microsoft.CognitiveServices/accounts", "isv1"),
        iat: NOW.secs() - 60,
        nbf: NOW.secs() - 60,
        exp: NOW.secs() + 3_540,
        jti: "lat-1".into(),
    }
}

fn user_claims() -> UserClaims {
    let id = |user: u8| {
        IdentityId::parse(&format!(
            "8:acs:9b665d53-8164-4923-ad5d-5e983b07d2e7_00000000-0000-4000-8000-0000000000{user:02x}"
        ))
        .expect("identity id")
    };
    UserClaims {
        iss: ISS.into(),
        aud: UserClaims::AUDIENCE.into(),
        sub: id(1),
        rid: rid("Microsoft.Communication/communicationServices", "chat1"),
        scp: ScopeSet::parse(&["chat", "voip.join"]).expect("scopes"),
        rev: 2,
        sid: Some("session-1".into()),
        act: Some(Actor { sub: id(2), rev: 0 }),
        iat: NOW.secs() - 60,
        nbf: NOW.secs() - 60,
        exp: NOW.secs() + 3_540,
        jti: "user-1".into(),
    }
}

/// Verifies `token` as every type; checks what is accepted; returns the kind it verified as, if any.
fn verify_all(token: &str) -> Option<Kind> {
    let mut accepted = None;
    for kind in KINDS {
        let ok = match kind {
            Kind::Sts => check::<StsClaims>(token),
            Kind::Lat => check::<LimitedAccessClaims>(token),
            Kind::User => check::<UserClaims>(token),
        };
        if ok {
            assert!(
                accepted.is_none(),
                "one token verified as {accepted:?} and {kind:?}: {token}"
            );
            accepted = Some(kind);
        }
    }
    accepted
}

/// Verifies `token` as `C`. Whatever is accepted must obey the rules, and its claims must re-sign and verify to
/// the same value.
fn check<C: TokenType + PartialEq + std::fmt::Debug>(token: &str) -> bool {
    let ring = &FIXTURE.ring;
    let claims = match ring.verify::<C>(token, NOW) {
        Ok(claims) => claims,
        Err(e) => {
            // Every refusal has its stable code.
            assert!(!e.code().is_empty());
            return false;
        }
    };
    let now = NOW.secs();
    assert!(claims.nbf() < claims.exp(), "accepted nbf ≥ exp: {token}");
    assert!(now < claims.exp(), "accepted an expired token: {token}");
    assert!(
        now >= claims.nbf().saturating_sub(tessera_token::jwt::NBF_LEEWAY_SECS),
        "accepted a token before its nbf: {token}"
    );
    assert!(token.len() <= tessera_token::jwt::MAX_TOKEN_LEN);
    let (header, payload) = segments(token).expect("an accepted token has three base64url segments");
    assert_eq!(header["alg"], "ES256", "{token}");
    assert_eq!(header["kid"], ACTIVE_KID, "{token}");
    assert!(
        header["typ"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(C::TYP)),
        "{token}"
    );
    assert!(
        header.get("crit").is_none_or(serde_json::Value::is_null),
        "{token}"
    );
    assert_eq!(payload["iss"], ISS, "{token}");
    assert_eq!(payload["aud"], C::AUDIENCE, "{token}");
    let again = ring.sign(&claims).expect("accepted claims re-sign");
    assert_eq!(
        ring.verify::<C>(&again, NOW).as_ref(),
        Ok(&claims),
        "{token} → {again}"
    );
    true
}

/// The header and payload of a compact JWS, as JSON values.
fn segments(token: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let mut parts = token.split('.');
    let mut json = || -> Option<serde_json::Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()
    };
    Some((json()?, json()?))
}

/// `header.payload.signature` over the given JSON, signed with the active key, low-s as Tessera signs.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let mut token = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = FIXTURE
        .signer
        .sign(&SystemRandom::new(), token.as_bytes())
        .expect("sign");
    let mut signature: [u8; 64] = signature.as_ref().try_into().expect("a P-256 fixed signature");
    if signature[32..] > HALF_ORDER[..] {
        let mut borrow = 0u8;
        for (s, n) in signature[32..].iter_mut().zip(ORDER).rev() {
            let (d, under) = n.overflowing_sub(*s);
            let (d, under_again) = d.overflowing_sub(borrow);
            *s = d;
            borrow = u8::from(under || under_again);
        }
    }
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Replace(u16, u8),
    /// Replace with a base64url character, so that the segment still decodes.
    ReplaceBase64(u16, u8),
    Insert(u16, u8),
    Delete(u16),
    FlipBit(u16, u8),
    Truncate(u16),
}

fn apply(token: &mut Vec<u8>, edit: &Edit) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let at = |pos: u16, len: usize| usize::from(pos) % len.max(1);
    match *edit {
        Edit::Replace(p, b) if !token.is_empty() => {
            let i = at(p, token.len());
            token[i] = b;
        }
        Edit::ReplaceBase64(p, b) if !token.is_empty() => {
            let i = at(p, token.len());
            token[i] = ALPHABET[usize::from(b) % 64];
        }
        Edit::Insert(p, b) => {
            let i = at(p, token.len() + 1);
            token.insert(i, b);
        }
        Edit::Delete(p) if !token.is_empty() => {
            let i = at(p, token.len());
            token.remove(i);
        }
        Edit::FlipBit(p, b) if !token.is_empty() => {
            let i = at(p, token.len());
            token[i] ^= 1 << (b % 8);
        }
        Edit::Truncate(p) => {
            let i = at(p, token.len() + 1);
            token.truncate(i);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            verify_all(&token);
        }
        1 => {
            let Some((&kind, rest)) = rest.split_first() else {
                return;
            };
            let kind = Kind::of(kind);
            let original = &fixture.tokens[kind as usize];
            let mut token = original.clone().into_bytes();
            let mut u = Unstructured::new(rest);
            // An exhausted `Unstructured` still yields edits: stop with the data.
            while !u.is_empty() {
                let Ok(edit) = Edit::arbitrary(&mut u) else {
                    break;
                };
                apply(&mut token, &edit);
            }
            let token = String::from_utf8_lossy(&token);
            match verify_all(&token) {
                None => {}
                Some(k) if k == kind => {
                    assert_eq!(&*token, original.as_str(), "a changed token still verifies");
                }
                Some(k) => panic!("a {kind:?} token verified as {k:?}: {token}"),
            }
        }
        2 => {
            let Some((&kind, header)) = rest.split_first() else {
                return;
            };
            let kind = Kind::of(kind);
            let (_, payload) = segments(&fixture.tokens[kind as usize]).expect("fixture segments");
            let payload = serde_json::to_vec(&payload).expect("json");
            let token = signed(header, &payload);
            if let Some(k) = verify_all(&token) {
                assert_eq!(k, kind, "{token}");
            }
        }
        _ => {
            let Some((&kind, payload)) = rest.split_first() else {
                return;
            };
            let kind = Kind::of(kind);
            let header = format!(r#"{{"alg":"ES256","kid":"{ACTIVE_KID}","typ":"{}"}}"#, kind.typ());
            let token = signed(header.as_bytes(), payload);
            if let Some(k) = verify_all(&token) {
                assert_eq!(k, kind, "{token}");
            }
        }
    }
});
