//! The chat part of `cargo xtask bench`: messages sent per second, and fan-out latency from the send to each
//! subscriber's receipt of the event, with 1, 100 and 1,000 subscribers on one thread.
//!
//! Subscribers are `GET /chat/events` streams (one HTTP/1.1 connection each) of the thread's participants. A
//! thread holds at most 250 participants, so 1,000 subscribers are 200 participants with 5 devices each. Each
//! message's content carries the time its send started (microseconds since the run's start, in this process), so
//! a subscriber measures send → receipt without a second clock. At each level:
//! - `paced`: one sender, 20 messages a second: the fan-out latency of a quiet thread (the send itself, the commit
//!   of the message and its event, the tail's poll of the event log, the fan-out, the SSE write);
//! - `flat out`: 16 senders as fast as the server answers: messages/s, and fan-out latency under that load.
//!
//! Then [`audited_sends`]: what auditing each send (`audit_chat_sends`) costs, sends to a thread of the sender alone
//! on the same database, plain, audited and plain again.
//!
//! Both count deliveries against messages × subscribers (waiting up to [`GRACE`] after the last send for those
//! still on their way), so a lost or lagged event shows. The load generator
//! runs on the same machine and parses every event it receives, so at 1,000 subscribers it competes with the
//! server for the CPU: the figures are the pair's, as a device fleet on loopback would see them.

use crate::identity::Comm;
use crate::{Point, Server, Service, run_point};
use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Subscribers per level.
pub const LEVELS: [usize; 3] = [1, 100, 1000];
/// Most participants a level uses (each with `subscribers / participants` streams).
const MAX_PARTICIPANTS: usize = 200;
/// Messages a second of the paced sender.
const PACED_RATE: u32 = 20;
/// Senders of the flat-out point.
pub const SENDERS: usize = 16;
/// How long subscribers may keep listening after the last send for what is still on its way.
const GRACE: Duration = Duration::from_secs(20);
/// The Chat API version.
const API: &str = "api-version=2024-03-07";
/// The flat-out points' names, by level.
const FLAT_OUT: [&str; 3] = [
    "chat send, 1 subscriber",
    "chat send, 100 subscribers",
    "chat send, 1000 subscribers",
];

/// Fan-out latencies and delivery counts of one phase.
pub struct Fanout {
    /// Send start → receipt, microseconds.
    pub latency: Histogram<u64>,
    /// Events received.
    pub delivered: u64,
    /// Messages sent × subscribers.
    pub expected: u64,
    /// `lagged` notices received.
    pub lagged: u64,
}

/// One level's results.
pub struct Level {
    /// Subscriber streams.
    pub subscribers: usize,
    /// Distinct participants they belong to.
    pub participants: usize,
    /// The paced phase's fan-out.
    pub paced: Fanout,
    /// The flat-out phase: the sends as a point, then the fan-out.
    pub flat_out: Point,
    pub flat_out_fanout: Fanout,
}

/// What a subscriber task counts.
#[derive(Default)]
struct Heard {
    paced: Vec<u64>,
    flat_out: Vec<u64>,
    lagged: u64,
}

/// The clock messages are stamped with.
#[derive(Clone, Copy)]
struct Stamp(Instant);

