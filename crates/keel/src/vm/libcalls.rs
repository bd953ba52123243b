//! Implementations of the builtins generated code calls (see
//! `keel_environ::builtins`), and of the math routines Cranelift may call.
//!
//! Builtins never unwind: each returns a status that generated code turns
//! into a trap at the call site.

use super::exception::{ExnObject, resume_at_handler};
use super::instance::Instance;
use super::memory::LinearMemory;
use super::traphandlers::find_handler;
use super::val_raw::ValRaw;
use super::vmcontext::{VMContext, VMContextHeader};
use keel_environ::{DataIndex, ElemIndex, FuncIndex, LibCall, MemoryIndex, TableIndex, TagIndex};

/// The store hook behind resource limits, fuel and epochs. The store that
/// owns a [`VMStoreContext`](super::vmcontext::VMStoreContext) implements
/// it and installs itself in the context's `hooks`, so that the runtime
/// calls up into the store without depending on its type.
pub trait StoreHooks {
    /// Whether a memory may grow from `current` to `desired` bytes.
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> Grow;
    /// Whether a table may grow from `current` to `desired` elements.
    fn table_growing(&mut self, current: u64, desired: u64, maximum: Option<u64>) -> Grow;
    /// The store's interrupt word was set: what wasm does next.
    fn new_epoch(&mut self) -> Resume;
    /// A charge of `cost` exceeded the fuel left (the count before it is in
    /// the store context): `Continue` once the store has refilled the
    /// count and taken the charge, `Trap` when it has no fuel to give.
    fn out_of_fuel(&mut self, cost: u64) -> Resume;
    /// Takes ownership of a new exception object (perhaps collecting
    /// unreachable ones first) and returns the address wasm sees.
    fn new_exception(&mut self, object: ExnObject) -> *const ExnObject;
    /// An exception no frame of the running activation catches: the store
    /// keeps it as its pending exception.
    fn exception_uncaught(&mut self, exn: *const ExnObject);
}

/// A resource limiter's answer to a growth request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Grow {
    /// Grow.
    Allow,
    /// Do not grow: the instruction returns -1.
    Deny,
    /// The limiter failed; the store keeps its error and the instruction
    /// traps.
    Fail,
}

/// What wasm does after its store's epoch deadline passed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Trap with `Interrupt`.
    Trap = 0,
    /// Carry on: the deadline was extended.
    Continue = 1,
    /// Trap with the error the store keeps (a deadline callback failed).
    Fail = 2,
}

/// What the grow builtins return for a [`Grow`] that is not `Allow`.
fn grow_failure(grow: Grow) -> u64 {
    match grow {
        Grow::Fail => -2i64 as u64,
        _ => u64::MAX,
    }
}

