//! In-memory tests of the protocol: N ranks wired by a fake network, no IO.

use super::*;
use zerorank_core::frame::access;

struct Net {
    ranks: Vec<Protocol>,
    /// Chunk size for streamed data.
    chunk: usize,
}

fn paths_for(me: u32, n: u32, path: Path) -> Vec<Path> {
    (0..n)
        .map(|r| if r == me { Path::Loopback } else { path })
        .collect()
}

impl Net {
    fn new(n: u32, path: Path, cma: bool) -> Net {
        let limits = Limits {
            shm_eager: 100,
            tcp_eager: 100,
            cma,
        };
        let ranks = (0..n)
            .map(|me| {
                Protocol::new(
                    9,
                    me,
                    1000 + me,
                    paths_for(me, n, path),
                    limits,
                    BufferPool::new(),
                )
            })
            .collect();
        Net { ranks, chunk: 37 }
    }

    fn deliver(&mut self, to: u32, mut header: FrameHeader, payload: &[u8]) {
        header.seq = self.ranks[header.src as usize].next_seq(to);
        // Through the wire format and back, as the engine does.
        let bytes = header.to_bytes();
        let h = access(bytes.as_slice()).unwrap().to_native();
        let path = self.ranks[to as usize].path(header.src);
        self.ranks[to as usize].on_frame(path, &h, payload).unwrap();
    }

