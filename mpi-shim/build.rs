//! Builds `src/op_long_double.c`: the `long double` reduction kernels of `zerorank::op`
//! (Rust has no 80-bit x87 type, so the C compiler does that arithmetic).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/op_long_double.c");
    cc::Build::new()
        .file("src/op_long_double.c")
        .std("c11")
        // Every operation rounded on its own: no fused multiply-add, no fast-math.
        .flag_if_supported("-ffp-contract=off")
        .flag_if_supported("-fno-fast-math")
        .warnings(true)
        .extra_warnings(true)
        .compile("zerorank_op_long_double");
}
