//! PMI-1 wire protocol (MPICH "simple PMI"): newline-terminated lines of space-separated
//! `key=value` tokens starting with `cmd=`. Used by Hydra, by `zrun` and by the TCP
//! rendezvous of the Slurm-environment and manual modes. This file has the message codec
//! and the client; the server is in [`super::server`].

use super::stream::{read_line, Stream};
use super::{check_kv, BootstrapError, Kvs};
use std::io::{BufReader, Write};
use std::time::Duration;

/// One parsed PMI-1 message: the command and its other arguments, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Value of `cmd=`.
    pub cmd: String,
    /// The other `key=value` tokens.
    pub args: Vec<(String, String)>,
}

impl Msg {
    /// The value of argument `key`.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `rc=` as a number (absent = 0).
    pub fn rc(&self) -> i64 {
        self.arg("rc").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// Parse one line (without its newline). Rejects anything that is not `cmd=X k=v ...`.
pub fn parse(line: &str) -> Result<Msg, String> {
    let mut toks = line.split_ascii_whitespace();
    let first = toks.next().ok_or("empty line")?;
    let cmd = first.strip_prefix("cmd=").ok_or_else(|| {
        format!(
            "line does not start with cmd=: {:?}",
            first.chars().take(40).collect::<String>()
        )
    })?;
    if cmd.is_empty()
        || !cmd
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "bad command name {:?}",
            cmd.chars().take(40).collect::<String>()
        ));
    }
    let mut args = Vec::new();
    for t in toks {
        let (k, v) = t.split_once('=').ok_or_else(|| {
            format!(
                "token without '=': {:?}",
                t.chars().take(40).collect::<String>()
            )
        })?;
        if k.is_empty() {
            return Err("token with an empty key".into());
        }
        args.push((k.to_string(), v.to_string()));
    }
    Ok(Msg {
        cmd: cmd.to_string(),
        args,
    })
}

/// Format a message as one line (with the trailing newline).
pub fn format(cmd: &str, args: &[(&str, &str)]) -> String {
    let mut s = format!("cmd={cmd}");
    for (k, v) in args {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s.push('\n');
    s
}

/// A PMI-1 client over a connected stream.
pub struct Pmi1Client {
    reader: BufReader<Stream>,
    writer: Stream,
    kvsname: String,
    peer: String,
    timeout: Duration,
    finalized: bool,
}

impl Pmi1Client {
    /// Connect the protocol over `stream`: `init`, `get_maxes`, `get_my_kvsname`. Every
    /// read waits at most `timeout`.
    pub fn init(stream: Stream, peer: &str, timeout: Duration) -> Result<Self, BootstrapError> {
        let secs = timeout.as_secs();
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| {
                BootstrapError::io(format!("configuring the socket to {peer}"), e, secs)
            })?;
        let writer = stream
            .try_clone()
            .map_err(|e| BootstrapError::io(format!("cloning the socket to {peer}"), e, secs))?;
        let mut c = Pmi1Client {
            reader: BufReader::new(stream),
            writer,
            kvsname: String::new(),
            peer: peer.to_string(),
            timeout,
            finalized: false,
        };
        let r = c.call(
            "init",
            &[("pmi_version", "1"), ("pmi_subversion", "1")],
            "response_to_init",
        )?;
        if r.rc() != 0 {
            return Err(c.refused("init", &r));
        }
        c.call("get_maxes", &[], "maxes")?;
        let r = c.call("get_my_kvsname", &[], "my_kvsname")?;
        c.kvsname = match r.arg("kvsname") {
            Some(k) if !k.is_empty() => k.to_string(),
            _ => return Err(c.protocol("my_kvsname without a kvsname")),
        };
        Ok(c)
    }

    /// The key-value space name (Hydra: unique per job).
    pub fn kvsname(&self) -> &str {
        &self.kvsname
    }

    fn protocol(&self, detail: impl Into<String>) -> BootstrapError {
        BootstrapError::Protocol {
            peer: self.peer.clone(),
            detail: detail.into(),
        }
    }

    fn refused(&self, cmd: &str, r: &Msg) -> BootstrapError {
        BootstrapError::Refused {
            cmd: cmd.to_string(),
            msg: r.arg("msg").unwrap_or("no reason given").replace('_', " "),
        }
    }

    /// Send one command and read the reply, which must be `cmd=<expect>`.
    pub fn call(
        &mut self,
        cmd: &str,
        args: &[(&str, &str)],
        expect: &str,
    ) -> Result<Msg, BootstrapError> {
        if self.finalized {
            return Err(BootstrapError::Finalized);
        }
        let secs = self.timeout.as_secs();
        let line = format(cmd, args);
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| BootstrapError::io(format!("sending {cmd} to {}", self.peer), e, secs))?;
        let what = format!("waiting for {} to answer {cmd}", self.peer);
        let reply = match read_line(&mut self.reader) {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Err(BootstrapError::Io {
                    what,
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    ),
                })
            }
            Err(e) => return Err(BootstrapError::io(what, e, secs)),
        };
        let msg = parse(&reply).map_err(|e| self.protocol(e))?;
        if msg.cmd != expect {
            return Err(self.protocol(format!(
                "expected cmd={expect} in reply to {cmd}, got cmd={}",
                msg.cmd
            )));
        }
        Ok(msg)
    }

    /// Get a key without the length checks (e.g. `PMI_process_mapping`); `Ok(None)` if absent.
    pub fn get_raw(&mut self, key: &str) -> Result<Option<String>, BootstrapError> {
        let kvsname = self.kvsname.clone();
        let r = self.call("get", &[("kvsname", &kvsname), ("key", key)], "get_result")?;
        if r.rc() != 0 {
            return Ok(None);
        }
        Ok(Some(r.arg("value").unwrap_or("").to_string()))
    }
}