/// The store's hooks for the instance calling a builtin.
///
/// # Safety
///
/// `vmctx` must be a live instance context whose store context has its
/// `hooks` set, and the store behind them must not be otherwise borrowed
/// during the builtin.
unsafe fn hooks<'a>(vmctx: *mut VMContext) -> &'a mut dyn StoreHooks {
    // SAFETY: per the contract: the header and its store context are live;
    // the hooks point to the store that owns them, which nothing else
    // borrows while wasm runs a builtin.
    unsafe {
        let store_context = (*vmctx.cast::<VMContextHeader>()).store_context;
        let hooks = (*store_context)
            .hooks
            .expect("a store installs its hooks when it is created");
        &mut *hooks.as_ptr()
    }
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn memory_grow(vmctx: *mut VMContext, memory: u32, delta: u64) -> u64 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    // SAFETY: memory pointers in a live context are live.
    let mem: &mut LinearMemory = unsafe { &mut *instance.memory(MemoryIndex::from_u32(memory)) };
    let current = mem.byte_size();
    let Some(desired) = mem.bytes_after_growth(delta) else {
        return u64::MAX;
    };
    let maximum = mem.declared_maximum_bytes();
    if delta != 0 {
        // SAFETY: see `hooks`.
        let grow = unsafe { hooks(vmctx) }.memory_growing(current, desired, maximum);
        if grow != Grow::Allow {
            return grow_failure(grow);
        }
    }
    mem.grow(delta).unwrap_or(u64::MAX)
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn table_grow(
    vmctx: *mut VMContext,
    table: u32,
    delta: u64,
    init: *mut u8,
) -> u64 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    // SAFETY: table pointers in a live context are live.
    let t = unsafe { &mut *instance.table(TableIndex::from_u32(table)) };
    let current = t.size();
    let Some(desired) = current.checked_add(delta) else {
        return u64::MAX;
    };
    if delta != 0 {
        // SAFETY: see `hooks`.
        let grow = unsafe { hooks(vmctx) }.table_growing(current, desired, t.maximum());
        if grow != Grow::Allow {
            return grow_failure(grow);
        }
    }
    // SAFETY: `init` is a reference wasm of this store holds, which
    // validation makes a funcref or externref of the table's type.
    unsafe { t.grow(delta, init) }.unwrap_or(u64::MAX)
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn table_fill(
    vmctx: *mut VMContext,
    table: u32,
    dst: u64,
    value: *mut u8,
    len: u64,
) -> u32 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    // SAFETY: table pointers in a live context are live.
    let t = unsafe { &mut *instance.table(TableIndex::from_u32(table)) };
    // SAFETY: as in `table_grow`.
    u32::from(unsafe { t.fill(dst, len, value) })
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn table_copy(
    vmctx: *mut VMContext,
    dst_table: u32,
    src_table: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    let dst_t = instance.table(TableIndex::from_u32(dst_table));
    let src_t = instance.table(TableIndex::from_u32(src_table));
    // SAFETY: table pointers in a live context are live, and validation
    // made their element types match.
    u32::from(unsafe { crate::vm::Table::copy(dst_t, src_t, dst, src, len) })
}

/// # Safety
/// Called only by generated code with its own live context, for an element
/// of a funcref table that it found in bounds and not yet initialized.
unsafe extern "C" fn table_lazy_func_ref(vmctx: *mut VMContext, table: u32, index: u64) -> *mut u8 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    // SAFETY: table pointers in a live context are live.
    let t = unsafe { &mut *instance.table(TableIndex::from_u32(table)) };
    t.lazy_func_ref(index)
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn table_init(
    vmctx: *mut VMContext,
    table: u32,
    elem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    instance
        .table_init(
            TableIndex::from_u32(table),
            ElemIndex::from_u32(elem),
            dst,
            src,
            len,
        )
        .is_ok() as u32
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn elem_drop(vmctx: *mut VMContext, elem: u32) -> u32 {
    // SAFETY: generated code passes its own context.
    unsafe { Instance::from_vmctx(vmctx) }.elem_drop(ElemIndex::from_u32(elem));
    1
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn memory_copy(
    vmctx: *mut VMContext,
    dst_mem: u32,
    dst: u64,
    src_mem: u32,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    let d = instance.memory(MemoryIndex::from_u32(dst_mem));
    let s = instance.memory(MemoryIndex::from_u32(src_mem));
    // SAFETY: both memories are live; only their bases and lengths are read.
    let (dst_base, dst_len, src_base, src_len) = unsafe {
        (
            (*d).base(),
            (*d).byte_size() as u64,
            (*s).base(),
            (*s).byte_size() as u64,
        )
    };
    let ok = src.checked_add(len).is_some_and(|e| e <= src_len)
        && dst.checked_add(len).is_some_and(|e| e <= dst_len);
    if !ok {
        return 0;
    }
    // SAFETY: both ranges are inside accessible memory (checked above);
    // `copy` is `memmove`, correct for overlapping ranges.
    unsafe {
        std::ptr::copy(
            src_base.add(src as usize),
            dst_base.add(dst as usize),
            len as usize,
        )
    };
    1
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn memory_fill(
    vmctx: *mut VMContext,
    memory: u32,
    dst: u64,
    value: u32,
    len: u64,
) -> u32 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    let m = instance.memory(MemoryIndex::from_u32(memory));
    // SAFETY: the memory is live.
    let (base, size) = unsafe { ((*m).base(), (*m).byte_size() as u64) };
    if dst.checked_add(len).is_none_or(|e| e > size) {
        return 0;
    }
    // SAFETY: the range is inside accessible memory (checked above).
    unsafe { std::ptr::write_bytes(base.add(dst as usize), value as u8, len as usize) };
    1
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn memory_init(
    vmctx: *mut VMContext,
    memory: u32,
    data: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    instance
        .memory_init(
            MemoryIndex::from_u32(memory),
            DataIndex::from_u32(data),
            dst,
            src,
            len,
        )
        .is_ok() as u32
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn ref_func(vmctx: *mut VMContext, func: u32) -> *mut u8 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    instance.func_ref(FuncIndex::from_u32(func)).cast()
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn data_drop(vmctx: *mut VMContext, data: u32) -> u32 {
    // SAFETY: generated code passes its own context.
    unsafe { Instance::from_vmctx(vmctx) }.data_drop(DataIndex::from_u32(data));
    1
}

/// # Safety
/// Called only by generated code with its own live context.
unsafe extern "C" fn new_epoch(vmctx: *mut VMContext) -> u32 {
    // SAFETY: see `hooks`.
    let answer = unsafe { hooks(vmctx) }.new_epoch() as u32;
    // SAFETY: as above; the hooks' borrow of the store has ended.
    unsafe { leave_slow_path_status(vmctx, answer) }
}

/// # Safety
/// Called only by generated code with its own live context, which left the
/// charge in `slow_path_status`.
unsafe extern "C" fn out_of_fuel(vmctx: *mut VMContext) -> u32 {
    // SAFETY: generated code passes its own context, whose header's store
    // context is live.
    let cost = unsafe { (*(*vmctx.cast::<VMContextHeader>()).store_context).slow_path_status };
    // SAFETY: see `hooks`.
    let answer = unsafe { hooks(vmctx) }.out_of_fuel(cost) as u32;
    // SAFETY: as above; the hooks' borrow of the store has ended.
    unsafe { leave_slow_path_status(vmctx, answer) }
}

/// # Safety
/// Called only by generated code with its own live context and one of its
/// tag indices.
unsafe extern "C" fn exn_new(vmctx: *mut VMContext, tag: u32) -> *mut u8 {
    // SAFETY: generated code passes its own context.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    let index = TagIndex::from_u32(tag);
    let definition = instance.tag_ptr(index);
    let len = instance.tag_field_count(index);
    let object = ExnObject::new(definition, vec![ValRaw::default(); len]);
    // SAFETY: see `hooks`.
    unsafe { hooks(vmctx) }
        .new_exception(object)
        .cast_mut()
        .cast()
}

/// # Safety
/// Called only by generated code with its own live context, a live
/// exception object of its store, and its own frame pointer, with nothing
/// on its frames that a jump past them could leak.
unsafe extern "C" fn throw_ref(vmctx: *mut VMContext, exn: *mut u8, fp: *mut u8) -> u32 {
    let exn = exn.cast_const().cast::<ExnObject>();
    // SAFETY: `fp` is the calling wasm function's frame pointer, in the
    // innermost activation.
    if let Some(handler) = unsafe { find_handler(fp as usize) } {
        // SAFETY: the header's store context is live; generated code left
        // the count there before the call.
        let fuel = unsafe { (*(*vmctx.cast::<VMContextHeader>()).store_context).fuel_consumed };
        // SAFETY: the handler was just found for this activation; this
        // frame owns nothing with a destructor (`exn` and `handler` are
        // plain data).
        unsafe { resume_at_handler(handler, exn, fuel) }
    }
    // SAFETY: see `hooks`.
    unsafe { hooks(vmctx) }.exception_uncaught(exn);
    0
}

/// Leaves a slow-path builtin's answer where generated code reads it after
/// the register-preserving trampoline returns (which passes no result).
///
/// # Safety
///
/// `vmctx` must be a live instance context whose store context is not
/// otherwise borrowed.
unsafe fn leave_slow_path_status(vmctx: *mut VMContext, answer: u32) -> u32 {
    // SAFETY: per the contract, the header's store context is live.
    unsafe {
        let ctx = (*vmctx.cast::<VMContextHeader>()).store_context;
        (*ctx).slow_path_status = u64::from(answer);
    }
    answer
}

/// A function pointer table that can live in a `static`.
pub struct BuiltinArray<const N: usize>([*const u8; N]);

// SAFETY: the table holds addresses of functions, which are immutable.
unsafe impl<const N: usize> Sync for BuiltinArray<N> {}

impl<const N: usize> BuiltinArray<N> {
    /// The first entry, as generated code sees the array.
    pub fn as_ptr(&self) -> *const *const u8 {
        self.0.as_ptr()
    }
}

macro_rules! builtin_rust_type {
    (vmctx) => { *mut VMContext };
    (i32) => { u32 };
    (i64) => { u64 };
    (ptr) => { *mut u8 };
}

macro_rules! builtins_array {
    ($( $(#[$doc:meta])* $name:ident( $($pname:ident: $pty:ident),* ) -> $result:ident; )*) => {
        /// Every builtin, in `BuiltinFunctionIndex` order. Each entry is
        /// checked against the signature declared in `keel_environ`.
        pub static BUILTINS: BuiltinArray<{ [$(stringify!($name)),*].len() }> = BuiltinArray([
            $({
                let f: unsafe extern "C" fn($(builtin_rust_type!($pty)),*) -> builtin_rust_type!($result) = $name;
                f as *const u8
            },)*
        ]);
    };
}

keel_environ::foreach_builtin_function!(builtins_array);

extern "C" fn floor_f32(x: f32) -> f32 {
    x.floor()
}
extern "C" fn floor_f64(x: f64) -> f64 {
    x.floor()
}
extern "C" fn ceil_f32(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn ceil_f64(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn trunc_f32(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn trunc_f64(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearest_f32(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn nearest_f64(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn fma_f64(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// The address of a routine Cranelift may call.
pub fn libcall_address(lc: LibCall) -> usize {
    match lc {
        LibCall::FloorF32 => floor_f32 as *const () as usize,
        LibCall::FloorF64 => floor_f64 as *const () as usize,
        LibCall::CeilF32 => ceil_f32 as *const () as usize,
        LibCall::CeilF64 => ceil_f64 as *const () as usize,
        LibCall::TruncF32 => trunc_f32 as *const () as usize,
        LibCall::TruncF64 => trunc_f64 as *const () as usize,
        LibCall::NearestF32 => nearest_f32 as *const () as usize,
        LibCall::NearestF64 => nearest_f64 as *const () as usize,
        LibCall::FmaF32 => fma_f32 as *const () as usize,
        LibCall::FmaF64 => fma_f64 as *const () as usize,
    }
}
