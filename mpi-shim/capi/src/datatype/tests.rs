//! Tests of the datatype engine: predefined layouts against the C structs, the shapes of
//! the constructors, pack/unpack against a naive type-map expansion of random types,
//! and `MPI_Get_elements`.

use super::ffi::*;
use super::*;
use std::ffi::{c_char, CStr};

const INT: c_int = 0x4c00_0405;
const SHORT: c_int = 0x4c00_0203;
const CHAR: c_int = 0x4c00_0101;
const DOUBLE: c_int = 0x4c00_080b;
const FLOAT: c_int = 0x4c00_040a;
const DOUBLE_INT: c_int = 0x8c00_0001_u32 as c_int;
const SHORT_INT: c_int = 0x8c00_0003_u32 as c_int;

/// Run a constructor; its new handle.
fn mk(f: impl FnOnce(*mut c_int) -> c_int) -> c_int {
    let mut h = MPI_DATATYPE_NULL;
    assert_eq!(f(&mut h), MPI_SUCCESS);
    assert_ne!(h, MPI_DATATYPE_NULL);
    h
}

fn free(mut h: c_int) {
    assert_eq!(MPI_Type_free(&mut h), MPI_SUCCESS);
    assert_eq!(h, MPI_DATATYPE_NULL);
}

/// (size, lb, extent, true lb, true extent)
fn shape(h: c_int) -> (usize, isize, isize, isize, isize) {
    let t = lookup_any(h).unwrap();
    (t.size(), t.lb(), t.extent(), t.true_lb(), t.true_extent())
}

fn name(h: c_int) -> String {
    let mut buf = [0 as c_char; 128];
    let mut len = -1;
    assert_eq!(
        MPI_Type_get_name(h, buf.as_mut_ptr(), &mut len),
        MPI_SUCCESS
    );
    // SAFETY: MPI_Type_get_name wrote a NUL-terminated string into buf.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(len as usize, s.len());
    s
}

#[repr(C)]
struct FloatInt(f32, i32);
#[repr(C)]
struct DoubleInt(f64, i32);
#[repr(C)]
struct LongInt(i64, i32);
#[repr(C)]
struct ShortInt(i16, i32);
#[repr(C)]
struct TwoInt(i32, i32);
/// `long double` on x86_64: 16 bytes, 16-aligned.
#[repr(C, align(16))]
struct LongDouble([u8; 16]);
#[repr(C)]
struct LongDoubleInt(LongDouble, i32);

#[test]
fn predefined_types_have_the_c_layouts() {
    use std::mem::{offset_of, size_of};
    for t in builtin::BASICS {
        let (size, lb, ext, tlb, text) = shape(t.handle);
        assert_eq!(
            (size, lb, ext, tlb),
            (t.size, 0, t.extent as isize, 0),
            "{}",
            t.name
        );
        assert!(text <= ext && text >= size as isize, "{}", t.name);
        assert_eq!(name(t.handle), t.name);
        assert!(lookup(t.handle).is_ok());
    }
    let pairs: [(c_int, usize, usize, usize); 6] = [
        (
            0x8c00_0000_u32 as c_int,
            8,
            size_of::<FloatInt>(),
            offset_of!(FloatInt, 1) + 4,
        ),
        (
            DOUBLE_INT,
            12,
            size_of::<DoubleInt>(),
            offset_of!(DoubleInt, 1) + 4,
        ),
        (
            0x8c00_0002_u32 as c_int,
            12,
            size_of::<LongInt>(),
            offset_of!(LongInt, 1) + 4,
        ),
        (
            SHORT_INT,
            6,
            size_of::<ShortInt>(),
            offset_of!(ShortInt, 1) + 4,
        ),
        (
            0x8c00_0004_u32 as c_int,
            20,
            size_of::<LongDoubleInt>(),
            offset_of!(LongDoubleInt, 1) + 4,
        ),
        (
            0x4c00_0816,
            8,
            size_of::<TwoInt>(),
            offset_of!(TwoInt, 1) + 4,
        ),
    ];
    for (h, size, ext, text) in pairs {
        assert_eq!(
            shape(h),
            (size, 0, ext as isize, 0, text as isize),
            "{h:#x}"
        );
        let t = lookup(h).unwrap();
        assert_eq!(t.elements(size), Some(2), "{h:#x}");
        assert_eq!(t.is_contiguous(), size == ext, "{h:#x}");
    }
    assert_eq!(name(0x8c00_0004_u32 as c_int), "MPI_LONG_DOUBLE_INT");
    assert_eq!(name(0x4c00_0809), "MPI_LONG_LONG_INT");
    assert_eq!(name(0x4c00_0840), "MPI_C_COMPLEX");
}

