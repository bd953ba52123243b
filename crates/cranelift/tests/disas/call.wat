;; Direct calls, calls to imports, and call_indirect (bounds check with its
;; Spectre guard, lazy funcref, null and signature checks).
(module
  (type $t (func (param i32) (result i32)))
  (import "host" "f" (func $host (param i32) (result i32)))
  (table 4 funcref)
  (elem (i32.const 0) $double)
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "direct") (param i32) (result i32) (call $double (local.get 0)))
  (func (export "import") (param i32) (result i32) (call $host (local.get 0)))
  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect (type $t) (local.get 0) (local.get 1))))
