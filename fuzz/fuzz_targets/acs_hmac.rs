//! ACS HMAC request authentication (`acs_hmac::verify`, `is_hmac`, `http_date`, `content_hash`): any request is
//! refused with an error or accepted, never a panic, and the answer is the one docs/wire.md §2 gives: accepted
//! exactly when the signature is some key's over an accepted form of the request (the path as sent or
//! percent-decoded, the query never; the host with or without a trailing `/` and the default port), the body
//! hash matches and the date is within the skew; and the date `http_date` writes is one `verify` reads.
//!
//! Input: `mode` byte, then
//! - even: a request as text (`METHOD target`, `name: value` lines for `host`, `x-ms-date`,
//!   `x-ms-content-sha256` and `authorization`, an empty line, the body), bit 1 of `mode` saying TLS, verified
//!   at the docs/wire.md §2.3 vectors' time with their key and another;
//! - odd: structured (`arbitrary`): a request signed with one of the keys for a path and host, presented with a
//!   path, host, method, body and clock that may differ; or a time for `http_date`.
//!
//! `is_hmac` is given header values as the server has them (`HeaderValue::to_str`: visible ASCII, space, tab);
//! with `TESSERA_FUZZ_ANY_STR=1` it is given any text, as its `&str` signature allows.

#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use tessera_core::Timestamp;
use tessera_core::acs_hmac::{self, HmacError, MAX_SKEW_SECS, SignedRequest};

/// docs/wire.md §2.3's test key, and a second key of the same account.
const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: [u8; 32] = [0x5a; 32];
/// docs/wire.md §2.3's date: `Mon, 01 Jan 2024 00:00:00 GMT`.
const VECTOR_NOW: Timestamp = Timestamp::from_secs(1_704_067_200);

static KEYS: LazyLock<[Vec<u8>; 2]> =
    LazyLock::new(|| [STANDARD.decode(KEY_B64).expect("key"), OTHER_KEY.to_vec()]);
static ANY_STR: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("TESSERA_FUZZ_ANY_STR").is_some_and(|v| v == "1"));

fn keys() -> [&'static [u8]; 2] {
    [&KEYS[0], &KEYS[1]]
}

/// Whether `http::HeaderValue::to_str` would give this value to the server.
fn header_text(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

fn check_is_hmac(value: Option<&str>) -> bool {
    if value.is_some_and(|v| !*ANY_STR && !header_text(v)) {
        return false;
    }
    acs_hmac::is_hmac(value)
}

/// The forms of the request-target a signature may cover (docs/wire.md §2): as sent, or with the path (never the
/// query) percent-decoded when that is UTF-8.
fn accepted_paths(target: &str) -> Vec<String> {
    let (path, query) = match target.find('?') {
        Some(i) => (&target[..i], Some(&target[i..])),
        None => (target, None),
    };
    let mut forms = vec![target.to_owned()];
    if let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() {
        forms.push(format!("{decoded}{}", query.unwrap_or_default()));
    }
    forms
}

/// The forms of the `Host` header a signature may cover: with a trailing `/`, and with the scheme's default port
/// removed or, when there is no port, added.
fn accepted_hosts(host: &str, tls: bool) -> Vec<String> {
    let default_port = if tls { ":443" } else { ":80" };
    let mut bases = vec![host.to_owned()];
    if let Some(bare) = host.strip_suffix(default_port) {
        bases.push(bare.to_owned());
    } else if !host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        bases.push(format!("{host}{default_port}"));
    }
    bases.iter().flat_map(|h| [h.clone(), format!("{h}/")]).collect()
}

/// What `verify` must answer, from the spec.
fn expected(req: &SignedRequest<'_>, keys: &[&[u8]], now: Timestamp) -> Option<Result<usize, HmacError>> {
    let authorization = req.authorization?;
    let date = req.date?;
    let hash = req.content_sha256?;
    let prefix = "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=";
    // Only the form the SDKs send is modelled; other spellings are checked for consistency alone.
    // `verify` trims the end of the value.
    let signature = authorization.strip_prefix(prefix)?.trim_end();
    if STANDARD.decode(signature).is_err() {
        return Some(Err(HmacError::MalformedAuthorization));
    }
    let sent_at = date_of(date)?;
    if (sent_at - now.secs()).abs() > MAX_SKEW_SECS {
        return Some(Err(HmacError::DateOutOfRange));
    }
    if hash != acs_hmac::content_hash(req.body) {
        return Some(Err(HmacError::ContentHashMismatch));
    }
    for (index, key) in keys.iter().enumerate() {
        for path in accepted_paths(req.path_and_query) {
            for host in accepted_hosts(req.host, req.tls) {
                let expected = acs_hmac::sign(key, req.method, &path, date, &host, hash);
                if STANDARD.decode(&expected).ok() == STANDARD.decode(signature).ok() {
                    return Some(Ok(index));
                }
            }
        }
    }
    Some(Err(HmacError::BadSignature))
}

/// The time of an `x-ms-date` as `http_date` writes it (the only dates the oracle models).
fn date_of(date: &str) -> Option<i64> {
    let date = date.trim();
    let t = time_of(date)?;
    (acs_hmac::http_date(Timestamp::from_secs(t)) == date).then_some(t)
}

