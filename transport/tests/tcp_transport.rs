//! TCP transport over real sockets on 127.0.0.1: each side runs its own glommio executor on
//! its own thread; every wait is bounded.

use glommio::{LocalExecutorBuilder, Placement};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;
use zerorank_core::buffer::BufferPool;
use zerorank_core::frame::{access, Expect, FrameError, FrameHeader, FrameKind, HeaderBytes};
use zerorank_transport::tcp::{connect, Listener, TcpConfig, TcpConn, TcpError};

const JOB: u64 = 0x5eed_1234;
const SECRET: [u8; 32] = [7; 32];
const SIZE: u32 = 4;
const SERVER: u32 = 0;
const CLIENT: u32 = 1;
const SIDE_LIMIT: Duration = Duration::from_secs(30);

/// Run `f` on a fresh glommio executor on its own thread; the receiver yields its result,
/// or an error if it timed out or panicked.
fn side<T, F, Fut>(name: &'static str, f: F) -> mpsc::Receiver<Result<T, String>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .name(name)
        .io_memory(256 << 10)
        .spawn(move || async move {
            let out = futures_lite::future::or(async { Some(f().await) }, async {
                glommio::timer::sleep(SIDE_LIMIT).await;
                None
            })
            .await;
            let _ = tx.send(out.ok_or_else(|| format!("{name}: timed out after {SIDE_LIMIT:?}")));
        })
        .expect("spawn executor");
    std::thread::spawn(move || {
        if handle.join().is_err() {
            let _ = tx2.send(Err(format!("{name}: executor thread panicked")));
        }
    });
    rx
}

fn wait<T>(rx: &mpsc::Receiver<Result<T, String>>, what: &str) -> T {
    match rx.recv_timeout(SIDE_LIMIT + Duration::from_secs(5)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(e) => panic!("{what}: no result ({e})"),
    }
}

fn cfg() -> TcpConfig {
    TcpConfig {
        connect_timeout: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(2),
        ..TcpConfig::default()
    }
}

fn header(src: u32, dst: u32, seq: u64, len: usize) -> HeaderBytes {
    FrameHeader {
        job: JOB,
        src,
        dst,
        tag: 9,
        seq,
        len: len as u64,
        kind: FrameKind::Eager,
        ..FrameHeader::default()
    }
    .to_bytes()
}

fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn expect(rank: u32) -> Expect {
    Expect {
        job: JOB,
        rank,
        size: SIZE,
    }
}

/// A server that binds, reports its address, and runs `f` with the listener.
fn server<T, F, Fut>(f: F) -> (SocketAddr, mpsc::Receiver<Result<T, String>>)
where
    T: Send + 'static,
    F: FnOnce(Listener) -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let (atx, arx) = mpsc::channel();
    let rx = side("server", move || async move {
        let l = Listener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        atx.send(l.local_addr()).unwrap();
        f(l).await
    });
    let addr = arx
        .recv_timeout(Duration::from_secs(10))
        .expect("server did not bind");
    (addr, rx)
}

async fn accept_ok(l: &Listener) -> TcpConn {
    let (peer, conn) = l
        .accept(JOB, SERVER, SIZE, &SECRET, &cfg())
        .await
        .expect("accept");
    assert_eq!(peer, CLIENT);
    assert_eq!(conn.peer(), CLIENT);
    conn
}

async fn connect_ok(addr: SocketAddr) -> TcpConn {
    let conn = connect(addr, JOB, CLIENT, SERVER, &SECRET, &cfg())
        .await
        .expect("connect");
    assert_eq!(conn.peer(), SERVER);
    conn
}

const SIZES: [usize; 4] = [0, 8, 64 << 10, 4 << 20];

