//! The `tessera` binary end to end: `tessera serve` as a child process over HTTPS with its generated local CA,
//! `tessera admin …` against it, `tessera audit verify` on the live and on the stopped database, `tessera token
//! inspect`, and the bootstrap admin key printed once.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";
const SUB: &str = "6f1c2b5e-3a4d-4c8e-9b7a-1d2e3f405162";
const ID: &str = "Face.Identification";

fn face_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-cli/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

/// A `tessera` command with no `TESSERA_*` variables inherited from the test's environment.
fn tessera(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(dir).env("TESSERA_LOG", "warn");
    cmd
}

/// A running `tessera serve`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Served {
    child: std::process::Child,
    base: String,
    ca: PathBuf,
    stderr: PathBuf,
}

impl Served {
    /// Starts `tessera serve` on a free loopback port with its data in `data`; `admin_key` goes in
    /// `TESSERA_ADMIN_KEY`. Returns once `/healthz` answers over HTTPS with the generated CA.
    async fn start(data: &Path, admin_key: Option<&str>, log_name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let stderr = data.parent().expect("parent").join(log_name);
        let mut cmd = tessera(data.parent().unwrap());
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        if let Some(key) = admin_key {
            cmd.env("TESSERA_ADMIN_KEY", key);
        }
        let child = cmd.spawn().expect("spawn tessera serve");
        let mut served = Self {
            child,
            base: format!("https://127.0.0.1:{port}"),
            ca: data.join("tls").join("ca.pem"),
            stderr,
        };
        served.wait_healthy().await;
        served
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                panic!("tessera serve exited with {status}: {}", self.log());
            }
            if self.ca.exists()
                && let Ok(client) = client(&self.ca)
                && let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tessera serve did not become healthy: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Asks the server to shut down (SIGTERM) and waits for it.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client(ca: &Path) -> reqwest::Result<reqwest::Client> {
    let pem = std::fs::read(ca).unwrap_or_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
        .timeout(Duration::from_secs(30))
        .build()
}

/// Runs `tessera admin --url … --ca-cert … ARGS` with the admin key in the environment.
fn admin(dir: &Path, served: &Served, key: &str, args: &[&str]) -> Output {
    tessera(dir)
        .args(["admin", "--url", &served.base, "--ca-cert"])
        .arg(&served.ca)
        .args(args)
        .env("TESSERA_ADMIN_KEY", key)
        .output()
        .expect("run tessera admin")
}

/// Runs an admin command that must succeed and returns its JSON output.
#[track_caller]
fn admin_ok(dir: &Path, served: &Served, args: &[&str]) -> Value {
    let out = admin(dir, served, ADMIN_KEY, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tessera admin {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `tessera audit verify --data-dir DIR`: (success, stdout).
fn audit_verify(dir: &Path, data: &Path) -> (bool, String) {
    let out = tessera(dir)
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .output()
        .expect("run tessera audit verify");
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

/// The number N in "audit chain intact: N events".
fn intact_count(out: &str) -> i64 {
    let rest = out
        .split("audit chain intact: ")
        .nth(1)
        .unwrap_or_else(|| panic!("not intact: {out}"));
    rest.split(' ').next().unwrap().parse().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_administer_and_verify_the_audit_chain() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let data = dir.join("data");
    let mut served = Served::start(&data, Some(ADMIN_KEY), "serve.log").await;
    assert!(data.join("tessera.db").exists(), "SQLite in the data directory");
    assert!(
        data.join("master.key").exists(),
        "a master key generated on first start"
    );
    let log = served.log();
    assert!(
        !log.contains(ADMIN_KEY),
        "the admin key from the environment is never printed"
    );

    let isv_id = face_id("isv-cli");
    let client_id = face_id("client-cli");
    let isv = admin_ok(dir, &served, &["account", "create", &isv_id, "--approve", ID]);
    assert_eq!(isv["approvedFlags"], json!([ID]));
    let isv_key = isv["keys"]["key1"].as_str().expect("key1").to_owned();
    let granted = admin_ok(dir, &served, &["isv", "grant", &isv_id, ID]);
    assert_eq!(granted["isvActive"], json!(true));
    let client_account = admin_ok(dir, &served, &["account", "create", &client_id]);
    let old_key = client_account["keys"]["key1"].as_str().unwrap().to_owned();
    let regenerated = admin_ok(dir, &served, &["account", "regenerate-key", &client_id, "key1"]);
    assert_eq!(regenerated["keyName"], json!("key1"));
    let new_key = regenerated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    let shown = admin_ok(dir, &served, &["account", "show", &client_id]);
    assert_eq!(shown["resourceId"], json!(client_id));
    assert!(shown.get("keys").is_none());
    let revoked = admin_ok(dir, &served, &["account", "revoke-user-tokens", &client_id]);
    assert!(revoked["userTokensRevokedAt"].is_i64(), "{revoked}");
    let listed = admin_ok(dir, &served, &["account", "list", "--limit", "1"]);
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    assert!(listed["nextAfter"].is_string());

    // The ISV issues over HTTPS; the client uses the token with its regenerated key; the old key is dead.
    let http = client(&served.ca).unwrap();
    let token = http
        .post(format!(
            "{}/sts/v1.0/issueLimitedAccessToken?expiredTime=600",
            served.base
        ))
        .header("Ocp-Apim-Subscription-Key", &isv_key)
        .json(&json!({"resourceId": client_id, "featureFlags": [ID]}))
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), reqwest::StatusCode::OK);
    let token = token.text().await.unwrap();
    let check = |key: String| {
        let http = http.clone();
        let url = format!("{}/sts/v1.0/limitedAccess/check", served.base);
        let token = token.clone();
        async move {
            http.post(url)
                .header("Ocp-Apim-Subscription-Key", key)
                .header("LimitedAccessToken", format!("Bearer {token}"))
                .json(&json!({"featureFlag": ID}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(check(new_key.clone()).await, reqwest::StatusCode::OK);
    assert_eq!(check(old_key.clone()).await, reqwest::StatusCode::UNAUTHORIZED);

    // Keys: rotation publishes the next key, which is listed.
    let before = admin_ok(dir, &served, &["keys", "list"]);
    assert_eq!(before["keys"].as_array().unwrap().len(), 2);
    let rotation = admin_ok(dir, &served, &["keys", "rotate"]);
    assert!(rotation["activated"].is_string());
    let after = admin_ok(dir, &served, &["keys", "list"]);
    assert_eq!(after["keys"].as_array().unwrap().len(), 3);
    assert_eq!(
        check(new_key.clone()).await,
        reqwest::StatusCode::OK,
        "tokens survive a rotation"
    );

    // The audit log, filtered.
    let issued = admin_ok(
        dir,
        &served,
        &[
            "audit",
            "--action",
            "sts.issueLimitedAccessToken",
            "--outcome",
            "success",
        ],
    );
    let issued = issued["value"].as_array().unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["subject"], json!(client_id));
    let all = admin_ok(dir, &served, &["audit", "--limit", "1000"]);
    let total = all["value"].as_array().unwrap().len() as i64;
    assert!(total >= 8, "{total} events");

    // A refused admin command: non-zero exit, the server's error shown, the key not.
    let wrong = admin(dir, &served, "wrong-admin-key-0000000000", &["keys", "list"]);
    assert!(!wrong.status.success());
    let out = text(&wrong.stdout) + &text(&wrong.stderr);
    assert!(out.contains("InvalidAdminKey"), "{out}");
    assert!(out.contains("401"), "{out}");
    assert!(!out.contains("wrong-admin-key"), "{out}");
    let bad_flag = admin(dir, &served, ADMIN_KEY, &["isv", "grant", &client_id, ID]);
    assert!(!bad_flag.status.success());
    assert!(text(&bad_flag.stdout).contains("FlagNotHeld"));

    // `tessera token inspect` shows, without verifying.
    let inspect = tessera(dir).args(["token", "inspect", &token]).output().unwrap();
    assert!(inspect.status.success());
    let shown = text(&inspect.stdout);
    assert!(shown.contains("NOT VERIFIED"));
    assert!(shown.contains("lat+jwt") && shown.contains(&client_id), "{shown}");
    let garbage = tessera(dir)
        .args(["token", "inspect", "not-a-token"])
        .output()
        .unwrap();
    assert!(!garbage.status.success());

    // Verify the chain of the live database, then of the stopped one.
    let all = admin_ok(dir, &served, &["audit", "--limit", "1000"]);
    let total_live = all["value"].as_array().unwrap().len() as i64;
    assert!(total_live > total, "the refused commands were audited too");
    let (ok, out) = audit_verify(dir, &data);
    assert!(ok, "{out}");
    assert_eq!(intact_count(&out), total_live, "{out}");
    served.stop();
    assert!(
        served.log().contains("shutting down"),
        "graceful shutdown on SIGTERM: {}",
        served.log()
    );
    let (ok, out) = audit_verify(dir, &data);
    assert!(ok, "{out}");
    assert_eq!(intact_count(&out), total_live);

    let (ok, out) = audit_verify(dir, &dir.join("nowhere"));
    assert!(!ok);
    assert!(out.contains("no database"), "{out}");

    tamper_and_verify(dir, &data, total_live);
}

/// With the `sqlite3` shell at hand: a copy of the stopped database with one event altered (the append-only
/// triggers dropped first) fails verification, naming the altered event.
fn tamper_and_verify(dir: &Path, data: &Path, total: i64) {
    if Command::new("sqlite3").arg("-version").output().is_err() {
        eprintln!("sqlite3 is not installed: skipping the tampering check");
        return;
    }
    let copy = dir.join("tampered");
    std::fs::create_dir_all(&copy).unwrap();
    let db = copy.join("tessera.db");
    let backup = Command::new("sqlite3")
        .arg(data.join("tessera.db"))
        .arg(format!(".backup '{}'", db.display()))
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let (ok, out) = audit_verify(dir, &copy);
    assert!(ok && intact_count(&out) == total, "{out}");
    // The stopping server signed a checkpoint of its last event: nothing follows it.
    assert!(
        out.contains(&format!(
            "checkpoint at {total} (signature valid), 0 events after it"
        )),
        "{out}"
    );

    // Truncation: the triggers dropped and the last events deleted, the chain that is left is intact, but the
    // checkpoint vouches for more.
    let truncated = dir.join("truncated");
    std::fs::create_dir_all(&truncated).unwrap();
    std::fs::copy(&db, truncated.join("tessera.db")).unwrap();
    let cut = format!(
        "DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq > {};",
        total - 3
    );
    let done = Command::new("sqlite3")
        .arg(truncated.join("tessera.db"))
        .arg(cut)
        .output()
        .unwrap();
    assert!(done.status.success(), "{}", text(&done.stderr));
    let (ok, out) = audit_verify(dir, &truncated);
    assert!(!ok, "a truncated chain fails: {out}");
    assert!(
        out.contains(&format!(
            "TRUNCATED: the checkpoint vouches for {total} events, the log has {}",
            total - 3
        )),
        "{out}"
    );
    // Deleting the checkpoints too hides it from the database's own check, not from an exported anchor.
    let anchor = dir.join("anchor.json");
    let cut = "DELETE FROM audit_checkpoints;";
    let done = Command::new("sqlite3")
        .arg(truncated.join("tessera.db"))
        .arg(cut)
        .output()
        .unwrap();
    assert!(done.status.success(), "{}", text(&done.stderr));
    let (ok, out) = audit_verify(dir, &truncated);
    assert!(ok && out.contains("no checkpoint"), "{out}");
    let exported = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT json_object('value', json_group_array(json_object('seq', seq, 'head', head, 'token', token))) FROM audit_checkpoints;")
        .output()
        .unwrap();
    std::fs::write(&anchor, &exported.stdout).unwrap();
    let anchored = tessera(dir)
        .args(["audit", "verify", "--data-dir"])
        .arg(&truncated)
        .arg("--anchor")
        .arg(&anchor)
        .output()
        .unwrap();
    let out = text(&anchored.stdout) + &text(&anchored.stderr);
    assert!(!anchored.status.success() && out.contains("TRUNCATED"), "{out}");

    let target = total / 2;
    let sql = format!(
        "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET outcome = 'denied' WHERE seq = {target};"
    );
    let tamper = Command::new("sqlite3").arg(&db).arg(sql).output().unwrap();
    assert!(tamper.status.success(), "{}", text(&tamper.stderr));
    let (ok, out) = audit_verify(dir, &copy);
    assert!(!ok, "a tampered chain fails: {out}");
    assert!(out.contains("audit chain BROKEN"), "{out}");
    assert!(
        out.contains(&format!("event {target}:")),
        "names the altered event: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_admin_key_is_printed_once() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path();
    let data = dir.join("data");

    let mut first = Served::start(&data, None, "first.log").await;
    let log = first.log();
    assert!(log.contains("generated the admin key"), "{log}");
    let key = log
        .split_whitespace()
        .find(|w| w.starts_with("tsa_"))
        .unwrap_or_else(|| panic!("the key is printed: {log}"))
        .to_owned();
    let listed = admin(dir, &first, &key, &["account", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stdout));
    first.stop();

    let mut second = Served::start(&data, None, "second.log").await;
    let log = second.log();
    assert!(
        !log.contains("generated the admin key"),
        "printed only at first start: {log}"
    );
    assert!(!log.contains(&key), "{log}");
    assert!(
        !log.contains("generated a master key"),
        "the master key too is generated once: {log}"
    );
    let listed = admin(dir, &second, &key, &["account", "list"]);
    assert!(
        listed.status.success(),
        "the generated key still works: {}",
        text(&listed.stdout)
    );
    let wrong = admin(dir, &second, ADMIN_KEY, &["account", "list"]);
    assert!(!wrong.status.success());
    second.stop();

    // TESSERA_ADMIN_KEY takes over from the generated key without printing anything.
    let third = Served::start(&data, Some(ADMIN_KEY), "third.log").await;
    assert!(
        admin(dir, &third, ADMIN_KEY, &["account", "list"])
            .status
            .success()
    );
    assert!(!third.log().contains(ADMIN_KEY));
}

#[test]
fn serve_refuses_bad_configuration_with_a_reason() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = tessera(tmp.path());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run tessera");
        assert!(!out.status.success(), "{args:?} must fail");
        text(&out.stderr)
    };
    let e = run(&["serve", "--listen", "nonsense"], &[]);
    assert!(e.contains("not IP:PORT"), "{e}");
    let e = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("TESSERA_ADMIN_KEY", "short")],
    );
    assert!(e.contains("at least 16"), "{e}");
    assert!(!e.contains("short\""), "{e}");
    let e = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://u@127.0.0.1:1/db",
        ],
        &[],
    );
    assert!(e.contains("TESSERA_MASTER_KEY"), "{e}");
}
