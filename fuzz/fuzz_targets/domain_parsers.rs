//! The text parsers and checks of `tessera_core` that requests reach, on any text (UTF-8, lossy): identity ids
//! and names (each kind), thread and group ids, chat continuation tokens and `Last-Event-ID`, scopes, feature
//! flags, RFC 3339 timestamps, chat message types, topic, message, display-name and face name checks, lifetimes,
//! key hashes, and serde_json of the core types that request bodies carry. Each answers with a value or an
//! error, never a panic; a value re-encodes and parses back to itself and obeys the rule its parser states.

#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::account::{AccountKind, IsvGrant, KeySlot};
use tessera_core::chat::{
    self, MessageContent, MessageType, MessagesCursor, Participant, ThreadId, ThreadsCursor,
};
use tessera_core::face::{self, GroupId};
use tessera_core::identity::{self, IdentityId, IdentityKind, IdentityName};
use tessera_core::policy;
use tessera_core::scope::{Scope, ScopeSet};
use tessera_core::secret::KeyHash;
use tessera_core::{FeatureFlag, FlagSet, Timestamp};

/// `value` → JSON → the same value, and the JSON is stable.
fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("serialise");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not parse back: {e}"));
    assert_eq!(&back, value, "{json}");
    assert_eq!(serde_json::to_string(&back).expect("serialise"), json);
}

/// Deserialises `data` as `T`; what parses round-trips.
fn json<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    let value = serde_json::from_slice::<T>(data).ok()?;
    json_round_trip(&value);
    Some(value)
}

fn ids(text: &str) {
    if let Ok(id) = IdentityId::parse(text) {
        // Any spelling `Uuid` reads is accepted; the id is the canonical one (lowercase, hyphenated).
        let canonical = id.as_str();
        assert!(text.starts_with(identity::ACS_PREFIX));
        assert_eq!(
            canonical.len(),
            identity::ACS_PREFIX.len() + 36 + 1 + 36,
            "{canonical}"
        );
        assert_eq!(canonical, canonical.to_ascii_lowercase());
        let again = IdentityId::parse(canonical).expect("the canonical id parses");
        assert_eq!(again, id);
        assert_eq!(again.as_str(), canonical);
        assert_eq!(id.to_string(), canonical);
        assert!(canonical.contains(&id.account().hyphenated().to_string()));
        json_round_trip(&id);
    }
    for kind in [IdentityKind::Human, IdentityKind::Bot, IdentityKind::PhoneNumber] {
        if let Ok(name) = IdentityName::parse(text, kind) {
            let canonical = name.as_str();
            assert!(!canonical.is_empty());
            assert_eq!(canonical, text.trim().to_lowercase());
            assert!(!canonical.chars().any(char::is_control));
            let again = IdentityName::parse(canonical, kind)
                .unwrap_or_else(|e| panic!("the canonical name {canonical:?} ({kind:?}) is refused: {e}"));
            assert_eq!(again, name, "the canonical name is a fixed point");
            json_round_trip(&name);
        }
    }
    if let Ok(id) = ThreadId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert_eq!(ThreadId::parse(id.as_str()).as_ref(), Ok(&id));
        assert_eq!(id.to_string(), text);
    }
    if let Ok(id) = GroupId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert!((1..=64).contains(&text.len()));
    }
}

fn names(text: &str) {
    let names: Vec<&str> = text.split([',', ' ', '\n']).collect();
    if let Ok(set) = ScopeSet::parse(&names) {
        let wire: Vec<&str> = set.iter().map(Scope::name).collect();
        assert!(!wire.is_empty());
        assert_eq!(ScopeSet::parse(&wire), Ok(set));
        assert!(set.within(set));
        json_round_trip(&set);
    }
    if let Ok(set) = FlagSet::parse(&names) {
        assert_eq!(FlagSet::parse(&set.names()), Ok(set));
        assert!(set.names().iter().all(|n| names.contains(n)));
        assert_eq!(set.to_string(), set.names().join(","));
        json_round_trip(&set);
    }
    for name in &names {
        if let Ok(scope) = Scope::parse(name) {
            assert_eq!(scope.name(), *name);
        }
        if let Ok(flag) = FeatureFlag::parse(name) {
            assert_eq!(flag.name(), *name);
        }
    }
}

fn times(text: &str) {
    if let Some(t) = Timestamp::parse_rfc3339(text) {
        let written = t.to_rfc3339();
        assert_eq!(
            Timestamp::parse_rfc3339(&written),
            Some(t),
            "{text:?} → {t:?} → {written:?}"
        );
        assert_eq!(t.to_string(), written);
        json_round_trip(&t);
    }
    if let Ok(secs) = policy::lat_lifetime(Some(text)) {
        assert!((policy::LAT_MIN_LIFETIME_SECS..=policy::LAT_MAX_LIFETIME_SECS).contains(&secs));
        assert_eq!(text.trim().parse::<i64>(), Ok(secs));
    }
}

