// Loops that clang auto-vectorizes at -O3 -msimd128: element-wise float
// arithmetic, integer reductions, saturating byte arithmetic, clamping.
// Every result is exact, so the same program built without SIMD, and a
// Rust reimplementation, must agree bit for bit.

#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define N 8192

static float fa[N], fb[N], fc[N];
static double da[N], db[N];
static int32_t ia[N], ib[N];
static int16_t sa[N], sb[N];
static uint8_t px[N];
static uint32_t seed;

static uint32_t next(void) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    return seed;
}

static uint32_t mix(uint32_t h, uint32_t w) { return (h ^ w) * 16777619u; }

EXPORT("init") void init(uint32_t s) {
    seed = s;
    for (int i = 0; i < N; i++) {
        fa[i] = (float)(int32_t)(next() % 2000) / 8.0f - 100.0f;
        fb[i] = (float)(int32_t)(next() % 2000) / 16.0f;
        da[i] = (double)(int32_t)(next() % 100000) / 64.0;
        db[i] = (double)(int32_t)(next() % 100000) / 128.0 - 300.0;
        ia[i] = (int32_t)next();
        ib[i] = (int32_t)next();
        sa[i] = (int16_t)next();
        sb[i] = (int16_t)next();
        px[i] = (uint8_t)next();
    }
}

EXPORT("saxpy") uint32_t saxpy(float k) {
    for (int i = 0; i < N; i++) fc[i] = k * fa[i] + fb[i];
    uint32_t h = 2166136261u;
    for (int i = 0; i < N; i++) {
        union { float f; uint32_t u; } v = { fc[i] };
        h = mix(h, v.u);
    }
    return h;
}

EXPORT("axpy_f64") uint32_t axpy_f64(double k) {
    for (int i = 0; i < N; i++) da[i] = da[i] * k + db[i];
    uint32_t h = 2166136261u;
    for (int i = 0; i < N; i++) {
        union { double d; uint64_t u; } v = { da[i] };
        h = mix(mix(h, (uint32_t)v.u), (uint32_t)(v.u >> 32));
    }
    return h;
}

EXPORT("dot_i32") int32_t dot_i32(void) {
    uint32_t s = 0;
    for (int i = 0; i < N; i++) s += (uint32_t)ia[i] * (uint32_t)ib[i];
    return (int32_t)s;
}

EXPORT("dot_i16") int32_t dot_i16(void) {
    int32_t s = 0;
    for (int i = 0; i < N; i++) s += (int32_t)sa[i] * (int32_t)sb[i];
    return s;
}

EXPORT("brighten") uint32_t brighten(int32_t amount) {
    for (int i = 0; i < N; i++) {
        int v = px[i] + amount;
        px[i] = v > 255 ? 255 : (v < 0 ? 0 : (uint8_t)v);
    }
    uint32_t h = 2166136261u;
    for (int i = 0; i < N; i++) h = mix(h, px[i]);
    return h;
}

EXPORT("clamp") uint32_t clamp(int32_t limit) {
    for (int i = 0; i < N; i++) {
        int32_t v = ia[i];
        ia[i] = v > limit ? limit : (v < -limit ? -limit : v);
    }
    uint32_t h = 2166136261u;
    for (int i = 0; i < N; i++) h = mix(h, (uint32_t)ia[i]);
    return h;
}
