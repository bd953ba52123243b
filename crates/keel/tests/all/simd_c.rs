//! A C program whose loops clang auto-vectorizes (`-O3 -msimd128`, built
//! with Zig) runs correctly: it agrees bit for bit with the same program
//! built without SIMD and with a Rust reimplementation.

use keel::*;
use keel_test_programs::{Target, compile};

const N: usize = 8192;

/// The program's computations, in Rust.
struct Reference {
    fa: Vec<f32>,
    fb: Vec<f32>,
    da: Vec<f64>,
    db: Vec<f64>,
    ia: Vec<i32>,
    ib: Vec<i32>,
    sa: Vec<i16>,
    sb: Vec<i16>,
    px: Vec<u8>,
}

fn mix(h: u32, w: u32) -> u32 {
    (h ^ w).wrapping_mul(16777619)
}

impl Reference {
    fn new(mut seed: u32) -> Reference {
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut r = Reference {
            fa: vec![0.0; N],
            fb: vec![0.0; N],
            da: vec![0.0; N],
            db: vec![0.0; N],
            ia: vec![0; N],
            ib: vec![0; N],
            sa: vec![0; N],
            sb: vec![0; N],
            px: vec![0; N],
        };
        for i in 0..N {
            r.fa[i] = ((next() % 2000) as i32) as f32 / 8.0 - 100.0;
            r.fb[i] = ((next() % 2000) as i32) as f32 / 16.0;
            r.da[i] = ((next() % 100000) as i32) as f64 / 64.0;
            r.db[i] = ((next() % 100000) as i32) as f64 / 128.0 - 300.0;
            r.ia[i] = next() as i32;
            r.ib[i] = next() as i32;
            r.sa[i] = next() as i16;
            r.sb[i] = next() as i16;
            r.px[i] = next() as u8;
        }
        r
    }
}

fn vector_instructions(wasm: &[u8]) -> usize {
    let mut count = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::CodeSectionEntry(body)) = payload {
            let mut ops = body.get_operators_reader().unwrap();
            while !ops.eof() {
                if is_simd(&ops.read().unwrap()) {
                    count += 1;
                }
            }
        }
    }
    count
}

fn is_simd(op: &wasmparser::Operator<'_>) -> bool {
    let name = format!("{op:?}");
    ["V128", "I8x16", "I16x8", "I32x4", "I64x2", "F32x4", "F64x2"]
        .iter()
        .any(|p| name.starts_with(p))
}

struct Program {
    store: Store<()>,
    instance: Instance,
}

impl Program {
    fn new(engine: &Engine, wasm: &[u8]) -> Program {
        let module = Module::new(engine, wasm).unwrap();
        let mut store = Store::new(engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        Program { store, instance }
    }

    fn call<P: WasmParams, R: WasmResults>(&mut self, name: &str, p: P) -> R {
        let f = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, p).unwrap()
    }
}

#[test]
fn auto_vectorized_c_agrees_with_scalar_build_and_rust() {
    let simd = compile("simd_kernels", Target::Freestanding, &["-O3", "-msimd128"]);
    let scalar = compile(
        "simd_kernels",
        Target::Freestanding,
        &["-O3", "-mno-simd128"],
    );
    let n = vector_instructions(&simd);
    assert!(n > 50, "the SIMD build has only {n} vector instructions");
    assert_eq!(vector_instructions(&scalar), 0);

    let engine = Engine::default();
    let mut v = Program::new(&engine, &simd);
    let mut s = Program::new(&engine, &scalar);
    let seed = 0x1234_5678u32;
    v.call::<u32, ()>("init", seed);
    s.call::<u32, ()>("init", seed);
    let mut r = Reference::new(seed);

    // saxpy
    let fc: Vec<f32> = (0..N).map(|i| 1.75f32 * r.fa[i] + r.fb[i]).collect();
    let expected = fc.iter().fold(2166136261u32, |h, f| mix(h, f.to_bits()));
    assert_eq!(v.call::<f32, u32>("saxpy", 1.75), expected);
    assert_eq!(s.call::<f32, u32>("saxpy", 1.75), expected);

    // axpy_f64
    for i in 0..N {
        r.da[i] = r.da[i] * -0.5 + r.db[i];
    }
    let expected = r.da.iter().fold(2166136261u32, |h, d| {
        let u = d.to_bits();
        mix(mix(h, u as u32), (u >> 32) as u32)
    });
    assert_eq!(v.call::<f64, u32>("axpy_f64", -0.5), expected);
    assert_eq!(s.call::<f64, u32>("axpy_f64", -0.5), expected);

    // dot products
    let dot32 = (0..N).fold(0u32, |acc, i| {
        acc.wrapping_add((r.ia[i] as u32).wrapping_mul(r.ib[i] as u32))
    });
    assert_eq!(v.call::<(), i32>("dot_i32", ()), dot32 as i32);
    assert_eq!(s.call::<(), i32>("dot_i32", ()), dot32 as i32);
    let dot16 = (0..N).fold(0i32, |acc, i| {
        acc.wrapping_add(i32::from(r.sa[i]) * i32::from(r.sb[i]))
    });
    assert_eq!(v.call::<(), i32>("dot_i16", ()), dot16);
    assert_eq!(s.call::<(), i32>("dot_i16", ()), dot16);

    // saturating brighten, twice (the second one saturates a lot)
    for amount in [37, 200] {
        for p in r.px.iter_mut() {
            *p = (i32::from(*p) + amount).clamp(0, 255) as u8;
        }
        let expected =
            r.px.iter()
                .fold(2166136261u32, |h, p| mix(h, u32::from(*p)));
        assert_eq!(v.call::<i32, u32>("brighten", amount), expected);
        assert_eq!(s.call::<i32, u32>("brighten", amount), expected);
    }

    // clamp
    for x in r.ia.iter_mut() {
        *x = (*x).clamp(-1_000_000, 1_000_000);
    }
    let expected = r.ia.iter().fold(2166136261u32, |h, x| mix(h, *x as u32));
    assert_eq!(v.call::<i32, u32>("clamp", 1_000_000), expected);
    assert_eq!(s.call::<i32, u32>("clamp", 1_000_000), expected);
}
