//! Which addresses hold Keel's compiled code, and what is known about them.
//!
//! The signal handler asks this registry whether a faulting program counter
//! is in wasm code and which trap it is. It takes the read lock: the
//! faulting thread was running wasm, so it cannot be holding the lock
//! itself, and the lookup neither allocates nor blocks on anything else.

use super::lazy::LazyCode;
use super::mmap::Mmap;
use keel_environ::{CompiledModuleInfo, DefinedFuncIndex, FuncIndex, Module, TrapKind};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// A module's executable code and its tables, registered while it lives.
pub struct CodeObject {
    mmap: Mmap,
    text_len: usize,
    /// Where things are in the text.
    pub info: CompiledModuleInfo,
    /// The module, for function names.
    pub module: Arc<Module>,
    /// For a lazily compiled module: the stubs' slots and the bodies
    /// compiled so far, in the same mapping after the text.
    pub lazy: Option<LazyCode>,
}

impl CodeObject {
    /// Wraps executable text that `mmap` holds.
    pub(crate) fn new(
        mmap: Mmap,
        text_len: usize,
        info: CompiledModuleInfo,
        module: Arc<Module>,
    ) -> Self {
        CodeObject {
            mmap,
            text_len,
            info,
            module,
            lazy: None,
        }
    }

    /// Wraps the text of a lazily compiled module: `mmap` holds the text,
    /// then `lazy`'s slots and area.
    pub(crate) fn new_lazy(
        mmap: Mmap,
        text_len: usize,
        info: CompiledModuleInfo,
        module: Arc<Module>,
        lazy: LazyCode,
    ) -> Self {
        CodeObject {
            lazy: Some(lazy),
            ..CodeObject::new(mmap, text_len, info, module)
        }
    }

    /// The whole mapping (the text, and for lazy code its slots and area).
    pub(crate) fn mmap(&self) -> &Mmap {
        &self.mmap
    }

    /// The first byte of the mapping (the text's).
    pub(crate) fn mapping_ptr(&self) -> *mut u8 {
        self.mmap.as_ptr()
    }

    /// The mapping's length.
    pub(crate) fn mapped_len(&self) -> usize {
        self.mmap.len()
    }

    /// Bytes from the start of the text where code may run: the text, and
    /// for lazy code everything after it.
    fn code_len(&self) -> usize {
        if self.lazy.is_some() {
            self.mmap.len()
        } else {
            self.text_len
        }
    }

    /// The first byte of the text.
    pub fn text_start(&self) -> usize {
        self.mmap.as_ptr() as usize
    }

    /// The text as loaded (load-time relocations written).
    pub fn text(&self) -> &[u8] {
        // SAFETY: the mapping holds `text_len` readable bytes for as long as
        // `self` lives, and nothing writes them after loading.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.text_len) }
    }

    /// The address of `offset` in the text.
    pub fn text_address(&self, offset: u32) -> *const u8 {
        debug_assert!((offset as usize) < self.text_len.max(1));
        self.mmap.as_ptr().wrapping_add(offset as usize)
    }

    fn end(&self) -> usize {
        self.text_start() + self.code_len()
    }

    /// Offset of `pc` in this code (from the start of the text), if it is
    /// inside.
    pub fn offset_of(&self, pc: usize) -> Option<u32> {
        if pc >= self.text_start() && pc < self.end() {
            u32::try_from(pc - self.text_start()).ok()
        } else {
            None
        }
    }

    /// The function whose body contains `pc`, and the wasm byte offset.
    pub fn lookup_frame(&self, pc: usize) -> Option<(FuncIndex, Option<u32>)> {
        let offset = self.offset_of(pc)?;
        if let Some((def, placed)) = self.lazy_function_at(offset) {
            let inside = (offset as usize - placed.start) as u32;
            return Some((
                self.module.func_index(def),
                placed.code.lookup_wasm_offset(inside),
            ));
        }
        let def: DefinedFuncIndex = self.info.lookup_function(offset)?;
        Some((
            self.module.func_index(def),
            self.info.lookup_wasm_offset(offset),
        ))
    }