/// Parses `Mon, 01 Jan 2024 00:00:00 GMT` by hand, the weekday checked.
fn time_of(date: &str) -> Option<i64> {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (weekday, rest) = date.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(0..=9999).contains(&year) || [day, h, m, s].iter().any(|v| !(0..=99).contains(v)) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if WEEKDAYS[days.rem_euclid(7) as usize] != weekday {
        return None;
    }
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

/// Checks one request: no panic, and the spec's answer where the spec decides.
fn check(req: &SignedRequest<'_>, now: Timestamp) -> Result<usize, HmacError> {
    let keys = keys();
    let got = acs_hmac::verify(req, &keys, now);
    match &got {
        Ok(index) => {
            assert!(*index < keys.len());
            let authorization = req.authorization.expect("accepted without Authorization");
            if *ANY_STR || header_text(authorization) {
                assert!(acs_hmac::is_hmac(Some(authorization)), "{authorization}");
            }
            assert_eq!(
                req.content_sha256,
                Some(acs_hmac::content_hash(req.body).as_str())
            );
        }
        Err(e) => assert!(!e.code().is_empty() && !e.to_string().is_empty()),
    }
    if let Some(expected) = expected(req, &keys, now) {
        assert_eq!(got, expected, "{req:?}");
    }
    got
}

/// A request as text: `METHOD target`, header lines, an empty line, the body.
fn raw(text: &[u8], tls: bool) {
    let (head, body) = match text.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let (method, target) = lines
        .next()
        .unwrap_or_default()
        .split_once(' ')
        .unwrap_or_default();
    let (mut host, mut date, mut hash, mut authorization) = ("", None, None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name.to_ascii_lowercase().as_str() {
            "host" => host = value,
            "x-ms-date" => date = Some(value),
            "x-ms-content-sha256" => hash = Some(value),
            "authorization" => authorization = Some(value),
            _ => {}
        }
        check_is_hmac(Some(value));
    }
    let req = SignedRequest {
        method,
        path_and_query: target,
        host,
        tls,
        date,
        content_sha256: hash,
        authorization,
        body,
    };
    let _ = check(&req, VECTOR_NOW);
}

#[derive(Arbitrary, Debug)]
struct Signed<'a> {
    other_key: bool,
    method: &'a str,
    signed_path: &'a str,
    signed_host: &'a str,
    /// What the request carries instead of the signed values, if anything.
    presented_method: Option<&'a str>,
    presented_path: Option<&'a str>,
    presented_host: Option<&'a str>,
    presented_body: Option<&'a [u8]>,
    tls: bool,
    /// When it was signed, seconds since the epoch.
    signed_at: u32,
    /// The verifier's clock minus the signing time, seconds.
    skew: i16,
    lowercase_scheme: bool,
    body: &'a [u8],
}

#[derive(Arbitrary, Debug)]
enum Structured<'a> {
    Signed(Signed<'a>),
    /// `http_date` of any time; for years 1 to 9999, `verify` reads it back.
    Date(i64),
    /// `is_hmac` and `content_hash` of anything.
    Text(&'a str, &'a [u8]),
}

fn signed(s: &Signed<'_>) {
    let keys = keys();
    let key = keys[usize::from(s.other_key)];
    let signed_at = Timestamp::from_secs(i64::from(s.signed_at));
    let date = acs_hmac::http_date(signed_at);
    let hash = acs_hmac::content_hash(s.body);
    let signature = acs_hmac::sign(key, s.method, s.signed_path, &date, s.signed_host, &hash);
    let scheme = if s.lowercase_scheme {
        "hmac-sha256"
    } else {
        "HMAC-SHA256"
    };
    let authorization =
        format!("{scheme} SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}");
    let req = SignedRequest {
        method: s.presented_method.unwrap_or(s.method),
        path_and_query: s.presented_path.unwrap_or(s.signed_path),
        host: s.presented_host.unwrap_or(s.signed_host),
        tls: s.tls,
        date: Some(&date),
        content_sha256: Some(&hash),
        authorization: Some(&authorization),
        body: s.presented_body.unwrap_or(s.body),
    };
    let now = signed_at.plus_secs(i64::from(s.skew));
    let got = check(&req, now);
    let unchanged = s
        .presented_method
        .is_none_or(|m| m.eq_ignore_ascii_case(s.method))
        && s.presented_path.is_none_or(|p| p == s.signed_path)
        && s.presented_host.is_none_or(|h| h == s.signed_host)
        && s.presented_body.is_none_or(|b| b == s.body);
    if unchanged && i64::from(s.skew).abs() <= MAX_SKEW_SECS {
        assert_eq!(got, Ok(usize::from(s.other_key)), "{s:?}");
    }
    if i64::from(s.skew).abs() > MAX_SKEW_SECS {
        assert_eq!(got, Err(HmacError::DateOutOfRange), "{s:?}");
    }
}

fn date(t: i64) {
    let at = Timestamp::from_secs(t);
    let date = acs_hmac::http_date(at);
    // Years 1 to 9999.
    if !(-62_135_596_800..=253_402_300_799).contains(&at.secs()) {
        return;
    }
    assert_eq!(time_of(&date), Some(at.secs()), "{t} → {date}");
    let hash = acs_hmac::content_hash(b"");
    let req = SignedRequest {
        method: "POST",
        path_and_query: "/",
        host: "localhost",
        tls: true,
        date: Some(&date),
        content_sha256: Some(&hash),
        authorization: Some("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA"),
        body: b"",
    };
    assert_eq!(
        acs_hmac::verify(&req, &keys(), at),
        Err(HmacError::BadSignature),
        "{date}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw(rest, mode & 2 != 0);
        return;
    }
    match Structured::arbitrary_take_rest(Unstructured::new(rest)) {
        Ok(Structured::Signed(s)) => signed(&s),
        Ok(Structured::Date(t)) => date(t),
        Ok(Structured::Text(text, body)) => {
            check_is_hmac(Some(text));
            assert_eq!(acs_hmac::content_hash(body).len(), 44);
        }
        Err(_) => {}
    }
});
