// The landing point for traps.
//
// `keel_call_with_catch` runs `body(payload)` after recording a jump buffer
// in `*slot`; a trap (from the signal handler or a failing host function)
// jumps back here with `keel_unwind`, skipping the wasm frames in between,
// and the call returns 0. A normal return gives 1.
//
// The buffer is the compiler's own (`__builtin_setjmp`, as GCC and Clang
// use for their setjmp/longjmp exceptions): it records only the frame
// pointer, the stack pointer and the landing address, and the compiler
// saves every callee-saved register of this function around it, so
// entering wasm costs a few stores rather than a libc `sigsetjmp`. No
// signal mask is saved or restored: the handlers are installed with
// SA_NODEFER, so jumping out of one leaves nothing blocked.

typedef void (*keel_body)(void *payload);

int keel_call_with_catch(void **slot, keel_body body, void *payload) {
    void *buf[5];
    if (__builtin_setjmp(buf) != 0) {
        return 0;
    }
    *slot = buf;
    body(payload);
    return 1;
}

void keel_unwind(void *buf) {
    __builtin_longjmp((void **)buf, 1);
}
