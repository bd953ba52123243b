;; Table accesses are bounds-checked with a trap and, behind it, a Spectre
;; guard (a conditional move to null): the guard must never change what an
;; in-bounds or out-of-bounds access does.
(module
  (type $t (func (result i32)))
  (table $f 3 funcref)
  (table $e 2 externref)
  (elem (table $f) (i32.const 0) func $one $two)
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func (export "call") (param i32) (result i32) (call_indirect $f (type $t) (local.get 0)))
  (func (export "get") (param i32) (result externref) (table.get $e (local.get 0)))
  (func (export "set") (param i32 externref) (table.set $e (local.get 0) (local.get 1))))
(assert_return (invoke "call" (i32.const 0)) (i32.const 1))
(assert_return (invoke "call" (i32.const 1)) (i32.const 2))
(assert_trap (invoke "call" (i32.const 2)) "uninitialized element")
(assert_trap (invoke "call" (i32.const 3)) "undefined element")
(assert_trap (invoke "call" (i32.const -1)) "undefined element")
(assert_return (invoke "set" (i32.const 1) (ref.extern 7)))
(assert_return (invoke "get" (i32.const 1)) (ref.extern 7))
(assert_return (invoke "get" (i32.const 0)) (ref.null extern))
(assert_trap (invoke "get" (i32.const 2)) "out of bounds table access")
(assert_trap (invoke "set" (i32.const 2) (ref.extern 1)) "out of bounds table access")
