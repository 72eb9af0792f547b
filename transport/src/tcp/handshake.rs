//! Mutual authentication without sending the secret.
//!
//! ```text
//! connector                                   acceptor
//!   Hello{job, from, to, nonce_c}      ---->
//!                                      <----  Challenge{nonce_a, mac_a}
//!   check mac_a
//!   Auth{mac_c}                        ---->
//!                                             check mac_c
//!                                      <----  Ok
//! mac_a = HMAC-SHA256(secret, "acceptor"  || job || from || to || nonce_c)
//! mac_c = HMAC-SHA256(secret, "connector" || job || from || to || nonce_a)
//! ```
//!
//! Every message starts with an 8-byte preamble `"ZRNK" | version u16 LE | kind u8 | code u8`
//! followed by a fixed-size body chosen by `kind` (integers little-endian). Either side may
//! answer `Reject{code, detail u64}` instead, so that both ends report the real cause.

use super::TcpError;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Handshake magic.
pub const MAGIC: [u8; 4] = *b"ZRNK";
/// Handshake protocol version.
pub const VERSION: u16 = 1;
/// Bytes of the message preamble.
pub const PREAMBLE_LEN: usize = 8;

const KIND_HELLO: u8 = 1;
const KIND_CHALLENGE: u8 = 2;
const KIND_AUTH: u8 = 3;
const KIND_OK: u8 = 4;
const KIND_REJECT: u8 = 5;

const HELLO_BODY: usize = 8 + 4 + 4 + 32;
const CHALLENGE_BODY: usize = 32 + 32;
const AUTH_BODY: usize = 32;
const REJECT_BODY: usize = 8;

/// Why a side rejects, as sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Code {
    WrongJob = 1,
    WrongSecret = 2,
    BadRank = 3,
    WrongDestination = 4,
    Version = 5,
}

type HmacSha256 = Hmac<Sha256>;

/// What one side knows about the job.
pub struct Params<'a> {
    /// Job id.
    pub job: u64,
    /// This rank.
    pub my_rank: u32,
    /// Ranks in the job (checked by the acceptor).
    pub size: u32,
    /// The per-job secret.
    pub secret: &'a [u8; 32],
}

fn mac(
    secret: &[u8; 32],
    label: &[u8],
    job: u64,
    from: u32,
    to: u32,
    nonce: &[u8; 32],
) -> Result<HmacSha256, TcpError> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret)
        .map_err(|e| TcpError::Io(std::io::Error::other(e.to_string())))?;
    m.update(label);
    m.update(&job.to_le_bytes());
    m.update(&from.to_le_bytes());
    m.update(&to.to_le_bytes());
    m.update(nonce);
    Ok(m)
}

fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

fn preamble(kind: u8, code: u8) -> [u8; PREAMBLE_LEN] {
    let v = VERSION.to_le_bytes();
    [
        MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1], kind, code,
    ]
}

async fn send<S: AsyncWrite + Unpin>(
    s: &mut S,
    kind: u8,
    code: u8,
    body: &[u8],
) -> Result<(), TcpError> {
    let mut msg = [0u8; PREAMBLE_LEN + CHALLENGE_BODY];
    msg[..PREAMBLE_LEN].copy_from_slice(&preamble(kind, code));
    let n = PREAMBLE_LEN + body.len();
    msg[PREAMBLE_LEN..n].copy_from_slice(body);
    s.write_all(&msg[..n]).await.map_err(TcpError::Io)?;
    s.flush().await.map_err(TcpError::Io)
}

/// Tell the peer why we refuse; best effort (the peer may be gone or garbage).
async fn reject<S: AsyncWrite + Unpin>(s: &mut S, code: Code, detail: u64) {
    let _ = send(s, KIND_REJECT, code as u8, &detail.to_le_bytes()).await;
}

/// Read one message of `kind` into `body` (its exact size). A `Reject` from the peer is
/// turned into the matching error.
async fn recv<S: AsyncRead + Unpin>(
    s: &mut S,
    kind: u8,
    body: &mut [u8],
    local_job: u64,
) -> Result<(), TcpError> {
    let mut pre = [0u8; PREAMBLE_LEN];
    read_exact_or(s, &mut pre).await?;
    if pre[..4] != MAGIC {
        return Err(TcpError::Garbage(format!("bad magic {:02x?}", &pre[..4])));
    }
    let version = u16::from_le_bytes([pre[4], pre[5]]);
    if pre[6] == KIND_REJECT {
        let mut d = [0u8; REJECT_BODY];
        read_exact_or(s, &mut d).await?;
        let detail = u64::from_le_bytes(d);
        return Err(match pre[7] {
            c if c == Code::WrongJob as u8 => TcpError::WrongJob {
                local: local_job,
                remote: detail,
            },
            c if c == Code::WrongSecret as u8 => TcpError::WrongSecret,
            c if c == Code::BadRank as u8 => TcpError::Refused {
                reason: format!("rank out of range (job has {detail} ranks)"),
            },
            c if c == Code::WrongDestination as u8 => TcpError::Refused {
                reason: format!("wrong destination: the peer is rank {detail}"),
            },
            c if c == Code::Version as u8 => TcpError::Refused {
                reason: format!("handshake version mismatch: peer speaks version {detail}"),
            },
            c => TcpError::Refused {
                reason: format!("unknown reject code {c}"),
            },
        });
    }
    if version != VERSION {
        return Err(TcpError::Garbage(format!(
            "handshake version {version}, expected {VERSION}"
        )));
    }
    if pre[6] != kind {
        return Err(TcpError::Garbage(format!(
            "message kind {}, expected {kind}",
            pre[6]
        )));
    }
    read_exact_or(s, body).await
}

