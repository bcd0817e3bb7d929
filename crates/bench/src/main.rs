//! `tessera-bench`, run by `cargo xtask bench [--seconds N] [--chat-only]`: the service benchmark. It builds the
//! release binary, starts it on plain HTTP with the hidden baseline routes and a fresh SQLite database, and drives
//! it from this process over loopback:
//!
//! - `POST /bench/noop`: the HTTP floor (routing, connection handling, the load generator itself);
//! - `POST /bench/sign`: the signing floor (an ES256 token of the same size as a limited access token);
//! - `POST /sts/v1.0/issueLimitedAccessToken`: authentication, policy, signing and the audit event fsync'd
//!   before the answer (group commit);
//! - `POST /sts/v1.0/limitedAccess/check`: gate decisions (verify, ISV lookup, policy, audited);
//! - `POST /face/v1.0/detect?returnFaceId=false` on `obama3.jpg`: the face engine (decode, detect, embed) through
//!   its bounded pool, at 1, 2 and 64 requests in flight (the last past the queue: requests/s at saturation, and
//!   the 503 `EngineBusy` refusals as errors); the engine alone, and identification at 1k–100k persons, are in
//!   `cargo bench -p tessera-face`;
//! - Communication identities ([`crate::identity`]): identity creation and user token issuance (ACS HMAC
//!   signed, audited), the live user token check, and identity lookups at 10 thousand and 1 million identities;
//! - chat ([`crate::chat`]): messages sent/s and fan-out latency to 1, 100 and 1,000 subscribers of a
//!   thread, and sends with and without their audit (`audit_chat_sends`) (`--chat-only` runs these alone, with
//!   their HTTP floor).
//!
//! All run in one process against one server, so the ratios between them hold on a noisy shared machine even
//! when the absolute figures do not.

mod chat;
mod identity;

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use identity::{Comm, Level};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "bench-admin-key-0123456789";
const ISV: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/bench/providers/Microsoft.CognitiveServices/accounts/isv";
const CLIENT: &str = "/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/bench/providers/Microsoft.CognitiveServices/accounts/client";
/// The concurrencies of the main points.
const CONCURRENCIES: [usize; 3] = [1, 16, 64];
/// The concurrencies of face detection: one request, the cores, and past the engine's queue (saturation).
const FACE_CONCURRENCIES: [usize; 3] = [1, 2, 64];
/// The face detection point's name.
const FACE_POINT: &str = "detect (1 face, no face id)";

/// The configuration every benchmark server starts with: the load generator is one client on one address, with
/// up to 1,000 event streams open at once, so the per-address connection cap (256 by default) is raised; every
/// other limit keeps its default.
const BENCH_CONFIG: &str = "max_connections_per_address = 4096\nmax_connections = 8192\n";

/// The server under test: the release binary, its data directory and its port, the same across restarts.
pub struct Service {
    binary: PathBuf,
    data_dir: PathBuf,
    port: u16,
}

impl Service {
    /// Starts the server (it is stopped when the answer is dropped) and waits until it is ready.
    pub async fn start(&self, client: &reqwest::Client) -> Result<Server> {
        self.start_configured(client, None).await
    }

