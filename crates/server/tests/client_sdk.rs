//! The Rust client SDK (`tessera-client`) against a real server over HTTPS: STS and limited access tokens,
//! identities by name, and a device's `CommunicationTokenCredential` refreshing through its session, then
//! refused once the trusted service revokes the identity.

mod common;

use common::{Backend, Server, face_id};
use reqwest::StatusCode;
use std::time::Duration;
use tessera_client::{
    ClientError, CommunicationTokenCredential, DeviceRefresher, Endpoint, IdentityClient, IdentityKind,
    RefreshOptions, StsClient, TokenRequest,
};

fn endpoint(s: &Server) -> Endpoint {
    Endpoint::with_client(s.base.clone(), s.client.clone())
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
