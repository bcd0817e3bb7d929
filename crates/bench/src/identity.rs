//! The Communication identity part of `cargo xtask bench`.
//!
//! Main points, at the same concurrencies as the others and compared with the HTTP floor of the same run:
//! - `identity create`: `POST /identities` with no body, ACS HMAC signed (insert, audit event fsync'd);
//! - `user token issue`: `POST /identities/{id}/:issueAccessToken` for `chat`, ACS HMAC signed (last issuance
//!   recorded, token signed, audit event fsync'd);
//! - `user token check`: `GET /access/me` with a user token (verify, identity and account looked up live).
//!
//! Then identity lookups (`GET /v1/identities/{id}` and `GET /v1/identities?name=` for random existing
//! identities) with 10 thousand and with 1 million identities in the database, which should cost the same. The
//! identities are written straight into the SQLite file while the server is stopped (one `INSERT … SELECT`
//! over a recursive sequence): creating a million over HTTP would take many minutes. Their ids and names are
//! derived from their number, so that the load generator can pick existing ones at random.

use crate::{Point, Server, Service, admin_put, client, key1, print_header, print_row, run_point};
use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteSynchronous};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_core::Timestamp;
use tessera_core::acs_hmac;

/// The Communication account whose trusted service the load generator plays.
const COMM: &str = "/subscriptions/33333333-3333-4333-8333-333333333333/resourceGroups/bench/providers/Microsoft.Communication/communicationServices/chat";
/// The ACS API version the SDKs send.
const API_VERSION: &str = "api-version=2023-10-01";
/// The names of the main points, for the report's ratios.
pub const MAIN_POINTS: [&str; 3] = ["identity create", "user token issue", "user token check"];
/// How many identities the lookups run against.
const LEVELS: [u64; 2] = [10_000, 1_000_000];
/// Concurrency of the lookups.
const LOOKUP_CONCURRENCY: usize = 16;

/// Now, by the wall clock. `x-ms-date` must be within five minutes of the server's clock, so the load
/// generator, like any signing client, reads the real time (read here only).
#[expect(
    clippy::disallowed_methods,
    reason = "a signing client needs the wall clock; the ban is for the service's code"
)]
fn wall_clock() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

/// A request body and its `x-ms-content-sha256`, computed once.
struct Body {
    text: &'static str,
    hash: String,
}

impl Body {
    fn new(text: &'static str) -> Self {
        Self {
            text,
            hash: acs_hmac::content_hash(text.as_bytes()),
        }
    }
}

/// Signs requests with a Communication account's access key, as the Azure SDKs do. The `x-ms-date` is
/// formatted once a second; the signature is computed for every request.
struct Signer {
    key: Vec<u8>,
    base: String,
    host: String,
    date: Mutex<(i64, Arc<str>)>,
}

impl Signer {
    fn date(&self) -> Arc<str> {
        let now = wall_clock().secs();
        let mut cached = self.date.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.0 != now {
            *cached = (now, acs_hmac::http_date(Timestamp::from_secs(now)).into());
        }
        cached.1.clone()
    }

    /// `method path_and_query` with `body`, signed.
    fn request(
        &self,
        client: &reqwest::Client,
        method: Method,
        path_and_query: &str,
        body: &Body,
    ) -> reqwest::RequestBuilder {
        let date = self.date();
        let signature = acs_hmac::sign(
            &self.key,
            method.as_str(),
            path_and_query,
            &date,
            &self.host,
            &body.hash,
        );
        client
            .request(method, format!("{}{path_and_query}", self.base))
            .header("x-ms-date", &*date)
            .header("x-ms-content-sha256", &body.hash)
            .header(
                "authorization",
                format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
            )
            .header("content-type", "application/json")
            .body(body.text)
    }

    /// Sends a signed request once; its JSON answer, which must have `status`.
    async fn call(
        &self,
        client: &reqwest::Client,
        method: Method,
        path_and_query: &str,
        body: &Body,
        status: reqwest::StatusCode,
    ) -> Result<serde_json::Value> {
        let resp = self
            .request(client, method.clone(), path_and_query, body)
            .send()
            .await?;
        let (got, text) = (resp.status(), resp.text().await?);
        if got != status {
            bail!("{method} {path_and_query}: {got} {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path_and_query}: {text}"))
    }
}

/// A path segment for an identity id (`:` percent-encoded, as the SDKs send it).
fn segment(id: &str) -> String {
    id.replace(':', "%3A")
}

/// The Communication account, one identity of it and a user token of that identity.
pub struct Comm {
    signer: Arc<Signer>,
    /// The account's GUID, as the identities table keeps it.
    account_id: String,
    /// `/identities/{id}/:issueAccessToken?api-version=…` of the identity.
    issue_path: String,
    /// A `chat` token of the identity.
    token: String,
}

