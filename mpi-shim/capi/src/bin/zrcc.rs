//! `zrcc`: compile and link an MPI C program against zerorank, as `mpicc` does.
//!
//! It runs the C compiler (`$ZRCC_CC`, else `cc`) with the arguments given, plus the
//! include path of `mpi.h`, and, when linking, the library path, `-lmpi` and an rpath.
//! `-show` prints the command instead of running it.
//!
//! Installed (`<prefix>/bin/zrcc`), it uses `<prefix>/include` and `<prefix>/lib`. In the
//! build tree (`target/<profile>/zrcc`), it uses the crate's `include/` and the directory
//! of the executable, where cargo put `libmpi.so`; it makes the `libmpi.so.12` link there
//! that programs look for at run time.

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-help") {
        println!(
            "usage: zrcc [-show] <cc arguments...>\n\
             Compiles and links MPI C programs against zerorank (mpi.h, libmpi.so.12).\n\
             -show      print the compiler command instead of running it\n\
             ZRCC_CC    the C compiler to run (default: cc)"
        );
        return;
    }
    let (include, lib) = match locate() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zrcc: {e}");
            exit(2);
        }
    };
    let show = args.iter().any(|a| a == "-show");
    let args: Vec<String> = args.into_iter().filter(|a| a != "-show").collect();
    // Compile-only invocations (-c, -E, -S, -M) must not get linker arguments.
    let link = !args
        .iter()
        .any(|a| matches!(a.as_str(), "-c" | "-E" | "-S" | "-M" | "-MM"));
    let cc = std::env::var("ZRCC_CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = vec![cc, format!("-I{}", include.display())];
    cmd.extend(args);
    if link {
        cmd.push(format!("-L{}", lib.display()));
        cmd.push(format!("-Wl,-rpath,{}", lib.display()));
        cmd.push("-lmpi".into());
    }
    if show {
        println!("{}", cmd.join(" "));
        return;
    }
    match Command::new(&cmd[0]).args(&cmd[1..]).status() {
        Ok(s) => exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!(
                "zrcc: cannot run the C compiler '{}': {e} (set ZRCC_CC)",
                cmd[0]
            );
            exit(2);
        }
    }
}

/// The include and library directories.
fn locate() -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own path: {e}"))?;
    let bin = exe.parent().ok_or("my path has no directory")?;
    if let Some(prefix) = bin.parent() {
        let (inc, lib) = (prefix.join("include"), prefix.join("lib"));
        if inc.join("mpi.h").is_file() && lib.join("libmpi.so.12").exists() {
            return Ok((inc, lib));
        }
    }
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    if !bin.join("libmpi.so").is_file() {
        return Err(format!(
            "libmpi.so is not next to me in {} (build it: cargo build -p zerorank-mpi) and no \
             installed prefix was found",
            bin.display()
        ));
    }
    let link = bin.join("libmpi.so.12");
    if !link.exists() {
        // Several zrcc at once (make -j) may each find the link missing: each makes its
        // own under a private name and renames it into place, which is atomic and
        // replaces whatever another made (or a dangling link) with the same link.
        let own = bin.join(format!(".libmpi.so.12.zrcc-{}", std::process::id()));
        let _ = std::fs::remove_file(&own);
        std::os::unix::fs::symlink("libmpi.so", &own)
            .and_then(|()| std::fs::rename(&own, &link))
            .map_err(|e| {
                let _ = std::fs::remove_file(&own);
                format!("cannot create {}: {e}", link.display())
            })?;
    }
    Ok((inc, bin.to_path_buf()))
}