impl Kvs for Pmi1Client {
    fn put(&mut self, key: &str, value: &str) -> Result<(), BootstrapError> {
        check_kv(key, Some(value))?;
        let kvsname = self.kvsname.clone();
        let r = self.call(
            "put",
            &[("kvsname", &kvsname), ("key", key), ("value", value)],
            "put_result",
        )?;
        if r.rc() != 0 {
            return Err(self.refused("put", &r));
        }
        Ok(())
    }

    fn fence(&mut self) -> Result<(), BootstrapError> {
        let r = self.call("barrier_in", &[], "barrier_out")?;
        if r.rc() != 0 {
            return Err(self.refused("barrier_in (fence)", &r));
        }
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<String, BootstrapError> {
        check_kv(key, None)?;
        self.get_raw(key)?
            .ok_or_else(|| BootstrapError::KeyNotFound {
                key: key.to_string(),
            })
    }

    fn finalize(&mut self) -> Result<(), BootstrapError> {
        if self.finalized {
            return Ok(());
        }
        self.call("finalize", &[], "finalize_ack")?;
        self.finalized = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hydra_replies() {
        let m = parse("cmd=get_result rc=0 msg=success value=(vector,(0,1,1))").unwrap();
        assert_eq!(m.cmd, "get_result");
        assert_eq!(m.rc(), 0);
        assert_eq!(m.arg("value"), Some("(vector,(0,1,1))"));
        let m = parse("cmd=get_result rc=-1 msg=key_nokey_not_found value=unknown").unwrap();
        assert_eq!(m.rc(), -1);
        assert_eq!(parse("cmd=barrier_out").unwrap().args.len(), 0);
        let m = parse("cmd=put kvsname=k key=ep-1 value=0;10.0.0.1:5;7").unwrap();
        assert_eq!(m.arg("value"), Some("0;10.0.0.1:5;7"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("").is_err());
        assert!(parse("   ").is_err());
        assert!(parse("hello world").is_err());
        assert!(parse("cmd=").is_err());
        assert!(parse("cmd=put key").is_err());
        assert!(parse("cmd=put =v").is_err());
        assert!(parse("cmd=pu$t").is_err());
        assert!(parse("\u{0}\u{1}").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format("barrier_in", &[]), "cmd=barrier_in\n");
        assert_eq!(format("get", &[("key", "a")]), "cmd=get key=a\n");
    }
}