#[test]
fn handshake_and_frames_round_trip_both_ways() {
    let (addr, srv) = server(|l| async move {
        let (mut rd, mut wr) = accept_ok(&l).await.into_split();
        let pool = BufferPool::new();
        for (i, &len) in SIZES.iter().enumerate() {
            let buf = rd
                .next_frame(&pool, &expect(SERVER))
                .await
                .expect("server next_frame");
            assert_eq!(buf.len(), 64 + len);
            assert_eq!(buf.as_slice().as_ptr() as usize % 64, 0, "aligned");
            let h = access(buf.as_slice()).unwrap().to_native();
            assert_eq!(
                (h.src, h.dst, h.seq, h.len),
                (CLIENT, SERVER, i as u64 + 1, len as u64)
            );
            assert!(
                buf.as_slice()[64..] == pattern(len, 1)[..],
                "payload of {len} B intact"
            );
            // Echo back with a different salt.
            wr.send_frame(&header(SERVER, CLIENT, i as u64 + 1, len), &pattern(len, 2))
                .await
                .expect("server send");
        }
    });
    let cli = side("client", move || async move {
        let (mut rd, mut wr) = connect_ok(addr).await.into_split();
        let pool = BufferPool::new();
        for (i, &len) in SIZES.iter().enumerate() {
            wr.send_frame(&header(CLIENT, SERVER, i as u64 + 1, len), &pattern(len, 1))
                .await
                .expect("client send");
            let buf = rd
                .next_frame(&pool, &expect(CLIENT))
                .await
                .expect("client next_frame");
            assert_eq!(buf.len(), 64 + len);
            let h = access(buf.as_slice()).unwrap().to_native();
            assert_eq!((h.src, h.dst, h.seq), (SERVER, CLIENT, i as u64 + 1));
            assert!(
                buf.as_slice()[64..] == pattern(len, 2)[..],
                "echo of {len} B intact"
            );
        }
    });
    wait(&srv, "server");
    wait(&cli, "client");
}

#[test]
fn ten_thousand_frames_in_order_full_duplex() {
    const N: u64 = 10_000;
    async fn run(conn: TcpConn, me: u32, peer: u32) {
        let (mut rd, mut wr) = conn.into_split();
        let sender = glommio::spawn_local(async move {
            for seq in 1..=N {
                let len = (seq % 300) as usize;
                wr.send_frame(&header(me, peer, seq, len), &pattern(len, seq as u8))
                    .await
                    .expect("send");
            }
            wr
        });
        let pool = BufferPool::new();
        for seq in 1..=N {
            let buf = rd.next_frame(&pool, &expect(me)).await.expect("next_frame");
            let h = access(buf.as_slice()).unwrap();
            assert_eq!(h.seq.to_native(), seq, "frames in order");
            let len = (seq % 300) as usize;
            assert!(buf.as_slice()[64..] == pattern(len, seq as u8)[..]);
        }
        let _wr = sender.await;
    }
    let (addr, srv) = server(|l| async move { run(accept_ok(&l).await, SERVER, CLIENT).await });
    let cli = side("client", move || async move {
        run(connect_ok(addr).await, CLIENT, SERVER).await
    });
    wait(&srv, "server");
    wait(&cli, "client");
}

/// Large and small frames back to back, sent before any is read: the reader stages
/// less after a large frame (it reads the rest of a large one straight into its buffer),
/// so small frames after large ones, and a large one after small ones, cross the stage in
/// every combination.
#[test]
fn large_and_small_frames_interleaved_arrive_intact() {
    const LENS: [usize; 14] = [
        100 << 10,
        8,
        20 << 10,
        0,
        300,
        64 << 10,
        5,
        (16 << 10) - 1,
        16 << 10,
        1 << 20,
        4000,
        4100,
        17 << 10,
        3,
    ];
    let (addr, srv) = server(|l| async move {
        let (mut rd, _wr) = accept_ok(&l).await.into_split();
        let pool = BufferPool::new();
        for round in 0..3u64 {
            for (i, &len) in LENS.iter().enumerate() {
                let seq = round * 100 + i as u64 + 1;
                let buf = rd
                    .next_frame(&pool, &expect(SERVER))
                    .await
                    .expect("next_frame");
                let h = access(buf.as_slice()).unwrap().to_native();
                assert_eq!((h.seq, h.len), (seq, len as u64), "frames in order");
                assert!(
                    buf.as_slice()[64..] == pattern(len, seq as u8)[..],
                    "frame {seq} of {len} B intact"
                );
            }
        }
    });
    let cli = side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        for round in 0..3u64 {
            for (i, &len) in LENS.iter().enumerate() {
                let seq = round * 100 + i as u64 + 1;
                wr.send_frame(&header(CLIENT, SERVER, seq, len), &pattern(len, seq as u8))
                    .await
                    .expect("send");
            }
        }
        // Keep the connection open until the server has read everything.
        glommio::timer::sleep(std::time::Duration::from_millis(500)).await;
    });
    wait(&srv, "server");
    wait(&cli, "client");
}

