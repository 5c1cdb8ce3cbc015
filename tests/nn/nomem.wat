;; A guest without a linear memory: wasi_ephemeral_nn answers 3 (MissingMemory) where it needs one, and
;; shoal_llm reports EBOUNDS (-2); the exit code is the sum of the checks that failed.
(module
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "get_output" (func $get_output (param i32 i32 i32 i32 i32) (result i32)))
  (import "shoal_llm" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (func $check (param $got i32) (param $want i32) (result i32)
    (i32.ne (local.get $got) (local.get $want)))
  (func (export "_start")
    (call $exit
      (i32.add
        (i32.add
          (call $check (call $load_by_name (i32.const 0) (i32.const 7) (i32.const 0)) (i32.const 3))
          (call $check (call $load (i32.const 0) (i32.const 1) (i32.const 6) (i32.const 3) (i32.const 0))
                       (i32.const 3)))
        (i32.add
          (call $check (call $get_output (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
                       (i32.const 1))
          (call $check (call $open (i32.const 0) (i32.const 7) (i32.const 0)) (i32.const -2)))))))
