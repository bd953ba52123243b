;; A named module is available for import under its name without a
;; `register`, as `wasmtime wast` makes it (scripts written for Wasmtime
;; rely on it); an instance of a module definition too.
(module $lib
  (func (export "seven") (result i32) (i32.const 7)))
(module
  (import "lib" "seven" (func $seven (result i32)))
  (func (export "eight") (result i32) (i32.add (call $seven) (i32.const 1))))
(assert_return (invoke "eight") (i32.const 8))

(module definition $counter
  (global $n (export "n") (mut i32) (i32.const 0))
  (func (export "bump") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (global.get $n)))
(module instance $c1 $counter)
(module instance $c2 $counter)
(module
  (import "c1" "bump" (func $bump1 (result i32)))
  (import "c2" "bump" (func $bump2 (result i32)))
  (func (export "both") (result i32)
    (drop (call $bump1))
    (i32.add (call $bump1) (call $bump2))))
;; Two instances, two counters: c1 was bumped twice, c2 once.
(assert_return (invoke "both") (i32.const 3))
(assert_return (get $c1 "n") (i32.const 2))
(assert_return (get $c2 "n") (i32.const 1))

;; Without a name, nothing is available for import.
(module (func (export "nine") (result i32) (i32.const 9)))
(assert_unlinkable
  (module (import "nine" "nine" (func (result i32))))
  "unknown import")
