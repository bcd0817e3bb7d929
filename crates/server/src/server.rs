//! Start-up and the listener: open the store, prepare keys, bind, serve over HTTPS (or HTTP), shut down cleanly.

use crate::app::{Areas, app};
use crate::chat::{self, ChatHub, ChatState, StreamLimits};
use crate::face::{FaceService, FaceState};
use crate::platform::bootstrap::{self, StartError};
use crate::platform::clock::Clock;
use crate::platform::config::{Config, TlsMode};
use crate::platform::connections::{Capped, ConnectionCaps};
use crate::platform::flood::{Denials, Typing};
use crate::platform::keyring::Keys;
use crate::platform::ratelimit::AuthFailures;
use crate::platform::state::{AppState, Inner};
use crate::platform::{metrics, tls};
use axum::Router;
use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::RustlsConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tessera_store::audit::AuditWriter;
use tokio::task::JoinHandle;

/// A started server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its state (tests use it to move the clock).
    pub state: AppState,
    /// The face engine, to say at start-up whether it serves.
    face: Arc<FaceService>,
    /// The application it serves, for callers that drive it in process.
    router: Router,
    /// The CA certificate clients should trust, in `auto` TLS mode.
    pub ca_cert: Option<PathBuf>,
    /// Renews the generated certificate, in `auto` TLS mode.
    renewal: Option<JoinHandle<()>>,
    handle: Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
    maintenance: JoinHandle<()>,
    chat_events: JoinHandle<()>,
    denials: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish (up to 10 s), and waits for the listener to end.
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        self.maintenance.abort();
        self.chat_events.abort();
        self.denials.abort();
        if let Some(renewal) = &self.renewal {
            renewal.abort();
        }
        let served = self.task.await;
        // The repeats of refusals still folded are written before the node goes.
        for event in self.state.denials.closed(true) {
            if let Err(e) = self.state.audit.record(event).await {
                tracing::warn!(error = %e, "writing folded refusals failed");
            }
        }
        // A stopped node's last events are vouched for too.
        if let Err(e) = checkpoint_audit(&self.state).await {
            tracing::warn!(error = %e, "signing the final audit checkpoint failed");
        }
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StartError(format!("server error: {e}"))),
            Err(e) => Err(StartError(format!("server task failed: {e}"))),
        }
    }

    /// The application this node serves, to drive in process (the `http_api` fuzzer does).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Why this node's face engine does not serve, if it does not.
    pub fn face_unavailable_reason(&self) -> Option<&str> {
        self.face.unavailable_reason()
    }

    /// The base URL clients use.
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_cert.is_some() || self.state.config.tls != TlsMode::Off {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
}

