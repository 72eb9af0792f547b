//! Singleton mode: one rank, an in-memory key-value store.

use super::{check_kv, env, BootstrapError, JobInfo, Kvs, Launcher};
use std::collections::HashMap;

/// An in-process key-value store (fence is a no-op).
#[derive(Debug, Default)]
pub struct MemKvs {
    kv: HashMap<String, String>,
    finalized: bool,
}

impl Kvs for MemKvs {
    fn put(&mut self, key: &str, value: &str) -> Result<(), BootstrapError> {
        if self.finalized {
            return Err(BootstrapError::Finalized);
        }
        check_kv(key, Some(value))?;
        self.kv.insert(key.into(), value.into());
        Ok(())
    }
    fn fence(&mut self) -> Result<(), BootstrapError> {
        if self.finalized {
            return Err(BootstrapError::Finalized);
        }
        Ok(())
    }
    fn get(&mut self, key: &str) -> Result<String, BootstrapError> {
        if self.finalized {
            return Err(BootstrapError::Finalized);
        }
        check_kv(key, None)?;
        self.kv
            .get(key)
            .cloned()
            .ok_or_else(|| BootstrapError::KeyNotFound { key: key.into() })
    }
    fn finalize(&mut self) -> Result<(), BootstrapError> {
        self.finalized = true;
        Ok(())
    }
}

/// A job of one rank.
pub fn bootstrap_singleton() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let info = JobInfo {
        job_id: rand::random(),
        rank: 0,
        size: 1,
        local_rank: 0,
        local_size: 1,
        node_id: 0,
        secret: rand::random(),
        launcher: Launcher::Singleton,
        bind: env::bind()?,
        advertise_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    Ok((info, Box::new(MemKvs::default())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_fence_get() {
        let mut k = MemKvs::default();
        k.put("ep-0", "x").unwrap();
        k.fence().unwrap();
        assert_eq!(k.get("ep-0").unwrap(), "x");
        assert!(k.get("ep-1").is_err());
        k.finalize().unwrap();
        assert!(k.put("a", "b").is_err());
    }
}
