//! The limited-access-token plane over real HTTPS, on SQLite and on PostgreSQL: the operator's set-up, issuance
//! and every way it is refused, STS bearer tokens, the gate and every invariant it enforces, the ISV's audit view,
//! key rotation, and the audit chain behind all of it.

use crate::common;

use common::{Acct, Backend, Resp, Server, communication_id, details, face_id, jwt_claims, jwt_header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_core::audit::Outcome;
use tessera_core::claims::{LimitedAccessClaims, TokenType};

const ID: &str = "Face.Identification";
const VER: &str = "Face.Verification";
const HIGH: &str = "LimitedAccess.HighRisk";
const LAT_ACTION: &str = "sts.issueLimitedAccessToken";

on_both_backends!(
    full_flow,
    issuance_refusals,
    sts_tokens,
    gate_invariants,
    isv_audit_view,
    key_rotation,
    revocations_outlive_re_grants_and_re_enables,
    sts_tokens_die_with_their_key,
);

/// The ISV, a Face client and a Communication account, as in the issue's flow.
struct Cast {
    isv: Acct,
    client: Acct,
    comm: Acct,
}

async fn cast(s: &Server) -> Cast {
    let isv = s.create_isv("isv-one", &[ID]).await;
    // Mixed case on purpose: the token names the canonical id.
    let client = s.create_account(&face_id("Client-One")).await;
    let comm = s.create_account(&communication_id("chat-one")).await;
    Cast { isv, client, comm }
}

fn actor(a: &Acct) -> String {
    format!("account:{}", a.canonical)
}

async fn full_flow(backend: Backend) {
    let s = Server::start(backend).await;
    s.get("/readyz").await.ok(StatusCode::OK);

    // The operator's part, checked through the admin API's answers.
    let isv = s.create_account(&face_id("isv-one")).await;
    let approved = s.approve(&isv.rid, &[ID, VER]).await;
    assert_eq!(approved["approvedFlags"], json!([ID, VER]));
    assert_eq!(approved["isvActive"], json!(false));
    let made = s.make_isv(&isv.rid, &[ID]).await;
    assert_eq!(made["isv"]["flags"], json!([ID]));
    assert_eq!(made["isv"]["cutOffAt"], Value::Null);
    assert_eq!(made["isvActive"], json!(true));
    assert_eq!(made["kind"], json!("face"));

    let client = s.create_account(&face_id("Client-One")).await;
    assert_eq!(client.canonical, face_id("client-one"), "names are canonicalised");
    assert_ne!(client.key1, client.key2);
    let comm = s.create_account(&communication_id("chat-one")).await;
    let comm_view = s
        .admin(Method::GET, &format!("/admin{}", comm.rid), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(comm_view["kind"], json!("communication"));
    assert!(comm_view.get("keys").is_none(), "keys are shown only at creation");

    // Issuance.
    let issuer = issuer(&s).await;
    assert!(issuer.starts_with("https://127.0.0.1:"), "{issuer}");
    let before = s.lat_issuances().await;
    let resp = s
        .issue_lat(isv.key(), &client.rid, &[ID], Some("600"))
        .await
        .ok(StatusCode::OK);
    assert_eq!(resp.content_type(), "application/jwt");
    let token = resp.text;
    assert_eq!(token.split('.').count(), 3);
    let header = jwt_header(&token);
    assert_eq!(header["alg"], json!("ES256"));
    assert_eq!(header["typ"], json!("lat+jwt"));
    let kid = header["kid"].as_str().expect("kid in the header").to_owned();
    assert!(s.jwks_kids().await.contains(&kid), "the token's kid is published");
    let claims = jwt_claims(&token);
    assert_eq!(claims["sub"], json!(client.canonical));
    assert_eq!(claims["isv"], json!(isv.canonical));
    assert_eq!(claims["flags"], json!([ID]));
    assert_eq!(claims["aud"], json!(LimitedAccessClaims::AUDIENCE));
    assert_eq!(claims["iss"], json!(issuer));
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64().expect("exp") - iat, 600);
    assert_eq!(claims["nbf"].as_i64(), Some(iat));
    assert!((iat - s.clock().now().secs()).abs() <= 5, "iat is now");
    let jti = claims["jti"].as_str().expect("jti").to_owned();
    assert!(!jti.is_empty());
    // The claims parse as the server's own type (no extra or missing claims).
    let parsed: LimitedAccessClaims = serde_json::from_value(claims.clone()).expect("claims parse");
    assert_eq!(parsed.jti, jti);

    // Invariant 4: the returned token's issuance is in the log, with its jti.
    assert_eq!(s.lat_issuances().await, before + 1);
    let issued = s
        .audit(&[("action", LAT_ACTION), ("outcome", "success")])
        .await
        .pop()
        .expect("issuance event");
    assert_eq!(issued.actor, actor(&isv));
    assert_eq!(issued.subject, client.canonical);
    assert_eq!(issued.isv.as_deref(), Some(isv.canonical.as_str()));
    let d = details(&issued);
    assert_eq!(d["jti"], json!(jti));
    assert_eq!(d["kid"], json!(kid));
    assert_eq!(d["flags"], json!([ID]));
    assert_eq!(d["exp"], claims["exp"]);

    // Lifetimes: default, and both bounds.
    for (query, lifetime) in [
        (None, 3600),
        (Some("60"), 60),
        (Some("86400"), 86_400),
        (Some("3600"), 3600),
    ] {
        let t = s
            .issue_lat(isv.key(), &client.rid, &[ID], query)
            .await
            .ok(StatusCode::OK)
            .text;
        let c = jwt_claims(&t);
        assert_eq!(
            c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
            lifetime,
            "expiredTime {query:?}"
        );
    }
    // The seed's field name for the target is accepted too.
    let alias = s
        .send(
            s.lat_request(Some("120"))
                .header("Ocp-Apim-Subscription-Key", isv.key())
                .json(&json!({"targetAzureResourceId": client.rid, "featureFlags": [ID]})),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(jwt_claims(&alias.text)["sub"], json!(client.canonical));
    assert_eq!(s.lat_issuances().await, before + 6);

    // Out-of-range or non-numeric lifetimes: 400, audited, nothing issued.
    for bad in ["59", "86401", "abc", "", "-60", "600.0", "1e3"] {
        let denied = s
            .audit_count(&[("action", LAT_ACTION), ("outcome", "denied")])
            .await;
        let r = s.issue_lat(isv.key(), &client.rid, &[ID], Some(bad)).await;
        r.error(StatusCode::BAD_REQUEST, "InvalidExpiredTime");
        let events = s.audit(&[("action", LAT_ACTION), ("outcome", "denied")]).await;
        assert_eq!(events.len(), denied + 1, "expiredTime={bad:?} is audited");
        assert_eq!(
            details(events.last().unwrap())["code"],
            json!("InvalidExpiredTime")
        );
    }
    assert_eq!(s.lat_issuances().await, before + 6);

    // The client uses the token through the gate.
    let allowed = s
        .check(client.key(), ID, Some(&token))
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(
        allowed,
        json!({"allowed": true, "featureFlag": ID, "grantedBy": "token", "jti": jti, "isv": isv.canonical})
    );
    // Without the token it may not; the Communication account has nothing either.
    s.check(client.key(), ID, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotApproved");
    s.check(comm.key(), ID, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotApproved");

    let events = s.verify_audit_chain(7).await;
    assert!(events.len() > 20);
}

/// Sends `request`, asserts the refusal, and checks the audit: a denied issuance event naming the caller and the
/// code when the caller authenticated, none otherwise.
async fn refused(
    s: &Server,
    request: reqwest::RequestBuilder,
    status: StatusCode,
    code: &str,
    caller: Option<&Acct>,
) -> Resp {
    let denied = s.audit(&[("action", LAT_ACTION), ("outcome", "denied")]).await;
    let resp = s.send(request).await;
    resp.error(status, code);
    let after = s.audit(&[("action", LAT_ACTION), ("outcome", "denied")]).await;
    match caller {
        Some(caller) => {
            assert_eq!(after.len(), denied.len() + 1, "{code}: one denied event");
            let e = after.last().unwrap();
            assert_eq!(e.actor, actor(caller), "{code}");
            assert_eq!(e.outcome, Outcome::Denied);
            assert_eq!(details(e)["code"], json!(code));
            assert_eq!(details(e)["status"], json!(status.as_u16()));
        }
        None => assert_eq!(after.len(), denied.len(), "{code}: unauthenticated, not audited"),
    }
    resp
}

fn lat_body(rid: &str, flags: &[&str]) -> Value {
    json!({"resourceId": rid, "featureFlags": flags})
}

async fn issuance_refusals(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { isv, client, comm } = cast(&s).await;
    s.approve(&isv.rid, &[ID, VER]).await; // holds Verification, may grant only Identification
    let plain = s.create_account(&face_id("not-an-isv")).await;
    s.approve(&plain.rid, &[ID]).await;
    let cut = s.create_isv("isv-cut", &[ID]).await;
    s.cut_off(&cut.rid).await;
    let disabled_isv = s.create_isv("isv-disabled", &[ID]).await;
    s.disable(&disabled_isv.rid).await;
    let disabled_client = s.create_account(&face_id("client-disabled")).await;
    s.disable(&disabled_client.rid).await;

    let baseline = s.lat_issuances().await;
    let with_key = |key: &str| s.lat_request(None).header("Ocp-Apim-Subscription-Key", key);
    let good = lat_body(&client.rid, &[ID]);

    // Who is calling.
    refused(
        &s,
        s.lat_request(None).json(&good),
        StatusCode::UNAUTHORIZED,
        "MissingCredentials",
        None,
    )
    .await;
    let r = refused(
        &s,
        with_key("wrong-key-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").json(&good),
        StatusCode::UNAUTHORIZED,
        "InvalidSubscriptionKey",
        None,
    )
    .await;
    assert!(!r.text.contains("wrong-key-"), "the presented key is not echoed");
    refused(
        &s,
        with_key(&plain.key1).json(&good),
        StatusCode::FORBIDDEN,
        "NotAnIsv",
        Some(&plain),
    )
    .await;
    refused(
        &s,
        with_key(&cut.key1).json(&good),
        StatusCode::FORBIDDEN,
        "NotAnIsv",
        Some(&cut),
    )
    .await;
    // A disabled account is refused before it reaches the operation, and that is audited as such.
    let auth_refusals = s.audit_count(&[("action", "auth.refused")]).await;
    s.send(with_key(&disabled_isv.key1).json(&good))
        .await
        .error(StatusCode::FORBIDDEN, "AccountDisabled");
    let auth_events = s.audit(&[("action", "auth.refused")]).await;
    assert_eq!(auth_events.len(), auth_refusals + 1);
    assert_eq!(auth_events.last().unwrap().actor, actor(&disabled_isv));

    // What is asked for.
    let isv_key = || with_key(&isv.key1);
    refused(
        &s,
        isv_key().json(&lat_body(&client.rid, &[VER])),
        StatusCode::FORBIDDEN,
        "FlagNotGrantable",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&client.rid, &[HIGH])),
        StatusCode::FORBIDDEN,
        "FlagNotGrantable",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&client.rid, &[ID, VER])),
        StatusCode::FORBIDDEN,
        "FlagNotGrantable",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&client.rid, &["Face.Everything"])),
        StatusCode::BAD_REQUEST,
        "UnknownFeatureFlag",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&client.rid, &["face.identification"])),
        StatusCode::BAD_REQUEST,
        "UnknownFeatureFlag",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&client.rid, &[])),
        StatusCode::BAD_REQUEST,
        "NoFeatureFlags",
        Some(&isv),
    )
    .await;

    // For whom.
    refused(
        &s,
        isv_key().json(&lat_body("not-a-resource-id", &[ID])),
        StatusCode::BAD_REQUEST,
        "InvalidResourceId",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(
            "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/x1",
            &[ID],
        )),
        StatusCode::BAD_REQUEST,
        "InvalidResourceId",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(
            &format!(
                "/subscriptions/{}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x1",
                common::SUBSCRIPTION
            ),
            &[ID],
        )),
        StatusCode::BAD_REQUEST,
        "UnsupportedResourceType",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&face_id("nobody-here"), &[ID])),
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&comm.rid, &[ID])),
        StatusCode::FORBIDDEN,
        "InvalidTarget",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&lat_body(&disabled_client.rid, &[ID])),
        StatusCode::FORBIDDEN,
        "InvalidTarget",
        Some(&isv),
    )
    .await;

    // How it is sent.
    let raw = |content_type: &str, body: Vec<u8>| {
        isv_key()
            .header(reqwest::header::CONTENT_TYPE, content_type.to_owned())
            .body(body)
    };
    refused(
        &s,
        raw("application/json", br#"{"resourceId": "#.to_vec()),
        StatusCode::BAD_REQUEST,
        "InvalidJson",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        raw("application/json", Vec::new()),
        StatusCode::BAD_REQUEST,
        "InvalidJson",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        raw("text/plain", serde_json::to_vec(&good).unwrap()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().body(serde_json::to_vec(&good).unwrap()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        Some(&isv),
    )
    .await;
    let mut big = good.clone();
    big["padding"] = json!("x".repeat(17 * 1024));
    refused(
        &s,
        raw("application/json", serde_json::to_vec(&big).unwrap()),
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestBodyTooLarge",
        Some(&isv),
    )
    .await;
    let mut extra = good.clone();
    extra["scope"] = json!("everything");
    refused(
        &s,
        isv_key().json(&extra),
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&json!({"resourceId": client.rid})),
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&json!({"resourceId": client.rid, "featureFlags": ID})),
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        Some(&isv),
    )
    .await;
    refused(
        &s,
        isv_key().json(&json!([1, 2])),
        StatusCode::BAD_REQUEST,
        "InvalidRequestBody",
        Some(&isv),
    )
    .await;

    // Nothing was issued by any of it; a proper request still works.
    assert_eq!(s.lat_issuances().await, baseline);
    s.lat(&isv, &client, &[ID]).await;
    assert_eq!(s.lat_issuances().await, baseline + 1);
    s.verify_audit_chain(1000).await;
}

