;; Tail calls. Wasm functions use Cranelift's `tail` convention, so each
;; form is one Cranelift tail call: `return_call` of a function of this
;; module a direct `return_call`, of an import a `return_call_indirect` of
;; its code; `return_call_indirect` checks the table entry as
;; `call_indirect` does; `return_call_ref` checks only null.
(module
  (type $t (func (param i32) (result i32)))
  (import "m" "imported" (func $imported (type $t)))
  (table 1 funcref)
  (func $direct (export "direct") (type $t)
    (return_call $direct (local.get 0)))
  (func (export "import") (type $t)
    (return_call $imported (local.get 0)))
  (func (export "indirect") (type $t)
    (return_call_indirect (type $t) (local.get 0) (i32.const 0)))
  (func (export "by_ref") (param i32 (ref null $t)) (result i32)
    (return_call_ref $t (local.get 0) (local.get 1))))
