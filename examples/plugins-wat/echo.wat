;; A trivial plugin written by hand in the component-model text format: the
;; `tenantry:plugin` world's two exports, no imports, a bump allocator. `invoke`
;; returns its input as its output (the host has already copied the input into
;; the guest's memory; lifting the result copies it out). It is the Tenantry side
;; of the like-for-like comparison with Extism's WAT echo, and the floor of what a
;; fresh instance + invoke costs on the host side.
(component
  (type $error' (variant
    (case "invalid-input" string)
    (case "permission-denied" string)
    (case "egress-denied" string)
    (case "not-found" string)
    (case "limit-exceeded" string)
    (case "failed" string)))
  (export $error "error" (type $error'))
  (core module $m
    (memory (export "memory") 1)
    ;; Return areas at 0..16; the description at 16; the heap from 1024.
    (global $heap (mut i32) (i32.const 1024))
    (data (i32.const 16) "[{\"name\":\"echo\",\"description\":\"Returns its input\"}]")
    (func (export "cabi_realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
      (result i32)
      (local $p i32) (local $end i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $size)))
      (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.add
                    (i32.shr_u
                      (i32.sub (local.get $end) (i32.shl (memory.size) (i32.const 16)))
                      (i32.const 16))
                    (i32.const 1)))
                (i32.const -1))
            (then unreachable))))
      (global.set $heap (local.get $end))
      (local.get $p))
    (func (export "describe") (result i32)
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.const 51))
      (i32.const 0))
    ;; (action ptr, len, input ptr, len) -> pointer to result<string, error>:
    ;; tag 0 (ok) at 0, the string's pointer and length at 4 and 8.
    (func (export "invoke") (param i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (local.get 2))
      (i32.store (i32.const 8) (local.get 3))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "describe") (result string)
    (canon lift (core func $i "describe")
      (memory $i "memory") (realloc (func $i "cabi_realloc"))))
  (func (export "invoke")
    (param "action" string) (param "input" string) (result (result string (error $error)))
    (canon lift (core func $i "invoke")
      (memory $i "memory") (realloc (func $i "cabi_realloc")))))