async fn sts_tokens(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { isv, client, .. } = cast(&s).await;

    let sts = s.sts_token(&client.key2).await;
    let header = jwt_header(&sts);
    assert_eq!(header["alg"], json!("ES256"));
    assert_eq!(header["typ"], json!("sts+jwt"));
    assert!(
        s.jwks_kids()
            .await
            .contains(&header["kid"].as_str().unwrap().to_owned())
    );
    let claims = jwt_claims(&sts);
    assert_eq!(claims["sub"], json!(client.canonical));
    assert_eq!(claims["aud"], json!("urn:tessera:sts"));
    assert_eq!(claims["iss"], json!(issuer(&s).await));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    let issued = s
        .audit(&[("action", "sts.issueToken"), ("outcome", "success")])
        .await;
    assert_eq!(issued.len(), 1);
    assert_eq!(details(&issued[0])["jti"], claims["jti"]);

    // The ISV's STS token stands in for its key when issuing.
    let isv_sts = s.sts_token(isv.key()).await;
    let resp = s
        .send(
            s.lat_request(Some("300"))
                .bearer_auth(&isv_sts)
                .json(&lat_body(&client.rid, &[ID])),
        )
        .await
        .ok(StatusCode::OK);
    assert_eq!(resp.content_type(), "application/jwt");
    let lat = resp.text;
    assert_eq!(jwt_claims(&lat)["isv"], json!(isv.canonical));
    let event = s
        .audit(&[("action", LAT_ACTION), ("outcome", "success")])
        .await
        .pop()
        .unwrap();
    assert_eq!(event.actor, actor(&isv));

    // The client's STS token works with the gate, beside the limited access token.
    let allowed = s
        .send(
            s.request(Method::POST, "/sts/v1.0/limitedAccess/check")
                .bearer_auth(&sts)
                .header("LimitedAccessToken", format!("Bearer {lat}"))
                .json(&json!({"featureFlag": ID})),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(allowed["grantedBy"], json!("token"));

    // An STS token cannot mint another one.
    let denied = s
        .audit_count(&[("action", "sts.issueToken"), ("outcome", "denied")])
        .await;
    s.send(s.request(Method::POST, "/sts/v1.0/issueToken").bearer_auth(&sts))
        .await
        .error(StatusCode::FORBIDDEN, "SubscriptionKeyRequired");
    assert_eq!(
        s.audit_count(&[("action", "sts.issueToken"), ("outcome", "denied")])
            .await,
        denied + 1
    );
    // A limited access token is not a bearer credential.
    let bearer = |t: &str| {
        s.lat_request(None)
            .bearer_auth(t)
            .json(&lat_body(&client.rid, &[ID]))
    };
    refused(
        &s,
        bearer(&lat),
        StatusCode::UNAUTHORIZED,
        "TokenTypeMismatch",
        None,
    )
    .await;
    let mut forged = jwt_claims(&isv_sts);
    forged["exp"] = json!(forged["exp"].as_i64().unwrap() + 86_400);
    refused(
        &s,
        bearer(&common::with_claims(&isv_sts, &forged)),
        StatusCode::UNAUTHORIZED,
        "TokenSignatureInvalid",
        None,
    )
    .await;
    refused(
        &s,
        bearer("not.a-jwt"),
        StatusCode::UNAUTHORIZED,
        "TokenMalformed",
        None,
    )
    .await;
    refused(
        &s,
        s.lat_request(None)
            .header("Authorization", format!("Basic {isv_sts}"))
            .json(&lat_body(&client.rid, &[ID])),
        StatusCode::UNAUTHORIZED,
        "TokenMalformed",
        None,
    )
    .await;
    // A missing credential on issueToken.
    s.send(s.request(Method::POST, "/sts/v1.0/issueToken"))
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");

    // Ten minutes later the STS token is dead; the subscription key still works.
    s.clock().advance_secs(601);
    refused(
        &s,
        bearer(&isv_sts),
        StatusCode::UNAUTHORIZED,
        "TokenExpired",
        None,
    )
    .await;
    s.send(s.request(Method::POST, "/sts/v1.0/issueToken").bearer_auth(&sts))
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenExpired");
    s.sts_token(client.key()).await;
    s.verify_audit_chain(1000).await;
}

/// Asserts the last gate event: its outcome, reason or grant, the caller, and the token's jti and ISV.
async fn gate_event(
    s: &Server,
    count: &mut usize,
    caller: &Acct,
    outcome: Outcome,
    reason: &str,
    token: Option<&str>,
) {
    let events = s.audit(&[("action", "limitedAccess.use")]).await;
    *count += 1;
    assert_eq!(events.len(), *count, "one gate event per decision ({reason})");
    let e = events.last().unwrap();
    let d = details(e);
    assert_eq!(e.outcome, outcome, "{reason}: {d}");
    assert_eq!(e.actor, actor(caller), "{reason}");
    assert_eq!(e.subject, caller.canonical, "{reason}");
    match outcome {
        Outcome::Success => assert_eq!(d["grantedBy"], json!(reason)),
        Outcome::Denied => assert_eq!(d["reason"], json!(reason)),
    }
    if let Some(token) = token {
        let claims = jwt_claims(token);
        assert_eq!(
            e.isv.as_deref(),
            claims["isv"].as_str(),
            "{reason}: filed under the ISV"
        );
        if outcome == Outcome::Success {
            assert_eq!(
                d["jti"], claims["jti"],
                "{reason}: the decision names the token: {d}"
            );
        }
    }
}

/// The issuer the discovery document announces.
async fn issuer(s: &Server) -> String {
    let discovery = s
        .get("/.well-known/openid-configuration")
        .await
        .ok(StatusCode::OK)
        .json();
    discovery["issuer"].as_str().expect("issuer").to_owned()
}

/// Known server bug (reported): a refused gate decision on a token that verified (TokenForOtherAccount,
/// FlagNotInToken, IsvNotActive, IsvMayNotGrant) is filed under the ISV but its details lack the token's `jti`,
/// so neither the operator nor the ISV can tell which token was refused. `crates/server/src/http/gate.rs` only sets
/// `details["jti"]` for `Grant::Token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_denied_gate_decisions_name_the_token_jti() {
    let s = Server::start(Backend::Sqlite).await;
    let Cast { isv, client, .. } = cast(&s).await;
    let other = s.create_account(&face_id("client-two")).await;
    let token = s.lat(&isv, &client, &[ID]).await;
    let jti = jwt_claims(&token)["jti"].clone();
    s.check(other.key(), ID, Some(&token))
        .await
        .error(StatusCode::FORBIDDEN, "TokenForOtherAccount");
    assert_eq!(details(&s.last_gate_event().await)["jti"], jti);
    s.check(client.key(), VER, Some(&token))
        .await
        .error(StatusCode::FORBIDDEN, "FlagNotInToken");
    assert_eq!(details(&s.last_gate_event().await)["jti"], jti);
    s.cut_off(&isv.rid).await;
    s.check(client.key(), ID, Some(&token))
        .await
        .error(StatusCode::FORBIDDEN, "IsvNotActive");
    assert_eq!(details(&s.last_gate_event().await)["jti"], jti);
}

