//! The Rust client SDK (`tessera-client`) against a real server over HTTPS: the operator's `AdminClient` on every
//! admin route (its typed answers are the server's own wire types), STS and limited access tokens,
//! identities by name, a device's `CommunicationTokenCredential` refreshing through its session, then refused
//! once the trusted service revokes the identity, the seed's Bob-and-Sue chat through `ChatClient`, a device's
//! event stream across a token expiry and a revocation, and the `bob_and_sue` example run against the server.

use crate::common;

use common::{Backend, Server, face_id};
use reqwest::StatusCode;
use std::time::Duration;
use tessera_client::wire::admin::{AccountListQuery, AuditFilter, CheckpointQuery};
use tessera_client::{
    AdminClient, ChatClient, ChatEvent, ChatEvents, ClientError, CommunicationTokenCredential,
    CredentialEvent, DeviceRefresher, Endpoint, IdentityClient, IdentityKind, RefreshOptions, StsClient,
    TokenRequest, refresher_fn,
};
use tessera_core::{AccountKind, FlagSet};

fn endpoint(s: &Server) -> Endpoint {
    Endpoint::with_client(s.base.clone(), s.client.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_manages_accounts_keys_and_audit_through_admin_client() {
    let s = Server::start(Backend::Sqlite).await;
    let admin = AdminClient::new(endpoint(&s), common::ADMIN_KEY);
    let rid = face_id("sdk-admin");
    let flags = vec!["Face.Identification".to_owned()];

    let created = admin.create_account(&rid, &flags).await.unwrap();
    let account = &created.view.account;
    assert!(account.resource_id.as_str().eq_ignore_ascii_case(&rid));
    assert_eq!(created.view.kind, AccountKind::Face);
    assert_eq!(account.approved_flags, FlagSet::parse(&flags).unwrap());
    assert!(!created.view.isv_active && !account.disabled);
    assert_eq!(
        created.connection_string, None,
        "a Face account has no ACS endpoint"
    );
    assert_ne!(created.keys.key1, created.keys.key2);
    StsClient::new(endpoint(&s), &created.keys.key1)
        .issue_token()
        .await
        .unwrap();
    assert_eq!(admin.account(&rid).await.unwrap(), created.view);

    let isv = admin.grant_isv(&rid, &flags).await.unwrap();
    assert!(isv.isv_active);
    assert_eq!(isv.account.isv.map(|g| g.flags), Some(account.approved_flags));
    let cut = admin.cut_off_isv(&rid).await.unwrap();
    assert!(!cut.isv_active && cut.account.isv.is_some_and(|g| g.cut_off_at.is_some()));
    assert!(admin.disable(&rid).await.unwrap().account.disabled);
    assert!(!admin.enable(&rid).await.unwrap().account.disabled);
    let revoked = admin.revoke_user_tokens(&rid).await.unwrap();
    assert!(revoked.account.user_tokens_revoked_at.is_some());
    let approved = admin.approve(&rid, &[]).await.unwrap();
    assert!(approved.account.approved_flags.is_empty());

    let slots = admin.key_slots(&rid).await.unwrap();
    let names: Vec<&str> = slots.keys.iter().map(|k| k.key_name.as_str()).collect();
    assert_eq!(names, ["key1", "key2"]);
    let regenerated = admin.regenerate_key(&rid, "key2").await.unwrap();
    assert_eq!(regenerated.key_name, "key2");
    assert_eq!(regenerated.connection_string, None);
    let old = StsClient::new(endpoint(&s), &created.keys.key2)
        .issue_token()
        .await
        .unwrap_err();
    assert!(matches!(&old, ClientError::Refused { status: 401, .. }), "{old}");
    StsClient::new(endpoint(&s), &regenerated.key)
        .issue_token()
        .await
        .unwrap();

    let page = admin
        .list_accounts(&AccountListQuery {
            after: None,
            limit: Some(1000),
        })
        .await
        .unwrap();
    assert!(page.value.iter().any(|v| v.account.id == account.id));
    assert_eq!(page.next_after, None);
    let one = admin
        .list_accounts(&AccountListQuery {
            after: None,
            limit: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(one.value.len(), 1);
    assert_eq!(
        one.next_after.as_deref(),
        Some(one.value[0].account.resource_id.as_str())
    );

    let before = admin.signing_keys().await.unwrap();
    let kid_in = |state: &str| {
        before
            .keys
            .iter()
            .find(|k| k.state == state)
            .map(|k| k.kid.clone())
            .unwrap()
    };
    let (active, pending) = (kid_in("active"), kid_in("pending"));
    let rotation = admin.rotate_keys().await.unwrap();
    assert_eq!(rotation.activated.as_deref(), Some(pending.as_str()));
    assert_eq!(rotation.retired, [active]);
    let after = admin.signing_keys().await.unwrap();
    assert!(
        after
            .keys
            .iter()
            .any(|k| k.kid == rotation.published && k.state == "pending")
    );

    let created_events = admin
        .audit(&AuditFilter {
            action: Some("admin.account.create".into()),
            subject: Some(account.resource_id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(created_events.value.len(), 1, "{created_events:?}");
    assert_eq!(created_events.value[0].actor, "admin");
    assert_eq!(created_events.next_after, None);
    let checkpoints = admin
        .audit_checkpoints(&CheckpointQuery::default())
        .await
        .unwrap();
    assert!(
        checkpoints
            .value
            .iter()
            .all(|c| c.seq > 0 && c.token.split('.').count() == 3)
    );

    let missing = admin.account(&face_id("sdk-nobody")).await.unwrap_err();
    assert!(
        matches!(&missing, ClientError::Refused { status: 404, .. }),
        "{missing}"
    );
    assert_eq!(missing.code(), Some("ResourceNotFound"));
    let wrong = AdminClient::new(endpoint(&s), "not-the-admin-key")
        .signing_keys()
        .await
        .unwrap_err();
    assert!(
        matches!(&wrong, ClientError::Refused { status: 401, .. }),
        "{wrong}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_and_limited_access_tokens() {
    let s = Server::start(Backend::Sqlite).await;
    let isv = s.create_isv("sdk-isv", &["Face.Identification"]).await;
    let client = s.create_account(&face_id("sdk-client")).await;
    let sts = StsClient::new(endpoint(&s), isv.key());

    let bearer = sts.issue_token().await.unwrap();
    let claims = common::jwt_claims(&bearer);
    assert!(
        claims["sub"].as_str().unwrap().eq_ignore_ascii_case(&isv.rid),
        "{claims}"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    let lat = sts
        .issue_limited_access_token(&client.rid, &["Face.Identification"], Some(600))
        .await
        .unwrap();
    let claims = common::jwt_claims(&lat);
    assert!(
        claims["sub"].as_str().unwrap().eq_ignore_ascii_case(&client.rid),
        "{claims}"
    );
    assert_eq!(claims["flags"], serde_json::json!(["Face.Identification"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    let err = sts
        .issue_limited_access_token(&client.rid, &["Face.Verification"], None)
        .await
        .unwrap_err();
    assert!(matches!(&err, ClientError::Refused { status: 403, .. }), "{err}");
    assert_eq!(err.code(), Some("FlagNotGrantable"));
    let err = StsClient::new(endpoint(&s), "not-a-key")
        .issue_token()
        .await
        .unwrap_err();
    assert!(matches!(&err, ClientError::Refused { status: 401, .. }), "{err}");
    // The key never shows in Debug output.
    assert!(!format!("{sts:?}").contains(isv.key()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_credential_refreshes_through_its_session_until_revoked() {
    let s = Server::start(Backend::Sqlite).await;
    let account = s.create_account(&common::communication_id("sdk-chat")).await;
    let trusted = IdentityClient::new(endpoint(&s), account.key());

    let bob = trusted
        .create(Some("bob@contoso.com"), IdentityKind::Human)
        .await
        .unwrap();
    assert_eq!(trusted.get(&bob.id).await.unwrap(), bob);
    let again = trusted
        .create(Some("bob@contoso.com"), IdentityKind::Human)
        .await
        .unwrap_err();
    assert!(
        matches!(&again, ClientError::Refused { status: 409, .. }),
        "{again}"
    );
    assert_eq!(again.code(), Some("IdentityAlreadyExists"));

    let request = TokenRequest {
        session_minutes: Some(120),
        expires_in_minutes: Some(60),
        ..TokenRequest::scopes(&["chat"])
    };
    let (found, issued) = trusted
        .issue_token_by_name("bob@contoso.com", IdentityKind::Human, &request)
        .await
        .unwrap();
    assert_eq!(found.id, bob.id);
    let secret = issued.refresh_token.clone().expect("a session was asked for");

    // Refresh when less than an hour is left: at once, since the token lives 60 minutes.
    let options = RefreshOptions {
        refresh_before: Duration::from_secs(3600),
        ..RefreshOptions::default()
    };
    let credential = CommunicationTokenCredential::new(
        Some(issued.token.clone()),
        DeviceRefresher::new(endpoint(&s), secret),
        options,
    );
    let mut events = credential.subscribe();
    let fresh = credential.token().await.unwrap();
    assert_ne!(fresh.token, issued.token.token, "refreshed");
    let claims = common::jwt_claims(&fresh.token);
    assert_eq!(claims["sub"], bob.id.as_str());
    assert_eq!(claims["scp"], serde_json::json!(["chat"]));
    assert!(matches!(
        events.recv().await.unwrap(),
        tessera_client::CredentialEvent::Refreshed(_)
    ));
    s.send(
        s.request(reqwest::Method::GET, "/access/me")
            .bearer_auth(&fresh.token),
    )
    .await
    .ok(StatusCode::OK);

    // The new token is itself due, so the refresher was told not to loop: the next use within the backoff
    // serves it unchanged.
    assert_eq!(credential.token().await.unwrap(), fresh);

    // The trusted service revokes Bob: his token is refused, and so is the next refresh.
    trusted.revoke_tokens(&bob.id).await.unwrap();
    s.send(
        s.request(reqwest::Method::GET, "/access/me")
            .bearer_auth(&fresh.token),
    )
    .await
    .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let served = credential.token().await.unwrap();
    assert_eq!(
        served, fresh,
        "the refresh failed; the held token is what there is"
    );
    assert!(matches!(
        events.recv().await.unwrap(),
        tessera_client::CredentialEvent::RefreshFailed(_, _)
    ));

    trusted.delete(&bob.id).await.unwrap();
    let gone = trusted.get(&bob.id).await.unwrap_err();
    assert!(
        matches!(&gone, ClientError::Refused { status: 404, .. }),
        "{gone}"
    );
}

/// The seed's example through the SDK: Bob's device, holding only its token, writes to Sue by name; Sue's device
/// reads it and answers; Bob's limited token cannot add anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_writes_to_sue_from_his_device() {
    let s = Server::start(Backend::Postgres).await;
    let account = s.create_account(&common::communication_id("sdk-seed")).await;
    let trusted = IdentityClient::new(endpoint(&s), account.key());
    let device = |name: &'static str, scopes: &'static [&'static str]| {
        let (trusted, endpoint) = (trusted.clone(), endpoint(&s));
        async move {
            let request = TokenRequest {
                expires_in_minutes: Some(60),
                session_minutes: Some(120),
                ..TokenRequest::scopes(scopes)
            };
            let (identity, issued) = trusted
                .issue_token_by_name(name, IdentityKind::Human, &request)
                .await
                .unwrap();
            let refresher = DeviceRefresher::new(endpoint.clone(), issued.refresh_token.unwrap());
            let credential =
                CommunicationTokenCredential::new(Some(issued.token), refresher, RefreshOptions::default());
            (identity.id, ChatClient::new(endpoint, credential))
        }
    };
    let (bob_id, bob) = device("bob@contoso.com", &["chat"]).await;
    let (sue_id, sue) = device("sue@contoso.com", &["chat"]).await;
    let (kid_id, kid) = device("kid@contoso.com", &["chat.join.limited"]).await;

    let (thread, first) = bob.send_direct("sue@contoso.com", "Hi Sue").await.unwrap();
    let read = sue.messages(&thread, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].id, first);
    assert_eq!(read[0].content.as_deref(), Some("Hi Sue"));
    assert_eq!(read[0].sender.as_deref(), Some(bob_id.as_str()));
    sue.send(&thread, "Hi Bob", Some("Sue")).await.unwrap();
    let newest = bob.messages(&thread, 1).await.unwrap();
    assert_eq!(newest[0].sender.as_deref(), Some(sue_id.as_str()));

    // A thread with paging past one page through the SDK.
    let (group, refused) = bob
        .create_thread("Team", &[&sue_id, &kid_id, "8:acs:nobody"])
        .await
        .unwrap();
    assert_eq!(refused, ["8:acs:nobody"]);
    assert_eq!(sue.thread(&group.id).await.unwrap().created_by, bob_id);
    for n in 0..120 {
        kid.send(&group.id, &format!("m{n}"), None).await.unwrap();
    }
    let all = sue.messages(&group.id, 1000).await.unwrap();
    assert_eq!(all.len(), 120);
    assert_eq!(all[0].content.as_deref(), Some("m119"));
    let err = kid.remove_participant(&group.id, &sue_id).await.unwrap_err();
    assert_eq!(err.code(), Some("MissingScope"));
    bob.remove_participant(&group.id, &kid_id).await.unwrap();
    let err = kid.send(&group.id, "still here?", None).await.unwrap_err();
    assert_eq!(err.code(), Some("NotAParticipant"));
    bob.delete_thread(&group.id).await.unwrap();
    assert_eq!(
        sue.thread(&group.id).await.unwrap_err().code(),
        Some("ThreadNotFound")
    );
}

/// The next event within a loaded machine's patience.
async fn next_event(events: &mut ChatEvents) -> Option<Result<ChatEvent, ClientError>> {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
}

/// A device's event stream through the SDK: typed events as they happen; when the server's clock says the token
/// expired (the device's clock says it has an hour left), the stream refreshes through the credential's
/// trusted-service callback and resumes, losing nothing sent meanwhile; revoking the identity ends the stream with
/// the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_follows_its_threads_live_across_expiry_until_revoked() {
    let s = Server::start(Backend::Sqlite).await;
    let account = s.create_account(&common::communication_id("sdk-events")).await;
    let trusted = IdentityClient::new(endpoint(&s), account.key());
    let hour = || TokenRequest {
        expires_in_minutes: Some(60),
        ..TokenRequest::scopes(&["chat"])
    };
    // A device whose credential the trusted service refreshes.
    let device = async |name: &str| {
        let (identity, issued) = trusted
            .issue_token_by_name(name, IdentityKind::Human, &hour())
            .await
            .unwrap();
        let (trusted, id) = (trusted.clone(), identity.id.clone());
        let refresher = refresher_fn(move || {
            let (trusted, id) = (trusted.clone(), id.clone());
            async move { Ok(trusted.issue_token(&id, &hour()).await?.token) }
        });
        let credential =
            CommunicationTokenCredential::new(Some(issued.token), refresher, RefreshOptions::default());
        (
            identity.id,
            credential.clone(),
            ChatClient::new(endpoint(&s), credential),
        )
    };
    let (bob_id, _, bob) = device("bob@contoso.com").await;
    let (sue_id, sues_credential, sue) = device("sue@contoso.com").await;
    let mut live = sue.events();
    live.connect().await.unwrap();

    let (thread, first) = bob.send_direct("sue@contoso.com", "Hi Sue").await.unwrap();
    let Some(Ok(ChatEvent::MessageReceived { thread_id, message })) = next_event(&mut live).await else {
        panic!("Sue hears Bob's message");
    };
    assert_eq!(
        (thread_id.as_str(), message.id.as_str()),
        (thread.as_str(), first.as_str())
    );
    assert_eq!(message.content.as_deref(), Some("Hi Sue"));
    assert_eq!(message.sender.as_deref(), Some(bob_id.as_str()));

    // 61 minutes pass on the server only, and Bob's device gets a new token and writes. Sue's stream is ended as
    // expired; the SDK refreshes her token (the device's clock says it has an hour left) and resumes where the
    // stream broke off. Whichever stream carried it, she hears Bob's message once, then her own answer.
    let mut refreshes = sues_credential.subscribe();
    s.clock().advance_secs(61 * 60);
    let (_, _, bob) = device("bob@contoso.com").await;
    let meanwhile = bob.send(&thread, "still there?", None).await.unwrap();
    let mut heard = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // Dropping a pending `next` loses no event.
            tokio::select! {
                event = live.next() => heard.push(event.expect("the stream goes on").unwrap()),
                refreshed = refreshes.recv() => {
                    assert!(matches!(refreshed, Ok(CredentialEvent::Refreshed(_))), "{refreshed:?}");
                    return;
                }
            }
        }
    })
    .await
    .expect("the stream refreshes its token within 10 s");
    let answer = sue.send(&thread, "yes", None).await.unwrap();
    while heard.len() < 2 {
        heard.push(next_event(&mut live).await.expect("the stream goes on").unwrap());
    }
    let ids: Vec<&str> = heard
        .iter()
        .map(|event| match event {
            ChatEvent::MessageReceived { message, .. } => message.id.as_str(),
            other => panic!("only messages were sent: {other:?}"),
        })
        .collect();
    assert_eq!(ids, [meanwhile.as_str(), answer.as_str()]);

    // The trusted service revokes Sue: her stream says why, then ends.
    trusted.revoke_tokens(&sue_id).await.unwrap();
    let Some(Err(err)) = next_event(&mut live).await else {
        panic!("the revocation comes as an error");
    };
    assert!(matches!(&err, ClientError::Refused { status: 401, .. }), "{err}");
    assert_eq!(err.code(), Some("TokenRevoked"));
    assert!(next_event(&mut live).await.is_none(), "then the stream ends");
}

/// `examples/bob_and_sue.rs`, as built with the tests, against a real server: every step it prints happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bob_and_sue_example_runs() {
    let s = Server::start(Backend::Sqlite).await;
    let account = s.create_account(&common::communication_id("sdk-example")).await;
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples/bob_and_sue");
    assert!(example.exists(), "{} is built with the tests", example.display());
    let ca = s.running.ca_cert.clone().expect("the test server runs TLS");
    let out = tokio::process::Command::new(&example)
        .env("TESSERA_URL", &s.base)
        .env("TESSERA_CA", ca)
        .env("TESSERA_KEY", account.key())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("Bob wrote to Sue in 19:"), "{stdout}");
    assert!(
        lines[1].starts_with(r#"Sue's device hears: Some("Hi Sue, lunch at noon?") from Some("8:acs:"#),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(r#"Sue reads: Some("Hi Sue, lunch at noon?")"#),
        "{stdout}"
    );
    assert_eq!(lines[3], r#"Bob's device hears: Some("Noon works.")"#, "{stdout}");
}
