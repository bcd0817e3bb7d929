//! The service benchmark. It builds the release binary, starts it on plain HTTP with the hidden baseline routes
//! and a fresh SQLite database, and drives it from this process over loopback:
//!
//! - `POST /bench/noop`: the HTTP floor (routing, connection handling, the load generator itself);
//! - `POST /bench/sign`: the signing floor (an ES256 token of the same size as a limited access token);
//! - `POST /sts/v1.0/issueLimitedAccessToken`: authentication, policy, signing and the audit event fsync'd
//!   before the answer (group commit);
//! - `POST /sts/v1.0/limitedAccess/check`: gate decisions (verify, ISV lookup, policy, audited).
//!
//! All run in one process against one server, so the ratios between them hold on a noisy shared machine even
//! when the absolute figures do not.

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "bench-admin-key-0123456789";
const ISV: &str = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/bench/providers/Microsoft.CognitiveServices/accounts/isv";
const CLIENT: &str = "/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/bench/providers/Microsoft.CognitiveServices/accounts/client";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One measured point.
struct Point {
    name: &'static str,
    concurrency: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = match args {
        [flag, n] if flag == "--seconds" => n.parse().context("--seconds takes a number")?,
        [] => 5,
        _ => bail!("usage: cargo xtask bench [--seconds N]"),
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
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
    let binary = target.join("release/tessera");
    let data = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = Server(
        Command::new(&binary)
            .args([
                "serve",
                "--http",
                "--bench-routes",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--data-dir")
            .arg(data.path())
            .env("TESSERA_ADMIN_KEY", ADMIN_KEY)
            .env("TESSERA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let points = runtime.block_on(measure(&base, Duration::from_secs(seconds)))?;
    drop(server);
    report(&points, seconds);
    Ok(())
}

async fn measure(base: &str, duration: Duration) -> Result<Vec<Point>> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    wait_ready(&client, base).await?;
    let (isv_key, client_key) = setup(&client, base).await?;
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
    for concurrency in [1, 16, 64] {
        let noop = format!("{base}/bench/noop");
        points.push(
            run_point("noop (HTTP floor)", concurrency, duration, &client, move |c| {
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
                &client,
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
                &client,
                move |c| {
                    c.post(&url)
                        .header("Ocp-Apim-Subscription-Key", &key)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                },
            )
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
                &client,
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
    Ok(points)
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> Result<()> {
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not become ready")
}

async fn setup(client: &reqwest::Client, base: &str) -> Result<(String, String)> {
    let put = |rid: &str, body: serde_json::Value| {
        client
            .put(format!("{base}/admin{rid}"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    let isv: serde_json::Value = put(
        ISV,
        serde_json::json!({"approvedFeatureFlags": ["Face.Identification"]}),
    )
    .await?
    .error_for_status()?
    .json()
    .await?;
    let cl: serde_json::Value = put(CLIENT, serde_json::json!({}))
        .await?
        .error_for_status()?
        .json()
        .await?;
    client
        .put(format!("{base}/admin{ISV}/isv"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({"featureFlags": ["Face.Identification"]}))
        .send()
        .await?
        .error_for_status()?;
    let key = |v: &serde_json::Value| {
        v["keys"]["key1"]
            .as_str()
            .map(str::to_owned)
            .context("account key")
    };
    Ok((key(&isv)?, key(&cl)?))
}

async fn run_point<F>(
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

fn report(points: &[Point], seconds: u64) {
    println!(
        "\nTessera bench: {seconds} s per point, HTTP/1.1 over loopback, SQLite (WAL, synchronous=FULL)\n"
    );
    println!(
        "{:<28} {:>5} {:>10} {:>9} {:>9} {:>7}",
        "route", "conc", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for p in points {
        println!(
            "{:<28} {:>5} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            p.name, p.concurrency, p.per_sec, p.p50_ms, p.p99_ms, p.errors
        );
    }
    let rate = |name: &str, c: usize| {
        points
            .iter()
            .find(|p| p.name.starts_with(name) && p.concurrency == c)
            .map(|p| p.per_sec)
    };
    println!();
    for c in [1, 16, 64] {
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
}