/// Known server bug (reported): with `listen` on port 0 (an ephemeral port, as every test server uses) the
/// default public URL, hence the tokens' `iss` and the discovery document's `jwks_uri`, say port 0 instead of the
/// port actually bound: `Config::resolve` derives `public_url` from the configured address before `start` binds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_issuer_names_the_bound_port() {
    let s = Server::start(Backend::Sqlite).await;
    assert_eq!(issuer(&s).await, s.base);
    let discovery = s
        .get("/.well-known/openid-configuration")
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(
        discovery["jwks_uri"],
        json!(format!("{}/.well-known/jwks.json", s.base))
    );
}

async fn gate_invariants(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { isv, client, comm } = cast(&s).await;
    let other = s.create_account(&face_id("client-two")).await;
    let self_approved = s.create_account(&face_id("self-approved")).await;
    s.approve(&self_approved.rid, &[VER]).await;
    let isv_cut = s.create_isv("isv-to-cut", &[ID]).await;
    let isv_narrowed = s.create_isv("isv-to-narrow", &[ID, VER]).await;
    let mut gates = 0;

    let token = s.lat(&isv, &client, &[ID]).await;
    let jti = jwt_claims(&token)["jti"].clone();

    // Allowed: by token (either key), by the account's own approval.
    for key in [&client.key1, &client.key2] {
        let ok = s.check(key, ID, Some(&token)).await.ok(StatusCode::OK).json();
        assert_eq!(ok["grantedBy"], json!("token"));
        assert_eq!(ok["jti"], jti);
        assert_eq!(ok["isv"], json!(isv.canonical));
        gate_event(&s, &mut gates, &client, Outcome::Success, "token", Some(&token)).await;
    }
    let own = s
        .check(&self_approved.key1, VER, None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(
        own,
        json!({"allowed": true, "featureFlag": VER, "grantedBy": "approval"})
    );
    gate_event(&s, &mut gates, &self_approved, Outcome::Success, "approval", None).await;
    s.check(&isv.key1, ID, None).await.ok(StatusCode::OK);
    gate_event(&s, &mut gates, &isv, Outcome::Success, "approval", None).await;

    // No token, no approval.
    s.check(client.key(), ID, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotApproved");
    gate_event(&s, &mut gates, &client, Outcome::Denied, "NotApproved", None).await;

    // Invariant 2: a token is honoured only for the account it names, with that account's key, even if the
    // presenter holds the flag itself.
    for presenter in [&other, &isv, &comm] {
        s.check(presenter.key(), ID, Some(&token))
            .await
            .error(StatusCode::FORBIDDEN, "TokenForOtherAccount");
        gate_event(
            &s,
            &mut gates,
            presenter,
            Outcome::Denied,
            "TokenForOtherAccount",
            Some(&token),
        )
        .await;
    }

    // Invariant 1: the token grants only what it names.
    s.check(client.key(), VER, Some(&token))
        .await
        .error(StatusCode::FORBIDDEN, "FlagNotInToken");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "FlagNotInToken",
        Some(&token),
    )
    .await;

    // Invariant 3: tampered, forged, wrongly typed, malformed.
    let mut claims = jwt_claims(&token);
    claims["flags"] = json!([ID, VER, HIGH]);
    let tampered = common::with_claims(&token, &claims);
    s.check(client.key(), VER, Some(&tampered))
        .await
        .error(StatusCode::FORBIDDEN, "TokenSignatureInvalid");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "TokenSignatureInvalid",
        None,
    )
    .await;
    let mut claims = jwt_claims(&token);
    claims["sub"] = json!(other.canonical);
    let moved = common::with_claims(&token, &claims);
    s.check(other.key(), ID, Some(&moved))
        .await
        .error(StatusCode::FORBIDDEN, "TokenSignatureInvalid");
    gate_event(
        &s,
        &mut gates,
        &other,
        Outcome::Denied,
        "TokenSignatureInvalid",
        None,
    )
    .await;

    let header = jwt_header(&token);
    let none = format!(
        "{}.{}.",
        common::encode_segment(&json!({"alg": "none", "typ": "lat+jwt", "kid": header["kid"]})),
        token.split('.').nth(1).unwrap()
    );
    s.check(client.key(), ID, Some(&none))
        .await
        .error(StatusCode::FORBIDDEN, "TokenAlgorithmNotAllowed");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "TokenAlgorithmNotAllowed",
        None,
    )
    .await;
    let hs256 = common::with_header(
        &token,
        &json!({"alg": "HS256", "typ": "lat+jwt", "kid": header["kid"]}),
    );
    s.check(client.key(), ID, Some(&hs256))
        .await
        .error(StatusCode::FORBIDDEN, "TokenAlgorithmNotAllowed");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "TokenAlgorithmNotAllowed",
        None,
    )
    .await;

    // Signed by a key the server never published: unknown kid; the same under a published kid: bad signature.
    let foreign = foreign_ring(&s.base);
    let parsed: LimitedAccessClaims = serde_json::from_value(jwt_claims(&token)).unwrap();
    let forged = foreign.sign(&parsed).expect("sign with the foreign key");
    s.check(client.key(), ID, Some(&forged))
        .await
        .error(StatusCode::FORBIDDEN, "TokenKeyUnknown");
    gate_event(&s, &mut gates, &client, Outcome::Denied, "TokenKeyUnknown", None).await;
    let mut forged_header = jwt_header(&forged);
    forged_header["kid"] = header["kid"].clone();
    let parts: Vec<&str> = forged.split('.').collect();
    let reheaded = format!(
        "{}.{}.{}",
        common::encode_segment(&forged_header),
        parts[1],
        parts[2]
    );
    s.check(client.key(), ID, Some(&reheaded))
        .await
        .error(StatusCode::FORBIDDEN, "TokenSignatureInvalid");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "TokenSignatureInvalid",
        None,
    )
    .await;
    let unknown_kid = common::with_header(
        &token,
        &json!({"alg": "ES256", "typ": "lat+jwt", "kid": "no-such-key"}),
    );
    s.check(client.key(), ID, Some(&unknown_kid))
        .await
        .error(StatusCode::FORBIDDEN, "TokenKeyUnknown");
    gate_event(&s, &mut gates, &client, Outcome::Denied, "TokenKeyUnknown", None).await;

    // A user-kind token (the account's STS token) is not a limited access token.
    let sts = s.sts_token(client.key()).await;
    s.check(client.key(), ID, Some(&sts))
        .await
        .error(StatusCode::FORBIDDEN, "TokenTypeMismatch");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "TokenTypeMismatch",
        None,
    )
    .await;
    // Nor is a token whose header claims the type without the signature to match.
    let retyped = common::with_header(
        &sts,
        &json!({"alg": "ES256", "typ": "lat+jwt", "kid": jwt_header(&sts)["kid"]}),
    );
    s.check(client.key(), ID, Some(&retyped))
        .await
        .error(StatusCode::FORBIDDEN, "TokenSignatureInvalid");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "TokenSignatureInvalid",
        None,
    )
    .await;

    for raw in [
        token.clone(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Token {token}"),
    ] {
        s.check_raw(client.key(), ID, Some(&raw))
            .await
            .error(StatusCode::FORBIDDEN, "TokenMalformed");
        gate_event(&s, &mut gates, &client, Outcome::Denied, "TokenMalformed", None).await;
    }
    s.check(client.key(), ID, Some("abc.def.ghi"))
        .await
        .error(StatusCode::FORBIDDEN, "TokenMalformed");
    gate_event(&s, &mut gates, &client, Outcome::Denied, "TokenMalformed", None).await;
    // A presented token that fails is refused even when the account holds the flag itself.
    s.check(&self_approved.key1, VER, Some(&tampered))
        .await
        .error(StatusCode::FORBIDDEN, "TokenSignatureInvalid");
    gate_event(
        &s,
        &mut gates,
        &self_approved,
        Outcome::Denied,
        "TokenSignatureInvalid",
        None,
    )
    .await;

    // Invariant 1 at use: the ISV cut off after issuing.
    let cut_token = s.lat(&isv_cut, &client, &[ID]).await;
    s.check(client.key(), ID, Some(&cut_token))
        .await
        .ok(StatusCode::OK);
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Success,
        "token",
        Some(&cut_token),
    )
    .await;
    s.cut_off(&isv_cut.rid).await;
    s.check(client.key(), ID, Some(&cut_token))
        .await
        .error(StatusCode::FORBIDDEN, "IsvNotActive");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "IsvNotActive",
        Some(&cut_token),
    )
    .await;

    // ... and the ISV losing its own approval of the flag after issuing.
    let narrowed_token = s.lat(&isv_narrowed, &client, &[ID, VER]).await;
    s.check(client.key(), ID, Some(&narrowed_token))
        .await
        .ok(StatusCode::OK);
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Success,
        "token",
        Some(&narrowed_token),
    )
    .await;
    s.approve(&isv_narrowed.rid, &[VER]).await;
    s.check(client.key(), ID, Some(&narrowed_token))
        .await
        .error(StatusCode::FORBIDDEN, "IsvMayNotGrant");
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Denied,
        "IsvMayNotGrant",
        Some(&narrowed_token),
    )
    .await;
    s.check(client.key(), VER, Some(&narrowed_token))
        .await
        .ok(StatusCode::OK);
    gate_event(
        &s,
        &mut gates,
        &client,
        Outcome::Success,
        "token",
        Some(&narrowed_token),
    )
    .await;

    // Not yet valid: a token minted while the server's clock ran five minutes ahead.
    s.clock().advance_secs(300);
    let early = s.lat(&isv, &client, &[ID]).await;
    s.clock().advance_secs(-300);
    s.check(client.key(), ID, Some(&early))
        .await
        .error(StatusCode::FORBIDDEN, "TokenNotYetValid");
    gate_event(&s, &mut gates, &client, Outcome::Denied, "TokenNotYetValid", None).await;

    // Expired.
    let short = s
        .issue_lat(isv.key(), &client.rid, &[ID], Some("60"))
        .await
        .ok(StatusCode::OK)
        .text;
    s.check(client.key(), ID, Some(&short)).await.ok(StatusCode::OK);
    gate_event(&s, &mut gates, &client, Outcome::Success, "token", Some(&short)).await;
    s.clock().advance_secs(61);
    s.check(client.key(), ID, Some(&short))
        .await
        .error(StatusCode::FORBIDDEN, "TokenExpired");
    gate_event(&s, &mut gates, &client, Outcome::Denied, "TokenExpired", None).await;
    s.check(client.key(), ID, Some(&token)).await.ok(StatusCode::OK);
    gate_event(&s, &mut gates, &client, Outcome::Success, "token", Some(&token)).await;

    // An unknown flag is a bad request, not a gate decision.
    s.check(client.key(), "Face.Everything", Some(&token))
        .await
        .error(StatusCode::BAD_REQUEST, "UnknownFeatureFlag");
    assert_eq!(s.audit_count(&[("action", "limitedAccess.use")]).await, gates);

    // A disabled account is refused before the gate, and that refusal is audited.
    s.disable(&client.rid).await;
    s.check(client.key(), ID, Some(&token))
        .await
        .error(StatusCode::FORBIDDEN, "AccountDisabled");
    let refusal = s
        .audit(&[("action", "auth.refused")])
        .await
        .pop()
        .expect("auth.refused event");
    assert_eq!(refusal.actor, actor(&client));
    assert_eq!(details(&refusal)["code"], json!("AccountDisabled"));
    s.check(client.key(), ID, None)
        .await
        .error(StatusCode::FORBIDDEN, "AccountDisabled");

    s.verify_audit_chain(50).await;
}

