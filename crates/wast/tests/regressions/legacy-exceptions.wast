;; The legacy exception instructions (`try`, `catch`, `catch_all`,
;; `delegate`, `rethrow`) that older toolchains emit, with
;; `Config::wasm_legacy_exceptions` (the script's name turns it on): tags
;; matched in order, values delivered to the arm, exceptions from callees,
;; arms not covered by their own `try`, `rethrow` of an outer arm's
;; exception, `delegate` to an enclosing `try` and to the caller, and
;; mixing with `try_table`.
(module
  (tag $e0)
  (tag $e1 (param i32))
  (tag $e2 (param i32 i64))

  (func $throw1 (param i32) (throw $e1 (local.get 0)))
  (func $throw2 (param i32) (throw $e2 (local.get 0) (i64.const 40)))

  ;; Which arm catches: 1 for $e1 (its value added), 2 for $e2, 3 for any
  ;; other, 0 when nothing is thrown.
  (func (export "classify") (param $which i32) (result i32)
    try (result i32)
      (if (i32.eq (local.get $which) (i32.const 1)) (then (call $throw1 (i32.const 100))))
      (if (i32.eq (local.get $which) (i32.const 2)) (then (call $throw2 (i32.const 7))))
      (if (i32.eq (local.get $which) (i32.const 3)) (then (throw $e0)))
      i32.const 0
    catch $e1
      i32.const 1
      i32.add
    catch $e2
      i32.wrap_i64
      i32.add
      drop
      i32.const 2
    catch_all
      i32.const 3
    end)

  ;; An exception thrown in an arm is not caught by the same `try`, but by
  ;; the enclosing one.
  (func (export "arm_throws") (result i32)
    try (result i32)
      try (result i32)
        (throw $e1 (i32.const 5))
      catch $e1
        drop
        (throw $e1 (i32.const 6))
      catch_all
        i32.const -1
      end
    catch $e1
    end)

  ;; `rethrow 1` in a nested arm throws the outer arm's exception.
  (func (export "rethrow_outer") (result i32)
    try (result i32)
      try
        (throw $e1 (i32.const 11))
      catch $e1
        drop
        try
          (throw $e1 (i32.const 22))
        catch $e1
          drop
          rethrow 1
        end
      end
      i32.const 0
    catch $e1
    end)

  ;; `rethrow 0` from a `catch_all` keeps the exception's tag and values.
  (func (export "rethrow_all") (result i32)
    try (result i32)
      try
        (call $throw2 (i32.const 3))
      catch_all
        rethrow 0
      end
      i32.const 0
    catch $e2
      drop
    end)

  ;; `delegate 0` hands the body's exception to the next enclosing `try`,
  ;; past a `try` whose arm the delegating `try` is in.
  (func (export "delegate_out") (result i32)
    try (result i32)
      try
        (throw $e0)
      catch $e0
        try
          (call $throw1 (i32.const 9))
        delegate 0
      end
      i32.const 0
    catch $e1
    end)

  ;; `delegate 1` skips the `try` right around it.
  (func (export "delegate_skip") (result i32)
    try (result i32)
      try (result i32)
        try
          (call $throw1 (i32.const 4))
        delegate 1
        i32.const 0
      catch $e1
        drop
        i32.const -1
      end
    catch $e1
      i32.const 100
      i32.add
    end)

  ;; `delegate` to the function body: the caller sees the exception.
  (func $delegate_to_caller
    try
      (call $throw1 (i32.const 8))
    delegate 0)
  (func (export "delegate_caller") (result i32)
    try (result i32)
      call $delegate_to_caller
      i32.const 0
    catch $e1
    end)
  (func (export "uncaught") (call $delegate_to_caller))

  ;; Legacy `try` inside a `try_table` and the other way round.
  (func (export "mixed") (result i32)
    (block $h (result i32)
      (try_table (result i32) (catch $e1 $h)
        try (result i32)
          (call $throw1 (i32.const 30))
          i32.const 0
        catch $e2
          drop
          drop
          i32.const -1
        end)))
  (func (export "mixed_inner") (result i32)
    try (result i32)
      (block $h
        (try_table (catch $e0 $h) (call $throw1 (i32.const 50))))
      i32.const -1
    catch $e1
    end))

(assert_return (invoke "classify" (i32.const 0)) (i32.const 0))
(assert_return (invoke "classify" (i32.const 1)) (i32.const 101))
(assert_return (invoke "classify" (i32.const 2)) (i32.const 2))
(assert_return (invoke "classify" (i32.const 3)) (i32.const 3))
(assert_return (invoke "arm_throws") (i32.const 6))
(assert_return (invoke "rethrow_outer") (i32.const 11))
(assert_return (invoke "rethrow_all") (i32.const 3))
(assert_return (invoke "delegate_out") (i32.const 9))
(assert_return (invoke "delegate_skip") (i32.const 104))
(assert_return (invoke "delegate_caller") (i32.const 8))
(assert_exception (invoke "uncaught"))
(assert_return (invoke "mixed") (i32.const 30))
(assert_return (invoke "mixed_inner") (i32.const 50))
