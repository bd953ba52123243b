;; Integer and float arithmetic: trapping division, remainder, conversions,
;; min/max, rounding.
(module
  (func (export "div") (param i32 i32) (result i32)
    (i32.add (i32.div_s (local.get 0) (local.get 1)) (i32.rem_s (local.get 0) (local.get 1))))
  (func (export "udiv64") (param i64 i64) (result i64) (i64.div_u (local.get 0) (local.get 1)))
  (func (export "bits") (param i32) (result i32)
    (i32.add (i32.popcnt (local.get 0)) (i32.rotl (i32.clz (local.get 0)) (i32.ctz (local.get 0)))))
  (func (export "trunc") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
  (func (export "trunc_sat") (param f32) (result i64) (i64.trunc_sat_f32_u (local.get 0)))
  (func (export "float") (param f64 f64) (result f64)
    (f64.add (f64.min (local.get 0) (local.get 1)) (f64.nearest (f64.sqrt (local.get 0))))))
