//! How Java spells a client's address, for the headers and filters Flume fills from one.
//!
//! Flume takes these strings from `java.net`: `InetAddress.getHostAddress()` (syslog's
//! `clientIPHeader`, the avro source's `ipFilterRules`) and `InetSocketAddress.toString()`
//! (netcatudp's `remoteAddressHeader`). Rust's `Display` differs for IPv6: it compresses zero
//! groups (`::1` where Java writes `0:0:0:0:0:0:0:1`), and on a socket bound to `::` it shows an
//! IPv4 client as `::ffff:10.0.0.1`, where Java hands out the plain IPv4 address. Headers that
//! downstream rules match on, and filter rules written for Flume, need Java's spelling. No crate
//! offers it; it is a few lines over `std::net`.

use std::net::{IpAddr, SocketAddr};

/// The address a Java socket would report: an IPv4-mapped IPv6 address is the IPv4 address.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `InetAddress.getHostAddress()`: IPv6 as eight lowercase hex groups without leading zeros and
/// without `::` compression, followed by `%scope` when the address has a scope id.
pub(crate) fn host_address(peer: SocketAddr) -> String {
    let v6 = match canonical_ip(peer.ip()) {
        IpAddr::V4(v4) => return v4.to_string(),
        IpAddr::V6(v6) => v6,
    };
    let mut text = v6.segments().map(|g| format!("{g:x}")).join(":");
    if let SocketAddr::V6(sa) = peer
        && sa.scope_id() != 0
    {
        text.push_str(&format!("%{}", sa.scope_id()));
    }
    text
}

/// `InetSocketAddress.toString()` for an address without a host name, as Java 14 and later
/// print it: `/10.0.0.1:5140`, `/[0:0:0:0:0:0:0:1]:5140`.
pub(crate) fn socket_address(peer: SocketAddr) -> String {
    let host = host_address(peer);
    if host.contains(':') {
        format!("/[{host}]:{}", peer.port())
    } else {
        format!("/{host}:{}", peer.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_is_as_rust_prints_it() {
        assert_eq!(host_address(addr("10.1.2.3:514")), "10.1.2.3");
        assert_eq!(socket_address(addr("10.1.2.3:514")), "/10.1.2.3:514");
    }

    #[test]
    fn ipv6_is_spelled_out_in_full() {
        assert_eq!(host_address(addr("[::1]:9")), "0:0:0:0:0:0:0:1");
        assert_eq!(
            host_address(addr("[2001:db8::a:0:ff]:9")),
            "2001:db8:0:0:0:a:0:ff"
        );
        assert_eq!(
            socket_address(addr("[fe80::1]:5140")),
            "/[fe80:0:0:0:0:0:0:1]:5140"
        );
    }

    #[test]
    fn a_mapped_ipv4_client_is_plain_ipv4() {
        let peer = addr("[::ffff:192.0.2.7]:40000");
        assert_eq!(host_address(peer), "192.0.2.7");
        assert_eq!(socket_address(peer), "/192.0.2.7:40000");
        assert_eq!(
            canonical_ip(peer.ip()),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
    }

    #[test]
    fn a_scoped_address_carries_its_scope_id() {
        let peer = SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
            7,
            0,
            3,
        ));
        assert_eq!(host_address(peer), "fe80:0:0:0:0:0:0:2%3");
        assert_eq!(socket_address(peer), "/[fe80:0:0:0:0:0:0:2%3]:7");
    }
}