/// `continuationToken` and `Last-Event-ID`.
fn cursors(text: &str) {
    if let Some(cursor) = ThreadsCursor::parse(text) {
        let written = cursor.encode();
        assert_eq!(
            ThreadsCursor::parse(&written).as_ref(),
            Some(&cursor),
            "{text:?} → {written:?}"
        );
        assert_eq!(
            ThreadsCursor::parse(&written).map(|c| c.encode()),
            Some(written.clone())
        );
        // What the SDK re-quotes: digits, dots, hex and a sign.
        assert!(
            written
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b'-'),
            "{written}"
        );
    }
    if let Some(cursor) = MessagesCursor::parse(text) {
        let written = cursor.encode();
        assert_eq!(
            MessagesCursor::parse(&written),
            Some(cursor),
            "{text:?} → {written:?}"
        );
        assert_eq!(
            MessagesCursor::parse(&written).map(|c| c.encode()),
            Some(written.clone())
        );
        assert!(
            written
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-'),
            "{written}"
        );
    }
    if let Some(id) = chat::parse_last_event_id(text) {
        assert!(id >= 0);
        assert_eq!(chat::parse_last_event_id(&id.to_string()), Some(id));
        assert_eq!(
            text.trim().trim_start_matches('0').len(),
            id.to_string().trim_start_matches('0').len()
        );
    }
}

fn chat_rules(text: &str) {
    if let Some(t) = MessageType::parse(text) {
        assert_eq!(t.as_str(), text);
    }
    for raw in [Some(text), None] {
        if let Ok(t) = MessageType::sendable(raw) {
            assert!(matches!(t, MessageType::Text | MessageType::Html));
            assert!(raw.is_none_or(|r| r.eq_ignore_ascii_case(t.as_str())));
        }
    }
    if chat::check_topic(text).is_ok() {
        assert!((1..=chat::MAX_TOPIC_CHARS).contains(&text.chars().count()));
    }
    if chat::check_display_name(text).is_ok() {
        assert!(text.chars().count() <= chat::MAX_DISPLAY_NAME_CHARS);
    }
    // The first line is the content, the others `key=value` metadata.
    let mut lines = text.split('\n');
    let content = lines.next().unwrap_or_default();
    let metadata: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if chat::check_message(content, &metadata).is_ok() {
        assert!((1..=chat::MAX_CONTENT_BYTES).contains(&content.len()));
        assert!(metadata.len() <= chat::MAX_METADATA_ENTRIES);
    }
    let (name, user_data) = match text.split_once('\n') {
        Some((name, data)) => (name, Some(data)),
        None => (text, None),
    };
    if face::check_name_and_user_data(name, user_data).is_ok() {
        assert!((1..=face::MAX_NAME_CHARS).contains(&name.chars().count()));
    }
    if face::check_recognition_model(text).is_ok() {
        assert!(face::RECOGNITION_MODELS.contains(&text));
    }
    if let Some(hash) = KeyHash::from_hex(text) {
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
        assert!(hash.matches(&hash));
    }
    for (parsed, name) in [
        (AccountKind::from_name(text).map(AccountKind::as_str), text),
        (KeySlot::from_name(text).map(KeySlot::as_str), text),
    ] {
        if let Some(parsed) = parsed {
            assert_eq!(parsed, name);
        }
    }
}

fn bodies(data: &[u8]) {
    if let Some(p) = json::<Participant>(data) {
        // The rules a handler applies next must not panic either.
        if let Some(name) = &p.display_name {
            let _ = chat::check_display_name(name);
        }
    }
    let _ = json::<Vec<Participant>>(data);
    if let Some(content) = json::<MessageContent>(data) {
        if let Some(message) = &content.message {
            let _ = chat::check_message(message, &BTreeMap::new());
        }
        if let Some(topic) = &content.topic {
            let _ = chat::check_topic(topic);
        }
    }
    let _ = json::<BTreeMap<String, String>>(data).map(|m| chat::check_message("x", &m));
    let _ = json::<IdentityId>(data);
    let _ = json::<IdentityKind>(data);
    let _ = json::<ScopeSet>(data);
    let _ = json::<FlagSet>(data);
    let _ = json::<IsvGrant>(data);
    let _ = json::<Timestamp>(data);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    ids(&text);
    names(&text);
    times(&text);
    chat_rules(&text);
    cursors(&text);
    bodies(data);
});
