//! Lazy compilation at run time: each function of a lazily compiled module
//! is compiled at its first call.
//!
//! The module's text holds a stub per function (laid out by the compiler's
//! `LazyText`); every entry to a function enters its stub, which jumps
//! through the function's slot. Until the function is compiled the slot
//! sends the call to `keel_lazy_entry` (`sys/unix/lazy_entry.rs`), which
//! calls [`lazy_compile`] and continues into the body it returns. Compiled bodies go to the module's *lazy
//! area*: address space reserved right after the text and its slots, so
//! that a body's `call` reaches any stub with a 32-bit displacement.
//!
//! Invariants:
//! - A function is compiled at most once: under the area's lock, and only
//!   if it has no body yet.
//! - Each body has pages of its own, written while no code can reach them
//!   and executable (never writable) from then on: pages that threads may
//!   be running never change protection.
//! - A body's tables ([`LazyCode::placed`]) and the owner of each of its
//!   pages are published before its slot points at it, so a fault or a
//!   backtrace in it always finds them. The signal handler reads them
//!   without locks.
//! - Once every function is compiled, the module switches to its code
//!   linked whole ([`LazyCode::switch_to_linked`]), registered before any
//!   slot leads to it; the bodies compiled one by one stay mapped, since
//!   frames may still be running them.
//! - The runtime never compiles: it asks the [`LazyCompiler`] that the API
//!   layer supplied.

use super::code_registry::{self, CodeObject};
use super::libcalls::libcall_address;
use super::traphandlers::{UnwindReason, raise};
use keel_environ::{
    CompiledModuleInfo, DefinedFuncIndex, EntityRef, FunctionCode, LAZY_PAGE, LAZY_STUB_ENTRY,
};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// Compiles one function of a lazily compiled module on demand. The API
/// layer implements it (the runtime never depends on the compiler).
pub trait LazyCompiler: Send + Sync {
    /// The code of defined function `def`, not yet placed.
    fn compile(&self, def: DefinedFuncIndex) -> anyhow::Result<FunctionCode>;
    /// The defined functions `def` calls directly, in the order its body
    /// names them: what the background compiler does next after `def`
    /// was needed.
    fn callees(&self, def: DefinedFuncIndex) -> Vec<DefinedFuncIndex>;
    /// Every function's code (in definition order) laid out in one text
    /// as eager compilation lays it out, with its tables.
    fn link(&self, functions: Vec<FunctionCode>) -> anyhow::Result<(Vec<u8>, CompiledModuleInfo)>;
}

/// Where a function's compilation is ([`LazyCode::states`]).
const NOT_COMPILED: u8 = 0;
const COMPILING: u8 = 1;
const PLACED: u8 = 2;

/// A compiled body in the lazy area.
pub struct PlacedFunction {
    /// Offset of its first byte from the start of the text.
    pub start: usize,
    /// Its code and tables (offsets relative to `start`).
    pub code: FunctionCode,
}

/// The lazy half of a [`CodeObject`]: the slots, the area and what has
/// been compiled into it.
pub struct LazyCode {
    compiler: Box<dyn LazyCompiler>,
    /// Offset of slot 0 from the start of the text.
    slots_offset: usize,
    /// Offset of the lazy area from the start of the text, and its length.
    area_offset: usize,
    area_len: usize,
    /// Each defined function's body, once compiled.
    placed: Box<[OnceLock<PlacedFunction>]>,
    /// For each page of the area, the defined function owning it plus one
    /// (0: none yet).
    page_owner: Box<[AtomicU32]>,
    /// Each defined function's compilation state: one thread compiles a
    /// function (the first to move it from `NOT_COMPILED` to `COMPILING`),
    /// others needing it wait on `compiled`.
    states: Box<[AtomicU8]>,
    compiled: Condvar,
    /// Bytes of the area used so far; held while a body is placed, and
    /// with `compiled` while a state leaves `COMPILING`.
    used: Mutex<usize>,
    /// Functions compiled on demand, whose callees the background
    /// compiler takes first.
    demanded: Mutex<Vec<DefinedFuncIndex>>,
    /// Once every function is compiled: the module's code linked as eager
    /// compilation links it (calls between functions direct, bodies packed),
    /// which the slots then lead to. Registered while this lives.
    linked: OnceLock<Arc<CodeObject>>,
}

impl Drop for LazyCode {
    fn drop(&mut self) {
        if let Some(linked) = self.linked.get() {
            code_registry::unregister(linked);
        }
    }
}

