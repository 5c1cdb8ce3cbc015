;; The guest of fuzz/corpus/fuzz_actor/loop_recursion.act, made by:
;;   wat2wasm seed.wat -o seed.wasm && shoal run --fuel 30000 --snapshot-on-exit loop_recursion.act seed.wasm
;; (recursion through call_indirect, a table, a mutable global, data and memory stores, stopped by fuel)
(module
  (import "shoal_actor" "checkpoint" (func $ckpt (result i32)))
  (memory 2)
  (global $g (mut i64) (i64.const 7))
  (table 4 funcref)
  (elem (i32.const 0) $step $rec $step)
  (data (i32.const 100) "hello actor")
  (type $t (func (param i32) (result i32)))
  (func $rec (param i32) (result i32) (local i64)
    local.get 0
    i32.eqz
    if (result i32) (i32.const 1)
    else
      local.get 0 i32.const 1 i32.sub
      i32.const 1 call_indirect (type $t)
      local.get 0 i32.add
    end)
  (func $step (param i32) (result i32)
    (global.set $g (i64.add (global.get $g) (i64.extend_i32_u (local.get 0))))
    (i32.store (i32.and (i32.mul (local.get 0) (i32.const 4)) (i32.const 0xfffc)) (local.get 0))
    (call $rec (i32.and (local.get 0) (i32.const 15))))
  (func (export "_start") (local i32)
    (loop $l
      (local.set 0 (i32.add (local.get 0) (i32.const 1)))
      (drop (call_indirect (type $t) (local.get 0) (i32.and (local.get 0) (i32.const 2))))
      (br $l))))
