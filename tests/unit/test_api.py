"""The embedding API: wasmtime-py's names and call shapes, checked against wasmtime-py itself.

``same_as_wasmtime`` runs one snippet with wasmtime-py and with wasmjit and asserts that both
return the same value or both raise with the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import wasmtime

import wasmjit
from wasmjit import (
    DecodeError,
    LinkError,
    UnsupportedError,
    ValidationError,
    WasmjitError,
    WasmjitTypeError,
    WatError,
)
from wasmjit.api import COUNTING_TIERS

I32, I64, F32, F64 = (wasmjit.ValType.i32(), wasmjit.ValType.i64(), wasmjit.ValType.f32(),
                      wasmjit.ValType.f64())


def outcome(action: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", value) or ("raised", message)."""
    try:
        return ("ok", action())
    except Exception as err:  # noqa: BLE001 - the comparison is the point
        return ("raised", str(err))


def same_as_wasmtime(snippet: Callable[[Any, Any, Any], Any], engine: wasmjit.Engine,
                     store: wasmjit.Store) -> tuple[str, Any]:
    """Run ``snippet(lib, engine, store)`` on wasmtime-py and on wasmjit; they must agree."""
    ref_engine = wasmtime.Engine()
    expected = outcome(lambda: snippet(wasmtime, ref_engine, wasmtime.Store(ref_engine)))
    got = outcome(lambda: snippet(wasmjit, engine, store))
    assert got == expected
    return got


def instance(store: wasmjit.Store, wat: str, imports: tuple = ()) -> wasmjit.InstanceExports:
    module = wasmjit.Module(store.engine, wat)
    return wasmjit.Instance(store, module, list(imports)).exports(store)


IDENTITY = """(module
  (func (export "i32") (param i32) (result i32) local.get 0)
  (func (export "i64") (param i64) (result i64) local.get 0)
  (func (export "f32") (param f32) (result f32) local.get 0)
  (func (export "f64") (param f64) (result f64) local.get 0))"""


# --- Config, Engine, Store, tiers ------------------------------------------------------------


def test_store_data_and_engine(engine: wasmjit.Engine, tier: str) -> None:
    payload = {"answer": 42}
    assert wasmjit.Store(engine, payload).data() is payload
    assert wasmjit.Store(engine).data() is None
    assert engine.tier == tier
    assert wasmjit.Store().engine.tier == "tiered"  # the default tier


def test_config_tier_accepts_available_tiers(tier: str) -> None:
    config = wasmjit.Config()
    assert config.tier is None
    config.tier = tier
    assert config.tier == tier
    assert wasmjit.Engine(config).tier == tier


@pytest.mark.parametrize("name", ["bogus", "INTERP", ""])
def test_config_tier_rejects_unknown_names(name: str) -> None:
    config = wasmjit.Config()
    with pytest.raises(WasmjitError, match="unknown tier") as info:
        config.tier = name
    assert not isinstance(info.value, UnsupportedError)


def test_environment_selects_the_tier(monkeypatch: pytest.MonkeyPatch, tier: str) -> None:
    monkeypatch.setenv("WASMJIT_TIER", tier)
    store = wasmjit.Store(wasmjit.Engine(wasmjit.Config()))
    assert store.engine.tier == tier
    assert instance(store, IDENTITY)["i32"](store, 7) == 7
    assert {s.tier for s in store.func_stats()} == {"interp" if tier == "tiered" else tier}


def test_config_tier_overrides_the_environment(monkeypatch: pytest.MonkeyPatch, tier: str) -> None:
    monkeypatch.setenv("WASMJIT_TIER", "no-such-tier")
    config = wasmjit.Config()
    config.tier = tier
    assert wasmjit.Engine(config).tier == tier


def test_environment_tier_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMJIT_TIER", "no-such-tier")
    with pytest.raises(WasmjitError, match="unknown tier 'no-such-tier'"):
        wasmjit.Engine(wasmjit.Config())