impl LazyCode {
    /// The lazy half of a module whose stubs' slots start at
    /// `slots_offset` and whose area is the `area_len` bytes from
    /// `area_offset` (both from the start of the text, page-aligned).
    pub fn new(
        compiler: Box<dyn LazyCompiler>,
        num_functions: usize,
        slots_offset: usize,
        area_offset: usize,
        area_len: usize,
    ) -> LazyCode {
        LazyCode {
            compiler,
            slots_offset,
            area_offset,
            area_len,
            placed: (0..num_functions).map(|_| OnceLock::new()).collect(),
            page_owner: (0..area_len / LAZY_PAGE as usize)
                .map(|_| AtomicU32::new(0))
                .collect(),
            states: (0..num_functions)
                .map(|_| AtomicU8::new(NOT_COMPILED))
                .collect(),
            compiled: Condvar::new(),
            used: Mutex::new(0),
            demanded: Mutex::new(Vec::new()),
            linked: OnceLock::new(),
        }
    }

    /// How many functions have been compiled, of how many.
    pub fn progress(&self) -> (usize, usize) {
        let done = self.placed.iter().filter(|p| p.get().is_some()).count();
        (done, self.placed.len())
    }

    /// Whether `offset` (from the start of the text) lies in the area.
    pub fn in_area(&self, offset: usize) -> bool {
        offset >= self.area_offset && offset - self.area_offset < self.area_len
    }

    /// The compiled function whose body holds `offset` (from the start of
    /// the text), and the offset inside that body. Lock-free: safe in a
    /// signal handler.
    pub fn function_at(&self, offset: usize) -> Option<(DefinedFuncIndex, &PlacedFunction)> {
        let page = offset.checked_sub(self.area_offset)? / LAZY_PAGE as usize;
        let owner = self.page_owner.get(page)?.load(Ordering::Acquire);
        let def = DefinedFuncIndex::new(owner.checked_sub(1)? as usize);
        let placed = self.placed.get(def.index())?.get()?;
        (offset >= placed.start && offset - placed.start < placed.code.code.len())
            .then_some((def, placed))
    }

