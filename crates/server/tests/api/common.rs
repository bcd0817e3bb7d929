//! Shared helpers of the HTTP-level suites: a real server per test (HTTPS on loopback, SQLite or PostgreSQL), an
//! HTTP client that trusts its generated CA, admin helpers, the STS calls, the gate check, and the audit log.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_core::acs_hmac;
use tessera_core::audit::{ChainVerifier, Event};
use tessera_server::config::{Overrides, Secret};
use tessera_server::{Clock, Config, FileConfig, Running};
use tessera_wire::admin::{AuditPage, CreatedAccount};

/// The operator's key in every test server.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
/// The subscription of every test account.
pub const SUBSCRIPTION: &str = "6f1c2b5e-3a4d-4c8e-9b7a-1d2e3f405162";

/// Which database a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the test's temporary directory.
    Sqlite,
    /// A fresh database on the harness's PostgreSQL.
    Postgres,
}

/// Generates `<scenario>::sqlite` and `<scenario>::postgres` tests, each calling `scenario(Backend)`; in scope in
/// every module declared after `common` (`#[macro_use]` in `main.rs`).
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::common::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::common::Backend::Postgres).await;
                }
            }
        )*
    };
}

/// A fresh database URL for `backend` (the SQLite file lives in `dir`).
pub async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => tessera_testkit::sqlite_url(dir),
        Backend::Postgres => tokio::task::spawn_blocking(tessera_testkit::postgres_url)
            .await
            .expect("create a PostgreSQL test database"),
    }
}

/// A new base64 master key.
pub fn master_key() -> String {
    tessera_token::MasterKey::generate_base64().expect("generate a master key")
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The database; `None`: SQLite in the server's temporary directory.
    pub database_url: Option<String>,
    /// The master key; `None`: a new one.
    pub master_key: Option<String>,
    /// Plain HTTP instead of HTTPS.
    pub http: bool,
    /// The file configuration.
    pub file: FileConfig,
}

/// A running server and a client that trusts it.
pub struct Server {
    /// The server.
    pub running: Running,
    /// A client trusting the server's CA (plain client in HTTP mode).
    pub client: reqwest::Client,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// The master key it was started with.
    pub master_key: String,
    /// Its database.
    pub database_url: String,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
}

/// An HTTP answer, read in full.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub text: String,
}

impl Resp {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        self.typed()
    }

    /// The body as one of the wire's types (panics with the body if it is not one).
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "body is not a {} ({e}): {:?} (status {})",
                std::any::type_name::<T>(),
                self.text,
                self.status
            )
        })
    }

    /// The `Content-Type`, or "".
    pub fn content_type(&self) -> &str {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A header, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts a success status, and returns self.
    #[track_caller]
    pub fn ok(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self
    }

    /// Asserts an error answer: the status, `{"error":{"code","message"}}` with this code, JSON content type,
    /// and `WWW-Authenticate` on 401. Returns the message.
    #[track_caller]
    pub fn error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(
            (self.status, self.error_code().as_str()),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
        assert!(
            self.content_type().starts_with("application/json"),
            "error content type: {:?}",
            self.content_type()
        );
        let body = self.json();
        let obj = body.as_object().expect("error body is an object");
        assert_eq!(obj.len(), 1, "error body has only `error`: {body}");
        let error = body["error"].as_object().expect("`error` is an object");
        assert_eq!(error.len(), 2, "`error` has only code and message: {body}");
        let message = error["message"].as_str().expect("message is a string");
        assert!(!message.is_empty());
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                self.header("www-authenticate").starts_with("Bearer"),
                "401 without WWW-Authenticate: {:?}",
                self.headers
            );
        }
        message.to_owned()
    }

    /// The error code of an error body, or "".
    pub fn error_code(&self) -> String {
        serde_json::from_str::<Value>(&self.text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// An account created through the admin API.
#[derive(Debug, Clone)]
pub struct Acct {
    /// The resource id as it was sent.
    pub rid: String,
    /// Its canonical form, as the server answers it.
    pub canonical: String,
    /// `key1`.
    pub key1: String,
    /// `key2`.
    pub key2: String,
}

impl Acct {
    /// The key used by default.
    pub fn key(&self) -> &str {
        &self.key1
    }
}

/// A Face account's resource id.
pub fn face_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
}

/// A Communication account's resource id.
pub fn communication_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-test/providers/Microsoft.Communication/communicationServices/{name}"
    )
}