#[test]
fn wrong_secret_is_refused_on_both_sides() {
    let (addr, srv) = server(|l| async move {
        l.accept(JOB, SERVER, SIZE, &SECRET, &cfg())
            .await
            .map(|_| ())
    });
    let cli = side("client", move || async move {
        connect(addr, JOB, CLIENT, SERVER, &[8; 32], &cfg())
            .await
            .map(|_| ())
    });
    let c = wait(&cli, "client");
    let s = wait(&srv, "server");
    assert!(matches!(c, Err(TcpError::WrongSecret)), "client: {c:?}");
    assert!(matches!(s, Err(TcpError::WrongSecret)), "server: {s:?}");
}

#[test]
fn wrong_job_and_wrong_rank_are_refused() {
    let (addr, srv) = server(|l| async move {
        let a = l
            .accept(JOB, SERVER, SIZE, &SECRET, &cfg())
            .await
            .map(|_| ());
        let b = l
            .accept(JOB, SERVER, SIZE, &SECRET, &cfg())
            .await
            .map(|_| ());
        let c = l
            .accept(JOB, SERVER, SIZE, &SECRET, &cfg())
            .await
            .map(|_| ());
        (a, b, c)
    });
    let cli = side("client", move || async move {
        let a = connect(addr, JOB + 1, CLIENT, SERVER, &SECRET, &cfg())
            .await
            .map(|_| ());
        let b = connect(addr, JOB, SIZE + 3, SERVER, &SECRET, &cfg())
            .await
            .map(|_| ());
        let c = connect(addr, JOB, CLIENT, 2, &SECRET, &cfg())
            .await
            .map(|_| ());
        (a, b, c)
    });
    let (ca, cb, cc) = wait(&cli, "client");
    let (sa, sb, sc) = wait(&srv, "server");
    assert!(
        matches!(ca, Err(TcpError::WrongJob { local, remote }) if local == JOB + 1 && remote == JOB),
        "{ca:?}"
    );
    assert!(
        matches!(sa, Err(TcpError::WrongJob { local, remote }) if local == JOB && remote == JOB + 1),
        "{sa:?}"
    );
    assert!(matches!(cb, Err(TcpError::Refused { .. })), "{cb:?}");
    assert!(matches!(sb, Err(TcpError::BadRank(_))), "{sb:?}");
    assert!(matches!(cc, Err(TcpError::Refused { .. })), "{cc:?}");
    assert!(matches!(sc, Err(TcpError::BadRank(_))), "{sc:?}");
}

#[test]
fn garbage_and_silent_peers_are_refused_and_listener_keeps_accepting() {
    let short = TcpConfig {
        handshake_timeout: Duration::from_millis(300),
        ..cfg()
    };
    let (addr, srv) = server(move |l| async move {
        let garbage = l
            .accept(JOB, SERVER, SIZE, &SECRET, &short)
            .await
            .map(|_| ());
        let silent = l
            .accept(JOB, SERVER, SIZE, &SECRET, &short)
            .await
            .map(|_| ());
        let good = l
            .accept(JOB, SERVER, SIZE, &SECRET, &short)
            .await
            .map(|(p, _)| p);
        (garbage, silent, good)
    });
    // Random bytes from a plain blocking socket.
    let mut g = std::net::TcpStream::connect(addr).unwrap();
    let junk: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    g.write_all(&junk).unwrap();
    // A peer that says nothing (kept open until the end of the test).
    std::thread::sleep(Duration::from_millis(50));
    let silent = std::net::TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let cli = side(
        "client",
        move || async move { connect_ok(addr).await.peer() },
    );
    let (garbage, silent_res, good) = wait(&srv, "server");
    assert!(matches!(garbage, Err(TcpError::Garbage(_))), "{garbage:?}");
    assert!(
        matches!(silent_res, Err(TcpError::Timeout { addr: a, .. }) if a == silent.local_addr().unwrap()),
        "{silent_res:?}"
    );
    assert_eq!(good.expect("good peer accepted after bad ones"), CLIENT);
    assert_eq!(wait(&cli, "client"), SERVER);
}