    /// Carry out every pending action until the network is quiet.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for r in 0..self.ranks.len() {
                while let Some(a) = self.ranks[r].poll_action() {
                    moved = true;
                    match a {
                        Action::Frame {
                            to,
                            header,
                            payload,
                            complete,
                        } => {
                            let bytes = match payload {
                                Payload::None => Vec::new(),
                                Payload::User { buf, off, len } => buf.slice(off, len).to_vec(),
                            };
                            if let Some(id) = complete {
                                self.ranks[r].send_copied(id);
                            }
                            self.deliver(to, header, &bytes);
                        }
                        Action::Stream {
                            to,
                            comm,
                            cookie,
                            buf,
                            len,
                            req,
                        } => {
                            let mut off = 0;
                            while off < len {
                                let n = self.chunk.min(len - off);
                                let h = FrameHeader {
                                    job: 9,
                                    comm,
                                    src: r as u32,
                                    dst: to,
                                    tag: 0,
                                    seq: 0,
                                    len: n as u64,
                                    cookie,
                                    addr: off as u64,
                                    pid: 0,
                                    kind: FrameKind::Data,
                                };
                                let chunk = buf.slice(off, n).to_vec();
                                self.deliver(to, h, &chunk);
                                off += n;
                            }
                            self.ranks[r].send_copied(req);
                        }
                        Action::CmaRead {
                            req,
                            src: _,
                            pid: _,
                            addr,
                            len,
                        } => {
                            let target = self.ranks[r].recv_target(req).unwrap();
                            // SAFETY: in this in-process test the "remote" address is the
                            // sender's live buffer in this same process, at least `len` long.
                            let src = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
                            target.slice_mut(0, len).copy_from_slice(src);
                            self.ranks[r].cma_done(req);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }
}

fn pat(src: Option<u32>, tag: Option<i32>) -> Pattern {
    Pattern { comm: 0, src, tag }
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn eager_and_rendezvous_round_trip_on_every_path() {
    for (path, cma) in [(Path::Shm, true), (Path::Shm, false), (Path::Tcp, false)] {
        for n in [0, 1, 100, 101, 1000] {
            let mut net = Net::new(2, path, cma);
            let msg = data(n, 3);
            let mut out = vec![0u8; n];
            // SAFETY: both buffers outlive the requests, which complete within this block.
            let (s, r) = unsafe {
                (
                    net.ranks[0].post_send(1, 0, 7, SendBuf::from_slice(&msg), SendMode::Standard),
                    net.ranks[1].post_recv(pat(Some(0), Some(7)), RecvBufRef::from_slice(&mut out)),
                )
            };
            net.run();
            let st = net.ranks[1].take(r).unwrap().unwrap();
            assert!(net.ranks[0].take(s).unwrap().is_ok());
            assert_eq!(
                (st.source, st.tag, st.len, st.truncated()),
                (0, 7, n, false),
                "{path:?} {n}"
            );
            assert_eq!(out, msg, "{path:?} cma={cma} n={n}");
        }
    }
}

#[test]
fn unexpected_messages_wait_for_their_receive_in_order() {
    let mut net = Net::new(2, Path::Shm, false);
    let msgs: Vec<Vec<u8>> = (0..6).map(|i| data(40 * i, i as u8)).collect();
    // SAFETY: msgs outlive the requests.
    let sends: Vec<_> = msgs
        .iter()
        .map(|m| unsafe {
            net.ranks[0].post_send(1, 0, 1, SendBuf::from_slice(m), SendMode::Standard)
        })
        .collect();
    net.run();
    assert!(net.ranks[1].probe(&pat(None, None)).is_some());
    for m in &msgs {
        let mut out = vec![0u8; 1000];
        // SAFETY: out outlives the request, taken before the loop iteration ends.
        let r =
            unsafe { net.ranks[1].post_recv(pat(None, Some(1)), RecvBufRef::from_slice(&mut out)) };
        net.run();
        let st = net.ranks[1].take(r).unwrap().unwrap();
        assert_eq!(
            &out[..st.len],
            &m[..],
            "messages of one sender arrive in send order"
        );
    }
    for s in sends {
        assert!(net.ranks[0].take(s).unwrap().is_ok());
    }
}

#[test]
fn truncation_is_reported_with_counts() {
    for n in [50, 500] {
        let mut net = Net::new(2, Path::Tcp, false);
        let msg = data(n, 1);
        let mut out = vec![0u8; 20];
        // SAFETY: buffers outlive the requests.
        let (s, r) = unsafe {
            (
                net.ranks[0].post_send(1, 0, 0, SendBuf::from_slice(&msg), SendMode::Standard),
                net.ranks[1].post_recv(pat(Some(0), None), RecvBufRef::from_slice(&mut out)),
            )
        };
        net.run();
        let st = net.ranks[1].take(r).unwrap().unwrap();
        assert!(st.truncated());
        assert_eq!((st.len, st.sent), (20, n));
        assert_eq!(&out[..], &msg[..20]);
        assert!(net.ranks[0].take(s).unwrap().is_ok());
    }
}

#[test]
fn synchronous_send_completes_only_after_match() {
    let mut net = Net::new(2, Path::Shm, true);
    let msg = data(10, 0);
    // SAFETY: msg outlives the request.
    let s = unsafe {
        net.ranks[0].post_send(1, 0, 0, SendBuf::from_slice(&msg), SendMode::Synchronous)
    };
    net.run();
    assert!(!net.ranks[0].is_done(s), "no receive posted yet");
    let mut out = vec![0u8; 10];
    // SAFETY: out outlives the request.
    let r = unsafe { net.ranks[1].post_recv(pat(None, None), RecvBufRef::from_slice(&mut out)) };
    net.run();
    assert!(net.ranks[0].take(s).unwrap().is_ok());
    assert_eq!(net.ranks[1].take(r).unwrap().unwrap().len, 10);
    assert_eq!(out, msg);
}

#[test]
fn loopback_and_cancel() {
    let mut net = Net::new(1, Path::Shm, false);
    let msg = data(300, 2);
    let mut out = vec![0u8; 300];
    // SAFETY: buffers outlive the requests.
    unsafe {
        let s = net.ranks[0].post_send(0, 0, 3, SendBuf::from_slice(&msg), SendMode::Standard);
        assert!(net.ranks[0].take(s).unwrap().is_ok());
        let r = net.ranks[0].post_recv(pat(Some(0), Some(3)), RecvBufRef::from_slice(&mut out));
        assert_eq!(net.ranks[0].take(r).unwrap().unwrap().len, 300);
        let c = net.ranks[0].post_recv(pat(Some(0), Some(4)), RecvBufRef::from_slice(&mut out));
        assert!(net.ranks[0].cancel_recv(c));
        assert!(net.ranks[0].take(c).unwrap().unwrap().cancelled);
    }
    assert_eq!(out, msg);
}

#[test]
fn failed_peer_fails_pending_operations() {
    let mut net = Net::new(3, Path::Tcp, false);
    let big = data(1000, 0);
    let mut out = vec![0u8; 8];
    // SAFETY: buffers outlive the requests.
    let (s, r, any) = unsafe {
        (
            net.ranks[0].post_send(1, 0, 0, SendBuf::from_slice(&big), SendMode::Standard),
            net.ranks[0].post_recv(pat(Some(1), None), RecvBufRef::from_slice(&mut out)),
            net.ranks[0].post_recv(pat(Some(2), None), RecvBufRef::from_slice(&mut [])),
        )
    };
    net.ranks[0].peer_failed(1, "connection reset");
    assert!(matches!(
        net.ranks[0].take(s),
        Some(Err(OpError::PeerFailed { rank: 1, .. }))
    ));
    assert!(matches!(
        net.ranks[0].take(r),
        Some(Err(OpError::PeerFailed { rank: 1, .. }))
    ));
    assert!(
        !net.ranks[0].is_done(any),
        "receives from healthy ranks stay posted"
    );
    // SAFETY: empty buffer.
    let late =
        unsafe { net.ranks[0].post_send(1, 0, 0, SendBuf::from_slice(&[]), SendMode::Standard) };
    assert!(matches!(
        net.ranks[0].take(late),
        Some(Err(OpError::PeerFailed { .. }))
    ));
}

#[test]
fn any_source_receive_fails_once_no_peer_is_left() {
    let mut net = Net::new(3, Path::Tcp, false);
    let mut out = vec![0u8; 8];
    // SAFETY: the buffer outlives the request.
    let any = unsafe { net.ranks[0].post_recv(pat(None, None), RecvBufRef::from_slice(&mut out)) };
    net.ranks[0].peer_failed(1, "gone");
    assert!(
        !net.ranks[0].is_done(any),
        "rank 2 may still send: the receive stays posted"
    );
    net.ranks[0].peer_failed(2, "gone too");
    assert!(matches!(
        net.ranks[0].take(any),
        Some(Err(OpError::PeerFailed { rank: 2, .. }))
    ));
}

#[test]
fn forged_frames_are_protocol_violations() {
    let mut net = Net::new(2, Path::Tcp, false);
    let mut h = FrameHeader {
        job: 9,
        src: 0,
        dst: 1,
        seq: 5,
        kind: FrameKind::Eager,
        ..Default::default()
    };
    let e = net.ranks[1].on_frame(Path::Tcp, &h, &[]).unwrap_err();
    assert!(e.what.contains("sequence"), "{e}");
    h.seq = 1;
    h.kind = FrameKind::Cts;
    h.cookie = 12345;
    let e = net.ranks[1].on_frame(Path::Tcp, &h, &[]).unwrap_err();
    assert!(e.what.contains("unknown send"), "{e}");
    h.seq = 2;
    h.kind = FrameKind::Data;
    assert!(
        net.ranks[1].on_frame(Path::Shm, &h, &[]).is_err(),
        "wrong path"
    );
}

#[test]
fn eager_header_only_for_standard_small_sends_to_live_shm_peers() {
    let mut net = Net::new(2, Path::Shm, true);
    let p = &mut net.ranks[0];
    let h = p
        .eager_header(1, 3, 7, 100, SendMode::Standard)
        .expect("a small standard send to a shared-memory peer leaves at once");
    assert_eq!((h.src, h.dst, h.comm, h.tag, h.len), (0, 1, 3, 7, 100));
    assert_eq!(h.kind, FrameKind::Eager);
    assert_eq!(h.seq, 0, "the engine stamps the sequence number");
    assert!(
        p.eager_header(1, 3, 7, 101, SendMode::Standard).is_none(),
        "rendezvous size"
    );
    assert!(
        p.eager_header(1, 3, 7, 8, SendMode::Synchronous).is_none(),
        "synchronous"
    );
    assert!(
        p.eager_header(0, 3, 7, 8, SendMode::Standard).is_none(),
        "loopback"
    );
    p.peer_failed(1, "gone");
    assert!(
        p.eager_header(1, 3, 7, 8, SendMode::Standard).is_none(),
        "failed peer"
    );

    let mut tcp = Net::new(2, Path::Tcp, false);
    assert!(
        tcp.ranks[0]
            .eager_header(1, 3, 7, 8, SendMode::Standard)
            .is_none(),
        "TCP sends take a request"
    );
}
