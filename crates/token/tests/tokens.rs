//! Attacks on token verification: each test tries to get a token accepted that must not be.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::claims::{LimitedAccessClaims, StsClaims, TokenType};
use tessera_core::{FeatureFlag, FlagSet, KeySlot, ResourceId, Timestamp};
use tessera_token::keys::bootstrap;
use tessera_token::{KeyRing, KeyState, MasterKey, Rotation, StoredKey, TokenError};

const ISS: &str = "https://tessera.test";
const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

fn master() -> MasterKey {
    MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap()
}

fn rid(name: &str) -> ResourceId {
    ResourceId::parse(&format!(
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/{name}"
    ))
    .unwrap()
}

fn lat(now: Timestamp, lifetime: i64) -> LimitedAccessClaims {
    LimitedAccessClaims {
        iss: ISS.into(),
        aud: LimitedAccessClaims::AUDIENCE.into(),
        sub: rid("client1"),
        flags: FlagSet::EMPTY.with(FeatureFlag::FaceIdentification),
        isv: rid("isv1"),
        iat: now.secs(),
        nbf: now.secs(),
        exp: now.secs() + lifetime,
        jti: "jti-1".into(),
    }
}

fn ring() -> (MasterKey, Vec<StoredKey>, KeyRing) {
    let m = master();
    let stored = bootstrap(&m, NOW).unwrap();
    let ring = KeyRing::load(ISS, &m, &stored).unwrap();
    (m, stored, ring)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn b64json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn a_signed_token_verifies_with_its_claims() {
    let (_, _, ring) = ring();
    let token = ring.sign(&lat(NOW, 3600)).unwrap();
    let back: LimitedAccessClaims = ring.verify(&token, NOW).unwrap();
    assert_eq!(back, lat(NOW, 3600));
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&segments(&token)[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "lat+jwt");
    assert_eq!(header["kid"], ring.active_kid().unwrap());
}

#[test]
fn tampered_payload_is_refused() {
    let (_, _, ring) = ring();
    let token = ring.sign(&lat(NOW, 3600)).unwrap();
    let s = segments(&token);
    let mut claims = serde_json::to_value(lat(NOW, 3600)).unwrap();
    claims["flags"] = serde_json::json!(["Face.Identification", "Face.Verification"]);
    let forged = format!("{}.{}.{}", s[0], b64json(&claims), s[2]);
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&forged, NOW),
        Err(TokenError::BadSignature)
    );
    let mut sig = s[2].clone().into_bytes();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{}.{}.{}", s[0], s[1], String::from_utf8(sig).unwrap());
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&flipped, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let (_, _, ring) = ring();
    let token = ring.sign(&lat(NOW, 3600)).unwrap();
    let s = segments(&token);
    let kid = ring.active_kid().unwrap();
    for alg in ["none", "None", "HS256", "RS256", "ES384", "EdDSA"] {
        let header = b64json(&serde_json::json!({"alg": alg, "typ": "lat+jwt", "kid": kid}));
        for sig in ["", s[2].as_str()] {
            let forged = format!("{header}.{}.{sig}", s[1]);
            assert_eq!(
                ring.verify::<LimitedAccessClaims>(&forged, NOW),
                Err(TokenError::AlgorithmNotAllowed),
                "{alg}"
            );
        }
    }
}

