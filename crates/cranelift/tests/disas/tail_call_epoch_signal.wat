;;! epoch-signal
;; Tail calls with epochs by signal. A host function tail-called would
;; return to the tail caller's caller, past any page check, so a tail call
;; whose callee may be a host function (an import, through a table, through
;; a reference) tests the callee's context: a host context is called, the
;; interrupt page checked and the results returned; a wasm one is
;; tail-called. A tail call of a function of this module stays one
;; `return_call`.
(module
  (type $t (func (param i32) (result i32)))
  (import "m" "imported" (func $imported (type $t)))
  (table 1 funcref)
  (func $direct (type $t)
    (return_call $direct (local.get 0)))
  (func (export "import") (type $t)
    (return_call $imported (local.get 0)))
  (func (export "indirect") (type $t)
    (return_call_indirect (type $t) (local.get 0) (i32.const 0))))
