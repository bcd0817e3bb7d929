//! Face v1.0 conformance: the official Python SDK (`azure-cognitiveservices-vision-face` 0.6.1, msrest-based,
//! unmodified, from the pinned `tests/face_conformance/requirements.txt`) run by pytest against a real Tessera over
//! HTTPS with the face engine loaded.
//!
//! The test starts one server (SQLite) with the face engine enabled, creates the accounts the suite needs (an ISV
//! approved for and granting `Face.Identification` and `Face.Verification`; a client Face account and another Face
//! account, both without approvals; a Communication account), issues the client a limited access token and moves
//! the server's clock two days on so that this token is expired, then builds the virtualenv (crates/testkit
//! `python_venv`) and runs `python -m pytest -q tests/face_conformance` (crates/testkit `run_pytest`) with the
//! endpoint, keys, resource ids, the expired token and the photographs' directory in the environment. pytest's
//! output is printed line by line, and the test fails when pytest does.

use crate::common;

use common::{ADMIN_KEY, Options, Server, communication_id, face_id};
use std::time::Duration;
use tessera_server::{FaceFileConfig, FileConfig};

/// How long the whole pytest run may take before it is killed.
const PYTEST_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The flags the client's tokens grant by default.
const FACE_FLAGS: [&str; 2] = ["Face.Identification", "Face.Verification"];
/// The flags the ISV holds and may grant: also `LimitedAccess.HighRisk`, for find-similar in a large face list.
const ISV_FLAGS: [&str; 3] = [
    "Face.Identification",
    "Face.Verification",
    "LimitedAccess.HighRisk",
];

/// How far the server's clock is moved after the first token is issued: past any token's lifetime (at most 24 h).
const CLOCK_JUMP_SECS: i64 = 2 * 86_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_face_sdk_conforms() {
    // Fetching the photographs may run pip: it blocks, so it runs off the runtime's cooperative path.
    let fixtures = tokio::task::block_in_place(tessera_testkit::face_fixtures);
    let images = fixtures
        .obama
        .parent()
        .expect("the photographs live in a directory")
        .to_path_buf();
    for photo in [
        &fixtures.obama,
        &fixtures.obama2,
        &fixtures.obama3,
        &fixtures.biden,
        &fixtures.newton,
        &fixtures.gauss,
        &fixtures.solvay,
    ] {
        assert_eq!(
            photo.parent(),
            Some(images.as_path()),
            "every photograph is in one directory"
        );
        assert!(photo.is_file(), "{} is missing", photo.display());
    }

    // The suite presents missing, foreign and dead tokens on purpose: far more than the default 20 failed
    // authentications a minute that one address may make before it gets 429s.
    let server = Server::start_with(Options {
        file: FileConfig {
            auth_failure_limit: Some(100_000),
            face: Some(FaceFileConfig {
                enabled: Some(true),
                models_dir: Some(fixtures.models_dir.clone()),
                ..Default::default()
            }),
            ..FileConfig::default()
        },
        ..Options::default()
    })
    .await;
    let ca = server
        .running
        .ca_cert
        .clone()
        .expect("the test server serves HTTPS with a generated CA");

    let isv = server.create_isv("face-conformance-isv", &ISV_FLAGS).await;
    let client = server.create_account(&face_id("face-conformance-client")).await;
    let other = server.create_account(&face_id("face-conformance-other")).await;
    let communication = server
        .create_account(&communication_id("face-conformance-acs"))
        .await;

    // A token that is valid now and expired once the clock has moved: everything pytest issues comes later.
    let expired_token = server.lat(&isv, &client, &FACE_FLAGS).await;
    server.clock().advance_secs(CLOCK_JUMP_SECS);

    let endpoint = server.base.trim_end_matches('/').to_owned();
    let env = [
        ("TESSERA_ENDPOINT", endpoint),
        ("REQUESTS_CA_BUNDLE", ca.display().to_string()),
        ("TESSERA_ADMIN_KEY", ADMIN_KEY.to_owned()),
        ("TESSERA_ISV_KEY", isv.key().to_owned()),
        ("TESSERA_ISV_RESOURCE_ID", isv.rid.clone()),
        ("TESSERA_CLIENT_KEY", client.key().to_owned()),
        ("TESSERA_CLIENT_RESOURCE_ID", client.rid.clone()),
        ("TESSERA_OTHER_KEY", other.key().to_owned()),
        ("TESSERA_OTHER_RESOURCE_ID", other.rid.clone()),
        ("TESSERA_COMMUNICATION_KEY", communication.key().to_owned()),
        ("TESSERA_EXPIRED_TOKEN", expired_token),
        ("TESSERA_FACE_IMAGES", images.display().to_string()),
    ];
    // pip and pytest block; the server keeps running on the runtime's worker threads meanwhile.
    let status = tokio::task::block_in_place(|| {
        let requirements = tessera_testkit::workspace_root().join("tests/face_conformance/requirements.txt");
        let venv = tessera_testkit::python_venv(&requirements);
        tessera_testkit::run_pytest(
            &venv.join("bin/python"),
            "tests/face_conformance",
            &env,
            PYTEST_TIMEOUT,
        )
    });
    assert!(
        status.success(),
        "the Face conformance suite failed ({status}); pytest's output is above"
    );
}
