//! The TCP rendezvous shared by the Slurm-environment and manual modes: one rank serves the
//! PMI-1 key-value server ([`super::server`]) on a TCP port, and every rank (the serving one
//! too) connects to it with bounded retries, authenticates with the job secret when there is
//! one, and then speaks PMI-1.

use super::pmi1::{self, Pmi1Client};
use super::server::{KvsServer, ServerConfig};
use super::stream::{read_line, Stream};
use super::{auth, BootstrapError, Kvs};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How to join the rendezvous.
pub struct Rendezvous {
    /// "host:port" of the server.
    pub coord: String,
    /// Run the server here, listening on this address.
    pub serve_on: Option<SocketAddr>,
    /// Ranks in the job.
    pub size: u32,
    /// Authenticate connections with this secret.
    pub secret: Option<[u8; 32]>,
    /// Keys the server starts with.
    pub preset: Vec<(String, String)>,
    /// Bound on every wait.
    pub timeout: Duration,
}

/// A PMI-1 client over TCP; on the serving rank it also keeps the server alive until every
/// rank finalized.
pub struct TcpKvs {
    client: Pmi1Client,
    server: Option<KvsServer>,
    timeout: Duration,
}

/// Join: start the server if asked, connect, authenticate, `init`.
pub fn join(rv: Rendezvous) -> Result<TcpKvs, BootstrapError> {
    let secs = rv.timeout.as_secs();
    let server = match rv.serve_on {
        None => None,
        Some(addr) => {
            let listener = TcpListener::bind(addr).map_err(|e| BootstrapError::Io {
                what: format!(
                    "rank 0 could not listen on {addr} for the bootstrap rendezvous (is the port \
                     in use by another job? choose another with ZR_COORD or ZR_KVS_PORT)"
                ),
                source: e,
            })?;
            let srv = KvsServer::new(ServerConfig {
                size: rv.size,
                kvsname: "zerorank".into(),
                preset: rv.preset.clone(),
                break_on_disconnect: true,
            });
            srv.serve_tcp(listener, rv.secret, Duration::from_secs(10))
                .map_err(|e| BootstrapError::io("starting the key-value server thread", e, secs))?;
            tracing::debug!(%addr, "bootstrap: key-value server listening");
            Some(srv)
        }
    };
    let deadline = Instant::now() + rv.timeout;
    let stream = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let stream = Stream::Tcp(connect_with_retry(&rv.coord, left)?);
        let Some(secret) = rv.secret else {
            break stream;
        };
        match authenticate(&stream, &secret, &rv.coord, rv.timeout) {
            Ok(()) => break stream,
            // Dropped before the challenge: nothing was exchanged, so connect again (bounded
            // by the same deadline). The last such error is the one reported.
            Err(Attempt::Dropped(e)) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "bootstrap: coordinator dropped the connection; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(Attempt::Dropped(e) | Attempt::Failed(e)) => return Err(e),
        }
    };
    let client = Pmi1Client::init(
        stream,
        &format!("the bootstrap coordinator at {}", rv.coord),
        rv.timeout,
    )?;
    Ok(TcpKvs {
        client,
        server,
        timeout: rv.timeout,
    })
}

