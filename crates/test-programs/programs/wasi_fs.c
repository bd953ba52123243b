// Every file and directory function of WASI preview 1, through the raw
// API, against a scratch preopened directory (fd 3).
#include "wasi_check.h"
#include <stdint.h>
#include <stdlib.h>

static __wasi_fd_t open_at(__wasi_fd_t dir, const char *path, __wasi_oflags_t oflags,
                           __wasi_rights_t rights, __wasi_fdflags_t fdflags, __wasi_errno_t *err) {
    __wasi_fd_t fd = (__wasi_fd_t)-1;
    *err = __wasi_path_open(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, oflags, rights, rights, fdflags, &fd);
    return fd;
}

int main(void) {
    __wasi_fd_t dir = preopen_fd();
    __wasi_errno_t e;
    const __wasi_rights_t rw = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK |
        __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE |
        __WASI_RIGHTS_FD_FILESTAT_SET_TIMES | __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_ADVISE |
        __WASI_RIGHTS_FD_SYNC | __WASI_RIGHTS_FD_DATASYNC | __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS;

    // Preopen description.
    __wasi_prestat_t pre;
    CHECK_ERRNO("fd_prestat_get", __wasi_fd_prestat_get(dir, &pre), 0);
    char name[64] = {0};
    CHECK_ERRNO("fd_prestat_dir_name", __wasi_fd_prestat_dir_name(dir, (uint8_t *)name, pre.u.dir.pr_name_len), 0);
    CHECK("prestat name", strcmp(name, "sandbox") == 0);
    CHECK_ERRNO("fd_prestat_dir_name too short", __wasi_fd_prestat_dir_name(dir, (uint8_t *)name, 2), __WASI_ERRNO_NAMETOOLONG);

    // Create, write, read.
    __wasi_fd_t f = open_at(dir, "file.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, rw, 0, &e);
    CHECK_ERRNO("path_open create", e, 0);
    const char *msg = "hello, wasi";
    __wasi_ciovec_t civ[2] = {{(const uint8_t *)msg, 7}, {(const uint8_t *)msg + 7, 4}};
    __wasi_size_t n = 0;
    CHECK_ERRNO("fd_write", __wasi_fd_write(f, civ, 2, &n), 0);
    CHECK("fd_write count", n == 11);
    __wasi_filesize_t pos = 99;
    CHECK_ERRNO("fd_tell", __wasi_fd_tell(f, &pos), 0);
    CHECK("fd_tell value", pos == 11);
    CHECK_ERRNO("fd_seek set", __wasi_fd_seek(f, 7, __WASI_WHENCE_SET, &pos), 0);
    CHECK("fd_seek value", pos == 7);
    char buf[32] = {0};
    __wasi_iovec_t iv = {(uint8_t *)buf, sizeof buf};
    CHECK_ERRNO("fd_read", __wasi_fd_read(f, &iv, 1, &n), 0);
    CHECK("fd_read data", n == 4 && memcmp(buf, "wasi", 4) == 0);
    CHECK_ERRNO("fd_seek end", __wasi_fd_seek(f, -5, __WASI_WHENCE_END, &pos), 0);
    CHECK("fd_seek end value", pos == 6);
    CHECK_ERRNO("fd_seek bad whence", __wasi_fd_seek(f, 0, 7, &pos), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("fd_seek negative", __wasi_fd_seek(f, -100, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_INVAL);

    // Positional I/O leaves the position alone.
    __wasi_ciovec_t pw = {(const uint8_t *)"HELLO", 5};
    CHECK_ERRNO("fd_pwrite", __wasi_fd_pwrite(f, &pw, 1, 0, &n), 0);
    memset(buf, 0, sizeof buf);
    __wasi_iovec_t pr = {(uint8_t *)buf, 5};
    CHECK_ERRNO("fd_pread", __wasi_fd_pread(f, &pr, 1, 0, &n), 0);
    CHECK("fd_pread data", n == 5 && memcmp(buf, "HELLO", 5) == 0);
    CHECK_ERRNO("fd_tell after pread", __wasi_fd_tell(f, &pos), 0);
    CHECK("position unchanged", pos == 6);

    // Metadata.
    __wasi_filestat_t st;
    CHECK_ERRNO("fd_filestat_get", __wasi_fd_filestat_get(f, &st), 0);
    CHECK("filestat size", st.size == 11 && st.filetype == __WASI_FILETYPE_REGULAR_FILE);
    CHECK_ERRNO("fd_filestat_set_size", __wasi_fd_filestat_set_size(f, 5), 0);
    CHECK_ERRNO("fd_filestat_get 2", __wasi_fd_filestat_get(f, &st), 0);
    CHECK("truncated", st.size == 5);
    CHECK_ERRNO("fd_allocate", __wasi_fd_allocate(f, 0, 4096), 0);
    CHECK_ERRNO("fd_filestat_get 3", __wasi_fd_filestat_get(f, &st), 0);
    CHECK("allocated", st.size == 4096);
    CHECK_ERRNO("fd_filestat_set_times", __wasi_fd_filestat_set_times(f, 1000000000ull * 1000, 1000000000ull * 2000,
        __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM), 0);
    CHECK_ERRNO("fd_filestat_get 4", __wasi_fd_filestat_get(f, &st), 0);
    CHECK("times set", st.mtim == 1000000000ull * 2000 && st.atim == 1000000000ull * 1000);
    CHECK_ERRNO("set_times both atim flags", __wasi_fd_filestat_set_times(f, 0, 0,
        __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("fd_advise", __wasi_fd_advise(f, 0, 10, __WASI_ADVICE_SEQUENTIAL), 0);
    CHECK_ERRNO("fd_advise bad", __wasi_fd_advise(f, 0, 10, 42), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("fd_sync", __wasi_fd_sync(f), 0);
    CHECK_ERRNO("fd_datasync", __wasi_fd_datasync(f), 0);

    // Descriptor flags and rights.
    __wasi_fdstat_t fs;
    CHECK_ERRNO("fd_fdstat_get", __wasi_fd_fdstat_get(f, &fs), 0);
    CHECK("fdstat", fs.fs_filetype == __WASI_FILETYPE_REGULAR_FILE && (fs.fs_rights_base & __WASI_RIGHTS_FD_WRITE));
    CHECK_ERRNO("fd_fdstat_set_flags append", __wasi_fd_fdstat_set_flags(f, __WASI_FDFLAGS_APPEND), 0);
    CHECK_ERRNO("fd_seek start", __wasi_fd_seek(f, 0, __WASI_WHENCE_SET, &pos), 0);
    __wasi_ciovec_t tail = {(const uint8_t *)"!", 1};
    CHECK_ERRNO("append write", __wasi_fd_write(f, &tail, 1, &n), 0);
    CHECK_ERRNO("fd_filestat_get 5", __wasi_fd_filestat_get(f, &st), 0);
    CHECK("appended at end", st.size == 4097);
    CHECK_ERRNO("fd_fdstat_set_rights drop write", __wasi_fd_fdstat_set_rights(f, __WASI_RIGHTS_FD_READ, 0), 0);
    CHECK_ERRNO("write without right", __wasi_fd_write(f, &tail, 1, &n), __WASI_ERRNO_NOTCAPABLE);
    CHECK_ERRNO("cannot regain rights", __wasi_fd_fdstat_set_rights(f, rw, 0), __WASI_ERRNO_NOTCAPABLE);

    // Renumber and close.
    __wasi_fd_t g = open_at(dir, "file.txt", 0, __WASI_RIGHTS_FD_READ, 0, &e);
    CHECK_ERRNO("path_open existing", e, 0);
    CHECK_ERRNO("fd_renumber", __wasi_fd_renumber(g, f), 0);
    CHECK_ERRNO("renumbered source gone", __wasi_fd_close(g), __WASI_ERRNO_BADF);
    CHECK_ERRNO("fd_close", __wasi_fd_close(f), 0);
    CHECK_ERRNO("fd_close twice", __wasi_fd_close(f), __WASI_ERRNO_BADF);
    CHECK_ERRNO("path_open excl existing", (open_at(dir, "file.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL, rw, 0, &e), e), __WASI_ERRNO_EXIST);
    CHECK_ERRNO("path_open missing", (open_at(dir, "missing.txt", 0, rw, 0, &e), e), __WASI_ERRNO_NOENT);
    CHECK_ERRNO("path_open dir flag on file", (open_at(dir, "file.txt", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0, &e), e), __WASI_ERRNO_NOTDIR);

    // Directories.
    CHECK_ERRNO("path_create_directory", __wasi_path_create_directory(dir, "sub"), 0);
    CHECK_ERRNO("path_create_directory exists", __wasi_path_create_directory(dir, "sub"), __WASI_ERRNO_EXIST);
    __wasi_fd_t s = open_at(dir, "sub/inner.txt", __WASI_OFLAGS_CREAT, rw, 0, &e);
    CHECK_ERRNO("create in subdir", e, 0);
    __wasi_fd_close(s);
    CHECK_ERRNO("path_filestat_get", __wasi_path_filestat_get(dir, 0, "sub", &st), 0);
    CHECK("subdir is a directory", st.filetype == __WASI_FILETYPE_DIRECTORY);
    CHECK_ERRNO("path_filestat_set_times", __wasi_path_filestat_set_times(dir, 0, "sub/inner.txt", 0, 1000000000ull * 3000,
        __WASI_FSTFLAGS_MTIM), 0);
    CHECK_ERRNO("path_filestat_get 2", __wasi_path_filestat_get(dir, 0, "sub/inner.txt", &st), 0);
    CHECK("path times set", st.mtim == 1000000000ull * 3000);
    CHECK_ERRNO("path_remove_directory not empty", __wasi_path_remove_directory(dir, "sub"), __WASI_ERRNO_NOTEMPTY);

    // Reading a directory: `.`, `..`, file.txt, sub.
    __wasi_fd_t d = open_at(dir, "sub", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_OPEN, 0, &e);
    CHECK_ERRNO("open directory", e, 0);
    uint8_t dbuf[256];
    __wasi_size_t used = 0;
    CHECK_ERRNO("fd_readdir", __wasi_fd_readdir(d, dbuf, sizeof dbuf, 0, &used), 0);
    int found_inner = 0, entries = 0;
    for (size_t off = 0; off + sizeof(__wasi_dirent_t) <= used;) {
        __wasi_dirent_t de;
        memcpy(&de, dbuf + off, sizeof de);
        const char *nm = (const char *)dbuf + off + sizeof de;
        if (de.d_namlen == 9 && memcmp(nm, "inner.txt", 9) == 0) found_inner = 1;
        entries++;
        off += sizeof de + de.d_namlen;
    }
    CHECK("readdir entries", entries == 3 && found_inner);
    CHECK_ERRNO("fd_readdir from cookie", __wasi_fd_readdir(d, dbuf, sizeof dbuf, 3, &used), 0);
    CHECK("readdir past end", used == 0);
    CHECK_ERRNO("fd_readdir small buffer", __wasi_fd_readdir(d, dbuf, 10, 0, &used), 0);
    CHECK("readdir truncated", used == 10);
    CHECK_ERRNO("fd_read on directory", __wasi_fd_read(d, &iv, 1, &n), __WASI_ERRNO_NOTCAPABLE);
    __wasi_fd_close(d);

    // Links and renames.
    CHECK_ERRNO("path_link", __wasi_path_link(dir, 0, "file.txt", dir, "hard.txt"), 0);
    CHECK_ERRNO("path_filestat_get link", __wasi_path_filestat_get(dir, 0, "hard.txt", &st), 0);
    CHECK("hard link count", st.nlink == 2);
    CHECK_ERRNO("path_symlink", __wasi_path_symlink("file.txt", dir, "soft.txt"), 0);
    char target[64] = {0};
    CHECK_ERRNO("path_readlink", __wasi_path_readlink(dir, "soft.txt", (uint8_t *)target, sizeof target, &used), 0);
    CHECK("readlink target", used == 8 && memcmp(target, "file.txt", 8) == 0);
    CHECK_ERRNO("path_readlink truncated", __wasi_path_readlink(dir, "soft.txt", (uint8_t *)target, 4, &used), 0);
    CHECK("readlink truncated length", used == 4);
    CHECK_ERRNO("readlink not a link", __wasi_path_readlink(dir, "file.txt", (uint8_t *)target, sizeof target, &used), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("path_filestat_get nofollow", __wasi_path_filestat_get(dir, 0, "soft.txt", &st), 0);
    CHECK("symlink type", st.filetype == __WASI_FILETYPE_SYMBOLIC_LINK);
    CHECK_ERRNO("path_filestat_get follow", __wasi_path_filestat_get(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "soft.txt", &st), 0);
    CHECK("followed type", st.filetype == __WASI_FILETYPE_REGULAR_FILE);
    CHECK_ERRNO("path_rename", __wasi_path_rename(dir, "hard.txt", dir, "sub/moved.txt"), 0);
    CHECK_ERRNO("renamed away", __wasi_path_filestat_get(dir, 0, "hard.txt", &st), __WASI_ERRNO_NOENT);
    CHECK_ERRNO("path_unlink_file", __wasi_path_unlink_file(dir, "sub/moved.txt"), 0);
    CHECK_ERRNO("path_unlink_file symlink", __wasi_path_unlink_file(dir, "soft.txt"), 0);
    CHECK_ERRNO("unlink a directory", __wasi_path_unlink_file(dir, "sub"), __WASI_ERRNO_ISDIR);
    CHECK_ERRNO("unlink inner", __wasi_path_unlink_file(dir, "sub/inner.txt"), 0);
    CHECK_ERRNO("path_remove_directory", __wasi_path_remove_directory(dir, "sub"), 0);
    CHECK_ERRNO("remove a file as directory", __wasi_path_remove_directory(dir, "file.txt"), __WASI_ERRNO_NOTDIR);
    CHECK_ERRNO("empty path", __wasi_path_create_directory(dir, ""), __WASI_ERRNO_NOENT);

    // Bad descriptors.
    CHECK_ERRNO("bad fd read", __wasi_fd_read(1234, &iv, 1, &n), __WASI_ERRNO_BADF);
    CHECK_ERRNO("bad fd path_open", (open_at(1234, "x", 0, rw, 0, &e), e), __WASI_ERRNO_BADF);
    CHECK_ERRNO("path_open on a file fd", (open_at(0, "x", 0, rw, 0, &e), e), __WASI_ERRNO_NOTCAPABLE);
    CHECK_ERRNO("fd_seek on stdout", __wasi_fd_seek(1, 0, __WASI_WHENCE_CUR, &pos), __WASI_ERRNO_SPIPE);
    CHECK_ERRNO("fd_prestat_get on stdout", __wasi_fd_prestat_get(1, &pre), __WASI_ERRNO_BADF);

    printf("%d failures\n", failures);
    return failures != 0;
}
