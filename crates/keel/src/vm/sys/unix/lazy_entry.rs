//! The entry through which a lazily compiled module's stubs reach the
//! compiler (see `vm/lazy.rs`).
//!
//! A stub whose function is not compiled yet loads the function's defined
//! index into `r11d` and the address of its module's entry slot into `r10`
//! (neither carries arguments) and jumps here, with the caller's arguments
//! still in their registers and on the stack, as at the function's first
//! instruction. The entry saves the registers that carry arguments in
//! Cranelift's `tail` convention, which wasm functions use: on x86-64 the
//! System V ones (six integer, eight vector), `r10` and `r11` not among
//! them. It calls
//! [`lazy_compile`](crate::vm::lazy::lazy_compile) with the slot's
//! address, the index and its own frame pointer, restores them and jumps
//! to the address it got back: the function's body, which then runs as if
//! called directly.
//! Its frame links to the caller's like a call's, so an error raised while
//! compiling unwinds with a backtrace through the caller.

std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl keel_lazy_entry",
    ".type keel_lazy_entry, @function",
    "keel_lazy_entry:",
    "push rbp",
    "mov rbp, rsp",
    "push rdi",
    "push rsi",
    "push rdx",
    "push rcx",
    "push r8",
    "push r9",
    "and rsp, -16",
    "sub rsp, 128",
    "movdqu [rsp], xmm0",
    "movdqu [rsp + 16], xmm1",
    "movdqu [rsp + 32], xmm2",
    "movdqu [rsp + 48], xmm3",
    "movdqu [rsp + 64], xmm4",
    "movdqu [rsp + 80], xmm5",
    "movdqu [rsp + 96], xmm6",
    "movdqu [rsp + 112], xmm7",
    "cld",
    "mov rdi, r10",
    "mov esi, r11d",
    "mov rdx, rbp",
    "call {compile}",
    "mov r11, rax",
    "movdqu xmm0, [rsp]",
    "movdqu xmm1, [rsp + 16]",
    "movdqu xmm2, [rsp + 32]",
    "movdqu xmm3, [rsp + 48]",
    "movdqu xmm4, [rsp + 64]",
    "movdqu xmm5, [rsp + 80]",
    "movdqu xmm6, [rsp + 96]",
    "movdqu xmm7, [rsp + 112]",
    // Six words were pushed after `rbp`.
    "lea rsp, [rbp - 48]",
    "pop r9",
    "pop r8",
    "pop rcx",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "pop rbp",
    "jmp r11",
    ".size keel_lazy_entry, . - keel_lazy_entry",
    compile = sym crate::vm::lazy::lazy_compile,
);

unsafe extern "C" {
    fn keel_lazy_entry();
}

/// The address the stubs' entry slot holds.
pub fn lazy_entry_address() -> usize {
    keel_lazy_entry as *const () as usize
}