#[test]
fn another_keys_kid_or_an_unknown_kid_is_refused() {
    let (_, stored, ring) = ring();
    let (_, _, other_ring) = self::ring();
    let foreign = other_ring.sign(&lat(NOW, 3600)).unwrap();
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&foreign, NOW),
        Err(TokenError::UnknownKey)
    );

    // A token signed by another key but naming our pending key's kid.
    let pending = stored.iter().find(|k| k.state == KeyState::Pending).unwrap();
    let s = segments(&foreign);
    let header = b64json(&serde_json::json!({"alg": "ES256", "typ": "lat+jwt", "kid": pending.kid}));
    let relabelled = format!("{header}.{}.{}", s[1], s[2]);
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&relabelled, NOW),
        Err(TokenError::BadSignature)
    );

    let no_kid = format!(
        "{}.{}.{}",
        b64json(&serde_json::json!({"alg": "ES256", "typ": "lat+jwt"})),
        s[1],
        s[2]
    );
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&no_kid, NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let (_, _, ring) = ring();
    let token = ring.sign(&lat(NOW, 60)).unwrap();
    assert!(
        ring.verify::<LimitedAccessClaims>(&token, NOW.plus_secs(59))
            .is_ok()
    );
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&token, NOW.plus_secs(60)),
        Err(TokenError::Expired)
    );
    let future = ring.sign(&lat(NOW.plus_secs(3600), 60)).unwrap();
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&future, NOW),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn a_token_of_another_type_is_refused() {
    let (_, _, ring) = ring();
    let sts = StsClaims {
        iss: ISS.into(),
        aud: StsClaims::AUDIENCE.into(),
        sub: rid("client1"),
        iat: NOW.secs(),
        nbf: NOW.secs(),
        exp: NOW.secs() + 600,
        jti: "j".into(),
        kslot: KeySlot::Key1,
        kgen: 1,
    };
    let token = ring.sign(&sts).unwrap();
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&token, NOW),
        Err(TokenError::WrongType)
    );
    let lat_token = ring.sign(&lat(NOW, 600)).unwrap();
    assert_eq!(
        ring.verify::<StsClaims>(&lat_token, NOW),
        Err(TokenError::WrongType)
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let (m, stored, ring) = ring();
    let elsewhere = KeyRing::load("https://evil.example", &m, &stored).unwrap();
    let token = elsewhere
        .sign(&LimitedAccessClaims {
            iss: "https://evil.example".into(),
            ..lat(NOW, 600)
        })
        .unwrap();
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&token, NOW),
        Err(TokenError::WrongIssuer)
    );
    let token = ring
        .sign(&LimitedAccessClaims {
            aud: "urn:other".into(),
            ..lat(NOW, 600)
        })
        .unwrap();
    assert_eq!(
        ring.verify::<LimitedAccessClaims>(&token, NOW),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn garbage_is_malformed() {
    let (_, _, ring) = ring();
    for junk in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", &"x".repeat(9000)] {
        assert_eq!(
            ring.verify::<LimitedAccessClaims>(junk, NOW),
            Err(TokenError::Malformed),
            "{junk:.20}"
        );
    }
}

#[test]
fn sealed_keys_need_the_right_master_key_and_are_never_printed() {
    let (_, stored, _) = ring();
    let err = KeyRing::load(ISS, &master(), &stored).unwrap_err();
    assert_eq!(err, TokenError::SealedKey);
    let debug = format!("{stored:?} {:?}", master());
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains("sealed_private: ["));

    let mut moved = stored.clone();
    let active = moved.iter().position(|k| k.state == KeyState::Active).unwrap();
    let pending = moved.iter().position(|k| k.state == KeyState::Pending).unwrap();
    // Sealed data bound to one kid does not open under another.
    moved[pending].state = KeyState::Active;
    moved[pending].sealed_private = moved[active].sealed_private.clone();
    moved[active].state = KeyState::Retired;
    assert!(KeyRing::load(ISS, &master(), &moved).is_err());
}

#[test]
fn rotation_promotes_the_published_key_and_old_tokens_still_verify() {
    let (m, mut stored, ring) = ring();
    let old_token = ring.sign(&lat(NOW, 3600)).unwrap();
    let pending_kid = stored
        .iter()
        .find(|k| k.state == KeyState::Pending)
        .unwrap()
        .kid
        .clone();
    assert!(
        ring.jwks().keys.iter().any(|k| k.kid == pending_kid),
        "the next key is published before it signs"
    );

    let later = NOW.plus_secs(100);
    let rotation = Rotation::plan(&stored, &m, later).unwrap();
    assert_eq!(rotation.promote.as_deref(), Some(pending_kid.as_str()));
    for k in &mut stored {
        if Some(&k.kid) == rotation.promote.as_ref() {
            k.state = KeyState::Active;
            k.activated_at = Some(later);
        } else if rotation.retire.contains(&k.kid) {
            k.state = KeyState::Retired;
            k.retired_at = Some(later);
        }
    }
    stored.push(rotation.new_pending.clone());
    let ring = KeyRing::load(ISS, &m, &stored).unwrap();
    assert_eq!(ring.active_kid(), Some(pending_kid.as_str()));
    assert_eq!(ring.jwks().keys.len(), 3);
    assert!(ring.verify::<LimitedAccessClaims>(&old_token, later).is_ok());
    assert!(KeyRing::removable(&stored, later.plus_secs(86_399), 86_400).is_empty());
    assert_eq!(
        KeyRing::removable(&stored, later.plus_secs(86_400), 86_400).len(),
        1
    );
}

/// Found by the `jwt_verify` fuzzer: a signed token with `nbf` at `i64::MIN` overflowed the leeway subtraction
/// (a panic in debug builds). It is judged, not crashed on.
#[test]
fn regression_an_extreme_nbf_is_judged_without_overflow() {
    let (_, _, ring) = ring();
    let sts = StsClaims {
        iss: ISS.into(),
        aud: StsClaims::AUDIENCE.into(),
        sub: rid("client1"),
        iat: 0,
        nbf: i64::MIN,
        exp: NOW.secs() + 600,
        jti: "j".into(),
        kslot: KeySlot::Key1,
        kgen: 1,
    };
    let token = ring.sign(&sts).unwrap();
    assert_eq!(ring.verify::<StsClaims>(&token, NOW), Ok(sts));
}
