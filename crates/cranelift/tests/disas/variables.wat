;; Locals, mutable and immutable globals, imported globals.
(module
  (import "host" "g" (global $imported (mut i64)))
  (global $counter (mut i32) (i32.const 0))
  (global $k i32 (i32.const 7))
  (func (export "bump") (param i32) (result i32) (local $t i32)
    (local.set $t (i32.add (global.get $counter) (local.get 0)))
    (global.set $counter (local.get $t))
    (global.set $imported (i64.extend_i32_u (global.get $k)))
    (local.tee $t (i32.add (local.get $t) (global.get $k)))))
