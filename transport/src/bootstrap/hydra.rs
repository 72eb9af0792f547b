//! Started by MPICH Hydra (`mpiexec`): PMI-1 over `PMI_FD`; node layout from
//! `PMI_process_mapping` and `MPI_LOCALRANKID`/`MPI_LOCALNRANKS`.

use super::mapping::{locality, parse_process_mapping};
use super::pmi1::Pmi1Client;
use super::stream::adopt_fd;
use super::{env, exchange_secret, hash64, netaddr, BootstrapError, JobInfo, Kvs, Launcher};

const HINT: &str = "it is set by MPICH's mpiexec (Hydra) for every rank";

/// Join a job started by Hydra.
pub fn bootstrap() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let rank: u32 = env::required_num("PMI_RANK", HINT)?;
    let size: u32 = env::required_num("PMI_SIZE", HINT)?;
    env::check_rank("PMI_RANK", rank, "PMI_SIZE", size)?;
    let fd = env::required(
        "PMI_FD",
        "only the PMI_FD mode of Hydra is supported (PMI_PORT is not); use MPICH's default mpiexec",
    )?;
    let bind = env::bind()?;
    let timeout = env::timeout()?;
    let stream = adopt_fd("PMI_FD", &fd)?;
    let mut client = Pmi1Client::init(stream, "mpiexec (Hydra PMI-1)", timeout)?;
    let kvsname = client.kvsname().to_string();
    let nodes = match client.get_raw("PMI_process_mapping")? {
        Some(m) => Some(
            parse_process_mapping(&m, size).map_err(|e| BootstrapError::Protocol {
                peer: "mpiexec (Hydra PMI-1)".into(),
                detail: format!("PMI_process_mapping: {e}"),
            })?,
        ),
        None => None,
    };
    let (mut local_rank, mut local_size, node_id) = nodes
        .as_deref()
        .and_then(|n| locality(n, rank))
        .unwrap_or((0, 1, 0));
    if let Some(v) = env::optional("MPI_LOCALRANKID") {
        local_rank = env::parse("MPI_LOCALRANKID", &v, "a non-negative integer")?;
    }
    if let Some(v) = env::optional("MPI_LOCALNRANKS") {
        local_size = env::parse("MPI_LOCALNRANKS", &v, "a positive integer")?;
    }
    env::check_rank("MPI_LOCALRANKID", local_rank, "MPI_LOCALNRANKS", local_size)?;
    let secret = exchange_secret(rank, &mut client)?;
    let info = JobInfo {
        job_id: hash64(&format!("hydra:{kvsname}")),
        rank,
        size,
        local_rank,
        local_size,
        node_id,
        secret,
        launcher: Launcher::Hydra,
        bind,
        advertise_ip: netaddr::advertise_ip(None)?,
    };
    Ok((info, Box::new(client)))
}
