//! Slowing down guessing without locking anyone out: failed authentications are counted per client address and
//! per presented credential, each `limit` per window.
//!
//! - **A valid credential is never refused because of others' failures.** An address over its limit (a NAT or a
//!   proxy shared with a guesser) still has every request verified: what verifies is served, and only what fails
//!   is answered 429 with `Retry-After` instead of 401. Refusing before verification would let anyone behind the
//!   same address lock everyone out with `limit` bad requests.
//! - **A credential that has failed is refused before verification** once its own failures reach the limit, from
//!   any address: a stale key or token retried in a loop stops costing lookups. The credential is the SHA-256 of
//!   what was presented (the subscription key, or the whole `Authorization` value), never the account it names,
//!   since counting against an account would let anyone lock that account out. One that never failed is never
//!   refused.
//! - **Attempts are counted atomically**: an attempt reserves its place ([`AuthFailures::reserve`]) before it is
//!   verified, and attempts in flight count beside failures, so a burst of concurrent bad requests is judged as
//!   if it had come one by one: of 300 at once from one address, `limit` are answered 401 and the rest 429.
//! - **IPv6 addresses are counted by their /64**, the block one subscriber is given.
//!
//! The counters are per node on purpose: they protect this node's CPU and the store from a burst of guesses, and
//! a guesser spread over N nodes still meets N×limit failures per window, far below what a 256-bit key needs.
//! Memory is bounded: past [`TRACKED_MAX`] entries expired windows are swept (at most once a second, so that a full
//! table does not make every request scan it), and if none expired, new
//! credentials go untracked (addresses still are) until some do.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most subjects tracked at once.
const TRACKED_MAX: usize = 65_536;

/// When a full table was last swept: [`SweepGate::due`] allows one sweep a second.
#[derive(Debug, Default)]
pub(crate) struct SweepGate(Mutex<Option<Instant>>);

impl SweepGate {
    /// Whether a sweep may run at `now` (and marks it run).
    pub(crate) fn due(&self, now: Instant) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// What failures are counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    /// A client address (IPv6: its /64).
    Address(IpAddr),
    /// The SHA-256 of a presented credential.
    Credential([u8; 32]),
}

impl Subject {
    fn address(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Address(IpAddr::V4(v4)),
                None => Self::Address(IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())),
            },
            v4 @ IpAddr::V4(_) => Self::Address(v4),
        }
    }
}

/// One subject's window.
#[derive(Debug, Clone, Copy)]
struct Tally {
    since: Instant,
    failures: u32,
    in_flight: u32,
}

/// Failure counters by address and by credential.
#[derive(Debug)]
pub struct AuthFailures {
    limit: u32,
    window: Duration,
    tallies: Mutex<HashMap<Subject, Tally>>,
    sweeps: SweepGate,
}

/// One authentication attempt, reserved before it is verified. Dropping it without [`Attempt::failed`] counts
/// it as not failed (a success, or an error that is not the caller's).
#[derive(Debug)]
#[must_use = "an attempt is settled by `failed`, or by dropping it once it succeeded"]
pub struct Attempt<'a> {
    limiter: &'a AuthFailures,
    subjects: Vec<Subject>,
    /// Whether the address had reached its limit when the attempt was reserved.
    address_over: bool,
    settled: bool,
}

impl AuthFailures {
    /// `limit` failures per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            tallies: Mutex::new(HashMap::new()),
            sweeps: SweepGate::default(),
        }
    }

    /// Reserves a place for an attempt from `ip` presenting a credential whose SHA-256 is `credential`. `Err(seconds
    /// to wait)` if that credential has itself failed too often; otherwise the attempt, to be verified.
    pub fn reserve(&self, ip: IpAddr, credential: Option<[u8; 32]>) -> Result<Attempt<'_>, u64> {
        let now = Instant::now();
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        if tallies.len() >= TRACKED_MAX && self.sweeps.due(now) {
            let window = self.window;
            tallies.retain(|_, t| t.in_flight > 0 || now.duration_since(t.since) < window);
        }
        let mut subjects = vec![Subject::address(ip)];
        if let Some(credential) = credential.map(Subject::Credential) {
            if let Some(tally) = tallies.get_mut(&credential).map(|t| self.fresh(t, now))
                && tally.failures > 0
                && tally.failures + tally.in_flight >= self.limit
            {
                return Err(self.wait(tally, now));
            }
            if tallies.contains_key(&credential) || tallies.len() < TRACKED_MAX {
                subjects.push(credential);
            }
        }
        let mut address_over = false;
        for (i, subject) in subjects.iter().enumerate() {
            let tally = tallies.entry(*subject).or_insert(Tally {
                since: now,
                failures: 0,
                in_flight: 0,
            });
            let tally = self.fresh(tally, now);
            if i == 0 {
                address_over = tally.failures + tally.in_flight >= self.limit;
            }
            tally.in_flight += 1;
        }
        Ok(Attempt {
            limiter: self,
            subjects,
            address_over,
            settled: false,
        })
    }

    /// `tally`, restarted if its window is over.
    fn fresh<'t>(&self, tally: &'t mut Tally, now: Instant) -> &'t mut Tally {
        if now.duration_since(tally.since) >= self.window {
            tally.since = now;
            tally.failures = 0;
        }
        tally
    }

    /// Seconds until `tally`'s window ends (at least 1).
    fn wait(&self, tally: &Tally, now: Instant) -> u64 {
        (self.window.saturating_sub(now.duration_since(tally.since))).as_secs() + 1
    }

    /// Ends an attempt: releases its places, counting a failure on each subject if it `failed`. Returns the
    /// seconds to wait if the address is over its limit.
    fn settle(&self, attempt: &Attempt<'_>, failed: bool) -> Option<u64> {
        let now = Instant::now();
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (i, subject) in attempt.subjects.iter().enumerate() {
            let Some(tally) = tallies.get_mut(subject) else {
                continue;
            };
            tally.in_flight = tally.in_flight.saturating_sub(1);
            if failed {
                let tally = self.fresh(tally, now);
                tally.failures = tally.failures.saturating_add(1);
                if i == 0 && attempt.address_over {
                    wait = Some(self.wait(tally, now));
                }
            }
        }
        if failed {
            metrics::counter!("tessera_auth_failures_total").increment(1);
        }
        wait
    }
}

