//! PMI-2 wire protocol (as spoken by Slurm's `mpi/pmi2` plugin): each message is a
//! 6-character decimal length (space padded) followed by `cmd=...;key=value;...;`.
//! A literal `;` inside a value is written `;;`. Values we put are additionally
//! percent-escaped (`%`, `;`, `=`) so that any PMI-2 server stores them verbatim.

use super::stream::Stream;
use super::{check_kv, BootstrapError, Kvs};
use std::io::{Read, Write};
use std::time::Duration;

/// Largest message accepted from the server.
pub const MAX_MSG: usize = 64 * 1024;

/// Encode a command: `cmd=<cmd>;k=v;...;` with its length prefix.
pub fn encode(cmd: &str, args: &[(&str, &str)]) -> Vec<u8> {
    let mut body = format!("cmd={cmd};");
    for (k, v) in args {
        body.push_str(k);
        body.push('=');
        body.push_str(&v.replace(';', ";;"));
        body.push(';');
    }
    let mut out = format!("{:<6}", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Parse the length prefix (6 bytes).
pub fn parse_len(prefix: &[u8]) -> Result<usize, String> {
    let s = std::str::from_utf8(prefix).map_err(|_| "length prefix is not ASCII".to_string())?;
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("bad length prefix {s:?}"))?;
    if n == 0 || n > MAX_MSG {
        return Err(format!("length {n} out of range"));
    }
    Ok(n)
}

/// Parse a message body into its `key=value` pairs (first must be `cmd`).
pub fn parse_body(body: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars().peekable();
    let mut fields = Vec::new();
    while let Some(c) = chars.next() {
        if c == ';' {
            if chars.peek() == Some(&';') {
                chars.next();
                cur.push(';');
            } else {
                fields.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        fields.push(cur);
    }
    for f in fields {
        if f.is_empty() {
            continue;
        }
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("field without '=': {f:?}"))?;
        if k.is_empty() {
            return Err("field with an empty key".into());
        }
        pairs.push((k.to_string(), v.to_string()));
    }
    match pairs.first() {
        Some((k, v)) if k == "cmd" && !v.is_empty() => Ok(pairs),
        _ => Err(format!(
            "message does not start with cmd=: {:?}",
            body.chars().take(40).collect::<String>()
        )),
    }
}

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Percent-escape `%`, `;` and `=` in a value.
pub fn escape_value(v: &str) -> String {
    v.replace('%', "%25")
        .replace(';', "%3B")
        .replace('=', "%3D")
}

/// Undo [`escape_value`].
pub fn unescape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (c, skip) = if tail.starts_with("%25") {
            ('%', 3)
        } else if tail.starts_with("%3B") {
            (';', 3)
        } else if tail.starts_with("%3D") {
            ('=', 3)
        } else {
            ('%', 1)
        };
        out.push(c);
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// A PMI-2 client over the launcher's socket.
pub struct Pmi2Client {
    stream: Stream,
    jobid: String,
    timeout: Duration,
    finalized: bool,
    /// (rank, size) from the fullinit response.
    pub rank_size: (u32, u32),
}

impl Pmi2Client {
    /// `fullinit` with `pmijobid` and `pmirank` (from `PMI_JOBID`/`PMI_RANK`).
    pub fn init(
        stream: Stream,
        jobid: &str,
        rank: u32,
        timeout: Duration,
    ) -> Result<Self, BootstrapError> {
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| {
                BootstrapError::io("configuring the PMI-2 socket", e, timeout.as_secs())
            })?;
        let mut c = Pmi2Client {
            stream,
            jobid: jobid.to_string(),
            timeout,
            finalized: false,
            rank_size: (0, 0),
        };
        c.version_handshake()?;
        let rank_s = rank.to_string();
        let r = c.call(
            "fullinit",
            &[
                ("pmijobid", jobid),
                ("pmirank", &rank_s),
                ("threaded", "FALSE"),
            ],
            "fullinit-response",
        )?;
        let num = |k: &str| field(&r, k).and_then(|v| v.parse::<u32>().ok());
        match (num("rank"), num("size")) {
            (Some(rk), Some(sz)) => c.rank_size = (rk, sz),
            _ => return Err(c.protocol("fullinit-response without rank and size")),
        }
        if let Some(j) = field(&r, "jobid").filter(|j| !j.is_empty()) {
            c.jobid = j.to_string();
        }
        Ok(c)
    }

    /// Like MPICH's PMI2_Init: a PMI-1 style `init` asking for version 2 comes first.
    fn version_handshake(&mut self) -> Result<(), BootstrapError> {
        let secs = self.timeout.as_secs();
        self.stream
            .write_all(b"cmd=init pmi_version=2 pmi_subversion=0\n")
            .map_err(|e| BootstrapError::io("sending the PMI-2 version handshake", e, secs))?;
        // The answer is one newline-terminated PMI-1 line; read it byte by byte so that
        // nothing after it is consumed.
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while line.len() < super::stream::MAX_LINE {
            self.stream.read_exact(&mut b).map_err(|e| {
                BootstrapError::io("waiting for the PMI-2 version handshake", e, secs)
            })?;
            if b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
        }
        let line =
            String::from_utf8(line).map_err(|_| self.protocol("handshake reply is not UTF-8"))?;
        let m = super::pmi1::parse(&line).map_err(|e| self.protocol(e))?;
        if m.cmd != "response_to_init" || m.rc() != 0 || m.arg("pmi_version") != Some("2") {
            return Err(self.protocol(format!(
                "the server does not offer PMI-2 (answered {line:?})"
            )));
        }
        Ok(())
    }

    fn protocol(&self, detail: impl Into<String>) -> BootstrapError {
        BootstrapError::Protocol {
            peer: "Slurm PMI-2 (srun --mpi=pmi2)".into(),
            detail: detail.into(),
        }
    }

    fn call(
        &mut self,
        cmd: &str,
        args: &[(&str, &str)],
        expect: &str,
    ) -> Result<Vec<(String, String)>, BootstrapError> {
        if self.finalized {
            return Err(BootstrapError::Finalized);
        }
        let secs = self.timeout.as_secs();
        self.stream
            .write_all(&encode(cmd, args))
            .map_err(|e| BootstrapError::io(format!("sending PMI-2 {cmd}"), e, secs))?;
        let what = format!("waiting for the PMI-2 answer to {cmd}");
        let mut prefix = [0u8; 6];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|e| BootstrapError::io(what.clone(), e, secs))?;
        let n = parse_len(&prefix).map_err(|e| self.protocol(e))?;
        let mut body = vec![0u8; n];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| BootstrapError::io(what, e, secs))?;
        let body = String::from_utf8(body).map_err(|_| self.protocol("reply is not UTF-8"))?;
        let pairs = parse_body(&body).map_err(|e| self.protocol(e))?;
        if pairs[0].1 != expect {
            return Err(self.protocol(format!(
                "expected cmd={expect} in reply to {cmd}, got cmd={}",
                pairs[0].1
            )));
        }
        let rc = field(&pairs, "rc")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if rc != 0 {
            return Err(BootstrapError::Refused {
                cmd: format!("PMI-2 {cmd}"),
                msg: field(&pairs, "errmsg")
                    .unwrap_or("no reason given")
                    .to_string(),
            });
        }
        Ok(pairs)
    }
}

