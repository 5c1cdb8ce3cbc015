;; Spec 2.0 segment semantics: the first data segment is written, the second is out of bounds and traps.
(module
  (import "prov" "mem" (memory 1))
  (data (i32.const 200) "\07")
  (data (i32.const 65535) "\01\02"))
