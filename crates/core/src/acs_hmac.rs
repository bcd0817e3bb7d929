//! ACS HMAC-SHA256 request authentication, exactly as the Azure Communication SDKs sign (docs/wire.md §2).
//!
//! String to sign: `VERB\n<path>[?<query>]\n<x-ms-date>;<host>;<x-ms-content-sha256>`, signed with the account's
//! access key (base64-decoded), sent as
//! `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64>`.
//!
//! The SDKs differ in what they sign, so the verifier accepts the variants they produce, and nothing else:
//! - path: the raw request-target as received, or that with its path percent-decoded (Python's async client);
//!   the query is never decoded, so `?name=a%26kind%3Dbot` cannot stand for a signature over `?name=a&kind=bot`;
//! - host: the `Host` header, with a trailing `/` (Python with an endpoint ending in `/`), and with the default
//!   port removed or added (JS drops `:443`/`:80`);
//! - the body hash must be the SHA-256 of the bytes received, and `x-ms-date` within [`MAX_SKEW_SECS`] of now.
//!
//! The signature comparison is constant-time. There is no nonce on this wire: a captured request verifies again
//! within the date window (README, "Communication identities", says why Tessera does not remember signatures).

use crate::time::Timestamp;
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// Largest accepted difference between `x-ms-date` and the server's clock, either way, seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// The parts of a request that the signature covers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The raw request-target: path and query, still percent-encoded.
    pub path_and_query: &'a str,
    /// The `Host` header.
    pub host: &'a str,
    /// Whether the request arrived over TLS (decides the default port).
    pub tls: bool,
    /// `x-ms-date`.
    pub date: Option<&'a str>,
    /// `x-ms-content-sha256`.
    pub content_sha256: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Why a signed request was refused. `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HmacError {
    /// A required header is missing.
    MissingHeader(&'static str),
    /// `Authorization` is not `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=…`.
    MalformedAuthorization,
    /// `x-ms-date` is not an RFC 1123 date.
    MalformedDate,
    /// `x-ms-date` is too far from the server's clock.
    DateOutOfRange,
    /// `x-ms-content-sha256` is not the hash of the body.
    ContentHashMismatch,
    /// The signature does not match any accepted form of the request.
    BadSignature,
}

impl HmacError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "MissingAuthenticationHeader",
            Self::MalformedAuthorization => "InvalidAuthorizationHeader",
            Self::MalformedDate => "InvalidDateHeader",
            Self::DateOutOfRange => "RequestDateOutOfRange",
            Self::ContentHashMismatch => "ContentHashMismatch",
            Self::BadSignature => "InvalidSignature",
        }
    }
}

impl fmt::Display for HmacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(h) => write!(f, "the {h} header is required"),
            Self::MalformedAuthorization => f.write_str(
                "Authorization must be HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64>",
            ),
            Self::MalformedDate => f.write_str("x-ms-date must be an RFC 1123 date"),
            Self::DateOutOfRange => {
                write!(f, "x-ms-date must be within {MAX_SKEW_SECS} seconds of the server's clock")
            }
            Self::ContentHashMismatch => f.write_str("x-ms-content-sha256 is not the SHA-256 of the body"),
            Self::BadSignature => f.write_str("the request signature is not valid"),
        }
    }
}

/// The base64 SHA-256 of `body`, as `x-ms-content-sha256` carries it.
pub fn content_hash(body: &[u8]) -> String {
    STANDARD.encode(digest::digest(&digest::SHA256, body))
}

/// The signature the SDKs compute.
pub fn sign(key: &[u8], method: &str, path_and_query: &str, date: &str, host: &str, hash: &str) -> String {
    let to_sign = format!(
        "{}\n{path_and_query}\n{date};{host};{hash}",
        method.to_ascii_uppercase()
    );
    STANDARD.encode(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        to_sign.as_bytes(),
    ))
}

/// Whether the request carries ACS HMAC authentication at all.
pub fn is_hmac(authorization: Option<&str>) -> bool {
    authorization.is_some_and(|a| a.len() > 12 && a.as_bytes()[..12].eq_ignore_ascii_case(b"HMAC-SHA256 "))
}

/// Checks the request against each of `keys` (an account's access keys); `Ok(index)` of the key that signed it.
pub fn verify(req: &SignedRequest<'_>, keys: &[&[u8]], now: Timestamp) -> Result<usize, HmacError> {
    let authorization = req
        .authorization
        .ok_or(HmacError::MissingHeader("Authorization"))?;
    let date = req.date.ok_or(HmacError::MissingHeader("x-ms-date"))?;
    let hash = req
        .content_sha256
        .ok_or(HmacError::MissingHeader("x-ms-content-sha256"))?;
    let signature = parse_authorization(authorization)?;
    let sent_at = parse_rfc1123(date).ok_or(HmacError::MalformedDate)?;
    if (sent_at.secs() - now.secs()).abs() > MAX_SKEW_SECS {
        return Err(HmacError::DateOutOfRange);
    }
    if hash != content_hash(req.body) {
        return Err(HmacError::ContentHashMismatch);
    }
    let decoded = with_decoded_path(req.path_and_query);
    let paths: Vec<&str> = std::iter::once(req.path_and_query)
        .chain(decoded.as_deref())
        .collect();
    let hosts = host_variants(req.host, req.tls);
    for (index, key) in keys.iter().enumerate() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key);
        for path in &paths {
            for host in &hosts {
                let to_sign = format!(
                    "{}\n{path}\n{date};{host};{hash}",
                    req.method.to_ascii_uppercase()
                );
                if hmac::verify(&key, to_sign.as_bytes(), &signature).is_ok() {
                    return Ok(index);
                }
            }
        }
    }
    Err(HmacError::BadSignature)
}

fn parse_authorization(value: &str) -> Result<Vec<u8>, HmacError> {
    let bad = HmacError::MalformedAuthorization;
    let (scheme, rest) = value.split_once(' ').ok_or(bad.clone())?;
    if !scheme.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(bad);
    }
    let (signed, signature) = rest.trim().split_once('&').ok_or(bad.clone())?;
    let signed = signed.strip_prefix("SignedHeaders=").ok_or(bad.clone())?;
    if !signed.eq_ignore_ascii_case("x-ms-date;host;x-ms-content-sha256") {
        return Err(bad);
    }
    let signature = signature.strip_prefix("Signature=").ok_or(bad.clone())?;
    STANDARD.decode(signature).map_err(|_| bad)
}

/// Parses `Mon, 01 Jan 2024 00:00:00 GMT`.
const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// `t` as `x-ms-date` carries it (RFC 1123, GMT), for signing clients.
pub fn http_date(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.secs())
        .ok()
        .and_then(|dt| dt.format(HTTP_DATE).ok())
        .unwrap_or_default()
}

fn parse_rfc1123(s: &str) -> Option<Timestamp> {
    let format = HTTP_DATE;
    let dt = time::PrimitiveDateTime::parse(s.trim(), format)
        .ok()?
        .assume_utc();
    Some(Timestamp::from_secs(dt.unix_timestamp()))
}

fn host_variants(host: &str, tls: bool) -> Vec<String> {
    let default_port = if tls { ":443" } else { ":80" };
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let mut bases = vec![host.to_owned()];
    match host.strip_suffix(default_port) {
        Some(bare) => bases.push(bare.to_owned()),
        None if !has_port => bases.push(format!("{host}{default_port}")),
        None => {}
    }
    bases.iter().flat_map(|h| [h.clone(), format!("{h}/")]).collect()
}

/// `path_and_query` with its path percent-decoded and its query as sent, if that differs and decodes to UTF-8.
fn with_decoded_path(path_and_query: &str) -> Option<String> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if !path.contains('%') {
        return None;
    }
    let mut decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?
        .into_owned();
    if let Some(query) = query {
        decoded.push('?');
        decoded.push_str(query);
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `acs_hmac` fuzzer: a multi-byte character across byte 12 panicked (not a char boundary).
    #[test]
    fn regression_is_hmac_takes_any_text() {
        assert!(!is_hmac(Some("HMAC-SHA256\u{e9} x")));
        assert!(!is_hmac(Some("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}")));
        assert!(is_hmac(Some("hmac-sha256 SignedHeaders=x")));
    }

    const KEY_B64: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const DATE: &str = "Mon, 01 Jan 2024 00:00:00 GMT";
    const EMPTY_HASH: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    fn key() -> Vec<u8> {
        STANDARD.decode(KEY_B64).unwrap()
    }

    fn now() -> Timestamp {
        parse_rfc1123(DATE).unwrap()
    }

    fn auth(sig: &str) -> String {
        format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={sig}")
    }

    fn request<'a>(
        path: &'a str,
        host: &'a str,
        body: &'a [u8],
        hash: &'a str,
        authz: &'a str,
    ) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path_and_query: path,
            host,
            tls: true,
            date: Some(DATE),
            content_sha256: Some(hash),
            authorization: Some(authz),
            body,
        }
    }

    #[test]
    fn wire_spec_vectors_sign_and_verify() {
        assert_eq!(http_date(now()), DATE);
        assert_eq!(parse_rfc1123(&http_date(now())), Some(now()));
        assert_eq!(content_hash(b""), EMPTY_HASH);
        let path = "/identities?api-version=2023-10-01";
        let sig = sign(&key(), "POST", path, DATE, "localhost:8080", EMPTY_HASH);
        assert_eq!(sig, "1vJEY5lWnAA9OR2vz0GF+dgwpucJzWYcCu7VfR4zMAI=");
        let a = auth(&sig);
        assert_eq!(
            verify(
                &request(path, "localhost:8080", b"", EMPTY_HASH, &a),
                &[&key()],
                now()
            ),
            Ok(0)
        );

        let body = br#"{"scopes": ["chat"]}"#;
        let hash = content_hash(body);
        assert_eq!(hash, "sZHRO4JkAmw3HcI1PyxrC5twHvkHIWjyMLVIkauXKRA=");
        let path = "/identities/8%3Aacs%3Ares_user/:issueAccessToken?api-version=2023-10-01";
        let sig = sign(&key(), "POST", path, DATE, "localhost:8080", &hash);
        assert_eq!(sig, "pzCg8Laf2wXXYuNi5MiBqWlwagf66kzDf4GTa5ygKic=");
        let a = auth(&sig);
        let other = vec![0u8; 32];
        assert_eq!(
            verify(
                &request(path, "localhost:8080", body, &hash, &a),
                &[&other, &key()],
                now()
            ),
            Ok(1)
        );
    }

    #[test]
    fn sdk_variants_of_host_and_path_are_accepted() {
        let key = key();
        let raw = "/identities/8%3Aacs%3Ax/:issueAccessToken?api-version=2023-10-01";
        // Python with an endpoint ending in '/', JS without the default port, Python async with a decoded path.
        for (signed_host, signed_path, host_header) in [
            ("localhost:8080/", raw, "localhost:8080"),
            ("example.com", raw, "example.com:443"),
            ("example.com:443", raw, "example.com"),
            (
                "localhost:8080",
                "/identities/8:acs:x/:issueAccessToken?api-version=2023-10-01",
                "localhost:8080",
            ),
        ] {
            let a = auth(&sign(&key, "POST", signed_path, DATE, signed_host, EMPTY_HASH));
            let req = request(raw, host_header, b"", EMPTY_HASH, &a);
            assert_eq!(verify(&req, &[&key], now()), Ok(0), "{signed_host} {signed_path}");
        }
    }

    #[test]
    fn only_the_path_is_percent_decoded() {
        let key = key();
        let raw = "/identities/8%3Aacs%3Ax?name=a%26kind%3Dbot&api-version=2023-10-01";
        let decoded_path = "/identities/8:acs:x?name=a%26kind%3Dbot&api-version=2023-10-01";
        let decoded_query = "/identities/8%3Aacs%3Ax?name=a&kind=bot&api-version=2023-10-01";
        let decoded_both = "/identities/8:acs:x?name=a&kind=bot&api-version=2023-10-01";
        for (signed, expected) in [
            (raw, Ok(0)),
            (decoded_path, Ok(0)),
            (decoded_query, Err(HmacError::BadSignature)),
            (decoded_both, Err(HmacError::BadSignature)),
        ] {
            let a = auth(&sign(&key, "POST", signed, DATE, "localhost", EMPTY_HASH));
            let req = request(raw, "localhost", b"", EMPTY_HASH, &a);
            assert_eq!(verify(&req, &[&key], now()), expected, "{signed}");
        }
    }

    #[test]
    fn wrong_host_path_body_key_or_date_is_refused() {
        let key = key();
        let path = "/identities?api-version=2023-10-01";
        let a = auth(&sign(&key, "POST", path, DATE, "localhost:8080", EMPTY_HASH));
        let ok = request(path, "localhost:8080", b"", EMPTY_HASH, &a);
        assert_eq!(verify(&ok, &[&key], now()), Ok(0));
        let bad = |req: SignedRequest<'_>, at: Timestamp| verify(&req, &[&key], at).unwrap_err();

        assert_eq!(
            bad(
                SignedRequest {
                    host: "evil:8080",
                    ..ok
                },
                now()
            ),
            HmacError::BadSignature
        );
        assert_eq!(
            bad(
                SignedRequest {
                    path_and_query: "/identities?api-version=2022-06-01",
                    ..ok
                },
                now()
            ),
            HmacError::BadSignature
        );
        assert_eq!(
            bad(
                SignedRequest {
                    method: "DELETE",
                    ..ok
                },
                now()
            ),
            HmacError::BadSignature
        );
        assert_eq!(
            bad(SignedRequest { body: b"{}", ..ok }, now()),
            HmacError::ContentHashMismatch
        );
        let hash = content_hash(b"{}");
        assert_eq!(
            bad(
                SignedRequest {
                    body: b"{}",
                    content_sha256: Some(&hash),
                    ..ok
                },
                now()
            ),
            HmacError::BadSignature
        );
        assert_eq!(verify(&ok, &[&[7u8; 32]], now()), Err(HmacError::BadSignature));
        assert_eq!(
            bad(ok, now().plus_secs(MAX_SKEW_SECS + 1)),
            HmacError::DateOutOfRange
        );
        assert_eq!(
            bad(ok, now().plus_secs(-MAX_SKEW_SECS - 1)),
            HmacError::DateOutOfRange
        );
        assert!(verify(&ok, &[&key], now().plus_secs(MAX_SKEW_SECS)).is_ok());
        assert_eq!(
            bad(
                SignedRequest {
                    date: Some("yesterday"),
                    ..ok
                },
                now()
            ),
            HmacError::MalformedDate
        );
        assert_eq!(
            bad(SignedRequest { date: None, ..ok }, now()),
            HmacError::MissingHeader("x-ms-date")
        );
        assert_eq!(
            bad(
                SignedRequest {
                    content_sha256: None,
                    ..ok
                },
                now()
            ),
            HmacError::MissingHeader("x-ms-content-sha256")
        );
        let other_headers = a.replace(
            "x-ms-date;host;x-ms-content-sha256",
            "host;x-ms-date;x-ms-content-sha256",
        );
        assert_eq!(
            bad(
                SignedRequest {
                    authorization: Some(&other_headers),
                    ..ok
                },
                now()
            ),
            HmacError::MalformedAuthorization
        );
        assert_eq!(
            bad(
                SignedRequest {
                    authorization: Some("Bearer x"),
                    ..ok
                },
                now()
            ),
            HmacError::MalformedAuthorization
        );
    }

    #[test]
    fn host_variants_cover_default_ports_and_trailing_slashes() {
        assert_eq!(host_variants("a:8080", true), ["a:8080", "a:8080/"]);
        assert_eq!(host_variants("a", true), ["a", "a/", "a:443", "a:443/"]);
        assert_eq!(host_variants("a:80", false), ["a:80", "a:80/", "a", "a/"]);
        assert_eq!(
            host_variants("[::1]", true),
            ["[::1]", "[::1]/", "[::1]:443", "[::1]:443/"]
        );
    }

    #[test]
    fn recognises_the_scheme() {
        assert!(is_hmac(Some("hmac-sha256 SignedHeaders=…")));
        assert!(!is_hmac(Some("Bearer eyJ")));
        assert!(!is_hmac(None));
    }
}