/// A key ring the server never saw.
fn foreign_ring(issuer: &str) -> tessera_token::KeyRing {
    let master = tessera_token::MasterKey::from_base64(&common::master_key()).unwrap();
    let now = tessera_core::Timestamp::from_secs(0);
    let stored = tessera_token::keys::bootstrap(&master, now).unwrap();
    tessera_token::KeyRing::load(issuer, &master, &stored).unwrap()
}

async fn isv_audit_view(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { isv, client, .. } = cast(&s).await;
    let rival = s.create_isv("isv-two", &[ID]).await;
    let t1 = s.lat(&isv, &client, &[ID]).await;
    let t2 = s.lat(&rival, &client, &[ID]).await;
    let (jti1, jti2) = (jwt_claims(&t1)["jti"].clone(), jwt_claims(&t2)["jti"].clone());
    s.check(client.key(), ID, Some(&t1)).await.ok(StatusCode::OK);
    s.check(&client.key2, ID, Some(&t1)).await.ok(StatusCode::OK);
    s.check(client.key(), VER, Some(&t1))
        .await
        .error(StatusCode::FORBIDDEN, "FlagNotInToken");
    s.check(client.key(), ID, Some(&t2)).await.ok(StatusCode::OK);
    s.issue_lat(isv.key(), &client.rid, &[VER], None)
        .await
        .error(StatusCode::FORBIDDEN, "FlagNotGrantable");
    s.issue_lat(rival.key(), &client.rid, &[VER], None)
        .await
        .error(StatusCode::FORBIDDEN, "FlagNotGrantable");

    let view = |key: String| {
        let s = &s;
        async move {
            s.send(
                s.request(Method::GET, "/sts/v1.0/limitedAccess/audit")
                    .header("Ocp-Apim-Subscription-Key", key),
            )
            .await
        }
    };
    let resp = view(isv.key1.clone()).await.ok(StatusCode::OK);
    assert!(resp.content_type().starts_with("application/json"));
    let events: Vec<tessera_core::audit::Event> =
        serde_json::from_value(resp.json()["value"].clone()).unwrap();
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e.isv.as_deref() == Some(isv.canonical.as_str())),
        "only this ISV's events"
    );
    assert!(
        events.iter().all(|e| !e.details.contains(jti2.as_str().unwrap())),
        "nothing of the rival's token"
    );
    let issuance: Vec<_> = events
        .iter()
        .filter(|e| e.action == LAT_ACTION && e.outcome == Outcome::Success)
        .collect();
    assert_eq!(issuance.len(), 1);
    assert_eq!(details(issuance[0])["jti"], jti1);
    assert_eq!(issuance[0].subject, client.canonical);
    let uses: Vec<_> = events
        .iter()
        .filter(|e| e.action == "limitedAccess.use")
        .collect();
    assert_eq!(uses.len(), 3, "every use of its token, allowed or not");
    assert!(uses.iter().all(|e| e.actor == actor(&client)));
    assert_eq!(uses.iter().filter(|e| e.outcome == Outcome::Success).count(), 2);
    assert!(
        uses.iter()
            .filter(|e| e.outcome == Outcome::Success)
            .all(|e| details(e)["jti"] == jti1)
    );
    assert_eq!(details(uses[2])["reason"], json!("FlagNotInToken"));
    let own_refusals: Vec<_> = events
        .iter()
        .filter(|e| e.action == LAT_ACTION && e.outcome == Outcome::Denied)
        .collect();
    assert_eq!(own_refusals.len(), 1);
    assert_eq!(own_refusals[0].actor, actor(&isv));

    // The rival sees its own token's issuance and use, and nothing of the first ISV's.
    let rival_events: Vec<tessera_core::audit::Event> =
        serde_json::from_value(view(rival.key1.clone()).await.ok(StatusCode::OK).json()["value"].clone())
            .unwrap();
    assert!(
        rival_events
            .iter()
            .all(|e| e.isv.as_deref() == Some(rival.canonical.as_str()))
    );
    assert!(
        rival_events
            .iter()
            .any(|e| details(e)["jti"] == jti2 && e.action == "limitedAccess.use")
    );
    assert!(
        rival_events
            .iter()
            .all(|e| !e.details.contains(jti1.as_str().unwrap()))
    );

    // Paging.
    let page = s
        .send(
            s.request(Method::GET, "/sts/v1.0/limitedAccess/audit?limit=2")
                .header("Ocp-Apim-Subscription-Key", &isv.key1),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    let next = page["nextAfter"].as_i64().expect("a next page");
    let rest = s
        .send(
            s.request(
                Method::GET,
                &format!("/sts/v1.0/limitedAccess/audit?after={next}&limit=1000"),
            )
            .header("Ocp-Apim-Subscription-Key", &isv.key1),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(rest["value"].as_array().unwrap().len() + 2, events.len());

    // Not for non-ISVs, nor for the anonymous.
    view(client.key1.clone())
        .await
        .error(StatusCode::FORBIDDEN, "NotAnIsv");
    s.get("/sts/v1.0/limitedAccess/audit")
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    s.verify_audit_chain(1000).await;
}

async fn key_rotation(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { isv, client, .. } = cast(&s).await;
    let before = s.jwks_kids().await;
    assert_eq!(before.len(), 2, "the active key and the next one");
    let keys = s
        .admin(Method::GET, "/admin/keys", None)
        .await
        .ok(StatusCode::OK)
        .json();
    let states: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "active").count(), 1);
    assert_eq!(states.iter().filter(|s| **s == "pending").count(), 1);
    assert!(
        !keys.to_string().to_lowercase().contains("private"),
        "no private halves: {keys}"
    );

    let old = s.lat(&isv, &client, &[ID]).await;
    let old_kid = jwt_header(&old)["kid"].as_str().unwrap().to_owned();
    assert!(before.contains(&old_kid));

    let rotation = s
        .admin(Method::POST, "/admin/keys/rotate", None)
        .await
        .ok(StatusCode::OK)
        .json();
    let activated = rotation["activated"]
        .as_str()
        .expect("a key was activated")
        .to_owned();
    let published = rotation["published"]
        .as_str()
        .expect("a key was published")
        .to_owned();
    assert_eq!(rotation["retired"], json!([old_kid]));
    assert_ne!(activated, old_kid);
    assert!(
        before.contains(&activated),
        "the new signing key was published before it signed"
    );
    assert!(!before.contains(&published));

    let after = s.jwks_kids().await;
    assert_eq!(after.len(), 3, "retired, active, next: {after:?}");
    for kid in [&old_kid, &activated, &published] {
        assert!(after.contains(kid));
    }
    // Tokens from before still pass; new ones carry the new kid.
    s.check(client.key(), ID, Some(&old)).await.ok(StatusCode::OK);
    let new = s.lat(&isv, &client, &[ID]).await;
    assert_eq!(jwt_header(&new)["kid"], json!(activated));
    s.check(client.key(), ID, Some(&new)).await.ok(StatusCode::OK);
    assert_eq!(
        jwt_header(&s.sts_token(client.key()).await)["kid"],
        json!(activated)
    );

    let event = s
        .audit(&[("action", "admin.keys.rotate")])
        .await
        .pop()
        .expect("rotation audited");
    assert_eq!(event.actor, "admin");
    assert_eq!(details(&event)["activated"], json!(activated));

    // A second rotation: the first token is still honoured while its key stays published.
    s.admin(Method::POST, "/admin/keys/rotate", None)
        .await
        .ok(StatusCode::OK);
    assert_eq!(s.jwks_kids().await.len(), 4);
    s.check(client.key(), ID, Some(&old)).await.ok(StatusCode::OK);
    s.check(client.key(), ID, Some(&new)).await.ok(StatusCode::OK);
    assert_eq!(
        jwt_header(&s.lat(&isv, &client, &[ID]).await)["kid"],
        json!(published)
    );
    s.admin(Method::POST, "/admin/keys/rotate", None)
        .await
        .ok(StatusCode::OK);
    s.send(s.request(Method::POST, "/admin/keys/rotate"))
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
    s.verify_audit_chain(1000).await;
}

