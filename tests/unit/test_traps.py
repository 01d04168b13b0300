"""Traps: every kind with its TrapCode and spec message, wasm backtraces (checked against
wasmtime-py's frames and text), host exceptions, and a store that stays usable afterwards."""

from __future__ import annotations

from typing import Any

import pytest
import wasmtime

import wasmjit
from wasmjit import Trap, TrapCode, WasmjitError

I32 = wasmjit.ValType.i32()

TRAPS_WAT = """(module $traps
  (type $v_i (func (result i32)))
  (type $i_i (func (param i32) (result i32)))
  (memory 1)
  (table $tab 2 funcref)
  (elem (i32.const 0) $answer)
  (func $answer (result i32) i32.const 42)
  (func $unreachable (export "unreachable") unreachable)
  (func $div (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func $div_by_zero (export "div_by_zero") (result i32) (call $div (i32.const 1) (i32.const 0)))
  (func $div_overflow (export "div_overflow") (result i32) (call $div (i32.const 0x80000000) (i32.const -1)))
  (func $rem_by_zero (export "rem_by_zero") (result i64) (i64.rem_u (i64.const 1) (i64.const 0)))
  (func $trunc_nan (export "trunc_nan") (result i32) (i32.trunc_f32_s (f32.const nan)))
  (func $trunc_overflow (export "trunc_overflow") (result i64) (i64.trunc_f64_u (f64.const -1)))
  (func $load_oob (export "load_oob") (result i32) (i32.load offset=4 (i32.const 65532)))
  (func $store_oob (export "store_oob") (i64.store (i32.const 65530) (i64.const 0)))
  (func $fill_oob (export "fill_oob") (memory.fill (i32.const 65000) (i32.const 0) (i32.const 1000)))
  (func $table_oob (export "table_oob") (result funcref) (table.get $tab (i32.const 2)))
  (func $table_fill_oob (export "table_fill_oob")
    (table.fill $tab (i32.const 1) (ref.null func) (i32.const 2)))
  (func $undefined_element (export "undefined_element") (result i32)
    (call_indirect (type $v_i) (i32.const 2)))
  (func $uninitialized_element (export "uninitialized_element") (result i32)
    (call_indirect (type $v_i) (i32.const 1)))
  (func $type_mismatch (export "type_mismatch") (result i32)
    (call_indirect (type $i_i) (i32.const 7) (i32.const 0)))
  (func $recurse (export "recurse") (param i32) (result i32)
    (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func $ping (export "ping") (param i32) (result i32) (call $pong (local.get 0)))
  (func $pong (param i32) (result i32) (call $ping (local.get 0)))
  (func $ok (export "ok") (result i32) (call_indirect (type $v_i) (i32.const 0))))"""

