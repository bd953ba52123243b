;;! fuel-register
;; Fuel in the pinned register: read from it at entry and after calls,
;; written to it before calls and returns. A small loop is charged four
;; iterations at a time (the copies charge nothing; a branch out refunds
;; what the batch did not run), with the per-iteration loop taken when the
;; fuel left does not cover a batch. An `if` carries its condition's cost
;; into its arms.
(module
  (memory 1)
  (func $clear (export "clear") (param i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
        (i32.store8 (local.get $i) (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))))
  (func (export "max") (param i32 i32) (result i32)
    (call $clear (i32.const 16))
    (if (result i32) (i32.gt_s (local.get 0) (local.get 1))
      (then (local.get 0))
      (else (local.get 1)))))
