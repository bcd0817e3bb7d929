//! JSON encoding of JWT segments that every SDK can decode.
//!
//! The Azure Python SDKs decode the payload with *standard* base64 in non-strict mode, which silently drops the
//! base64url characters `-` and `_` (docs/wire.md §3.1), and then require ASCII. In base64 of ASCII text, `-`/`_`
//! only arise from bytes whose low six bits are all ones at the third position of a 3-byte group: `>`, `?`, `~`
//! and DEL. So we write ASCII-only JSON with those four characters (and every non-ASCII character) as `\uXXXX`
//! escapes: the base64url text of such JSON can never contain `-` or `_`, whatever the claims hold.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use std::io;

struct SdkSafe;

impl serde_json::ser::Formatter for SdkSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && !matches!(c, '>' | '?' | '~' | '\x7f') {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as base64url (no padding) of SDK-safe JSON.
pub(crate) fn encode_segment<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let mut json = Vec::with_capacity(256);
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut json, SdkSafe))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn no_url_only_characters_whatever_the_text() {
        let nasty: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        for shift in 0..3 {
            let value = serde_json::json!({ "pad": "x".repeat(shift), "s": nasty, "q": "a?b>c~d" });
            let seg = encode_segment(&value).unwrap();
            assert!(!seg.contains(['-', '_']), "shift {shift}");
            // What the Python SDK does: standard base64 with padding, then ASCII, then JSON.
            let padded = format!("{seg}{}", "=".repeat((4 - seg.len() % 4) % 4));
            let json = STANDARD.decode(padded).unwrap();
            assert!(json.is_ascii());
            let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, value);
        }
    }
}
