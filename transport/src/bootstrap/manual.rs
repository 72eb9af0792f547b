//! Manual multi-node mode: `ZR_COORD=host:port`, `ZR_RANK`, `ZR_SIZE`, `ZR_NODE_ID`,
//! `ZR_SECRET` (64 hex digits), optional `ZR_JOB_ID` (hex) and `ZR_ADDR`. Rank 0 serves the
//! key-value store on `ZR_COORD`; connections authenticate with the secret.

use super::mapping::locality;
use super::tcp_kvs::{join, Rendezvous};
use super::{env, hash64, netaddr, BootstrapError, JobInfo, Kvs, Launcher};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};

const HINT: &str =
    "manual mode (ZR_COORD set) needs ZR_COORD, ZR_RANK, ZR_SIZE, ZR_NODE_ID and ZR_SECRET";

/// Join a manually started job.
pub fn bootstrap() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let coord = env::required("ZR_COORD", HINT)?;
    let rank: u32 = env::required_num("ZR_RANK", HINT)?;
    let size: u32 = env::required_num("ZR_SIZE", HINT)?;
    env::check_rank("ZR_RANK", rank, "ZR_SIZE", size)?;
    let node_id: u32 = env::required_num("ZR_NODE_ID", HINT)?;
    let secret = env::secret("ZR_SECRET", HINT)?;
    let job_id = match env::optional("ZR_JOB_ID") {
        Some(v) => env::parse_job_id("ZR_JOB_ID", &v)?,
        None => hash64(&format!("manual:{coord}:{}", hex::encode(secret))),
    };
    let bind = env::bind()?;
    let timeout = env::timeout()?;
    let (_, port) = coord.rsplit_once(':').ok_or_else(|| bad_coord(&coord))?;
    let port: u16 = port.parse().map_err(|_| bad_coord(&coord))?;
    let serve_on = if rank == 0 {
        // Listen on the coordinator address if it is ours, else on every interface.
        let want: Option<SocketAddr> = coord.to_socket_addrs().ok().and_then(|mut a| a.next());
        Some(match want {
            Some(a) if is_local_ip(a.ip()) => a,
            _ => SocketAddr::from(([0, 0, 0, 0], port)),
        })
    } else {
        None
    };
    let mut kvs = join(Rendezvous {
        coord: coord.clone(),
        serve_on,
        size,
        secret: Some(secret),
        preset: vec![],
        timeout,
    })?;
    kvs.put(&format!("node-{rank}"), &node_id.to_string())?;
    kvs.fence()?;
    let mut nodes = Vec::with_capacity(size as usize);
    for r in 0..size {
        let v = kvs.get(&format!("node-{r}"))?;
        nodes.push(v.parse::<u32>().map_err(|_| BootstrapError::Protocol {
            peer: "the bootstrap coordinator".into(),
            detail: format!("node-{r} is {v:?}, not a number"),
        })?);
    }
    let (local_rank, local_size, _) = locality(&nodes, rank).unwrap_or((0, 1, node_id));
    let info = JobInfo {
        job_id,
        rank,
        size,
        local_rank,
        local_size,
        node_id,
        secret,
        launcher: Launcher::Manual,
        bind,
        advertise_ip: netaddr::advertise_ip(Some(&coord))?,
    };
    Ok((info, Box::new(kvs)))
}

/// True if `ip` is an address of this host (network namespace).
///
/// Probed with a UDP socket on an ephemeral port: binding a TCP *listener* on the
/// coordinator port to find out, as this once did, accepted any rank that connected in
/// that instant and then reset it when the probe was dropped, failing its bootstrap.
fn is_local_ip(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

fn bad_coord(v: &str) -> BootstrapError {
    BootstrapError::BadEnv {
        var: "ZR_COORD",
        value: v.chars().take(80).collect(),
        expected: "host:port, e.g. 10.0.0.1:47000".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_ip;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn local_ip_probe() {
        assert!(is_local_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        // TEST-NET-1 (RFC 5737) is never assigned to a host.
        assert!(!is_local_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
    }
}
