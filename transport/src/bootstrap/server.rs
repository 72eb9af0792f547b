//! The PMI-1 key-value server: run by `zrun` for its ranks (over socketpairs) and by one
//! rank in the Slurm-environment and manual modes (over TCP, optionally authenticated with
//! the job secret). One thread per connection; a fence completes when all `size` ranks
//! called `barrier_in`, and fails for everyone as soon as a rank leaves without finalizing.

use super::auth;
use super::pmi1::{self, Msg};
use super::stream::{read_line, Stream};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Ranks in the job; a fence waits for this many.
    pub size: u32,
    /// Name returned by `get_my_kvsname`.
    pub kvsname: String,
    /// Keys present from the start (e.g. `PMI_process_mapping`).
    pub preset: Vec<(String, String)>,
    /// Fail every fence as soon as a connection closes without finalize. `zrun` turns this
    /// off and calls [`KvsServer::rank_exited`] when it reaps a rank instead.
    pub break_on_disconnect: bool,
}

#[derive(Default)]
struct State {
    kv: HashMap<String, String>,
    epoch: u64,
    arrived: u32,
    /// Ranks connected (after authentication).
    connected: u32,
    /// Ranks that called finalize.
    finalized: u32,
    /// Why fences can no longer complete.
    broken: Option<String>,
    /// Connections (labels) that finalized.
    finalized_labels: std::collections::HashSet<String>,
}

struct Shared {
    cfg: ServerConfig,
    state: Mutex<State>,
    cv: Condvar,
}

/// A running key-value server (cheap to clone).
#[derive(Clone)]
pub struct KvsServer {
    shared: Arc<Shared>,
}

