//! The operator's API and the operational surface over real HTTPS: admin authentication and its rate limit,
//! account management, paging, health, metrics, the JSON fallbacks, plain HTTP mode, and secrets that must never
//! come back out (invariant 5).

use crate::common;

use common::{
    ADMIN_KEY, Acct, Backend, Options, Resp, Server, communication_id, face_id, jwt_claims, jwt_header,
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tessera_server::FileConfig;

const ID: &str = "Face.Identification";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_the_admin_key() {
    let s = Server::start(Backend::Sqlite).await;
    let client = s.create_account(&face_id("client-one")).await;
    let path = "/admin/accounts";
    let r = s.get(path).await;
    r.error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    let r = s
        .send(
            s.request(Method::GET, path)
                .bearer_auth("not-the-admin-key-000000"),
        )
        .await;
    let message = r.error(StatusCode::UNAUTHORIZED, "InvalidAdminKey");
    assert!(!r.text.contains("not-the-admin-key"));
    assert!(!message.contains(ADMIN_KEY));
    // An account's key is not an admin key, in either header.
    s.send(s.request(Method::GET, path).bearer_auth(&client.key1))
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidAdminKey");
    s.send(
        s.request(Method::GET, path)
            .header("Ocp-Apim-Subscription-Key", &client.key1),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    s.send(
        s.request(Method::GET, path)
            .header("Authorization", format!("Basic {ADMIN_KEY}")),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "InvalidAdminKey");
    // Nor can the admin key act as an account.
    s.send(
        s.request(Method::POST, "/sts/v1.0/issueToken")
            .header("Ocp-Apim-Subscription-Key", ADMIN_KEY),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    s.admin(Method::GET, path, None).await.ok(StatusCode::OK);
    s.admin(Method::PUT, &format!("/admin{}", face_id("x-unauth")), None)
        .await
        .ok(StatusCode::CREATED);
    s.send(s.request(Method::PUT, &format!("/admin{}", face_id("x-unauth2"))))
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
}

/// A client of `s` whose requests come from the loopback address `from` (127.0.0.0/8 is all loopback on Linux).
fn client_from(s: &Server, from: &str) -> reqwest::Client {
    common::client_builder(&s.running)
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A request for `issueToken` with subscription key `key` from `client`.
async fn issue_with(s: &Server, client: &reqwest::Client, key: &str) -> Resp {
    s.send(
        client
            .post(s.url("/sts/v1.0/issueToken"))
            .header("Ocp-Apim-Subscription-Key", key),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_never_lock_out_valid_credentials() {
    let s = Server::start(Backend::Sqlite).await;
    let client = s.create_account(&face_id("client-one")).await;
    let bad = || {
        s.send(
            s.request(Method::GET, "/admin/accounts")
                .bearer_auth("wrong-admin-key-0000000000"),
        )
    };
    // The default limit: 20 failures per 60 s per address, counted for admin and account credentials alike.
    for _ in 0..15 {
        bad().await.error(StatusCode::UNAUTHORIZED, "InvalidAdminKey");
    }
    for n in 0..5 {
        issue_with(&s, &s.client, &format!("wrong-{n}"))
            .await
            .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    }
    // The address is over its limit: its failures are answered 429 with Retry-After...
    let limited = bad().await;
    let message = limited.error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
    assert!(message.contains("from this address"), "{message}");
    let retry: u64 = limited
        .header("retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    issue_with(&s, &s.client, "wrong-new")
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
    // ...while valid credentials from the same address are served, on every authenticated route.
    s.admin(Method::GET, "/admin/accounts", None)
        .await
        .ok(StatusCode::OK);
    issue_with(&s, &s.client, &client.key1).await.ok(StatusCode::OK);
    s.get("/healthz").await.ok(StatusCode::OK);
    // Another address is not affected by this one's failures.
    issue_with(&s, &client_from(&s, "127.0.0.2"), "wrong-elsewhere")
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_credential_is_refused_from_every_address() {
    let s = Server::start(Backend::Sqlite).await;
    let client = s.create_account(&face_id("client-one")).await;
    // One stale key retried from two addresses, ten times each: its own 20 failures.
    for from in ["127.0.0.2", "127.0.0.3"] {
        let c = client_from(&s, from);
        for _ in 0..10 {
            issue_with(&s, &c, "stale-key")
                .await
                .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
        }
    }
    // From a third address it is refused before it is looked up; a valid key from there is served.
    let third = client_from(&s, "127.0.0.4");
    let message = issue_with(&s, &third, "stale-key")
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
    assert!(message.contains("this credential"), "{message}");
    issue_with(&s, &third, "another-bad-key")
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    for _ in 0..30 {
        issue_with(&s, &third, &client.key1).await.ok(StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_is_counted_as_if_sequential() {
    let s = Server::start(Backend::Sqlite).await;
    let c = client_from(&s, "127.0.0.5");
    let burst = (0..300).map(|n| {
        let (s, c) = (&s, &c);
        async move { issue_with(s, c, &format!("forged-{n}")).await.status }
    });
    let statuses = futures::future::join_all(burst).await;
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count(StatusCode::UNAUTHORIZED), 20, "{statuses:?}");
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 280);
}

/// `issueToken` with subscription key `key` from `client`, carrying `X-Forwarded-For: forwarded`.
async fn forwarded(s: &Server, client: &reqwest::Client, forwarded: &str, key: &str) -> Resp {
    s.send(
        client
            .post(s.url("/sts/v1.0/issueToken"))
            .header("Ocp-Apim-Subscription-Key", key)
            .header("X-Forwarded-For", forwarded),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
    let s = Server::start_with(Options {
        file: FileConfig {
            trusted_proxies: Some(vec!["127.0.0.1/32".to_owned()]),
            ..FileConfig::default()
        },
        ..Options::default()
    })
    .await;
    // Through the proxy (127.0.0.1): what a client claimed, then what the proxy appended, the client's address.
    for n in 0..20 {
        forwarded(&s, &s.client, "198.51.100.1, 203.0.113.1", &format!("bad-{n}"))
            .await
            .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    }
    forwarded(&s, &s.client, "198.51.100.1, 203.0.113.1", "bad-next")
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
    forwarded(&s, &s.client, "198.51.100.1, 203.0.113.2", "bad-next")
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    // From a peer that is no trusted proxy the header is ignored: a new claim each time does not escape the count.
    let direct = client_from(&s, "127.0.0.2");
    for n in 0..20 {
        forwarded(
            &s,
            &direct,
            &format!("203.0.113.{}", n + 10),
            &format!("direct-{n}"),
        )
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    }
    forwarded(&s, &direct, "203.0.113.99", "direct-next")
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successes_are_not_counted_against_the_limit() {
    let s = Server::start(Backend::Sqlite).await;
    for _ in 0..30 {
        s.admin(Method::GET, "/admin/accounts?limit=1", None)
            .await
            .ok(StatusCode::OK);
    }
    for _ in 0..19 {
        s.get("/admin/accounts")
            .await
            .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    }
    s.admin(Method::GET, "/admin/accounts", None)
        .await
        .ok(StatusCode::OK);
    s.get("/admin/accounts")
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    s.get("/admin/accounts")
        .await
        .error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests");
    s.admin(Method::GET, "/admin/accounts", None)
        .await
        .ok(StatusCode::OK);
}

async fn regenerate(s: &Server, rid: &str, slot: &str) -> Resp {
    s.admin(
        Method::POST,
        &format!("/admin{rid}/regenerateKey"),
        Some(json!({"keyName": slot})),
    )
    .await
}

async fn account_management(backend: Backend) {
    let s = Server::start(backend).await;
    let rid = face_id("client-one");

    // Creation with approvals in the body; both keys shown once.
    let created = s
        .admin(
            Method::PUT,
            &format!("/admin{rid}"),
            Some(json!({"approvedFeatureFlags": [ID]})),
        )
        .await
        .ok(StatusCode::CREATED)
        .json();
    assert_eq!(created["approvedFlags"], json!([ID]));
    assert_eq!(created["kind"], json!("face"));
    assert_eq!(created["disabled"], json!(false));
    assert!(created["id"].as_str().is_some_and(|id| id.len() == 36));
    let key1 = created["keys"]["key1"].as_str().unwrap().to_owned();
    let key2 = created["keys"]["key2"].as_str().unwrap().to_owned();
    assert!(key1.len() >= 40 && key2.len() >= 40 && key1 != key2);

    // The same id again, in any ARM casing: 409, audited.
    let refused_before = s.audit_count(&[("action", "admin.refused")]).await;
    for dup in [
        rid.clone(),
        face_id("CLIENT-ONE"),
        rid.replace("resourceGroups/rg-test", "RESOURCEGROUPS/RG-TEST"),
    ] {
        s.admin(Method::PUT, &format!("/admin{dup}"), None)
            .await
            .error(StatusCode::CONFLICT, "Conflict");
    }
    let refused = s.audit(&[("action", "admin.refused")]).await;
    assert_eq!(refused.len(), refused_before + 3);
    assert_eq!(refused.last().unwrap().actor, "admin");
    assert_eq!(common::details(refused.last().unwrap())["status"], json!(409));

    // Bad input.
    s.admin(
        Method::PUT,
        "/admin/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/x1",
        None,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidResourceId");
    s.admin(
        Method::PUT,
        &format!(
            "/admin/subscriptions/{}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x1",
            common::SUBSCRIPTION
        ),
        None,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "UnsupportedResourceType");
    s.admin(
        Method::PUT,
        &format!("/admin{}", face_id("flagged")),
        Some(json!({"approvedFeatureFlags": ["Nope"]})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "UnknownFeatureFlag");
    s.admin(
        Method::PUT,
        &format!("/admin{}", face_id("fielded")),
        Some(json!({"approved": [ID]})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidRequestBody");
    s.admin(Method::GET, &format!("/admin{}", face_id("nobody")), None)
        .await
        .error(StatusCode::NOT_FOUND, "ResourceNotFound");
    s.admin(Method::POST, &format!("/admin{rid}/explode"), None)
        .await
        .error(StatusCode::NOT_FOUND, "UnknownAdminOperation");
    s.admin(
        Method::PUT,
        &format!("/admin{rid}/isv"),
        Some(json!({"featureFlags": ["Face.Verification"]})),
    )
    .await
    .error(StatusCode::CONFLICT, "FlagNotHeld");
    s.admin(
        Method::PUT,
        &format!("/admin{rid}/isv"),
        Some(json!({"featureFlags": []})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "NoFeatureFlags");
    s.admin(Method::POST, &format!("/admin{rid}/isv/cutOff"), None)
        .await
        .error(StatusCode::CONFLICT, "NotAnIsv");
    s.admin(
        Method::PUT,
        &format!("/admin{}/limitedAccess", face_id("nobody")),
        Some(json!({"featureFlags": [ID]})),
    )
    .await
    .error(StatusCode::NOT_FOUND, "ResourceNotFound");

    // Keys: listed without secrets; regenerating one retires it at once and leaves the other working.
    let listed = s
        .admin(Method::POST, &format!("/admin{rid}/listKeys"), None)
        .await
        .ok(StatusCode::OK);
    assert!(!listed.text.contains(&key1) && !listed.text.contains(&key2));
    let sts = s.sts_token(&key1).await;
    let fresh = regenerate(&s, &rid, "key1").await.ok(StatusCode::OK).json();
    assert_eq!(fresh["keyName"], json!("key1"));
    let new_key1 = fresh["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key1, key1);
    s.send(
        s.request(Method::POST, "/sts/v1.0/issueToken")
            .header("Ocp-Apim-Subscription-Key", &key1),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    s.sts_token(&new_key1).await;
    s.sts_token(&key2).await;
    let own = s.check(&new_key1, ID, None).await.ok(StatusCode::OK).json();
    assert_eq!(own["grantedBy"], json!("approval"));
    // An STS token dies with the key that minted it (issue 13 #12).
    s.check_bearer(&sts, ID, None)
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    regenerate(&s, &rid, "key3")
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidKeyName");
    regenerate(&s, &face_id("nobody"), "key1")
        .await
        .error(StatusCode::NOT_FOUND, "ResourceNotFound");
    let event = s
        .audit(&[("action", "admin.account.regenerateKey")])
        .await
        .pop()
        .expect("audited");
    assert!(!event.details.contains(&new_key1));

    // Disable and enable.
    s.disable(&rid).await;
    s.check(&key2, ID, None)
        .await
        .error(StatusCode::FORBIDDEN, "AccountDisabled");
    s.send(
        s.request(Method::POST, "/sts/v1.0/issueToken")
            .header("Ocp-Apim-Subscription-Key", &key2),
    )
    .await
    .error(StatusCode::FORBIDDEN, "AccountDisabled");
    let enabled = s
        .admin(Method::POST, &format!("/admin{rid}/enable"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(enabled["disabled"], json!(false));
    s.check(&key2, ID, None).await.ok(StatusCode::OK);

    // The ISV lifecycle as the admin API reports it.
    let made = s.make_isv(&rid, &[ID]).await;
    assert_eq!(made["isvActive"], json!(true));
    let cut = s.cut_off(&rid).await;
    assert_eq!(cut["isvActive"], json!(false));
    assert!(
        cut["isv"]["cutOffAt"].is_number() || cut["isv"]["cutOffAt"].is_string(),
        "{cut}"
    );
    let regranted = s.make_isv(&rid, &[ID]).await;
    assert_eq!(regranted["isvActive"], json!(true));
    for action in [
        "admin.account.create",
        "admin.account.regenerateKey",
        "admin.account.disable",
        "admin.account.enable",
        "admin.isv.grant",
        "admin.isv.cutOff",
    ] {
        assert!(
            s.audit_count(&[("action", action), ("actor", "admin")]).await >= 1,
            "{action} audited"
        );
    }
    s.verify_audit_chain(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_management_sqlite() {
    account_management(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_management_postgres() {
    account_management(Backend::Postgres).await;
}

async fn account_paging(backend: Backend) {
    let s = Server::start(backend).await;
    let mut expected: Vec<String> = Vec::new();
    for i in 0..7 {
        let rid = if i % 3 == 0 {
            communication_id(&format!("acct-{i}"))
        } else {
            face_id(&format!("acct-{i}"))
        };
        expected.push(s.create_account(&rid).await.canonical);
    }
    expected.sort();
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = reqwest::Url::parse(&s.url("/admin/accounts")).unwrap();
        url.query_pairs_mut().append_pair("limit", "3");
        if let Some(a) = &after {
            url.query_pairs_mut().append_pair("after", a);
        }
        let page = s
            .send(s.client.get(url).bearer_auth(ADMIN_KEY))
            .await
            .ok(StatusCode::OK)
            .json();
        pages += 1;
        let value = page["value"].as_array().unwrap();
        assert!(value.len() <= 3);
        assert!(
            value.iter().all(|a| a.get("keys").is_none()),
            "no keys in listings"
        );
        seen.extend(value.iter().map(|a| a["resourceId"].as_str().unwrap().to_owned()));
        match page["nextAfter"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "every account once, in order");
    s.admin(Method::GET, "/admin/accounts?limit=abc", None)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidQuery");
    s.admin(Method::GET, "/admin/accounts?after=nonsense", None)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidResourceId");
    s.admin(Method::GET, "/admin/audit?outcome=maybe", None)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidQuery");
    s.admin(Method::GET, "/admin/audit?since=yesterday", None)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidQuery");
    s.admin(Method::GET, "/admin/audit?colour=blue", None)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidQuery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_paging_sqlite() {
    account_paging(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_paging_postgres() {
    account_paging(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_discovery_and_fallbacks() {
    let s = Server::start(Backend::Sqlite).await;
    let health = s.get("/healthz").await.ok(StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));
    assert!(
        !health.header("x-request-id").is_empty(),
        "every answer carries a request id"
    );
    let ready = s.get("/readyz").await.ok(StatusCode::OK).json();
    assert_eq!(ready["status"], json!("ready"));

    let discovery = s
        .get("/.well-known/openid-configuration")
        .await
        .ok(StatusCode::OK)
        .json();
    let issuer = discovery["issuer"].as_str().unwrap();
    assert_eq!(
        discovery["jwks_uri"],
        json!(format!("{issuer}/.well-known/jwks.json"))
    );
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = s.get("/.well-known/jwks.json").await.ok(StatusCode::OK);
    assert!(jwks.content_type().starts_with("application/json"));
    for key in jwks.json()["keys"].as_array().unwrap() {
        assert_eq!(key["kty"], json!("EC"));
        assert_eq!(key["crv"], json!("P-256"));
        assert_eq!(key["alg"], json!("ES256"));
        assert_eq!(key["use"], json!("sig"));
        assert!(key.get("d").is_none(), "no private part: {key}");
    }

    let r = s.get("/no/such/route").await;
    r.error(StatusCode::NOT_FOUND, "NotFound");
    s.send(s.request(Method::POST, "/healthz"))
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    s.get("/sts/v1.0/issueLimitedAccessToken")
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    // Bench routes are off unless asked for.
    s.send(s.request(Method::POST, "/bench/sign"))
        .await
        .error(StatusCode::NOT_FOUND, "NotFound");
}

/// Invariant 5 at the HTTP surface: keys and tokens never come back in error bodies, metrics or the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_traffic_and_no_secret_leaks_anywhere() {
    let s = Server::start(Backend::Sqlite).await;
    let isv = s.create_isv("isv-one", &[ID]).await;
    let client = s.create_account(&face_id("client-one")).await;
    let token = s.lat(&isv, &client, &[ID]).await;
    let sts = s.sts_token(client.key()).await;
    s.check(client.key(), ID, Some(&token)).await.ok(StatusCode::OK);
    let regenerated = regenerate(&s, &client.rid, "key2")
        .await
        .ok(StatusCode::OK)
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let secrets: Vec<&str> = vec![
        ADMIN_KEY,
        &isv.key1,
        &isv.key2,
        &client.key1,
        &client.key2,
        &regenerated,
        &s.master_key,
    ];
    let wrong_key = "presented-but-wrong-key-000000000000";

    // Error answers of every kind, with secrets in the request.
    let mut bodies: Vec<Resp> = Vec::new();
    bodies.push(
        s.send(s.request(Method::GET, "/admin/accounts").bearer_auth(wrong_key))
            .await,
    );
    bodies.push(s.check(wrong_key, ID, Some(&token)).await);
    bodies.push(s.check(&isv.key1, ID, Some(&token)).await);
    bodies.push(s.check(client.key(), "Face.Verification", Some(&token)).await);
    bodies.push(s.check(client.key(), ID, Some(&format!("{token}x"))).await);
    bodies.push(
        s.issue_lat(&isv.key1, &client.rid, &["Face.Verification"], None)
            .await,
    );
    bodies.push(s.issue_lat(&client.key1, &client.rid, &[ID], None).await);
    bodies.push(
        s.send(
            s.lat_request(Some("5"))
                .header("Ocp-Apim-Subscription-Key", &isv.key1)
                .json(&json!({"resourceId": client.key1, "featureFlags": [client.key2]})),
        )
        .await,
    );
    bodies.push(s.send(s.lat_request(None).bearer_auth(&token)).await);
    bodies.push(
        s.send(s.request(Method::POST, "/sts/v1.0/issueToken").bearer_auth(&sts))
            .await,
    );
    bodies.push(s.admin(Method::PUT, &format!("/admin{}", client.rid), None).await);
    bodies.push(s.get(&format!("/admin/{}", client.key1)).await);
    for b in &bodies {
        assert!(b.status.is_client_error(), "{} {}", b.status, b.text);
        for secret in &secrets {
            assert!(!b.text.contains(secret), "a secret in an error body: {}", b.text);
        }
        assert!(!b.text.contains(wrong_key), "a presented key echoed: {}", b.text);
        assert!(
            !b.text.contains(&token) && !b.text.contains(&sts),
            "a token echoed: {}",
            b.text
        );
    }

    let metrics = s.get("/metrics").await.ok(StatusCode::OK);
    assert!(metrics.content_type().starts_with("text/plain"));
    for name in [
        "tessera_issuances_total",
        "tessera_gate_decisions_total",
        "tessera_refusals_total",
        "tessera_http_request_duration_seconds",
        "tessera_audit_flush_seconds",
        "tessera_auth_failures_total",
    ] {
        assert!(metrics.text.contains(name), "{name} in /metrics");
    }
    assert!(metrics.text.contains(r#"decision="allowed""#));
    assert!(metrics.text.contains(r#"reason="TokenForOtherAccount""#));
    for secret in secrets
        .iter()
        .copied()
        .chain([wrong_key, token.as_str(), sts.as_str()])
    {
        assert!(!metrics.text.contains(secret), "a secret in /metrics");
    }

    // The audit log records actions, never credentials.
    let log = serde_json::to_string(&s.audit(&[]).await).unwrap();
    for secret in secrets
        .iter()
        .copied()
        .chain([wrong_key, token.as_str(), sts.as_str()])
    {
        assert!(!log.contains(secret), "a secret in the audit log");
    }
    // Nor does the configuration's Debug output.
    let debug = format!("{:?}", s.running.state.config);
    assert!(
        !debug.contains(ADMIN_KEY) && !debug.contains(&s.master_key),
        "{debug}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_mode_serves_the_same_api() {
    let s = Server::start_with(Options {
        http: true,
        ..Options::default()
    })
    .await;
    assert!(s.base.starts_with("http://127.0.0.1:"), "{}", s.base);
    assert!(s.running.ca_cert.is_none());
    assert!(
        !s.dir.path().join("tls").exists(),
        "no certificates generated in HTTP mode"
    );
    s.get("/healthz").await.ok(StatusCode::OK);
    let discovery = s
        .get("/.well-known/openid-configuration")
        .await
        .ok(StatusCode::OK)
        .json();
    assert!(discovery["issuer"].as_str().unwrap().starts_with("http://"));
    let isv: Acct = s.create_isv("isv-one", &[ID]).await;
    let client = s.create_account(&face_id("client-one")).await;
    let token = s.lat(&isv, &client, &[ID]).await;
    assert_eq!(jwt_claims(&token)["sub"], json!(client.canonical));
    s.check(client.key(), ID, Some(&token)).await.ok(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_mode_refuses_plain_http_and_untrusted_clients() {
    let s = Server::start(Backend::Sqlite).await;
    let ca = s.running.ca_cert.clone().expect("auto TLS generates a CA");
    assert_eq!(ca, s.dir.path().join("tls").join("ca.pem"));
    let plain = reqwest::Client::new();
    let port = s.running.addr.port();
    let over_http = plain.get(format!("http://127.0.0.1:{port}/healthz")).send().await;
    assert!(
        over_http.map_or(true, |r| !r.status().is_success()),
        "no plain HTTP on the HTTPS port"
    );
    common::install_crypto();
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()
        .unwrap();
    assert!(
        untrusting.get(s.url("/healthz")).send().await.is_err(),
        "the certificate needs the local CA"
    );
    // The certificate names localhost too.
    let by_name = s
        .client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .expect("localhost is in the certificate");
    assert_eq!(by_name.status(), StatusCode::OK);
}

/// A Communication account's keys are kept sealed under the master key (ACS HMAC needs the key itself), bound to
/// their account and slot, and its creation answers an ACS connection string; a Face account's keys are hashes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn communication_keys_are_sealed_and_come_with_a_connection_string() {
    let s = Server::start(Backend::Sqlite).await;
    let rid = communication_id("chat-one");
    let created = s
        .admin(Method::PUT, &format!("/admin{rid}"), None)
        .await
        .ok(StatusCode::CREATED)
        .json();
    let key1 = created["keys"]["key1"].as_str().unwrap().to_owned();
    let issuer = s.get("/.well-known/openid-configuration").await.json()["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created["connectionString"],
        format!("endpoint={issuer}/;accesskey={key1}")
    );
    let face = s
        .admin(Method::PUT, &format!("/admin{}", face_id("face-one")), None)
        .await
        .json();
    assert!(face.get("connectionString").is_none());

    let state = &s.running.state;
    let open = |k: &tessera_store::SealedAccessKey| {
        let aad = tessera_server::access_key_aad(k.account.id, k.slot);
        String::from_utf8(state.keys.master().open(aad.as_bytes(), &k.sealed).unwrap()).unwrap()
    };
    let sealed = state.store.access_keys().await.unwrap();
    assert_eq!(sealed.len(), 2, "both slots of the one Communication account");
    assert_eq!(open(&sealed[0]), key1);
    assert_eq!(open(&sealed[1]), created["keys"]["key2"].as_str().unwrap());
    assert!(!String::from_utf8_lossy(&sealed[0].sealed).contains(&key1));
    let moved = tessera_server::access_key_aad(sealed[1].account.id, sealed[1].slot);
    assert!(
        state
            .keys
            .master()
            .open(moved.as_bytes(), &sealed[0].sealed)
            .is_err(),
        "bound to its slot"
    );

    let regenerated = s
        .admin(
            Method::POST,
            &format!("/admin{rid}/regenerateKey"),
            Some(json!({"keyName": "key1"})),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    let new_key = regenerated["key"].as_str().unwrap();
    assert_eq!(
        regenerated["connectionString"],
        format!("endpoint={issuer}/;accesskey={new_key}")
    );
    assert_eq!(open(&state.store.access_keys().await.unwrap()[0]), new_key);
}

/// The data directory, the TLS directory and the SQLite files are their owner's alone: so created, and narrowed
/// when an earlier start or an operator left them open (the umask here is the usual 022).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_the_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
    let open_up = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let fresh = tempfile::tempdir().expect("temporary directory");
    let opened = tempfile::tempdir().expect("temporary directory");
    open_up(opened.path(), 0o755);
    std::fs::create_dir(opened.path().join("tls")).expect("mkdir");
    open_up(&opened.path().join("tls"), 0o755);
    std::fs::write(opened.path().join("tessera.db"), b"").expect("an empty database");
    open_up(&opened.path().join("tessera.db"), 0o644);

    for dir in [fresh, opened] {
        let s = Server::start_in(dir, Options::default()).await;
        s.create_account(&face_id("private")).await;
        let root = s.dir.path();
        assert_eq!(mode(root), 0o700, "{}", root.display());
        assert_eq!(mode(&root.join("tls")), 0o700);
        assert_eq!(mode(&root.join("tls/server.key")), 0o600);
        for file in [
            "tessera.db",
            "tessera.db-wal",
            "tessera.db-shm",
            "tessera.db.lock",
        ] {
            assert_eq!(mode(&root.join(file)), 0o600, "{file}");
        }
    }
}

/// A client that sends half a header block, or trickles it a line at a time, or opens a connection and says
/// nothing, or keeps an HTTP/1.1 connection idle after a request, is disconnected once `header_read_timeout_secs`
/// has passed, over plain HTTP and over TLS; the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected() {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    /// Sends `lines` one a second (the half-open request never ends) and reads until the server hangs up.
    async fn hung_up_on<S: AsyncRead + AsyncWrite + Unpin>(stream: S, lines: &[&str]) -> bool {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let talk = async {
            for line in lines {
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            std::future::pending::<()>().await;
        };
        let hang_up = async {
            let mut buf = [0u8; 1024];
            while let Ok(1..) = reader.read(&mut buf).await {}
        };
        let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            tokio::select! {
                () = hang_up => true,
                () = talk => false,
            }
        });
        closed.await.unwrap_or(false)
    }
    let trickle: Vec<&str> = std::iter::once("GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .chain(std::iter::repeat_n("X-Slow: 1\r\n", 30))
        .collect();
    let idle_after_a_request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let cases: [&[&str]; 4] = [
        &[],
        &["GET /healthz HTTP/1.1\r\nHost: loc"],
        &trickle,
        &[idle_after_a_request],
    ];

    let file = tessera_server::FileConfig {
        header_read_timeout_secs: Some(2),
        ..tessera_server::FileConfig::default()
    };
    for http in [true, false] {
        let s = Server::start_with(Options {
            http,
            file: file.clone(),
            ..Options::default()
        })
        .await;
        for lines in cases {
            let closed = hung_up_on(common::raw_connection(&s.running).await, lines).await;
            assert!(
                closed,
                "http={http}: still open after 20 s with {} lines sent",
                lines.len()
            );
        }
        s.get("/healthz").await.ok(StatusCode::OK);
    }
}

/// Connections are capped per client address and in total, over HTTP and TLS: one over a cap is closed at once,
/// other addresses keep their room, and a closed connection gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_address_and_in_total() {
    use tokio::io::AsyncReadExt;
    let file = tessera_server::FileConfig {
        max_connections_per_address: Some(3),
        max_connections: Some(5),
        header_read_timeout_secs: Some(60),
        ..tessera_server::FileConfig::default()
    };
    for http in [true, false] {
        let s = Server::start_with(Options {
            http,
            file: file.clone(),
            ..Options::default()
        })
        .await;
        let addr = s.running.addr;
        let connect = |from: &str| {
            let from: std::net::IpAddr = from.parse().expect("an address");
            async move {
                let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
                socket.bind(std::net::SocketAddr::new(from, 0)).expect("bind");
                let stream = socket.connect(addr).await.expect("connect");
                // Let the server take (or refuse) its place before the next one arrives.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                stream
            }
        };
        // Closed by the server within 5 s (an accepted connection would wait 60 s for its request).
        let refused = |mut stream: tokio::net::TcpStream| async move {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut byte)).await;
            matches!(read, Ok(Ok(0) | Err(_)))
        };
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect("127.0.0.1").await);
        }
        assert!(
            refused(connect("127.0.0.1").await).await,
            "http={http}: a 4th from one address"
        );
        for _ in 0..2 {
            held.push(connect("127.0.0.2").await);
        }
        assert!(
            refused(connect("127.0.0.3").await).await,
            "http={http}: a 6th in all"
        );
        assert!(
            !refused(held.pop().expect("held")).await,
            "http={http}: held ones stay open"
        );
        drop(held);
        let mut answered = None;
        for _ in 0..50 {
            if let Ok(resp) = s.client.get(format!("{}/healthz", s.base)).send().await {
                answered = Some(resp.status());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(answered, Some(StatusCode::OK), "http={http}: places come back");
    }
}

/// With `metrics_require_admin_key`, `/metrics` answers only to the admin key; without it, anyone on the listener
/// may scrape (the metrics carry no secrets, see above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_the_admin_key() {
    let s = Server::start_with(Options {
        file: tessera_server::FileConfig {
            metrics_require_admin_key: Some(true),
            ..tessera_server::FileConfig::default()
        },
        ..Options::default()
    })
    .await;
    s.get("/metrics")
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    s.send(
        s.request(Method::GET, "/metrics")
            .bearer_auth("not-the-admin-key-000000"),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "InvalidAdminKey");
    let metrics = s
        .send(s.request(Method::GET, "/metrics").bearer_auth(ADMIN_KEY))
        .await
        .ok(StatusCode::OK);
    assert!(
        metrics.content_type().starts_with("text/plain"),
        "{}",
        metrics.content_type()
    );
}

/// Sends `head` and then `body` (all of it, as a client that does not read while it uploads), then reads the
/// whole answer until the server closes. `None` if the connection broke instead.
async fn upload(s: &Server, head: &str, body: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = common::raw_connection(&s.running).await;
    stream.write_all(head.as_bytes()).await.ok()?;
    for chunk in body.chunks(64 * 1024) {
        stream.write_all(chunk).await.ok()?;
    }
    stream.flush().await.ok()?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut answer),
    )
    .await;
    // A TLS peer that closes without close_notify is an error to rustls, after the answer was read.
    if matches!(read, Ok(Err(_))) && answer.is_empty() || read.is_err() {
        return None;
    }
    Some(String::from_utf8_lossy(&answer).into_owned())
}

/// The status and JSON error code of a raw HTTP/1.1 answer.
fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {answer:?}"));
    (
        status,
        json["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// An answer given before the body was read reaches a client still uploading, over HTTP/1.1 and TLS; a body
/// declared over the route's limit is refused before it is sent; a body trickled in is cut off with 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_answers_reach_clients_still_uploading() {
    let photo = vec![0x5a_u8; 8 * 1024 * 1024];
    let post = |path: &str, key: &str, length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {key}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    for http in [true, false] {
        let s = Server::start_with(Options {
            http,
            file: FileConfig {
                request_body_timeout_secs: Some(2),
                ..FileConfig::default()
            },
            ..Options::default()
        })
        .await;
        let face = s.create_account(&face_id("uploader")).await;
        let detect = "/face/v1.0/detect?returnFaceId=false";
        // 8 MB with a wrong key, and to no route at all: the whole upload goes out, and the answer comes back.
        let answer = upload(&s, &post(detect, "wrong", photo.len()), &photo).await;
        let answer = answer.unwrap_or_else(|| panic!("http={http}: the 401 was lost"));
        assert_eq!(
            status_and_code(&answer),
            (401, "InvalidSubscriptionKey".into()),
            "http={http}"
        );
        let answer = upload(&s, &post("/nowhere", "wrong", photo.len()), &photo).await;
        let answer = answer.unwrap_or_else(|| panic!("http={http}: the 404 was lost"));
        assert_eq!(status_and_code(&answer).0, 404, "http={http}");

        // Declared too large: refused before a byte of the body is sent.
        let answer = upload(&s, &post(detect, &face.key1, 20 * 1024 * 1024), &[])
            .await
            .expect("an answer");
        assert_eq!(
            status_and_code(&answer),
            (400, "InvalidImageSize".into()),
            "http={http}"
        );
        let json = format!(
            "POST /sts/v1.0/issueLimitedAccessToken HTTP/1.1\r\nHost: localhost\r\n\
             Ocp-Apim-Subscription-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n",
            face.key1
        );
        let answer = upload(&s, &json, &[]).await.expect("an answer");
        assert_eq!(
            status_and_code(&answer),
            (413, "RequestBodyTooLarge".into()),
            "http={http}"
        );

        // A body trickled a byte a second is cut off after request_body_timeout_secs (2 s here), though every
        // byte arrives well within any per-read timeout.
        let started = std::time::Instant::now();
        let answer = {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = common::raw_connection(&s.running).await;
            let head = json.replace("1048576", "200");
            stream.write_all(head.as_bytes()).await.unwrap();
            let trickle = async {
                for _ in 0..200 {
                    if stream.write_all(b" ").await.is_err() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(4), trickle).await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                stream.read_to_end(&mut answer),
            )
            .await;
            String::from_utf8_lossy(&answer).into_owned()
        };
        assert_eq!(
            status_and_code(&answer),
            (408, "RequestBodyTimeout".into()),
            "http={http}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(15));
        s.get("/healthz").await.ok(StatusCode::OK);
    }
}

/// The generated certificate is valid from now and renewed before it expires, without a restart: the listener
/// serves the new one under the same CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_certificate_is_renewed_without_a_restart() {
    let s = Server::start_with(Options {
        file: FileConfig {
            tls: Some(tessera_server::config::TlsFileConfig {
                certificate_validity_secs: Some(6),
                ..Default::default()
            }),
            ..FileConfig::default()
        },
        ..Options::default()
    })
    .await;
    let first = common::server_certificate(&s.running).await;
    // Due a third before expiry: after about 4 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = common::server_certificate(&s.running).await;
        if now != first {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no renewal within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    s.get("/healthz").await.ok(StatusCode::OK);
    let sealed = std::fs::read(
        s.running
            .ca_cert
            .as_ref()
            .unwrap()
            .with_file_name("ca.key.sealed"),
    )
    .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"));
}

/// A node signs checkpoints of the audit chain's head (`audit_checkpoint_secs`); the admin API publishes them,
/// and each verifies with the JWKS and vouches for the head it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_checkpoints_are_signed_and_published() {
    let s = Server::start_with(Options {
        file: FileConfig {
            audit_checkpoint_secs: Some(1),
            ..FileConfig::default()
        },
        ..Options::default()
    })
    .await;
    s.create_account(&face_id("checkpointed")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let checkpoints = loop {
        let page = s
            .admin(Method::GET, "/admin/audit/checkpoints", None)
            .await
            .ok(StatusCode::OK)
            .json();
        let value = page["value"].as_array().unwrap().clone();
        if !value.is_empty() {
            break value;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint within 15 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let events = s.verify_audit_chain(100).await;
    let latest = checkpoints.last().unwrap();
    let seq = latest["seq"].as_i64().unwrap();
    let event = events
        .iter()
        .find(|e| e.seq == seq)
        .expect("the event it vouches for");
    assert_eq!(latest["head"], hex::encode(event.hash));
    // The token verifies with the published keys and names the same head.
    let keys = s.running.state.store.signing_keys().await.unwrap();
    let ring = tessera_token::KeyRing::public(s.running.state.keys.current().issuer(), &keys).unwrap();
    let claims: tessera_core::claims::CheckpointClaims = ring
        .verify(latest["token"].as_str().unwrap(), s.clock().now())
        .unwrap();
    assert_eq!(
        (claims.seq, claims.head.as_str()),
        (seq, latest["head"].as_str().unwrap())
    );
    assert_eq!(
        jwt_header(latest["token"].as_str().unwrap())["typ"],
        "checkpoint+jwt"
    );
    s.get("/admin/audit/checkpoints")
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
}

/// Behind a real nginx: with nginx's address in `trusted_proxies`, failures count against each client's own
/// address as nginx saw it, whatever `X-Forwarded-For` the client sent itself; without it, against nginx's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_real_reverse_proxy_each_client_is_counted_by_its_own_address() {
    for trusted in [true, false] {
        let s = Server::start_with(Options {
            http: true,
            file: FileConfig {
                trusted_proxies: trusted.then(|| vec!["127.0.0.1/32".to_owned()]),
                ..FileConfig::default()
            },
            ..Options::default()
        })
        .await;
        let proxy = tessera_testkit::ReverseProxy::start(s.running.addr);
        let through = |from: &str| {
            reqwest::Client::builder()
                .local_address(from.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap()
        };
        let attempt = |client: &reqwest::Client, key: String| {
            let request = client
                .post(format!("{}/sts/v1.0/issueToken", proxy.url))
                .header("Ocp-Apim-Subscription-Key", key)
                // A client's own claim, which the proxy extends with the truth.
                .header("X-Forwarded-For", "198.51.100.77");
            async move { request.send().await.unwrap().status() }
        };
        let (mallory, alice) = (through("127.0.0.7"), through("127.0.0.8"));
        for n in 0..20 {
            assert_eq!(
                attempt(&mallory, format!("bad-{n}")).await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            attempt(&mallory, "bad-next".into()).await,
            StatusCode::TOO_MANY_REQUESTS
        );
        let alices = attempt(&alice, "alice-typo".into()).await;
        if trusted {
            assert_eq!(alices, StatusCode::UNAUTHORIZED, "Alice is counted as herself");
        } else {
            assert_eq!(
                alices,
                StatusCode::TOO_MANY_REQUESTS,
                "untrusted: everyone is the proxy"
            );
        }
    }
}