# --- Modules ---------------------------------------------------------------------------------

MODULE_WAT = """(module $m
  (import "env" "f" (func (param i32 i64) (result f32)))
  (import "env" "mem" (memory 1 5))
  (import "env" "g" (global (mut f64)))
  (import "env" "t" (table 2 externref))
  (func (export "run") (param funcref) (result i32 i64) i32.const 1 i64.const 2)
  (export "memory" (memory 0))
  (global (export "glob") i64 (i64.const 0))
  (table (export "table") 3 10 funcref))"""


def type_name(valtype: Any) -> str:
    # wasmtime-py 50 prints externref as "anyref"; wasmjit prints the wasm 2.0 name.
    return "externref" if str(valtype) == "anyref" else str(valtype)


def describe(ty: Any) -> tuple:
    """An extern type as plain data, the same for wasmtime-py's and wasmjit's type objects."""
    kind = type(ty).__name__
    if kind == "FuncType":
        return (kind, [type_name(t) for t in ty.params], [type_name(t) for t in ty.results])
    if kind == "GlobalType":
        return (kind, type_name(ty.content), ty.mutable)
    if kind == "TableType":
        return (kind, type_name(ty.element), ty.limits.min, ty.limits.max)
    return (kind, ty.limits.min, ty.limits.max)


def test_module_imports_and_exports_match_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        module = lib.Module(engine, MODULE_WAT)
        return ([(i.module, i.name, describe(i.type)) for i in module.imports],
                [(e.name, describe(e.type)) for e in module.exports])

    _, (imports, exports) = same_as_wasmtime(snippet, engine, store)
    assert imports[0] == ("env", "f", ("FuncType", ["i32", "i64"], ["f32"]))
    assert imports[3] == ("env", "t", ("TableType", "externref", 2, None))
    assert exports[3] == ("table", ("TableType", "funcref", 3, 10))


def test_module_from_text_bytes_and_binary(engine: wasmjit.Engine) -> None:
    binary = wasmjit.wat2wasm(IDENTITY)
    assert binary[:4] == b"\0asm"
    for source in (IDENTITY, IDENTITY.encode(), binary, bytearray(binary)):
        assert [e.name for e in wasmjit.Module(engine, source).exports] == ["i32", "i64", "f32", "f64"]


def test_module_from_file(engine: wasmjit.Engine, tmp_path: Any) -> None:
    (tmp_path / "m.wat").write_text(IDENTITY)
    (tmp_path / "m.wasm").write_bytes(wasmjit.wat2wasm(IDENTITY))
    for name in ("m.wat", "m.wasm"):
        assert len(wasmjit.Module.from_file(engine, tmp_path / name).exports) == 4
    missing = tmp_path / "missing.wasm"
    with pytest.raises(WasmjitError, match="missing.wasm") as info:
        wasmjit.Module.from_file(engine, str(missing))
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(("source", "error", "text"), [
    (b"\0asm\x01\0\0\0\x01", DecodeError, "(at offset 0x9)"),
    (b"\0asm\x02\0\0\0", DecodeError, "unknown binary version (at offset 0x4)"),
    ("(module (func (result i32)))", ValidationError, "type mismatch (in function 0, at offset 0x18)"),
    ("(module (func (i32.foo)))", WatError, "unknown operator"),
])
def test_bad_modules_raise(engine: wasmjit.Engine, source: Any, error: type, text: str) -> None:
    with pytest.raises(error) as info:
        wasmjit.Module(engine, source)
    assert text in str(info.value)
    with pytest.raises(wasmtime.WasmtimeError):  # the reference rejects it too
        wasmtime.Module(wasmtime.Engine(), source)


def test_module_validate(engine: wasmjit.Engine) -> None:
    assert wasmjit.Module.validate(engine, wasmjit.wat2wasm(IDENTITY)) is None
    with pytest.raises(DecodeError) as info:
        wasmjit.Module.validate(engine, b"\0asm\x01\0\0\0\x01")
    assert info.value.offset == 9
    with pytest.raises(ValidationError):
        wasmjit.Module.validate(engine, wasmjit.wat2wasm("(module (func (result i32)))"))


