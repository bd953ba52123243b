// Tries to escape the preopened directory `sandbox` (fd 3) and to change
// the read-only preopen `ro` (fd 4), printing one line per attack:
// `attack <name> errno <n>`. With argument `race`, instead reads
// `race/target.txt` in a loop while the host swaps `race` for a symlink to
// the outside, and prints how often the outside file was read.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

// The raw import, so that paths with NUL bytes can be passed.
__attribute__((import_module("wasi_snapshot_preview1"), import_name("path_open")))
int32_t raw_path_open(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len, int32_t oflags,
                      int64_t base, int64_t inheriting, int32_t fdflags, int32_t out);

#define SANDBOX 3
#define RO 4
#define FOLLOW __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW

static const __wasi_rights_t READ = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_FILESTAT_GET;
static const __wasi_rights_t WRITE = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE;

static void report(const char *name, __wasi_errno_t e) { printf("attack %s errno %d\n", name, (int)e); }

static __wasi_errno_t open_(__wasi_fd_t dir, __wasi_lookupflags_t lf, const char *path,
                            __wasi_oflags_t of, __wasi_rights_t rights) {
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(dir, lf, path, of, rights, rights, 0, &fd);
    if (e == 0) __wasi_fd_close(fd);
    return e;
}

static int race(void) {
    int leaked = 0, opened = 0;
    for (int i = 0; i < 20000; i++) {
        __wasi_fd_t fd;
        if (__wasi_path_open(SANDBOX, FOLLOW, "race/target.txt", 0, READ, READ, 0, &fd) != 0) continue;
        opened++;
        char buf[32] = {0};
        __wasi_iovec_t iv = {(uint8_t *)buf, sizeof buf - 1};
        __wasi_size_t n;
        if (__wasi_fd_read(fd, &iv, 1, &n) == 0 && strstr(buf, "top secret")) leaked++;
        __wasi_fd_close(fd);
    }
    printf("race opened %d leaked %d\n", opened, leaked);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "race") == 0) return race();
    const char *outside_abs = argc > 1 ? argv[1] : "/tmp";
    __wasi_filestat_t st;
    __wasi_fd_t sub;

    report("dotdot-open", open_(SANDBOX, 0, "../outside/secret.txt", 0, READ));
    report("dotdot-nested", open_(SANDBOX, 0, "sub/../../outside/secret.txt", 0, READ));
    report("dotdot-directory", open_(SANDBOX, 0, "..", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR));
    report("absolute-etc-passwd", open_(SANDBOX, 0, "/etc/passwd", 0, READ));
    report("absolute-host-path", open_(SANDBOX, 0, outside_abs, 0, READ));
    report("absolute-symlink-follow", open_(SANDBOX, FOLLOW, "abs_link", 0, READ));
    report("relative-symlink-follow", open_(SANDBOX, FOLLOW, "rel_link", 0, READ));
    report("directory-symlink-traverse", open_(SANDBOX, 0, "dir_link/secret.txt", 0, READ));
    report("symlink-loop", open_(SANDBOX, FOLLOW, "loop_a", 0, READ));
    report("symlink-nofollow", open_(SANDBOX, 0, "rel_link", 0, READ));
    report("symlink-truncate-outside", open_(SANDBOX, FOLLOW, "rel_link", __WASI_OFLAGS_TRUNC, WRITE));
    report("stat-dotdot", __wasi_path_filestat_get(SANDBOX, FOLLOW, "../outside/secret.txt", &st));
    report("stat-through-symlink", __wasi_path_filestat_get(SANDBOX, FOLLOW, "abs_link", &st));
    report("set-times-through-symlink", __wasi_path_filestat_set_times(SANDBOX, FOLLOW, "rel_link", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
    report("hardlink-outside-in", __wasi_path_link(SANDBOX, 0, "../outside/secret.txt", SANDBOX, "stolen"));
    report("hardlink-inside-out", __wasi_path_link(SANDBOX, 0, "file.txt", SANDBOX, "../outside/planted"));
    report("hardlink-through-dir-symlink", __wasi_path_link(SANDBOX, 0, "dir_link/secret.txt", SANDBOX, "stolen2"));
    report("rename-out", __wasi_path_rename(SANDBOX, "file.txt", SANDBOX, "../outside/moved"));
    report("rename-in", __wasi_path_rename(SANDBOX, "../outside/secret.txt", SANDBOX, "got"));
    report("rename-into-readonly", __wasi_path_rename(SANDBOX, "file.txt", RO, "moved"));
    report("unlink-dotdot", __wasi_path_unlink_file(SANDBOX, "../outside/secret.txt"));
    report("unlink-through-dir-symlink", __wasi_path_unlink_file(SANDBOX, "dir_link/secret.txt"));
    report("mkdir-outside", __wasi_path_create_directory(SANDBOX, "../outside/newdir"));
    report("rmdir-outside", __wasi_path_remove_directory(SANDBOX, "../outside/dir"));
    report("symlink-create-absolute", __wasi_path_symlink("/etc/passwd", SANDBOX, "evil"));
    report("symlink-create-relative-escape", __wasi_path_symlink("../outside/secret.txt", SANDBOX, "evil2"));
    report("symlink-created-then-followed", open_(SANDBOX, FOLLOW, "evil2", 0, READ));
    if (__wasi_path_open(SANDBOX, 0, "sub", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_PATH_OPEN, READ, 0, &sub) == 0) {
        report("subdir-dotdot-escape", open_(sub, 0, "../../outside/secret.txt", 0, READ));
        report("subdir-dotdot-to-parent", open_(sub, 0, "../file.txt", 0, READ));
        __wasi_fd_close(sub);
    }
    const char nul_path[] = "file.txt\0../../outside/secret.txt";
    __wasi_fd_t fd_out;
    report("nul-in-path", (__wasi_errno_t)raw_path_open(SANDBOX, 0, (int32_t)(uintptr_t)nul_path, sizeof nul_path - 1, 0,
                                                        (int64_t)READ, (int64_t)READ, 0, (int32_t)(uintptr_t)&fd_out));
    report("readonly-create", open_(RO, 0, "new.txt", __WASI_OFLAGS_CREAT, READ));
    report("readonly-open-for-write", open_(RO, 0, "keep.txt", 0, WRITE));
    report("readonly-truncate", open_(RO, 0, "keep.txt", __WASI_OFLAGS_TRUNC, READ));
    report("readonly-unlink", __wasi_path_unlink_file(RO, "keep.txt"));
    report("readonly-mkdir", __wasi_path_create_directory(RO, "d"));
    report("readonly-symlink", __wasi_path_symlink("keep.txt", RO, "l"));
    report("readonly-set-times", __wasi_path_filestat_set_times(RO, 0, "keep.txt", 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
    report("readonly-rename-out", __wasi_path_rename(RO, "keep.txt", SANDBOX, "taken"));
    report("readonly-read-allowed", open_(RO, 0, "keep.txt", 0, READ));
    return 0;
}
