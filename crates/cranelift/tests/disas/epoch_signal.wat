;;! epoch-signal
;; Epochs by signal: no check in loops or at the entry of `$leaf`, which only
;; wasm calls; a one-byte load of the interrupt page (a check that faults once
;; the deadline passes) at the entry of the exported function and after each
;; operation that may run code outside wasm: the call to the import and
;; `memory.grow` (which also keeps its interrupt-word check before it).
(module
  (import "host" "f" (func $host (param i32) (result i32)))
  (memory 1)
  (func $leaf (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func (export "loop") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (call $leaf (local.get 1)))
      (local.set 1 (call $host (local.get 1)))
      (drop (memory.grow (local.get 0)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1)))
