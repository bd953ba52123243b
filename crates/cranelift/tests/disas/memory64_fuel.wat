;;! fuel memory64
;; Fuel for bulk operations on a 64-bit memory: the `i64` length is charged
;; as is up to the most any operation that does its work can be (the
;; reservation, at least 2^32), and capped there, so that a huge length
;; traps out of bounds as without fuel and no charge reaches 2^63. A
;; constant length past 2^32 is capped too, not cut to its low 32 bits.
(module
  (memory i64 1)
  (func (export "fill") (param i64 i64)
    (memory.fill (local.get 0) (i32.const 0) (local.get 1)))
  (func (export "fill-const") (param i64)
    (memory.fill (local.get 0) (i32.const 0) (i64.const 0x100000001)))
)
