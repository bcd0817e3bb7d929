//! Caps on open connections, per client address and in total, taken when a connection is accepted (before the TLS
//! handshake) and held until it closes. A connection over either cap is closed at once and counted in
//! `tessera_connections_refused_total`. The address is the TCP peer's: behind a reverse proxy every connection
//! comes from the proxy, so the per-address cap must leave room for its pool.

use crate::platform::linger::Lingering;
use axum_server::accept::Accept;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// The caps and the connections open now.
#[derive(Debug)]
pub struct ConnectionCaps {
    per_address: usize,
    total: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl ConnectionCaps {
    /// At most `per_address` connections from one address and `total` in all.
    pub fn new(per_address: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_address,
            total,
            open: Mutex::default(),
        })
    }

    /// A place for a connection from `ip`, if both caps allow one.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Place> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let from_ip = open.by_address.get(&ip).copied().unwrap_or(0);
        if open.total >= self.total || from_ip >= self.per_address {
            return None;
        }
        open.total += 1;
        open.by_address.insert(ip, from_ip + 1);
        Some(Place {
            caps: Arc::clone(self),
            ip,
        })
    }
}

/// One open connection's place; given back when the connection's service is dropped.
#[derive(Debug)]
struct Place {
    caps: Arc<ConnectionCaps>,
    ip: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(n) = open.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.ip);
            }
        }
    }
}

/// An acceptor that takes a place before handing the connection to `inner` (the TLS acceptor's inner one, so
/// that a refused connection costs no handshake), as a stream that lingers on close ([`Lingering`]).
#[derive(Debug, Clone)]
pub struct Capped<A> {
    inner: A,
    caps: Arc<ConnectionCaps>,
    linger: Duration,
}

impl<A> Capped<A> {
    /// `inner` under `caps`, its connections lingering up to `linger` on close.
    pub fn new(inner: A, caps: Arc<ConnectionCaps>, linger: Duration) -> Self {
        Self { inner, caps, linger }
    }
}

type Accepted<Stream, Service> =
    Pin<Box<dyn Future<Output = std::io::Result<(Stream, Held<Service>)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for Capped<A>
where
    A: Accept<Lingering, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = A::Stream;
    type Service = Held<A::Service>;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let Some(place) = stream.peer_addr().ok().and_then(|peer| self.caps.take(peer.ip())) else {
            metrics::counter!("tessera_connections_refused_total").increment(1);
            return Box::pin(std::future::ready(Err(std::io::Error::other(
                "connection cap reached",
            ))));
        };
        let accepted = self.inner.accept(Lingering::new(stream, self.linger), service);
        Box::pin(async move {
            let (stream, inner) = accepted.await?;
            Ok((
                stream,
                Held {
                    inner,
                    _place: Arc::new(place),
                },
            ))
        })
    }
}

/// A connection's service, holding the connection's place for as long as the connection is served.
#[derive(Debug, Clone)]
pub struct Held<S> {
    inner: S,
    _place: Arc<Place>,
}

impl<S, R> tower::Service<R> for Held<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_per_address_and_in_total_and_given_back() {
        let caps = ConnectionCaps::new(2, 3);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = caps.take(a).expect("a first place");
        let _second = caps.take(a).expect("a second place");
        assert!(caps.take(a).is_none(), "two per address");
        let _third = caps.take(b).expect("another address");
        assert!(caps.take(b).is_none(), "three in all");
        drop(first);
        assert!(caps.take(b).is_some(), "a place given back is free again");
        let open = caps.open.lock().unwrap();
        assert_eq!(
            (open.total, open.by_address.get(&a), open.by_address.get(&b)),
            (2, Some(&1), Some(&1))
        );
    }
}
