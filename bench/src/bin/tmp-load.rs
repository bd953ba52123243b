fn main() {
    let engine = keel::Engine::default();
    let p = std::env::temp_dir().join("tmp-load.cwasm");
    if !p.exists() {
        let wasm = keel_test_programs::sqlite();
        std::fs::write(&p, engine.precompile_module(&wasm).unwrap()).unwrap();
    }
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(500);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let m = unsafe { keel::Module::deserialize_file(&engine, &p) }.unwrap();
        std::hint::black_box(m);
    }
    eprintln!("{:?} per load", t.elapsed() / n as u32);
}
