//! ACS conformance: the official Python SDKs (`azure-communication-identity` 1.5.0 and `azure-communication-chat`
//! 1.3.0, unmodified, from the pinned `tests/conformance/requirements.txt`) run by pytest against a real Tessera
//! over HTTPS. The test starts the
//! server, creates two Communication accounts, builds the virtualenv (crates/testkit `python_venv`), runs
//! `python -m pytest -q tests/conformance` (crates/testkit `run_pytest`) with the accounts' connection strings in
//! the environment, prints pytest's output line by line, and fails when pytest does.

use crate::common;

use common::{Options, Server, communication_id};
use reqwest::{Method, StatusCode};
use std::time::Duration;
use tessera_server::FileConfig;

/// How long the whole pytest run may take before it is killed.
const PYTEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// An account's connection string and key, from its creation answer.
struct Credentials {
    connection_string: String,
    key: String,
}

async fn create_account(server: &Server, name: &str) -> Credentials {
    let body = server
        .admin(Method::PUT, &format!("/admin{}", communication_id(name)), None)
        .await
        .ok(StatusCode::CREATED)
        .json();
    let field = |v: &serde_json::Value, what: &str| {
        v.as_str()
            .unwrap_or_else(|| panic!("the creation answer has no {what}: {body}"))
            .to_owned()
    };
    Credentials {
        connection_string: field(&body["connectionString"], "connectionString"),
        key: field(&body["keys"]["key1"], "keys.key1"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_identity_sdk_conforms() {
    // The suite presents wrong keys, tampered signatures and dead tokens on purpose, far more than the default
    // 20 failed authentications a minute that one address may make before it gets 429s.
    let server = Server::start_with(Options {
        file: FileConfig {
            auth_failure_limit: Some(100_000),
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
    let a = create_account(&server, "conformance-a").await;
    let b = create_account(&server, "conformance-b").await;
    let endpoint = server.base.trim_end_matches('/').to_owned();
    assert!(
        a.connection_string.starts_with(&format!("endpoint={endpoint}")),
        "the connection string names the server: {} vs {endpoint}",
        a.connection_string
    );

    let env = [
        ("TESSERA_ENDPOINT", endpoint),
        ("TESSERA_CONNECTION_STRING", a.connection_string),
        ("TESSERA_CONNECTION_STRING_B", b.connection_string),
        ("TESSERA_ACCESS_KEY", a.key),
        ("REQUESTS_CA_BUNDLE", ca.display().to_string()),
    ];
    // pip and pytest block; the server keeps running on the runtime's worker threads meanwhile.
    let status = tokio::task::block_in_place(|| {
        let requirements = tessera_testkit::workspace_root().join("tests/conformance/requirements.txt");
        let venv = tessera_testkit::python_venv(&requirements);
        tessera_testkit::run_pytest(
            &venv.join("bin/python"),
            "tests/conformance",
            &env,
            PYTEST_TIMEOUT,
        )
    });
    assert!(
        status.success(),
        "the ACS conformance suite failed ({status}); pytest's output is above"
    );
}
