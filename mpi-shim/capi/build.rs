//! The shared library is `libmpi.so`, with the soname of MPICH's ABI (`libmpi.so.12`), so
//! programs linked against it (or against MPICH's) look for that name at run time.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmpi.so.12");
    println!("cargo:rerun-if-changed=build.rs");
}
