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
    let tcp = connect_with_retry(&rv.coord, rv.timeout)?;
    let stream = Stream::Tcp(tcp);
    if let Some(secret) = rv.secret {
        authenticate(&stream, &secret, &rv.coord, rv.timeout)?;
    }
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

fn authenticate(
    stream: &Stream,
    secret: &[u8; 32],
    coord: &str,
    t: Duration,
) -> Result<(), BootstrapError> {
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
    let ch = next(&mut r)?;
    let nonce = match (ch.cmd.as_str(), ch.arg("nonce")) {
        ("challenge", Some(n)) if !n.is_empty() && n.len() <= 128 => n.to_string(),
        ("auth_result", _) => {
            return Err(BootstrapError::Auth(format!(
                "refused by {coord}: {}",
                ch.arg("msg").unwrap_or("?")
            )))
        }
        _ => {
            return Err(BootstrapError::Protocol {
                peer: coord.into(),
                detail: "expected an authentication challenge".into(),
            })
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
        )));
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
