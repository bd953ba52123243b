// The landing point for traps.
//
// `keel_call_with_catch` runs `body(payload)` after recording a jump buffer
// in `*slot`; a trap (from the signal handler or a failing host function)
// jumps back here with `keel_unwind`, skipping the wasm frames in between,
// and the call returns 0. A normal return gives 1.
//
// The signal mask is not saved (`sigsetjmp(buf, 0)`): it would cost a system
// call per entry, and the handlers are installed with SA_NODEFER so that
// jumping out of one leaves nothing blocked.

#include <setjmp.h>

typedef void (*keel_body)(void *payload);

int keel_call_with_catch(void **slot, keel_body body, void *payload) {
    sigjmp_buf buf;
    if (sigsetjmp(buf, 0) != 0) {
        return 0;
    }
    *slot = &buf;
    body(payload);
    return 1;
}

void keel_unwind(void *buf) {
    siglongjmp(*(sigjmp_buf *)buf, 1);
}
