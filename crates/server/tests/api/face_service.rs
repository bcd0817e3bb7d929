//! The Face service on the real engine and the real photographs (crates/testkit `face_fixtures`), over HTTPS:
//! enrolment, training, identification, verification and find-similar behind the Limited Access gate; training
//! freezing the searched faces and removals taking effect at once; isolation between accounts; image refusals; and
//! the 503 of a node without the engine. The training and index are checked on PostgreSQL across two nodes.

use crate::common;

use common::{Acct, Backend, Options, Resp, Server, face_id};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use tessera_server::{FaceFileConfig, FileConfig};
use tessera_testkit::FaceFixtures;

const FLAGS: [&str; 2] = ["Face.Identification", "Face.Verification"];
const GROUP: &str = "/face/v1.0/largepersongroups/gallery";

/// A node with the face engine: on its own SQLite database, or as one of the nodes sharing `cluster` (a
/// PostgreSQL URL and the master key), which sign and accept tokens as one public URL.
async fn face_server(fixtures: &FaceFixtures, cluster: Option<(&str, &str)>) -> Server {
    Server::start_with(Options {
        database_url: cluster.map(|(url, _)| url.to_owned()),
        master_key: cluster.map(|(_, key)| key.to_owned()),
        file: FileConfig {
            public_url: cluster.map(|_| "https://tessera.cluster.test".to_owned()),
            face: Some(FaceFileConfig {
                enabled: Some(true),
                models_dir: Some(fixtures.models_dir.clone()),
                ..Default::default()
            }),
            ..FileConfig::default()
        },
        ..Options::default()
    })
    .await
}

fn fixtures() -> FaceFixtures {
    tokio::task::block_in_place(tessera_testkit::face_fixtures)
}

/// A request as `who`, with a limited access token when one is given.
async fn call(
    s: &Server,
    who: &Acct,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut request = s
        .request(method, path)
        .header("Ocp-Apim-Subscription-Key", who.key());
    if let Some(token) = token {
        request = request.header("LimitedAccessToken", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    s.send(request).await
}

/// Uploads a photograph as the SDK does (octet-stream).
async fn upload(s: &Server, who: &Acct, token: Option<&str>, path: &str, photo: &Path) -> Resp {
    let bytes = std::fs::read(photo).expect("read the photograph");
    upload_bytes(s, who, token, path, bytes).await
}

async fn upload_bytes(s: &Server, who: &Acct, token: Option<&str>, path: &str, bytes: Vec<u8>) -> Resp {
    let mut request = s
        .request(Method::POST, path)
        .header("Ocp-Apim-Subscription-Key", who.key())
        .header("Content-Type", "application/octet-stream")
        .body(bytes);
    if let Some(token) = token {
        request = request.header("LimitedAccessToken", format!("Bearer {token}"));
    }
    s.send(request).await
}

/// Detects the one face of a photograph with a face id; returns the id.
async fn face_id_of(s: &Server, who: &Acct, token: &str, photo: &Path) -> String {
    let found = upload(s, who, Some(token), "/face/v1.0/detect", photo)
        .await
        .ok(StatusCode::OK)
        .json();
    let faces = found.as_array().expect("a list of faces");
    assert_eq!(faces.len(), 1, "{}: {found}", photo.display());
    faces[0]["faceId"].as_str().expect("a face id").to_owned()
}

/// Creates the gallery: Obama (two photographs), Biden, Gauss, Newton. Returns name → person id.
async fn enrol_gallery(s: &Server, who: &Acct, f: &FaceFixtures) -> HashMap<&'static str, String> {
    call(s, who, None, Method::PUT, GROUP, Some(json!({"name": "Gallery"})))
        .await
        .ok(StatusCode::OK);
    let mut persons = HashMap::new();
    for (name, photos) in [
        ("Obama", vec![&f.obama, &f.obama2]),
        ("Biden", vec![&f.biden]),
        ("Gauss", vec![&f.gauss]),
        ("Newton", vec![&f.newton]),
    ] {
        let person = add_person(s, who, name).await;
        let mut enrolled = Vec::new();
        for photo in photos {
            let added = upload(
                s,
                who,
                None,
                &format!("{GROUP}/persons/{person}/persistedfaces"),
                photo,
            )
            .await
            .ok(StatusCode::OK)
            .json();
            enrolled.push(
                added["persistedFaceId"]
                    .as_str()
                    .expect("persistedFaceId")
                    .to_owned(),
            );
        }
        enrolled.sort();
        let read = call(
            s,
            who,
            None,
            Method::GET,
            &format!("{GROUP}/persons/{person}"),
            None,
        )
        .await
        .ok(StatusCode::OK)
        .json();
        assert_eq!(read["persistedFaceIds"], json!(enrolled), "{name}");
        persons.insert(name, person);
    }
    persons
}

async fn add_person(s: &Server, who: &Acct, name: &str) -> String {
    call(
        s,
        who,
        None,
        Method::POST,
        &format!("{GROUP}/persons"),
        Some(json!({"name": name})),
    )
    .await
    .ok(StatusCode::OK)
    .json()["personId"]
        .as_str()
        .expect("personId")
        .to_owned()
}

async fn identify(s: &Server, who: &Acct, token: &str, face: &str, max: u32) -> Vec<(String, f64)> {
    let answer = call(
        s,
        who,
        Some(token),
        Method::POST,
        "/face/v1.0/identify",
        Some(json!({"faceIds": [face], "largePersonGroupId": "gallery", "maxNumOfCandidatesReturned": max})),
    )
    .await
    .ok(StatusCode::OK)
    .json();
    assert_eq!(answer[0]["faceId"], face);
    answer[0]["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| {
            (
                c["personId"].as_str().expect("personId").to_owned(),
                c["confidence"].as_f64().expect("confidence"),
            )
        })
        .collect()
}

