//! The whole HTTP API, in process: one real server (SQLite in a temporary directory, the face engine off) set up
//! once with a Face client approved for every gated flag, a Face ISV, a Communication account and its STS token, an
//! identity with a chat and VoIP token, and a thread. Each input is one request sent through the router:
//!
//! `[route][credential][api-version] <path segment> \n <body>`: a method and path from [`ROUTES`] (placeholders
//! filled with the real ids, `{x}` with the fuzzed segment, percent-encoded), one of [`Credential`]'s ways of
//! authenticating (an HMAC signature is computed over the request as sent), an `api-version`, and the body as it is.
//!
//! Every answer is below 500, or a 503 (the face engine is off); every 4xx and 5xx carries the JSON error shape
//! `{"error":{"code","message"}}` with non-empty strings; a JSON answer parses. So every request body, query and
//! path the routes take is read by its own extractor, and none panics or leaks a raw rejection.

#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tessera_core::acs_hmac;
use tessera_server::config::{Overrides, Secret};
use tessera_server::{Clock, Config, FaceFileConfig, FileConfig, Running};
use tower::ServiceExt;

const ADMIN_KEY: &str = "fuzz-admin-key-0123456789";
const SUBSCRIPTION: &str = "6f1c2b5e-3a4d-4c8e-9b7a-1d2e3f405162";
const SCRATCH_RID: &str = "/subscriptions/6f1c2b5e-3a4d-4c8e-9b7a-1d2e3f405162/resourceGroups/fuzz/providers/Microsoft.CognitiveServices/accounts/scratch";