# export, TrapCode, the spec's message, wasmtime-py's TrapCode name, the backtrace's function names
TRAPS = [
    ("unreachable", TrapCode.UNREACHABLE, "unreachable", "UNREACHABLE", ["unreachable"]),
    ("div_by_zero", TrapCode.INTEGER_DIVISION_BY_ZERO, "integer divide by zero",
     "INTEGER_DIVISION_BY_ZERO", ["div", "div_by_zero"]),
    ("div_overflow", TrapCode.INTEGER_OVERFLOW, "integer overflow", "INTEGER_OVERFLOW",
     ["div", "div_overflow"]),
    ("rem_by_zero", TrapCode.INTEGER_DIVISION_BY_ZERO, "integer divide by zero",
     "INTEGER_DIVISION_BY_ZERO", ["rem_by_zero"]),
    ("trunc_nan", TrapCode.BAD_CONVERSION_TO_INTEGER, "invalid conversion to integer",
     "BAD_CONVERSION_TO_INTEGER", ["trunc_nan"]),
    ("trunc_overflow", TrapCode.INTEGER_OVERFLOW, "integer overflow", "INTEGER_OVERFLOW", ["trunc_overflow"]),
    ("load_oob", TrapCode.MEMORY_OUT_OF_BOUNDS, "out of bounds memory access", "MEMORY_OUT_OF_BOUNDS",
     ["load_oob"]),
    ("store_oob", TrapCode.MEMORY_OUT_OF_BOUNDS, "out of bounds memory access", "MEMORY_OUT_OF_BOUNDS",
     ["store_oob"]),
    ("fill_oob", TrapCode.MEMORY_OUT_OF_BOUNDS, "out of bounds memory access", "MEMORY_OUT_OF_BOUNDS",
     ["fill_oob"]),
    ("table_oob", TrapCode.TABLE_OUT_OF_BOUNDS, "out of bounds table access", "TABLE_OUT_OF_BOUNDS",
     ["table_oob"]),
    ("table_fill_oob", TrapCode.TABLE_OUT_OF_BOUNDS, "out of bounds table access", "TABLE_OUT_OF_BOUNDS",
     ["table_fill_oob"]),
    # wasmtime reports this one as TABLE_OUT_OF_BOUNDS; the spec tests call it "undefined element"
    ("undefined_element", TrapCode.UNDEFINED_ELEMENT, "undefined element", "TABLE_OUT_OF_BOUNDS",
     ["undefined_element"]),
    ("uninitialized_element", TrapCode.INDIRECT_CALL_TO_NULL, "uninitialized element",
     "INDIRECT_CALL_TO_NULL", ["uninitialized_element"]),
    ("type_mismatch", TrapCode.BAD_SIGNATURE, "indirect call type mismatch", "BAD_SIGNATURE",
     ["type_mismatch"]),
]


def trap_of(store: Any, exports: Any, name: str, *args: Any) -> Any:
    with pytest.raises((Trap, wasmtime.Trap)) as info:
        exports[name](store, *args)
    return info.value


def frames(trap: Any) -> list[tuple]:
    return [(f.func_index, f.func_name, f.module_name, f.func_offset, f.module_offset) for f in trap.frames]


@pytest.fixture
def traps(store: wasmjit.Store) -> wasmjit.InstanceExports:
    return wasmjit.Instance(store, wasmjit.Module(store.engine, TRAPS_WAT), []).exports(store)


@pytest.fixture(scope="module")
def reference() -> tuple[wasmtime.Store, wasmtime.InstanceExports]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    return store, wasmtime.Instance(store, wasmtime.Module(engine, TRAPS_WAT), []).exports(store)


@pytest.mark.parametrize(("export", "code", "reason", "wasmtime_code", "names"), TRAPS)
def test_trap_kinds_and_backtraces(store: wasmjit.Store, traps: Any, reference: Any, export: str,
                                   code: TrapCode, reason: str, wasmtime_code: str, names: list) -> None:
    trap = trap_of(store, traps, export)
    assert isinstance(trap, WasmjitError)
    assert (trap.trap_code, trap.reason, code.message) == (code, reason, reason)
    assert [f.func_name for f in trap.frames] == names
    assert {f.module_name for f in trap.frames} == {"traps"}
    assert str(trap).endswith(f"\n\nCaused by:\n    wasm trap: {code.wasmtime_text}\n")
    assert trap.message == str(trap)

    expected = trap_of(*reference, export)
    assert expected.trap_code.name == wasmtime_code
    assert frames(trap) == frames(expected)  # indices, names and both offsets agree exactly
    if export in ("load_oob", "store_oob"):
        # wasmtime adds the faulting address and memory size as a cause of a load's or store's
        # trap ("0: memory fault at wasm address 0x10000 in linear memory of size 0x10000"),
        # which wasmjit does not report.
        assert str(trap).split("Caused by:")[0] == str(expected).split("Caused by:")[0]
    else:
        assert str(trap) == str(expected)


