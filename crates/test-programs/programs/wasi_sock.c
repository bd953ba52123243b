// Sockets: accepts one connection on the preopened listener (fd 3), reads
// a line, answers it upper-cased, and shuts down.
#include "wasi_check.h"
#include <ctype.h>
#include <stdint.h>

int main(void) {
    __wasi_fd_t listener = 3, conn = 0;
    __wasi_fdstat_t fs;
    CHECK_ERRNO("listener fdstat", __wasi_fd_fdstat_get(listener, &fs), 0);
    CHECK("listener is a socket", fs.fs_filetype == __WASI_FILETYPE_SOCKET_STREAM);
    CHECK_ERRNO("sock_accept bad flags", __wasi_sock_accept(listener, 0x100, &conn), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("sock_accept", __wasi_sock_accept(listener, 0, &conn), 0);
    char buf[64] = {0};
    __wasi_iovec_t iv = {(uint8_t *)buf, 5};
    __wasi_size_t n = 0;
    __wasi_roflags_t ro = 0;
    CHECK_ERRNO("sock_recv peek", __wasi_sock_recv(conn, &iv, 1, __WASI_RIFLAGS_RECV_PEEK, &n, &ro), 0);
    CHECK("peeked", n == 5 && memcmp(buf, "hello", 5) == 0);
    iv.buf_len = 12;
    CHECK_ERRNO("sock_recv waitall", __wasi_sock_recv(conn, &iv, 1, __WASI_RIFLAGS_RECV_WAITALL, &n, &ro), 0);
    CHECK("received", n == 12 && memcmp(buf, "hello socket", 12) == 0);
    for (int i = 0; i < 12; i++) buf[i] = toupper((unsigned char)buf[i]);
    __wasi_ciovec_t cv = {(const uint8_t *)buf, 12};
    CHECK_ERRNO("sock_send", __wasi_sock_send(conn, &cv, 1, 0, &n), 0);
    CHECK("sent", n == 12);
    CHECK_ERRNO("sock_shutdown bad", __wasi_sock_shutdown(conn, 0), __WASI_ERRNO_INVAL);
    CHECK_ERRNO("sock_shutdown", __wasi_sock_shutdown(conn, __WASI_SDFLAGS_WR), 0);
    CHECK_ERRNO("sock_recv on a file", __wasi_sock_recv(1, &iv, 1, 0, &n, &ro), __WASI_ERRNO_NOTSOCK);
    CHECK_ERRNO("sock_accept on a stream", __wasi_sock_accept(conn, 0, &n), __WASI_ERRNO_NOTSOCK);
    printf("%d failures\n", failures);
    return failures != 0;
}
