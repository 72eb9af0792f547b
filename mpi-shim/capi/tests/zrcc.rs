//! `zrcc` in the build tree, run many at once as `make -j` runs it: each must find or
//! make the `libmpi.so.12` link next to it, none may fail because another made it first.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{release_dir, run_bounded};
use std::process::Command;
use std::time::Duration;

/// Rounds of concurrent zrcc against a missing link, and zrcc per round.
const ROUNDS: usize = 100;
const AT_ONCE: usize = 12;

/// A copy of the release directory's zrcc and libmpi.so, without the link.
fn build_tree(tmp: &std::path::Path) -> std::path::PathBuf {
    let bin = tmp.join("release");
    std::fs::create_dir(&bin).unwrap();
    for f in ["zrcc", "libmpi.so"] {
        std::fs::copy(release_dir().join(f), bin.join(f)).unwrap();
    }
    bin
}

#[test]
fn zrcc_run_many_at_once_all_find_the_library_link() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = build_tree(tmp.path());
    let link = bin.join("libmpi.so.12");
    for round in 0..ROUNDS {
        let _ = std::fs::remove_file(&link);
        let start = std::sync::Barrier::new(AT_ONCE);
        let outs: Vec<_> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..AT_ONCE)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut cmd = Command::new(bin.join("zrcc"));
                        cmd.args(["-show", "-o", "x", "x.c"]);
                        run_bounded(cmd, Duration::from_secs(60))
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for out in &outs {
            assert!(
                out.status.success(),
                "round {round}: a zrcc of {AT_ONCE} at once failed ({:?}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let shown = String::from_utf8_lossy(&out.stdout);
            assert!(
                shown.contains(&format!("-L{}", bin.display())),
                "round {round}: zrcc -show does not link with its own directory: {shown}"
            );
        }
        assert_eq!(
            std::fs::read_link(&link).ok().as_deref(),
            Some(std::path::Path::new("libmpi.so")),
            "round {round}: libmpi.so.12 is not the link to libmpi.so"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&bin)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("zrcc-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: private links left behind: {leftovers:?}"
        );
    }
}

#[test]
fn zrcc_replaces_a_dangling_library_link() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = build_tree(tmp.path());
    let link = bin.join("libmpi.so.12");
    std::os::unix::fs::symlink("libmpi.so.gone", &link).unwrap();
    let mut cmd = Command::new(bin.join("zrcc"));
    cmd.args(["-show", "-o", "x", "x.c"]);
    let out = run_bounded(cmd, Duration::from_secs(60));
    common::assert_ok(&out, "zrcc -show with a dangling libmpi.so.12");
    assert_eq!(
        std::fs::read_link(&link).ok().as_deref(),
        Some(std::path::Path::new("libmpi.so")),
        "libmpi.so.12 still dangles"
    );
}
