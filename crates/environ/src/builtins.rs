//! Runtime entry points that generated code calls through the context's
//! builtins array.
//!
//! The list is written once, in [`foreach_builtin_function!`](crate::foreach_builtin_function). The compiler
//! expands it into call signatures; the runtime expands it into the array of
//! function pointers, so the index of each entry and its signature cannot
//! disagree between the two.
//!
//! Builtins never unwind: one that can fail returns a status that generated
//! code turns into a trap with a `trapz`, so that the trap comes from a wasm
//! instruction with a precise trap code and backtrace. The exception is
//! `throw_ref`, which resumes at the wasm handler that catches the
//! exception (see its entry).

/// Invokes `$mac!` with the list of builtins, one per line:
/// `name(param: type, ...) -> result;`. Types are `vmctx` (the caller's
/// context), `i32`, `i64` and `ptr` (pointer-sized). A result of `i32`
/// named `ok` in the docs is 1 for success and 0 for failure.
#[macro_export]
macro_rules! foreach_builtin_function {
    ($mac:ident) => {
        $mac! {
            /// `memory.grow`: returns the old size in pages, -1 if it cannot
            /// grow, or -2 if the store's resource limiter failed (the
            /// caller traps with `HostError`; the limiter's error is kept in
            /// the store).
            memory_grow(vmctx: vmctx, memory: i32, delta: i64) -> i64;
            /// `table.grow` of a reference table: returns the old size, -1,
            /// or -2 as for `memory_grow`.
            table_grow(vmctx: vmctx, table: i32, delta: i64, init: ptr) -> i64;
            /// `table.fill`; returns ok.
            table_fill(vmctx: vmctx, table: i32, dst: i64, value: ptr, len: i64) -> i32;
            /// `table.copy`; returns ok.
            table_copy(vmctx: vmctx, dst_table: i32, src_table: i32, dst: i64, src: i64, len: i64) -> i32;
            /// `table.init`; returns ok.
            table_init(vmctx: vmctx, table: i32, elem: i32, dst: i64, src: i64, len: i64) -> i32;
            /// The funcref of a funcref table element read before it was
            /// initialized (its stored word is 0); the index is in bounds.
            table_lazy_func_ref(vmctx: vmctx, table: i32, index: i64) -> ptr;
            /// `elem.drop`.
            elem_drop(vmctx: vmctx, elem: i32) -> i32;
            /// `ref.func` of a function defined in this module: its funcref,
            /// written into the context first if nothing needed it before.
            ref_func(vmctx: vmctx, func: i32) -> ptr;
            /// `memory.copy`; returns ok.
            memory_copy(vmctx: vmctx, dst_memory: i32, dst: i64, src_memory: i32, src: i64, len: i64) -> i32;
            /// `memory.fill`; returns ok.
            memory_fill(vmctx: vmctx, memory: i32, dst: i64, value: i32, len: i64) -> i32;
            /// `memory.init`; returns ok.
            memory_init(vmctx: vmctx, memory: i32, data: i32, dst: i64, src: i64, len: i64) -> i32;
            /// `data.drop`.
            data_drop(vmctx: vmctx, data: i32) -> i32;
            /// Called when the store's interrupt word is set (its epoch
            /// deadline passed): answers 1 to continue (the store extended its
            /// deadline), 0 to trap with `Interrupt`, or 2 to trap with
            /// `HostError` (the deadline callback failed; its error is kept in
            /// the store). Called through the slow-path trampoline, so the
            /// answer is also left in `VMStoreContext::slow_path_status`.
            new_epoch(vmctx: vmctx) -> i32;
            /// Called (with `Tunables::fuel_yields`) when a charge exceeds
            /// the fuel left: the count before the charge is in the store's
            /// `fuel_consumed`, the charge in `slow_path_status`. Answers 1
            /// when the store refilled the count (from its reserve,
            /// perhaps after yielding) and took the charge, leaving the new
            /// count in `fuel_consumed`; 0 to trap with `OutOfFuel`; 2 to
            /// trap with `HostError` (the call was cancelled while it
            /// yielded). Called through the slow-path trampoline, so the
            /// answer is also left in `slow_path_status`.
            out_of_fuel(vmctx: vmctx) -> i32;
            /// `throw`: a new exception object of a tag of the calling
            /// instance, whose fields the caller then writes (see
            /// `vm_exception`); null (the caller traps with `HostError`)
            /// when the store's exceptions would take too much memory,
            /// with the error kept in the store.
            exn_new(vmctx: vmctx, tag: i32) -> ptr;
            /// `throw_ref` of a non-null exception (and `throw` once its
            /// fields are written) that no handler of the calling frame
            /// caught: searches the wasm frames above `fp` (the caller's
            /// frame pointer) for a handler and resumes there, never
            /// returning. Returns 0 when no frame of this activation
            /// catches it: the store now holds it as its pending exception
            /// and the caller traps with `UncaughtException`. The one
            /// builtin that does not return to its caller.
            throw_ref(vmctx: vmctx, exn: ptr, fp: ptr) -> i32;
        }
    };
}

/// A parameter or result type of a builtin.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BuiltinType {
    /// The calling instance's context.
    Vmctx,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// Pointer-sized integer.
    Ptr,
}

/// A builtin's signature.
#[derive(Clone, Debug)]
pub struct BuiltinSignature {
    /// Parameter types, the context first.
    pub params: &'static [BuiltinType],
    /// Result type.
    pub result: BuiltinType,
}

macro_rules! builtin_type {
    (vmctx) => {
        BuiltinType::Vmctx
    };
    (i32) => {
        BuiltinType::I32
    };
    (i64) => {
        BuiltinType::I64
    };
    (ptr) => {
        BuiltinType::Ptr
    };
}

macro_rules! declare_builtin_index {
    ($( $(#[$doc:meta])* $name:ident( $($pname:ident: $pty:ident),* ) -> $result:ident; )*) => {
        /// Index of a builtin in the builtins array.
        #[allow(non_camel_case_types, reason = "variants are named after the builtins")]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum BuiltinFunctionIndex {
            $( $(#[$doc])* $name, )*
        }

        impl BuiltinFunctionIndex {
            /// All builtins, in array order.
            pub const ALL: &'static [BuiltinFunctionIndex] = &[$(BuiltinFunctionIndex::$name,)*];

            /// The builtin's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(BuiltinFunctionIndex::$name => stringify!($name),)*
                }
            }

            /// The builtin's signature.
            pub fn signature(self) -> BuiltinSignature {
                match self {
                    $(BuiltinFunctionIndex::$name => BuiltinSignature {
                        params: &[$(builtin_type!($pty)),*],
                        result: builtin_type!($result),
                    },)*
                }
            }

            /// Byte offset of the builtin's pointer in the array.
            pub fn array_offset(self) -> u32 {
                self as u32 * crate::PTR_SIZE
            }
        }
    };
}

foreach_builtin_function!(declare_builtin_index);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_takes_the_context_first() {
        for b in BuiltinFunctionIndex::ALL {
            assert_eq!(
                b.signature().params.first(),
                Some(&BuiltinType::Vmctx),
                "{}",
                b.name()
            );
        }
    }
}