def test_module_rejects_non_wasm_objects(engine: wasmjit.Engine) -> None:
    with pytest.raises(WasmjitTypeError):
        wasmjit.Module(engine, 42)  # type: ignore[arg-type]


def test_simd_is_unsupported(engine: wasmjit.Engine) -> None:
    with pytest.raises(UnsupportedError, match="SIMD is not supported yet"):
        wasmjit.Module(engine, "(module (func (result v128) v128.const i64x2 0 0))")


# --- Instances and exports ---------------------------------------------------------------------


EXPORTS_WAT = """(module
  (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (memory (export "mem") 1)
  (global (export "g") i32 (i32.const 5))
  (table (export "t") 1 funcref))"""


def test_instance_exports_by_name_index_and_iteration(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        exports = lib.Instance(store, lib.Module(engine, EXPORTS_WAT), []).exports(store)
        return (list(exports), len(exports), [type(e).__name__ for e in exports.by_index],
                "mem" in exports, exports.get("nope"), exports["f"](store, 3))

    assert same_as_wasmtime(snippet, engine, store) == (
        "ok", (["f", "mem", "g", "t"], 4, ["Func", "Memory", "Global", "Table"], True, None, 4))
    exports = instance(store, EXPORTS_WAT)
    assert exports.by_index[0] == exports["f"]
    with pytest.raises(KeyError):
        exports["nope"]


def test_instance_imports_in_order(store: wasmjit.Store) -> None:
    calls = []
    log = wasmjit.Func(store, wasmjit.FuncType([I32], []), calls.append)
    mem = wasmjit.Memory(store, wasmjit.MemoryType(wasmjit.Limits(1, None)))
    glob = wasmjit.Global(store, wasmjit.GlobalType(I32, True), 40)
    exports = instance(store, """(module
      (import "a" "log" (func $log (param i32)))
      (import "a" "mem" (memory 1))
      (import "a" "g" (global $g (mut i32)))
      (func (export "run")
        (call $log (global.get $g))
        (i32.store (i32.const 8) (i32.const 0x01020304))
        (global.set $g (i32.const 41))))""", (log, mem, glob))
    exports["run"](store)
    assert calls == [40]
    assert mem.read(store, 8, 12) == bytearray(b"\x04\x03\x02\x01")
    assert glob.value(store) == 41


def test_instance_import_errors(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        module = lib.Module(engine, '(module (import "a" "f" (func)) (import "a" "g" (global i32)))')
        return lib.Instance(store, module, [])

    assert same_as_wasmtime(snippet, engine, store) == ("raised", "expected 2 imports, found 0")
    module = wasmjit.Module(engine, '(module (import "a" "f" (func)))')
    with pytest.raises(WasmjitTypeError):
        wasmjit.Instance(store, module, [lambda: None])
    wrong = wasmjit.Func(store, wasmjit.FuncType([I32], []), lambda x: None)
    with pytest.raises(LinkError, match="incompatible import type for `a::f`"):
        wasmjit.Instance(store, module, [wrong])


# --- Calling functions -------------------------------------------------------------------------


@pytest.mark.parametrize(("export", "value", "expected"), [
    ("i32", 0x7FFFFFFF, 0x7FFFFFFF),
    ("i32", 0xFFFFFFFF, -1),
    ("i32", -(1 << 31), -(1 << 31)),
    ("i64", 0xFFFFFFFFFFFFFFFF, -1),
    ("i64", -(1 << 63), -(1 << 63)),
    ("f32", 0.1, 0.10000000149011612),
    ("f32", 1e300, float("inf")),
    ("f64", 0.1, 0.1),
    ("f64", -0.0, -0.0),
])
def test_value_conversion_matches_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store, export: str,
                                           value: Any, expected: Any) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        result = lib.Instance(store, lib.Module(engine, IDENTITY), []).exports(store)[export](store, value)
        return result, type(result).__name__, str(result)

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (expected, type(expected).__name__,
                                                               str(expected)))


