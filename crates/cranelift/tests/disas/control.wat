;; Blocks, loops, ifs with results, br_if, br_table, select, return.
(module
  (func (export "sum") (param i32) (result i32) (local i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get 0)))
        (local.set 1 (i32.add (local.get 1) (local.get 0)))
        (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
        (br $l)))
    (local.get 1))
  (func (export "choose") (param i32 i32 i32) (result i32)
    (if (result i32) (local.get 0)
      (then (local.get 1))
      (else (select (local.get 1) (local.get 2) (local.get 2)))))
  (func (export "switch") (param i32) (result i32)
    (block $c (block $b (block $a
      (br_table $a $b $c (local.get 0)))
      (return (i32.const 10)))
      (return (i32.const 20)))
    (i32.const 30)))