/// Server side of the input-check tests: accept, then return the result of next_frame.
type FrameResult = mpsc::Receiver<Result<Result<usize, TcpError>, String>>;

fn one_frame_server() -> (SocketAddr, FrameResult) {
    server(|l| async move {
        let (mut rd, _wr) = accept_ok(&l).await.into_split();
        let pool = BufferPool::new();
        rd.next_frame(&pool, &expect(SERVER)).await.map(|b| b.len())
    })
}

fn raw_client(addr: SocketAddr, bytes: Vec<u8>) -> mpsc::Receiver<Result<(), String>> {
    side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        wr.send_raw(&bytes).await.expect("send_raw");
        wr.close().await.expect("close");
        // Keep the socket open a moment so the server sees the bytes before any RST.
        glommio::timer::sleep(Duration::from_millis(200)).await;
    })
}

fn framed(prefix: u32, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_le_bytes().to_vec();
    v.extend_from_slice(header);
    v.extend_from_slice(payload);
    v
}

#[test]
fn truncated_frame_is_an_error() {
    let (addr, srv) = one_frame_server();
    let h = header(CLIENT, SERVER, 1, 100);
    let cli = raw_client(addr, framed(64 + 100, h.as_slice(), &[1; 50]));
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert!(matches!(r, Err(TcpError::Truncated)), "{r:?}");
}

#[test]
fn over_limit_length_prefix_is_refused() {
    let limit = TcpConfig::default().max_frame_payload;
    let (addr, srv) = one_frame_server();
    let cli = raw_client(addr, framed((64 + limit + 1) as u32, &[0; 64], &[]));
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert!(
        matches!(r, Err(TcpError::BadLength { len, .. }) if len == 64 + limit + 1),
        "{r:?}"
    );

    // Short of a header is refused too.
    let (addr, srv) = one_frame_server();
    let cli = raw_client(addr, framed(10, &[0; 10], &[]));
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert!(
        matches!(r, Err(TcpError::BadLength { len: 10, .. })),
        "{r:?}"
    );

    // And the sender refuses an oversized payload before writing anything.
    let (addr, srv) = one_frame_server();
    let cli = side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        let big = vec![0u8; limit + 1];
        let e = wr
            .send_frame(&header(CLIENT, SERVER, 1, big.len()), &big)
            .await;
        assert!(matches!(e, Err(TcpError::PayloadTooLarge { .. })), "{e:?}");
        wr.send_frame(&header(CLIENT, SERVER, 1, 3), b"abc")
            .await
            .expect("send after refusal");
        glommio::timer::sleep(Duration::from_millis(200)).await;
    });
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert_eq!(r.expect("the good frame after a refused one"), 64 + 3);
}

#[test]
fn invalid_headers_are_refused() {
    // Not an archived header at all (bytecheck fails on the kind byte).
    let (addr, srv) = one_frame_server();
    let cli = raw_client(addr, framed(64, &[0xff; 64], &[]));
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert!(
        matches!(r, Err(TcpError::BadFrame(FrameError::Invalid(_)))),
        "{r:?}"
    );

    // A well-formed header of another job.
    let (addr, srv) = one_frame_server();
    let other = FrameHeader {
        job: JOB + 1,
        src: CLIENT,
        dst: SERVER,
        ..FrameHeader::default()
    }
    .to_bytes();
    let cli = raw_client(addr, framed(64, other.as_slice(), &[]));
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert!(
        matches!(r, Err(TcpError::BadFrame(FrameError::WrongJob { .. }))),
        "{r:?}"
    );

    // A header whose payload length disagrees with the prefix.
    let (addr, srv) = one_frame_server();
    let h = header(CLIENT, SERVER, 1, 5);
    let cli = raw_client(addr, framed(64 + 8, h.as_slice(), &[0; 8]));
    let r = wait(&srv, "server");
    wait(&cli, "client");
    assert!(
        matches!(
            r,
            Err(TcpError::LengthMismatch {
                prefix: 8,
                header: 5
            })
        ),
        "{r:?}"
    );
}

