//! The stub through which a faulted epoch check calls into the runtime.
//!
//! An epoch check compiled with `Tunables::epoch_by_signal` is one
//! load from the store's interrupt page. When the page is protected, the
//! fault handler makes the faulting code appear to call `keel_epoch_resume`
//! from the check: it pushes the check's address as a return address and
//! points the program counter here. Wasm may hold live values in any
//! register and in the flags at a check, so the stub saves every register
//! the platform convention lets a callee clobber (the flags, the nine
//! caller-saved integer registers and all sixteen vector registers), calls
//! [`epoch_check_resume`](crate::vm::traphandlers::epoch_check_resume) with
//! its frame pointer, restores them and returns to the check, which runs
//! again. Callee-saved registers are preserved by the Rust function itself.
//! Its frame links to the wasm frame like a call's, so a backtrace taken
//! inside the deadline callback walks through it.
//!
//! Wasm code never writes below its stack pointer (Cranelift uses no red
//! zone), so the pushed return address overwrites nothing live, and the
//! wasm stack limit leaves the runtime the same room it has for any
//! builtin.

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl keel_epoch_resume",
    ".type keel_epoch_resume, @function",
    "keel_epoch_resume:",
    "push rbp",
    "mov rbp, rsp",
    "pushfq",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    // The check may sit in a frame of either stack parity: align for the
    // call, keeping `rbp` to undo it.
    "and rsp, -16",
    "sub rsp, 256",
    "movdqu [rsp], xmm0",
    "movdqu [rsp + 16], xmm1",
    "movdqu [rsp + 32], xmm2",
    "movdqu [rsp + 48], xmm3",
    "movdqu [rsp + 64], xmm4",
    "movdqu [rsp + 80], xmm5",
    "movdqu [rsp + 96], xmm6",
    "movdqu [rsp + 112], xmm7",
    "movdqu [rsp + 128], xmm8",
    "movdqu [rsp + 144], xmm9",
    "movdqu [rsp + 160], xmm10",
    "movdqu [rsp + 176], xmm11",
    "movdqu [rsp + 192], xmm12",
    "movdqu [rsp + 208], xmm13",
    "movdqu [rsp + 224], xmm14",
    "movdqu [rsp + 240], xmm15",
    "cld",
    "mov rdi, rbp",
    "call {resume}",
    "movdqu xmm0, [rsp]",
    "movdqu xmm1, [rsp + 16]",
    "movdqu xmm2, [rsp + 32]",
    "movdqu xmm3, [rsp + 48]",
    "movdqu xmm4, [rsp + 64]",
    "movdqu xmm5, [rsp + 80]",
    "movdqu xmm6, [rsp + 96]",
    "movdqu xmm7, [rsp + 112]",
    "movdqu xmm8, [rsp + 128]",
    "movdqu xmm9, [rsp + 144]",
    "movdqu xmm10, [rsp + 160]",
    "movdqu xmm11, [rsp + 176]",
    "movdqu xmm12, [rsp + 192]",
    "movdqu xmm13, [rsp + 208]",
    "movdqu xmm14, [rsp + 224]",
    "movdqu xmm15, [rsp + 240]",
    // Ten words were pushed after `rbp`.
    "lea rsp, [rbp - 80]",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "popfq",
    "pop rbp",
    "ret",
    ".size keel_epoch_resume, . - keel_epoch_resume",
    resume = sym crate::vm::traphandlers::epoch_check_resume,
);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn keel_epoch_resume();
}

/// The length of the epoch check at `pc`, a one-byte load
/// `movzx reg, byte ptr [base + disp]` (an optional REX prefix, `0F B6`, a
/// memory ModRM with its SIB and displacement), or `None` if the bytes
/// there are not such a load.
///
/// # Safety
///
/// `pc` must be an epoch check site in loaded, readable code.
#[cfg(target_arch = "x86_64")]
pub unsafe fn epoch_check_len(pc: usize) -> Option<usize> {
    // Reads only bytes of the instruction itself, each once its
    // predecessors say it belongs to it.
    // SAFETY: the caller guarantees `pc` starts a load in readable code.
    let at = |k: usize| unsafe { *((pc + k) as *const u8) };
    let mut i = usize::from(at(0) & 0xf0 == 0x40);
    if at(i) != 0x0f || at(i + 1) != 0xb6 {
        return None;
    }
    i += 2;
    let modrm = at(i);
    i += 1;
    let (mode, rm) = (modrm >> 6, modrm & 7);
    if mode == 3 {
        return None;
    }
    if rm == 4 {
        let base = at(i) & 7;
        i += 1;
        if mode == 0 && base == 5 {
            i += 4;
        }
    } else if mode == 0 && rm == 5 {
        i += 4;
    }
    i += match mode {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    Some(i)
}

/// Makes the interrupted thread, stopped by a fault at the epoch check at
/// `pc`, call the resume stub from that check when the handler returns.
///
/// # Safety
///
/// `context` must be the `ucontext_t` the kernel passed to the handler of a
/// fault at `pc` in wasm code, with [`is_epoch_check_fault`] true for it.
///
/// [`is_epoch_check_fault`]: crate::vm::traphandlers::is_epoch_check_fault
#[cfg(target_arch = "x86_64")]
pub unsafe fn redirect_to_resume(context: *mut libc::c_void, pc: usize) {
    let cx = context.cast::<libc::ucontext_t>();
    // SAFETY: the caller guarantees `cx` is the kernel's context, which the
    // handler may edit; the word below the wasm stack pointer is free (no
    // red zone) and inside the stack (the wasm stack limit leaves room).
    unsafe {
        let gregs = &mut (*cx).uc_mcontext.gregs;
        let sp = gregs[libc::REG_RSP as usize] as usize - 8;
        *(sp as *mut usize) = pc;
        gregs[libc::REG_RSP as usize] = sp as i64;
        gregs[libc::REG_RIP as usize] = keel_epoch_resume as *const () as usize as i64;
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::epoch_check_len;

    fn len(bytes: &[u8]) -> Option<usize> {
        // Padding keeps the decoder's reads inside the buffer whatever it
        // decides.
        let mut padded = bytes.to_vec();
        padded.resize(16, 0xcc);
        // SAFETY: the buffer is readable and longer than any load.
        unsafe { epoch_check_len(padded.as_ptr() as usize) }
    }

    #[test]
    fn decodes_the_loads_cranelift_emits_for_a_check() {
        assert_eq!(len(&[0x0f, 0xb6, 0x00]), Some(3), "movzx eax, [rax]");
        assert_eq!(len(&[0x48, 0x0f, 0xb6, 0x08]), Some(4), "movzx rcx, [rax]");
        assert_eq!(len(&[0x4d, 0x0f, 0xb6, 0x00]), Some(4), "movzx r8, [r8]");
        assert_eq!(len(&[0x49, 0x0f, 0xb6, 0x04, 0x24]), Some(5), "[r12]");
        assert_eq!(len(&[0x49, 0x0f, 0xb6, 0x45, 0x00]), Some(5), "[r13+0]");
        assert_eq!(len(&[0x0f, 0xb6, 0x80, 1, 2, 3, 4]), Some(7), "disp32");
        assert_eq!(len(&[0x0f, 0xb6, 0x04, 0x25, 1, 2, 3, 4]), Some(8));
    }

    #[test]
    fn refuses_anything_else() {
        assert_eq!(len(&[0x8b, 0x00]), None, "mov");
        assert_eq!(len(&[0x0f, 0xb7, 0x00]), None, "movzx word");
        assert_eq!(len(&[0x0f, 0xb6, 0xc0]), None, "register operand");
    }
}
