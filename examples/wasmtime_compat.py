"""A program written for wasmtime-py's core API: host functions with a Caller, memory access,
WASI, traps and fuel. It runs unchanged on wasmjit; only the import and the error class differ:

    python examples/wasmtime_compat.py            # on wasmjit
    python examples/wasmtime_compat.py wasmtime   # on wasmtime-py: the same output
"""

import os
import sys
import tempfile

if sys.argv[1:] == ["wasmtime"]:
    import wasmtime
    from wasmtime import WasmtimeError as Error
else:
    import wasmjit as wasmtime
    from wasmjit import WasmjitError as Error

WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasm\n")
  (func (export "greet")
    (i32.store (i32.const 0) (i32.const 16))  ;; one iovec at 0: 16 bytes at 16
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $log (i32.const 16) (i32.const 5)))
  (func $sum (export "sum") (param $n i32) (result i64) (local $acc i64)
    (loop $next
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $next (local.get $n)))
    (local.get $acc))
  (func $divide (export "divide") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1))))
"""


def main() -> None:
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()

    def log(caller: wasmtime.Caller, ptr: int, length: int) -> None:
        memory = caller["memory"]
        print("host log:", memory.read(caller, ptr, ptr + length).decode())

    i32 = wasmtime.ValType.i32()
    linker.define_func("env", "log", wasmtime.FuncType([i32, i32], []), log, access_caller=True)

    with tempfile.TemporaryDirectory() as tmp:
        stdout = os.path.join(tmp, "stdout")
        wasi = wasmtime.WasiConfig()
        wasi.stdout_file = stdout
        store.set_wasi(wasi)
        exports = linker.instantiate(store, wasmtime.Module(engine, WAT)).exports(store)
        store.set_fuel(10_000)
        exports["greet"](store)
        with open(stdout) as f:
            print("wasm wrote:", f.read().strip())

    print("sum(100) =", exports["sum"](store, 100), "with", store.get_fuel(), "fuel left")
    memory = exports["memory"]
    memory.write(store, b"HELLO", 16)
    print("memory:", bytes(memory.read(store, 16, 31)))

    try:
        exports["divide"](store, 1, 0)
    except wasmtime.Trap as trap:
        print(trap.trap_code)
        print(trap)

    store.set_fuel(50)
    try:
        exports["sum"](store, 1000)
    except wasmtime.Trap as trap:
        print(trap.trap_code, "after", [frame.func_name for frame in trap.frames])

    try:
        wasmtime.Module(engine, "(module (func (result i32)))")
    except Error:
        print("an invalid module is an error")


if __name__ == "__main__":
    main()
