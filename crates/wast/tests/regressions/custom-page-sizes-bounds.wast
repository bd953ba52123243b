;; Memories of one-byte pages (custom-page-sizes): Keel's own cases beside
;; the proposal's scripts. Their length can end inside a host page whose
;; tail is accessible, so no fault can be the bounds check: an access at
;; the length must trap though the page is mapped, in 32-bit and 64-bit
;; memories, for an access that starts in bounds and runs past the end,
;; and after growth by a few bytes.

(module
  (memory 5 (pagesize 1))
  (data (i32.const 1) "\01\02\03\04")
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "load32") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "size") (result i32) (memory.size))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
)
(assert_return (invoke "size") (i32.const 5))
(assert_return (invoke "load32" (i32.const 1)) (i32.const 0x04030201))
(assert_return (invoke "load8" (i32.const 4)) (i32.const 4))
(assert_trap (invoke "load8" (i32.const 5)) "out of bounds memory access")
(assert_trap (invoke "load32" (i32.const 2)) "out of bounds memory access")
(assert_trap (invoke "store8" (i32.const 5) (i32.const 9)) "out of bounds memory access")
(assert_trap (invoke "fill" (i32.const 4) (i32.const 9) (i32.const 2)) "out of bounds memory access")
;; Three more bytes: now readable, and zero (the store above never landed).
(assert_return (invoke "grow" (i32.const 3)) (i32.const 5))
(assert_return (invoke "size") (i32.const 8))
(assert_return (invoke "load8" (i32.const 5)) (i32.const 0))
(assert_return (invoke "load32" (i32.const 4)) (i32.const 4))
(assert_trap (invoke "load8" (i32.const 8)) "out of bounds memory access")
(invoke "fill" (i32.const 4) (i32.const 9) (i32.const 4))
(assert_return (invoke "load32" (i32.const 4)) (i32.const 0x09090909))
;; Across a host page boundary.
(assert_return (invoke "grow" (i32.const 4100)) (i32.const 8))
(assert_return (invoke "load8" (i32.const 4107)) (i32.const 0))
(assert_trap (invoke "load8" (i32.const 4108)) "out of bounds memory access")
(assert_trap (invoke "load32" (i32.const 4105)) "out of bounds memory access")

;; A 64-bit memory of one-byte pages: no comparison of the index alone.
(module
  (memory i64 3 (pagesize 1))
  (func (export "load8") (param i64) (result i32) (i32.load8_u (local.get 0)))
  (func (export "load8-off") (param i64) (result i32) (i32.load8_u offset=2 (local.get 0)))
  (func (export "const") (result i32) (i32.load8_u (i64.const 2)))
  (func (export "const-out") (result i32) (i32.load8_u (i64.const 3)))
)
(assert_return (invoke "load8" (i64.const 2)) (i32.const 0))
(assert_trap (invoke "load8" (i64.const 3)) "out of bounds memory access")
(assert_return (invoke "load8-off" (i64.const 0)) (i32.const 0))
(assert_trap (invoke "load8-off" (i64.const 1)) "out of bounds memory access")
(assert_return (invoke "const") (i32.const 0))
(assert_trap (invoke "const-out") "out of bounds memory access")

;; Page sizes must match across imports.
(module $exporter (memory (export "bytes") 1 (pagesize 1)) (memory (export "pages") 1))
(register "exporter" $exporter)
(module (import "exporter" "bytes" (memory 1 (pagesize 1))))
(assert_unlinkable
  (module (import "exporter" "bytes" (memory 1)))
  "incompatible import type")
(assert_unlinkable
  (module (import "exporter" "pages" (memory 1 (pagesize 1))))
  "incompatible import type")