def test_frames_of_a_module_without_names(store: wasmjit.Store) -> None:
    wat = """(module (func)
      (func (export "f") (param i32) (result i32) (i32.rem_s (i32.const 1) (local.get 0))))"""
    exports = wasmjit.Instance(store, wasmjit.Module(store.engine, wat), []).exports(store)
    trap = trap_of(store, exports, "f", 0)
    assert [(f.func_index, f.func_name, f.module_name) for f in trap.frames] == [(1, None, None)]
    engine = wasmtime.Engine()
    ref_store = wasmtime.Store(engine)
    ref_exports = wasmtime.Instance(ref_store, wasmtime.Module(engine, wat), []).exports(ref_store)
    expected = trap_of(ref_store, ref_exports, "f", 0)
    assert frames(trap) == frames(expected)
    assert str(trap) == str(expected) == (
        "error while executing at wasm backtrace:\n"
        f"    0: {trap.frames[0].module_offset:>#8x} - <unknown>!<wasm function 1>\n"
        "\nCaused by:\n    wasm trap: integer divide by zero\n")


@pytest.mark.parametrize(("export", "names"), [("recurse", ["recurse"]), ("ping", ["pong", "ping"])])
def test_call_stack_exhausted(store: wasmjit.Store, traps: Any, export: str, names: list) -> None:
    depth = store.engine.config.max_call_depth
    for _ in range(2):  # the depth resets after a trap: the second overflow is the same
        trap = trap_of(store, traps, export, 0)
        assert (trap.trap_code, trap.reason) == (TrapCode.STACK_OVERFLOW, "call stack exhausted")
        assert len(trap.frames) == depth
        assert [f.func_name for f in trap.frames[:4]] == (names * 4)[:4]
        assert traps["ok"](store) == 42


def test_call_depth_limit_is_configurable(tier: str) -> None:
    config = wasmjit.Config()
    config.tier = tier
    config.max_call_depth = 100
    store = wasmjit.Store(wasmjit.Engine(config))
    exports = wasmjit.Instance(store, wasmjit.Module(store.engine, TRAPS_WAT), []).exports(store)
    trap = trap_of(store, exports, "recurse", 0)
    assert trap.trap_code == TrapCode.STACK_OVERFLOW
    assert len(trap.frames) == 100


REENTER_WAT = """(module $m
  (import "h" "f" (func $host (param i32) (result i32)))
  (func $outer (export "outer") (param i32) (result i32) (call $host (local.get 0)))
  (func $inner (export "inner") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0))))"""


def reenter(lib: Any, store: Any, engine: Any, host: Any) -> Any:
    """REENTER_WAT instantiated with ``host(exports, x)`` as its import."""
    box: dict[str, Any] = {}
    func = lib.Func(store, lib.FuncType([lib.ValType.i32()], [lib.ValType.i32()]),
                    lambda x: host(box["exports"], x))
    box["exports"] = lib.Instance(store, lib.Module(engine, REENTER_WAT), [func]).exports(store)
    return box["exports"]


def test_trap_through_a_host_function_keeps_every_wasm_frame(store: wasmjit.Store) -> None:
    exports = reenter(wasmjit, store, store.engine, lambda ex, x: ex["inner"](store, x))
    assert exports["outer"](store, 1) == 1
    trap = trap_of(store, exports, "outer", 0)
    engine = wasmtime.Engine()
    ref_store = wasmtime.Store(engine)
    ref = reenter(wasmtime, ref_store, engine, lambda ex, x: ex["inner"](ref_store, x))
    expected = trap_of(ref_store, ref, "outer", 0)
    assert [f.func_name for f in trap.frames] == ["inner", "outer"]
    assert frames(trap) == frames(expected)
    assert str(trap) == str(expected)


def test_recursion_through_a_host_function_exhausts_the_stack(store: wasmjit.Store) -> None:
    exports = reenter(wasmjit, store, store.engine, lambda ex, x: ex["outer"](store, x + 1))
    trap = trap_of(store, exports, "outer", 0)
    assert trap.trap_code == TrapCode.STACK_OVERFLOW
    assert {f.func_name for f in trap.frames} == {"outer"}
    assert exports["inner"](store, 1) == 1


