// Shared helpers for the WASI test programs: each check prints one line,
// `ok <name>` or `FAIL <name>: <detail>`, and the program exits non-zero
// if any check failed.
#ifndef WASI_CHECK_H
#define WASI_CHECK_H

#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static int failures = 0;

#define CHECK(name, cond)                                                   \
    do {                                                                    \
        if (cond) {                                                         \
            printf("ok %s\n", name);                                        \
        } else {                                                            \
            printf("FAIL %s: %s (line %d)\n", name, #cond, __LINE__);       \
            failures++;                                                     \
        }                                                                   \
    } while (0)

// Checks that a raw WASI call returned `expected`.
#define CHECK_ERRNO(name, call, expected)                                   \
    do {                                                                    \
        __wasi_errno_t e_ = (call);                                         \
        if (e_ == (expected)) {                                             \
            printf("ok %s\n", name);                                        \
        } else {                                                            \
            printf("FAIL %s: errno %d, expected %d (line %d)\n", name,      \
                   (int)e_, (int)(expected), __LINE__);                     \
            failures++;                                                     \
        }                                                                   \
    } while (0)

// The first preopened directory's descriptor (wasi-libc puts them from 3).
static __wasi_fd_t preopen_fd(void) { return 3; }

#endif
