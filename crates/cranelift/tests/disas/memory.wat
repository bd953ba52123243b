;; Loads and stores (no bounds check: the guard covers them), a large
;; offset (checked), memory.size/grow and the bulk operations.
(module
  (memory 1)
  (data "abc")
  (func (export "loads") (param i32) (result i64)
    (i64.add
      (i64.extend_i32_u (i32.load8_u offset=3 (local.get 0)))
      (i64.load offset=8 (local.get 0))))
  (func (export "store") (param i32 i32)
    (i32.store16 (local.get 0) (local.get 1)))
  (func (export "far") (param i32) (result i32)
    (i32.load offset=0x40000000 (local.get 0)))
  (func (export "grow") (param i32) (result i32)
    (drop (memory.size))
    (memory.grow (local.get 0)))
  (func (export "bulk") (param i32 i32 i32)
    (memory.fill (local.get 0) (local.get 1) (local.get 2))
    (memory.copy (local.get 0) (local.get 1) (local.get 2))
    (memory.init 0 (local.get 0) (local.get 1) (local.get 2))
    (data.drop 0)))