/// Re-granting a cut-off ISV or enabling a disabled account restores its standing, not the tokens issued before:
/// those stay dead (`TokenRevoked`), and tokens issued afterwards work at once.
async fn revocations_outlive_re_grants_and_re_enables(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { isv, client, .. } = cast(&s).await;
    let before_cut_off = s.lat(&isv, &client, &[ID]).await;
    s.check(client.key(), ID, Some(&before_cut_off))
        .await
        .ok(StatusCode::OK);
    s.cut_off(&isv.rid).await;
    s.make_isv(&isv.rid, &[ID]).await;
    s.check(client.key(), ID, Some(&before_cut_off))
        .await
        .error(StatusCode::FORBIDDEN, "TokenRevoked");
    let after_re_grant = s.lat(&isv, &client, &[ID]).await;
    s.check(client.key(), ID, Some(&after_re_grant))
        .await
        .ok(StatusCode::OK);

    // The ISV's own disable kills what it issued; the client's kills what names it, and its STS tokens.
    s.disable(&isv.rid).await;
    s.enable(&isv.rid).await;
    s.check(client.key(), ID, Some(&after_re_grant))
        .await
        .error(StatusCode::FORBIDDEN, "TokenRevoked");
    let lat = s.lat(&isv, &client, &[ID]).await;
    let sts = s.sts_token(client.key()).await;
    s.check_bearer(&sts, ID, Some(&lat)).await.ok(StatusCode::OK);
    s.disable(&client.rid).await;
    s.check_bearer(&sts, ID, Some(&lat))
        .await
        .error(StatusCode::FORBIDDEN, "AccountDisabled");
    s.enable(&client.rid).await;
    s.check_bearer(&sts, ID, None)
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    s.check(client.key(), ID, Some(&lat))
        .await
        .error(StatusCode::FORBIDDEN, "TokenRevoked");
    let sts = s.sts_token(client.key()).await;
    let lat = s.lat(&isv, &client, &[ID]).await;
    s.check_bearer(&sts, ID, Some(&lat)).await.ok(StatusCode::OK);
    s.verify_audit_chain(100).await;
}

