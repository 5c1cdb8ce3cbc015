(module
  (import "env" "f" (func $f (param i32 i64) (result f32)))
  (import "env" "mem" (memory 1 4))
  (import "env" "tab" (table 4 funcref))
  (import "other" "g" (global $g (mut i32)))
  (func (export "run") (result f32)
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store (i32.const 8) (global.get $g))
    (call $f (i32.load (i32.const 8)) (i64.const 3))))