/// Installs the process's rustls crypto provider (the server does too; whoever comes first wins).
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The configuration a test server starts with. The face engine is off unless `file` has a `[face]` table (most
/// tests need no models).
pub fn config(
    dir: &std::path::Path,
    database_url: &str,
    master_key: &str,
    http: bool,
    mut file: FileConfig,
) -> Config {
    file.face.get_or_insert_with(|| tessera_server::FaceFileConfig {
        enabled: Some(false),
        ..Default::default()
    });
    Config::resolve(
        file,
        Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.to_path_buf()),
            database_url: Some(database_url.to_owned()),
            admin_key: Some(Secret::new(ADMIN_KEY)),
            master_key: Some(Secret::new(master_key)),
            http,
            ..Overrides::default()
        },
    )
    .expect("valid test configuration")
}

/// A client for `running`: trusting only its local CA over HTTPS, or plain.
pub fn client_for(running: &Running) -> reqwest::Client {
    client_builder(running).build().expect("build the HTTP client")
}

/// A byte stream to a server, plain or TLS.
pub trait RawStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> RawStream for T {}

/// A raw connection to `running`, for clients that misbehave: TCP in HTTP mode, TLS (trusting its CA, as
/// `localhost`) otherwise.
pub async fn raw_connection(running: &Running) -> Box<dyn RawStream> {
    let tcp = tokio::net::TcpStream::connect(running.addr)
        .await
        .expect("connect");
    if running.ca_cert.is_none() {
        return Box::new(tcp);
    }
    Box::new(tls_connection(running, tcp).await)
}

/// The certificate the server at `running` (in `auto` TLS mode) presents now, as DER, from a handshake that
/// trusts only its CA.
pub async fn server_certificate(running: &Running) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(running.addr)
        .await
        .expect("connect");
    let stream = tls_connection(running, tcp).await;
    let (_, session) = stream.get_ref();
    session.peer_certificates().expect("a certificate")[0].to_vec()
}

/// A TLS client connection over `tcp` to `running`, trusting its CA, as `localhost`.
async fn tls_connection(
    running: &Running,
    tcp: tokio::net::TcpStream,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let ca = running.ca_cert.as_ref().expect("a generated CA");
    install_crypto();
    let pem = std::fs::read(ca).expect("the CA");
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    let tls = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("a name");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("the handshake")
}

/// A client builder trusting `running`'s CA, with a 30 s timeout.
pub fn client_builder(running: &Running) -> reqwest::ClientBuilder {
    install_crypto();
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    if let Some(ca) = &running.ca_cert {
        let pem = std::fs::read(ca).expect("read the generated CA");
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("CA is PEM")]);
    }
    builder
}

impl Server {
    /// A server on a fresh database of `backend`.
    pub async fn start(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = database_url(backend, dir.path()).await;
        Self::start_in(
            dir,
            Options {
                database_url: Some(url),
                ..Options::default()
            },
        )
        .await
    }

    /// A server with `options`, in its own temporary directory.
    pub async fn start_with(options: Options) -> Self {
        Self::start_in(tempfile::tempdir().expect("temporary directory"), options).await
    }

