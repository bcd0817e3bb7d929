//! `ResourceId::parse` on any text (UTF-8, lossy): an error or a canonical id, never a panic; the canonical form
//! parses back to the same id, is a fixed point, is what `Display` and serde write, agrees with the input up to
//! ASCII case (bar the subscription GUID's spelling) and names the account and kind that `name()` and `kind()`
//! return.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::ResourceId;
use tessera_core::arm::MAX_RESOURCE_ID_LEN;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(id) = ResourceId::parse(&raw) else {
        assert!(serde_json::from_value::<ResourceId>(serde_json::Value::String(raw.into_owned())).is_err());
        return;
    };
    let canonical = id.as_str();
    assert!(raw.len() <= MAX_RESOURCE_ID_LEN);
    assert!(canonical.len() <= MAX_RESOURCE_ID_LEN, "{canonical}");

    // Round trip and fixed point.
    let again = ResourceId::parse(canonical).expect("the canonical form parses");
    assert_eq!(again, id);
    assert_eq!(again.as_str(), canonical);
    assert_eq!(id.to_string(), canonical);
    assert_eq!(canonical.parse::<ResourceId>().as_ref(), Ok(&id));
    let json = serde_json::to_string(&id).expect("serialise");
    assert_eq!(json, serde_json::to_string(canonical).expect("serialise"));
    assert_eq!(
        serde_json::from_str::<ResourceId>(&json).expect("deserialise"),
        id
    );

    // The canonical form is the input's segments, ARM's casing for the fixed ones, lowercase for the rest.
    let input: Vec<&str> = raw.split('/').collect();
    let output: Vec<&str> = canonical.split('/').collect();
    assert_eq!(input.len(), 9, "{raw}");
    assert_eq!(output.len(), 9, "{canonical}");
    for (i, (a, b)) in input.iter().zip(&output).enumerate() {
        if i == 2 {
            // The subscription GUID, in any spelling Uuid accepts, becomes lowercase hyphenated.
            assert_eq!(b.len(), 36, "{canonical}");
            continue;
        }
        assert!(a.eq_ignore_ascii_case(b), "segment {i}: {a} → {b}");
    }
    assert!(canonical.starts_with("/subscriptions/"));
    assert_eq!(output[3], "resourceGroups");
    assert_eq!(output[5], "providers");
    assert_eq!(format!("{}/{}", output[6], output[7]), id.kind().provider());
    assert_eq!(id.name(), output[8]);
    for i in [2, 4, 8] {
        assert_eq!(output[i], output[i].to_ascii_lowercase(), "{canonical}");
    }
    // Equal ids are equal strings: a case change of the input (bar the GUID's spelling) names the same account.
    let upper: Vec<String> = input
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 2 {
                (*s).to_owned()
            } else {
                s.to_ascii_uppercase()
            }
        })
        .collect();
    let upper = ResourceId::parse(&upper.join("/")).expect("ARM ids are case-insensitive");
    assert_eq!(upper, id);
});
