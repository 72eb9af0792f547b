//! Segment lifecycle: creation mode, unlink, validation of foreign or corrupt files.
#![cfg(not(loom))]

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use zerorank_transport::shm::{segment_name, ShmConfig, ShmError, ShmSegment};

fn job_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    0x7e57_0000_0000_0000 | (std::process::id() as u64) << 16 | N.fetch_add(1, Ordering::Relaxed)
}

fn path(job: u64) -> String {
    format!("/dev/shm/{}", segment_name(job, 0))
}

fn small() -> ShmConfig {
    ShmConfig {
        slots: 8,
        slot_size: 256,
    }
}

#[test]
fn create_is_0600_despite_umask_and_unlink_removes() {
    let job = job_id();
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o277) };
    let seg = ShmSegment::create(job, 0, 2, small());
    // SAFETY: as above, restore.
    unsafe { libc::umask(old) };
    let seg = seg.unwrap();
    let meta = std::fs::metadata(path(job)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert!(meta.len() > 0);
    // A second create of the same name fails cleanly.
    let e = ShmSegment::create(job, 0, 2, small()).unwrap_err();
    assert!(matches!(e, ShmError::Create { .. }), "{e}");
    assert!(e.to_string().contains(&segment_name(job, 0)), "{e}");
    let other = ShmSegment::attach(job, 0, 2).unwrap();
    ShmSegment::unlink(job, 0).unwrap();
    assert!(!std::path::Path::new(&path(job)).exists());
    ShmSegment::unlink(job, 0).unwrap(); // idempotent
                                         // The mappings survive the unlink.
    let a = seg.endpoint(0);
    let b = other.endpoint(1);
    assert!(a.try_send(1, 0, &[7u8; 64], b"hello"));
    assert_eq!(b.try_recv(0, |_, f| f.to_vec()).unwrap()[64..], *b"hello");
    // Attaching after the unlink is an open error naming ENOENT.
    let e = ShmSegment::attach(job, 0, 2).unwrap_err();
    assert!(matches!(e, ShmError::Open { .. }), "{e}");
}

#[test]
fn invalid_config_is_refused() {
    for cfg in [
        ShmConfig {
            slots: 3,
            slot_size: 256,
        },
        ShmConfig {
            slots: 8,
            slot_size: 100,
        },
        ShmConfig {
            slots: 8,
            slot_size: 64,
        },
        ShmConfig {
            slots: 0,
            slot_size: 256,
        },
    ] {
        let job = job_id();
        let e = ShmSegment::create(job, 0, 2, cfg).unwrap_err();
        assert!(matches!(e, ShmError::Config(_)), "{e}");
        assert!(!std::path::Path::new(&path(job)).exists());
    }
    assert!(ShmSegment::create(job_id(), 0, 0, small()).is_err());
}

fn write_file(job: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path(job))
        .unwrap();
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn attach_to_garbage_fails_cleanly() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "truncated"),
        (vec![0xab; 100], "truncated"),
        (vec![0xab; 8192], "magic"),
        (vec![0; 1 << 16], "magic"),
    ];
    for (bytes, want) in cases {
        let job = job_id();
        write_file(job, &bytes);
        let e = ShmSegment::attach(job, 0, 2).unwrap_err();
        ShmSegment::unlink(job, 0).unwrap();
        assert!(e.to_string().contains(want), "{} bytes: {e}", bytes.len());
        assert!(e.to_string().contains(&segment_name(job, 0)), "{e}");
    }
}

fn patch(job: u64, off: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path(job))
        .unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn attach_validates_header_and_size() {
    // Header layout: magic u64 @0, version u32 @8, local_size u32 @12, slots u32 @16,
    // slot_size u32 @20, total_len u64 @24.
    type Check = fn(&ShmError) -> bool;
    let cases: Vec<(u64, Vec<u8>, Check)> = vec![
        (8, 99u32.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::Version { .. })
        }),
        (12, 3u32.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::LocalSize { .. })
        }),
        (16, 5u32.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::Geometry { .. })
        }),
        (20, 100u32.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::Geometry { .. })
        }),
        (16, 1024u32.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::SizeMismatch { .. })
        }),
        (20, u32::MAX.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::Geometry { .. })
        }),
        (24, u64::MAX.to_le_bytes().to_vec(), |e| {
            matches!(e, ShmError::SizeMismatch { .. })
        }),
    ];
    for (off, bytes, check) in cases {
        let job = job_id();
        let seg = ShmSegment::create(job, 0, 2, small()).unwrap();
        patch(job, off, &bytes);
        let e = ShmSegment::attach(job, 0, 2).unwrap_err();
        ShmSegment::unlink(job, 0).unwrap();
        drop(seg);
        assert!(check(&e), "patch @{off}: unexpected {e}");
    }
    // Wrong expected local size.
    let job = job_id();
    let _seg = ShmSegment::create(job, 0, 2, small()).unwrap();
    let e = ShmSegment::attach(job, 0, 4).unwrap_err();
    assert!(
        matches!(
            e,
            ShmError::LocalSize {
                found: 2,
                expected: 4,
                ..
            }
        ),
        "{e}"
    );
    // A truncated real segment.
    std::fs::OpenOptions::new()
        .write(true)
        .open(path(job))
        .unwrap()
        .set_len(8192)
        .unwrap();
    let e = ShmSegment::attach(job, 0, 2).unwrap_err();
    assert!(matches!(e, ShmError::SizeMismatch { .. }), "{e}");
    ShmSegment::unlink(job, 0).unwrap();
}

#[test]
fn frames_are_exact_and_aligned() {
    let job = job_id();
    let a = ShmSegment::create(job, 0, 2, small()).unwrap();
    let b = ShmSegment::attach(job, 0, 2).unwrap();
    ShmSegment::unlink(job, 0).unwrap();
    let a = a.endpoint(0);
    let b = b.endpoint(1);
    assert_eq!(a.max_frame(), 240);
    assert!(!b.has_incoming());
    assert!(a.try_send(1, 0, &[1u8; 64], &[2u8; 8]));
    assert!(b.has_incoming());
    let got = b
        .try_recv(0, |_, f| (f.len(), f.as_ptr() as usize % 16))
        .unwrap();
    assert_eq!(got, (72, 0));
    assert!(!b.has_incoming());
    // Fill the ring: 8 slots, then it reports full.
    for i in 0..8u8 {
        assert!(a.try_send(1, 0, &[i; 64], &[i; 128]));
    }
    assert!(!a.try_send(1, 0, &[9; 64], &[]));
    assert!(b.try_recv(0, |_, f| assert_eq!(f[0], 0)).is_some());
    assert!(a.try_send(1, 0, &[9; 64], &[]));
}

#[test]
#[should_panic(expected = "already took")]
fn second_endpoint_of_a_rank_is_refused() {
    let job = job_id();
    let a = ShmSegment::create(job, 0, 2, small()).unwrap();
    let b = ShmSegment::attach(job, 0, 2).unwrap();
    ShmSegment::unlink(job, 0).unwrap();
    let _first = a.endpoint(1);
    let _second = b.endpoint(1);
}
