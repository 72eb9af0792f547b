//! Started by `zrun`: identity from the environment, PMI-1 over the inherited `PMI_FD`.

use super::pmi1::Pmi1Client;
use super::stream::adopt_fd;
use super::{env, BootstrapError, JobInfo, Kvs, Launcher};
use std::net::{IpAddr, Ipv4Addr};

const HINT: &str = "it is set by zrun for every rank; start the program with 'zrun -n N program'";

/// Join a job started by zrun.
pub fn bootstrap() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let rank: u32 = env::required_num("PMI_RANK", HINT)?;
    let size: u32 = env::required_num("PMI_SIZE", HINT)?;
    env::check_rank("PMI_RANK", rank, "PMI_SIZE", size)?;
    let job_id = env::parse_job_id("ZR_JOB_ID", &env::required("ZR_JOB_ID", HINT)?)?;
    let secret = env::secret("ZR_SECRET", HINT)?;
    let local_rank: u32 = env::required_num("ZR_LOCAL_RANK", HINT)?;
    let local_size: u32 = env::required_num("ZR_LOCAL_SIZE", HINT)?;
    env::check_rank("ZR_LOCAL_RANK", local_rank, "ZR_LOCAL_SIZE", local_size)?;
    let node_id: u32 = env::required_num("ZR_NODE_ID", HINT)?;
    let bind = env::bind()?;
    let timeout = env::timeout()?;
    let fd = env::required("PMI_FD", HINT)?;
    let stream = adopt_fd("PMI_FD", &fd)?;
    let client = Pmi1Client::init(stream, "zrun", timeout)?;
    let info = JobInfo {
        job_id,
        rank,
        size,
        local_rank,
        local_size,
        node_id,
        secret,
        launcher: Launcher::Zrun,
        bind,
        advertise_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    Ok((info, Box::new(client)))
}