impl Attempt<'_> {
    /// Counts the attempt as failed. `Some(seconds to wait)` when its address had already reached its limit: the
    /// failure is then answered 429 rather than 401.
    pub fn failed(mut self) -> Option<u64> {
        self.settled = true;
        self.limiter.settle(&self, true)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.settle(self, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn an_address_over_its_limit_only_turns_failures_into_429s() {
        let f = AuthFailures::new(3, Duration::from_millis(300));
        for _ in 0..3 {
            assert_eq!(f.reserve(ip("10.0.0.1"), None).unwrap().failed(), None);
        }
        // Over the limit: still reserved (a valid credential is served), and a failure asks to wait.
        drop(f.reserve(ip("10.0.0.1"), Some(A)).unwrap());
        assert_eq!(f.reserve(ip("10.0.0.1"), None).unwrap().failed(), Some(1));
        assert_eq!(
            f.reserve(ip("10.0.0.2"), None).unwrap().failed(),
            None,
            "another address"
        );
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(
            f.reserve(ip("10.0.0.1"), None).unwrap().failed(),
            None,
            "a new window"
        );
    }

    #[test]
    fn a_failing_credential_is_refused_from_any_address_and_a_good_one_never() {
        let f = AuthFailures::new(2, Duration::from_secs(60));
        assert_eq!(f.reserve(ip("10.0.0.1"), Some(A)).unwrap().failed(), None);
        assert_eq!(f.reserve(ip("10.0.0.2"), Some(A)).unwrap().failed(), None);
        assert_eq!(f.reserve(ip("10.0.0.3"), Some(A)).unwrap_err(), 60);
        for _ in 0..10 {
            drop(f.reserve(ip("10.0.0.3"), Some(B)).unwrap());
        }
        let held: Vec<_> = (0..10)
            .map(|_| f.reserve(ip("10.0.0.4"), Some(B)).unwrap())
            .collect();
        assert_eq!(
            held.len(),
            10,
            "concurrent uses of a good credential are never refused"
        );
    }

    #[test]
    fn attempts_in_flight_count_so_a_burst_is_judged_one_by_one() {
        let f = AuthFailures::new(20, Duration::from_secs(60));
        let burst: Vec<_> = (0..300)
            .map(|_| f.reserve(ip("10.0.0.1"), None).unwrap())
            .collect();
        let answers: Vec<_> = burst.into_iter().map(Attempt::failed).collect();
        assert_eq!(answers.iter().filter(|a| a.is_none()).count(), 20, "401s");
        assert_eq!(answers.iter().filter(|a| a.is_some()).count(), 280, "429s");
        // The same bad credential in a burst: once it has failed, in-flight uses count toward its limit too.
        assert_eq!(f.reserve(ip("10.0.0.9"), Some(A)).unwrap().failed(), None);
        let burst: Vec<_> = (0..300).map(|_| f.reserve(ip("10.0.0.9"), Some(A))).collect();
        assert_eq!(burst.iter().filter(|r| r.is_ok()).count(), 19);
    }

    #[test]
    fn a_full_table_is_swept_at_most_once_a_second() {
        let gate = SweepGate::default();
        let now = Instant::now();
        assert!(gate.due(now));
        assert!(!gate.due(now + Duration::from_millis(999)));
        assert!(gate.due(now + Duration::from_secs(1)));
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_v4_as_v4() {
        let f = AuthFailures::new(1, Duration::from_secs(60));
        assert_eq!(f.reserve(ip("2001:db8::1"), None).unwrap().failed(), None);
        assert!(
            f.reserve(ip("2001:db8::ffff:1"), None)
                .unwrap()
                .failed()
                .is_some(),
            "same /64"
        );
        assert_eq!(
            f.reserve(ip("2001:db8:0:1::1"), None).unwrap().failed(),
            None,
            "another /64"
        );
        assert_eq!(f.reserve(ip("192.0.2.1"), None).unwrap().failed(), None);
        assert!(
            f.reserve(ip("::ffff:192.0.2.1"), None)
                .unwrap()
                .failed()
                .is_some()
        );
    }
}