/// Method and path templates: `{thread}`, `{identity}`, `{face_rid}` and `{group}` are the set-up's ids,
/// `{scratch_rid}` an account of its own for the admin changes (so that a fuzzed regeneration or disable does not
/// cut the other routes' credentials off), `{x}` the fuzzed segment. Every route of the router, each method it
/// serves, and a few it does not. The seeds (`fuzz/seeds/http_api/`) name routes by their index here.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/sts/v1.0/issueToken"),
    ("POST", "/sts/v1.0/issueLimitedAccessToken"),
    ("POST", "/sts/v1.0/limitedAccess/check"),
    ("GET", "/sts/v1.0/limitedAccess/audit"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/access/me"),
    ("POST", "/access/:refreshAccessToken"),
    ("GET", "/admin/accounts"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/audit/checkpoints"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
    ("PUT", "/admin/subscriptions/{x}"),
    ("GET", "/admin{face_rid}"),
    ("PUT", "/admin{scratch_rid}/limitedAccess"),
    ("PUT", "/admin{scratch_rid}/isv"),
    ("POST", "/admin{scratch_rid}/regenerateKey"),
    ("POST", "/admin{scratch_rid}/{x}"),
    ("POST", "/identities"),
    ("GET", "/identities"),
    ("POST", "/identities/:issueAccessToken"),
    ("GET", "/identities/{identity}"),
    ("DELETE", "/identities/{x}"),
    ("POST", "/identities/{identity}/:issueAccessToken"),
    ("POST", "/identities/{x}/:revokeAccessTokens"),
    ("POST", "/v1/identities"),
    ("GET", "/v1/identities"),
    ("POST", "/v1/identities/:issueAccessToken"),
    ("GET", "/v1/identities/{x}"),
    ("POST", "/v1/identities/{identity}/:issueAccessToken"),
    ("POST", "/chat/threads"),
    ("GET", "/chat/threads"),
    ("POST", "/chat/direct"),
    ("GET", "/chat/threads/{thread}"),
    ("PATCH", "/chat/threads/{thread}"),
    ("DELETE", "/chat/threads/{x}"),
    ("POST", "/chat/threads/{thread}/messages"),
    ("GET", "/chat/threads/{thread}/messages"),
    ("GET", "/chat/threads/{thread}/messages/{x}"),
    ("PATCH", "/chat/threads/{thread}/messages/{x}"),
    ("DELETE", "/chat/threads/{thread}/messages/{x}"),
    ("GET", "/chat/threads/{thread}/participants"),
    ("POST", "/chat/threads/{thread}/participants/:add"),
    ("POST", "/chat/threads/{thread}/participants/:remove"),
    ("POST", "/chat/threads/{thread}/typing"),
    ("POST", "/chat/threads/{thread}/readReceipts"),
    ("GET", "/chat/threads/{thread}/readReceipts"),
    ("POST", "/chat/threads/{x}/messages"),
    ("POST", "/face/v1.0/detect"),
    ("POST", "/face/v1.0/findsimilars"),
    ("POST", "/face/v1.0/identify"),
    ("POST", "/face/v1.0/verify"),
    ("GET", "/face/v1.0/largepersongroups"),
    ("PUT", "/face/v1.0/largepersongroups/{x}"),
    ("GET", "/face/v1.0/largepersongroups/{group}"),
    ("PATCH", "/face/v1.0/largepersongroups/{group}"),
    ("POST", "/face/v1.0/largepersongroups/{group}/persons"),
    ("GET", "/face/v1.0/largepersongroups/{group}/persons"),
    ("GET", "/face/v1.0/largepersongroups/{group}/persons/{x}"),
    ("PATCH", "/face/v1.0/largepersongroups/{group}/persons/{x}"),
    (
        "POST",
        "/face/v1.0/largepersongroups/{group}/persons/{x}/persistedfaces",
    ),
    (
        "DELETE",
        "/face/v1.0/largepersongroups/{group}/persons/{x}/persistedfaces/{x}",
    ),
    ("POST", "/face/v1.0/largepersongroups/{group}/train"),
    ("GET", "/face/v1.0/largepersongroups/{group}/training"),
    ("DELETE", "/face/v1.0/largepersongroups/{x}"),
    ("GET", "/face/v1.0/largefacelists"),
    ("PUT", "/face/v1.0/largefacelists/{x}"),
    ("PATCH", "/face/v1.0/largefacelists/{x}"),
    ("POST", "/face/v1.0/largefacelists/{x}/persistedfaces"),
    ("GET", "/face/v1.0/largefacelists/{x}/persistedfaces"),
    ("DELETE", "/face/v1.0/largefacelists/{x}/persistedfaces/{x}"),
    ("POST", "/face/v1.0/largefacelists/{x}/train"),
    ("GET", "/face/v1.0/largefacelists/{x}/training"),
    ("GET", "/{x}"),
    ("DELETE", "/sts/v1.0/issueToken"),
];

/// How a request authenticates, by the input's second byte.
#[derive(Clone, Copy)]
enum Credential {
    None,
    Admin,
    FaceKey,
    IsvKey,
    /// The Communication account's access key as a subscription key.
    CommunicationKey,
    CommunicationSts,
    CommunicationHmac,
    UserToken,
    /// The Face client's key and a limited access token the ISV issued to it.
    FaceKeyAndLimitedAccessToken,
}

const CREDENTIALS: [Credential; 9] = [
    Credential::None,
    Credential::Admin,
    Credential::FaceKey,
    Credential::IsvKey,
    Credential::CommunicationKey,
    Credential::CommunicationSts,
    Credential::CommunicationHmac,
    Credential::UserToken,
    Credential::FaceKeyAndLimitedAccessToken,
];

/// The `api-version` query, by the input's third byte: none, each dialect's, and wrong ones.
const API_VERSIONS: [Option<&str>; 6] = [
    None,
    Some("2023-10-01"),
    Some("2024-03-07"),
    Some("2021-09-07"),
    Some("2099-01-01"),
    Some(""),
];

/// The server and what the set-up made.
struct World {
    runtime: tokio::runtime::Runtime,
    running: Running,
    router: axum::Router,
    host: String,
    face_rid: String,
    face_key: String,
    isv_key: String,
    limited_access_token: String,
    communication_key: String,
    communication_sts: String,
    identity: String,
    user_token: String,
    thread: String,
    group: String,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// An answer, read whole.
struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl World {
    fn new() -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // Under /dev/shm where there is one: each request's fsync then costs nothing.
        let dir = tempfile::Builder::new()
            .prefix("tessera-fuzz")
            .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
                "/dev/shm"
            } else {
                "/tmp"
            })
            .expect("temporary directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let file = FileConfig {
            auth_failure_limit: Some(u32::MAX),
            max_refusals_per_minute: Some(u32::MAX),
            max_typing_per_minute: Some(u32::MAX),
            max_event_replays_per_minute: Some(u32::MAX),
            refusal_aggregation_secs: Some(0),
            face: Some(FaceFileConfig {
                enabled: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = Config::resolve(
            file,
            Overrides {
                listen: Some("127.0.0.1:0".into()),
                data_dir: Some(dir.path().to_path_buf()),
                database_url: Some(format!("sqlite://{}", dir.path().join("tessera.db").display())),
                admin_key: Some(Secret::new(ADMIN_KEY)),
                master_key: Some(Secret::new(
                    tessera_token::MasterKey::generate_base64().expect("master key"),
                )),
                http: true,
                ..Overrides::default()
            },
        )
        .expect("configuration");
        let running = runtime
            .block_on(tessera_server::start(config, Clock::default()))
            .expect("the server starts");
        let host = running.addr.to_string();
        let router = running.router();
        let mut world = World {
            runtime,
            running,
            router,
            host,
            face_rid: format!(
                "/subscriptions/{SUBSCRIPTION}/resourceGroups/fuzz/providers/Microsoft.CognitiveServices/accounts/client"
            ),
            face_key: String::new(),
            isv_key: String::new(),
            limited_access_token: String::new(),
            communication_key: String::new(),
            communication_sts: String::new(),
            identity: String::new(),
            user_token: String::new(),
            thread: String::new(),
            group: "fuzz-group".into(),
            _dir: dir,
        };
        world.set_up();
        world
    }

    /// The accounts, tokens, identity, thread and group the routes' placeholders name.
    fn set_up(&mut self) {
        let flags =
            json!({"featureFlags": ["Face.Identification", "Face.Verification", "LimitedAccess.HighRisk"]});
        let created = self.expect(
            Method::PUT,
            &format!("/admin{}", self.face_rid),
            Credential::Admin,
            None,
            201,
        );
        self.face_key = created["keys"]["key1"].as_str().expect("key1").to_owned();
        self.expect(
            Method::PUT,
            &format!("/admin{}/limitedAccess", self.face_rid),
            Credential::Admin,
            Some(&flags),
            200,
        );
        self.expect(
            Method::PUT,
            &format!("/admin{SCRATCH_RID}"),
            Credential::Admin,
            None,
            201,
        );
        let isv_rid = format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/fuzz/providers/Microsoft.CognitiveServices/accounts/isv"
        );
        let created = self.expect(
            Method::PUT,
            &format!("/admin{isv_rid}"),
            Credential::Admin,
            None,
            201,
        );
        self.isv_key = created["keys"]["key1"].as_str().expect("key1").to_owned();
        self.expect(
            Method::PUT,
            &format!("/admin{isv_rid}/limitedAccess"),
            Credential::Admin,
            Some(&flags),
            200,
        );
        self.expect(
            Method::PUT,
            &format!("/admin{isv_rid}/isv"),
            Credential::Admin,
            Some(&flags),
            200,
        );
        let grant = json!({"resourceId": self.face_rid, "featureFlags": ["Face.Identification"]});
        self.limited_access_token = self.expect_token(
            "/sts/v1.0/issueLimitedAccessToken",
            Credential::IsvKey,
            grant.to_string().into_bytes(),
        );

        let communication_rid = format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/fuzz/providers/Microsoft.Communication/communicationServices/comm"
        );
        let created = self.expect(
            Method::PUT,
            &format!("/admin{communication_rid}"),
            Credential::Admin,
            None,
            201,
        );
        self.communication_key = created["keys"]["key1"].as_str().expect("key1").to_owned();
        self.communication_sts =
            self.expect_token("/sts/v1.0/issueToken", Credential::CommunicationKey, Vec::new());

        let created = self.expect(
            Method::POST,
            "/identities?api-version=2023-10-01",
            Credential::CommunicationHmac,
            Some(&json!({"createTokenWithScopes": ["chat", "voip"]})),
            201,
        );
        self.identity = created["identity"]["id"].as_str().expect("identity").to_owned();
        self.user_token = created["accessToken"]["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let created = self.expect(
            Method::POST,
            "/chat/threads?api-version=2024-03-07",
            Credential::UserToken,
            Some(&json!({"topic": "fuzz", "participants": [
                {"communicationIdentifier": {"communicationUser": {"id": self.identity}}, "displayName": "me"}
            ]})),
            201,
        );
        self.thread = created["chatThread"]["id"].as_str().expect("thread").to_owned();
        self.send(
            Method::POST,
            "/chat/threads/{thread}/messages?api-version=2024-03-07",
            Credential::UserToken,
            json!({"content": "hello"}).to_string().into_bytes(),
        );
        let group = format!("/face/v1.0/largepersongroups/{}", self.group);
        self.expect(
            Method::PUT,
            &group,
            Credential::FaceKey,
            Some(&json!({"name": "fuzz"})),
            200,
        );
    }

    /// A set-up call that must answer `status`.
    fn expect(
        &self,
        method: Method,
        path: &str,
        credential: Credential,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let answer = self.send(method.clone(), path, credential, body);
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer.json()
    }

    /// A set-up STS call that must answer 200 with a token (`application/jwt`, the token as the body).
    fn expect_token(&self, path: &str, credential: Credential, body: Vec<u8>) -> String {
        let answer = self.send(Method::POST, path, credential, body);
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert_eq!(answer.status, StatusCode::OK, "POST {path}: {text}");
        text
    }

    /// Sends one request through the router and reads the answer.
    fn send(&self, method: Method, path: &str, credential: Credential, body: Vec<u8>) -> Answer {
        let path = path.replace("{thread}", &self.thread);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, "application/json");
        match credential {
            Credential::None => {}
            Credential::Admin => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {ADMIN_KEY}"))
            }
            Credential::FaceKey => request = request.header("Ocp-Apim-Subscription-Key", &self.face_key),
            Credential::IsvKey => request = request.header("Ocp-Apim-Subscription-Key", &self.isv_key),
            Credential::CommunicationKey => {
                request = request.header("Ocp-Apim-Subscription-Key", &self.communication_key)
            }
            Credential::FaceKeyAndLimitedAccessToken => {
                request = request
                    .header("Ocp-Apim-Subscription-Key", &self.face_key)
                    .header(
                        "LimitedAccessToken",
                        format!("Bearer {}", self.limited_access_token),
                    )
            }
            Credential::CommunicationSts => {
                request = request.header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", self.communication_sts),
                )
            }
            Credential::UserToken => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {}", self.user_token))
            }
            Credential::CommunicationHmac => {
                let date = acs_hmac::http_date(self.running.state.clock.now());
                let hash = acs_hmac::content_hash(&body);
                let key = STANDARD
                    .decode(&self.communication_key)
                    .expect("access keys are base64");
                let signature = acs_hmac::sign(&key, method.as_str(), &path, &date, &self.host, &hash);
                request = request
                    .header("x-ms-date", date)
                    .header("x-ms-content-sha256", hash)
                    .header(
                        header::AUTHORIZATION,
                        format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
                    );
            }
        }
        let mut request = request.body(Body::from(body)).expect("a valid request");
        request
            .extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000))));
        let app = self.router.clone();
        self.runtime.block_on(async move {
            let response = app.oneshot(request).await.expect("the router is infallible");
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            // Event streams never end: their headers are enough.
            let body = if content_type.starts_with("text/event-stream") {
                Vec::new()
            } else {
                axum::body::to_bytes(response.into_body(), 64 << 20)
                    .await
                    .expect("the answer's body")
                    .to_vec()
            };
            Answer {
                status,
                content_type,
                body,
            }
        })
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let world = world();
    let (method, template) = ROUTES[usize::from(data[0]) % ROUTES.len()];
    let credential = CREDENTIALS[usize::from(data[1]) % CREDENTIALS.len()];
    let api_version = API_VERSIONS[usize::from(data[2]) % API_VERSIONS.len()];
    let rest = &data[3..];
    let (segment, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    let segment = String::from_utf8_lossy(segment);
    let segment = utf8_percent_encode(&segment, NON_ALPHANUMERIC).to_string();
    let mut path = template
        .replace("{face_rid}", &world.face_rid)
        .replace("{scratch_rid}", SCRATCH_RID)
        .replace(
            "{identity}",
            &utf8_percent_encode(&world.identity, NON_ALPHANUMERIC).to_string(),
        )
        .replace("{group}", &world.group)
        .replace("{x}", &segment);
    if let Some(version) = api_version {
        path.push_str("?api-version=");
        path.push_str(version);
    }
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let answer = world.send(method.clone(), &path, credential, body.to_vec());
    let shown = || {
        format!(
            "{method} {path} → {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )
    };
    assert!(
        answer.status.as_u16() < 500 || answer.status == StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        shown()
    );
    if answer.status.is_client_error() || answer.status.is_server_error() {
        assert!(
            answer.content_type.starts_with("application/json"),
            "{} ({})",
            shown(),
            answer.content_type
        );
        let error = answer.json();
        let code = error["error"]["code"].as_str().unwrap_or_default();
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(!code.is_empty() && !message.is_empty(), "{}", shown());
    } else if answer.content_type.starts_with("application/json") && !answer.body.is_empty() {
        assert!(
            serde_json::from_slice::<Value>(&answer.body).is_ok(),
            "{}",
            shown()
        );
    }
});
