//! Datatypes: the predefined types of the MPICH ABI and the derived types programs build
//! from them, with the engine that packs and unpacks their data.
//!
//! Every type is a [`Layout`](layout::Layout): the flattened, merged type map of one
//! element (contiguous blocks in type-map order), its bounds and true bounds, and its
//! signature (runs of predefined types). The rest of the crate sees a type through
//! [`lookup`], which gives a [`TypeInfo`] (cheap to clone; it keeps the type alive, so a
//! type freed while an operation uses it stays valid for that operation).
//!
//! Handles: predefined types have MPICH's values (`0x4c......`, the pairs `0x8c00000k`);
//! derived types are `0x8c001000 + slot` (slots of freed types are reused).
//!
//! * `builtin`: the table of predefined types.
//! * `layout`: the pure layout arithmetic of the type constructors.
//! * `mem`: every memory access of the engine (and of `crate::op`).
//! * `ffi`: the MPI functions of the datatype chapter.

mod builtin;
mod darray;
pub(crate) mod ffi;
mod layout;
pub(crate) mod mem;
mod subarray;

use crate::abi::*;
use crate::error::MpiError;
use layout::{Block, Layout};
use std::cell::RefCell;
use std::ffi::c_int;
use std::rc::Rc;
use zerorank::op::Elem;

/// What the crate knows of a datatype: its layout, shared. Predefined types have one
/// layout each for the whole process, so finding one costs no reference count.
#[derive(Debug, Clone)]
pub(crate) struct TypeInfo(Shared);

#[derive(Debug, Clone)]
enum Shared {
    Predefined(&'static Layout),
    Derived(Rc<Layout>),
}

impl std::ops::Deref for Shared {
    type Target = Layout;
    fn deref(&self) -> &Layout {
        match self {
            Shared::Predefined(l) => l,
            Shared::Derived(l) => l,
        }
    }
}

/// The layouts of the predefined types, by index into `builtin::BASICS`.
static PREDEFINED_LAYOUTS: std::sync::LazyLock<Vec<Layout>> =
    std::sync::LazyLock::new(|| (0..builtin::BASICS.len()).map(Layout::of_basic).collect());

fn predefined_info(i: usize) -> TypeInfo {
    TypeInfo(Shared::Predefined(&PREDEFINED_LAYOUTS[i]))
}

#[allow(dead_code)] // the crate-internal API; some of it is for the lead's p2p/collectives
impl TypeInfo {
    /// Bytes of data per element (`MPI_Type_size`).
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// Distance between consecutive elements in a buffer.
    pub fn extent(&self) -> isize {
        self.0.extent()
    }

    /// Lower bound: element `i` of a buffer at `base` starts at `base + lb + i * extent`
    /// (its blocks are at `base + i * extent + offset`).
    pub fn lb(&self) -> isize {
        self.0.lb
    }

    /// Offset of the first data byte of an element.
    pub fn true_lb(&self) -> isize {
        self.0.true_lb
    }

    /// From the first to one past the last data byte of an element.
    pub fn true_extent(&self) -> isize {
        self.0.true_ub - self.0.true_lb
    }

    /// Largest alignment of the predefined types inside (at most 16).
    pub fn align(&self) -> usize {
        self.0.align
    }

    /// Is the data of `count` elements exactly `[base + lb, base + lb + count * size)`
    /// (so it can be sent from / received into the buffer as raw bytes)? Then also
    /// `true_lb == lb`.
    pub fn is_contiguous(&self) -> bool {
        self.0.is_contiguous()
    }

    /// Where the data of a contiguous type starts in a buffer at `base`: `base + lb`
    /// (also right for `MPI_BOTTOM`, a null `base`, where `lb` is an absolute address).
    pub fn data_ptr(&self, base: *const u8) -> *const u8 {
        mem::at(base, self.0.lb)
    }

    /// [`data_ptr`](Self::data_ptr) for writing.
    pub fn data_ptr_mut(&self, base: *mut u8) -> *mut u8 {
        mem::at(base, self.0.lb).cast_mut()
    }

    /// Offsets from the buffer start of the first and one past the last data byte of
    /// `count` elements (`(0, 0)` for no data): the memory an operation touches.
    pub fn span(&self, count: usize) -> (isize, isize) {
        self.0.span(count)
    }

