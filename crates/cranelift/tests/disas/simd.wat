;; A few v128 operations: loads, lane arithmetic, shuffles, lane access.
(module
  (memory 1)
  (func (export "add") (param i32) (result i32)
    (i32x4.extract_lane 1
      (i32x4.add (v128.load (local.get 0)) (v128.load offset=16 (local.get 0)))))
  (func (export "shuffle") (param v128 v128) (result v128)
    (i8x16.shuffle 0 17 2 19 4 21 6 23 8 25 10 27 12 29 14 31 (local.get 0) (local.get 1)))
  (func (export "float") (param v128) (result v128)
    (f32x4.mul (f32x4.sqrt (local.get 0)) (f32x4.splat (f32.const 2)))))
