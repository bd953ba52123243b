/* The smallest real WASI command: what `keel run hello.wasm` and the
 * `wasi/hello-end-to-end` benchmark start. */
#include <stdio.h>

int main(void) {
    printf("Hello, world!\n");
    return 0;
}