async fn verify(s: &Server, who: &Acct, token: &str, body: Value) -> (bool, f64) {
    let answer = call(s, who, Some(token), Method::POST, "/face/v1.0/verify", Some(body))
        .await
        .ok(StatusCode::OK)
        .json();
    (
        answer["isIdentical"].as_bool().expect("isIdentical"),
        answer["confidence"].as_f64().expect("confidence"),
    )
}

async fn train(s: &Server, who: &Acct) {
    let resp = call(s, who, None, Method::POST, &format!("{GROUP}/train"), None)
        .await
        .ok(StatusCode::ACCEPTED);
    assert_eq!(resp.text, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_on_real_photographs() {
    let f = fixtures();
    let s = face_server(&f, None).await;
    let isv = s.create_isv("face-isv", &FLAGS).await;
    let client = s.create_account(&face_id("face-client")).await;
    let token = s.lat(&isv, &client, &FLAGS).await;

    let persons = enrol_gallery(&s, &client, &f).await;
    let status = call(&s, &client, None, Method::GET, &format!("{GROUP}/training"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(status["status"], "nonstarted");
    let obama3 = face_id_of(&s, &client, &token, &f.obama3).await;
    call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/identify",
        Some(json!({"faceIds": [obama3], "largePersonGroupId": "gallery"})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "LargePersonGroupNotTrained");
    train(&s, &client).await;
    let status = call(&s, &client, None, Method::GET, &format!("{GROUP}/training"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(status["status"], "succeeded", "{status}");
    assert!(status["lastSuccessfulTrainingDateTime"].is_string(), "{status}");

    // Identification: Obama's third photograph is Obama, Biden is Biden, each alone above 0.5.
    let candidates = identify(&s, &client, &token, &obama3, 4).await;
    assert_eq!(candidates[0].0, persons["Obama"], "{candidates:?}");
    assert!(candidates[0].1 >= 0.6, "{candidates:?}");
    assert_eq!(
        candidates.iter().filter(|c| c.1 >= 0.5).count(),
        1,
        "{candidates:?}"
    );
    let biden = face_id_of(&s, &client, &token, &f.biden).await;
    let candidates = identify(&s, &client, &token, &biden, 4).await;
    assert_eq!(candidates[0].0, persons["Biden"], "{candidates:?}");
    assert_eq!(
        candidates.iter().filter(|c| c.1 >= 0.5).count(),
        1,
        "{candidates:?}"
    );

    // Verification, face to face and face to person.
    let obama = face_id_of(&s, &client, &token, &f.obama).await;
    let (same, confidence) = verify(&s, &client, &token, json!({"faceId1": obama3, "faceId2": obama})).await;
    assert!(same && confidence >= 0.5, "{confidence}");
    let (same, confidence) = verify(&s, &client, &token, json!({"faceId1": obama3, "faceId2": biden})).await;
    assert!(!same && confidence < 0.5, "{confidence}");
    let to_person = |face: &str, person: &str| json!({"faceId": face, "personId": person, "largePersonGroupId": "gallery"});
    assert!(
        verify(&s, &client, &token, to_person(&obama3, &persons["Obama"]))
            .await
            .0
    );
    assert!(
        !verify(&s, &client, &token, to_person(&obama3, &persons["Gauss"]))
            .await
            .0
    );

    // Find-similar among face ids: Obama's photograph, not Biden's.
    let similar = call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/findsimilars",
        Some(json!({"faceId": obama3, "faceIds": [biden, obama]})),
    )
    .await
    .ok(StatusCode::OK)
    .json();
    assert_eq!(similar.as_array().map(Vec::len), Some(1), "{similar}");
    assert_eq!(similar[0]["faceId"], obama.as_str(), "{similar}");
    // The candidates are read at once: a repeated id is one candidate, and one unknown id refuses the call,
    // naming it.
    let repeated = call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/findsimilars",
        Some(json!({"faceId": obama3, "faceIds": [obama, biden, obama]})),
    )
    .await
    .ok(StatusCode::OK)
    .json();
    assert_eq!(repeated, similar);
    let unknown = "00000000-0000-4000-8000-000000000001";
    let message = call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/findsimilars",
        Some(json!({"faceId": obama3, "faceIds": [obama, unknown, biden]})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "FaceNotFound");
    assert!(message.contains(unknown), "{message}");

    // Faces nobody enrolled: ten faces of the Solvay photograph name none of the gallery at 0.5.
    let crowd = upload(&s, &client, Some(&token), "/face/v1.0/detect", &f.solvay)
        .await
        .ok(StatusCode::OK)
        .json();
    let crowd: Vec<&str> = crowd
        .as_array()
        .expect("faces")
        .iter()
        .map(|face| face["faceId"].as_str().expect("faceId"))
        .collect();
    assert!(crowd.len() >= 10, "{} faces", crowd.len());
    let answer = call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/identify",
        Some(json!({"faceIds": crowd[..10], "largePersonGroupId": "gallery"})),
    )
    .await
    .ok(StatusCode::OK)
    .json();
    for result in answer.as_array().expect("results") {
        assert_eq!(result["candidates"], json!([]), "{result}");
    }

    // Training freezes what is searched: a face enrolled later waits for the next training; a removed face
    // leaves at once.
    let late = add_person(&s, &client, "Late").await;
    let added = upload(
        &s,
        &client,
        None,
        &format!("{GROUP}/persons/{late}/persistedfaces"),
        &f.obama3,
    )
    .await
    .ok(StatusCode::OK)
    .json();
    let late_face = added["persistedFaceId"]
        .as_str()
        .expect("persistedFaceId")
        .to_owned();
    let candidates = identify(&s, &client, &token, &obama3, 10).await;
    assert!(
        candidates.iter().all(|c| c.0 != late),
        "not trained yet: {candidates:?}"
    );
    train(&s, &client).await;
    let candidates = identify(&s, &client, &token, &obama3, 10).await;
    assert_eq!(
        candidates[0].0, late,
        "the same photograph is the best match: {candidates:?}"
    );
    assert!(candidates[0].1 > 0.99, "{candidates:?}");
    call(
        &s,
        &client,
        None,
        Method::DELETE,
        &format!("{GROUP}/persons/{late}/persistedfaces/{late_face}"),
        None,
    )
    .await
    .ok(StatusCode::OK);
    let candidates = identify(&s, &client, &token, &obama3, 10).await;
    assert_eq!(
        candidates[0].0, persons["Obama"],
        "removed at once: {candidates:?}"
    );
    call(
        &s,
        &client,
        None,
        Method::GET,
        &format!("{GROUP}/persons/{late}/persistedfaces/{late_face}"),
        None,
    )
    .await
    .error(StatusCode::NOT_FOUND, "PersistedFaceNotFound");

    // The gate: no token, a token for another account, a cut-off ISV.
    for (path, body) in [
        (
            "/face/v1.0/identify",
            json!({"faceIds": [obama3], "largePersonGroupId": "gallery"}),
        ),
        ("/face/v1.0/verify", json!({"faceId1": obama3, "faceId2": obama})),
        (
            "/face/v1.0/findsimilars",
            json!({"faceId": obama3, "faceIds": [obama]}),
        ),
    ] {
        call(&s, &client, None, Method::POST, path, Some(body))
            .await
            .error(StatusCode::FORBIDDEN, "NotApproved");
    }
    upload(&s, &client, None, "/face/v1.0/detect", &f.obama3)
        .await
        .error(StatusCode::FORBIDDEN, "NotApproved");
    let plain = upload(
        &s,
        &client,
        None,
        "/face/v1.0/detect?returnFaceId=false&returnFaceLandmarks=true",
        &f.obama3,
    )
    .await
    .ok(StatusCode::OK)
    .json();
    assert!(plain[0].get("faceId").is_none(), "{plain}");
    for point in ["pupilLeft", "pupilRight", "noseTip", "mouthLeft", "mouthRight"] {
        assert!(plain[0]["faceLandmarks"][point]["x"].is_number(), "{plain}");
    }
    assert!(
        plain[0]["faceLandmarks"]["pupilLeft"]["x"].as_f64()
            < plain[0]["faceLandmarks"]["pupilRight"]["x"].as_f64(),
        "pupilLeft is the one on the image's left: {plain}"
    );

    // Isolation: another account, with a valid token of its own, sees none of it.
    let other = s.create_account(&face_id("face-other")).await;
    let other_token = s.lat(&isv, &other, &FLAGS).await;
    call(
        &s,
        &other,
        Some(&other_token),
        Method::POST,
        "/face/v1.0/verify",
        Some(json!({"faceId1": obama3, "faceId2": obama})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "FaceNotFound");
    call(
        &s,
        &other,
        Some(&other_token),
        Method::POST,
        "/face/v1.0/identify",
        Some(json!({"faceIds": [face_id_of(&s, &other, &other_token, &f.obama3).await], "largePersonGroupId": "gallery"})),
    )
    .await
    .error(StatusCode::NOT_FOUND, "LargePersonGroupNotFound");
    call(
        &s,
        &client,
        Some(&other_token),
        Method::POST,
        "/face/v1.0/identify",
        Some(json!({"faceIds": [obama3], "largePersonGroupId": "gallery"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "TokenForOtherAccount");

    // A face id dies with its time to live.
    let short = upload(
        &s,
        &client,
        Some(&token),
        "/face/v1.0/detect?faceIdTimeToLive=60",
        &f.obama,
    )
    .await
    .ok(StatusCode::OK)
    .json();
    let short = short[0]["faceId"].as_str().expect("faceId").to_owned();
    assert!(
        verify(&s, &client, &token, json!({"faceId1": short, "faceId2": obama3}))
            .await
            .0
    );
    s.clock().advance_secs(61);
    call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/verify",
        Some(json!({"faceId1": short, "faceId2": obama3})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "FaceNotFound");
    upload(
        &s,
        &client,
        Some(&token),
        "/face/v1.0/detect?faceIdTimeToLive=59",
        &f.obama,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "BadArgument");

    s.cut_off(&isv.rid).await;
    call(
        &s,
        &client,
        Some(&token),
        Method::POST,
        "/face/v1.0/identify",
        Some(json!({"faceIds": [obama3], "largePersonGroupId": "gallery"})),
    )
    .await
    .error(StatusCode::FORBIDDEN, "IsvNotActive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_refused_with_azure_codes() {
    let f = fixtures();
    let s = face_server(&f, None).await;
    let client = s.create_account(&face_id("face-images")).await;
    call(&s, &client, None, Method::PUT, GROUP, Some(json!({"name": "G"})))
        .await
        .ok(StatusCode::OK);
    let person = add_person(&s, &client, "P").await;
    let enrol = format!("{GROUP}/persons/{person}/persistedfaces");
    let detect = "/face/v1.0/detect?returnFaceId=false";

    upload_bytes(&s, &client, None, detect, b"not an image".to_vec())
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidImage");
    upload_bytes(&s, &client, None, detect, vec![0xff; 6 * 1024 * 1024 + 1])
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidImageSize");
    call(
        &s,
        &client,
        None,
        Method::POST,
        detect,
        Some(json!({"url": "https://example.com/x.jpg"})),
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidURL");
    upload(
        &s,
        &client,
        None,
        &format!("{detect}&returnFaceAttributes=age"),
        &f.obama,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "BadArgument");
    upload(
        &s,
        &client,
        None,
        &format!("{detect}&detectionModel=detection_09"),
        &f.obama,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "BadArgument");

    // Enrolment takes exactly one face, or the one targetFace points at.
    let message = upload(&s, &client, None, &enrol, &f.solvay)
        .await
        .error(StatusCode::BAD_REQUEST, "InvalidImage");
    assert!(message.contains("more than 1 face"), "{message}");
    let crowd = upload(&s, &client, None, detect, &f.solvay)
        .await
        .ok(StatusCode::OK)
        .json();
    let r = &crowd[0]["faceRectangle"];
    let target = format!("{},{},{},{}", r["left"], r["top"], r["width"], r["height"]);
    upload(
        &s,
        &client,
        None,
        &format!("{enrol}?targetFace={target}"),
        &f.solvay,
    )
    .await
    .ok(StatusCode::OK);
    upload(
        &s,
        &client,
        None,
        &format!("{enrol}?targetFace=0,0,5,5"),
        &f.solvay,
    )
    .await
    .error(StatusCode::BAD_REQUEST, "InvalidImage");
    let read = call(
        &s,
        &client,
        None,
        Method::GET,
        &format!("{GROUP}/persons/{person}"),
        None,
    )
    .await
    .ok(StatusCode::OK)
    .json();
    assert_eq!(
        read["persistedFaceIds"].as_array().map(Vec::len),
        Some(1),
        "only the chosen face: {read}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_engine_answers_503_and_serves_the_rest() {
    let f = fixtures();
    let s = Server::start(Backend::Sqlite).await;
    let client = s.create_account(&face_id("face-off")).await;
    let resp = upload(
        &s,
        &client,
        None,
        "/face/v1.0/detect?returnFaceId=false",
        &f.obama,
    )
    .await;
    let message = resp.error(StatusCode::SERVICE_UNAVAILABLE, "FaceEngineUnavailable");
    assert!(message.contains("disabled"), "{message}");
    call(&s, &client, None, Method::PUT, GROUP, Some(json!({"name": "G"})))
        .await
        .ok(StatusCode::OK);
}

/// `[face] backend = "onnxruntime"`: a build with the feature fetches the pinned library and serves detection on
/// it; a build without answers 503, the reason in the operator's log only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_onnxruntime_backend_serves_or_says_it_is_not_built_in() {
    let f = fixtures();
    let s = Server::start_with(Options {
        file: FileConfig {
            face: Some(FaceFileConfig {
                enabled: Some(true),
                models_dir: Some(f.models_dir.clone()),
                backend: Some(tessera_server::FaceBackendName::Onnxruntime),
                ..Default::default()
            }),
            ..FileConfig::default()
        },
        ..Options::default()
    })
    .await;
    let client = s.create_account(&face_id("face-ort")).await;
    let resp = upload(
        &s,
        &client,
        None,
        "/face/v1.0/detect?returnFaceId=false",
        &f.obama,
    )
    .await;
    if cfg!(feature = "onnxruntime") {
        let faces = resp.ok(StatusCode::OK).json();
        assert_eq!(faces.as_array().map(Vec::len), Some(1), "{faces}");
        assert!(
            f.models_dir
                .join(tessera_face::models::ONNXRUNTIME_LIBRARY_FILE)
                .is_file()
        );
    } else {
        // The operator's reason (the missing feature) is in the log; the caller learns only the kind.
        let message = resp.error(StatusCode::SERVICE_UNAVAILABLE, "FaceEngineUnavailable");
        assert_eq!(
            message,
            "the face engine did not load on this node; the server's log says why"
        );
        assert!(
            s.running
                .face_unavailable_reason()
                .is_some_and(|r| r.contains("--features onnxruntime")),
            "{:?}",
            s.running.face_unavailable_reason()
        );
    }
}

/// Two nodes on one PostgreSQL: a training or a removal on one is what the other searches next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_training_and_removals_through_postgres() {
    let f = fixtures();
    let url = tokio::task::spawn_blocking(tessera_testkit::postgres_url)
        .await
        .expect("a PostgreSQL database");
    let master_key = common::master_key();
    let a = face_server(&f, Some((&url, &master_key))).await;
    let b = face_server(&f, Some((&url, &master_key))).await;
    let isv = a.create_isv("face-pg-isv", &FLAGS).await;
    let client = a.create_account(&face_id("face-pg-client")).await;
    let token = a.lat(&isv, &client, &FLAGS).await;
    call(&a, &client, None, Method::PUT, GROUP, Some(json!({"name": "G"})))
        .await
        .ok(StatusCode::OK);
    let obama = add_person(&a, &client, "Obama").await;
    let enrolled = upload(
        &a,
        &client,
        None,
        &format!("{GROUP}/persons/{obama}/persistedfaces"),
        &f.obama,
    )
    .await
    .ok(StatusCode::OK)
    .json();
    train(&a, &client).await;
    let face = face_id_of(&b, &client, &token, &f.obama3).await;
    let candidates = identify(&b, &client, &token, &face, 1).await;
    assert_eq!(
        candidates.first().map(|c| c.0.as_str()),
        Some(obama.as_str()),
        "{candidates:?}"
    );

    let twin = add_person(&a, &client, "Twin").await;
    upload(
        &a,
        &client,
        None,
        &format!("{GROUP}/persons/{twin}/persistedfaces"),
        &f.obama3,
    )
    .await
    .ok(StatusCode::OK);
    train(&a, &client).await;
    let candidates = identify(&b, &client, &token, &face, 1).await;
    assert_eq!(
        candidates[0].0, twin,
        "node b searches node a's new training: {candidates:?}"
    );
    let id = enrolled["persistedFaceId"].as_str().expect("persistedFaceId");
    call(
        &a,
        &client,
        None,
        Method::DELETE,
        &format!("{GROUP}/persons/{twin}"),
        None,
    )
    .await
    .ok(StatusCode::OK);
    let candidates = identify(&b, &client, &token, &face, 2).await;
    assert_eq!(
        candidates.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        [obama.as_str()],
        "node b forgets the removed person at once"
    );
    call(
        &a,
        &client,
        None,
        Method::DELETE,
        &format!("{GROUP}/persons/{obama}/persistedfaces/{id}"),
        None,
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(identify(&b, &client, &token, &face, 2).await, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_similar_in_a_large_face_list_needs_high_risk() {
    const LIST: &str = "/face/v1.0/largefacelists/crowd";
    let f = fixtures();
    let s = face_server(&f, None).await;
    let all = ["Face.Identification", "LimitedAccess.HighRisk"];
    let isv = s.create_isv("face-list-isv", &all).await;
    let client = s.create_account(&face_id("face-list-client")).await;
    let identification = s.lat(&isv, &client, &all[..1]).await;
    let high_risk = s.lat(&isv, &client, &all).await;

    call(
        &s,
        &client,
        None,
        Method::PUT,
        LIST,
        Some(json!({"name": "Crowd", "userData": "u"})),
    )
    .await
    .ok(StatusCode::OK);
    call(
        &s,
        &client,
        None,
        Method::PUT,
        LIST,
        Some(json!({"name": "again"})),
    )
    .await
    .error(StatusCode::CONFLICT, "LargeFaceListExists");
    let mut added = Vec::new();
    for photo in [&f.obama, &f.biden, &f.gauss] {
        let face = upload(
            &s,
            &client,
            None,
            &format!("{LIST}/persistedfaces?userData=x"),
            photo,
        )
        .await
        .ok(StatusCode::OK)
        .json();
        added.push(
            face["persistedFaceId"]
                .as_str()
                .expect("persistedFaceId")
                .to_owned(),
        );
    }
    let listed = call(
        &s,
        &client,
        None,
        Method::GET,
        &format!("{LIST}/persistedfaces"),
        None,
    )
    .await
    .ok(StatusCode::OK)
    .json();
    let mut sorted = added.clone();
    sorted.sort();
    let listed_ids: Vec<&str> = listed
        .as_array()
        .expect("faces")
        .iter()
        .map(|f| f["persistedFaceId"].as_str().expect("id"))
        .collect();
    assert_eq!(listed_ids, sorted);

    let query = face_id_of(&s, &client, &high_risk, &f.obama3).await;
    let find = |token: &str| {
        let token = token.to_owned();
        let body = json!({"faceId": query, "largeFaceListId": "crowd"});
        let (s, client) = (&s, &client);
        async move {
            call(
                s,
                client,
                Some(&token),
                Method::POST,
                "/face/v1.0/findsimilars",
                Some(body),
            )
            .await
        }
    };
    find(&identification)
        .await
        .error(StatusCode::FORBIDDEN, "FlagNotInToken");
    find(&high_risk)
        .await
        .error(StatusCode::BAD_REQUEST, "LargeFaceListNotTrained");
    call(&s, &client, None, Method::POST, &format!("{LIST}/train"), None)
        .await
        .ok(StatusCode::ACCEPTED);
    let status = call(&s, &client, None, Method::GET, &format!("{LIST}/training"), None)
        .await
        .ok(StatusCode::OK)
        .json();
    assert_eq!(status["status"], "succeeded");
    let similar = find(&high_risk).await.ok(StatusCode::OK).json();
    assert_eq!(similar.as_array().map(Vec::len), Some(1), "{similar}");
    assert_eq!(
        similar[0]["persistedFaceId"],
        added[0].as_str(),
        "Obama's face: {similar}"
    );
    assert!(similar[0]["confidence"].as_f64() >= Some(0.5), "{similar}");

    call(
        &s,
        &client,
        None,
        Method::DELETE,
        &format!("{LIST}/persistedfaces/{}", added[0]),
        None,
    )
    .await
    .ok(StatusCode::OK);
    assert_eq!(find(&high_risk).await.ok(StatusCode::OK).json(), json!([]));

    // Another account sees no list of that id.
    let other = s.create_account(&face_id("face-list-other")).await;
    call(&s, &other, None, Method::GET, LIST, None)
        .await
        .error(StatusCode::NOT_FOUND, "LargeFaceListNotFound");
    call(&s, &client, None, Method::DELETE, LIST, None)
        .await
        .ok(StatusCode::OK);
    call(
        &s,
        &client,
        None,
        Method::GET,
        &format!("{LIST}/persistedfaces"),
        None,
    )
    .await
    .error(StatusCode::NOT_FOUND, "LargeFaceListNotFound");
}