    /// The data of `count` elements at `base`, packed in type-map order into `out`
    /// (`out.len() == count * size()`; a shorter `out` takes a prefix). `base` may be
    /// null (`MPI_BOTTOM`, for types of absolute addresses).
    ///
    /// # Safety
    /// `base` with `count` elements of this type must be a buffer MPI's rules make valid
    /// for reading (every block of every element readable), not overlapping `out`.
    pub unsafe fn pack(&self, base: *const u8, count: usize, out: &mut [u8]) {
        debug_assert!(out.len() <= count.saturating_mul(self.size()));
        if self.is_contiguous() {
            let whole = [Block {
                off: self.0.lb,
                len: out.len(),
            }];
            // SAFETY: the data of `count` contiguous elements is `out.len()` bytes from
            // `base + lb`, readable by the caller's promise.
            unsafe { mem::gather(base, 0, 1, &whole, out) };
        } else {
            // SAFETY: as the caller promises.
            unsafe { mem::gather(base, self.extent(), count, &self.0.blocks, out) };
        }
    }

    /// Unpack `inp` (packed data, `inp.len() <= count * size()`) into `count` elements at
    /// `base`: the bytes fill the type map in order, so a short `inp` (a shorter message)
    /// writes only its prefix of the elements. Bytes outside the type map (holes) are
    /// never written.
    ///
    /// # Safety
    /// `base` with `count` elements of this type must be a buffer MPI's rules make valid
    /// for writing, not overlapping `inp`, not aliased by a live reference.
    pub unsafe fn unpack(&self, inp: &[u8], base: *mut u8, count: usize) {
        debug_assert!(inp.len() <= count.saturating_mul(self.size()));
        if self.is_contiguous() {
            let whole = [Block {
                off: self.0.lb,
                len: inp.len(),
            }];
            // SAFETY: as in `pack`, for writing.
            unsafe { mem::scatter(inp, base, 0, 1, &whole) };
        } else {
            // SAFETY: as the caller promises.
            unsafe { mem::scatter(inp, base, self.extent(), count, &self.0.blocks) };
        }
    }

    /// `MPI_Get_elements`: basic elements in `bytes` bytes of this type's data (the value
    /// and the index of a pair count as two), `None` for `MPI_UNDEFINED` (the bytes end
    /// inside a basic element).
    pub fn elements(&self, bytes: usize) -> Option<usize> {
        self.0.elements(bytes)
    }

    /// `MPI_Get_count`: whole elements in `bytes` bytes, `None` for `MPI_UNDEFINED`.
    pub fn count(&self, bytes: usize) -> Option<usize> {
        self.0.count(bytes)
    }

