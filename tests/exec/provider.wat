;; Exports shared things for linking tests.
(module
  (memory (export "mem") 1 8)
  (table (export "tab") 2 10 funcref)
  (global (export "counter") (mut i32) (i32.const 5))
  (global (export "konst") i64 (i64.const 77))
  (func (export "twice") (param i32) (result i32) (i32.shl (local.get 0) (i32.const 1)))
  (func (export "bump") (global.set 0 (i32.add (global.get 0) (i32.const 1))))
  (elem (i32.const 1) func 0)
)