impl Kvs for Pmi2Client {
    fn put(&mut self, key: &str, value: &str) -> Result<(), BootstrapError> {
        check_kv(key, Some(value))?;
        self.call(
            "kvs-put",
            &[("key", key), ("value", &escape_value(value))],
            "kvs-put-response",
        )?;
        Ok(())
    }

    fn fence(&mut self) -> Result<(), BootstrapError> {
        self.call("kvs-fence", &[], "kvs-fence-response")?;
        Ok(())
    }

    fn get(&mut self, key: &str) -> Result<String, BootstrapError> {
        check_kv(key, None)?;
        let jobid = self.jobid.clone();
        let r = match self.call(
            "kvs-get",
            &[("jobid", &jobid), ("srcid", "-1"), ("key", key)],
            "kvs-get-response",
        ) {
            Err(BootstrapError::Refused { .. }) => {
                return Err(BootstrapError::KeyNotFound { key: key.into() })
            }
            other => other?,
        };
        if field(&r, "found").is_some_and(|f| f.eq_ignore_ascii_case("false")) {
            return Err(BootstrapError::KeyNotFound { key: key.into() });
        }
        let v =
            field(&r, "value").ok_or_else(|| self.protocol("kvs-get-response without a value"))?;
        Ok(unescape_value(v))
    }

    fn finalize(&mut self) -> Result<(), BootstrapError> {
        if self.finalized {
            return Ok(());
        }
        self.call("finalize", &[], "finalize-response")?;
        self.finalized = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_prefix() {
        let m = encode("kvs-fence", &[]);
        assert_eq!(m, b"14    cmd=kvs-fence;".to_vec());
        let m = encode("kvs-put", &[("key", "k"), ("value", "a;b")]);
        assert_eq!(
            std::str::from_utf8(&m[6..]).unwrap(),
            "cmd=kvs-put;key=k;value=a;;b;"
        );
        assert_eq!(parse_len(&m[..6]).unwrap(), m.len() - 6);
    }

    #[test]
    fn parses_replies() {
        let p = parse_body("cmd=fullinit-response;rc=0;pmi-version=2;rank=1;size=2;appnum=0;spawner-jobid=5.0;debugged=FALSE;").unwrap();
        assert_eq!(field(&p, "rank"), Some("1"));
        assert_eq!(field(&p, "spawner-jobid"), Some("5.0"));
        let p = parse_body("cmd=kvs-get-response;rc=0;found=TRUE;value=a;;b;").unwrap();
        assert_eq!(field(&p, "value"), Some("a;b"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_len(b"abcdef").is_err());
        assert!(parse_len(b"0     ").is_err());
        assert!(parse_len(b"999999").is_err());
        assert!(parse_body("").is_err());
        assert!(parse_body("rc=0;cmd=x;").is_err());
        assert!(parse_body("cmd=x;novalue;").is_err());
        assert!(parse_body("cmd=;").is_err());
    }

    #[test]
    fn escaping_roundtrips() {
        for v in ["0;10.77.0.2:41234;12345", "a%3Bb", "x=y%", ""] {
            assert_eq!(unescape_value(&escape_value(v)), v);
        }
    }
}
