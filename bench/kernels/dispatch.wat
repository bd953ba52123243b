;; A bytecode-interpreter-like loop: every step picks one of eight small
;; handlers through call_indirect.
(module
  (type $op (func (param i32 i32) (result i32)))
  (table 8 funcref)
  (elem (i32.const 0) $add $sub $xor $mul $rotl $shr $inc $mix)
  (func $add (type $op) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $op) (i32.sub (local.get 0) (local.get 1)))
  (func $xor (type $op) (i32.xor (local.get 0) (local.get 1)))
  (func $mul (type $op) (i32.mul (local.get 0) (i32.or (local.get 1) (i32.const 1))))
  (func $rotl (type $op) (i32.rotl (local.get 0) (local.get 1)))
  (func $shr (type $op) (i32.shr_u (local.get 0) (i32.and (local.get 1) (i32.const 7))))
  (func $inc (type $op) (i32.add (local.get 0) (i32.const 1)))
  (func $mix (type $op) (i32.xor (i32.mul (local.get 0) (i32.const 0x9e3779b1)) (local.get 1)))
  (func (export "run") (result i64)
    (local $i i32) (local $acc i32) (local $state i32)
    (local.set $state (i32.const 12345))
    (loop $step
      ;; xorshift picks the next opcode
      (local.set $state (i32.xor (local.get $state) (i32.shl (local.get $state) (i32.const 13))))
      (local.set $state (i32.xor (local.get $state) (i32.shr_u (local.get $state) (i32.const 17))))
      (local.set $state (i32.xor (local.get $state) (i32.shl (local.get $state) (i32.const 5))))
      (local.set $acc
        (call_indirect (type $op) (local.get $acc) (local.get $i)
          (i32.and (local.get $state) (i32.const 7))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $step (i32.lt_u (local.get $i) (i32.const 20000000))))
    (i64.extend_i32_u (local.get $acc))))