fn connect_with_retry(coord: &str, bound: Duration) -> Result<TcpStream, BootstrapError> {
    let deadline = Instant::now() + bound;
    let mut last = String::from("no attempt made");
    loop {
        match coord.to_socket_addrs() {
            Ok(addrs) => {
                for a in addrs {
                    match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            return Ok(s);
                        }
                        Err(e) => last = format!("{a}: {e}"),
                    }
                }
            }
            Err(e) => last = format!("cannot resolve {coord}: {e}"),
        }
        if Instant::now() >= deadline {
            return Err(BootstrapError::Connect {
                addr: coord.to_string(),
                secs: bound.as_secs(),
                last_error: last,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Why an authentication attempt failed.
enum Attempt {
    /// The connection closed or was reset before the challenge arrived.
    Dropped(BootstrapError),
    /// Any other failure; retrying would not help.
    Failed(BootstrapError),
}

impl From<BootstrapError> for Attempt {
    fn from(e: BootstrapError) -> Self {
        Attempt::Failed(e)
    }
}

fn authenticate(
    stream: &Stream,
    secret: &[u8; 32],
    coord: &str,
    t: Duration,
) -> Result<(), Attempt> {
    let secs = t.as_secs();
    let what = format!("authenticating with the bootstrap coordinator at {coord}");
    stream
        .set_read_timeout(Some(t))
        .map_err(|e| BootstrapError::io(what.clone(), e, secs))?;
    let mut r = BufReader::new(
        stream
            .try_clone()
            .map_err(|e| BootstrapError::io(what.clone(), e, secs))?,
    );
    let mut w = stream
        .try_clone()
        .map_err(|e| BootstrapError::io(what.clone(), e, secs))?;
    let next = |r: &mut BufReader<Stream>| -> Result<pmi1::Msg, BootstrapError> {
        match read_line(r) {
            Ok(Some(l)) => pmi1::parse(&l).map_err(|e| BootstrapError::Protocol {
                peer: coord.into(),
                detail: e,
            }),
            Ok(None) => Err(BootstrapError::Auth(format!(
                "{coord} closed the connection during authentication"
            ))),
            Err(e) => Err(BootstrapError::io(what.clone(), e, secs)),
        }
    };
    let ch = match read_line(&mut r) {
        Ok(Some(l)) => pmi1::parse(&l).map_err(|e| BootstrapError::Protocol {
            peer: coord.into(),
            detail: e,
        })?,
        Ok(None) => {
            return Err(Attempt::Dropped(BootstrapError::Auth(format!(
                "{coord} closed the connection before sending its challenge"
            ))))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ) =>
        {
            return Err(Attempt::Dropped(BootstrapError::io(what, e, secs)))
        }
        Err(e) => return Err(Attempt::Failed(BootstrapError::io(what, e, secs))),
    };
    let nonce = match (ch.cmd.as_str(), ch.arg("nonce")) {
        ("challenge", Some(n)) if !n.is_empty() && n.len() <= 128 => n.to_string(),
        ("auth_result", _) => {
            return Err(BootstrapError::Auth(format!(
                "refused by {coord}: {}",
                ch.arg("msg").unwrap_or("?")
            ))
            .into())
        }
        _ => {
            return Err(BootstrapError::Protocol {
                peer: coord.into(),
                detail: "expected an authentication challenge".into(),
            }
            .into())
        }
    };
    w.write_all(pmi1::format("auth", &[("mac", &auth::answer(secret, &nonce))]).as_bytes())
        .map_err(|e| BootstrapError::io(what.clone(), e, secs))?;
    let res = next(&mut r)?;
    if res.cmd != "auth_result" || res.rc() != 0 {
        return Err(BootstrapError::Auth(format!(
            "refused by {coord}: {}",
            res.arg("msg")
                .unwrap_or("no reason given")
                .replace('_', " ")
        ))
        .into());
    }
    // The BufReader may not hold unread bytes: the server sends nothing more until asked.
    Ok(())
}

impl Kvs for TcpKvs {
    fn put(&mut self, key: &str, value: &str) -> Result<(), BootstrapError> {
        self.client.put(key, value)
    }
    fn fence(&mut self) -> Result<(), BootstrapError> {
        self.client.fence()
    }
    fn get(&mut self, key: &str) -> Result<String, BootstrapError> {
        self.client.get(key)
    }
    fn finalize(&mut self) -> Result<(), BootstrapError> {
        self.client.finalize()?;
        if let Some(srv) = &self.server {
            // Keep serving until the others are done reading, so that this rank exiting
            // does not cut them off.
            if !srv.wait_all_finalized(self.timeout) {
                tracing::warn!(
                    "bootstrap: not every rank finalized the key-value exchange in time"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coordinator that drops the first connection before its challenge (as a restarting
    /// or momentarily overloaded server would) is retried, not reported as a failed start.
    #[test]
    fn connection_dropped_before_challenge_is_retried() {
        let secret = [7u8; 32];
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let srv = KvsServer::new(ServerConfig {
            size: 1,
            kvsname: "t".into(),
            preset: vec![],
            break_on_disconnect: true,
        });
        let serve = {
            let srv = srv.clone();
            std::thread::spawn(move || {
                // Drop the first connection unanswered, then serve normally.
                drop(listener.accept().expect("first accept"));
                srv.serve_tcp(listener, Some(secret), Duration::from_secs(5))
                    .expect("serve")
            })
        };
        let mut kvs = join(Rendezvous {
            coord: addr.to_string(),
            serve_on: None,
            size: 1,
            secret: Some(secret),
            preset: vec![],
            timeout: Duration::from_secs(10),
        })
        .expect("join after a dropped connection");
        kvs.put("k", "v").expect("put");
        kvs.fence().expect("fence");
        assert_eq!(kvs.get("k").expect("get"), "v");
        kvs.finalize().expect("finalize");
        assert!(srv.wait_all_finalized(Duration::from_secs(10)));
        let accept = serve.join().expect("server thread");
        accept.join().expect("accept thread");
    }
}
