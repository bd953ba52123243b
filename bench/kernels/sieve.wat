;; Sieve of Eratosthenes over 8 MiB of linear memory, then a checksum pass:
;; tight integer loops with byte loads and stores.
(module
  (memory 128)
  (func (export "run") (result i64)
    (local $n i32) (local $i i32) (local $j i32) (local $count i64) (local $sum i64)
    (local.set $n (i32.const 8000000))
    ;; clear
    (local.set $i (i32.const 0))
    (block $done (loop $clear
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (local.get $i) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $clear)))
    ;; sieve
    (local.set $i (i32.const 2))
    (block $outer_done (loop $outer
      (br_if $outer_done (i32.gt_u (i32.mul (local.get $i) (local.get $i)) (local.get $n)))
      (if (i32.load8_u (local.get $i))
        (then
          (local.set $j (i32.mul (local.get $i) (local.get $i)))
          (block $inner_done (loop $inner
            (br_if $inner_done (i32.ge_u (local.get $j) (local.get $n)))
            (i32.store8 (local.get $j) (i32.const 0))
            (local.set $j (i32.add (local.get $j) (local.get $i)))
            (br $inner)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $outer)))
    ;; count and checksum
    (local.set $i (i32.const 2))
    (block $c_done (loop $c
      (br_if $c_done (i32.ge_u (local.get $i) (local.get $n)))
      (if (i32.load8_u (local.get $i))
        (then
          (local.set $count (i64.add (local.get $count) (i64.const 1)))
          (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (local.get $i))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $c)))
    (i64.add (i64.mul (local.get $count) (i64.const 1000003)) (local.get $sum))))
