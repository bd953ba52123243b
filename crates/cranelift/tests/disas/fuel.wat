;;! fuel
;; Fuel: entry check, costs flushed at block ends, saved around calls and
;; returns, checked at loop headers and before bulk operations.
(module
  (memory 1)
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "loop") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (call $leaf (local.get 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1))
  (func (export "fill") (param i32)
    (memory.fill (i32.const 0) (i32.const 1) (i32.const 64))
    (memory.fill (i32.const 0) (i32.const 1) (local.get 0))))