impl KvsServer {
    /// A server for `cfg.size` ranks.
    pub fn new(cfg: ServerConfig) -> Self {
        let kv = cfg.preset.iter().cloned().collect();
        let state = State {
            kv,
            ..State::default()
        };
        KvsServer {
            shared: Arc::new(Shared {
                cfg,
                state: Mutex::new(state),
                cv: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not take the whole server down.
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serve one already-trusted connection (e.g. a socketpair to a rank) on a new thread.
    pub fn serve(&self, stream: Stream, label: String) -> std::io::Result<JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("kvs-{label}"))
            .spawn(move || {
                me.lock().connected += 1;
                me.handle(stream, &label);
            })
    }

    /// Accept TCP connections on `listener` (on a new thread) until every rank finalized.
    /// With `secret`, each connection must first answer a challenge (see `super::auth`);
    /// a wrong answer is logged and the connection closed, and the server goes on.
    pub fn serve_tcp(
        &self,
        listener: TcpListener,
        secret: Option<[u8; 32]>,
        handshake_timeout: Duration,
    ) -> std::io::Result<JoinHandle<()>> {
        listener.set_nonblocking(true)?;
        let me = self.clone();
        std::thread::Builder::new().name("kvs-accept".into()).spawn(move || loop {
            if me.all_done() {
                return;
            }
            match listener.accept() {
                Ok((tcp, addr)) => {
                    let me2 = me.clone();
                    let spawned = std::thread::Builder::new().name(format!("kvs-{addr}")).spawn(
                        move || {
                            if tcp.set_nonblocking(false).is_err() {
                                return;
                            }
                            let stream = Stream::Tcp(tcp);
                            if me2.admit(&stream, secret, handshake_timeout, &addr.to_string()) {
                                me2.handle(stream, &addr.to_string());
                            }
                        },
                    );
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "kvs server: cannot start a connection thread");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "kvs server: accept failed");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    }

    /// Authenticate and count a new TCP connection. False = refused (already logged).
    fn admit(&self, stream: &Stream, secret: Option<[u8; 32]>, t: Duration, peer: &str) -> bool {
        let mut w = match stream.try_clone() {
            Ok(w) => w,
            Err(_) => return false,
        };
        let _ = stream.set_write_timeout(Some(t));
        if let Some(secret) = secret {
            let _ = stream.set_read_timeout(Some(t));
            let nonce = auth::new_nonce();
            if w.write_all(pmi1::format("challenge", &[("nonce", &nonce)]).as_bytes())
                .is_err()
            {
                return false;
            }
            let mut r = match stream.try_clone() {
                Ok(s) => BufReader::new(s),
                Err(_) => return false,
            };
            let reason = match read_line(&mut r) {
                Ok(Some(line)) => match pmi1::parse(&line) {
                    Ok(m) if m.cmd == "auth" => match m.arg("mac") {
                        Some(mac) if auth::verify(&secret, &nonce, mac) => None,
                        _ => Some("wrong secret (bad HMAC)"),
                    },
                    _ => Some("expected cmd=auth"),
                },
                Ok(None) => Some("closed during authentication"),
                Err(_) => Some("no valid answer to the challenge in time"),
            };
            if let Some(reason) = reason {
                tracing::warn!(%peer, reason, "kvs server: refused a connection");
                let msg = reason.replace(' ', "_");
                let _ = w.write_all(
                    pmi1::format("auth_result", &[("rc", "-1"), ("msg", &msg)]).as_bytes(),
                );
                stream.shutdown();
                return false;
            }
            let _ = stream.set_read_timeout(None);
            if w.write_all(pmi1::format("auth_result", &[("rc", "0")]).as_bytes())
                .is_err()
            {
                return false;
            }
        }
        let mut st = self.lock();
        if st.connected >= self.shared.cfg.size {
            drop(st);
            tracing::warn!(%peer, "kvs server: refused a connection: all ranks already connected");
            let _ = w.write_all(
                pmi1::format("auth_result", &[("rc", "-1"), ("msg", "job_full")]).as_bytes(),
            );
            stream.shutdown();
            return false;
        }
        st.connected += 1;
        true
    }

    /// True when every rank has finalized.
    pub fn all_done(&self) -> bool {
        self.lock().finalized >= self.shared.cfg.size
    }

    /// Wait (at most `t`) until every rank finalized or the job broke. True if all finalized.
    pub fn wait_all_finalized(&self, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        let mut st = self.lock();
        loop {
            if st.finalized >= self.shared.cfg.size {
                return true;
            }
            if st.broken.is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = match self.shared.cv.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Make every pending and future fence fail with `reason` (e.g. a rank died).
    pub fn abort(&self, reason: &str) {
        let mut st = self.lock();
        if st.broken.is_none() {
            st.broken = Some(reason.to_string());
        }
        self.shared.cv.notify_all();
    }

    /// The process behind connection `label` ended (`how`); unless it finalized, fences
    /// can no longer complete, so pending and future ones fail.
    pub fn rank_exited(&self, label: &str, how: &str) {
        let finalized = self.lock().finalized_labels.contains(label);
        if !finalized {
            self.abort(&format!("{label} {how} without PMI finalize"));
        }
    }

    /// Serve requests until finalize, end of stream or garbage.
    fn handle(&self, stream: Stream, label: &str) {
        let mut w = match stream.try_clone() {
            Ok(w) => w,
            Err(_) => return,
        };
        let mut r = BufReader::new(stream);
        loop {
            let line = match read_line(&mut r) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    self.departed(label, "closed its connection without PMI finalize");
                    return;
                }
                Err(e) => {
                    tracing::warn!(%label, error = %e, "kvs server: bad input, closing");
                    self.departed(label, "sent an unreadable request");
                    return;
                }
            };
            let msg = match pmi1::parse(&line) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%label, error = %e, "kvs server: garbage request, closing");
                    let _ = w.write_all(
                        pmi1::format("error", &[("rc", "-1"), ("msg", "bad_request")]).as_bytes(),
                    );
                    self.departed(label, "sent a malformed request");
                    return;
                }
            };
            let (reply, last) = self.answer(&msg);
            if w.write_all(reply.as_bytes()).is_err() {
                if !last {
                    self.departed(label, "could not be written to");
                }
                return;
            }
            if last {
                if msg.cmd == "finalize" {
                    let mut st = self.lock();
                    st.finalized += 1;
                    st.finalized_labels.insert(label.to_string());
                    self.shared.cv.notify_all();
                }
                return;
            }
        }
    }

    fn departed(&self, label: &str, how: &str) {
        if !self.shared.cfg.break_on_disconnect {
            tracing::debug!(%label, how, "kvs server: connection ended");
            return;
        }
        let mut st = self.lock();
        if st.broken.is_none() {
            st.broken = Some(format!("rank connection {label} {how}"));
        }
        self.shared.cv.notify_all();
    }

    /// The reply to one request, and whether the conversation ends after it.
    fn answer(&self, m: &Msg) -> (String, bool) {
        let cfg = &self.shared.cfg;
        let size = cfg.size.to_string();
        match m.cmd.as_str() {
            "init" => (
                pmi1::format(
                    "response_to_init",
                    &[("pmi_version", "1"), ("pmi_subversion", "1"), ("rc", "0")],
                ),
                false,
            ),
            "get_maxes" => (
                pmi1::format(
                    "maxes",
                    &[
                        ("kvsname_max", "256"),
                        ("keylen_max", "64"),
                        ("vallen_max", "1024"),
                    ],
                ),
                false,
            ),
            "get_my_kvsname" => (
                pmi1::format("my_kvsname", &[("kvsname", &cfg.kvsname)]),
                false,
            ),
            "get_universe_size" => (pmi1::format("universe_size", &[("size", &size)]), false),
            "get_appnum" => (pmi1::format("appnum", &[("appnum", "0")]), false),
            "put" => {
                let (Some(k), Some(v)) = (m.arg("key"), m.arg("value")) else {
                    return (
                        pmi1::format(
                            "put_result",
                            &[("rc", "-1"), ("msg", "missing_key_or_value")],
                        ),
                        false,
                    );
                };
                if k.len() > 64 || v.len() > 1024 {
                    return (
                        pmi1::format(
                            "put_result",
                            &[("rc", "-1"), ("msg", "key_or_value_too_long")],
                        ),
                        false,
                    );
                }
                self.lock().kv.insert(k.to_string(), v.to_string());
                (
                    pmi1::format("put_result", &[("rc", "0"), ("msg", "success")]),
                    false,
                )
            }
            "get" => {
                let Some(k) = m.arg("key") else {
                    return (
                        pmi1::format("get_result", &[("rc", "-1"), ("msg", "missing_key")]),
                        false,
                    );
                };
                match self.lock().kv.get(k) {
                    Some(v) => (
                        pmi1::format(
                            "get_result",
                            &[("rc", "0"), ("msg", "success"), ("value", v)],
                        ),
                        false,
                    ),
                    None => (
                        pmi1::format(
                            "get_result",
                            &[("rc", "-1"), ("msg", "key_not_found"), ("value", "unknown")],
                        ),
                        false,
                    ),
                }
            }
            "barrier_in" => (self.barrier(), false),
            // Counted by `handle` once the ack is written, so that a serving rank waiting for
            // everyone to finalize cannot exit before the last ack went out.
            "finalize" => (pmi1::format("finalize_ack", &[]), true),
            "abort" => {
                self.abort("a rank called PMI abort");
                (pmi1::format("abort_ack", &[]), true)
            }
            other => {
                tracing::warn!(cmd = other, "kvs server: unknown command");
                (
                    pmi1::format("error", &[("rc", "-1"), ("msg", "unknown_command")]),
                    false,
                )
            }
        }
    }

    fn barrier(&self) -> String {
        let fail = |why: &str| {
            pmi1::format(
                "barrier_out",
                &[("rc", "-1"), ("msg", &why.replace(' ', "_"))],
            )
        };
        let mut st = self.lock();
        if let Some(b) = &st.broken {
            return fail(b);
        }
        if st.finalized > 0 {
            return fail("a rank already finalized, so this fence cannot complete");
        }
        let my_epoch = st.epoch;
        st.arrived += 1;
        if st.arrived >= self.shared.cfg.size {
            st.arrived = 0;
            st.epoch += 1;
            self.shared.cv.notify_all();
            return pmi1::format("barrier_out", &[]);
        }
        loop {
            if st.epoch != my_epoch {
                return pmi1::format("barrier_out", &[]);
            }
            if let Some(b) = &st.broken {
                return fail(b);
            }
            st = match self.shared.cv.wait(st) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::pmi1::Pmi1Client;
    use crate::bootstrap::Kvs;
    use std::os::unix::net::UnixStream;

    #[test]
    fn fence_and_get_over_socketpairs() {
        let srv = KvsServer::new(ServerConfig {
            size: 3,
            kvsname: "t".into(),
            preset: vec![],
            break_on_disconnect: true,
        });
        let mut handles = Vec::new();
        for r in 0..3u32 {
            let (a, b) = UnixStream::pair().unwrap();
            srv.serve(Stream::Unix(a), format!("rank{r}")).unwrap();
            handles.push(std::thread::spawn(move || {
                let mut c =
                    Pmi1Client::init(Stream::Unix(b), "test", Duration::from_secs(10)).unwrap();
                c.put(&format!("ep-{r}"), &format!("v{r};x")).unwrap();
                c.fence().unwrap();
                for s in 0..3 {
                    assert_eq!(c.get(&format!("ep-{s}")).unwrap(), format!("v{s};x"));
                }
                assert!(matches!(
                    c.get("nope"),
                    Err(crate::bootstrap::BootstrapError::KeyNotFound { .. })
                ));
                c.fence().unwrap();
                c.finalize().unwrap();
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert!(srv.wait_all_finalized(Duration::from_secs(5)));
    }

    #[test]
    fn fence_fails_when_a_rank_leaves() {
        let srv = KvsServer::new(ServerConfig {
            size: 2,
            kvsname: "t".into(),
            preset: vec![],
            break_on_disconnect: true,
        });
        let (a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        srv.serve(Stream::Unix(a), "r0".into()).unwrap();
        srv.serve(Stream::Unix(c), "r1".into()).unwrap();
        let waiter = std::thread::spawn(move || {
            let mut k = Pmi1Client::init(Stream::Unix(b), "test", Duration::from_secs(10)).unwrap();
            k.fence()
        });
        drop(d);
        assert!(waiter.join().unwrap().is_err());
    }

    #[test]
    fn garbage_closes_only_that_connection() {
        use std::io::{BufRead, Write};
        let srv = KvsServer::new(ServerConfig {
            size: 2,
            kvsname: "t".into(),
            preset: vec![],
            break_on_disconnect: true,
        });
        let (a, mut b) = UnixStream::pair().unwrap();
        srv.serve(Stream::Unix(a), "g".into()).unwrap();
        b.write_all(b"\x00\x01garbage\n").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&b).read_line(&mut line).unwrap();
        assert!(line.starts_with("cmd=error"));
    }
}
