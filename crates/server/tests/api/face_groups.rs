//! Face API v1.0 large person groups and persons over HTTPS, on SQLite and PostgreSQL: the SDK's strict status
//! codes and bodies, Azure's error codes, and isolation between accounts.

use crate::common;

use common::{Acct, Backend, Resp, Server, face_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BASE: &str = "/face/v1.0/largepersongroups";

async fn call(s: &Server, who: &Acct, method: Method, path: &str, body: Option<Value>) -> Resp {
    let mut request = s
        .request(method, path)
        .header("Ocp-Apim-Subscription-Key", who.key());
    if let Some(body) = body {
        request = request.json(&body);
    }
    s.send(request).await
}

on_both_backends!(
    groups_and_persons_round_trip,
    accounts_never_see_each_others_groups
);

async fn groups_and_persons_round_trip(backend: Backend) {
    let s = Server::start(backend).await;
    let a = s.create_account(&face_id("face-a")).await;
    let created = call(
        &s,
        &a,
        Method::PUT,
        &format!("{BASE}/grp-1"),
        Some(json!({"name": "G", "userData": "ud", "recognitionModel": "recognition_04"})),
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(created.text, "", "200 with an empty body, as the SDK expects");
    call(
        &s,
        &a,
        Method::PUT,
        &format!("{BASE}/grp-1"),
        Some(json!({"name": "again"})),
    )
    .await
    .error(StatusCode::CONFLICT, "LargePersonGroupExists");
    for (id, body) in [
        ("Grp", json!({"name": "G"})),
        ("grp-2", json!({"name": ""})),
        (
            "grp-2",
            json!({"name": "G", "recognitionModel": "recognition_99"}),
        ),
    ] {
        call(&s, &a, Method::PUT, &format!("{BASE}/{id}"), Some(body))
            .await
            .error(StatusCode::BAD_REQUEST, "BadArgument");
    }
    assert_eq!(
        call(&s, &a, Method::GET, &format!("{BASE}/grp-1"), None)
            .await
            .ok(StatusCode::OK)
            .json(),
        json!({"largePersonGroupId": "grp-1", "name": "G", "userData": "ud"})
    );
    assert_eq!(
        call(
            &s,
            &a,
            Method::GET,
            &format!("{BASE}/grp-1?returnRecognitionModel=true"),
            None
        )
        .await
        .ok(StatusCode::OK)
        .json()["recognitionModel"],
        json!("recognition_04")
    );
    for id in ["grp-3", "grp-2"] {
        call(
            &s,
            &a,
            Method::PUT,
            &format!("{BASE}/{id}"),
            Some(json!({"name": id})),
        )
        .await
        .ok(StatusCode::OK);
    }
    let page = call(&s, &a, Method::GET, &format!("{BASE}?start=grp-1&top=1"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(
        page,
        json!([{"largePersonGroupId": "grp-2", "name": "grp-2", "userData": null}])
    );
    call(&s, &a, Method::GET, &format!("{BASE}?top=1001"), None)
        .await
        .error(StatusCode::BAD_REQUEST, "BadArgument");
    call(
        &s,
        &a,
        Method::PATCH,
        &format!("{BASE}/grp-1"),
        Some(json!({"name": "Renamed"})),
    )
    .await
    .ok(StatusCode::OK);
    let read = call(&s, &a, Method::GET, &format!("{BASE}/grp-1"), None)
        .await
        .json();
    assert_eq!(
        (read["name"].clone(), read["userData"].clone()),
        (json!("Renamed"), json!("ud"))
    );

    // Persons.
    let alice = call(
        &s,
        &a,
        Method::POST,
        &format!("{BASE}/grp-1/persons"),
        Some(json!({"name": "Alice", "userData": "x"})),
    )
    .await
    .ok(StatusCode::OK)
    .json();
    let alice_id = alice["personId"].as_str().expect("personId").to_owned();
    assert_eq!(alice.as_object().unwrap().len(), 1);
    let person_path = format!("{BASE}/grp-1/persons/{alice_id}");
    assert_eq!(
        call(&s, &a, Method::GET, &person_path, None)
            .await
            .ok(StatusCode::OK)
            .json(),
        json!({"personId": alice_id, "name": "Alice", "userData": "x", "persistedFaceIds": []})
    );
    call(
        &s,
        &a,
        Method::PATCH,
        &person_path,
        Some(json!({"userData": "y"})),
    )
    .await
    .ok(StatusCode::OK);
    let listed = call(&s, &a, Method::GET, &format!("{BASE}/grp-1/persons"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(listed[0]["userData"], json!("y"));
    call(
        &s,
        &a,
        Method::POST,
        &format!("{BASE}/nope/persons"),
        Some(json!({"name": "Bob"})),
    )
    .await
    .error(StatusCode::NOT_FOUND, "LargePersonGroupNotFound");
    call(
        &s,
        &a,
        Method::GET,
        &format!("{BASE}/grp-1/persons/not-a-guid"),
        None,
    )
    .await
    .error(StatusCode::NOT_FOUND, "PersonNotFound");
    call(&s, &a, Method::DELETE, &person_path, None)
        .await
        .ok(StatusCode::OK);
    call(&s, &a, Method::DELETE, &person_path, None)
        .await
        .error(StatusCode::NOT_FOUND, "PersonNotFound");

    // Deleting a group takes its persons.
    let bob = call(
        &s,
        &a,
        Method::POST,
        &format!("{BASE}/grp-2/persons"),
        Some(json!({"name": "Bob"})),
    )
    .await
    .json()["personId"]
        .as_str()
        .unwrap()
        .to_owned();
    call(&s, &a, Method::DELETE, &format!("{BASE}/grp-2"), None)
        .await
        .ok(StatusCode::OK);
    call(&s, &a, Method::GET, &format!("{BASE}/grp-2/persons/{bob}"), None)
        .await
        .error(StatusCode::NOT_FOUND, "LargePersonGroupNotFound");

    let events = s.verify_audit_chain(50).await;
    let count = |act: &str| events.iter().filter(|e| e.action == act).count();
    assert_eq!(count("face.largePersonGroup.create"), 3);
    assert_eq!(count("face.largePersonGroup.update"), 1);
    assert_eq!(count("face.largePersonGroup.delete"), 1);
    assert_eq!(count("face.person.create"), 2);
    assert_eq!(count("face.person.update"), 1);
    assert_eq!(count("face.person.delete"), 1);
}

async fn accounts_never_see_each_others_groups(backend: Backend) {
    let s = Server::start(backend).await;
    let a = s.create_account(&face_id("face-a")).await;
    let b = s.create_account(&face_id("face-b")).await;
    call(
        &s,
        &a,
        Method::PUT,
        &format!("{BASE}/shared-id"),
        Some(json!({"name": "A's"})),
    )
    .await
    .ok(StatusCode::OK);
    let alice = call(
        &s,
        &a,
        Method::POST,
        &format!("{BASE}/shared-id/persons"),
        Some(json!({"name": "Alice"})),
    )
    .await
    .json()["personId"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        (Method::GET, format!("{BASE}/shared-id")),
        (Method::DELETE, format!("{BASE}/shared-id")),
        (Method::GET, format!("{BASE}/shared-id/persons")),
        (Method::GET, format!("{BASE}/shared-id/persons/{alice}")),
        (Method::DELETE, format!("{BASE}/shared-id/persons/{alice}")),
    ] {
        call(&s, &b, method, &path, None)
            .await
            .error(StatusCode::NOT_FOUND, "LargePersonGroupNotFound");
    }
    assert_eq!(
        call(&s, &b, Method::GET, BASE, None)
            .await
            .ok(StatusCode::OK)
            .json(),
        json!([])
    );
    // B's group of the same id is its own; A's is untouched.
    call(
        &s,
        &b,
        Method::PUT,
        &format!("{BASE}/shared-id"),
        Some(json!({"name": "B's"})),
    )
    .await
    .ok(StatusCode::OK);
    call(
        &s,
        &b,
        Method::GET,
        &format!("{BASE}/shared-id/persons/{alice}"),
        None,
    )
    .await
    .error(StatusCode::NOT_FOUND, "PersonNotFound");
    assert_eq!(
        call(&s, &a, Method::GET, &format!("{BASE}/shared-id"), None)
            .await
            .json()["name"],
        json!("A's")
    );
    // Only Face accounts, and only authenticated ones.
    let comm = s.create_account(&common::communication_id("chat")).await;
    call(&s, &comm, Method::GET, BASE, None)
        .await
        .error(StatusCode::FORBIDDEN, "NotAFaceAccount");
    s.send(s.request(Method::GET, BASE))
        .await
        .error(StatusCode::UNAUTHORIZED, "MissingCredentials");
}