    /// The slot of defined function `def`.
    fn slot<'a>(&self, code: &'a CodeObject, index: usize) -> &'a AtomicUsize {
        let offset = self.slots_offset + 8 * index;
        assert!(offset + 8 <= code.mapped_len(), "slot outside the mapping");
        // SAFETY: the slots lie inside the code object's mapping (asserted),
        // 8-aligned (the slots start on a page), readable and writable for
        // as long as it lives, and are only ever accessed atomically here
        // (the stubs' `jmp` reads a whole aligned word).
        unsafe { &*(code.mapping_ptr().add(offset) as *const AtomicUsize) }
    }

    /// Points every slot at its stub's lazy entry and the entry slot at
    /// `entry` (the runtime's `keel_lazy_entry`). Called once, when the
    /// code is loaded.
    pub fn init_slots(&self, code: &CodeObject, entry: usize) {
        for (i, f) in code.info.functions.values().enumerate() {
            let stub = code.text_start() + f.wasm_call.start as usize;
            self.slot(code, i)
                .store(stub + LAZY_STUB_ENTRY as usize, Ordering::Release);
        }
        self.slot(code, self.placed.len())
            .store(entry, Ordering::Release);
    }

    /// Compiles `def` unless another thread did or is doing it (then waits
    /// for it), and returns its body's address.
    fn ensure_compiled(&self, code: &CodeObject, def: DefinedFuncIndex) -> anyhow::Result<usize> {
        let (placed, state) = match (self.placed.get(def.index()), self.states.get(def.index())) {
            (Some(p), Some(s)) => (p, s),
            _ => anyhow::bail!("lazy stub of a function that does not exist"),
        };
        let address = |p: &PlacedFunction| code.text_start() + p.start;
        loop {
            if let Some(p) = placed.get() {
                return Ok(address(p));
            }
            match state.compare_exchange(
                NOT_COMPILED,
                COMPILING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(COMPILING) => {
                    let mut used = self.lock_used();
                    while state.load(Ordering::Acquire) == COMPILING {
                        used = self.compiled.wait(used).unwrap_or_else(|e| e.into_inner());
                    }
                }
                // Placed (its body is published first), or its compilation
                // failed and went back to `NOT_COMPILED`: look again.
                Err(_) => {}
            }
        }
        let result = self
            .compiler
            .compile(def)
            .and_then(|function| self.place(code, def, function));
        let used = self.lock_used();
        let done = match &result {
            Ok(_) => PLACED,
            Err(_) => NOT_COMPILED,
        };
        state.store(done, Ordering::Release);
        self.compiled.notify_all();
        drop(used);
        result
    }

    fn lock_used(&self) -> std::sync::MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies `function` into fresh pages of the area, resolves its calls
    /// and libcalls, makes it executable, publishes its tables and points
    /// its slot at it. Returns its address.
    fn place(
        &self,
        code: &CodeObject,
        def: DefinedFuncIndex,
        function: FunctionCode,
    ) -> anyhow::Result<usize> {
        let mut used = self.lock_used();
        let pages = function
            .code
            .len()
            .max(1)
            .next_multiple_of(LAZY_PAGE as usize);
        if *used + pages > self.area_len {
            anyhow::bail!(
                "the module's lazily compiled code outgrew the {} MiB reserved for it",
                self.area_len >> 20
            );
        }
        let start = self.area_offset + *used;
        let address = code.text_start() + start;
        // SAFETY: these pages of the area belong to no function yet: no
        // slot leads to them, so nothing runs or reads them.
        unsafe { code.mmap().make_accessible_shared(start, pages)? };
        // SAFETY: `pages` fresh writable bytes at `address` (above) hold the
        // code; every write below is checked to stay inside it.
        let body = unsafe { std::slice::from_raw_parts_mut(address as *mut u8, pages) };
        body[..function.code.len()].copy_from_slice(&function.code);
        for call in &function.calls {
            let callee = code
                .info
                .functions
                .get(call.callee)
                .ok_or_else(|| anyhow::anyhow!("call to a function that does not exist"))?;
            // A callee compiled already is called straight; any other
            // through its stub (whose slot leads to its body once it is).
            let target = match self.placed.get(call.callee.index()).and_then(|p| p.get()) {
                Some(body) => code.text_start() + body.start,
                None => code.text_start() + callee.wasm_call.start as usize,
            };
            let site = address + call.offset as usize;
            let disp = (target as i64)
                .wrapping_add(call.addend)
                .wrapping_sub(site as i64);
            let disp = i32::try_from(disp)
                .map_err(|_| anyhow::anyhow!("a lazily compiled call is out of reach"))?;
            write_in(body, &function.code, call.offset, &disp.to_le_bytes())?;
        }
        for r in &function.libcalls {
            let value = (libcall_address(r.target) as i64).wrapping_add(r.addend);
            write_in(body, &function.code, r.offset, &value.to_le_bytes())?;
        }
        // SAFETY: still unreachable from any slot.
        unsafe { code.mmap().make_executable_shared(start, pages)? };
        let first_page = *used / LAZY_PAGE as usize;
        *used += pages;
        let _ = self.placed[def.index()].set(PlacedFunction {
            start,
            code: function,
        });
        for owner in &self.page_owner[first_page..first_page + pages / LAZY_PAGE as usize] {
            owner.store(def.as_u32() + 1, Ordering::Release);
        }
        self.slot(code, def.index())
            .store(address, Ordering::Release);
        Ok(address)
    }

    /// The module's code linked whole, once [`LazyCode::switch_to_linked`]
    /// made it.
    pub fn linked(&self) -> Option<&Arc<CodeObject>> {
        self.linked.get()
    }

    /// Compiles every function not compiled yet, links them all into one
    /// text (`LazyCompiler::link`), loads and registers it, and points
    /// every slot at its body there: from then on calls inside the module
    /// are direct and its code is packed, as if compiled eagerly. Bodies
    /// compiled one by one stay where they are (frames may be running
    /// them). Does nothing the second time.
    pub fn switch_to_linked(&self, code: &CodeObject) -> anyhow::Result<()> {
        if self.linked.get().is_some() {
            return Ok(());
        }
        let functions = self.compile_all(code)?;
        let (text, info) = self.compiler.link(functions)?;
        let linked = Arc::new(super::code_memory::load_code(
            &text,
            info,
            code.module.clone(),
        )?);
        if self.linked.set(linked.clone()).is_err() {
            return Ok(());
        }
        code_registry::register(&linked);
        for (i, f) in linked.info.functions.values().enumerate() {
            self.slot(code, i).store(
                linked.text_start() + f.wasm_call.start as usize,
                Ordering::Release,
            );
        }
        Ok(())
    }

    /// Every function's code, compiling those not compiled yet (from the
    /// last, so as to meet the background compiler, which goes from the
    /// first, rather than wait on it).
    pub fn compile_all(&self, code: &CodeObject) -> anyhow::Result<Vec<FunctionCode>> {
        for i in (0..self.placed.len()).rev() {
            self.ensure_compiled(code, DefinedFuncIndex::new(i))?;
        }
        self.placed
            .iter()
            .map(|p| {
                p.get()
                    .map(|p| p.code.clone())
                    .ok_or_else(|| anyhow::anyhow!("a function was not compiled"))
            })
            .collect()
    }

    /// Compiles `def` for a call that needs it now, and tells the
    /// background compiler to take its callees next.
    fn compile_on_demand(&self, code: &CodeObject, def: DefinedFuncIndex) -> anyhow::Result<usize> {
        let address = self.ensure_compiled(code, def)?;
        self.demanded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(def);
        Ok(address)
    }
}

