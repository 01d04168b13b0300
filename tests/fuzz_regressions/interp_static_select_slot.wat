;; wasmjit fuzz --seed 202 (module #553, shrunk): the interpreter folded a select with a constant
;; condition into a reference to the stack slot of its second operand, which the next push
;; (global.get 0) overwrote; global 0 ended up 0 instead of -4096.
(module
  (type (;0;) (func (result f64 f32 funcref)))
  (type (;1;) (func (result i64)))
  (type (;2;) (func))
  (table (;0;) 1 675 funcref)
  (global (;0;) (mut i64) i64.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (global (;2;) (mut i64) i64.const 0)
  (global (;3;) (mut i32) i32.const 1)
  (export "" (func 0))
  (export "5" (func 1))
  (export "7" (table 0))
  (export "8" (global 0))
  (func (;0;) (type 0) (result f64 f32 funcref)
    (local externref i64 i32)
    global.get 3
    i32.eqz
    if ;; label = @1
      unreachable
    end
    global.get 3
    global.set 3
    i32.const 771586446
    block (type 2) ;; label = @1
      ref.null extern
      i64.const 0
      local.get 2
      i32.const 4096
      i32.sub
      i64.extend_i32_s
      i32.const -1298850309
      i32.clz
      select
      global.get 0
      i64.xor
      global.set 0
      drop
    end
    global.get 1
    i32.xor
    global.set 1
    f64.const -0x1.00d7d9107c2dep-132 (;=-0.00000000000000000000000000000000000000018427592699941652;)
    f32.const 0x1.cf87bp-122 (;=0.00000000000000000000000000000000000034054808;)
    ref.null func
  )
  (func (;1;) (type 1) (result i64)
    unreachable
  )
)
