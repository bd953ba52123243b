;;! fuel fuel-register fuel-yields
;; Fuel checks that can resume (`Config::async_support`): a charge that
;; carries branches to a cold block that gives the store the count and the
;; charge, calls `out_of_fuel` through the slow-path trampoline, traps on
;; its refusal, and rejoins with the refilled count.
(module
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop
      (br_if 0 (i32.lt_u
        (local.tee $i (i32.add (local.get $i) (i32.const 1)))
        (local.get $n))))
    (local.get $i)))