#[test]
fn bad_and_uncommitted_handles_are_type_errors() {
    for h in [
        MPI_DATATYPE_NULL,
        0,
        -1,
        0x4c00_0010,
        0x8c00_0005_u32 as c_int,
        0x8c00_1000_u32 as c_int + 99_999,
    ] {
        assert_eq!(lookup(h).unwrap_err().class, MPI_ERR_TYPE, "{h:#x}");
    }
    let t = mk(|p| MPI_Type_contiguous(2, INT, p));
    assert_eq!(lookup(t).unwrap_err().class, MPI_ERR_TYPE);
    assert!(lookup_any(t).is_ok());
    let mut c = t;
    assert_eq!(MPI_Type_commit(&mut c), MPI_SUCCESS);
    assert!(lookup(t).is_ok());
    assert_eq!(super::free(INT).unwrap_err().class, MPI_ERR_TYPE);
    free(t);
    assert_eq!(lookup_any(t).unwrap_err().class, MPI_ERR_TYPE);
}

#[test]
fn derived_shapes() {
    const IS: isize = 4;
    const DS: isize = 8;
    let c5 = mk(|p| MPI_Type_contiguous(5, INT, p));
    assert_eq!(shape(c5), (20, 0, 20, 0, 20));
    assert!(lookup_any(c5).unwrap().is_contiguous());
    assert_eq!(name(c5), "");
    let name_c = c"zr five ints";
    assert_eq!(MPI_Type_set_name(c5, name_c.as_ptr()), MPI_SUCCESS);
    assert_eq!(name(c5), "zr five ints");

    // vector of a type freed after use
    let v = mk(|p| MPI_Type_vector(4, 2, 5, c5, p));
    free(c5);
    assert_eq!(shape(v), (160, 0, 340, 0, 340));
    assert_eq!(lookup_any(v).unwrap().0.blocks.len(), 4);
    free(v);

    // negative stride: the lower bound moves
    let v = mk(|p| MPI_Type_vector(3, 1, -2, INT, p));
    assert_eq!(shape(v), (12, -4 * IS, 5 * IS, -4 * IS, 5 * IS));
    free(v);

    // column, resized
    let col = mk(|p| MPI_Type_vector(6, 1, 5, DOUBLE, p));
    assert_eq!(shape(col), (48, 0, 26 * DS, 0, 26 * DS));
    let r = mk(|p| MPI_Type_create_resized(col, -2 * DS, 10 * DS, p));
    assert_eq!(shape(r), (48, -2 * DS, 10 * DS, 0, 26 * DS));
    assert!(!lookup_any(r).unwrap().is_contiguous());
    free(r);
    free(col);

    // hvector
    let h = mk(|p| MPI_Type_create_hvector(3, 2, 7 * IS, INT, p));
    assert_eq!(shape(h), (24, 0, 16 * IS, 0, 16 * IS));
    free(h);

    // indexed, incl. a negative displacement, and indexed_block, hindexed
    let (bl, dp) = ([1, 2, 3], [5, 0, 9]);
    let t = mk(|p| MPI_Type_indexed(3, bl.as_ptr(), dp.as_ptr(), INT, p));
    assert_eq!(shape(t), (24, 0, 12 * IS, 0, 12 * IS));
    let info = lookup_any(t).unwrap();
    let blocks: Vec<_> = info.0.blocks.iter().map(|b| (b.off, b.len)).collect();
    assert_eq!(blocks, [(20, 4), (0, 8), (36, 12)]);
    free(t);
    let (nb, ndp) = ([1, 1], [-2, 3]);
    let t = mk(|p| MPI_Type_indexed(2, nb.as_ptr(), ndp.as_ptr(), INT, p));
    assert_eq!(shape(t), (8, -2 * IS, 6 * IS, -2 * IS, 6 * IS));
    free(t);
    let ib = [7, 0, 3];
    let t = mk(|p| MPI_Type_create_indexed_block(3, 2, ib.as_ptr(), INT, p));
    assert_eq!(shape(t), (24, 0, 9 * IS, 0, 9 * IS));
    free(t);
    let hd = [20isize, 0, 36];
    let t = mk(|p| MPI_Type_create_hindexed(3, bl.as_ptr(), hd.as_ptr(), FLOAT, p));
    assert_eq!(shape(t), (24, 0, 48, 0, 48));
    free(t);

    // struct {char; double; int[3]; short}: padded to the alignment of double
    let (sbl, sdp, sty) = (
        [1, 1, 3, 1],
        [0isize, 8, 16, 28],
        [CHAR, DOUBLE, INT, SHORT],
    );
    let s = mk(|p| MPI_Type_create_struct(4, sbl.as_ptr(), sdp.as_ptr(), sty.as_ptr(), p));
    assert_eq!(shape(s), (23, 0, 32, 0, 30));
    let (mut ni, mut na, mut nd, mut comb) = (0, 0, 0, 0);
    assert_eq!(
        MPI_Type_get_envelope(s, &mut ni, &mut na, &mut nd, &mut comb),
        0
    );
    assert_eq!((ni, na, nd, comb), (5, 4, 4, combiner::STRUCT));
    let (mut ints, mut adds, mut tys) = ([0; 8], [0isize; 8], [0; 8]);
    let rc = MPI_Type_get_contents(
        s,
        8,
        8,
        8,
        ints.as_mut_ptr(),
        adds.as_mut_ptr(),
        tys.as_mut_ptr(),
    );
    assert_eq!(rc, 0);
    assert_eq!(
        (&ints[..5], &adds[..4], &tys[..4]),
        (&[4, 1, 1, 3, 1][..], &sdp[..], &sty[..])
    );
    // resized to the C struct; dup keeps the shape, not the name
    let r = mk(|p| MPI_Type_create_resized(s, 0, 32, p));
    assert_eq!(shape(r), (23, 0, 32, 0, 30));
    let d = mk(|p| MPI_Type_dup(r, p));
    assert_eq!(shape(d), shape(r));
    assert_eq!(
        MPI_Type_get_envelope(d, &mut ni, &mut na, &mut nd, &mut comb),
        0
    );
    assert_eq!((ni, na, nd, comb), (0, 0, 1, combiner::DUP));
    for t in [s, r, d] {
        free(t);
    }
    // struct of the pair type keeps its alignment (16)
    let (pbl, pdp, pty) = ([1, 1], [0isize, 16], [CHAR, DOUBLE_INT]);
    let s = mk(|p| MPI_Type_create_struct(2, pbl.as_ptr(), pdp.as_ptr(), pty.as_ptr(), p));
    assert_eq!(shape(s), (13, 0, 32, 0, 28));
    free(s);
}