def test_trap_raised_by_a_host_function_reaches_the_caller_unchanged(store: wasmjit.Store) -> None:
    """As in wasmtime-py: the very object, without wasm frames (also when raised again)."""
    raised = Trap("custom failure")

    def host(exports: Any, x: int) -> int:
        raise raised

    exports = reenter(wasmjit, store, store.engine, host)
    for _ in range(3):
        trap = trap_of(store, exports, "outer", 0)
        assert trap is raised
        assert (trap.trap_code, trap.reason, trap.frames, str(trap)) == (None, "custom failure", [],
                                                                         "custom failure")
    ref_store = wasmtime.Store()
    ref_raised = wasmtime.Trap("custom failure")
    ref = reenter(wasmtime, ref_store, ref_store.engine, lambda ex, x: (_ for _ in ()).throw(ref_raised))
    expected = trap_of(ref_store, ref, "outer", 0)
    assert expected is ref_raised
    assert (expected.frames, str(expected)) == ([], str(trap))


@pytest.mark.parametrize("error", [ValueError("bad value"), KeyError("k"), ZeroDivisionError()])
def test_python_exception_in_a_host_function_propagates_unchanged(store: wasmjit.Store,
                                                                  error: Exception) -> None:
    def host(exports: Any, x: int) -> int:
        raise error

    exports = reenter(wasmjit, store, store.engine, host)
    with pytest.raises(type(error)) as info:
        exports["outer"](store, 0)
    assert info.value is error
    assert not hasattr(info.value, "frames")
    assert exports["inner"](store, 2) == 0


def test_store_stays_usable_after_traps(store: wasmjit.Store, traps: Any) -> None:
    for export, code, *_ in TRAPS:
        assert trap_of(store, traps, export).trap_code == code
        assert traps["ok"](store) == 42
    assert trap_of(store, traps, "recurse", 0).trap_code == TrapCode.STACK_OVERFLOW
    other = wasmjit.Instance(store, wasmjit.Module(store.engine, TRAPS_WAT), []).exports(store)
    assert other["ok"](store) == 42


def test_trap_in_start_function(store: wasmjit.Store) -> None:
    module = wasmjit.Module(store.engine, "(module $s (func $boom unreachable) (start $boom))")
    with pytest.raises(Trap) as info:
        wasmjit.Instance(store, module, [])
    assert info.value.trap_code == TrapCode.UNREACHABLE
    assert [(f.func_name, f.module_name) for f in info.value.frames] == [("boom", "s")]


def test_trap_objects() -> None:
    assert str(Trap("plain")) == str(wasmtime.Trap("plain")) == "plain"
    assert str(Trap(TrapCode.INTEGER_OVERFLOW)) == "wasm trap: integer overflow"
    trap = Trap(TrapCode.INTEGER_OVERFLOW)
    assert (trap.trap_code, trap.reason, trap.frames) == (TrapCode.INTEGER_OVERFLOW, "integer overflow", [])
    frame = wasmjit.Frame(3, "run", "mod", 5, 0x1234)
    trap = Trap(TrapCode.UNREACHABLE, [frame, wasmjit.Frame(0, None, None, 1, 7)])
    assert str(trap) == ("error while executing at wasm backtrace:\n"
                         "    0:   0x1234 - mod!run\n"
                         "    1:      0x7 - <unknown>!<wasm function 0>\n"
                         "\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n")
    trap = Trap("host-defined failure", [frame])
    assert str(trap) == ("error while executing at wasm backtrace:\n"
                         "    0:   0x1234 - mod!run\n"
                         "\nCaused by:\n    host-defined failure\n")
    # wasmtime demangles names in the text (a C++ type code too: "f" is "float"), not in frames
    trap = Trap(TrapCode.UNREACHABLE, [wasmjit.Frame(0, "f", None, 1, 7),
                                       wasmjit.Frame(1, "_Z3fooi", None, 1, 9)])
    assert str(trap).splitlines()[1:3] == ["    0:      0x7 - <unknown>!float",
                                           "    1:      0x9 - <unknown>!foo(int)"]
    assert trap.frames[0].func_name == "f"