    /// The single element kind of the whole signature and how many there are per
    /// element, if the signature is one kind repeated (`MPI_INT` and `MPI_INT32_T` are
    /// the same kind). Packed data of the type is then `count * n` packed units of
    /// `size() / n` bytes each; that equals `elem.size()` except for the pair types with
    /// padding (`MPI_DOUBLE_INT` packs to 12 bytes, the struct is 16).
    pub fn basic_elem(&self) -> Option<(Elem, usize)> {
        self.0.basic
    }
}

/// Is `h` a predefined datatype?
pub(crate) fn is_predefined(h: c_int) -> bool {
    builtin::index(h).is_some()
}

/// How many predefined types there are.
pub(crate) const BUILTIN_COUNT: usize = builtin::BASICS.len();

/// The index (below [`BUILTIN_COUNT`]) of predefined type `h`.
pub(crate) fn builtin_index(h: c_int) -> Option<usize> {
    builtin::index(h)
}

/// The size of predefined type `h` when its elements lie back to back from the buffer's
/// start (every predefined type but the pairs with padding, such as `MPI_DOUBLE_INT`):
/// the fast entries of small collectives take only those.
pub(crate) fn packed_builtin_size(h: c_int) -> Option<usize> {
    let t = &PREDEFINED_LAYOUTS[builtin::index(h)?];
    (t.is_contiguous() && t.lb == 0).then_some(t.size)
}

/// The type `h` for communication: predefined, or derived and committed; else
/// `MPI_ERR_TYPE`.
pub(crate) fn lookup(h: c_int) -> Result<TypeInfo, MpiError> {
    if let Some(i) = builtin::index(h) {
        return Ok(predefined_info(i));
    }
    let r = resolve(h)?;
    if !r.committed {
        return Err(MpiError::new(
            MPI_ERR_TYPE,
            format!("datatype {h:#x} is not committed (call MPI_Type_commit before using it in communication)"),
        ));
    }
    Ok(r.info)
}

/// The type `h`, committed or not (for the calls that query or build types).
pub(crate) fn lookup_any(h: c_int) -> Result<TypeInfo, MpiError> {
    resolve(h).map(|r| r.info)
}

/// How error messages name type `h`: its name, or its handle.
pub(crate) fn describe(h: c_int) -> String {
    match resolve(h) {
        Ok(r) => {
            let name = REGISTRY.with(|reg| reg.borrow().name(h));
            match name {
                Some(n) if !n.is_empty() => n,
                _ if r.builtin.is_some() => format!("predefined datatype {h:#x}"),
                _ => format!("derived datatype {h:#x}"),
            }
        }
        Err(_) => format!("invalid datatype {h:#x}"),
    }
}

// ---------------------------------------------------------------------------------------
// The table of types.

/// First handle of derived types.
const USER_BASE: c_int = 0x8c00_1000_u32 as c_int;
/// Most derived types alive at once.
const MAX_USER: usize = 0x07ff_f000;

/// The combiners of `MPI_Type_get_envelope` (values of the header).
pub(super) mod combiner {
    use std::ffi::c_int;
    pub const NAMED: c_int = 1;
    pub const DUP: c_int = 2;
    pub const CONTIGUOUS: c_int = 3;
    pub const VECTOR: c_int = 4;
    pub const HVECTOR: c_int = 6;
    pub const INDEXED: c_int = 7;
    pub const HINDEXED: c_int = 9;
    pub const INDEXED_BLOCK: c_int = 10;
    pub const STRUCT: c_int = 12;
    pub const SUBARRAY: c_int = 13;
    pub const DARRAY: c_int = 14;
    pub const RESIZED: c_int = 18;
    pub const HINDEXED_BLOCK: c_int = 19;
}

/// How a derived type was built (`MPI_Type_get_envelope` / `MPI_Type_get_contents`).
#[derive(Debug)]
pub(super) struct Def {
    pub combiner: c_int,
    pub ints: Vec<c_int>,
    pub addrs: Vec<isize>,
    pub types: Vec<Old>,
}

/// A type a derived type was built from.
#[derive(Debug, Clone)]
pub(super) enum Old {
    /// A predefined type.
    Named(c_int),
    /// A derived type (kept even if its handle was freed).
    Derived { info: TypeInfo, def: Rc<Def> },
}

#[derive(Debug)]
struct Slot {
    info: TypeInfo,
    committed: bool,
    name: String,
    def: Rc<Def>,
}

/// A type found by its handle.
pub(super) struct Resolved {
    pub info: TypeInfo,
    pub committed: bool,
    /// Index into `BASICS` for a predefined type.
    pub builtin: Option<usize>,
    /// How it was built (`None` for a predefined type).
    pub def: Option<Rc<Def>>,
}

impl Resolved {
    /// The type as the old type of a constructor.
    pub fn as_old(&self, h: c_int) -> Old {
        match &self.def {
            None => Old::Named(h),
            Some(def) => Old::Derived {
                info: self.info.clone(),
                def: def.clone(),
            },
        }
    }
}

#[derive(Default)]
struct Registry {
    builtin: Vec<TypeInfo>,
    /// Names given to predefined types with `MPI_Type_set_name`.
    builtin_names: Vec<Option<String>>,
    user: Vec<Option<Slot>>,
    free: Vec<usize>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

impl Registry {
    fn builtin_info(&mut self, i: usize) -> TypeInfo {
        if self.builtin.is_empty() {
            self.builtin = (0..builtin::BASICS.len()).map(predefined_info).collect();
            self.builtin_names = vec![None; builtin::BASICS.len()];
        }
        self.builtin[i].clone()
    }

    fn slot(&self, h: c_int) -> Option<(usize, &Slot)> {
        let i = usize::try_from(h.wrapping_sub(USER_BASE)).ok()?;
        if (h as u32) < (USER_BASE as u32) {
            return None;
        }
        Some((i, self.user.get(i)?.as_ref()?))
    }