def test_results_none_one_many(store: wasmjit.Store) -> None:
    exports = instance(store, """(module
      (func (export "none"))
      (func (export "one") (result i64) i64.const -3)
      (func (export "many") (result i32 i64 f32 f64)
        i32.const -1 i64.const 5 f32.const 1.5 f64.const -2.25))""")
    assert exports["none"](store) is None
    assert exports["one"](store) == -3
    assert exports["many"](store) == [-1, 5, 1.5, -2.25]


@pytest.mark.parametrize(("args", "message"), [
    ((), "too few parameters provided: given 0, expected 2"),
    ((1,), "too few parameters provided: given 1, expected 2"),
    ((1, 2, 3), "too many parameters provided: given 3, expected 2"),
    ((1.5, 2), "don't know how to convert 1.5 to i32"),
    (("x", 2), "don't know how to convert 'x' to i32"),
    ((None, 2), "don't know how to convert None to i32"),
])
def test_bad_arguments_match_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store, args: tuple,
                                      message: str) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        module = lib.Module(engine, '(module (func (export "f") (param i32 i32)))')
        return lib.Instance(store, module, []).exports(store)["f"](store, *args)

    assert same_as_wasmtime(snippet, engine, store) == ("raised", message)
    with pytest.raises(WasmjitTypeError) as info:
        snippet(wasmjit, store.engine, store)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(("export", "value"), [
    ("i32", 1 << 32), ("i32", -(1 << 31) - 1), ("i64", 1 << 64), ("i32", True), ("f64", "1.0"),
    ("f32", [1.0]), ("i64", wasmjit.Val.i32(1)),
])
def test_wrong_value_types_raise_type_errors(store: wasmjit.Store, export: str, value: Any) -> None:
    with pytest.raises(WasmjitTypeError):
        instance(store, IDENTITY)[export](store, value)


def test_val_arguments(store: wasmjit.Store) -> None:
    exports = instance(store, IDENTITY)
    assert exports["i32"](store, wasmjit.Val.i32(0xFFFFFFFF)) == -1
    assert exports["i64"](store, wasmjit.Val.i64(-7)) == -7
    assert exports["f32"](store, wasmjit.Val.f32(0.1)) == 0.10000000149011612
    assert exports["f64"](store, wasmjit.Val.f64(2.5)) == 2.5
    assert wasmjit.Val.i32(5).type == I32
    assert wasmjit.Val.i32(5) == wasmjit.Val.i32(5) != wasmjit.Val.i64(5)


# --- Host functions ----------------------------------------------------------------------------


def test_host_function_sees_signed_values_and_returns_many(store: wasmjit.Store) -> None:
    seen = []

    def host(a: int, b: int, c: float, d: float) -> tuple:
        seen.append((a, b, c, d))
        return (a, b, c, d)

    ty = wasmjit.FuncType([I32, I64, F32, F64], [I32, I64, F32, F64])
    func = wasmjit.Func(store, ty, host)
    exports = instance(store, """(module
      (import "h" "f" (func $f (param i32 i64 f32 f64) (result i32 i64 f32 f64)))
      (func (export "go") (result i32 i64 f32 f64)
        (call $f (i32.const -1) (i64.const -2) (f32.const 0.1) (f64.const 0.1))))""", (func,))
    assert exports["go"](store) == [-1, -2, 0.10000000149011612, 0.1]
    assert seen == [(-1, -2, 0.10000000149011612, 0.1)]
    assert func(store, 0xFFFFFFFF, 3, 0.5, 0.25) == [-1, 3, 0.5, 0.25]
    assert func.type(store).params == [I32, I64, F32, F64]