#[test]
fn get_elements_counts_basic_elements() {
    let pair = mk(|p| MPI_Type_contiguous(2, INT, p));
    let t = lookup_any(pair).unwrap();
    assert_eq!(t.elements(12), Some(3));
    assert_eq!(t.count(12), None);
    assert_eq!(t.count(16), Some(2));
    assert_eq!(t.elements(13), None);
    free(pair);
    let (sbl, sdp, sty) = (
        [1, 1, 3, 1],
        [0isize, 8, 16, 28],
        [CHAR, DOUBLE, INT, SHORT],
    );
    let s = mk(|p| MPI_Type_create_struct(4, sbl.as_ptr(), sdp.as_ptr(), sty.as_ptr(), p));
    let t = lookup_any(s).unwrap();
    assert_eq!(t.elements(23), Some(6));
    assert_eq!(t.elements(23 + 1 + 8 + 4), Some(6 + 3));
    assert_eq!(t.elements(23 + 2), None);
    assert_eq!(t.basic_elem(), None);
    free(s);
    let di = lookup(DOUBLE_INT).unwrap();
    assert_eq!(
        (di.elements(8), di.elements(12), di.elements(20)),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(di.elements(10), None);
    let empty = mk(|p| MPI_Type_contiguous(0, INT, p));
    let t = lookup_any(empty).unwrap();
    assert_eq!(
        (t.elements(0), t.elements(4), t.count(0)),
        (Some(0), None, Some(0))
    );
    free(empty);
}

#[test]
fn get_address_and_aint_arithmetic() {
    let x = [0u64; 4];
    let (mut a0, mut a2) = (0isize, 0isize);
    assert_eq!(MPI_Get_address(x.as_ptr().cast(), &mut a0), 0);
    assert_eq!(MPI_Get_address(x[2..].as_ptr().cast(), &mut a2), 0);
    assert_eq!(MPI_Aint_diff(a2, a0), 16);
    assert_eq!(MPI_Aint_add(a0, 16), a2);
}

#[test]
fn pack_unpack_and_sizes() {
    // a matrix column through MPI_Pack / MPI_Unpack
    let col = mk(|p| MPI_Type_vector(6, 1, 5, DOUBLE, p));
    let mut c = col;
    assert_eq!(MPI_Type_commit(&mut c), 0);
    let m: Vec<f64> = (0..30).map(f64::from).collect();
    let mut buf = [0u8; 64];
    let (mut pos, mut psize) = (0, 0);
    assert_eq!(MPI_Pack_size(1, col, MPI_COMM_WORLD, &mut psize), 0);
    assert_eq!(psize, 48);
    let rc = MPI_Pack(
        m[3..].as_ptr().cast(),
        1,
        col,
        buf.as_mut_ptr().cast(),
        64,
        &mut pos,
        MPI_COMM_WORLD,
    );
    assert_eq!((rc, pos), (0, 48));
    let mut r = vec![-1.0f64; 30];
    pos = 0;
    let rc = MPI_Unpack(
        buf.as_ptr().cast(),
        64,
        &mut pos,
        r[1..].as_mut_ptr().cast(),
        1,
        col,
        MPI_COMM_WORLD,
    );
    assert_eq!((rc, pos), (0, 48));
    for (i, v) in r.iter().enumerate() {
        let want = if i % 5 == 1 { (i + 2) as f64 } else { -1.0 };
        assert_eq!(*v, want, "r[{i}]");
    }
    free(col);
}

// ---------------------------------------------------------------------------------------
// Random types against a naive expansion of their type maps.

/// A type to build, with a naive model of its type map.
#[derive(Debug, Clone)]
enum Spec {
    Basic(c_int),
    Contig(c_int, Box<Spec>),
    Vector(c_int, c_int, c_int, Box<Spec>),
    Indexed(Vec<(c_int, c_int)>, Box<Spec>),
    Struct(Vec<(c_int, isize, Spec)>),
    Resized(isize, isize, Box<Spec>),
}

/// A type map: (offset, len) of every basic part.
type Map = Vec<(isize, usize)>;
/// The naive model of a type: (type map, lb, ub, align).
type Model = (Map, isize, isize, usize);
/// A model under construction: (type map, bounds, align).
type Acc = (Map, Option<(isize, isize)>, usize);

/// The naive model of `s`.
fn model(s: &Spec) -> Model {
    fn copies(out: &mut Acc, m: &Model, disp: isize) {
        out.0.extend(m.0.iter().map(|&(o, l)| (o + disp, l)));
        let (lb, ub) = (m.1 + disp, m.2 + disp);
        out.1 = Some(out.1.map_or((lb, ub), |(a, b)| (a.min(lb), b.max(ub))));
        out.2 = out.2.max(m.3);
    }
    let mut acc = (Vec::new(), None, 1);
    match s {
        Spec::Basic(h) => {
            let b = &builtin::BASICS[builtin::index(*h).unwrap()];
            let map = b.parts.iter().map(|&(o, l)| (o as isize, l)).collect();
            return (map, 0, b.extent as isize, b.align);
        }
        Spec::Contig(n, old) => {
            let m = model(old);
            for k in 0..*n as isize {
                copies(&mut acc, &m, k * (m.2 - m.1));
            }
        }
        Spec::Vector(n, bl, stride, old) => {
            let m = model(old);
            for i in 0..*n as isize {
                for j in 0..*bl as isize {
                    copies(&mut acc, &m, (i * *stride as isize + j) * (m.2 - m.1));
                }
            }
        }
        Spec::Indexed(blocks, old) => {
            let m = model(old);
            for &(bl, d) in blocks {
                for j in 0..bl as isize {
                    copies(&mut acc, &m, (d as isize + j) * (m.2 - m.1));
                }
            }
        }
        Spec::Struct(fields) => {
            for (bl, d, old) in fields {
                let m = model(old);
                for j in 0..*bl as isize {
                    copies(&mut acc, &m, d + j * (m.2 - m.1));
                }
            }
            let (lb, mut ub) = acc.1.unwrap_or((0, 0));
            let a = acc.2 as isize;
            if (ub - lb) % a != 0 {
                ub += a - (ub - lb).rem_euclid(a);
            }
            return (acc.0, lb, ub, acc.2);
        }
        Spec::Resized(lb, ext, old) => {
            let m = model(old);
            return (m.0, *lb, lb + ext, m.3);
        }
    }
    let (lb, ub) = acc.1.unwrap_or((0, 0));
    (acc.0, lb, ub, acc.2)
}

/// Build the type through the MPI functions.
fn build(s: &Spec) -> c_int {
    match s {
        Spec::Basic(h) => *h,
        Spec::Contig(n, old) => {
            let o = build(old);
            mk(|p| MPI_Type_contiguous(*n, o, p))
        }
        Spec::Vector(n, bl, st, old) => {
            let o = build(old);
            mk(|p| MPI_Type_vector(*n, *bl, *st, o, p))
        }
        Spec::Indexed(blocks, old) => {
            let o = build(old);
            let (bl, d): (Vec<c_int>, Vec<c_int>) = blocks.iter().copied().unzip();
            mk(|p| MPI_Type_indexed(bl.len() as c_int, bl.as_ptr(), d.as_ptr(), o, p))
        }
        Spec::Struct(fields) => {
            let bl: Vec<c_int> = fields.iter().map(|f| f.0).collect();
            let d: Vec<isize> = fields.iter().map(|f| f.1).collect();
            let t: Vec<c_int> = fields.iter().map(|f| build(&f.2)).collect();
            mk(|p| {
                MPI_Type_create_struct(bl.len() as c_int, bl.as_ptr(), d.as_ptr(), t.as_ptr(), p)
            })
        }
        Spec::Resized(lb, ext, old) => {
            let o = build(old);
            mk(|p| MPI_Type_create_resized(o, *lb, *ext, p))
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn random_spec(r: &mut Rng, depth: u32) -> Spec {
    const LEAVES: [c_int; 7] = [CHAR, SHORT, INT, DOUBLE, DOUBLE_INT, SHORT_INT, 0x4c00_100c];
    if depth == 0 || r.below(4) == 0 {
        return Spec::Basic(LEAVES[r.below(LEAVES.len() as u64) as usize]);
    }
    let old = Box::new(random_spec(r, depth - 1));
    match r.below(5) {
        0 => Spec::Contig(r.below(4) as c_int, old),
        1 => Spec::Vector(
            r.below(4) as c_int,
            r.below(3) as c_int,
            r.below(9) as c_int - 4,
            old,
        ),
        2 => Spec::Indexed(
            (0..r.below(4))
                .map(|_| (r.below(3) as c_int, r.below(11) as c_int - 5))
                .collect(),
            old,
        ),
        3 => Spec::Struct(
            (0..1 + r.below(3))
                .map(|_| {
                    (
                        r.below(3) as c_int,
                        r.below(64) as isize - 32,
                        random_spec(r, depth - 1),
                    )
                })
                .collect(),
        ),
        _ => Spec::Resized(r.below(17) as isize - 8, r.below(48) as isize, old),
    }
}

#[test]
fn random_types_pack_as_their_naive_type_maps() {
    let mut r = Rng(7);
    for case in 0..2000 {
        let spec = random_spec(&mut r, 4);
        let (map, lb, ub, _) = model(&spec);
        let h = build(&spec);
        let t = lookup_any(h).unwrap();
        let size: usize = map.iter().map(|p| p.1).sum();
        assert_eq!(
            (t.size(), t.lb(), t.extent()),
            (size, lb, ub - lb),
            "case {case}: {spec:?}"
        );
        if size > 0 {
            let tlb = map.iter().map(|p| p.0).min().unwrap();
            let tub = map.iter().map(|p| p.0 + p.1 as isize).max().unwrap();
            assert_eq!(
                (t.true_lb(), t.true_extent()),
                (tlb, tub - tlb),
                "case {case}: {spec:?}"
            );
        }
        let count = 1 + r.below(3) as usize;
        // a buffer covering every element's data, with a margin
        let (lo, hi) = t.span(count);
        let margin = 8;
        let len = (hi - lo) as usize + 2 * margin;
        let src: Vec<u8> = (0..len).map(|i| (i * 7 + case) as u8).collect();
        let base_off = margin as isize - lo;
        let ext = t.extent();
        let naive: Vec<u8> = (0..count as isize)
            .flat_map(|k| map.iter().map(move |&(o, l)| (k * ext + o, l)))
            .flat_map(|(o, l)| {
                let at = (base_off + o) as usize;
                src[at..at + l].to_vec()
            })
            .collect();
        let mut packed = vec![0u8; count * size];
        // SAFETY: the buffer covers the span of `count` elements from its base.
        unsafe { t.pack(src.as_ptr().wrapping_offset(base_off), count, &mut packed) };
        assert_eq!(packed, naive, "case {case}: {spec:?}");
        // unpack into a fresh buffer: exactly the type map's bytes change
        let mut dst = vec![0xeeu8; len];
        let mut want = dst.clone();
        let mut k = 0;
        for e in 0..count as isize {
            for &(o, l) in &map {
                let at = (base_off + e * ext + o) as usize;
                want[at..at + l].copy_from_slice(&packed[k..k + l]);
                k += l;
            }
        }
        // SAFETY: as above, for writing.
        unsafe { t.unpack(&packed, dst.as_mut_ptr().wrapping_offset(base_off), count) };
        assert_eq!(dst, want, "case {case}: {spec:?}");
        if builtin::index(h).is_none() {
            free(h);
        }
    }
}

#[test]
fn short_input_unpacks_a_prefix() {
    let v = mk(|p| MPI_Type_vector(3, 1, 2, INT, p));
    let t = lookup_any(v).unwrap();
    let packed: Vec<u8> = (1..=12).collect();
    let mut dst = [0u8; 40];
    // SAFETY: 2 elements of extent 20 fit in 40 bytes; only 6 bytes are unpacked.
    unsafe { t.unpack(&packed[..6], dst.as_mut_ptr(), 2) };
    assert_eq!(&dst[..12], &[1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 0, 0]);
    assert!(dst[12..].iter().all(|&b| b == 0));
    free(v);
}