impl Stamp {
    fn now(self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Message content: the phase (`P` paced, `F` flat out) and the send's start.
fn content(phase: char, micros: u64) -> String {
    format!("@@{phase}{micros}@@")
}

/// Runs the levels with a sender and participants of `comm`'s account.
pub async fn levels(
    comm: &Comm,
    base: &str,
    client: &reqwest::Client,
    duration: Duration,
) -> Result<Vec<Level>> {
    let sender = comm.user(client).await?;
    let mut people = Vec::new();
    for _ in 0..MAX_PARTICIPANTS {
        people.push(comm.user(client).await?);
    }
    let stamp = Stamp(Instant::now());
    let mut levels = Vec::new();
    for (subscribers, name) in LEVELS.into_iter().zip(FLAT_OUT) {
        let participants = subscribers.min(MAX_PARTICIPANTS);
        let thread = create_thread(client, base, &sender.1, &people[..participants]).await?;
        let messages_url = format!(
            "{base}/chat/threads/{}/messages?{API}",
            thread.replace(':', "%3A")
        );
        // A client of its own, so that the streams do not take the senders' pooled connections.
        let streams = reqwest::Client::builder().build()?;
        let received = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for n in 0..subscribers {
            let token = &people[n % participants].1;
            tasks.push(subscribe(&streams, base, token, stamp, received.clone()).await?);
        }
        // The paced phase.
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / PACED_RATE);
        let mut paced_sent = 0;
        while started.elapsed() < duration {
            tick.tick().await;
            let sent = client
                .post(&messages_url)
                .bearer_auth(&sender.1)
                .json(&serde_json::json!({"content": content('P', stamp.now())}))
                .send()
                .await?;
            if !sent.status().is_success() {
                bail!("sending a message: {} {}", sent.status(), sent.text().await?);
            }
            paced_sent += 1;
        }
        // The flat-out phase.
        // Every send counts, those of run_point's warm-up included: each reaches the subscribers.
        let (url, token, sends) = (
            messages_url.clone(),
            sender.1.clone(),
            Arc::new(AtomicU64::new(0)),
        );
        let counted = sends.clone();
        let flat_out = run_point(name, SENDERS, duration, client, move |c| {
            counted.fetch_add(1, Ordering::Relaxed);
            c.post(&url)
                .bearer_auth(&token)
                .json(&serde_json::json!({"content": content('F', stamp.now())}))
        })
        .await;
        let flat_out_sent = sends.load(Ordering::Relaxed) - flat_out.errors;
        let expected = (paced_sent + flat_out_sent) * subscribers as u64;
        let drained = Instant::now() + GRACE;
        while received.load(Ordering::Relaxed) < expected && Instant::now() < drained {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut heard = Vec::new();
        for (stop, task) in tasks {
            stop.store(true, Ordering::Relaxed);
            heard.push(task.await.context("a subscriber task failed")??);
        }
        levels.push(Level {
            subscribers,
            participants,
            paced: fanout(&heard, |h| &h.paced, paced_sent * subscribers as u64)?,
            flat_out_fanout: fanout(&heard, |h| &h.flat_out, flat_out_sent * subscribers as u64)?,
            flat_out,
        });
    }
    Ok(levels)
}

fn fanout(heard: &[Heard], phase: impl Fn(&Heard) -> &Vec<u64>, expected: u64) -> Result<Fanout> {
    let mut latency = Histogram::<u64>::new(3)?;
    let mut delivered = 0;
    for h in heard {
        for &micros in phase(h) {
            latency.record(micros)?;
            delivered += 1;
        }
    }
    Ok(Fanout {
        latency,
        delivered,
        expected,
        lagged: heard.iter().map(|h| h.lagged).sum(),
    })
}

/// A thread created by `creator` with `people` in it; its id.
async fn create_thread(
    client: &reqwest::Client,
    base: &str,
    creator: &str,
    people: &[(String, String)],
) -> Result<String> {
    let participants: Vec<_> = people
        .iter()
        .map(|(id, _)| serde_json::json!({"communicationIdentifier": {"rawId": id, "communicationUser": {"id": id}}}))
        .collect();
    let created = client
        .post(format!("{base}/chat/threads?{API}"))
        .bearer_auth(creator)
        .json(&serde_json::json!({"topic": "bench", "participants": participants}))
        .send()
        .await?;
    let (status, text) = (created.status(), created.text().await?);
    if status != reqwest::StatusCode::CREATED {
        bail!("creating the bench thread: {status} {text}");
    }
    let created: serde_json::Value = serde_json::from_str(&text)?;
    if created["invalidParticipants"]
        .as_array()
        .is_some_and(|v| !v.is_empty())
    {
        bail!("participants refused: {text}");
    }
    created["chatThread"]["id"]
        .as_str()
        .map(str::to_owned)
        .context("thread id")
}

/// Opens an event stream with `token` and reads it until told to stop; what it heard.
async fn subscribe(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    stamp: Stamp,
    received: Arc<AtomicU64>,
) -> Result<(Arc<AtomicBool>, JoinHandle<Result<Heard>>)> {
    let mut response = client
        .get(format!("{base}/chat/events"))
        .bearer_auth(token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("subscribing: {} {}", response.status(), response.text().await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let mut heard = Heard::default();
        let mut carry = String::new();
        while !stopped.load(Ordering::Relaxed) {
            let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
                Err(_) => continue,
                Ok(chunk) => match chunk? {
                    Some(chunk) => chunk,
                    None => bail!("an event stream ended"),
                },
            };
            let now = stamp.now();
            carry.push_str(std::str::from_utf8(&chunk)?);
            // Whole events only; a partial one waits for the next chunk.
            let Some(end) = carry.rfind("\n\n") else { continue };
            for event in carry[..end].split("\n\n") {
                if event.contains("event: lagged") || event.contains("event:lagged") {
                    heard.lagged += 1;
                }
                if let Some((phase, sent)) = stamped(event) {
                    received.fetch_add(1, Ordering::Relaxed);
                    let took = now.saturating_sub(sent);
                    match phase {
                        'P' => heard.paced.push(took),
                        _ => heard.flat_out.push(took),
                    }
                }
            }
            carry.drain(..end + 2);
        }
        Ok(heard)
    });
    Ok((stop, task))
}

/// The phase and send time a message event carries.
fn stamped(event: &str) -> Option<(char, u64)> {
    let at = event.find("@@")? + 2;
    let rest = &event[at..];
    let phase = rest.chars().next()?;
    let digits = &rest[1..rest[1..].find("@@")? + 1];
    Some((phase, digits.parse().ok()?))
}

/// The audited-sends points' names, in the order measured.
const AUDITED: [&str; 3] = [
    "chat send, not audited",
    "chat send, audited",
    "chat send, not audited (again)",
];

/// [`SENDERS`] senders flat out to a thread of the sender alone (no fan-out): on the running server, on the same
/// database restarted with `audit_chat_sends = true`, and restarted plain again, so the audited point sits between
/// two baselines. Answers the last (plain) server and the three points.
pub async fn audited_sends(
    service: &Service,
    server: Server,
    comm: &Comm,
    duration: Duration,
) -> Result<(Server, Vec<Point>)> {
    let mut client = crate::client()?;
    let sender = comm.user(&client).await?;
    let thread = create_thread(&client, &service.base(), &sender.1, &[]).await?;
    let url = format!(
        "{}/chat/threads/{}/messages?{API}",
        service.base(),
        thread.replace(':', "%3A")
    );
    let mut server = Some(server);
    let mut points = Vec::new();
    for (n, name) in AUDITED.into_iter().enumerate() {
        if n > 0 {
            // The server holds the database's lock while it runs; the old connections die with it.
            drop(server.take());
            client = crate::client()?;
            let config = (n == 1).then_some("audit_chat_sends = true\n");
            server = Some(service.start_configured(&client, config).await?);
        }
        let (url, token) = (url.clone(), sender.1.clone());
        points.push(
            run_point(name, SENDERS, duration, &client, move |c| {
                c.post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"content": "audited?"}))
            })
            .await,
        );
    }
    Ok((server.context("the server")?, points))
}