def test_host_function_with_no_results_returns_none(store: wasmjit.Store) -> None:
    calls = []
    func = wasmjit.Func(store, wasmjit.FuncType([I32], []), calls.append)
    assert func(store, 3) is None
    assert calls == [3]


@pytest.mark.parametrize(("results", "returned"), [
    ([I32], None), ([I32], 1.5), ([I32], "1"), ([I32], [1, 2]), ([I32, I32], 1), ([I32, I32], (1, 2, 3)),
    ([], 5), ([F64], "x"),
])
def test_host_function_returning_wrong_values(store: wasmjit.Store, results: list, returned: Any) -> None:
    func = wasmjit.Func(store, wasmjit.FuncType([], results), lambda: returned)
    exports = instance(store, f"""(module
      (import "h" "f" (func $f (result {' '.join(map(str, results))})))
      (func (export "go") (call $f) {'drop ' * len(results)}))""", (func,))
    with pytest.raises(WasmjitTypeError) as info:
        exports["go"](store)
    assert isinstance(info.value, TypeError)
    with pytest.raises(WasmjitTypeError):
        func(store)


CALLER_WAT = """(module
  (import "h" "f" (func $f (param i32) (result i32)))
  (memory (export "memory") 1)
  (global (export "g") (mut i32) (i32.const 4))
  (table (export "t") 1 externref)
  (func (export "dbl") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "go") (param i32) (result i32) (call $f (local.get 0))))"""