    /// A server with `options`, with `dir` as its data directory. Unless `options` say otherwise, identical
    /// refusals are not folded (`refusal_aggregation_secs = 0`), so that a test can find each refusal's own
    /// audit event; the folding has its own test (`sts_flow.rs`'s `repeated_refusals_are_folded_and_limited`).
    pub async fn start_in(dir: tempfile::TempDir, mut options: Options) -> Self {
        install_crypto();
        options.file.refusal_aggregation_secs.get_or_insert(0);
        let database_url = options
            .database_url
            .unwrap_or_else(|| tessera_testkit::sqlite_url(dir.path()));
        let master_key = options.master_key.unwrap_or_else(master_key);
        let config = config(dir.path(), &database_url, &master_key, options.http, options.file);
        let running = tessera_server::start(config, Clock::default())
            .await
            .expect("the server starts");
        let client = client_for(&running);
        let base = running.base_url();
        Self {
            running,
            client,
            base,
            master_key,
            database_url,
            dir,
        }
    }

    /// The server's clock.
    pub fn clock(&self) -> &Clock {
        &self.running.state.clock
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("the request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the body");
        Resp {
            status,
            headers,
            text,
        }
    }

    /// A request with nothing added.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET path`, no credentials.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path)).await
    }

    // ---- admin ----

    /// An admin API call with the admin key.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut request = self.request(method, path).bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    /// `PUT /admin{rid}` (201): the new account and its keys.
    pub async fn create_account(&self, rid: &str) -> Acct {
        let resp = self
            .admin(Method::PUT, &format!("/admin{rid}"), None)
            .await
            .ok(StatusCode::CREATED);
        let created: CreatedAccount = resp.typed();
        Acct {
            rid: rid.to_owned(),
            canonical: created.view.account.resource_id.to_string(),
            key1: created.keys.key1,
            key2: created.keys.key2,
        }
    }

    /// Replaces the account's approved flags.
    pub async fn approve(&self, rid: &str, flags: &[&str]) -> Value {
        self.admin(
            Method::PUT,
            &format!("/admin{rid}/limitedAccess"),
            Some(json!({"featureFlags": flags})),
        )
        .await
        .ok(StatusCode::OK)
        .json()
    }

    /// Makes the account an ISV for `flags`.
    pub async fn make_isv(&self, rid: &str, flags: &[&str]) -> Value {
        self.admin(
            Method::PUT,
            &format!("/admin{rid}/isv"),
            Some(json!({"featureFlags": flags})),
        )
        .await
        .ok(StatusCode::OK)
        .json()
    }

    /// Cuts the ISV off.
    pub async fn cut_off(&self, rid: &str) -> Value {
        self.admin(Method::POST, &format!("/admin{rid}/isv/cutOff"), None)
            .await
            .ok(StatusCode::OK)
            .json()
    }

    /// Disables the account.
    pub async fn disable(&self, rid: &str) -> Value {
        self.admin(Method::POST, &format!("/admin{rid}/disable"), None)
            .await
            .ok(StatusCode::OK)
            .json()
    }

    pub async fn enable(&self, rid: &str) -> Value {
        self.admin(Method::POST, &format!("/admin{rid}/enable"), None)
            .await
            .ok(StatusCode::OK)
            .json()
    }

    /// An ISV: a Face account approved for `flags` and made an ISV for them.
    pub async fn create_isv(&self, name: &str, flags: &[&str]) -> Acct {
        let isv = self.create_account(&face_id(name)).await;
        self.approve(&isv.rid, flags).await;
        self.make_isv(&isv.rid, flags).await;
        isv
    }

    // ---- STS ----

    /// `POST /sts/v1.0/issueLimitedAccessToken[?expiredTime=N]` with the ISV's key.
    pub async fn issue_lat(
        &self,
        isv_key: &str,
        rid: &str,
        flags: &[&str],
        expired_time: Option<&str>,
    ) -> Resp {
        let request = self
            .lat_request(expired_time)
            .header("Ocp-Apim-Subscription-Key", isv_key)
            .json(&json!({"resourceId": rid, "featureFlags": flags}));
        self.send(request).await
    }

    /// The issueLimitedAccessToken request without credentials or body.
    pub fn lat_request(&self, expired_time: Option<&str>) -> reqwest::RequestBuilder {
        let path = match expired_time {
            Some(t) => format!("/sts/v1.0/issueLimitedAccessToken?expiredTime={t}"),
            None => "/sts/v1.0/issueLimitedAccessToken".to_owned(),
        };
        self.request(Method::POST, &path)
    }

    /// Issues a limited access token and returns it (asserting 200).
    pub async fn lat(&self, isv: &Acct, client: &Acct, flags: &[&str]) -> String {
        let resp = self
            .issue_lat(isv.key(), &client.rid, flags, None)
            .await
            .ok(StatusCode::OK);
        assert_eq!(resp.content_type(), "application/jwt");
        resp.text
    }

    /// `POST /sts/v1.0/issueToken` with a subscription key: the STS token (asserting 200).
    pub async fn sts_token(&self, key: &str) -> String {
        let resp = self
            .send(
                self.request(Method::POST, "/sts/v1.0/issueToken")
                    .header("Ocp-Apim-Subscription-Key", key),
            )
            .await
            .ok(StatusCode::OK);
        assert!(
            resp.content_type().starts_with("text/plain"),
            "{}",
            resp.content_type()
        );
        resp.text
    }

    /// `POST /sts/v1.0/limitedAccess/check` with a subscription key and, if given, the raw `LimitedAccessToken`
    /// header value.
    pub async fn check_raw(&self, key: &str, flag: &str, token_header: Option<&str>) -> Resp {
        let mut request = self
            .request(Method::POST, "/sts/v1.0/limitedAccess/check")
            .header("Ocp-Apim-Subscription-Key", key)
            .json(&json!({"featureFlag": flag}));
        if let Some(t) = token_header {
            request = request.header("LimitedAccessToken", t);
        }
        self.send(request).await
    }

    /// The gate check authenticated by an STS bearer token instead of a key.
    pub async fn check_bearer(&self, sts: &str, flag: &str, token: Option<&str>) -> Resp {
        let mut request = self
            .request(Method::POST, "/sts/v1.0/limitedAccess/check")
            .bearer_auth(sts)
            .json(&json!({"featureFlag": flag}));
        if let Some(t) = token {
            request = request.header("LimitedAccessToken", format!("Bearer {t}"));
        }
        self.send(request).await
    }

    /// The gate check with `LimitedAccessToken: Bearer <token>` when a token is given.
    pub async fn check(&self, key: &str, flag: &str, token: Option<&str>) -> Resp {
        let header = token.map(|t| format!("Bearer {t}"));
        self.check_raw(key, flag, header.as_deref()).await
    }

    // ---- communication ----

    /// The host as the Python SDK signs it: the endpoint without its scheme.
    pub fn host(&self) -> &str {
        self.base
            .trim_start_matches("https://")
            .trim_start_matches("http://")
    }

    /// A request signed with ACS HMAC by `key` (base64) exactly as the SDKs sign, except where `signing` says.
    pub fn acs_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: &str,
        signing: &Signing,
    ) -> reqwest::RequestBuilder {
        let text = body.map(Value::to_string).unwrap_or_default();
        let date = acs_hmac::http_date(self.clock().now().plus_secs(signing.skew_secs));
        let hash = acs_hmac::content_hash(signing.body.as_deref().unwrap_or(&text).as_bytes());
        let key = STANDARD.decode(key).expect("access keys are base64");
        let signature = acs_hmac::sign(
            &key,
            method.as_str(),
            signing.path.as_deref().unwrap_or(path),
            &date,
            signing.host.as_deref().unwrap_or(self.host()),
            &hash,
        );
        self.request(method, path)
            .header("x-ms-date", date)
            .header("x-ms-content-sha256", hash)
            .header(
                "authorization",
                format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
            )
            .header(CONTENT_TYPE, "application/json")
            .body(text)
    }

    /// An ACS HMAC-signed call.
    pub async fn acs(&self, method: Method, path: &str, body: Option<Value>, key: &str) -> Resp {
        self.send(self.acs_request(method, path, body.as_ref(), key, &Signing::default()))
            .await
    }

    // ---- audit ----

    /// Every audit event matching `filters`, paging through `/admin/audit` `page` events at a time.
    pub async fn audit_paged(&self, filters: &[(&str, &str)], page: u32) -> Vec<Event> {
        let mut events = Vec::new();
        let mut after: Option<i64> = None;
        loop {
            let mut url = reqwest::Url::parse(&self.url("/admin/audit")).expect("URL");
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in filters {
                    query.append_pair(k, v);
                }
                query.append_pair("limit", &page.to_string());
                if let Some(a) = after {
                    query.append_pair("after", &a.to_string());
                }
            }
            let resp = self
                .send(self.client.get(url).bearer_auth(ADMIN_KEY))
                .await
                .ok(StatusCode::OK);
            let AuditPage { value, next_after } = resp.typed();
            assert!(value.len() <= page as usize);
            events.extend(value);
            match next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        events
    }

    /// Every audit event matching `filters`.
    pub async fn audit(&self, filters: &[(&str, &str)]) -> Vec<Event> {
        self.audit_paged(filters, 1000).await
    }

    /// How many events match `filters`.
    pub async fn audit_count(&self, filters: &[(&str, &str)]) -> usize {
        self.audit(filters).await.len()
    }

    /// Successful limited access token issuances so far.
    pub async fn lat_issuances(&self) -> usize {
        self.audit_count(&[("action", "sts.issueLimitedAccessToken"), ("outcome", "success")])
            .await
    }

    /// The last gate decision in the audit log.
    pub async fn last_gate_event(&self) -> Event {
        self.audit(&[("action", "limitedAccess.use")])
            .await
            .pop()
            .expect("a gate event")
    }

    /// Pages through the whole log (`page` events at a time), checks the hash chain, and returns the events.
    pub async fn verify_audit_chain(&self, page: u32) -> Vec<Event> {
        let events = self.audit_paged(&[], page).await;
        let mut verifier = ChainVerifier::default();
        for e in &events {
            verifier
                .push(e)
                .unwrap_or_else(|broken| panic!("audit chain broken: {broken}"));
        }
        assert_eq!(verifier.head().seq, events.len() as i64, "no gaps from 1");
        events
    }

    /// The published JWKS kids.
    pub async fn jwks_kids(&self) -> Vec<String> {
        let jwks = self.get("/.well-known/jwks.json").await.ok(StatusCode::OK).json();
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }
}