#[test]
fn peer_death_is_reported_promptly() {
    // Clean close between frames -> PeerClosed; then sending to the dead peer fails.
    let (addr, srv) = server(|l| async move {
        let (mut rd, mut wr) = accept_ok(&l).await.into_split();
        let pool = BufferPool::new();
        for seq in 1..=3 {
            rd.next_frame(&pool, &expect(SERVER))
                .await
                .expect("frame before death");
            let _ = seq;
        }
        // (Bounded by `wait` below: a death never noticed fails the test there.)
        let end = rd.next_frame(&pool, &expect(SERVER)).await;
        // The peer is gone: a send must fail (EPIPE/ECONNRESET), not kill the process.
        let mut send_err = None;
        for seq in 0..1000u64 {
            if let Err(e) = wr
                .send_frame(&header(SERVER, CLIENT, seq, 1000), &[0; 1000])
                .await
            {
                send_err = Some(e);
                break;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        (end.map(|b| b.len()), send_err)
    });
    let cli = side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        for seq in 1..=3 {
            wr.send_frame(&header(CLIENT, SERVER, seq, 8), &[seq as u8; 8])
                .await
                .expect("send");
        }
        // The executor (and its thread) ends here, dropping the connection.
    });
    wait(&cli, "client");
    let (end, send_err) = wait(&srv, "server");
    assert!(matches!(end, Err(TcpError::PeerClosed)), "{end:?}");
    assert!(
        matches!(send_err, Some(TcpError::Io(_))),
        "send to a dead peer: {send_err:?}"
    );

    // Death in the middle of a frame -> Truncated.
    let (addr, srv) = one_frame_server();
    let cli = side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        let h = header(CLIENT, SERVER, 1, 1 << 20);
        wr.send_raw(&framed(64 + (1 << 20), h.as_slice(), &vec![3; 300 << 10]))
            .await
            .expect("partial");
    });
    wait(&cli, "client");
    let r = wait(&srv, "server");
    assert!(matches!(r, Err(TcpError::Truncated)), "{r:?}");
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn connect_retries_until_the_listener_is_up() {
    let addr = free_port();
    let cli = side(
        "client",
        move || async move { connect_ok(addr).await.peer() },
    );
    std::thread::sleep(Duration::from_millis(400));
    let srv = side("server", move || async move {
        let l = Listener::bind(addr).expect("bind late");
        accept_ok(&l).await.peer()
    });
    // Only the late listener answers as SERVER: the client kept trying until it was up.
    assert_eq!(wait(&cli, "client"), SERVER);
    assert_eq!(wait(&srv, "server"), CLIENT);
}