/// An STS token names the key slot and generation that minted it: regenerating that slot kills it (a leaked key's
/// tokens do not outlive the key), regenerating the other slot does not, on Face and Communication accounts.
async fn sts_tokens_die_with_their_key(backend: Backend) {
    let s = Server::start(backend).await;
    let Cast { client, comm, .. } = cast(&s).await;
    s.approve(&client.rid, &[ID]).await;
    let (by_key1, by_key2) = (s.sts_token(&client.key1).await, s.sts_token(&client.key2).await);
    let claims = jwt_claims(&by_key1);
    assert_eq!(
        (claims["kslot"].as_str(), claims["kgen"].as_u64()),
        (Some("key1"), Some(1)),
        "{claims}"
    );
    for sts in [&by_key1, &by_key2] {
        s.check_bearer(sts, ID, None).await.ok(StatusCode::OK);
    }
    let regenerate = |rid: &str, slot: &str| {
        let (s, path, body) = (
            &s,
            format!("/admin{rid}/regenerateKey"),
            json!({ "keyName": slot }),
        );
        async move { s.admin(Method::POST, &path, Some(body)).await }
    };
    let fresh = regenerate(&client.rid, "key1").await.ok(StatusCode::OK).json();
    let message = s
        .check_bearer(&by_key1, ID, None)
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    assert!(message.contains("key1"), "{message}");
    s.check_bearer(&by_key2, ID, None).await.ok(StatusCode::OK);
    let renewed = s.sts_token(fresh["key"].as_str().expect("the new key")).await;
    assert_eq!(jwt_claims(&renewed)["kgen"], 2);
    s.check_bearer(&renewed, ID, None).await.ok(StatusCode::OK);

    // A Communication account's STS token creates identities until its key is regenerated.
    let sts = s.sts_token(&comm.key2).await;
    let create = |sts: String| {
        s.send(
            s.request(Method::POST, "/identities?api-version=2023-10-01")
                .bearer_auth(sts)
                .json(&json!({})),
        )
    };
    create(sts.clone()).await.ok(StatusCode::CREATED);
    regenerate(&comm.rid, "key2").await.ok(StatusCode::OK);
    create(sts).await.error(StatusCode::UNAUTHORIZED, "TokenRevoked");
}

