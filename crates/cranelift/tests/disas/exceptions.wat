;; Exception handling. `throw` fills an object from the `exn_new` builtin
;; and, inside a `try_table`, jumps to its landing pad; a call inside one
;; is a `try_call` whose catch-all edge goes to the pad. The pad compares
;; the object's tag with each clause's tag (a defined tag's identity is an
;; address in the context, an imported one's is loaded from it) and
;; branches with the fields; what matches nothing goes to the enclosing
;; pad, then to the `throw_ref` builtin with the frame pointer, and traps
;; if that returns (no caller caught it).
(module
  (import "m" "tag" (tag $imported (param i64)))
  (tag $e (param i32))
  (func $f (param i32) (result i32)
    (if (local.get 0) (then (throw $e (local.get 0))))
    (local.get 0))
  (func (export "catch") (param i32) (result i32)
    (block $outer (result i64)
      (block $h (result i32)
        (try_table (result i32) (catch $e $h) (catch $imported $outer)
          (call $f (local.get 0))))
      (return))
    (i32.wrap_i64))
  (func (export "rethrow") (param exnref)
    (throw_ref (local.get 0))))
