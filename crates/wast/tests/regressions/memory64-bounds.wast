;; 64-bit memories and tables (memory64): Keel's own cases beside the
;; proposal's scripts, aimed at how Keel checks bounds. An index at or past
;; 2^32 must trap, never wrap to a small one; the checks Keel leaves out (a
;; constant index inside the minimum size, a zero-extended `i32` index
;; whose access ends in the guard) must not change any result; a static
;; offset past the guard takes the full sum, which must trap on overflow.

(module
  (memory i64 1 3)
  (data (i64.const 65532) "\01\02\03\04")
  (func (export "load") (param i64) (result i32) (i32.load (local.get 0)))
  (func (export "load8") (param i64) (result i32) (i32.load8_u (local.get 0)))
  (func (export "store8") (param i64 i32) (i32.store8 (local.get 0) (local.get 1)))
  ;; An offset past the 32 MiB guard: the full sum, checked for overflow.
  (func (export "load-far") (param i64) (result i32)
    (i32.load8_u offset=0x4000000 (local.get 0)))
  (func (export "load-huge-offset") (param i64) (result i32)
    (i32.load8_u offset=0xffffffffffffffff (local.get 0)))
  ;; Constant indices: inside the minimum size (no check) and past it.
  (func (export "const-in") (result i32) (i32.load (i64.const 65532)))
  (func (export "const-out") (result i32) (i32.load (i64.const 65533)))
  (func (export "const-wraps") (result i32) (i32.load8_u (i64.const 0x100000000)))
  ;; A zero-extended i32 index: below 2^32, so covered as in a 32-bit
  ;; memory, yet still past the current size.
  (func (export "extended") (param i32) (result i32)
    (i32.load8_u (i64.extend_i32_u (local.get 0))))
  (func (export "size") (result i64) (memory.size))
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
  (func (export "fill") (param i64 i32 i64) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
)

(assert_return (invoke "load" (i64.const 65532)) (i32.const 0x04030201))
(assert_trap (invoke "load" (i64.const 65533)) "out of bounds memory access")
(assert_trap (invoke "load8" (i64.const 0x100000000)) "out of bounds memory access")
(assert_trap (invoke "load8" (i64.const 0x10000fffc)) "out of bounds memory access")
(assert_trap (invoke "load8" (i64.const -1)) "out of bounds memory access")
(assert_trap (invoke "store8" (i64.const 0x100000000) (i32.const 7)) "out of bounds memory access")
(assert_return (invoke "load8" (i64.const 0)) (i32.const 0))
(assert_trap (invoke "load-far" (i64.const 0)) "out of bounds memory access")
(assert_trap (invoke "load-huge-offset" (i64.const 0)) "out of bounds memory access")
(assert_trap (invoke "load-huge-offset" (i64.const 1)) "out of bounds memory access")
(assert_return (invoke "const-in") (i32.const 0x04030201))
(assert_trap (invoke "const-out") "out of bounds memory access")
(assert_trap (invoke "const-wraps") "out of bounds memory access")
(assert_return (invoke "extended" (i32.const 65535)) (i32.const 4))
(assert_trap (invoke "extended" (i32.const 65536)) "out of bounds memory access")
(assert_trap (invoke "extended" (i32.const -1)) "out of bounds memory access")

;; Growing within the declared maximum, then past it.
(assert_return (invoke "size") (i64.const 1))
(assert_return (invoke "grow" (i64.const 1)) (i64.const 1))
(assert_return (invoke "size") (i64.const 2))
(assert_return (invoke "extended" (i32.const 65536)) (i32.const 0))
(assert_trap (invoke "load-far" (i64.const 0)) "out of bounds memory access")
(assert_return (invoke "grow" (i64.const 2)) (i64.const -1))
(assert_return (invoke "grow" (i64.const 0x1000000000000)) (i64.const -1))
(assert_return (invoke "grow" (i64.const -1)) (i64.const -1))
(assert_return (invoke "size") (i64.const 2))
;; Bulk operations take 64-bit operands, checked before any byte is written.
(assert_trap (invoke "fill" (i64.const 0x1ffff) (i32.const 9) (i64.const 2)) "out of bounds memory access")
(assert_return (invoke "load8" (i64.const 0x1ffff)) (i32.const 0))
(assert_trap (invoke "fill" (i64.const 1) (i32.const 9) (i64.const -1)) "out of bounds memory access")
(invoke "fill" (i64.const 0x1fffe) (i32.const 9) (i64.const 2))
(assert_return (invoke "load8" (i64.const 0x1ffff)) (i32.const 9))

;; A static offset just past the guard, in bounds and out.
(module
  (memory i64 513)
  (func (export "load-far") (param i64) (result i32)
    (i32.load8_u offset=0x2000000 (local.get 0)))
)
(assert_return (invoke "load-far" (i64.const 0)) (i32.const 0))
(assert_return (invoke "load-far" (i64.const 0xffff)) (i32.const 0))
(assert_trap (invoke "load-far" (i64.const 0x10000)) "out of bounds memory access")
(assert_trap (invoke "load-far" (i64.const -0x2000000)) "out of bounds memory access")

;; A memory with no declared maximum grows up to the reservation (4 GiB by
;; default), not to what its index type allows.
(module
  (memory i64 0)
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
)
(assert_return (invoke "grow" (i64.const 0x10001)) (i64.const -1))
(assert_return (invoke "grow" (i64.const 1)) (i64.const 0))

;; A 32-bit and a 64-bit memory side by side: `memory.copy` between them
;; takes its length as the narrower type.
(module
  (memory $m32 1)
  (memory $m64 i64 1)
  (data (memory $m64) (i64.const 10) "abc")
  (func (export "copy64to32") (param i32 i64 i32)
    (memory.copy $m32 $m64 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy32to64") (param i64 i32 i32)
    (memory.copy $m64 $m32 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "get32") (param i32) (result i32) (i32.load8_u $m32 (local.get 0)))
  (func (export "get64") (param i64) (result i32) (i32.load8_u $m64 (local.get 0)))
)
(invoke "copy64to32" (i32.const 100) (i64.const 10) (i32.const 3))
(assert_return (invoke "get32" (i32.const 102)) (i32.const 99))
(assert_trap (invoke "copy64to32" (i32.const 0) (i64.const 0x100000000) (i32.const 1)) "out of bounds memory access")
(invoke "copy32to64" (i64.const 200) (i32.const 100) (i32.const 3))
(assert_return (invoke "get64" (i64.const 201)) (i32.const 98))
(assert_trap (invoke "copy32to64" (i64.const 0x100000000) (i32.const 0) (i32.const 1)) "out of bounds memory access")

;; 64-bit tables: element access, `call_indirect`, size, growth and the
;; bulk operations with `i64` indices; an index at 2^32 traps.
(module
  (type $t (func (result i32)))
  (table $t64 i64 2 10 funcref)
  (table $t32 2 funcref)
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (elem (table $t64) (i64.const 1) func $two)
  (elem $passive func $one $two)
  (func (export "call") (param i64) (result i32)
    (call_indirect $t64 (type $t) (local.get 0)))
  (func (export "is-null") (param i64) (result i32)
    (ref.is_null (table.get $t64 (local.get 0))))
  (func (export "set-one") (param i64)
    (table.set $t64 (local.get 0) (ref.func $one)))
  (func (export "size") (result i64) (table.size $t64))
  (func (export "grow") (param i64) (result i64)
    (table.grow $t64 (ref.null func) (local.get 0)))
  (func (export "fill") (param i64 i64)
    (table.fill $t64 (local.get 0) (ref.func $two) (local.get 1)))
  (func (export "init") (param i64 i32 i32)
    (table.init $t64 $passive (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy64to32") (param i32 i64 i32)
    (table.copy $t32 $t64 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "call32") (param i32) (result i32)
    (call_indirect $t32 (type $t) (local.get 0)))
)
(assert_return (invoke "call" (i64.const 1)) (i32.const 2))
(assert_trap (invoke "call" (i64.const 0)) "uninitialized element")
(assert_trap (invoke "call" (i64.const 0x100000001)) "undefined element")
(assert_trap (invoke "is-null" (i64.const 0x100000000)) "out of bounds table access")
(assert_trap (invoke "set-one" (i64.const 0x100000000)) "out of bounds table access")
(invoke "set-one" (i64.const 0))
(assert_return (invoke "call" (i64.const 0)) (i32.const 1))
(assert_return (invoke "size") (i64.const 2))
(assert_return (invoke "grow" (i64.const 3)) (i64.const 2))
(assert_return (invoke "grow" (i64.const 0x100000000)) (i64.const -1))
(assert_return (invoke "size") (i64.const 5))
(assert_trap (invoke "fill" (i64.const 4) (i64.const 2)) "out of bounds table access")
(invoke "fill" (i64.const 3) (i64.const 2))
(assert_return (invoke "call" (i64.const 4)) (i32.const 2))
(assert_trap (invoke "init" (i64.const 0x100000000) (i32.const 0) (i32.const 1)) "out of bounds table access")
(invoke "init" (i64.const 2) (i32.const 0) (i32.const 2))
(assert_return (invoke "call" (i64.const 2)) (i32.const 1))
(invoke "copy64to32" (i32.const 0) (i64.const 2) (i32.const 2))
(assert_return (invoke "call32" (i32.const 1)) (i32.const 2))
(assert_trap (invoke "copy64to32" (i32.const 0) (i64.const 0x100000000) (i32.const 1)) "out of bounds table access")

;; Index types must match across imports and exports.
(module $exporter
  (memory (export "m64") i64 1)
  (memory (export "m32") 1)
  (table (export "t64") i64 1 funcref))
(register "exporter" $exporter)
(module (import "exporter" "m64" (memory i64 1)))
(module (import "exporter" "t64" (table i64 1 funcref)))
(assert_unlinkable
  (module (import "exporter" "m64" (memory 1)))
  "incompatible import type")
(assert_unlinkable
  (module (import "exporter" "m32" (memory i64 1)))
  "incompatible import type")
(assert_unlinkable
  (module (import "exporter" "t64" (table 1 funcref)))
  "incompatible import type")