/// Refusals cannot flood the audit chain: identical ones within `refusal_aggregation_secs` are written once and
/// counted, the count written when the window closes; past `max_refusals_per_minute` a caller's refusals are
/// answered 429 with `Retry-After`, while what it may do is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_refusals_are_folded_and_limited() {
    let s = Server::start_with(common::Options {
        file: tessera_server::FileConfig {
            refusal_aggregation_secs: Some(1),
            max_refusals_per_minute: Some(40),
            ..tessera_server::FileConfig::default()
        },
        ..common::Options::default()
    })
    .await;
    let client = s.create_account(&face_id("flooder")).await;
    let denied = || s.audit(&[("action", "limitedAccess.use"), ("outcome", "denied")]);
    for _ in 0..30 {
        s.check(client.key(), ID, None)
            .await
            .error(StatusCode::FORBIDDEN, "NotApproved");
    }
    assert_eq!(denied().await.len(), 1, "30 identical refusals, one event so far");
    // The window closes; the next refusal writes the count of the repeats first.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    s.check(client.key(), ID, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotApproved");
    let events = denied().await;
    assert_eq!(events.len(), 3, "{events:?}");
    let folded = details(&events[1]);
    assert_eq!(folded["repeated"], 29, "{folded}");
    assert_eq!(folded["reason"], "NotApproved");
    assert!(folded["from"].is_string() && folded["until"].is_string());
    assert!(details(&events[2]).get("repeated").is_none());

    // 31 refusals so far this minute; the 41st is answered 429, and still counted.
    for _ in 0..9 {
        s.check(client.key(), ID, None)
            .await
            .error(StatusCode::FORBIDDEN, "NotApproved");
    }
    let limited = s.check(client.key(), ID, None).await;
    limited.error(StatusCode::TOO_MANY_REQUESTS, "TooManyRefusals");
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // What the caller may do is served: its STS token.
    s.sts_token(client.key()).await;
    s.verify_audit_chain(100).await;
}
