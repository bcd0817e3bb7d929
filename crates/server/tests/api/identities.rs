//! Communication identities and user access tokens over HTTPS, on SQLite and PostgreSQL: the ACS wire (HMAC
//! signed as the SDKs sign), Tessera's `/v1` additions, live token checks, device refresh, `act`, and the audit.

use crate::common;

use common::{Acct, Backend, Resp, Server, Signing, jwt_claims, jwt_header, segment};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_core::Timestamp;

const V: &str = "api-version=2023-10-01";

struct Comm {
    server: Server,
    a: Acct,
}

impl Comm {
    async fn start(backend: Backend) -> Self {
        let server = Server::start(backend).await;
        let a = server.create_account(&common::communication_id("chat-a")).await;
        Self { server, a }
    }

    async fn acs(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.server.acs(method, path, body, self.a.key()).await
    }

    /// `POST /identities` (ACS) with `body`.
    async fn create(&self, body: Option<Value>) -> Resp {
        self.acs(Method::POST, &format!("/identities?{V}"), body).await
    }

    /// A new identity's id.
    async fn new_id(&self) -> String {
        self.create(None).await.ok(StatusCode::CREATED).json()["identity"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    async fn issue(&self, id: &str, body: Value) -> Resp {
        self.acs(
            Method::POST,
            &format!("/identities/{}/:issueAccessToken?{V}", segment(id)),
            Some(body),
        )
        .await
    }

    async fn token(&self, id: &str, scopes: &[&str]) -> String {
        self.issue(id, json!({"scopes": scopes}))
            .await
            .ok(StatusCode::OK)
            .json()["token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    async fn revoke(&self, id: &str) -> Resp {
        self.acs(
            Method::POST,
            &format!("/identities/{}/:revokeAccessTokens?{V}", segment(id)),
            None,
        )
        .await
    }

    async fn delete(&self, id: &str) -> Resp {
        self.acs(Method::DELETE, &format!("/identities/{}?{V}", segment(id)), None)
            .await
    }

    async fn me(&self, token: &str) -> Resp {
        self.server
            .send(self.server.request(Method::GET, "/access/me").bearer_auth(token))
            .await
    }

    async fn refresh(&self, token: &str, body: Value) -> Resp {
        self.server
            .send(
                self.server
                    .request(Method::POST, "/access/:refreshAccessToken")
                    .bearer_auth(token)
                    .json(&body),
            )
            .await
    }

    async fn identity_count(&self) -> usize {
        self.acs(Method::GET, "/v1/identities?maxPageSize=1000", None)
            .await
            .ok(StatusCode::OK)
            .json()["value"]
            .as_array()
            .expect("value")
            .len()
    }

    fn now(&self) -> Timestamp {
        self.server.clock().now()
    }

    /// Asserts that `actual` is `expected(t)` for a second `t` of the issuance, which happened between `since`
    /// (a second read before the request) and now: the clock may tick during the request.
    fn assert_issued_at(&self, since: i64, actual: &Value, expected: impl Fn(i64) -> Value) {
        let candidates: Vec<Value> = (since..=self.now().secs()).map(expected).collect();
        assert!(candidates.contains(actual), "{actual} is none of {candidates:?}");
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

on_both_backends!(
    acs_wire_round_trip,
    acs_refusals_change_nothing,
    hmac_authentication,
    other_credentials_and_accounts,
    names_kinds_lookup_and_paging,
    accounts_are_isolated,
    device_refresh_rotates_and_detects_reuse,
    refresh_never_outlives_revocation_or_deletion,
    acting_on_behalf_of_another_identity,
    hmac_names_its_account_by_host,
);

async fn acs_wire_round_trip(backend: Backend) {
    let c = Comm::start(backend).await;
    // The Python SDK's create_user: an empty body with a JSON content type.
    let created = c.create(None).await.ok(StatusCode::CREATED).json();
    let id = created["identity"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("8:acs:"), "{id}");
    assert_eq!(keys(&created), ["identity"]);

    let since = c.now().secs();
    let created = c
        .create(Some(
            json!({"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 60}),
        ))
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(keys(&created), ["accessToken", "identity"]);
    assert_eq!(keys(&created["accessToken"]), ["expiresOn", "token"]);
    let token = created["accessToken"]["token"].as_str().unwrap();
    let claims = jwt_claims(token);
    // An integer exp, one hour after issuance.
    c.assert_issued_at(since, &claims["exp"], |t| json!(t + 3600));
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(
        created["accessToken"]["expiresOn"],
        json!(Timestamp::from_secs(exp).to_rfc3339())
    );
    assert_eq!(claims["sub"], created["identity"]["id"]);
    assert_eq!(claims["scp"], json!(["chat", "voip"]));
    assert_eq!(claims["aud"], json!("urn:tessera:communication"));
    assert_eq!(claims["rev"], json!(0));
    assert_eq!(jwt_header(token)["typ"], json!("user+jwt"));
    assert_eq!(jwt_header(token)["alg"], json!("ES256"));
    let payload = token.split('.').nth(1).unwrap();
    assert!(
        !payload.contains('-') && !payload.contains('_'),
        "the Python SDK's non-strict base64 needs a payload without - and _"
    );

    // get_token: default lifetime on the ACS wire is 24 hours.
    let since = c.now().secs();
    let issued = c
        .issue(&id, json!({"scopes": ["chat.join"]}))
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(keys(&issued), ["expiresOn", "token"]);
    let old = issued["token"].as_str().unwrap().to_owned();
    c.assert_issued_at(since, &jwt_claims(&old)["exp"], |t| json!(t + 86_400));
    let me = c.me(&old).await.ok(StatusCode::OK).json();
    assert_eq!(me["identity"]["id"], json!(id));
    assert_eq!(me["scopes"], json!(["chat.join"]));

    // revoke_tokens: 204 and no body; the old token is dead, a new one lives.
    let revoked = c.revoke(&id).await.ok(StatusCode::NO_CONTENT);
    assert_eq!(revoked.text, "");
    c.me(&old).await.error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    let fresh = c.token(&id, &["chat"]).await;
    assert_eq!(jwt_claims(&fresh)["rev"], json!(1));
    c.me(&fresh).await.ok(StatusCode::OK);

    // delete_user: 204; every token dies; the identity is gone for every operation.
    let deleted = c.delete(&id).await.ok(StatusCode::NO_CONTENT);
    assert_eq!(deleted.text, "");
    c.me(&fresh)
        .await
        .error(StatusCode::UNAUTHORIZED, "IdentityDeleted");
    c.issue(&id, json!({"scopes": ["chat"]}))
        .await
        .error(StatusCode::NOT_FOUND, "IdentityNotFound");
    c.revoke(&id)
        .await
        .error(StatusCode::NOT_FOUND, "IdentityNotFound");
    c.delete(&id)
        .await
        .error(StatusCode::NOT_FOUND, "IdentityNotFound");
    c.acs(Method::GET, &format!("/identities/{}?{V}", segment(&id)), None)
        .await
        .error(StatusCode::NOT_FOUND, "IdentityNotFound");

    // Every change is in the chain, with the trusted service as actor.
    let events = c.server.verify_audit_chain(7).await;
    let actor = format!("account:{}", c.a.canonical);
    let count = |act: &str| {
        events
            .iter()
            .filter(|e| e.action == act && e.actor == actor && e.outcome.as_str() == "success")
            .count()
    };
    assert_eq!(count("identity.create"), 2);
    assert_eq!(count("userToken.issue"), 3);
    assert_eq!(count("identity.revokeTokens"), 1);
    assert_eq!(count("identity.delete"), 1);
}

async fn acs_refusals_change_nothing(backend: Backend) {
    let c = Comm::start(backend).await;
    let id = c.new_id().await;
    let before = c.server.verify_audit_chain(100).await.len();

    c.acs(Method::POST, "/identities", None)
        .await
        .error(StatusCode::BAD_REQUEST, "MissingApiVersionParameter");
    c.acs(Method::POST, "/identities?api-version=2099-01-01", None)
        .await
        .error(StatusCode::BAD_REQUEST, "UnsupportedApiVersion");
    for minutes in [59, 1441, 0, -1] {
        c.create(Some(
            json!({"createTokenWithScopes": ["chat"], "expiresInMinutes": minutes}),
        ))
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidTokenLifetime");
        c.issue(&id, json!({"scopes": ["chat"], "expiresInMinutes": minutes}))
            .await
            .error(StatusCode::BAD_REQUEST, "InvalidTokenLifetime");
    }
    for (body, code) in [
        (json!({"scopes": ["chat", "telepathy"]}), "UnknownScope"),
        (json!({"scopes": ["Chat"]}), "UnknownScope"),
        (json!({"scopes": []}), "NoScopes"),
        (json!({}), "InvalidRequestBody"),
        (json!({"scopes": ["chat"], "colour": "red"}), "InvalidRequestBody"),
        (json!({"scopes": "chat"}), "InvalidRequestBody"),
    ] {
        c.issue(&id, body).await.error(StatusCode::BAD_REQUEST, code);
    }
    c.create(Some(json!({"createTokenWithScopes": ["teleport"]})))
        .await
        .error(StatusCode::BAD_REQUEST, "UnknownScope");
    c.create(Some(json!({"expiresInMinutes": 60})))
        .await
        .error(StatusCode::BAD_REQUEST, "NoScopes");
    let bad_json = c
        .server
        .send(
            c.server
                .acs_request(
                    Method::POST,
                    &format!("/identities?{V}"),
                    None,
                    c.a.key(),
                    &Signing::default(),
                )
                .body("{not json"),
        )
        .await;
    // The body changed after signing: the hash no longer matches.
    bad_json.error(StatusCode::UNAUTHORIZED, "ContentHashMismatch");
    let signed_bad_json = Signing {
        body: Some("{not json".into()),
        ..Signing::default()
    };
    c.server
        .send(
            c.server
                .acs_request(
                    Method::POST,
                    &format!("/identities?{V}"),
                    None,
                    c.a.key(),
                    &signed_bad_json,
                )
                .body("{not json"),
        )
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidJson");
    for bad_id in ["nope", "8:acs:", "8:acs:not-a-guid_x", "4:+14255550123"] {
        c.issue(bad_id, json!({"scopes": ["chat"]}))
            .await
            .error(StatusCode::BAD_REQUEST, "InvalidIdentityId");
    }

    // Nothing was created or issued, and each refusal after authentication is audited as denied.
    assert_eq!(c.identity_count().await, 1);
    let events = c.server.verify_audit_chain(100).await;
    let new = &events[before..];
    assert!(new.iter().all(|e| e.outcome.as_str() == "denied"), "{new:?}");
    let count = |act: &str| new.iter().filter(|e| e.action == act).count();
    assert_eq!(
        count("userToken.issue"),
        4 + 6 + 4,
        "every refused issuance is audited"
    );
    assert_eq!(count("identity.create"), 4 + 2 + 1);
}

async fn hmac_authentication(backend: Backend) {
    let c = Comm::start(backend).await;
    let s = &c.server;
    let path = format!("/identities?{V}");
    let key = c.a.key().to_owned();
    let try_with = |signing: Signing| s.send(s.acs_request(Method::POST, &path, None, &key, &signing));
    // What the SDKs may sign and Tessera accepts: Python's host with a trailing slash, JS's host, skew within 5 min.
    for ok in [
        Signing::default(),
        Signing {
            host: Some(format!("{}/", s.host())),
            ..Signing::default()
        },
        Signing {
            skew_secs: 299,
            ..Signing::default()
        },
        Signing {
            skew_secs: -299,
            ..Signing::default()
        },
    ] {
        try_with(ok).await.ok(StatusCode::CREATED);
    }
    // Python's async client signs the percent-decoded path.
    let id = c.new_id().await;
    let encoded = format!("/identities/{}/:revokeAccessTokens?{V}", segment(&id));
    let decoded = format!("/identities/{id}/:revokeAccessTokens?{V}");
    s.send(s.acs_request(
        Method::POST,
        &encoded,
        None,
        c.a.key(),
        &Signing {
            path: Some(decoded),
            ..Signing::default()
        },
    ))
    .await
    .ok(StatusCode::NO_CONTENT);
    let created = c.identity_count().await;

    let refused = [
        (
            Signing {
                host: Some("evil.example:443".into()),
                ..Signing::default()
            },
            "InvalidSignature",
        ),
        (
            Signing {
                path: Some(format!("/identities?{V}&x=1")),
                ..Signing::default()
            },
            "InvalidSignature",
        ),
        (
            Signing {
                path: Some("/identities?api-version=2022-10-01".into()),
                ..Signing::default()
            },
            "InvalidSignature",
        ),
        (
            Signing {
                body: Some("{\"createTokenWithScopes\":[\"chat\"]}".into()),
                ..Signing::default()
            },
            "ContentHashMismatch",
        ),
        (
            Signing {
                skew_secs: 301,
                ..Signing::default()
            },
            "RequestDateOutOfRange",
        ),
        (
            Signing {
                skew_secs: -301,
                ..Signing::default()
            },
            "RequestDateOutOfRange",
        ),
    ];
    for (signing, code) in refused {
        try_with(signing).await.error(StatusCode::UNAUTHORIZED, code);
    }
    // A key of no account (the right shape, 32 random bytes).
    s.acs(
        Method::POST,
        &path,
        None,
        "B15gpDcLpUDtQX9ZDeOeXfccMkFzCoFpHLufHH6Dvsg=",
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "InvalidSignature");
    // A signed body swapped for another whose hash header is recomputed: the signature no longer covers it.
    let mut swapped = s
        .acs_request(Method::POST, &path, None, c.a.key(), &Signing::default())
        .body("{}")
        .build()
        .unwrap();
    swapped.headers_mut().insert(
        "x-ms-content-sha256",
        tessera_core::acs_hmac::content_hash(b"{}").parse().unwrap(),
    );
    s.send(reqwest::RequestBuilder::from_parts(s.client.clone(), swapped))
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSignature");
    for header in ["x-ms-date", "x-ms-content-sha256"] {
        let mut request = s
            .acs_request(Method::POST, &path, None, c.a.key(), &Signing::default())
            .build()
            .unwrap();
        request.headers_mut().remove(header);
        s.send(reqwest::RequestBuilder::from_parts(s.client.clone(), request))
            .await
            .error(StatusCode::UNAUTHORIZED, "MissingAuthenticationHeader");
    }
    s.send(s.request(Method::POST, &path))
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    let mut malformed = s
        .acs_request(Method::POST, &path, None, c.a.key(), &Signing::default())
        .build()
        .unwrap();
    malformed
        .headers_mut()
        .insert("authorization", "HMAC-SHA256 Signature=abc".parse().unwrap());
    s.send(reqwest::RequestBuilder::from_parts(s.client.clone(), malformed))
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidAuthorizationHeader");
    assert_eq!(
        c.identity_count().await,
        created,
        "no refused request created anything"
    );
}

async fn other_credentials_and_accounts(backend: Backend) {
    let c = Comm::start(backend).await;
    let s = &c.server;
    let path = format!("/identities?{V}");
    // key2 signs too; the subscription key and an STS token of the account work as well.
    s.acs(Method::POST, &path, None, &c.a.key2)
        .await
        .ok(StatusCode::CREATED);
    s.send(
        s.request(Method::POST, &path)
            .header("Ocp-Apim-Subscription-Key", c.a.key()),
    )
    .await
    .ok(StatusCode::CREATED);
    let sts = s.sts_token(c.a.key()).await;
    s.send(s.request(Method::POST, &path).bearer_auth(&sts))
        .await
        .ok(StatusCode::CREATED);

    // A Face account has no identities.
    let face = s.create_account(&common::face_id("face-1")).await;
    s.send(
        s.request(Method::POST, &path)
            .header("Ocp-Apim-Subscription-Key", face.key()),
    )
    .await
    .error(StatusCode::FORBIDDEN, "NotACommunicationAccount");

    // A regenerated key stops signing at once.
    let id = c.new_id().await;
    let token = c.token(&id, &["chat"]).await;
    s.admin(
        Method::POST,
        &format!("/admin{}/regenerateKey", c.a.rid),
        Some(json!({"keyName": "key1"})),
    )
    .await
    .ok(StatusCode::OK);
    s.acs(Method::POST, &path, None, c.a.key())
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSignature");
    s.acs(Method::POST, &path, None, &c.a.key2)
        .await
        .ok(StatusCode::CREATED);

    // A disabled account: its keys stop signing and its users' tokens stop working.
    s.disable(&c.a.rid).await;
    s.acs(Method::POST, &path, None, &c.a.key2)
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSignature");
    c.me(&token)
        .await
        .error(StatusCode::UNAUTHORIZED, "AccountDisabled");
}

async fn names_kinds_lookup_and_paging(backend: Backend) {
    let c = Comm::start(backend).await;
    let v1 = |p: &str| format!("/v1/identities{p}");
    let bob = c
        .acs(Method::POST, &v1(""), Some(json!({"name": "Bob@Contoso.com"})))
        .await
        .ok(StatusCode::CREATED)
        .json()["identity"]
        .clone();
    assert_eq!(bob["name"], json!("bob@contoso.com"));
    assert_eq!(bob["kind"], json!("human"));
    let bob_id = bob["id"].as_str().unwrap();
    // Names are unique per account, case-insensitively; on both dialects.
    c.acs(
        Method::POST,
        &v1(""),
        Some(json!({"name": "BOB@contoso.com", "kind": "bot"})),
    )
    .await
    .error(StatusCode::CONFLICT, "IdentityAlreadyExists");
    c.create(Some(json!({"name": "bob@contoso.com"})))
        .await
        .error(StatusCode::CONFLICT, "IdentityAlreadyExists");
    c.acs(
        Method::POST,
        &v1(""),
        Some(json!({"name": "12345", "kind": "phoneNumber"})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidIdentityName");
    c.acs(Method::POST, &v1(""), Some(json!({"name": "x", "kind": "alien"})))
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidRequestBody");
    let phone = c
        .acs(
            Method::POST,
            &v1(""),
            Some(json!({"name": "+14255550123", "kind": "phoneNumber"})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(phone["identity"]["kind"], json!("phoneNumber"));

    // Read by id and look up by name.
    let read = c
        .acs(Method::GET, &v1(&format!("/{}", segment(bob_id))), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(read["id"], json!(bob_id));
    assert_eq!(read["name"], json!("bob@contoso.com"));
    let found = c
        .acs(Method::GET, &v1("?name=BOB%40contoso.com"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(found["value"][0]["id"], json!(bob_id));
    let none = c
        .acs(Method::GET, &v1("?name=alice%40contoso.com"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(none["value"], json!([]));

    // Issuing by name creates the identity the first time (201), then reuses it (200); 12 hours by default.
    let since = c.now().secs();
    let first = c
        .acs(
            Method::POST,
            &v1("/:issueAccessToken"),
            Some(json!({"name": "alice@contoso.com", "scopes": ["chat"]})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    let alice = first["identity"]["id"].as_str().unwrap().to_owned();
    let first_exp = &jwt_claims(first["accessToken"]["token"].as_str().unwrap())["exp"];
    c.assert_issued_at(since, first_exp, |t| json!(t + 720 * 60));
    let since = c.now().secs();
    let again = c
        .acs(
            Method::POST,
            &v1("/:issueAccessToken"),
            Some(json!({"name": "Alice@Contoso.com", "scopes": ["voip"], "expiresInMinutes": 90})),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(again["identity"]["id"], json!(alice));
    c.assert_issued_at(since, &again["accessToken"]["expiresOn"], |t| {
        json!(Timestamp::from_secs(t + 90 * 60).to_rfc3339())
    });
    c.acs(
        Method::POST,
        &v1("/:issueAccessToken"),
        Some(json!({"name": "alice@contoso.com", "kind": "bot", "scopes": ["chat"]})),
    )
    .await
    .error(StatusCode::CONFLICT, "IdentityKindMismatch");

    // Paging: 3 named + 3 anonymous identities, two at a time, following nextLink.
    for _ in 0..3 {
        c.new_id().await;
    }
    let mut seen = Vec::new();
    let mut next = Some(v1("?maxPageSize=2"));
    while let Some(link) = next {
        let page = c.acs(Method::GET, &link, None).await.ok(StatusCode::OK).json();
        let value = page["value"].as_array().unwrap();
        assert!(value.len() <= 2);
        seen.extend(value.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "id order, no repeats");
    sorted.dedup();
    assert_eq!(sorted.len(), 6);
    c.acs(Method::GET, &v1("?continuationToken=garbage"), None)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidContinuationToken");

    // A deleted identity frees its name.
    c.acs(Method::DELETE, &v1(&format!("/{}", segment(bob_id))), None)
        .await
        .ok(StatusCode::NO_CONTENT);
    c.acs(Method::POST, &v1(""), Some(json!({"name": "bob@contoso.com"})))
        .await
        .ok(StatusCode::CREATED);
}

async fn accounts_are_isolated(backend: Backend) {
    let c = Comm::start(backend).await;
    let b = c.server.create_account(&common::communication_id("chat-b")).await;
    let id = c.new_id().await;
    let token = c.token(&id, &["chat"]).await;
    let s = &c.server;
    // B's trusted service cannot see, use, revoke or delete A's identity.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/identities/{}/:issueAccessToken?{V}", segment(&id)),
            Some(json!({"scopes": ["chat"]})),
        ),
        (
            Method::POST,
            format!("/identities/{}/:revokeAccessTokens?{V}", segment(&id)),
            None,
        ),
        (Method::DELETE, format!("/identities/{}?{V}", segment(&id)), None),
        (Method::GET, format!("/identities/{}?{V}", segment(&id)), None),
    ] {
        s.acs(method, &path, body, b.key())
            .await
            .error(StatusCode::NOT_FOUND, "IdentityNotFound");
    }
    c.me(&token).await.ok(StatusCode::OK);
    assert_eq!(jwt_claims(&token)["rev"], json!(0));
    // B cannot act for A's identity either.
    let b_id = s
        .acs(Method::POST, &format!("/identities?{V}"), None, b.key())
        .await
        .ok(StatusCode::CREATED)
        .json()["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.acs(
        Method::POST,
        &format!("/identities/{}/:issueAccessToken?{V}", segment(&b_id)),
        Some(json!({"scopes": ["chat"], "actor": id})),
        b.key(),
    )
    .await
    .error(StatusCode::NOT_FOUND, "ActorNotFound");
    // A user token is not a credential of the trusted service, of A or of B.
    s.send(
        s.request(Method::POST, &format!("/identities?{V}"))
            .bearer_auth(&token),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "TokenTypeMismatch");
    // A's listing does not show B's identities.
    let listed = c.identity_count().await;
    assert_eq!(listed, 1);
}

async fn device_refresh_rotates_and_detects_reuse(backend: Backend) {
    let c = Comm::start(backend).await;
    let id = c.new_id().await;
    let issued = c
        .issue(
            &id,
            json!({"scopes": ["chat", "voip"], "expiresInMinutes": 60, "sessionMinutes": 150}),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(keys(&issued), ["expiresOn", "refreshToken", "token"]);
    let (t0, r0) = (
        issued["token"].as_str().unwrap().to_owned(),
        issued["refreshToken"].as_str().unwrap().to_owned(),
    );
    let sid = jwt_claims(&t0)["sid"].as_str().unwrap().to_owned();

    // A refresh: same subject, session and scopes, a new jti and a new secret; narrower scopes on request.
    c.server.clock().advance_secs(50 * 60);
    let before = c.now().secs();
    let first = c
        .refresh(&t0, json!({"refreshToken": r0}))
        .await
        .ok(StatusCode::OK)
        .json();
    let after = c.now().secs();
    let (t1, r1) = (
        first["token"].as_str().unwrap().to_owned(),
        first["refreshToken"].as_str().unwrap().to_owned(),
    );
    let claims = jwt_claims(&t1);
    assert_eq!(claims["sub"], json!(id));
    assert_eq!(claims["sid"], json!(sid));
    assert_eq!(claims["scp"], json!(["chat", "voip"]));
    // Derived from the refresh's own issuance time: a second boundary may pass during the call.
    let iat = claims["iat"].as_i64().unwrap();
    assert!((before..=after).contains(&iat), "iat {iat} within the call");
    assert_eq!(claims["exp"], json!(iat + 3600));
    assert_ne!(claims["jti"], jwt_claims(&t0)["jti"]);
    assert_ne!(r1, r0);
    // Widening is refused, and refusing spends nothing.
    c.refresh(
        &t1,
        json!({"refreshToken": r1, "scopes": ["chat", "voip", "rooms:manage"]}),
    )
    .await
    .error(StatusCode::FORBIDDEN, "ScopeWidening");
    c.server.clock().advance_secs(50 * 60);
    let second = c
        .refresh(&t1, json!({"refreshToken": r1, "scopes": ["chat.join"]}))
        .await
        .ok(StatusCode::OK)
        .json();
    let (t2, r2) = (
        second["token"].as_str().unwrap().to_owned(),
        second["refreshToken"].as_str().unwrap().to_owned(),
    );
    assert_eq!(jwt_claims(&t2)["scp"], json!(["chat.join"]));
    // The session ends 150 minutes after issuance: this token is cut to it.
    assert_eq!(
        jwt_claims(&t2)["exp"],
        json!(jwt_claims(&t0)["iat"].as_i64().unwrap() + 150 * 60),
        "never outlives the session"
    );
    c.refresh(&t2, json!({"refreshToken": r2, "scopes": ["chat"]}))
        .await
        .error(StatusCode::FORBIDDEN, "ScopeWidening");
    c.refresh(&t2, json!({"refreshToken": "tessera_rt_made-up"}))
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidRefreshToken");

    // A thief replays the spent r1 (with a token of the session): reuse ends the session for everyone.
    c.refresh(&t1, json!({"refreshToken": r1}))
        .await
        .error(StatusCode::UNAUTHORIZED, "RefreshTokenReused");
    c.me(&t2).await.error(StatusCode::UNAUTHORIZED, "SessionEnded");
    c.refresh(&t2, json!({"refreshToken": r2}))
        .await
        .error(StatusCode::UNAUTHORIZED, "SessionEnded");
    // The identity itself is fine: the trusted service issues it a new token.
    c.me(&c.token(&id, &["chat"]).await).await.ok(StatusCode::OK);

    // A token without a session cannot be refreshed.
    let plain = c.token(&id, &["chat"]).await;
    c.refresh(&plain, json!({"refreshToken": r2}))
        .await
        .error(StatusCode::FORBIDDEN, "NotRefreshable");

    let events = c.server.verify_audit_chain(50).await;
    let refreshes: Vec<_> = events
        .iter()
        .filter(|e| e.action == "userToken.refresh")
        .collect();
    assert_eq!(
        refreshes
            .iter()
            .filter(|e| e.outcome.as_str() == "success")
            .count(),
        2
    );
    let reuse = refreshes
        .iter()
        .find(|e| common::details(e)["code"] == json!("RefreshTokenReused"))
        .expect("the reuse is audited");
    assert_eq!(common::details(reuse)["sid"], json!(sid));
    let ended = events
        .iter()
        .find(|e| e.action == "userToken.sessionEnd")
        .expect("the session end is audited");
    assert_eq!(
        common::details(ended),
        json!({"sid": sid, "reason": "secretReused"})
    );
}

async fn refresh_never_outlives_revocation_or_deletion(backend: Backend) {
    let c = Comm::start(backend).await;
    let open = |id: String| {
        let c = &c;
        async move {
            let issued = c
                .issue(
                    &id,
                    json!({"scopes": ["chat"], "expiresInMinutes": 60, "sessionMinutes": 600}),
                )
                .await
                .ok(StatusCode::OK)
                .json();
            (
                issued["token"].as_str().unwrap().to_owned(),
                issued["refreshToken"].as_str().unwrap().to_owned(),
            )
        }
    };
    let revoked = c.new_id().await;
    let (token, secret) = open(revoked.clone()).await;
    c.revoke(&revoked).await.ok(StatusCode::NO_CONTENT);
    c.refresh(&token, json!({"refreshToken": secret}))
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");

    let deleted = c.new_id().await;
    let (token, secret) = open(deleted.clone()).await;
    c.delete(&deleted).await.ok(StatusCode::NO_CONTENT);
    c.refresh(&token, json!({"refreshToken": secret}))
        .await
        .error(StatusCode::UNAUTHORIZED, "IdentityDeleted");

    // Disabling and enabling the account again does not revive its tokens, nor the sessions behind them; a token
    // issued afterwards works.
    let paused = c.new_id().await;
    let (token, secret) = open(paused.clone()).await;
    c.server.disable(&c.a.rid).await;
    c.server.enable(&c.a.rid).await;
    c.refresh(&token, json!({"refreshToken": secret}))
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    let (token, secret) = open(paused).await;
    c.refresh(&token, json!({"refreshToken": secret}))
        .await
        .ok(StatusCode::OK);

    // The operator revokes every user token of the account: every identity's tokens and sessions end, the
    // account keeps working, and tokens issued afterwards live.
    let (one, two) = (c.new_id().await, c.new_id().await);
    let (token_one, secret_one) = open(one.clone()).await;
    let (token_two, _) = open(two).await;
    c.server
        .admin(Method::POST, &format!("/admin{}/revokeUserTokens", c.a.rid), None)
        .await
        .ok(StatusCode::OK);
    c.refresh(&token_one, json!({"refreshToken": secret_one}))
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    c.server
        .send(
            c.server
                .request(Method::GET, "/access/me")
                .bearer_auth(&token_two),
        )
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    let (token, secret) = open(one).await;
    c.refresh(&token, json!({"refreshToken": secret}))
        .await
        .ok(StatusCode::OK);
    let revocations = c
        .server
        .audit(&[("action", "admin.account.revokeUserTokens")])
        .await;
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0].subject, c.a.canonical);

    // An expired token cannot be refreshed, even inside its session.
    let late = c.new_id().await;
    let (token, secret) = open(late).await;
    c.server.clock().advance_secs(3601);
    c.refresh(&token, json!({"refreshToken": secret}))
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenExpired");
}

async fn acting_on_behalf_of_another_identity(backend: Backend) {
    let c = Comm::start(backend).await;
    let (user, bot) = (c.new_id().await, c.new_id().await);
    let token = c
        .issue(&user, json!({"scopes": ["chat"], "actor": bot}))
        .await
        .ok(StatusCode::OK)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], json!(user));
    assert_eq!(claims["act"], json!({"sub": bot, "rev": 0}));
    let me = c.me(&token).await.ok(StatusCode::OK).json();
    assert_eq!(
        (me["identity"]["id"].clone(), me["actor"].clone()),
        (json!(user), json!(bot))
    );
    let issued = c
        .server
        .audit(&[("action", "userToken.issue"), ("subject", user.as_str())])
        .await;
    assert_eq!(
        common::details(&issued[0])["actor"],
        json!(bot),
        "audit names both"
    );

    c.issue(&user, json!({"scopes": ["chat"], "actor": user}))
        .await
        .error(StatusCode::BAD_REQUEST, "ActorIsSubject");
    let stranger = format!("{}_{}", &bot[..bot.find('_').unwrap()], uuid::Uuid::new_v4());
    c.issue(&user, json!({"scopes": ["chat"], "actor": stranger}))
        .await
        .error(StatusCode::NOT_FOUND, "ActorNotFound");

    // Revoking the actor's tokens ends what it holds for others; the subject's own tokens live on.
    let own = c.token(&user, &["chat"]).await;
    c.revoke(&bot).await.ok(StatusCode::NO_CONTENT);
    c.me(&token).await.error(StatusCode::UNAUTHORIZED, "ActorRevoked");
    c.me(&own).await.ok(StatusCode::OK);
}

/// With `acs_host_suffix`, each Communication account's connection string names its own endpoint,
/// `<account id>.<suffix>`, and an HMAC-signed request is tried against that account's keys alone: another
/// account's endpoint refuses the key, and a request to no account's endpoint is refused unless
/// `acs_search_all_accounts` allows the search.
async fn hmac_names_its_account_by_host(backend: Backend) {
    for search in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let database_url = Some(common::database_url(backend, dir.path()).await);
        let s = Server::start_in(
            dir,
            common::Options {
                database_url,
                http: true,
                file: tessera_server::FileConfig {
                    acs_host_suffix: Some("ACS.Test".to_owned()),
                    acs_search_all_accounts: search.then_some(true),
                    ..tessera_server::FileConfig::default()
                },
                ..common::Options::default()
            },
        )
        .await;
        let port = s.running.addr.port();
        let mut accounts = Vec::new();
        for n in 0..5 {
            let created = s
                .admin(
                    Method::PUT,
                    &format!("/admin{}", common::communication_id(&format!("hint-{n}"))),
                    None,
                )
                .await
                .ok(StatusCode::CREATED)
                .json();
            let connection = created["connectionString"].as_str().unwrap().to_owned();
            let endpoint = connection
                .strip_prefix("endpoint=http://")
                .and_then(|rest| rest.split_once("/;accesskey="))
                .map(|(host, key)| (host.to_owned(), key.to_owned()))
                .unwrap_or_else(|| panic!("a connection string with its own endpoint: {connection}"));
            assert_eq!(
                endpoint.0,
                format!("{}.acs.test:{port}", created["id"].as_str().unwrap())
            );
            accounts.push(endpoint);
        }
        let path = format!("/identities?{V}");
        let signed_to = |host: &str, key: &str| {
            let signing = Signing {
                host: Some(host.to_owned()),
                ..Signing::default()
            };
            s.send(
                s.acs_request(Method::POST, &path, None, key, &signing)
                    .header("host", host),
            )
        };
        let (a_host, a_key) = &accounts[0];
        let (b_host, _) = &accounts[3];
        signed_to(a_host, a_key).await.ok(StatusCode::CREATED);
        signed_to(&a_host.to_uppercase(), a_key)
            .await
            .ok(StatusCode::CREATED);
        // A's key at B's endpoint is tried against B's keys only.
        signed_to(b_host, a_key)
            .await
            .error(StatusCode::UNAUTHORIZED, "InvalidSignature");
        signed_to(&format!("nobody.acs.test:{port}"), a_key)
            .await
            .error(StatusCode::UNAUTHORIZED, "UnknownAccountEndpoint");
        let bare = s
            .send(s.acs_request(Method::POST, &path, None, a_key, &Signing::default()))
            .await;
        if search {
            bare.ok(StatusCode::CREATED);
        } else {
            bare.error(StatusCode::UNAUTHORIZED, "UnknownAccountEndpoint");
        }
        // A disabled account's endpoint opens nothing.
        s.disable(&common::communication_id("hint-0")).await;
        signed_to(a_host, a_key)
            .await
            .error(StatusCode::UNAUTHORIZED, "InvalidSignature");
    }
}
