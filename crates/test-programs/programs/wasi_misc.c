// Arguments, environment, clocks, randomness, scheduling, polling, stdin
// and signals, through the raw WASI API. Expects arguments `one two` and
// environment `A=1 B=two`, and "line one\nline two\n" on stdin.
#include "wasi_check.h"
#include <stdint.h>
#include <stdlib.h>

// wasi-libc no longer declares proc_raise; the import still exists.
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
int32_t raw_proc_raise(int32_t sig);
#define SIGNAL_WINCH 28

int main(void) {
    // Arguments.
    __wasi_size_t argc = 0, argv_size = 0;
    CHECK_ERRNO("args_sizes_get", __wasi_args_sizes_get(&argc, &argv_size), 0);
    CHECK("argc", argc == 3);
    uint8_t *argv_buf = malloc(argv_size);
    uint8_t **argv = malloc(argc * sizeof(uint8_t *));
    CHECK_ERRNO("args_get", __wasi_args_get(argv, argv_buf), 0);
    CHECK("argv[1]", strcmp((char *)argv[1], "one") == 0);
    CHECK("argv[2]", strcmp((char *)argv[2], "two") == 0);

    // Environment.
    __wasi_size_t envc = 0, env_size = 0;
    CHECK_ERRNO("environ_sizes_get", __wasi_environ_sizes_get(&envc, &env_size), 0);
    CHECK("envc", envc == 2 && env_size == 10);
    uint8_t *env_buf = malloc(env_size);
    uint8_t **env = malloc(envc * sizeof(uint8_t *));
    CHECK_ERRNO("environ_get", __wasi_environ_get(env, env_buf), 0);
    CHECK("env values", strcmp((char *)env[0], "A=1") == 0 && strcmp((char *)env[1], "B=two") == 0);
    CHECK("getenv", getenv("B") && strcmp(getenv("B"), "two") == 0);

    // Clocks.
    __wasi_timestamp_t res, t0, t1, rt, cpu;
    for (int c = 0; c < 4; c++) {
        CHECK_ERRNO("clock_res_get", __wasi_clock_res_get(c, &res), 0);
        CHECK("clock resolution positive", res > 0);
    }
    CHECK_ERRNO("clock_res_get bad", __wasi_clock_res_get(9, &res), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("clock_time_get realtime", __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &rt), 0);
    CHECK("realtime after 2020", rt > 1577836800ull * 1000000000ull);
    CHECK_ERRNO("clock_time_get monotonic", __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t0), 0);
    CHECK_ERRNO("clock_time_get process", __wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &cpu), 0);
    CHECK_ERRNO("clock_time_get thread", __wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &cpu), 0);
    CHECK_ERRNO("clock_time_get bad", __wasi_clock_time_get(17, 1, &cpu), __WASI_ERRNO_INVAL);

    // Sleep 20 ms with poll_oneoff on the monotonic clock.
    __wasi_subscription_t sub = {0};
    sub.userdata = 42;
    sub.u.tag = __WASI_EVENTTYPE_CLOCK;
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = 20 * 1000000ull;
    __wasi_event_t ev;
    __wasi_size_t nev = 0;
    CHECK_ERRNO("poll_oneoff clock", __wasi_poll_oneoff(&sub, &ev, 1, &nev), 0);
    CHECK_ERRNO("clock_time_get monotonic 2", __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t1), 0);
    CHECK("slept at least 20ms", t1 - t0 >= 20 * 1000000ull);
    CHECK("clock event", nev == 1 && ev.userdata == 42 && ev.type == __WASI_EVENTTYPE_CLOCK && ev.error == 0);
    CHECK_ERRNO("poll_oneoff nothing", __wasi_poll_oneoff(&sub, &ev, 0, &nev), __WASI_ERRNO_INVAL);

    // Absolute deadline in the past: fires at once.
    sub.u.u.clock.flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME;
    sub.u.u.clock.timeout = 1;
    CHECK_ERRNO("poll_oneoff abstime", __wasi_poll_oneoff(&sub, &ev, 1, &nev), 0);
    CHECK("abstime event", nev == 1);

    // stdin is ready to read; stdout to write; a bad fd is reported.
    __wasi_subscription_t subs[3] = {0};
    subs[0].userdata = 1; subs[0].u.tag = __WASI_EVENTTYPE_FD_READ; subs[0].u.u.fd_read.file_descriptor = 0;
    subs[1].userdata = 2; subs[1].u.tag = __WASI_EVENTTYPE_FD_WRITE; subs[1].u.u.fd_write.file_descriptor = 1;
    subs[2].userdata = 3; subs[2].u.tag = __WASI_EVENTTYPE_FD_READ; subs[2].u.u.fd_read.file_descriptor = 999;
    __wasi_event_t evs[3];
    CHECK_ERRNO("poll_oneoff fds", __wasi_poll_oneoff(subs, evs, 3, &nev), 0);
    int saw_read = 0, saw_write = 0, saw_badf = 0;
    for (__wasi_size_t i = 0; i < nev; i++) {
        if (evs[i].userdata == 1 && evs[i].error == 0) saw_read = 1;
        if (evs[i].userdata == 2 && evs[i].error == 0) saw_write = 1;
        if (evs[i].userdata == 3 && evs[i].error == __WASI_ERRNO_BADF) saw_badf = 1;
    }
    CHECK("fd events", saw_read && saw_write && saw_badf);

    // Reading stdin in two reads.
    char line[64] = {0};
    CHECK("fgets 1", fgets(line, sizeof line, stdin) && strcmp(line, "line one\n") == 0);
    CHECK("fgets 2", fgets(line, sizeof line, stdin) && strcmp(line, "line two\n") == 0);
    CHECK("stdin eof", fgets(line, sizeof line, stdin) == NULL && feof(stdin));

    // Randomness.
    uint8_t r1[64] = {0}, r2[64] = {0};
    CHECK_ERRNO("random_get", __wasi_random_get(r1, sizeof r1), 0);
    CHECK_ERRNO("random_get 2", __wasi_random_get(r2, sizeof r2), 0);
    CHECK("random differs", memcmp(r1, r2, sizeof r1) != 0);
    CHECK_ERRNO("random_get empty", __wasi_random_get(r1, 0), 0);

    CHECK_ERRNO("sched_yield", __wasi_sched_yield(), 0);
    // SIGWINCH is ignored by default: raising it returns.
    CHECK_ERRNO("proc_raise ignored", raw_proc_raise(SIGNAL_WINCH), 0);
    CHECK_ERRNO("proc_raise invalid", raw_proc_raise(99), __WASI_ERRNO_INVAL);

    printf("%d failures\n", failures);
    fflush(stdout);
    // Exit through proc_exit with a status the test checks.
    __wasi_proc_exit(failures ? 1 : 7);
}