#[test]
fn connect_times_out_naming_the_address() {
    let addr = free_port();
    let short = TcpConfig {
        connect_timeout: Duration::from_millis(300),
        ..cfg()
    };
    let cli = side("client", move || async move {
        connect(addr, JOB, CLIENT, SERVER, &SECRET, &short)
            .await
            .map(|_| ())
    });
    // (A connect that never gave up fails the test in `wait`.)
    let r = wait(&cli, "client");
    match r {
        Err(e @ TcpError::Timeout { addr: a, .. }) => {
            assert_eq!(a, addr);
            assert!(
                e.to_string().contains(&addr.to_string()),
                "message names the address: {e}"
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn zero_copy_sends_arrive_intact() {
    let sizes = [40usize << 10, 1 << 20, 4 << 20, 3 << 20];
    let (addr, srv) = server(move |l| async move {
        let (mut rd, _wr) = accept_ok(&l).await.into_split();
        let pool = BufferPool::new();
        for (i, &len) in sizes.iter().enumerate() {
            let buf = rd
                .next_frame(&pool, &expect(SERVER))
                .await
                .expect("next_frame");
            assert_eq!(buf.len(), 64 + len);
            assert!(
                buf.as_slice()[64..] == pattern(len, i as u8)[..],
                "payload of {len} B intact"
            );
        }
    });
    let cli = side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        wr.set_zerocopy_min(Some(1));
        for (i, &len) in sizes.iter().enumerate() {
            wr.send_frame(
                &header(CLIENT, SERVER, i as u64 + 1, len),
                &pattern(len, i as u8),
            )
            .await
            .expect("zero-copy send");
        }
        glommio::timer::sleep(Duration::from_millis(200)).await;
    });
    wait(&cli, "client");
    wait(&srv, "server");
}

/// Frames gathered from several parts arrive as one contiguous payload, also when the
/// socket buffer fills mid-frame (the receiver is slow, so the non-blocking gather write
/// sends only part and the rest waits for room).
#[test]
fn gathered_frames_arrive_whole_past_a_full_socket_buffer() {
    const FRAMES: u64 = 12;
    const PARTS: [usize; 7] = [10, 40_000, 3, 0, 1 << 20, 5, 70_000];
    let total: usize = PARTS.iter().sum();
    let whole = |seq: u64| -> Vec<u8> {
        PARTS
            .iter()
            .enumerate()
            .flat_map(|(k, &len)| pattern(len, seq as u8 ^ k as u8))
            .collect()
    };
    let (addr, srv) = server(move |l| async move {
        let (mut rd, _wr) = accept_ok(&l).await.into_split();
        let pool = BufferPool::new();
        // Let the sender run into a full socket buffer first.
        glommio::timer::sleep(Duration::from_millis(200)).await;
        for seq in 1..=FRAMES {
            let buf = rd
                .next_frame(&pool, &expect(SERVER))
                .await
                .expect("next_frame");
            let h = access(buf.as_slice()).unwrap().to_native();
            assert_eq!((h.seq, h.len), (seq, total as u64));
            assert!(buf.as_slice()[64..] == whole(seq)[..], "frame {seq} intact");
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    });
    let cli = side("client", move || async move {
        let (_rd, mut wr) = connect_ok(addr).await.into_split();
        for seq in 1..=FRAMES {
            let parts: Vec<Vec<u8>> = PARTS
                .iter()
                .enumerate()
                .map(|(k, &len)| pattern(len, seq as u8 ^ k as u8))
                .collect();
            let refs: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
            wr.send_frame_parts(&header(CLIENT, SERVER, seq, total), &refs)
                .await
                .expect("send_frame_parts");
        }
        // Closing now is fine: what was written is delivered before the FIN.
    });
    wait(&srv, "server");
    wait(&cli, "client");
}

/// A port a live listener holds is refused, although glommio binds with SO_REUSEPORT
/// (a second member on the same port used to start, share it, and take some of the
/// first one's connections); once that listener is closed, the port binds again even
/// with a connection it accepted still open.
#[test]
fn a_port_in_use_is_refused_and_free_again_once_closed() {
    let r = side("bind", || async {
        let first = Listener::bind("127.0.0.1:0".parse().unwrap()).expect("first bind");
        let addr = first.local_addr();
        let second = Listener::bind(addr).map(|_| ());
        let kind = second.as_ref().map_err(|e| (e.kind(), e.to_string()));
        // A connection it accepted outlives it.
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let accepted = first.accept_stream().await.expect("accept");
        drop(first);
        let again = Listener::bind(addr).map(|_| ()).map_err(|e| e.to_string());
        drop((client, accepted));
        (kind.err(), again)
    });
    let (refused, again) = wait(&r, "bind");
    let (kind, text) = refused.expect("a second listener on a live port was allowed");
    assert_eq!(kind, std::io::ErrorKind::AddrInUse, "{text}");
    assert!(text.contains("already in use"), "{text}");
    again.expect("the port did not bind again after its listener closed");
}