/// Opens everything and starts listening; returns once the socket is bound.
pub async fn start(config: Config, clock: Clock) -> Result<Running, StartError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    bootstrap::private_dir(&config.data_dir)?;
    let store = tessera_store::open(&config.database_url).await.map_err(|e| {
        StartError(format!(
            "cannot open the database {}: {e}",
            tessera_store::redact_url(&config.database_url)
        ))
    })?;
    let master = bootstrap::master_key(&config)?;
    let admin_key = bootstrap::admin_key(&config, store.as_ref()).await?;
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(|e| StartError(e.to_string()))?;
    let keys = Keys::open(
        store.clone(),
        master,
        &config.issuer(addr),
        config.key_refresh,
        clock.now(),
    )
    .await
    .map_err(|e| StartError(format!("cannot load the signing keys: {e}")))?;
    let face = Arc::new(FaceService::start(&config.face).await);
    let state = AppState::new(Inner {
        audit: AuditWriter::start(store.clone()),
        store,
        keys,
        clock,
        auth_failures: AuthFailures::new(config.auth_failure_limit, config.auth_failure_window),
        admin_key,
        metrics: metrics::handle(),
        denials: Denials::new(config.refusal_aggregation, config.max_refusals_per_minute),
        typing: Typing::new(config.max_typing_per_minute),
        config: config.clone(),
    });
    let chat = ChatState {
        app: state.clone(),
        hub: Arc::new(ChatHub::new(StreamLimits {
            streams_per_identity: config.max_event_streams_per_identity,
            replays_per_minute: config.max_event_replays_per_minute,
        })),
    };
    let maintenance = tokio::spawn(maintain(state.clone()));
    let chat_events = tokio::spawn(chat::tail(state.clone(), chat.hub.clone()));
    let denials = tokio::spawn(flush_denials(state.clone()));
    let router = app(
        &state,
        Areas {
            chat,
            face: FaceState {
                app: state.clone(),
                engine: face.clone(),
            },
        },
    );

    let handle = Handle::new();
    let service = router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let io = |e: std::io::Error| StartError(format!("listener: {e}"));
    let caps = ConnectionCaps::new(config.max_connections_per_address, config.max_connections);
    let (task, ca_cert, renewal) = match &config.tls {
        TlsMode::Off => {
            let server = bounded(axum_server::from_tcp(listener).map_err(io)?, &config)
                .map(|plain| Capped::new(plain, caps, config.close_linger))
                .handle(handle.clone());
            (tokio::spawn(server.serve(service)), None, None)
        }
        mode => {
            let (cert, key, generated) = match mode {
                TlsMode::Files { cert, key } => (cert.clone(), key.clone(), None),
                TlsMode::Auto { hostnames } => {
                    // The Communication accounts' own endpoints, when they have them.
                    let mut names = hostnames.clone();
                    names.extend(config.acs_host_suffix.iter().map(|suffix| format!("*.{suffix}")));
                    let local = LocalTls {
                        dir: config.data_dir.join("tls"),
                        names,
                        validity: config.certificate_validity,
                    };
                    let issued = local.ensure(&state)?;
                    if let Some(why) = issued.new_ca {
                        tracing::warn!(
                            ca = %issued.files.ca_cert.display(),
                            "the local CA was issued anew because {why}: clients must trust the new CA certificate"
                        );
                    }
                    let files = issued.files.clone();
                    (files.server_cert, files.server_key, Some((local, issued)))
                }
                TlsMode::Off => unreachable!("handled above"),
            };
            let rustls = RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| StartError(format!("cannot load TLS certificate {}: {e}", cert.display())))?;
            let (ca, renewal) = match generated {
                Some((local, issued)) => {
                    let ca = issued.files.ca_cert.clone();
                    let renewal = tokio::spawn(local.renew(state.clone(), rustls.clone(), issued.renew_at));
                    (Some(ca), Some(renewal))
                }
                None => (None, None),
            };
            let server = bounded(
                axum_server::from_tcp_rustls(listener, rustls).map_err(io)?,
                &config,
            )
            .map(|tls| tls.acceptor(Capped::new(DefaultAcceptor::new(), caps, config.close_linger)))
            .handle(handle.clone());
            (tokio::spawn(server.serve(service)), ca, renewal)
        }
    };
    Ok(Running {
        addr,
        state,
        face,
        router,
        ca_cert,
        renewal,
        handle,
        task,
        maintenance,
        chat_events,
        denials,
    })
}

/// Writes the repeats of closed windows every few seconds, until the node stops.
async fn flush_denials(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for event in state.denials.closed(false) {
            if let Err(e) = state.audit.record(event).await {
                tracing::warn!(error = %e, "writing folded refusals failed");
            }
        }
    }
}

/// The generated TLS material of `auto` mode and what it is made for.
struct LocalTls {
    dir: PathBuf,
    names: Vec<String>,
    validity: std::time::Duration,
}

impl LocalTls {
    /// A current certificate (see `tls`).
    fn ensure(&self, state: &AppState) -> Result<tls::Issued, StartError> {
        tls::ensure_local_ca(
            &self.dir,
            &self.names,
            state.keys.master(),
            state.clock.now(),
            self.validity,
        )
    }