    fn name(&self, h: c_int) -> Option<String> {
        if let Some(i) = builtin::index(h) {
            let set = self.builtin_names.get(i).cloned().flatten();
            return Some(set.unwrap_or_else(|| builtin::BASICS[i].name.to_string()));
        }
        self.slot(h).map(|(_, s)| s.name.clone())
    }
}

fn invalid(h: c_int) -> MpiError {
    let what = match h {
        MPI_DATATYPE_NULL => "MPI_DATATYPE_NULL is not a datatype".to_string(),
        builtin::MPI_LB | builtin::MPI_UB => {
            "MPI_LB and MPI_UB (removed in MPI 3.0) are not supported; use MPI_Type_create_resized"
                .to_string()
        }
        _ => format!("invalid datatype handle {h:#x} (never created, or freed)"),
    };
    MpiError::new(MPI_ERR_TYPE, what)
}

/// The type behind handle `h`.
pub(super) fn resolve(h: c_int) -> Result<Resolved, MpiError> {
    REGISTRY.with(|reg| {
        let mut reg = reg.borrow_mut();
        if let Some(i) = builtin::index(h) {
            return Ok(Resolved {
                info: reg.builtin_info(i),
                committed: true,
                builtin: Some(i),
                def: None,
            });
        }
        let (_, s) = reg.slot(h).ok_or_else(|| invalid(h))?;
        Ok(Resolved {
            info: s.info.clone(),
            committed: s.committed,
            builtin: None,
            def: Some(s.def.clone()),
        })
    })
}

/// Add a derived type; its handle.
pub(super) fn register(layout: Layout, def: Def, committed: bool) -> Result<c_int, MpiError> {
    register_info(
        TypeInfo(Shared::Derived(Rc::new(layout))),
        Rc::new(def),
        committed,
    )
}

/// Add a derived type of an existing layout and definition; its handle.
pub(super) fn register_info(
    info: TypeInfo,
    def: Rc<Def>,
    committed: bool,
) -> Result<c_int, MpiError> {
    REGISTRY.with(|reg| {
        let mut reg = reg.borrow_mut();
        let slot = Slot {
            info,
            committed,
            name: String::new(),
            def,
        };
        let i = match reg.free.pop() {
            Some(i) => {
                reg.user[i] = Some(slot);
                i
            }
            None if reg.user.len() < MAX_USER => {
                reg.user.push(Some(slot));
                reg.user.len() - 1
            }
            None => {
                return Err(MpiError::new(
                    MPI_ERR_INTERN,
                    format!("too many datatypes alive (at most {MAX_USER})"),
                ))
            }
        };
        Ok(USER_BASE.wrapping_add(i as c_int))
    })
}

/// `MPI_Type_commit` of `h`.
pub(super) fn commit(h: c_int) -> Result<(), MpiError> {
    if builtin::index(h).is_some() {
        return Ok(());
    }
    REGISTRY.with(|reg| {
        let mut reg = reg.borrow_mut();
        let (i, _) = reg.slot(h).ok_or_else(|| invalid(h))?;
        if let Some(s) = reg.user[i].as_mut() {
            s.committed = true;
        }
        Ok(())
    })
}

/// `MPI_Type_free` of `h` (operations holding its [`TypeInfo`] keep it).
pub(super) fn free(h: c_int) -> Result<(), MpiError> {
    if builtin::index(h).is_some() {
        return Err(MpiError::new(
            MPI_ERR_TYPE,
            format!("{} is predefined and cannot be freed", describe(h)),
        ));
    }
    REGISTRY.with(|reg| {
        let mut reg = reg.borrow_mut();
        let (i, _) = reg.slot(h).ok_or_else(|| invalid(h))?;
        reg.user[i] = None;
        reg.free.push(i);
        Ok(())
    })
}

/// The name of `h` (`MPI_Type_get_name`; empty for an unnamed derived type).
pub(super) fn get_name(h: c_int) -> Result<String, MpiError> {
    resolve(h)?;
    Ok(REGISTRY
        .with(|reg| reg.borrow().name(h))
        .unwrap_or_default())
}

/// `MPI_Type_set_name`.
pub(super) fn set_name(h: c_int, name: String) -> Result<(), MpiError> {
    let r = resolve(h)?;
    REGISTRY.with(|reg| {
        let mut reg = reg.borrow_mut();
        match r.builtin {
            Some(i) => reg.builtin_names[i] = Some(name),
            None => {
                let (i, _) = reg.slot(h).ok_or_else(|| invalid(h))?;
                if let Some(s) = reg.user[i].as_mut() {
                    s.name = name;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