/// Prints the audited-sends points and the audited one against the mean of its two baselines.
pub fn report_audited(points: &[Point]) {
    println!("\nChat sends with and without their audit ({SENDERS} senders, no subscriber)\n");
    for p in points {
        println!(
            "{:<32} {:>9.0} msg/s  p50 {:>6.1}ms  p99 {:>6.1}ms  errors {}",
            p.name, p.per_sec, p.p50_ms, p.p99_ms, p.errors
        );
    }
    if let [before, audited, after] = points {
        let baseline = f64::midpoint(before.per_sec, after.per_sec);
        println!(
            "\naudited sends/s = {:.3} x unaudited (the mean of the runs before and after); p50 {:.2} x",
            audited.per_sec / baseline,
            audited.p50_ms / f64::midpoint(before.p50_ms, after.p50_ms)
        );
    }
}

/// Prints the levels, against the HTTP floor of the same run at the flat-out senders' concurrency.
pub fn report(levels: &[Level], noop_per_sec: Option<f64>) {
    println!(
        "\nChat fan-out: one thread, subscribers on GET /chat/events; paced = 1 sender at {PACED_RATE} msg/s, flat out = {SENDERS} senders\n"
    );
    println!(
        "{:>11} {:>12} | {:>10} {:>10} {:>9} | {:>9} {:>9} {:>10} {:>10} {:>9} {:>7}",
        "subscribers",
        "participants",
        "paced p50",
        "paced p99",
        "delivered",
        "msg/s",
        "send p99",
        "fan-out p50",
        "fan-out p99",
        "delivered",
        "lagged"
    );
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let share = |f: &Fanout| {
        if f.expected == 0 {
            0.0
        } else {
            100.0 * f.delivered as f64 / f.expected as f64
        }
    };
    for l in levels {
        println!(
            "{:>11} {:>12} | {:>8.1}ms {:>8.1}ms {:>8.1}% | {:>9.0} {:>7.1}ms {:>9.1}ms {:>9.1}ms {:>8.1}% {:>7}",
            l.subscribers,
            l.participants,
            ms(&l.paced.latency, 0.5),
            ms(&l.paced.latency, 0.99),
            share(&l.paced),
            l.flat_out.per_sec,
            l.flat_out.p99_ms,
            ms(&l.flat_out_fanout.latency, 0.5),
            ms(&l.flat_out_fanout.latency, 0.99),
            share(&l.flat_out_fanout),
            l.flat_out_fanout.lagged + l.paced.lagged,
        );
    }
    if let Some(noop) = noop_per_sec {
        let ratios: Vec<String> = levels
            .iter()
            .map(|l| {
                format!(
                    "{} subscribers = {:.4} x",
                    l.subscribers,
                    l.flat_out.per_sec / noop
                )
            })
            .collect();
        println!(
            "\nmessages sent/s at concurrency {SENDERS}: {} HTTP floor",
            ratios.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_read_back() {
        let event = format!(
            "id: 7\nevent: chatMessageReceived\ndata: {{\"content\":\"{}\"}}",
            content('F', 1234)
        );
        assert_eq!(stamped(&event), Some(('F', 1234)));
        assert_eq!(stamped("event: typingIndicatorReceived\ndata: {}"), None);
    }
}
