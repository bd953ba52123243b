;;! custom-page-sizes memory64
;; Memories of one-byte pages: every access is checked against the length
;; (which may end inside an accessible host page), even a zero-extended
;; `i32` index whose access ends within the guard; `memory.size` is the
;; length itself. A constant index inside the minimum size needs no check.
(module
  (memory $bytes 5 (pagesize 1))
  (memory $wide i64 5 (pagesize 1))
  (func (export "load") (param i32) (result i32)
    (i32.load8_u $bytes (local.get 0)))
  (func (export "load64") (param i64) (result i32)
    (i32.load8_u $wide offset=1 (local.get 0)))
  (func (export "const") (result i32)
    (i32.load8_u $wide (i64.const 4)))
  (func (export "size") (result i32)
    (memory.size $bytes))
)