async fn read_exact_or<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> Result<(), TcpError> {
    s.read_exact(buf).await.map_err(TcpError::mid_message)
}

/// Acceptor side; returns the authenticated peer rank.
pub async fn acceptor<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    p: &Params<'_>,
) -> Result<u32, TcpError> {
    let mut pre = [0u8; PREAMBLE_LEN];
    read_exact_or(s, &mut pre).await?;
    if pre[..4] != MAGIC {
        return Err(TcpError::Garbage(format!("bad magic {:02x?}", &pre[..4])));
    }
    let version = u16::from_le_bytes([pre[4], pre[5]]);
    if version != VERSION {
        reject(s, Code::Version, VERSION as u64).await;
        return Err(TcpError::Garbage(format!(
            "handshake version {version}, expected {VERSION}"
        )));
    }
    if pre[6] != KIND_HELLO {
        return Err(TcpError::Garbage(format!(
            "message kind {}, expected hello",
            pre[6]
        )));
    }
    let mut hello = [0u8; HELLO_BODY];
    read_exact_or(s, &mut hello).await?;
    let (job, rest) = hello.split_at(8);
    let (from, rest) = rest.split_at(4);
    let (to, nonce_c) = rest.split_at(4);
    let job = u64::from_le_bytes(job.try_into().unwrap_or_default());
    let from = u32::from_le_bytes(from.try_into().unwrap_or_default());
    let to = u32::from_le_bytes(to.try_into().unwrap_or_default());
    let nonce_c: [u8; 32] = nonce_c.try_into().unwrap_or_default();
    if job != p.job {
        reject(s, Code::WrongJob, p.job).await;
        return Err(TcpError::WrongJob {
            local: p.job,
            remote: job,
        });
    }
    if from >= p.size {
        reject(s, Code::BadRank, p.size as u64).await;
        return Err(TcpError::BadRank(format!(
            "peer claims rank {from}, the job has {} ranks",
            p.size
        )));
    }
    if to != p.my_rank {
        reject(s, Code::WrongDestination, p.my_rank as u64).await;
        return Err(TcpError::BadRank(format!(
            "peer wants rank {to}, this is rank {}",
            p.my_rank
        )));
    }

    let nonce_a = nonce();
    let mac_a = mac(p.secret, b"acceptor", job, from, to, &nonce_c)?
        .finalize()
        .into_bytes();
    let mut challenge = [0u8; CHALLENGE_BODY];
    challenge[..32].copy_from_slice(&nonce_a);
    challenge[32..].copy_from_slice(&mac_a);
    send(s, KIND_CHALLENGE, 0, &challenge).await?;

    let mut auth = [0u8; AUTH_BODY];
    recv(s, KIND_AUTH, &mut auth, p.job).await?;
    if mac(p.secret, b"connector", job, from, to, &nonce_a)?
        .verify_slice(&auth)
        .is_err()
    {
        reject(s, Code::WrongSecret, 0).await;
        return Err(TcpError::WrongSecret);
    }
    send(s, KIND_OK, 0, &[]).await?;
    Ok(from)
}

/// Connector side, towards rank `peer`.
pub async fn connector<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    p: &Params<'_>,
    peer: u32,
) -> Result<(), TcpError> {
    let nonce_c = nonce();
    let mut hello = [0u8; HELLO_BODY];
    hello[..8].copy_from_slice(&p.job.to_le_bytes());
    hello[8..12].copy_from_slice(&p.my_rank.to_le_bytes());
    hello[12..16].copy_from_slice(&peer.to_le_bytes());
    hello[16..].copy_from_slice(&nonce_c);
    send(s, KIND_HELLO, 0, &hello).await?;

    let mut challenge = [0u8; CHALLENGE_BODY];
    recv(s, KIND_CHALLENGE, &mut challenge, p.job).await?;
    let (nonce_a, mac_a) = challenge.split_at(32);
    let nonce_a: [u8; 32] = nonce_a.try_into().unwrap_or_default();
    if mac(p.secret, b"acceptor", p.job, p.my_rank, peer, &nonce_c)?
        .verify_slice(mac_a)
        .is_err()
    {
        reject(s, Code::WrongSecret, 0).await;
        return Err(TcpError::WrongSecret);
    }
    let mac_c = mac(p.secret, b"connector", p.job, p.my_rank, peer, &nonce_a)?
        .finalize()
        .into_bytes();
    send(s, KIND_AUTH, 0, &mac_c).await?;
    recv(s, KIND_OK, &mut [], p.job).await
}