/// Deviations from a correct ACS signature.
#[derive(Debug, Clone, Default)]
pub struct Signing {
    /// Sign this host instead.
    pub host: Option<String>,
    /// Sign this path and query instead.
    pub path: Option<String>,
    /// Hash this body instead of the one sent.
    pub body: Option<String>,
    /// Date the request this many seconds off the server's clock.
    pub skew_secs: i64,
}

/// An identity id as one path segment (`:` percent-encoded, as the SDKs send it).
pub fn segment(id: &str) -> String {
    id.replace(':', "%3A")
}

/// Details of an audit event as JSON.
pub fn details(e: &Event) -> Value {
    serde_json::from_str(&e.details).expect("details are JSON")
}

/// A JWT's header, decoded without verification.
pub fn jwt_header(jwt: &str) -> Value {
    decode_segment(jwt.split('.').next().expect("header"))
}

/// A JWT's claims, decoded without verification.
pub fn jwt_claims(jwt: &str) -> Value {
    decode_segment(jwt.split('.').nth(1).expect("payload"))
}

/// A base64url JSON segment.
pub fn decode_segment(segment: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url without padding");
    serde_json::from_slice(&bytes).expect("segment is JSON")
}

/// A value as a base64url JSON segment.
pub fn encode_segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialize"))
}

/// `jwt` with its claims replaced by `claims` and the original signature kept.
pub fn with_claims(jwt: &str, claims: &Value) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    format!("{}.{}.{}", parts[0], encode_segment(claims), parts[2])
}

/// `jwt` with its header replaced by `header` and the original signature kept.
pub fn with_header(jwt: &str, header: &Value) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    format!("{}.{}.{}", encode_segment(header), parts[1], parts[2])
}
