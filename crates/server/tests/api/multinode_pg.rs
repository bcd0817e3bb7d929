//! Several nodes on one PostgreSQL database, as a deployment runs them: tokens issued on one node are honoured on
//! the other, a cut-off or a key rotation made through one node holds on the other at once, and every node
//! appends to the one audit chain; user token revocations and refresh sessions hold across nodes.

use crate::common;

use common::{Backend, Options, Server, face_id, jwt_claims, jwt_header};
use reqwest::{Method, StatusCode};
use serde_json::json;

const ID: &str = "Face.Identification";

/// Two nodes on a fresh PostgreSQL database, sharing the master key and the public URL (the tokens' issuer), as
/// the nodes of one deployment behind a load balancer do.
async fn two_nodes() -> (Server, Server) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = common::database_url(Backend::Postgres, dir.path()).await;
    let master_key = common::master_key();
    let node = || {
        Server::start_with(Options {
            database_url: Some(url.clone()),
            master_key: Some(master_key.clone()),
            file: tessera_server::FileConfig {
                public_url: Some("https://tessera.cluster.test".into()),
                ..Default::default()
            },
            ..Options::default()
        })
    };
    let a = node().await;
    let b = node().await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_one_node_is_honoured_and_revoked_on_the_other() {
    let (a, b) = two_nodes().await;
    assert_eq!(a.jwks_kids().await, b.jwks_kids().await, "one key set");

    // Set up through A, used through B.
    let isv = a.create_isv("isv-one", &[ID]).await;
    let client = a.create_account(&face_id("client-one")).await;
    let token = a.lat(&isv, &client, &[ID]).await;
    let ok = b
        .check(client.key(), ID, Some(&token))
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(ok["jti"], jwt_claims(&token)["jti"]);
    // And the other way round, with B's STS token used on A.
    let sts = b.sts_token(isv.key()).await;
    let from_b = a
        .send(
            a.lat_request(None)
                .bearer_auth(&sts)
                .json(&json!({"resourceId": client.rid, "featureFlags": [ID]})),
        )
        .await
        .ok(StatusCode::OK)
        .text;
    a.check(client.key(), ID, Some(&from_b)).await.ok(StatusCode::OK);
    // A key regenerated through A is refused on B at once.
    let regenerated = a
        .admin(
            Method::POST,
            &format!("/admin{}/regenerateKey", client.rid),
            Some(json!({"keyName": "key2"})),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    b.check(&client.key2, ID, Some(&token))
        .await
        .error(StatusCode::UNAUTHORIZED, "InvalidSubscriptionKey");
    b.check(regenerated["key"].as_str().unwrap(), ID, Some(&token))
        .await
        .ok(StatusCode::OK);

    // Cut off through A: B refuses the live token, and the ISV's issuance, at once.
    a.cut_off(&isv.rid).await;
    b.check(client.key(), ID, Some(&token))
        .await
        .error(StatusCode::FORBIDDEN, "IsvNotActive");
    b.check(client.key(), ID, Some(&from_b))
        .await
        .error(StatusCode::FORBIDDEN, "IsvNotActive");
    b.issue_lat(isv.key(), &client.rid, &[ID], None)
        .await
        .error(StatusCode::FORBIDDEN, "NotAnIsv");

    // One chain, written by both nodes, reads the same from either.
    let via_a = a.verify_audit_chain(9).await;
    let via_b = b.verify_audit_chain(1000).await;
    assert_eq!(via_a, via_b);
    let denied = b
        .audit(&[("action", "limitedAccess.use"), ("outcome", "denied")])
        .await;
    assert_eq!(denied.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_revocations_and_refresh_sessions_hold_across_nodes() {
    let (a, b) = two_nodes().await;
    let comm = a.create_account(&common::communication_id("chat-nodes")).await;
    let v = "api-version=2023-10-01";
    let id = a
        .acs(Method::POST, &format!("/identities?{v}"), None, comm.key())
        .await
        .ok(StatusCode::CREATED)
        .json()["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed for node B's host, with the same access key.
    let issued = b
        .acs(
            Method::POST,
            &format!("/identities/{}/:issueAccessToken?{v}", common::segment(&id)),
            Some(json!({"scopes": ["chat"], "expiresInMinutes": 60, "sessionMinutes": 600})),
            comm.key(),
        )
        .await
        .ok(StatusCode::OK)
        .json();
    let (token, secret) = (
        issued["token"].as_str().unwrap().to_owned(),
        issued["refreshToken"].as_str().unwrap().to_owned(),
    );
    me(&a, &token).await.ok(StatusCode::OK);
    // Refreshed on A; the spent secret replayed on B is reuse, and the session ends on both.
    let fresh = refresh(&a, &token, &secret).await.ok(StatusCode::OK).json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    refresh(&b, &token, &secret)
        .await
        .error(StatusCode::UNAUTHORIZED, "RefreshTokenReused");
    me(&a, &fresh)
        .await
        .error(StatusCode::UNAUTHORIZED, "SessionEnded");
    // A revocation through A kills B's next check.
    let plain = b
        .acs(
            Method::POST,
            &format!("/identities/{}/:issueAccessToken?{v}", common::segment(&id)),
            Some(json!({"scopes": ["chat"]})),
            comm.key(),
        )
        .await
        .ok(StatusCode::OK)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    me(&b, &plain).await.ok(StatusCode::OK);
    a.acs(
        Method::POST,
        &format!("/identities/{}/:revokeAccessTokens?{v}", common::segment(&id)),
        None,
        comm.key(),
    )
    .await
    .ok(StatusCode::NO_CONTENT);
    me(&b, &plain)
        .await
        .error(StatusCode::UNAUTHORIZED, "TokenRevoked");
}

async fn me(node: &Server, token: &str) -> common::Resp {
    node.send(node.request(Method::GET, "/access/me").bearer_auth(token))
        .await
}

async fn refresh(node: &Server, token: &str, secret: &str) -> common::Resp {
    node.send(
        node.request(Method::POST, "/access/:refreshAccessToken")
            .bearer_auth(token)
            .json(&json!({"refreshToken": secret})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_on_one_node_reaches_the_other_through_the_unknown_kid_reload() {
    let (a, b) = two_nodes().await;
    let isv = a.create_isv("isv-one", &[ID]).await;
    let client = a.create_account(&face_id("client-one")).await;
    let before = a.lat(&isv, &client, &[ID]).await;

    let b_kids = b.jwks_kids().await;

    // First rotation: A signs with the key that was published before; B knew it already.
    let first = a
        .admin(Method::POST, "/admin/keys/rotate", None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert!(b_kids.contains(&first["activated"].as_str().unwrap().to_owned()));
    let next = first["published"].as_str().unwrap().to_owned();
    assert!(
        !b_kids.contains(&next),
        "B has not reloaded yet (its refresh period is 10 s)"
    );
    let after_first = a.lat(&isv, &client, &[ID]).await;
    assert_eq!(jwt_header(&after_first)["kid"], first["activated"]);
    b.check(client.key(), ID, Some(&after_first))
        .await
        .ok(StatusCode::OK);

    // Second rotation: A now signs with a key B has never loaded; B reloads on the unknown kid.
    let second = a
        .admin(Method::POST, "/admin/keys/rotate", None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(second["activated"], json!(next));
    let after_second = a.lat(&isv, &client, &[ID]).await;
    assert_eq!(jwt_header(&after_second)["kid"], json!(next));
    b.check(client.key(), ID, Some(&after_second))
        .await
        .ok(StatusCode::OK);
    assert_eq!(
        a.jwks_kids().await,
        b.jwks_kids().await,
        "B reloaded the whole key set"
    );

    // Tokens from before both rotations still pass on B; B now signs with the active key, which A verifies.
    b.check(client.key(), ID, Some(&before)).await.ok(StatusCode::OK);
    let from_b = b.lat(&isv, &client, &[ID]).await;
    assert_eq!(jwt_header(&from_b)["kid"], json!(next));
    a.check(client.key(), ID, Some(&from_b)).await.ok(StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issuance_on_both_nodes_keeps_one_intact_chain() {
    let (a, b) = two_nodes().await;
    let isv = a.create_isv("isv-one", &[ID]).await;
    let client = a.create_account(&face_id("client-one")).await;
    let before = a.lat_issuances().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { &a } else { &b };
        tasks.push(node.issue_lat(isv.key(), &client.rid, &[ID], None));
    }
    let answers = futures_join_all(tasks).await;
    let mut jtis = std::collections::BTreeSet::new();
    for r in answers {
        let r = r.ok(StatusCode::OK);
        jtis.insert(jwt_claims(&r.text)["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(jtis.len(), 40, "distinct tokens");
    // Every returned token has its issuance in the log (invariant 4).
    let events = a.verify_audit_chain(1000).await;
    let logged: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| e.action == "sts.issueLimitedAccessToken")
        .map(|e| common::details(e)["jti"].as_str().unwrap().to_owned())
        .collect();
    assert!(jtis.is_subset(&logged));
    assert_eq!(a.lat_issuances().await, before + 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_master_key_refuses_to_start() {
    let (a, _b) = two_nodes().await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(
        dir.path(),
        &a.database_url,
        &common::master_key(),
        false,
        tessera_server::FileConfig::default(),
    );
    match tessera_server::start(config, tessera_server::Clock::default()).await {
        Ok(_) => panic!("a node that cannot unseal the signing keys must not start"),
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("signing keys"), "{message}");
            assert!(!message.contains(&a.master_key), "the master key is not printed");
        }
    }
}

/// Runs the futures concurrently on this task.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, fut) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