    /// The trap kind of the instruction at `offset`, if it may trap.
    fn trap_at(&self, offset: u32) -> Option<TrapKind> {
        if let Some((_, placed)) = self.lazy_function_at(offset) {
            return placed
                .code
                .lookup_trap((offset as usize - placed.start) as u32);
        }
        self.info.lookup_trap(offset)
    }

    /// The landing pad of the call returning to `offset`, and its frame
    /// offset (see `HandlerSite`), as a pc.
    fn handler_at(&self, offset: u32) -> Option<(usize, u32)> {
        if let Some((_, placed)) = self.lazy_function_at(offset) {
            let inside = (offset as usize - placed.start) as u32;
            let site = keel_environ::lookup_handler(&placed.code.handlers, inside)?;
            let pc = placed.start + site.handler_offset as usize;
            return (pc < placed.start + placed.code.code.len())
                .then(|| (self.text_start() + pc, site.frame_offset));
        }
        let site = self.info.lookup_handler(offset)?;
        ((site.handler_offset as usize) < self.code_len()).then(|| {
            (
                self.text_start() + site.handler_offset as usize,
                site.frame_offset,
            )
        })
    }

    /// Whether `offset` is inside a wasm function's body.
    fn is_function_at(&self, offset: u32) -> bool {
        self.lazy_function_at(offset).is_some() || self.info.lookup_function(offset).is_some()
    }

    fn lazy_function_at(
        &self,
        offset: u32,
    ) -> Option<(DefinedFuncIndex, &super::lazy::PlacedFunction)> {
        let lazy = self.lazy.as_ref()?;
        let offset = offset as usize;
        if !lazy.in_area(offset) {
            return None;
        }
        lazy.function_at(offset)
    }
}

type Registry = BTreeMap<usize, Arc<CodeObject>>;

static REGISTRY: RwLock<Registry> = RwLock::new(BTreeMap::new());

fn read() -> std::sync::RwLockReadGuard<'static, Registry> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner())
}

/// Makes `code` known to trap handling until [`unregister`].
pub fn register(code: &Arc<CodeObject>) {
    if code.code_len() == 0 {
        return;
    }
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    r.insert(code.end(), code.clone());
}

/// Forgets the code registered by `code`.
pub fn unregister(code: &CodeObject) {
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    r.remove(&code.end());
}

fn find(r: &Registry, pc: usize) -> Option<&Arc<CodeObject>> {
    let (_, code) = r.range(pc + 1..).next()?;
    code.offset_of(pc).map(|_| code)
}

/// The code object containing `pc`.
pub fn lookup(pc: usize) -> Option<Arc<CodeObject>> {
    find(&read(), pc).cloned()
}

/// The trap kind of the instruction at `pc`, if `pc` is a trap site in
/// registered code. Safe to call from a signal handler (see module docs).
pub fn lookup_trap(pc: usize) -> Option<TrapKind> {
    let r = read();
    let code = find(&r, pc)?;
    code.trap_at(code.offset_of(pc)?)
}

/// Whether `pc` is inside the body of a wasm function (not a trampoline).
/// Whether `pc` is in the text of compiled module code: a wasm function
/// body or a host-to-wasm trampoline. For a handler of an asynchronous
/// signal: never waits for the registry's lock (the interrupted thread may
/// hold it), answering `false` when it is taken.
pub fn try_is_module_code_pc(pc: usize) -> bool {
    let Ok(r) = REGISTRY.try_read() else {
        return false;
    };
    find(&r, pc).is_some_and(|code| code.offset_of(pc).is_some())
}

/// For a return address `pc` in a wasm function: the landing pad of that
/// call, if it is inside a `try_table`, and the distance from the calling
/// frame's frame pointer down to its stack pointer at the call.
pub fn lookup_handler(pc: usize) -> Option<(usize, u32)> {
    let r = read();
    let code = find(&r, pc)?;
    code.handler_at(code.offset_of(pc)?)
}

/// Whether `pc` is inside the body of a compiled wasm function.
pub fn is_wasm_function_pc(pc: usize) -> bool {
    let r = read();
    find(&r, pc).is_some_and(|code| code.offset_of(pc).is_some_and(|o| code.is_function_at(o)))
}
