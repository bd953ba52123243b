;;! fuel fuel-register epoch epoch-signal
;; Exceptions with fuel in the pinned register and epochs by signal: the
;; count goes to the store before `throw_ref` (the unwinder hands it to the
;; landing pad in the register), and a landing pad reads the register and
;; checks the epoch page, as after a call to the host.
(module
  (tag $e)
  (func $f (throw $e))
  (func (export "catch") (result i32)
    (block $h
      (try_table (catch_all $h) (call $f))
      (return (i32.const 0)))
    (i32.const 1)))