/// Compiles, on a thread of its own, the functions of `code` that no call
/// has needed yet: first the callees of functions called so far (most
/// recent first, as a program that just entered a function is about to
/// call them), then all the rest in order, so that the program soon runs
/// no compiler at all. Stops when every function is compiled or the module
/// is gone.
pub fn compile_in_background(code: &std::sync::Arc<CodeObject>) {
    let weak = std::sync::Arc::downgrade(code);
    let spawned = std::thread::Builder::new()
        .name("keel-lazy-compile".into())
        .spawn(move || {
            let mut next = 0;
            let mut queue: Vec<DefinedFuncIndex> = Vec::new();
            loop {
                let Some(code) = weak.upgrade() else { return };
                let Some(lazy) = &code.lazy else { return };
                let demanded =
                    std::mem::take(&mut *lazy.demanded.lock().unwrap_or_else(|e| e.into_inner()));
                for def in demanded {
                    let mut callees = lazy.compiler.callees(def);
                    callees.reverse();
                    queue.extend(callees);
                }
                let pending = |d: &DefinedFuncIndex| {
                    lazy.states
                        .get(d.index())
                        .is_some_and(|s| s.load(Ordering::Acquire) == NOT_COMPILED)
                };
                let def = loop {
                    match queue.pop() {
                        Some(d) if pending(&d) => break Some(d),
                        Some(_) => continue,
                        None => {}
                    }
                    let mut in_order = None;
                    while next < lazy.placed.len() {
                        let d = DefinedFuncIndex::new(next);
                        next += 1;
                        if pending(&d) {
                            in_order = Some(d);
                            break;
                        }
                    }
                    break in_order;
                };
                let Some(def) = def else {
                    // Everything is compiled: switch to the linked code. (On
                    // failure the bodies compiled one by one serve.)
                    let _ = lazy.switch_to_linked(&code);
                    return;
                };
                // A failure shows again, with its error, when a call needs
                // the function.
                let _ = lazy.ensure_compiled(&code, def);
            }
        });
    // Without the thread, functions still compile at their first call.
    drop(spawned);
}

/// Writes `bytes` at `offset` of a body being placed, refusing a
/// relocation that would reach past the function's code.
fn write_in(body: &mut [u8], code: &[u8], offset: u32, bytes: &[u8]) -> anyhow::Result<()> {
    let at = offset as usize;
    if at
        .checked_add(bytes.len())
        .is_none_or(|end| end > code.len())
    {
        anyhow::bail!("a relocation lies outside its function");
    }
    body[at..at + bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// Called by `keel_lazy_entry` when a stub's function is not compiled:
/// compiles defined function `def` of the module whose entry slot is at
/// `entry_slot` and returns its body's address. If compilation fails,
/// unwinds the activation with the error (through the entry's frame,
/// `fp`).
///
/// # Safety
///
/// Called only by `keel_lazy_entry`, from wasm, with the entry's frame
/// pointer.
pub unsafe extern "C" fn lazy_compile(entry_slot: usize, def: u32, fp: usize) -> usize {
    let def = DefinedFuncIndex::from_u32(def);
    let result = std::panic::catch_unwind(|| {
        let code = code_registry::lookup(entry_slot)
            .ok_or_else(|| anyhow::anyhow!("lazy stub outside loaded code"))?;
        match &code.lazy {
            Some(lazy) => lazy.compile_on_demand(&code, def),
            None => Err(anyhow::anyhow!("lazy stub in eagerly compiled code")),
        }
    });
    let reason = match result {
        Ok(Ok(address)) => return address,
        Ok(Err(e)) => UnwindReason::User(e.context(format!(
            "failed to compile function {} at its first call",
            def.as_u32()
        ))),
        Err(panic) => UnwindReason::Panic(panic),
    };
    // SAFETY: called from wasm inside `catch_traps` (the entry is reached
    // only from wasm code, or a host call into wasm), with nothing left to
    // drop here; `fp` is the entry's frame, which links to its caller's.
    unsafe { raise(reason, fp) }
}
