;;! legacy-exceptions
;; The legacy `try`: its body's calls are `try_call`s to a landing pad, as
;; in a `try_table`; the pad branches to the `catch` arm of the matching
;; tag (or `catch_all`) with the exception, the arm loads the values; a
;; `rethrow` in an arm throws the arm's exception to the enclosing
;; handlers (here, the callers); `delegate` hands the body's exceptions to
;; the handlers around its label.
(module
  (tag $e (param i32))
  (func $f (param i32) (result i32) (throw $e (local.get 0)))
  (func (export "catch") (param i32) (result i32)
    try (result i32)
      (call $f (local.get 0))
    catch $e
      i32.const 1
      i32.add
    catch_all
      rethrow 0
    end)
  (func (export "delegate") (param i32) (result i32)
    try (result i32)
      (call $f (local.get 0))
    delegate 0))