impl Comm {
    /// Creates the account, an identity and its token, checking on the way that the signing is accepted.
    pub async fn setup(service: &Service, client: &reqwest::Client) -> Result<Self> {
        let account = admin_put(client, &service.base(), COMM, serde_json::json!({})).await?;
        let account_id = account["id"].as_str().context("account id")?.to_owned();
        let signer = Arc::new(Signer {
            key: STANDARD
                .decode(key1(&account)?)
                .context("access keys are base64")?,
            base: service.base(),
            host: service.host(),
            date: Mutex::new((i64::MIN, "".into())),
        });
        let created = signer
            .call(
                client,
                Method::POST,
                &format!("/identities?{API_VERSION}"),
                &Body::new(""),
                reqwest::StatusCode::CREATED,
            )
            .await?;
        let id = created["identity"]["id"].as_str().context("identity id")?;
        let issue_path = format!("/identities/{}/:issueAccessToken?{API_VERSION}", segment(id));
        let issued = signer
            .call(
                client,
                Method::POST,
                &issue_path,
                &Body::new(ISSUE_BODY),
                reqwest::StatusCode::OK,
            )
            .await?;
        let token = issued["token"].as_str().context("user token")?.to_owned();
        let me = client
            .get(format!("{}/access/me", service.base()))
            .bearer_auth(&token)
            .send()
            .await?;
        if !me.status().is_success() {
            bail!("GET /access/me: {} {}", me.status(), me.text().await?);
        }
        Ok(Self {
            signer,
            account_id,
            issue_path,
            token,
        })
    }

    /// A new identity of the account and a `chat` token of it.
    pub async fn user(&self, client: &reqwest::Client) -> Result<(String, String)> {
        let created = self
            .signer
            .call(
                client,
                Method::POST,
                &format!("/identities?{API_VERSION}"),
                &Body::new(CHAT_USER_BODY),
                reqwest::StatusCode::CREATED,
            )
            .await?;
        let id = created["identity"]["id"].as_str().context("identity id")?;
        let token = created["accessToken"]["token"].as_str().context("user token")?;
        Ok((id.to_owned(), token.to_owned()))
    }

    /// The main identity points at `concurrency`.
    pub async fn points(
        &self,
        concurrency: usize,
        duration: Duration,
        client: &reqwest::Client,
    ) -> Vec<Point> {
        let [create, issue, check] = MAIN_POINTS;
        let (signer, path, body) = (
            self.signer.clone(),
            format!("/identities?{API_VERSION}"),
            Body::new(""),
        );
        let created = run_point(create, concurrency, duration, client, move |c| {
            signer.request(c, Method::POST, &path, &body)
        })
        .await;
        let (signer, path, body) = (
            self.signer.clone(),
            self.issue_path.clone(),
            Body::new(ISSUE_BODY),
        );
        let issued = run_point(issue, concurrency, duration, client, move |c| {
            signer.request(c, Method::POST, &path, &body)
        })
        .await;
        let (url, token) = (format!("{}/access/me", self.signer.base), self.token.clone());
        let checked = run_point(check, concurrency, duration, client, move |c| {
            c.get(&url).bearer_auth(&token)
        })
        .await;
        vec![created, issued, checked]
    }
}

/// Body of the token issuances.
const ISSUE_BODY: &str = r#"{"scopes":["chat"]}"#;
/// Body of an identity creation with a `chat` token.
const CHAT_USER_BODY: &str = r#"{"createTokenWithScopes":["chat"]}"#;

/// The lookups with one number of identities in the database.
pub struct Level {
    /// Identities in the database.
    pub identities: u64,
    /// How long writing them into the database took.
    pub fill: Duration,
    /// Identities removed from the database first.
    pub removed: u64,
    /// By id, then by name.
    pub points: Vec<Point>,
}

/// The id of bench identity `n` (1-based) of `account`, as [`fill`] writes it.
fn bench_id(account: &str, n: u64) -> String {
    format!("8:acs:{account}_{n:08x}-0000-4000-8000-{n:012x}")
}

/// The name of bench identity `n`, as [`fill`] writes it (zero-padded so that rows are inserted in index order).
fn bench_name(n: u64) -> String {
    format!("user{n:07}@bench.example")
}

/// Pseudo-random numbers in `1..=n` shared by the workers of a point (SplitMix64 over an atomic counter).
struct Pick {
    state: AtomicU64,
    n: u64,
}

impl Pick {
    fn new(n: u64, seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
            n,
        }
    }

    fn next(&self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self.state.fetch_add(GAMMA, Ordering::Relaxed).wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % self.n + 1
    }
}

