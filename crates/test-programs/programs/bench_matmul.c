// Benchmark kernel: dense f64 matrix multiplication, the textbook
// triple loop (row of A times column of B), as numeric C code is commonly
// written. `run` returns a checksum so both engines can be checked against
// each other (and against the native build).

#include <stdint.h>

#define N 300
static double a[N][N], b[N][N], c[N][N];

__attribute__((export_name("run"))) int64_t run(void) {
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            a[i][j] = (double)((i * 7 + j * 3) % 17) / 8.0 - 1.0;
            b[i][j] = (double)((i * 5 + j * 11) % 13) / 4.0 - 1.5;
        }
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            double sum = 0.0;
            for (int k = 0; k < N; k++) sum += a[i][k] * b[k][j];
            c[i][j] = sum;
        }
    }
    double check = 0.0;
    for (int i = 0; i < N; i++) check += c[i][(i * 31) % N];
    return (int64_t)(check * 1000.0);
}
