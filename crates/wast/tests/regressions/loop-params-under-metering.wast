;; A loop with parameters whose header also holds a fuel or epoch check:
;; the check reads a variable in the unsealed header, which adds a block
;; parameter of its own, and the loop's parameters were once taken from the
;; header's parameters after it (found by the spec script fac.wast run with
;; fuel on: `fac-ssa` looped forever).
(module
  (func $pick0 (param i64) (result i64 i64) (local.get 0) (local.get 0))
  (func $pick1 (param i64 i64) (result i64 i64 i64) (local.get 0) (local.get 1) (local.get 0))
  (func (export "fac-ssa") (param i64) (result i64)
    (i64.const 1) (local.get 0)
    (loop $l (param i64 i64) (result i64)
      (call $pick1) (call $pick1) (i64.mul)
      (call $pick1) (i64.const 1) (i64.sub)
      (call $pick0) (i64.const 0) (i64.gt_u)
      (br_if $l)
      (drop) (return)))
  (func (export "count") (param i32) (result i32) (local $acc i32)
    (i32.const 0)
    (loop $l (param i32) (result i32)
      (local.set $acc (i32.add (i32.const 1)))
      (local.get $acc)
      (br_if $l (i32.lt_u (local.get $acc) (local.get 0))))))
(assert_return (invoke "fac-ssa" (i64.const 25)) (i64.const 7034535277573963776))
(assert_return (invoke "fac-ssa" (i64.const 1)) (i64.const 1))
(assert_return (invoke "count" (i32.const 1000)) (i32.const 1000))
(assert_return (invoke "count" (i32.const 0)) (i32.const 1))
