;; Typed function references. `call_ref` loads the callee's code from the
;; reference with the null check as the load's trap (no signature check:
;; validation proved the reference's type); `ref.as_non_null` is one
;; conditional trap; `br_on_null` and `br_on_non_null` are one branch on
;; the pointer.
(module
  (type $binary (func (param i32 i32) (result i32)))
  (func (export "call_ref") (param (ref null $binary)) (result i32)
    (call_ref $binary (i32.const 1) (i32.const 2) (local.get 0)))
  (func (export "as_non_null") (param (ref null $binary)) (result (ref $binary))
    (ref.as_non_null (local.get 0)))
  (func (export "br_on_null") (param (ref null $binary)) (result i32)
    (block $null
      (br_on_null $null (local.get 0))
      (drop)
      (return (i32.const 0)))
    (i32.const 1))
  (func (export "br_on_non_null") (param (ref null $binary)) (result (ref null $binary))
    (block $some (result (ref $binary))
      (br_on_non_null $some (local.get 0))
      (return (ref.null $binary)))))
