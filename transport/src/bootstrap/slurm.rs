//! Started by Slurm `srun`: PMI-2 when `--mpi=pmi2` offers it, else the Slurm environment
//! plus a TCP rendezvous on the first node of the step.

use super::pmi2::Pmi2Client;
use super::slurm_parse::{first_host, tasks_per_node};
use super::stream::adopt_fd;
use super::tcp_kvs::{join, Rendezvous};
use super::{
    env, exchange_secret, hash64, netaddr, BootstrapError, JobInfo, Kvs, Launcher, SECRET_KEY,
};
use std::net::SocketAddr;

const HINT: &str = "it is set by Slurm's srun for every task; start the program with srun";

struct SlurmEnv {
    rank: u32,
    size: u32,
    local_rank: u32,
    local_size: u32,
    node_id: u32,
    job: u64,
    step: u64,
}

fn read_env() -> Result<SlurmEnv, BootstrapError> {
    let rank: u32 = env::required_num("SLURM_PROCID", HINT)?;
    let size: u32 = match env::optional("SLURM_STEP_NUM_TASKS") {
        Some(v) => env::parse("SLURM_STEP_NUM_TASKS", &v, "a positive integer")?,
        None => env::required_num("SLURM_NTASKS", HINT)?,
    };
    env::check_rank("SLURM_PROCID", rank, "SLURM_NTASKS", size)?;
    let local_rank: u32 = env::required_num("SLURM_LOCALID", HINT)?;
    let node_id: u32 = env::required_num("SLURM_NODEID", HINT)?;
    let (tvar, tpn) = match env::optional("SLURM_STEP_TASKS_PER_NODE") {
        Some(v) => ("SLURM_STEP_TASKS_PER_NODE", v),
        None => (
            "SLURM_TASKS_PER_NODE",
            env::required("SLURM_TASKS_PER_NODE", HINT)?,
        ),
    };
    let counts = tasks_per_node(&tpn).map_err(|e| BootstrapError::BadEnv {
        var: tvar,
        value: tpn.clone(),
        expected: format!("a list like 2(x3),1 ({e})"),
    })?;
    let local_size = *counts
        .get(node_id as usize)
        .ok_or_else(|| BootstrapError::BadEnv {
            var: tvar,
            value: tpn.clone(),
            expected: format!("an entry for node {node_id} (SLURM_NODEID)"),
        })?;
    env::check_rank("SLURM_LOCALID", local_rank, tvar, local_size)?;
    let job: u64 = env::required_num("SLURM_JOB_ID", HINT)?;
    let step: u64 = match env::optional("SLURM_STEP_ID").or_else(|| env::optional("SLURM_STEPID")) {
        Some(v) => env::parse("SLURM_STEP_ID", &v, "a non-negative integer")?,
        None => 0,
    };
    Ok(SlurmEnv {
        rank,
        size,
        local_rank,
        local_size,
        node_id,
        job,
        step,
    })
}

fn job_id(e: &SlurmEnv) -> u64 {
    hash64(&format!("slurm:{}.{}", e.job, e.step))
}

/// `srun --mpi=pmi2`.
pub fn bootstrap_pmi2() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let e = read_env()?;
    let bind = env::bind()?;
    let timeout = env::timeout()?;
    let pmi_rank: u32 = match env::optional("PMI_RANK") {
        Some(v) => env::parse("PMI_RANK", &v, "a non-negative integer")?,
        None => e.rank,
    };
    let jobid = env::required("PMI_JOBID", "it is set by srun --mpi=pmi2")?;
    let fd = env::required("PMI_FD", "it is set by srun --mpi=pmi2")?;
    let stream = adopt_fd("PMI_FD", &fd)?;
    let mut client = Pmi2Client::init(stream, &jobid, pmi_rank, timeout)?;
    let (rank, size) = client.rank_size;
    if rank != e.rank || size != e.size {
        return Err(BootstrapError::Protocol {
            peer: "Slurm PMI-2".into(),
            detail: format!(
                "PMI-2 says rank {rank} of {size} but SLURM_PROCID/SLURM_NTASKS say {} of {}",
                e.rank, e.size
            ),
        });
    }
    let secret = exchange_secret(rank, &mut client)?;
    let info = JobInfo {
        job_id: job_id(&e),
        rank,
        size,
        local_rank: e.local_rank,
        local_size: e.local_size,
        node_id: e.node_id,
        secret,
        launcher: Launcher::SlurmPmi2,
        bind,
        advertise_ip: netaddr::advertise_ip(None)?,
    };
    Ok((info, Box::new(client)))
}

/// The rendezvous port of a step: `ZR_KVS_PORT`, else 20000 + hash % 20000.
fn port(e: &SlurmEnv) -> Result<u16, BootstrapError> {
    match env::optional("ZR_KVS_PORT") {
        Some(v) => env::parse("ZR_KVS_PORT", &v, "a TCP port number"),
        None => Ok(20000 + (hash64(&format!("slurm-port:{}.{}", e.job, e.step)) % 20000) as u16),
    }
}

/// Plain `srun` without PMI.
pub fn bootstrap_env() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let e = read_env()?;
    let bind = env::bind()?;
    let timeout = env::timeout()?;
    let (nvar, list) = match env::optional("SLURM_STEP_NODELIST") {
        Some(v) => ("SLURM_STEP_NODELIST", v),
        None => (
            "SLURM_JOB_NODELIST",
            env::required("SLURM_JOB_NODELIST", HINT)?,
        ),
    };
    let host = first_host(&list).map_err(|err| BootstrapError::BadEnv {
        var: nvar,
        value: list.clone(),
        expected: format!("a Slurm host list ({err})"),
    })?;
    let port = port(&e)?;
    let coord = format!("{host}:{port}");
    // The server runs on the step's first node (node id 0), in its first task; with the
    // usual block distribution that is rank 0.
    let serves = e.node_id == 0 && e.local_rank == 0;
    let preset = if serves {
        vec![(
            SECRET_KEY.to_string(),
            hex::encode(rand::random::<[u8; 32]>()),
        )]
    } else {
        vec![]
    };
    let serve_on = serves.then(|| SocketAddr::from(([0, 0, 0, 0], port)));
    let mut kvs = join(Rendezvous {
        coord: coord.clone(),
        serve_on,
        size: e.size,
        secret: None,
        preset,
        timeout,
    })?;
    let v = kvs.get(SECRET_KEY)?;
    let secret = env::parse_secret_value(&v).ok_or_else(|| BootstrapError::Protocol {
        peer: coord.clone(),
        detail: format!("{SECRET_KEY} is not 64 hex digits"),
    })?;
    let info = JobInfo {
        job_id: job_id(&e),
        rank: e.rank,
        size: e.size,
        local_rank: e.local_rank,
        local_size: e.local_size,
        node_id: e.node_id,
        secret,
        launcher: Launcher::SlurmEnv,
        bind,
        advertise_ip: netaddr::advertise_ip(Some(&coord))?,
    };
    Ok((info, Box::new(kvs)))
}