/// Stops `server`, fills the database to each of [`LEVELS`] identities, and measures the lookups on each.
pub async fn lookups(
    service: &Service,
    server: Server,
    comm: &Comm,
    duration: Duration,
) -> Result<Vec<Level>> {
    let mut server = Some(server);
    let mut levels = Vec::new();
    let mut have = 0;
    for want in LEVELS {
        // The server holds the database's lock while it runs.
        drop(server.take());
        let started = Instant::now();
        let removed = fill(service, &comm.account_id, have, want).await?;
        let fill_time = started.elapsed();
        have = want;
        // The connections of the previous server are dead: a fresh pool.
        let client = client()?;
        server = Some(service.start(&client).await?);
        // Both lookups must find what they look for before they are measured.
        let empty = Body::new("");
        let found = comm
            .signer
            .call(
                &client,
                Method::GET,
                &format!("/v1/identities?name={}", bench_name(want).replace('@', "%40")),
                &empty,
                reqwest::StatusCode::OK,
            )
            .await?;
        if found["value"].as_array().is_none_or(Vec::is_empty) {
            bail!("identity {} not found by name: {found}", bench_name(want));
        }
        comm.signer
            .call(
                &client,
                Method::GET,
                &format!("/v1/identities/{}", segment(&bench_id(&comm.account_id, want))),
                &empty,
                reqwest::StatusCode::OK,
            )
            .await?;
        let (signer, account, pick, body) = (
            comm.signer.clone(),
            comm.account_id.clone(),
            Pick::new(want, 1),
            Body::new(""),
        );
        let by_id = run_point("lookup by id", LOOKUP_CONCURRENCY, duration, &client, move |c| {
            let path = format!("/v1/identities/{}", segment(&bench_id(&account, pick.next())));
            signer.request(c, Method::GET, &path, &body)
        })
        .await;
        let (signer, pick) = (comm.signer.clone(), Pick::new(want, 2));
        let by_name = run_point(
            "lookup by name",
            LOOKUP_CONCURRENCY,
            duration,
            &client,
            move |c| {
                let name = bench_name(pick.next()).replace('@', "%40");
                signer.request(c, Method::GET, &format!("/v1/identities?name={name}"), &empty)
            },
        )
        .await;
        levels.push(Level {
            identities: want,
            fill: fill_time,
            removed,
            points: vec![by_id, by_name],
        });
    }
    drop(server);
    Ok(levels)
}

/// Writes bench identities `have + 1 ..= want` of `account` straight into the stopped server's database. The
/// first fill (`have == 0`) first removes the identities that the main points created over HTTP, so that the
/// database holds exactly `want`; answers how many it removed.
async fn fill(service: &Service, account: &str, have: u64, want: u64) -> Result<u64> {
    let options = SqliteConnectOptions::new()
        .filename(service.database())
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-262144");
    let mut db = SqliteConnection::connect_with(&options)
        .await
        .context("cannot open the bench database")?;
    let mut tx = db.begin().await?;
    let removed = if have == 0 {
        sqlx::query("DELETE FROM identities")
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        0
    };
    sqlx::query(
        "INSERT INTO identities (id, account_id, name, kind, created_at, revocation, deleted_at)
         WITH RECURSIVE seq(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?2)
         SELECT '8:acs:' || ?3 || '_' || printf('%08x-0000-4000-8000-%012x', n, n), ?3,
                printf('user%07d@bench.example', n), 'human', ?4, 0, NULL
         FROM seq",
    )
    .bind(i64::try_from(have + 1)?)
    .bind(i64::try_from(want)?)
    .bind(account)
    .bind(wall_clock().millis())
    .execute(&mut *tx)
    .await
    .context("cannot insert the bench identities")?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM identities")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    if u64::try_from(count)? != want {
        bail!("the bench database holds {count} identities, not {want}");
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut db)
        .await?;
    db.close().await?;
    Ok(removed)
}

/// Prints the lookups and how their cost moved from the first level to the last.
pub fn report(levels: &[Level]) {
    println!(
        "\nIdentity lookups, concurrency {LOOKUP_CONCURRENCY}, random existing identities (GET /v1/identities/{{id}}, GET /v1/identities?name=):\n"
    );
    print_header(&format!("{:>10} ", "identities"));
    for level in levels {
        for p in &level.points {
            print_row(&format!("{:>10} ", short(level.identities)), p);
        }
    }
    println!();
    for level in levels {
        let removed = match level.removed {
            0 => String::new(),
            n => format!(", after removing the {n} that the main points created over HTTP"),
        };
        println!(
            "{:>4} identities written into the database in {:.1} s{removed}",
            short(level.identities),
            level.fill.as_secs_f64()
        );
    }
    let (Some(first), Some(last)) = (levels.first(), levels.last()) else {
        return;
    };
    for (a, b) in first.points.iter().zip(&last.points) {
        println!(
            "{:<15} {}/{}: req/s {:.2} x, p50 {:.2} x, p99 {:.2} x",
            a.name,
            short(last.identities),
            short(first.identities),
            b.per_sec / a.per_sec,
            b.p50_ms / a.p50_ms,
            b.p99_ms / a.p99_ms
        );
    }
}

/// `10k`, `1M`.
fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
