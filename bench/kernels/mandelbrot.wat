;; Mandelbrot set, 600x600, up to 200 iterations: f64 arithmetic.
(module
  (func (export "run") (result i64)
    (local $x i32) (local $y i32) (local $k i32) (local $total i64)
    (local $cr f64) (local $ci f64) (local $zr f64) (local $zi f64) (local $t f64)
    (local.set $y (i32.const 0))
    (loop $rows
      (local.set $ci (f64.sub (f64.div (f64.convert_i32_u (local.get $y)) (f64.const 300)) (f64.const 1)))
      (local.set $x (i32.const 0))
      (loop $cols
        (local.set $cr (f64.sub (f64.div (f64.convert_i32_u (local.get $x)) (f64.const 300)) (f64.const 1.5)))
        (local.set $zr (f64.const 0))
        (local.set $zi (f64.const 0))
        (local.set $k (i32.const 0))
        (block $escaped
          (loop $iter
            (br_if $escaped (f64.gt
              (f64.add (f64.mul (local.get $zr) (local.get $zr)) (f64.mul (local.get $zi) (local.get $zi)))
              (f64.const 4)))
            (local.set $t (f64.add (f64.sub (f64.mul (local.get $zr) (local.get $zr))
                                            (f64.mul (local.get $zi) (local.get $zi)))
                                   (local.get $cr)))
            (local.set $zi (f64.add (f64.mul (f64.mul (f64.const 2) (local.get $zr)) (local.get $zi))
                                    (local.get $ci)))
            (local.set $zr (local.get $t))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $iter (i32.lt_u (local.get $k) (i32.const 200)))))
        (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (local.get $k))))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br_if $cols (i32.lt_u (local.get $x) (i32.const 600))))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br_if $rows (i32.lt_u (local.get $y) (i32.const 600))))
    (local.get $total)))
