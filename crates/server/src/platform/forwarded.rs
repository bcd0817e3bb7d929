//! The client's address: the TCP peer's, unless the peer is a configured trusted proxy (`trusted_proxies`), in
//! which case `X-Forwarded-For` is read from the right (the hop nearest this node) and the first address that is
//! not itself a trusted proxy is the client. A header from any other peer is ignored, so a client cannot choose
//! the address its failures are counted against. `Forwarded` (RFC 7239) is not read: the proxies Tessera is
//! deployed behind (nginx's `$proxy_add_x_forwarded_for`, cloud load balancers) append `X-Forwarded-For`.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The client address of a request from `peer` carrying `headers`, given the `trusted` proxies.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, as one list; walked from its end.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is not an address ends the walk at the last trusted hop: whoever wrote it is not vouched for.
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_as_far_as_trust_goes() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let from = |peer: &str, values: &[&str]| client_address(ip(peer), &headers(values), &trusted);
        assert_eq!(
            from("192.0.2.7", &["203.0.113.1"]),
            ip("192.0.2.7"),
            "an untrusted peer"
        );
        assert_eq!(from("10.0.0.2", &[]), ip("10.0.0.2"), "a proxy's own request");
        assert_eq!(from("10.0.0.2", &["203.0.113.1"]), ip("203.0.113.1"));
        // The client prepended a lie; the proxies appended the truth.
        assert_eq!(
            from("10.0.0.2", &["198.51.100.9, 203.0.113.1, 10.0.0.3"]),
            ip("203.0.113.1")
        );
        assert_eq!(
            from("10.0.0.2", &["198.51.100.9", "203.0.113.1"]),
            ip("203.0.113.1"),
            "two headers"
        );
        assert_eq!(
            from("10.0.0.2", &["203.0.113.1, garbage"]),
            ip("10.0.0.2"),
            "an unparsable hop"
        );
        assert_eq!(
            from("10.0.0.2", &["10.0.0.4, 10.0.0.3"]),
            ip("10.0.0.4"),
            "all proxies"
        );
        assert_eq!(from("::1", &["::ffff:203.0.113.1"]), ip("203.0.113.1"));
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["203.0.113.1"]), &[]),
            ip("10.0.0.2"),
            "none trusted"
        );
    }
}