    /// Renews the certificate when it is due, and has the listener serve the new one; never returns.
    async fn renew(self, state: AppState, listener: RustlsConfig, mut due: tessera_core::Timestamp) {
        loop {
            // Woken at least hourly, so that a clock moved meanwhile is noticed.
            let wait = (due.millis() - state.clock.now().millis()).clamp(0, 3_600_000);
            tokio::time::sleep(std::time::Duration::from_millis(wait.unsigned_abs())).await;
            if state.clock.now() < due {
                continue;
            }
            let renewed = match self.ensure(&state) {
                Ok(issued) => {
                    let loaded = listener
                        .reload_from_pem_file(&issued.files.server_cert, &issued.files.server_key)
                        .await;
                    loaded.map(|()| issued).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match renewed {
                Ok(issued) => {
                    if let Some(why) = issued.new_ca {
                        tracing::warn!(
                            "the local CA was issued anew because {why}: clients must trust the new CA certificate"
                        );
                    }
                    if issued.renewed {
                        tracing::info!(not_after = %issued.not_after, "the TLS certificate was renewed");
                    } else {
                        tracing::debug!(not_after = %issued.not_after, "the TLS certificate is still current");
                    }
                    due = issued.renew_at;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the TLS certificate failed; retrying in a minute");
                    due = tessera_core::Timestamp::from_millis(state.clock.now().millis() + 60_000);
                }
            }
        }
    }
}

/// Bounds how long a connection holds this node without a request: the TLS handshake (axum-server's 10 s), then
/// the request's headers, including hyper's protocol detection before them, and the idle time between HTTP/1.1
/// requests, each within `header_read_timeout`. A client that is too slow is disconnected.
fn bounded<A: axum_server::Address, Acceptor>(
    mut server: axum_server::Server<A, Acceptor>,
    config: &Config,
) -> axum_server::Server<A, Acceptor> {
    server
        .http_builder()
        .http1()
        .header_read_timeout(config.header_read_timeout);
    server.first_request_timeout(config.header_read_timeout)
}

/// How often expired face ids (and their templates) are deleted.
const FACE_ID_PURGE_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// Background upkeep: rereads the signing keys every `key_refresh`, and deletes expired face ids every minute
/// (a face id is never usable after its expiry either way; this bounds how long its template is kept).
async fn maintain(state: AppState) {
    let mut keys = tokio::time::interval(state.config.key_refresh);
    keys.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keys.tick().await;
    let mut faces = tokio::time::interval(FACE_ID_PURGE_PERIOD);
    faces.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoints = tokio::time::interval(state.config.audit_checkpoint);
    checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = checkpoints.tick() => {
                if let Err(e) = checkpoint_audit(&state).await {
                    tracing::warn!(error = %e, "signing an audit checkpoint failed; retrying later");
                }
            }
            _ = keys.tick() => {
                if let Err(e) = state.keys.maintain(state.clock.now()).await {
                    tracing::warn!(error = %e, "signing key refresh failed; keeping the keys loaded before");
                }
            }
            _ = faces.tick() => match state.store.purge_detections(state.clock.now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired face ids deleted"),
                Err(e) => tracing::warn!(error = %e, "deleting expired face ids failed; retrying later"),
            },
        }
    }
}

/// Signs and keeps a checkpoint of the audit chain's head, if it moved since the latest one (any node may; one
/// per head is kept). `tessera audit verify` checks the latest, so that events deleted after it are detected.
pub(crate) async fn checkpoint_audit(state: &AppState) -> Result<(), String> {
    let head = state.store.audit_head().await.map_err(|e| e.to_string())?;
    let latest = state
        .store
        .latest_audit_checkpoint()
        .await
        .map_err(|e| e.to_string())?;
    if head.seq == 0 || latest.is_some_and(|c| c.seq >= head.seq) {
        return Ok(());
    }
    let now = state.clock.now();
    let claims = tessera_core::claims::CheckpointClaims {
        iss: state.keys.current().issuer().to_owned(),
        aud: <tessera_core::claims::CheckpointClaims as tessera_core::claims::TokenType>::AUDIENCE.to_owned(),
        seq: head.seq,
        head: hex::encode(head.hash),
        iat: now.secs(),
        nbf: now.secs(),
        exp: now.secs() + tessera_core::claims::CHECKPOINT_LIFETIME_SECS,
    };
    let token = state.keys.current().sign(&claims).map_err(|e| e.to_string())?;
    let checkpoint = tessera_store::AuditCheckpoint {
        seq: claims.seq,
        head: claims.head,
        token,
        created_at: now,
    };
    state
        .store
        .add_audit_checkpoint(&checkpoint)
        .await
        .map_err(|e| e.to_string())
}

/// Runs the service until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let running = start(config, Clock::default()).await?;
    eprintln!("tessera: listening on {}", running.base_url());
    if let Some(ca) = &running.ca_cert {
        eprintln!(
            "tessera: TLS certificate signed by the local CA {} (trust it in clients)",
            ca.display()
        );
    }
    eprintln!(
        "tessera: database {}",
        tessera_store::redact_url(&running.state.config.database_url)
    );
    match running.face.unavailable_reason() {
        None => eprintln!(
            "tessera: face engine ready (models in {})",
            running.state.config.face.models_dir.display()
        ),
        Some(reason) => eprintln!("tessera: face engine unavailable, the Face API answers 503: {reason}"),
    }
    shutdown_signal().await;
    eprintln!("tessera: shutting down");
    running.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
