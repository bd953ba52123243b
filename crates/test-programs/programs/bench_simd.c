// Benchmark kernel: image and signal processing loops that clang
// vectorizes at -O3 -msimd128. `run` returns a checksum so both engines
// can be checked against each other.

#include <stdint.h>

#define N 65536
static float a[N], b[N], c[N];
static uint8_t px[N], out[N];
static int16_t s1[N], s2[N];

__attribute__((export_name("run"))) int64_t run(void) {
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        a[i] = (float)(seed >> 16) / 65536.0f;
        b[i] = (float)(seed & 0xffff) / 65536.0f;
        px[i] = (uint8_t)(seed >> 24);
        s1[i] = (int16_t)seed;
        s2[i] = (int16_t)(seed >> 16);
    }
    int64_t check = 0;
    for (int round = 0; round < 200; round++) {
        float k = 0.5f + (float)round / 1000.0f;
        for (int i = 0; i < N; i++) c[i] = k * a[i] + b[i] * b[i];
        for (int i = 0; i < N; i++) {
            int v = (px[i] * 3 + round) >> 1;
            out[i] = v > 255 ? 255 : (uint8_t)v;
        }
        int32_t dot = 0;
        for (int i = 0; i < N; i++) dot += s1[i] * s2[i];
        check += dot + out[round] + (int64_t)(c[round * 7] * 1000.0f);
    }
    return check;
}
