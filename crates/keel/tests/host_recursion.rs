//! Recursion through the host (wasm → host → wasm → ...) is bounded by the
//! wasm stack limit but cheap per level: 1,000 levels fit in the default
//! 512 KiB, and a trap deep inside has a backtrace through every level's
//! wasm frames, across the host frames between them.

use keel::*;

fn recursing_instance() -> (Store<()>, TypedFunc<i32, i32>) {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "down" (func $down (param i32) (result i32)))
             (func $recurse (export "recurse") (param i32) (result i32)
               (if (result i32) (i32.eqz (local.get 0))
                 (then (i32.div_u (i32.const 1) (local.get 0)))
                 (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1))))))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "down",
            |mut caller: Caller<'_, ()>, n: i32| -> Result<i32> {
                let Some(Extern::Func(f)) = caller.get_export("recurse") else {
                    anyhow::bail!("no recurse export");
                };
                f.typed::<i32, i32>(&caller)?.call(&mut caller, n)
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "recurse")
        .unwrap();
    (store, f)
}

/// Runs `f` on a thread with a big native stack, so that the wasm limit,
/// not the test thread's stack, is what is measured.
fn on_big_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_thousand_levels_of_host_recursion_fit_in_the_default_stack() {
    on_big_stack(|| {
        let (mut store, f) = recursing_instance();
        // The deepest level divides by zero: a trap from the bottom.
        let err = f.call(&mut store, 1000).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Trap>(),
            Some(&Trap::IntegerDivisionByZero),
            "{err:?}"
        );
        // How deep can it go before the wasm stack runs out?
        let mut deepest = 0;
        for depth in [1000, 2000, 4000, 8000, 16000] {
            match f.call(&mut store, depth) {
                Err(e) if e.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) => break,
                _ => deepest = depth,
            }
        }
        println!("host recursion: at least {deepest} levels fit");
        assert!(deepest >= 1000);
    });
}

#[test]
fn a_backtrace_spans_the_wasm_frames_of_every_level() {
    on_big_stack(|| {
        let (mut store, f) = recursing_instance();
        let err = f.call(&mut store, 5).unwrap_err();
        let bt = err.downcast_ref::<WasmBacktrace>().expect("a backtrace");
        // Six activations of `recurse` (5, 4, ..., 0), one wasm frame each.
        assert_eq!(bt.frames().len(), 6, "{bt}");
    });
}
