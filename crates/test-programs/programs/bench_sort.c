// Benchmark kernel: sorting 400,000 pseudo-random 32-bit keys with a
// textbook quicksort (median of three, insertion sort below 16 elements):
// data-dependent branches and swaps through memory. `run` returns a
// checksum of the sorted keys.

#include <stdint.h>

#define N 400000
static uint32_t keys[N];

static void insertion(uint32_t *v, int lo, int hi) {
    for (int i = lo + 1; i <= hi; i++) {
        uint32_t x = v[i];
        int j = i - 1;
        while (j >= lo && v[j] > x) { v[j + 1] = v[j]; j--; }
        v[j + 1] = x;
    }
}

static void swap(uint32_t *v, int i, int j) { uint32_t t = v[i]; v[i] = v[j]; v[j] = t; }

static void quicksort(uint32_t *v, int lo, int hi) {
    while (hi - lo > 16) {
        int mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) swap(v, mid, lo);
        if (v[hi] < v[lo]) swap(v, hi, lo);
        if (v[hi] < v[mid]) swap(v, hi, mid);
        uint32_t pivot = v[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) { swap(v, i, j); i++; j--; }
        }
        // Recurse into the smaller side, loop on the larger one.
        if (j - lo < hi - i) { quicksort(v, lo, j); lo = i; }
        else { quicksort(v, i, hi); hi = j; }
    }
    insertion(v, lo, hi);
}

__attribute__((export_name("run"))) int64_t run(void) {
    uint64_t seed = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        keys[i] = (uint32_t)(seed >> 11);
    }
    quicksort(keys, 0, N - 1);
    int64_t check = 0;
    for (int i = 0; i < N; i++) {
        if (i > 0 && keys[i - 1] > keys[i]) return -1;
        check = check * 31 + keys[i];
    }
    return check;
}
