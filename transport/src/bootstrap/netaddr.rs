//! Which local address other nodes can reach this rank at.

use super::BootstrapError;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};

/// `ZR_ADDR` if set; else the source address of the route toward `toward` (a UDP socket is
/// connected, which picks a route but sends nothing); else a non-loopback address of this
/// host's name; else 127.0.0.1.
pub fn advertise_ip(toward: Option<&str>) -> Result<IpAddr, BootstrapError> {
    if let Some(v) = super::env::optional("ZR_ADDR") {
        return super::env::parse("ZR_ADDR", &v, "an IP address such as 10.0.0.2");
    }
    if let Some(host) = toward {
        if let Some(ip) = route_source(host) {
            return Ok(ip);
        }
    }
    if let Some(ip) = hostname_ip() {
        return Ok(ip);
    }
    Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The local address the kernel would use to reach `host_port` ("host:port").
pub fn route_source(host_port: &str) -> Option<IpAddr> {
    let target = host_port.to_socket_addrs().ok()?.next()?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).ok()?;
    sock.connect(target).ok()?;
    Some(sock.local_addr().ok()?.ip())
}

fn hostname_ip() -> Option<IpAddr> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()?
        .trim()
        .to_string();
    let addrs: Vec<IpAddr> = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .copied()
        .find(|ip| !ip.is_loopback() && ip.is_ipv4())
        .or_else(|| addrs.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_to_loopback_is_loopback() {
        assert_eq!(
            route_source("127.0.0.1:9"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(route_source("not a host"), None);
    }
}