def test_access_caller(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        seen = []

        def host(caller: Any, x: int) -> int:
            caller["memory"].write(caller, b"ok", 0)
            glob = caller["g"]
            glob.set_value(caller, glob.value(caller) + 1)
            caller["t"].set(caller, 0, "obj")
            seen.append((caller.get("nope"), type(caller.get("memory")).__name__))
            try:
                caller["nope"]
            except KeyError:
                seen.append("KeyError")
            return caller["dbl"](caller, x)  # the caller works as a store, as in wasmtime-py

        ty = lib.FuncType([lib.ValType.i32()], [lib.ValType.i32()])
        host_func = lib.Func(store, ty, host, access_caller=True)
        exports = lib.Instance(store, lib.Module(engine, CALLER_WAT), [host_func]).exports(store)
        return (exports["go"](store, 21), exports["memory"].read(store, 0, 2), exports["g"].value(store),
                exports["t"].get(store, 0), seen)

    assert same_as_wasmtime(snippet, engine, store) == (
        "ok", (42, bytearray(b"ok"), 5, "obj", [(None, "Memory"), "KeyError"]))


# --- References --------------------------------------------------------------------------------

REFS_WAT = """(module
  (table $ft (export "ft") 2 funcref)
  (table (export "et") 2 externref)
  (global (export "eg") (mut externref) (ref.null extern))
  (func $id (export "id") (param externref) (result externref) local.get 0)
  (func (export "fid") (param funcref) (result funcref) local.get 0)
  (func (export "is_null") (param funcref) (result i32) (ref.is_null (local.get 0)))
  (func (export "getf") (param i32) (result funcref) (table.get $ft (local.get 0)))
  (elem (table $ft) (i32.const 0) func $id))"""


@pytest.mark.parametrize("value", [object(), None, 5, "text", [1, 2]])
def test_externref_round_trip_keeps_identity(store: wasmjit.Store, value: Any) -> None:
    exports = instance(store, REFS_WAT)
    assert exports["id"](store, value) is value
    assert exports["id"](store, wasmjit.Val.externref(value)) is value
    exports["et"].set(store, 1, value)
    assert exports["et"].get(store, 1) is value
    exports["eg"].set_value(store, value)
    assert exports["eg"].value(store) is value


def test_funcref_round_trip(store: wasmjit.Store) -> None:
    exports = instance(store, REFS_WAT)
    from_table = exports["getf"](store, 0)
    assert isinstance(from_table, wasmjit.Func)
    assert from_table == exports["id"]
    assert from_table(store, "x") == "x"
    assert exports["getf"](store, 1) is None
    assert exports["fid"](store, from_table)(store, 3) == 3
    assert exports["fid"](store, None) is None
    assert exports["is_null"](store, None) == 1
    host = wasmjit.Func(store, wasmjit.FuncType([], []), lambda: None)
    assert exports["is_null"](store, host) == 0
    assert exports["fid"](store, host) == host
    with pytest.raises(WasmjitTypeError):
        exports["fid"](store, 3)
    other = wasmjit.Store(store.engine)
    foreign = wasmjit.Func(other, wasmjit.FuncType([], []), lambda: None)
    with pytest.raises(WasmjitError, match="different store"):
        exports["fid"](store, foreign)


# --- Memory ------------------------------------------------------------------------------------

MEMORY_WAT = """(module
  (memory (export "mem") 1 2)
  (data (i32.const 10) "wasm")
  (func (export "size") (result i32) memory.size)
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))"""


def test_memory_read_write_grow_match_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        exports = lib.Instance(store, lib.Module(engine, MEMORY_WAT), []).exports(store)
        mem = exports["mem"]
        out: list[Any] = [mem.size(store), mem.data_len(store), mem.read(store, 10, 14)]
        out += [mem.write(store, b"xyz", 65533), mem.read(store, 65530, 70000), mem.read(store, -3),
                mem.read(store, 5, 2), mem.write(store, b"!", -1), mem.read(store, start=-2)]
        for action in (lambda: mem.write(store, b"abcd", 65533), lambda: mem.write(store, b"a", 65536),
                       lambda: mem.grow(store, 2), lambda: mem.grow(store, -1)):
            out.append(outcome(action))
        out += [mem.grow(store, 1), mem.size(store), exports["size"](store), mem.data_len(store),
                exports["load"](store, 12), mem.get_buffer_ptr(store, 2, 10)[:], mem.type(store).limits.max]
        mem.data_ptr(store)[11] = ord("A")
        out += [exports["load"](store, 11), mem.page_size(store)]
        return out

    assert same_as_wasmtime(snippet, engine, store) == ("ok", [
        1, 65536, bytearray(b"wasm"),
        3, bytearray(b"\0\0\0xyz"), bytearray(b"xyz"), bytearray(), 1, bytearray(b"y!"),
        ("raised", "index out of range"), ("raised", "index out of range"),
        ("raised", "failed to grow memory by `2`"), ("raised", "cannot grow by negative amount"),
        1, 2, 2, 131072, ord("s"), [ord("w"), ord("a")], 2, ord("A"), 65536])


def test_memory_errors_are_index_and_wasmjit_errors(store: wasmjit.Store) -> None:
    mem = wasmjit.Memory(store, wasmjit.MemoryType(wasmjit.Limits(1, 1)))
    assert mem.type(store).limits == wasmjit.Limits(1, 1)
    with pytest.raises(IndexError):
        mem.write(store, b"ab", 65535)
    with pytest.raises(WasmjitError, match="failed to grow memory"):
        mem.grow(store, 1)
    assert mem.grow(store, 0) == 1
    with pytest.raises(WasmjitError):
        wasmjit.Memory(store, wasmjit.MemoryType(wasmjit.Limits(2, 1)))


# --- Globals and tables ------------------------------------------------------------------------


def test_globals(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        exports = lib.Instance(store, lib.Module(engine, """(module
          (global $m (export "m") (mut i32) (i32.const -5))
          (global (export "c") i64 (i64.const -1))
          (global (export "f") (mut f32) (f32.const 0.5))
          (func (export "get") (result i32) global.get $m))"""), []).exports(store)
        m, c, f = exports["m"], exports["c"], exports["f"]
        out = [m.value(store), c.value(store), f.value(store), str(c.type(store).content),
               c.type(store).mutable, m.type(store).mutable]
        m.set_value(store, 0xFFFFFFFF)
        f.set_value(store, 0.1)
        out += [m.value(store), exports["get"](store), f.value(store), outcome(lambda: c.set_value(store, 1))]
        return out

    assert same_as_wasmtime(snippet, engine, store) == (
        "ok", [-5, -1, 0.5, "i64", False, True, -1, -1, 0.10000000149011612,
               ("raised", "immutable global cannot be set")])


def test_host_global_imported_into_wasm(store: wasmjit.Store) -> None:
    glob = wasmjit.Global(store, wasmjit.GlobalType(I64, True), -2)
    exports = instance(store, """(module (import "h" "g" (global $g (mut i64)))
      (func (export "inc") (global.set $g (i64.add (global.get $g) (i64.const 1)))))""", (glob,))
    exports["inc"](store)
    assert glob.value(store) == -1
    with pytest.raises(WasmjitTypeError):
        glob.set_value(store, 1.5)


def test_tables(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        exports = lib.Instance(store, lib.Module(engine, """(module
          (table (export "t") 2 4 funcref)
          (table (export "e") 1 externref)
          (func $f (export "f") (result i32) i32.const 7)
          (elem (i32.const 1) $f))"""), []).exports(store)
        t, e = exports["t"], exports["e"]
        out = [t.size(store), t.get(store, 1)(store), t.get(store, 2), t.get(store, 100),
               t.type(store).limits.min, t.type(store).limits.max, str(t.type(store).element)]
        t.set(store, 0, exports["f"])
        out += [t.get(store, 0)(store), t.grow(store, 2, exports["f"]), t.size(store), t.get(store, 3)(store),
                outcome(lambda: t.grow(store, 1, None))]
        e.set(store, 0, "x")
        out += [e.get(store, 0), e.grow(store, 2, 42), e.get(store, 2)]
        return out

    assert same_as_wasmtime(snippet, engine, store) == (
        "ok", [2, 7, None, None, 2, 4, "funcref", 7, 2, 4, 7, ("raised", "failed to grow table by `1`"),
               "x", 1, 42])


def test_table_null_and_out_of_range(store: wasmjit.Store) -> None:
    table = wasmjit.Table(store, wasmjit.TableType(wasmjit.ValType.funcref(), wasmjit.Limits(2, None)), None)
    assert table.get(store, 0) is None  # wasmtime-py 50 returns a null Val here; None is what it documents
    assert table.get(store, 2) is None
    assert table.get(store, -1) is None
    with pytest.raises(WasmjitError):
        table.set(store, 2, None)
    with pytest.raises(WasmjitTypeError):
        table.set(store, 0, "not a function")
    with pytest.raises(WasmjitError, match="failed to grow table by `-1`"):
        table.grow(store, -1, None)
    assert table.size(store) == 2
    exports = instance(store, """(module (import "h" "t" (table 2 funcref))
      (func (export "size") (result i32) table.size 0))""", (table,))
    table.grow(store, 3, None)
    assert exports["size"](store) == 5


# --- Linker ------------------------------------------------------------------------------------

LINK_WAT = """(module
  (import "env" "f" (func $f (param i32) (result i32)))
  (import "env" "g" (global $g i32))
  (func (export "run") (result i32) (call $f (global.get $g))))"""


def test_linker_define_and_instantiate(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    linker.define_func("env", "f", wasmjit.FuncType([I32], [I32]), lambda x: x * 10)
    linker.define(store, "env", "g", wasmjit.Global(store, wasmjit.GlobalType(I32, False), 4))
    exports = linker.instantiate(store, wasmjit.Module(store.engine, LINK_WAT)).exports(store)
    assert exports["run"](store) == 40
    assert isinstance(linker.get(store, "env", "f"), wasmjit.Func)


def test_linker_define_instance(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    provider = linker.instantiate(store, wasmjit.Module(store.engine, """(module
      (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (global (export "g") i32 (i32.const 8)))"""))
    linker.define_instance(store, "env", provider)
    assert linker.instantiate(store, wasmjit.Module(store.engine, LINK_WAT)).exports(store)["run"](store) == 9


def test_linker_errors_match_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, store: Any) -> Any:
        i32 = lib.ValType.i32()
        linker, module = lib.Linker(engine), lib.Module(engine, LINK_WAT)
        out = [outcome(lambda: linker.instantiate(store, module))]
        linker.define_func("env", "f", lib.FuncType([i32], [i32]), lambda x: x)
        out.append(outcome(lambda: linker.instantiate(store, module)))
        out.append(outcome(lambda: linker.define_func("env", "f", lib.FuncType([], []), lambda: None)))
        out.append(outcome(lambda: linker.define(store, "env", "f", lib.Func(store, lib.FuncType([], []),
                                                                            lambda: None))))
        return out

    assert same_as_wasmtime(snippet, engine, store) == ("ok", [
        ("raised", "unknown import: `env::f` has not been defined"),
        ("raised", "unknown import: `env::g` has not been defined"),
        ("raised", "import of `env::f` defined twice"),
        ("raised", "import of `env::f` defined twice")])
    linker = wasmjit.Linker(store.engine)
    with pytest.raises(LinkError, match="`env::f`"):
        linker.instantiate(store, wasmjit.Module(store.engine, LINK_WAT))


def test_linker_incompatible_import(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    linker.define_func("env", "f", wasmjit.FuncType([I32], [I32]), lambda x: x)
    linker.define(store, "env", "g", wasmjit.Global(store, wasmjit.GlobalType(I64, False), 4))
    with pytest.raises(LinkError, match="incompatible import type for `env::g`"):
        linker.instantiate(store, wasmjit.Module(store.engine, LINK_WAT))


def test_linker_shadowing_replaces_functions_already_made(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    linker.allow_shadowing = True
    linker.define_func("env", "f", wasmjit.FuncType([I32], [I32]), lambda x: x + 1)
    linker.define(store, "env", "g", wasmjit.Global(store, wasmjit.GlobalType(I32, False), 4))
    module = wasmjit.Module(store.engine, LINK_WAT)
    assert linker.instantiate(store, module).exports(store)["run"](store) == 5
    linker.define_func("env", "f", wasmjit.FuncType([I32], [I32]), lambda x: x + 2)
    assert linker.instantiate(store, module).exports(store)["run"](store) == 6
    linker.define_func("env", "f", wasmjit.FuncType([], []), lambda: None)
    with pytest.raises(LinkError, match="incompatible import type for `env::f`"):
        linker.instantiate(store, module)


# --- Counters through the API ------------------------------------------------------------------


def test_func_stats_per_store_and_instance(store: wasmjit.Store, tier: str) -> None:
    wat = """(module $counted
      (func $twice (export "twice") (param i32) (result i32) (call $inc (call $inc (local.get 0))))
      (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func $unused))"""
    module = wasmjit.Module(store.engine, wat)
    first = wasmjit.Instance(store, module, [])
    second = wasmjit.Instance(store, module, [])
    assert first.exports(store)["twice"](store, 1) == 3
    assert first.exports(store)["twice"](store, 5) == 7
    counted = tier in COUNTING_TIERS  # native code does not count entries
    stats = first.func_stats(store)
    shown = "interp" if tier == "tiered" else tier  # not hot yet: still interpreted
    assert [(s.module, s.index, s.name, s.entries, s.back_edges, s.tier) for s in stats[:2]] == [
        ("counted", 0, "twice", 2 if counted else 0, 0, shown),
        ("counted", 1, "inc", 4 if counted else 0, 0, shown)]
    assert all((s.code_bytes > 0 and s.compile_ms > 0) == (tier in ("jit", "unicorn")) for s in stats)
    expected = stats[:2]
    assert [(s.index, s.name, s.entries) for s in second.func_stats(store)] == [
        (0, "twice", 0), (1, "inc", 0), (2, "unused", 0)]
    assert len(store.func_stats()) == 6
    assert store.func_stats()[:2] == expected