    /// [`Self::start`] with the TOML configuration `config` added to [`BENCH_CONFIG`].
    pub async fn start_configured(&self, client: &reqwest::Client, config: Option<&str>) -> Result<Server> {
        let log = std::fs::File::create(self.log_path())?;
        let mut command = Command::new(&self.binary);
        command.args(["serve", "--http", "--bench-routes", "--listen", &self.host()]);
        let path = self.data_dir.join("bench-config.toml");
        std::fs::write(&path, format!("{BENCH_CONFIG}{}", config.unwrap_or_default()))?;
        command.arg("--config").arg(path);
        let child = command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("TESSERA_ADMIN_KEY", ADMIN_KEY)
            .env("TESSERA_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        let mut server = Server(child);
        // The first start fetches the face models with pip.
        for _ in 0..1200 {
            if client
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(server);
            }
            if let Some(status) = server.0.try_wait()? {
                bail!("the server exited ({status}): {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not become ready: {}", self.log())
    }

    /// `127.0.0.1:PORT`, the `Host` that requests carry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("tessera.db")
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.join("bench-server.log")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// A running server, killed when dropped.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One measured point.
pub struct Point {
    /// What was measured.
    pub name: &'static str,
    /// Requests in flight.
    pub concurrency: usize,
    /// Successful requests per second.
    pub per_sec: f64,
    /// Median latency of the successful requests.
    pub p50_ms: f64,
    /// 99th percentile latency of the successful requests.
    pub p99_ms: f64,
    /// Failed requests.
    pub errors: u64,
}

/// Runs the benchmark.
/// The load generator shares the machine with the server: keep its allocations cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

/// Runs the benchmark as `args` say.
fn run(args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask bench [--seconds N] [--chat-only]";
    let (mut seconds, mut chat_only) = (5, false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context(usage)?
                    .parse()
                    .context("--seconds takes a number")?
            }
            "--chat-only" => chat_only = true,
            _ => bail!(usage),
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .context("workspace root")?
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "tessera-cli"])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), Into::into);
    let data = tempfile::tempdir()?;
    let service = Service {
        binary: target.join("release/tessera"),
        data_dir: data.path().to_owned(),
        port: std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
    };
    let duration = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (points, chat, audited, levels) = runtime.block_on(async {
        let client = client()?;
        let server = service.start(&client).await?;
        let base = service.base();
        if chat_only {
            let comm = Comm::setup(&service, &client).await?;
            let noop = format!("{base}/bench/noop");
            let floor = run_point("noop (HTTP floor)", chat::SENDERS, duration, &client, move |c| {
                c.post(&noop)
            })
            .await;
            let chat = chat::levels(&comm, &base, &client, duration).await?;
            let (_, audited) = chat::audited_sends(&service, server, &comm, duration).await?;
            return anyhow::Ok((vec![floor], chat, audited, Vec::new()));
        }
        let (points, comm) = measure(&service, &client, duration).await?;
        // Before the lookups, which replace the identities.
        let chat = chat::levels(&comm, &base, &client, duration).await?;
        let (server, audited) = chat::audited_sends(&service, server, &comm, duration).await?;
        let levels = identity::lookups(&service, server, &comm, duration).await?;
        anyhow::Ok((points, chat, audited, levels))
    })?;
    report(&points, &levels, seconds);
    let floor = points
        .iter()
        .find(|p| p.name.starts_with("noop") && p.concurrency == chat::SENDERS)
        .map(|p| p.per_sec);
    chat::report(&chat, floor);
    chat::report_audited(&audited);
    Ok(())
}

/// A load generator's HTTP client.
pub fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(256).build()?)
}

