;;! memory64
;; 64-bit memories and tables. Guard pages cannot cover an `i64` index, so
;; an access is checked: one comparison of the index with the length when
;; the static offset ends within the guard, the full sum (trapping on
;; overflow) past it; none for a constant index inside the minimum size or
;; a zero-extended `i32` index whose access ends within the guard. Sizes
;; and `memory.grow` stay `i64`; table indices are not extended.
(module
  (memory i64 1)
  (type $t (func (result i32)))
  (table i64 1 funcref)
  (func (export "index") (param i64) (result i32)
    (i32.load offset=8 (local.get 0)))
  (func (export "far") (param i64) (result i32)
    (i32.load offset=0x4000000 (local.get 0)))
  (func (export "const") (result i32)
    (i32.load (i64.const 16)))
  (func (export "extended") (param i32) (result i32)
    (i32.load (i64.extend_i32_u (local.get 0))))
  (func (export "grow") (param i64) (result i64)
    (drop (memory.size))
    (memory.grow (local.get 0)))
  (func (export "call") (param i64) (result i32)
    (call_indirect (type $t) (local.get 0)))
)
