;; An arithmetic expression evaluator that reports errors with exceptions,
;; as a parser in a language with exceptions does: a recursive-descent
;; parser over `;`-terminated expressions of 64-bit integers (`+ - * /`,
;; parentheses) throws `$syntax` at a character it cannot parse and
;; `$div0` at a division by zero, from however deep the parser is; the
;; line loop catches both, records the error and its position, and goes on
;; with the next expression. A division by zero inside parentheses is
;; caught with its exception (`catch_ref`), counted, and thrown on
;; (`throw_ref`). `run` evaluates the whole list many times and returns a
;; checksum of every value and error (the CLI test recomputes it in Rust).
(module
  (memory (export "memory") 1)
  (data (i32.const 0)
    "1+2*3;(4+5)*(6-7);8/(3-3);12*(3+;100/7-2*(5+5);((((1))));7/0+1;"
    "2*(3*(4*(5*(6*(7)))));)1;9-8-7-6;1000000007*1000000009;"
    "((2+3)*(4+5)-(6*7))/((8-8)*9);42;-1;3+4*(2-(1+1)/(0*5));"
    "(((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))));"
    "((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))));"
    "123456789*987654321/(111-111*1);5/(2-1)/(1-1);\00")
  (tag $syntax (param i32))
  (tag $div0 (param i32))
  (global $pos (mut i32) (i32.const 0))
  ;; Divisions by zero seen inside parentheses.
  (global $nested (mut i64) (i64.const 0))

  (func $peek (result i32) (i32.load8_u (global.get $pos)))
  (func $advance (global.set $pos (i32.add (global.get $pos) (i32.const 1))))

  (func $digit (result i32)
    (i32.lt_u (i32.sub (call $peek) (i32.const 48)) (i32.const 10)))

  (func $number (result i64)
    (local $v i64)
    (if (i32.eqz (call $digit)) (then (throw $syntax (global.get $pos))))
    (loop $more
      (local.set $v
        (i64.add (i64.mul (local.get $v) (i64.const 10))
                 (i64.extend_i32_u (i32.sub (call $peek) (i32.const 48)))))
      (call $advance)
      (br_if $more (call $digit)))
    (local.get $v))

  (func $factor (result i64)
    (local $v i64)
    (if (i32.ne (call $peek) (i32.const 40)) ;; not '('
      (then (return (call $number))))
    (call $advance)
    (block $zero (result i32 exnref)
      (try_table (result i64) (catch_ref $div0 $zero)
        (call $expr))
      (local.set $v)
      (if (i32.ne (call $peek) (i32.const 41)) ;; ')'
        (then (throw $syntax (global.get $pos))))
      (call $advance)
      (return (local.get $v)))
    ;; A division by zero between the parentheses: count it, throw it on.
    (global.set $nested (i64.add (global.get $nested) (i64.const 1)))
    (throw_ref)
    (drop))

  (func $term (result i64)
    (local $v i64) (local $d i64) (local $c i32)
    (local.set $v (call $factor))
    (loop $more
      (local.set $c (call $peek))
      (if (i32.eq (local.get $c) (i32.const 42)) ;; '*'
        (then
          (call $advance)
          (local.set $v (i64.mul (local.get $v) (call $factor)))
          (br $more)))
      (if (i32.eq (local.get $c) (i32.const 47)) ;; '/'
        (then
          (call $advance)
          (local.set $d (call $factor))
          (if (i64.eqz (local.get $d)) (then (throw $div0 (global.get $pos))))
          (local.set $v (i64.div_s (local.get $v) (local.get $d)))
          (br $more))))
    (local.get $v))

  (func $expr (result i64)
    (local $v i64) (local $c i32)
    (local.set $v (call $term))
    (loop $more
      (local.set $c (call $peek))
      (if (i32.eq (local.get $c) (i32.const 43)) ;; '+'
        (then
          (call $advance)
          (local.set $v (i64.add (local.get $v) (call $term)))
          (br $more)))
      (if (i32.eq (local.get $c) (i32.const 45)) ;; '-'
        (then
          (call $advance)
          (local.set $v (i64.sub (local.get $v) (call $term)))
          (br $more))))
    (local.get $v))

  ;; One expression, which must end at its `;`.
  (func $line (result i64)
    (local $v i64)
    (local.set $v (call $expr))
    (if (i32.ne (call $peek) (i32.const 59)) (then (throw $syntax (global.get $pos))))
    (local.get $v))

  ;; After an error: on to the character after the next `;`.
  (func $skip_line
    (loop $more
      (if (i32.ne (call $peek) (i32.const 59))
        (then (call $advance) (br $more))))
    (call $advance))

  ;; Every expression once: a checksum of values, errors and positions.
  (func $eval_all (result i64)
    (local $sum i64) (local $at i32) (local $v i64)
    (global.set $pos (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (call $peek)))
        (local.set $sum (i64.mul (local.get $sum) (i64.const 31)))
        (block $ok (result i64)
          (block $syntax_error (result i32)
            (block $div0_error (result i32)
              (try_table (result i64) (catch $syntax $syntax_error) (catch $div0 $div0_error)
                (call $line))
              (br $ok))
            (local.set $at)
            (local.set $sum
              (i64.add (local.get $sum)
                       (i64.add (i64.const 1000000) (i64.extend_i32_u (local.get $at)))))
            (call $skip_line)
            (br $next))
          (local.set $at)
          (local.set $sum
            (i64.add (local.get $sum)
                     (i64.add (i64.const 2000000) (i64.extend_i32_u (local.get $at)))))
          (call $skip_line)
          (br $next))
        (local.set $v)
        (local.set $sum (i64.add (local.get $sum) (local.get $v)))
        (call $advance)
        (br $next)))
    (local.get $sum))

  (func (export "run") (result i64)
    (local $i i32) (local $acc i64)
    (global.set $nested (i64.const 0))
    (loop $again
      (local.set $acc
        (i64.add (i64.rotl (local.get $acc) (i64.const 7)) (call $eval_all)))
      (br_if $again
        (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 20000))))
    (i64.add (local.get $acc) (global.get $nested))))