/// The main points; also answers the Communication account, for the lookups that follow.
async fn measure(
    service: &Service,
    client: &reqwest::Client,
    duration: Duration,
) -> Result<(Vec<Point>, Comm)> {
    let base = service.base();
    let (isv_key, client_key) = setup(client, &base).await?;
    let comm = Comm::setup(service, client).await?;
    let lat_url = format!("{base}/sts/v1.0/issueLimitedAccessToken?expiredTime=3600");
    let lat_body =
        serde_json::json!({"resourceId": CLIENT, "featureFlags": ["Face.Identification"]}).to_string();
    let token = client
        .post(&lat_url)
        .header("Ocp-Apim-Subscription-Key", &isv_key)
        .header("Content-Type", "application/json")
        .body(lat_body.clone())
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;

    let mut points = Vec::new();
    for concurrency in CONCURRENCIES {
        let noop = format!("{base}/bench/noop");
        points.push(
            run_point("noop (HTTP floor)", concurrency, duration, client, move |c| {
                c.post(&noop)
            })
            .await,
        );
        let sign = format!("{base}/bench/sign");
        points.push(
            run_point(
                "sign only (signing floor)",
                concurrency,
                duration,
                client,
                move |c| c.post(&sign),
            )
            .await,
        );
        let (url, key, body) = (lat_url.clone(), isv_key.clone(), lat_body.clone());
        points.push(
            run_point(
                "issueLimitedAccessToken",
                concurrency,
                duration,
                client,
                move |c| {
                    c.post(&url)
                        .header("Ocp-Apim-Subscription-Key", &key)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                },
            )
            .await,
        );
        points.extend(comm.points(concurrency, duration, client).await);
    }
    // Detection without face ids (ungated) on the real engine: one face per image; beyond the engine's workers and
    // queue the server refuses at once with 503 EngineBusy, counted as errors.
    let photo =
        tokio::task::spawn_blocking(|| std::fs::read(tessera_testkit::face_fixtures().obama3)).await??;
    for concurrency in FACE_CONCURRENCIES {
        let (url, key, photo) = (
            format!("{base}/face/v1.0/detect?returnFaceId=false"),
            client_key.clone(),
            photo.clone(),
        );
        points.push(
            run_point(FACE_POINT, concurrency, duration, client, move |c| {
                c.post(&url)
                    .header("Ocp-Apim-Subscription-Key", &key)
                    .header("Content-Type", "application/octet-stream")
                    .body(photo.clone())
            })
            .await,
        );
    }
    for concurrency in [16, 64] {
        let (url, key, lat) = (
            format!("{base}/sts/v1.0/limitedAccess/check"),
            client_key.clone(),
            token.clone(),
        );
        points.push(
            run_point(
                "gate check (decisions)",
                concurrency,
                duration,
                client,
                move |c| {
                    c.post(&url)
                        .header("Ocp-Apim-Subscription-Key", &key)
                        .header("LimitedAccessToken", format!("Bearer {lat}"))
                        .header("Content-Type", "application/json")
                        .body(r#"{"featureFlag":"Face.Identification"}"#)
                },
            )
            .await,
        );
    }
    Ok((points, comm))
}

/// Creates (`PUT /admin{rid}`) or updates an account with the admin key; its JSON answer.
pub async fn admin_put(
    client: &reqwest::Client,
    base: &str,
    rid: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let resp = client
        .put(format!("{base}/admin{rid}"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("PUT /admin{rid}: {status} {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("PUT /admin{rid}: {text}"))
}

/// `keys.key1` of an account as the admin API answers it.
pub fn key1(account: &serde_json::Value) -> Result<String> {
    account["keys"]["key1"]
        .as_str()
        .map(str::to_owned)
        .context("account key")
}

/// The ISV and its client; their primary keys.
async fn setup(client: &reqwest::Client, base: &str) -> Result<(String, String)> {
    let isv = admin_put(
        client,
        base,
        ISV,
        serde_json::json!({"approvedFeatureFlags": ["Face.Identification"]}),
    )
    .await?;
    let cl = admin_put(client, base, CLIENT, serde_json::json!({})).await?;
    admin_put(
        client,
        base,
        &format!("{ISV}/isv"),
        serde_json::json!({"featureFlags": ["Face.Identification"]}),
    )
    .await?;
    Ok((key1(&isv)?, key1(&cl)?))
}

/// Drives `request` from `concurrency` workers for `duration`, after half a second of warm-up.
pub async fn run_point<F>(
    name: &'static str,
    concurrency: usize,
    duration: Duration,
    client: &reqwest::Client,
    request: F,
) -> Point
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let warmup = Instant::now() + Duration::from_millis(500);
    let deadline = warmup + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let mut errors = 0u64;
                loop {
                    let started = Instant::now();
                    if started >= deadline {
                        break;
                    }
                    let ok = match request(&client).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if started >= warmup {
                        if ok {
                            let _ = hist.record(started.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (hist, errors)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    for w in workers {
        if let Ok((h, e)) = w.await {
            let _ = hist.add(&h);
            errors += e;
        }
    }
    Point {
        name,
        concurrency,
        per_sec: hist.len() as f64 / duration.as_secs_f64(),
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
    }
}

/// The header of a table of points, after `prefix` (extra leading columns, with their separator).
pub fn print_header(prefix: &str) {
    println!(
        "{prefix}{:<28} {:>5} {:>10} {:>9} {:>9} {:>7}",
        "route", "conc", "req/s", "p50 ms", "p99 ms", "errors"
    );
}

/// One row of a table of points, after `prefix` (extra leading columns, with their separator).
pub fn print_row(prefix: &str, p: &Point) {
    println!(
        "{prefix}{:<28} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>7}",
        p.name, p.concurrency, p.per_sec, p.p50_ms, p.p99_ms, p.errors
    );
}

fn report(points: &[Point], levels: &[Level], seconds: u64) {
    println!(
        "\nTessera bench: {seconds} s per point, HTTP/1.1 over loopback, SQLite (WAL, synchronous=FULL)\n"
    );
    print_header("");
    for p in points {
        print_row("", p);
    }
    let rate = |name: &str, c: usize| {
        points
            .iter()
            .find(|p| p.name.starts_with(name) && p.concurrency == c)
            .map(|p| p.per_sec)
    };
    println!();
    for c in CONCURRENCIES {
        if let (Some(issue), Some(sign), Some(noop)) =
            (rate("issueLimited", c), rate("sign only", c), rate("noop", c))
        {
            println!(
                "concurrency {c:>2}: issuance = {:.2} x signing floor, {:.2} x HTTP floor",
                issue / sign,
                issue / noop
            );
        }
    }
    for c in CONCURRENCIES {
        let Some(noop) = rate("noop", c) else { continue };
        let ratios: Vec<String> = identity::MAIN_POINTS
            .iter()
            .filter_map(|name| rate(name, c).map(|r| format!("{name} = {:.2} x", r / noop)))
            .collect();
        if ratios.is_empty() {
            continue;
        }
        println!("concurrency {c:>2}: {} HTTP floor", ratios.join(", "));
    }
    if let (Some(one), Some(noop)) = (rate(FACE_POINT, 1), rate("noop", 1)) {
        println!(
            "face detect, one request at a time: {:.4} x HTTP floor; at saturation (64 in flight): {:.1} req/s",
            one / noop,
            rate(FACE_POINT, 64).unwrap_or_default()
        );
    }
    if !levels.is_empty() {
        identity::report(levels);
    }
}
