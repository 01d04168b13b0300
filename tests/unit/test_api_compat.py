"""The rest of wasmtime-py's core API: Caller, host exceptions through wasm, Linker (modules,
pre-instantiation, unknown imports, defaults), Store close/gc, Config settings, wat2wasm and
the edge cases of Memory/Table/Global, each compared with wasmtime-py where practical.

``same_as_wasmtime`` (from test_api) runs one snippet on both engines and asserts the same
result or the same error message.
"""

from __future__ import annotations

from typing import Any

import pytest
import wasmtime
from test_api import outcome, same_as_wasmtime

import wasmjit
from wasmjit import (
    LinkError,
    Trap,
    TrapCode,
    UnsupportedError,
    ValidationError,
    WasmjitError,
    WasmjitTypeError,
)

I32 = wasmjit.ValType.i32()


def exports_of(lib: Any, store: Any, wat: str, imports: tuple = ()) -> Any:
    return lib.Instance(store, lib.Module(store.engine, wat), list(imports)).exports(store)


# --- Host exceptions through wasm ------------------------------------------------------------

HOST_WAT = """(module $m
  (import "h" "f" (func $f (param i32) (result i32)))
  (func $inner (param i32) (result i32) (call $f (local.get 0)))
  (func $outer (export "run") (param i32) (result i32) (call $inner (local.get 0)))
  (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 7) (local.get 0))))"""


class HostFailure(Exception):
    pass


def host_raising(lib: Any, store: Any, error: BaseException) -> Any:
    """HOST_WAT whose import raises ``error``."""

    def host(x: int) -> int:
        raise error

    ty = lib.FuncType([lib.ValType.i32()], [lib.ValType.i32()])
    return exports_of(lib, store, HOST_WAT, (lib.Func(store, ty, host),))


@pytest.mark.parametrize("make", [
    lambda lib: HostFailure("boom"),
    lambda lib: KeyboardInterrupt(),
    lambda lib: SystemExit(3),
    lambda lib: GeneratorExit(),
    lambda lib: lib.Trap("host trap"),
    lambda lib: ValueError("bad"),
])
def test_host_exception_reaches_the_caller_unchanged(store: wasmjit.Store, make: Any) -> None:
    """The same object, with its message and no wasm frames, as wasmtime-py re-raises it;
    repeatedly (a tiered function compiles while it keeps failing). wasmjit chains nothing to it
    (wasmtime-py leaves its internal WasmtimeError as the ``__context__``)."""
    for lib, st in ((wasmtime, wasmtime.Store()), (wasmjit, store)):
        error = make(lib)
        exports = host_raising(lib, st, error)
        for _ in range(60):
            with pytest.raises(BaseException) as info:
                exports["run"](st, 1)
            assert info.value is error
            assert info.value.__cause__ is None
            if lib is wasmjit:
                assert info.value.__context__ is None
            assert str(info.value) == str(make(lib))
            if isinstance(error, (Trap, wasmtime.Trap)):
                assert info.value.frames == []
        assert exports["div"](st, 7) == 1  # the store is still usable


def test_host_function_called_from_python_raises_unchanged(store: wasmjit.Store) -> None:
    """Called directly, a host function's exception is its own, RecursionError included (from
    wasm, a RecursionError is Python's stack running out under wasm recursion: a stack-overflow
    trap)."""
    for error in (HostFailure("direct"), RecursionError("its own")):
        func = wasmjit.Func(store, wasmjit.FuncType([], []), lambda error=error: (_ for _ in ()).throw(error))
        with pytest.raises(type(error)) as info:
            func(store)
        assert info.value is error
    exports = host_raising(wasmjit, store, RecursionError("under wasm"))
    with pytest.raises(Trap) as trap:
        exports["run"](store, 1)
    assert trap.value.trap_code is TrapCode.STACK_OVERFLOW


def test_host_exception_during_instantiation(store: wasmjit.Store) -> None:
    """A start function calling a raising host function: the instantiation raises it."""
    wat = """(module (import "h" "f" (func $f (param i32) (result i32)))
      (func $s (drop (call $f (i32.const 1)))) (start $s))"""
    for lib, st in ((wasmtime, wasmtime.Store()), (wasmjit, store)):
        error = HostFailure("in start")

        def host(x: int, error: BaseException = error) -> int:
            raise error

        func = lib.Func(st, lib.FuncType([lib.ValType.i32()], [lib.ValType.i32()]), host)
        with pytest.raises(HostFailure) as info:
            lib.Instance(st, lib.Module(st.engine, wat), [func])
        assert info.value is error


def test_host_exception_through_nested_host_calls(store: wasmjit.Store) -> None:
    """wasm -> host A -> wasm -> host B raises: A does not catch, the outer caller gets B's error."""
    error = HostFailure("inner")
    box: dict[str, Any] = {}

    def outer_host(x: int) -> int:
        return box["inner"]["run"](store, x)

    def inner_host(x: int) -> int:
        raise error

    ty = wasmjit.FuncType([I32], [I32])
    box["inner"] = exports_of(wasmjit, store, HOST_WAT, (wasmjit.Func(store, ty, inner_host),))
    outer = exports_of(wasmjit, store, HOST_WAT, (wasmjit.Func(store, ty, outer_host),))
    with pytest.raises(HostFailure) as info:
        outer["run"](store, 1)
    assert info.value is error


def test_wasm_trap_through_a_host_function_keeps_its_frames(store: wasmjit.Store) -> None:
    """A trap of wasm called by a host function is not the host's own exception: like wasmtime,
    its backtrace spans the wasm on both sides of the host function, and str() agrees."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        box: dict[str, Any] = {}
        func = lib.Func(st, lib.FuncType([lib.ValType.i32()], [lib.ValType.i32()]),
                        lambda x: box["ex"]["div"](st, x))
        box["ex"] = lib.Instance(st, lib.Module(engine, HOST_WAT), [func]).exports(st)
        try:
            box["ex"]["run"](st, 0)
        except (Trap, wasmtime.Trap) as trap:
            return [(f.func_name, f.module_offset) for f in trap.frames], str(trap)

    _, (frames, text) = same_as_wasmtime(snippet, store.engine, store)
    assert [name for name, _ in frames] == [None, "inner", "outer"]
    assert text.endswith("Caused by:\n    wasm trap: integer divide by zero\n")


# --- Caller ----------------------------------------------------------------------------------

CALLER_WAT = """(module
  (import "h" "f" (func $f (param i32) (result i32)))
  (memory (export "memory") 1)
  (global (export "g") (mut i32) (i32.const 4))
  (func (export "dbl") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  (func (export "go") (param i32) (result i32) (call $f (local.get 0))))"""


def test_caller_after_its_call_matches_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """Afterwards ``get`` finds nothing, ``[name]`` is a KeyError and using it as a store is a
    ValueError, as in wasmtime-py; during the call all three work."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        kept, during = [], []

        def host(caller: Any, x: int) -> int:
            kept.append(caller)
            if caller.get("g") is None:  # called from Python: there is no calling instance
                during.append(None)
            else:
                during.append((type(caller.get("memory")).__name__, caller["g"].value(caller),
                               caller["dbl"](caller, x)))
            return x

        func = lib.Func(st, lib.FuncType([lib.ValType.i32()], [lib.ValType.i32()]), host, access_caller=True)
        exports = lib.Instance(st, lib.Module(engine, CALLER_WAT), [func]).exports(st)
        result = exports["go"](st, 9)
        caller = kept[0]
        after = [outcome(lambda: caller.get("memory")), outcome(lambda: caller["memory"]),
                 outcome(lambda: exports["dbl"](caller, 1)), outcome(lambda: exports["memory"].size(caller))]
        return result, after, func(st, 5), kept[1].get("memory"), during

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (
        9, [("ok", None), ("raised", "'failed to find export memory'"),
            ("raised", "caller is no longer valid"), ("raised", "caller is no longer valid")],
        5, None, [("Memory", 4, 18), None]))


def test_stale_caller_raises_value_and_wasmjit_errors(store: wasmjit.Store) -> None:
    kept = []
    func = wasmjit.Func(store, wasmjit.FuncType([I32], [I32]), lambda c, x: kept.append(c) or x,
                        access_caller=True)
    assert exports_of(wasmjit, store, CALLER_WAT, (func,))["go"](store, 3) == 3
    with pytest.raises(ValueError, match="caller is no longer valid") as info:
        func(kept[0], 1)
    assert isinstance(info.value, WasmjitError)
    with pytest.raises(KeyError):
        kept[0]["memory"]


def test_caller_sees_the_calling_instance_not_the_defining_one(store: wasmjit.Store) -> None:
    """One host function imported by two instances: each call sees its own caller's exports."""
    seen = []
    func = wasmjit.Func(store, wasmjit.FuncType([I32], [I32]),
                        lambda c, x: seen.append(c["g"].value(c)) or x, access_caller=True)
    first = exports_of(wasmjit, store, CALLER_WAT, (func,))
    second = exports_of(wasmjit, store, CALLER_WAT, (func,))
    second["g"].set_value(store, 40)
    first["go"](store, 1)
    second["go"](store, 1)
    assert seen == [4, 40]


# --- Linker ----------------------------------------------------------------------------------

COUNTER_WAT = """(module
  (global $n (mut i32) (i32.const 0))
  (memory (export "memory") 1)
  (func (export "inc") (result i32) (global.set $n (i32.add (global.get $n) (i32.const 1))) (global.get $n))
  (func (export "") (result i32) i32.const 77))"""
USER_WAT = """(module (import "counter" "inc" (func $inc (result i32)))
  (func (export "twice") (result i32) (drop (call $inc)) (call $inc)))"""
COMMAND_WAT = """(module (import "h" "log" (func $log (param i32)))
  (global $n (mut i32) (i32.const 0))
  (memory (export "memory") 1)
  (func (export "_start") (global.set $n (i32.const 5)) (call $log (global.get $n)))
  (func (export "bump") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1))) (call $log (global.get $n)) (global.get $n)))"""


def test_define_module_reactor_is_instantiated_once(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """A module without ``_start`` is instantiated when defined: its state is shared by every
    module linked against it; "" is its default export."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        linker = lib.Linker(engine)
        linker.define_module(st, "counter", lib.Module(engine, COUNTER_WAT))
        user = lib.Module(engine, USER_WAT)
        runs = [linker.instantiate(st, user).exports(st)["twice"](st) for _ in range(2)]
        return (runs, linker.get(st, "counter", "inc")(st),
                type(linker.get(st, "counter", "memory")).__name__,
                linker.get_default(st, "counter")(st),
                outcome(lambda: linker.define_module(st, "counter", lib.Module(engine, COUNTER_WAT))),
                outcome(lambda: linker.define_module(st, "x", 5)))

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (
        [2, 4], 5, "Memory", 77, ("raised", "import of `counter::memory` defined twice"),
        ("raised", "expected a `Module`")))


def test_define_module_command_runs_each_call_in_a_new_instance(engine: wasmjit.Engine,
                                                                store: wasmjit.Store) -> None:
    """A module exporting ``_start``: every call of one of its functions gets a fresh instance
    (so state does not carry over and ``_start`` is not run first); its default is ``_start``."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        logged: list[int] = []
        linker = lib.Linker(engine)
        linker.define_func("h", "log", lib.FuncType([lib.ValType.i32()], []), logged.append)
        linker.define_module(st, "cmd", lib.Module(engine, COMMAND_WAT))
        bump = linker.get(st, "cmd", "bump")
        results = [bump(st), bump(st)]
        default = linker.get_default(st, "cmd")
        return (results, default(st), [str(t) for t in default.type(st).params], logged,
                outcome(lambda: linker.get(st, "cmd", "memory")))

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (
        [1, 1], None, [], [1, 1, 5], ("raised", "item not defined in linker")))


@pytest.mark.parametrize(("wat", "message"), [
    ('(module (func (export "_start")) (func (export "_initialize")))',
     "Program cannot be both a Command and a Reactor"),
    ('(module (global (export "_start") i32 (i32.const 0)))', "`_start` must be a function"),
    ('(module (memory (export "_initialize") 1))', "`_initialize` must be a function"),
    ('(module (func (export "_start")) (global (export "data") i32 (i32.const 0)))',
     "command export 'data' is not a function"),
    ('(module (import "zz" "f" (func)) (func (export "g")))', "unknown import: `zz::f` has not been defined"),
    ('(module (import "zz" "f" (func)) (func (export "_start")))',
     "unknown import: `zz::f` has not been defined"),
    ('(module (func (export "_initialize") (param i32)))', "calling the Reactor initialization function\n\n"
     "Caused by:\n    0: type mismatch with parameters\n    1: expected 0 types, found 1\n"),
    ('(module (func (export "_initialize") (result i32 i64) i32.const 0 i64.const 0))',
     "calling the Reactor initialization function\n\n"
     "Caused by:\n    0: type mismatch with results\n    1: expected 0 types, found 2\n"),
])
def test_define_module_errors_match_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store, wat: str,
                                             message: str) -> None:
    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        return lib.Linker(engine).define_module(st, "m", lib.Module(engine, wat))

    assert same_as_wasmtime(snippet, engine, store) == ("raised", message)


def test_define_module_reactor_initialize_runs_once(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    linker.define_module(store, "r", wasmjit.Module(store.engine, """(module
      (global $n (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $n (i32.add (global.get $n) (i32.const 10))))
      (func (export "get") (result i32) (global.get $n)))"""))
    assert linker.get(store, "r", "get")(store) == 10
    linker.get(store, "r", "get")(store)
    assert linker.get(store, "r", "get")(store) == 10


def test_define_module_trap_in_start_propagates(store: wasmjit.Store) -> None:
    module = wasmjit.Module(store.engine, '(module $t (func (export "g")) (func $s unreachable) (start $s))')
    linker = wasmjit.Linker(store.engine)
    with pytest.raises(Trap) as info:
        linker.define_module(store, "tm", module)
    assert info.value.trap_code is TrapCode.UNREACHABLE
    with pytest.raises(WasmjitError, match="item not defined in linker"):
        linker.get(store, "tm", "g")


def test_get_default(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """"" first, then ``_start``, else a function that does nothing."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        linker = lib.Linker(engine)
        both = lib.Module(engine, """(module (func (export "") (result i32) i32.const 3)
                                            (func (export "_start")))""")
        linker.define_instance(st, "both", lib.Instance(st, both, []))
        start = lib.Module(engine, '(module (func (export "_start") (result i32) i32.const 4))')
        linker.define_instance(st, "start", lib.Instance(st, start, []))
        mem = lib.Module(engine, '(module (memory (export "") 1))')
        linker.define_instance(st, "mem", lib.Instance(st, mem, []))
        missing = linker.get_default(st, "missing")
        return (linker.get_default(st, "both")(st), linker.get_default(st, "start")(st), missing(st),
                [str(t) for t in missing.type(st).results], outcome(lambda: linker.get_default(st, "mem")),
                outcome(lambda: linker.define_instance(st, "x", 5)))

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (
        3, 4, None, [], ("raised", "default export in 'mem' is not a function"),
        ("raised", "expected an `Instance`")))


def test_instantiate_pre(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """Imports are resolved once, when pre-instantiating; each instantiate makes a new instance,
    in any store for store-independent definitions; later linker changes do not affect it."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        i32 = lib.ValType.i32()
        linker = lib.Linker(engine)
        linker.allow_shadowing = True
        linker.define_func("env", "f", lib.FuncType([i32], [i32]), lambda x: x * 10)
        module = lib.Module(engine, '''(module (import "env" "f" (func $f (param i32) (result i32)))
          (global $n (mut i32) (i32.const 0))
          (func (export "run") (result i32) (global.set $n (i32.add (global.get $n) (i32.const 1)))
            (call $f (global.get $n))))''')
        pre = linker.instantiate_pre(module)
        linker.define_func("env", "f", lib.FuncType([i32], [i32]), lambda x: -x)
        first, second = pre.instantiate(st), pre.instantiate(st)
        other = lib.Store(engine)
        return ([first.exports(st)["run"](st), first.exports(st)["run"](st), second.exports(st)["run"](st),
                 pre.instantiate(other).exports(other)["run"](other),
                 linker.instantiate(st, module).exports(st)["run"](st)],
                [e.name for e in pre.module.exports],
                outcome(lambda: lib.Linker(engine).instantiate_pre(module)),
                outcome(lambda: linker.instantiate_pre("not a module")))

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (
        [10, 20, 10, 10, -1], ["run"], ("raised", "unknown import: `env::f` has not been defined"),
        ("raised", "expected a `Module`")))


def test_instantiate_pre_checks_types_after_names(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    linker.define_func("env", "f", wasmjit.FuncType([], []), lambda: None)
    module = wasmjit.Module(store.engine, """(module (import "env" "f" (func (param i32)))
      (import "env" "g" (global i32)))""")
    with pytest.raises(LinkError, match="unknown import: `env::g`"):
        linker.instantiate_pre(module)
    linker.define(store, "env", "g", wasmjit.Global(store, wasmjit.GlobalType(I32, False), 1))
    with pytest.raises(LinkError, match=r"incompatible import type for `env::f`: expected \[i32\] -> \[\], "
                                        r"found \[\] -> \[\]"):
        linker.instantiate_pre(module)
    linker.allow_shadowing = True
    linker.define_func("env", "g", wasmjit.FuncType([], []), lambda: None)
    linker.define_func("env", "f", wasmjit.FuncType([I32], []), lambda x: None)
    with pytest.raises(LinkError, match="incompatible import type for `env::g`: expected a global"):
        linker.instantiate_pre(module)


UNKNOWN_WAT = """(module $mm
  (import "env" "f" (func $f (param i32) (result i32 i64 f32 f64)))
  (import "env" "r" (func $r (result externref funcref)))
  (import "env" "g" (global $g (mut i64)))
  (import "env" "gf" (global $gf f32))
  (import "env" "mem" (memory 2 7))
  (import "env" "t" (table 3 9 externref))
  (func (export "callf") (result i32 i64 f32 f64) (call $f (i32.const 1)))
  (func (export "callr") (result externref funcref) (call $r))
  (func (export "size") (result i32) memory.size)
  (func (export "g") (result i64) global.get $g))"""


def test_unknown_imports_as_traps(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """Only functions become traps; calling one raises wasmtime's text with the wasm backtrace
    (wasmtime-py raises it as a WasmtimeError, wasmjit as a Trap without a trap code)."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        module = lib.Module(engine, UNKNOWN_WAT)
        linker = lib.Linker(engine)
        linker.define_unknown_imports_as_traps(module)
        missing = outcome(lambda: linker.instantiate(st, module))
        linker.define_unknown_imports_as_default_values(st, module)  # the rest: g, gf, mem, t
        exports = linker.instantiate(st, module).exports(st)
        return (missing, outcome(lambda: exports["callf"](st)),
                outcome(lambda: linker.get(st, "env", "r")(st)),
                outcome(lambda: linker.define_unknown_imports_as_traps(5)))

    _, (missing, call, direct, bad) = same_as_wasmtime(snippet, engine, store)
    assert missing == ("raised", "unknown import: `env::g` has not been defined")
    assert call == ("raised", "error while executing at wasm backtrace:\n"
                              "    0:     0x90 - mm!<wasm function 2>\n\n"
                              "Caused by:\n    unknown import: `env::f` has not been defined\n")
    assert direct == ("raised", "unknown import: `env::r` has not been defined")
    assert bad == ("raised", "expected a `Module`")
    linker = wasmjit.Linker(store.engine)
    module = wasmjit.Module(store.engine, UNKNOWN_WAT)
    linker.define_unknown_imports_as_traps(module)
    linker.define_unknown_imports_as_default_values(store, module)
    with pytest.raises(Trap) as info:
        linker.instantiate(store, module).exports(store)["callr"](store)
    assert info.value.trap_code is None
    assert [f.func_index for f in info.value.frames] == [3]


def test_unknown_imports_as_default_values(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """Zero results, and a memory, table and globals of the imported types in the given store."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        module = lib.Module(engine, UNKNOWN_WAT)
        linker = lib.Linker(engine)
        linker.define_unknown_imports_as_default_values(st, module)
        exports = linker.instantiate(st, module).exports(st)
        g, mem, table = (linker.get(st, "env", name) for name in ("g", "mem", "t"))
        return (exports["callf"](st), exports["callr"](st), exports["size"](st), exports["g"](st),
                g.value(st), g.type(st).mutable, linker.get(st, "env", "gf").value(st),
                (mem.type(st).limits.min, mem.type(st).limits.max),
                (table.size(st), table.type(st).limits.max),
                outcome(lambda: linker.define_unknown_imports_as_default_values(st, "x")),
                linker.define_unknown_imports_as_traps(module))  # nothing is unknown any more

    assert same_as_wasmtime(snippet, engine, store) == ("ok", (
        [0, 0, 0.0, 0.0], [None, None], 2, 0, 0, True, 0.0, (2, 7), (3, 9), ("raised", "expected a `Module`"),
        None))


def test_unknown_imports_skip_what_is_defined(store: wasmjit.Store) -> None:
    """An import defined with another type is not unknown: it is left to fail at instantiation."""
    linker = wasmjit.Linker(store.engine)
    linker.define_func("env", "f", wasmjit.FuncType([], []), lambda: None)
    module = wasmjit.Module(store.engine, UNKNOWN_WAT)
    linker.define_unknown_imports_as_traps(module)
    linker.define_unknown_imports_as_default_values(store, module)
    with pytest.raises(LinkError, match="incompatible import type for `env::f`"):
        linker.instantiate(store, module)


def test_linker_functions_are_made_once_per_store(store: wasmjit.Store) -> None:
    linker = wasmjit.Linker(store.engine)
    linker.define_func("env", "f", wasmjit.FuncType([], []), lambda: None)
    other = wasmjit.Store(store.engine)
    assert linker.get(store, "env", "f") == linker.get(store, "env", "f")
    assert linker.get(store, "env", "f") != linker.get(other, "env", "f")
    with pytest.raises(WasmjitTypeError, match="expected a FuncType"):
        linker.define_func("env", "g", "not a type", lambda: None)  # type: ignore[arg-type]


# --- Store: close, context manager, gc ---------------------------------------------------------

EXTERNS_WAT = """(module
  (memory (export "m") 1 3)
  (table (export "t") 2 5 funcref)
  (table (export "et") 1 externref)
  (global (export "g") (mut i32) (i32.const 1))
  (global (export "gi") i64 (i64.const 1))
  (global (export "gr") (mut funcref) (ref.null func))
  (global (export "ge") (mut externref) (ref.null extern))
  (func (export "f") (result i32) i32.const 5)
  (func (export "id") (param externref) (result externref) local.get 0)
  (func (export "keep") (param externref) (table.set 1 (i32.const 0) (local.get 0))))"""


def test_closed_store_raises_like_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """After close() (or leaving ``with``) every use through the store is ValueError("already
    closed"); close() again is fine and the engine stays reachable."""

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        with lib.Store(engine) as inside:
            exports = exports_of(lib, inside, EXTERNS_WAT)
            before = exports["f"](inside)
        uses = [lambda: inside.data(), lambda: inside.gc(), lambda: exports["f"](inside),
                lambda: exports["m"].size(inside), lambda: exports["m"].read(inside, 0, 1),
                lambda: exports["m"].write(inside, b"x", 0), lambda: exports["m"].grow(inside, 1),
                lambda: exports["g"].value(inside), lambda: exports["g"].set_value(inside, 2),
                lambda: exports["t"].size(inside), lambda: exports["t"].get(inside, 0),
                lambda: exports["f"].type(inside),
                lambda: lib.Func(inside, lib.FuncType([], []), lambda: None),
                lambda: lib.Memory(inside, lib.MemoryType(lib.Limits(1, None))),
                lambda: lib.Global(inside, lib.GlobalType(lib.ValType.i32(), False), 1),
                lambda: lib.Instance(inside, lib.Module(engine, "(module)"), []),
                lambda: lib.Linker(engine).instantiate(inside, lib.Module(engine, "(module)")),
                lambda: inside.set_wasi(lib.WasiConfig())]
        return before, [outcome(use) for use in uses], inside.close(), inside.engine is engine

    got = same_as_wasmtime(snippet, engine, store)
    assert got == ("ok", (5, [("raised", "already closed")] * 18, None, True))


def test_closed_store_error_is_a_value_error(store: wasmjit.Store) -> None:
    store.close()
    with pytest.raises(ValueError, match="already closed") as info:
        store.data()
    assert isinstance(info.value, WasmjitError)


def test_store_usable_inside_with(store: wasmjit.Store) -> None:
    with store as same:
        assert same is store
        assert exports_of(wasmjit, store, EXTERNS_WAT)["f"](store) == 5
    with pytest.raises(ValueError):
        store.data()


class Payload:
    pass


def test_gc_releases_unreferenced_externrefs(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """As wasmtime's: an object passed through wasm and dropped everywhere is freed by
    ``Store.gc()``; one a table or global holds stays until that slot changes."""
    import gc
    import weakref

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        exports = exports_of(lib, st, EXTERNS_WAT)
        alive = []
        obj = Payload()
        ref = weakref.ref(obj)
        exports["id"](st, obj)
        del obj
        gc.collect()
        alive.append(ref() is not None)  # the store still holds it
        st.gc()
        gc.collect()
        alive.append(ref() is not None)
        for place in ("table", "global", "host table"):
            obj = Payload()
            ref = weakref.ref(obj)
            if place == "table":
                exports["keep"](st, obj)
            elif place == "global":
                exports["ge"].set_value(st, obj)
            else:
                lib.Table(st, lib.TableType(lib.ValType.externref(), lib.Limits(1, None)), obj)
            del obj
            st.gc()
            gc.collect()
            alive.append(ref() is not None)
        exports["et"].set(st, 0, None)
        exports["ge"].set_value(st, None)
        st.gc()
        gc.collect()
        alive.append(ref() is not None)  # the host table: the store owns it
        return alive

    assert same_as_wasmtime(snippet, engine, store) == ("ok", [True, False, True, True, True, True])


def test_gc_reuses_handles_and_keeps_identity(store: wasmjit.Store) -> None:
    exports = exports_of(wasmjit, store, EXTERNS_WAT)
    kept = Payload()
    exports["keep"](store, kept)
    for _ in range(50):
        exports["id"](store, Payload())
        store.gc()
    assert len(store._store.externs) <= 3  # freed slots are reused
    assert exports["et"].get(store, 0) is kept
    fresh = Payload()
    assert exports["id"](store, fresh) is fresh


def test_gc_inside_a_host_call_keeps_what_wasm_holds(store: wasmjit.Store) -> None:
    """Wasm on the stack holds externrefs the collector cannot see: gc() leaves them alone."""
    wat = """(module (import "h" "gc" (func $gc))
      (func (export "hold") (param externref) (result externref) (call $gc) (local.get 0)))"""
    func = wasmjit.Func(store, wasmjit.FuncType([], []), lambda: store.gc())
    exports = exports_of(wasmjit, store, wat, (func,))
    for _ in range(60):
        obj = Payload()
        assert exports["hold"](store, obj) is obj


# --- Memory, Table, Global, Val edge cases ------------------------------------------------------


def test_extern_edge_cases_match_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        ex = exports_of(lib, st, EXTERNS_WAT)
        m, t, et, g, gi, gr, f = (ex[k] for k in ("m", "t", "et", "g", "gi", "gr", "f"))
        funcref, i32 = lib.ValType.funcref(), lib.ValType.i32()
        actions = [
            lambda: m.read(st, 0, 10**6) == bytearray(65536), lambda: len(m.read(st, 0, -1)),
            lambda: m.read(st, 1.5, 2), lambda: m.write(st, b"", 65536), lambda: m.write(st, b"", 0),
            lambda: m.write(st, b"a", -70000), lambda: m.write(st, [1, 2], 0), lambda: m.write(st, "ab", 0),
            lambda: m.write(st, memoryview(b"ab"), 3), lambda: m.read(st, 0, 5),
            lambda: m.grow(st, 0), lambda: m.grow(st, 2), lambda: m.grow(st, 1), lambda: m.size(st),
            lambda: len(m.get_buffer_ptr(st)), lambda: len(m.get_buffer_ptr(st, 10, 5)),
            lambda: lib.Memory(st, lib.MemoryType(lib.Limits(2, 1))),
            lambda: lib.Memory(st, lib.MemoryType(lib.Limits(70000, None))),
            lambda: lib.Memory(st, lib.MemoryType(lib.Limits(1, 70000))),
            lambda: lib.Memory(st, lib.MemoryType(lib.Limits(0, None))).grow(st, 65537),
            lambda: lib.MemoryType(5),
            lambda: t.get(st, 2), lambda: t.get(st, -1), lambda: t.get(st, 1 << 40),
            lambda: t.set(st, 2, None), lambda: t.set(st, -1, None), lambda: t.set(st, 0, 5),
            lambda: t.set(st, 0, lib.Val.externref(5)), lambda: t.set(st, 0, lib.Val.funcref(f)),
            lambda: t.get(st, 0)(st), lambda: t.grow(st, 0, None), lambda: t.grow(st, 3, f),
            lambda: t.grow(st, 1, None), lambda: t.grow(st, 0, 5), lambda: t.size(st),
            lambda: t.get(st, 4)(st),
            lambda: et.set(st, 0, 5), lambda: et.get(st, 0), lambda: et.set(st, 0, lib.Val.i32(3)),
            lambda: lib.Table(st, lib.TableType(funcref, lib.Limits(1, None)), 5),
            lambda: g.set_value(st, "x"), lambda: g.set_value(st, 1.5),
            lambda: g.set_value(st, lib.Val.i64(1)),
            lambda: (g.set_value(st, lib.Val.i32(7)), g.value(st)), lambda: gi.set_value(st, 2),
            lambda: (gr.set_value(st, f), gr.value(st)(st)), lambda: gr.set_value(st, 3),
            lambda: lib.Global(st, lib.GlobalType(i32, True), 1.5), lambda: lib.Global(st, 5, None),
            lambda: lib.Global(st, lib.GlobalType(lib.ValType.i64(), True), (1 << 64) - 1).value(st),
            lambda: lib.Val.i32(1.5), lambda: lib.Val.f32("x"), lambda: lib.Val.f32(0.1).value,
            lambda: lib.Val.i32(-1).value, lambda: lib.Val.ref_null(funcref) == lib.Val.funcref(None),
        ]
        return [outcome(action) for action in actions]

    oob = ("raised", "index out of range")
    table_trap = ("raised", "wasm trap: undefined element: out of bounds table access")
    assert same_as_wasmtime(snippet, engine, store) == ("ok", [
        ("ok", True), ("ok", 65535),
        ("raised", "slice indices must be integers or None or have an __index__ method"),
        oob, ("ok", 0), ("ok", 1), ("ok", 2), ("raised", "string argument without an encoding"), ("ok", 2),
        ("ok", bytearray(b"\x01\x02\x00ab")),
        ("ok", 1), ("ok", 1), ("raised", "failed to grow memory by `1`"), ("ok", 3),
        ("ok", 3 * 65536), ("ok", 10),
        ("raised", "maximum page size cannot be smaller than the minimum page size"),
        ("raised", "minimum size is too large for this memory type's index type"),
        ("raised", "maximum size is too large for this memory type's index type"),
        ("raised", "failed to grow memory by `65537`"), ("raised", "expected Limits"),
        ("ok", None), ("ok", None), ("ok", None),
        table_trap, table_trap, ("raised", "don't know how to convert 5 to funcref"),
        ("raised", "wrong type of `Val` provided"), ("ok", None),
        ("ok", 5), ("ok", 2), ("ok", 2), ("raised", "failed to grow table by `1`"),
        ("raised", "don't know how to convert 5 to funcref"), ("ok", 5), ("ok", 5),
        ("ok", None), ("ok", 5), ("raised", "wrong type of `Val` provided"),
        ("raised", "don't know how to convert 5 to funcref"),
        ("raised", "don't know how to convert 'x' to i32"),
        ("raised", "don't know how to convert 1.5 to i32"),
        ("raised", "wrong type of `Val` provided"), ("ok", (None, 7)),
        ("raised", "immutable global cannot be set"),
        ("ok", (None, 5)), ("raised", "don't know how to convert 3 to funcref"),
        ("raised", "don't know how to convert 1.5 to i32"), ("raised", "expected a GlobalType"), ("ok", -1),
        ("raised", "expected an integer"), ("raised", "expected a float"), ("ok", 0.10000000149011612),
        ("ok", -1), ("ok", True),
    ])


def test_extern_errors_are_wasmjit_errors(store: wasmjit.Store) -> None:
    exports = exports_of(wasmjit, store, EXTERNS_WAT)
    with pytest.raises(Trap) as info:
        exports["t"].set(store, 9, None)
    assert info.value.trap_code is TrapCode.TABLE_OUT_OF_BOUNDS
    for action in (lambda: exports["m"].grow(store, 1.0), lambda: exports["t"].grow(store, "1", None),
                   lambda: exports["t"].get(store, None), lambda: wasmjit.Val.i64("1"),
                   lambda: wasmjit.Memory(store, 5)):
        with pytest.raises(WasmjitTypeError):
            action()
    with pytest.raises(IndexError):  # wasmtime-py hands out memory past the end here
        exports["m"].get_buffer_ptr(store, 10, 65530)
    with pytest.raises(IndexError):
        exports["m"].get_buffer_ptr(store, offset=-1)
    assert len(exports["m"].get_buffer_ptr(store, offset=65530)) == 6


def test_wasmjit_value_policy_beyond_wasmtime(store: wasmjit.Store) -> None:
    """Where wasmtime-py silently wraps or refuses, wasmjit is deliberate: integers out of range
    and bools are refused (wasmtime-py truncates them), ints are taken for floats."""
    exports = exports_of(wasmjit, store, EXTERNS_WAT)
    for bad in (1 << 40, True):
        with pytest.raises(WasmjitTypeError):
            exports["g"].set_value(store, bad)
    glob = wasmjit.Global(store, wasmjit.GlobalType(wasmjit.ValType.f64(), True), 2)
    assert glob.value(store) == 2.0 and isinstance(glob.value(store), float)
    assert wasmjit.Val.f32(3).value == 3.0


# --- wat2wasm ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "(module)", b"(module)", '(module (func (export "f")))',
    "(module (func (i32.foo)))", "(modul", "", "(module (func $f) (func $f))",
    b"\0asm\x01\0\0\0", b'(module (data "\xe9"))',
])
def test_wat2wasm_matches_wasmtime(text: Any) -> None:
    """A bytearray, or the same message: the parser's text, then ``--> <anon>:LINE:COL`` and the
    offending line; binary and non-UTF-8 input are refused as wasmtime's parser refuses them."""
    expected = outcome(lambda: wasmtime.wat2wasm(text))
    got = outcome(lambda: wasmjit.wat2wasm(text))
    assert got == expected
    assert type(got[1]) is (bytearray if got[0] == "ok" else str)


def test_wat2wasm_errors() -> None:
    with pytest.raises(wasmjit.WatError) as info:
        wasmjit.wat2wasm("(module (func (i32.foo)))")
    assert isinstance(info.value, wasmjit.DecodeError)
    assert info.value.reason == "unknown operator or unexpected token"
    assert str(info.value).splitlines()[1] == "     --> <anon>:1:16"
    with pytest.raises(WasmjitTypeError):
        wasmjit.wat2wasm(5)  # type: ignore[arg-type]
    assert wasmjit.wat2wasm(bytearray(b"(module)")) == bytearray(b"\0asm\x01\0\0\0")  # wasmtime-py: TypeError


# --- Config ------------------------------------------------------------------------------------

BOOL_SETTINGS = [
    "debug_info", "wasm_threads", "wasm_tail_call", "wasm_reference_types", "wasm_simd", "wasm_bulk_memory",
    "wasm_multi_value", "wasm_multi_memory", "wasm_memory64", "wasm_relaxed_simd",
    "wasm_relaxed_simd_deterministic", "wasm_component_model", "wasm_component_model_map",
    "wasm_component_model_implements", "wasm_exceptions", "wasm_function_references", "wasm_gc",
    "wasm_wide_arithmetic", "wasm_custom_page_sizes", "wasm_stack_switching", "cranelift_debug_verifier",
    "parallel_compilation", "shared_memory", "gc_support", "cranelift_nan_canonicalization",
    "memory_may_move", "native_unwind_info", "macos_use_mach_ports", "signals_based_traps", "memory_init_cow",
]
SETTINGS = (
    [(name, value) for name in BOOL_SETTINGS for value in (True, False, 1, None)]
    + [(name, value) for name in ("memory_reservation", "memory_guard_size", "memory_reservation_for_growth")
       for value in (1 << 20, "x", 1.0)]
    + [("strategy", v) for v in ("auto", "cranelift", "winch", 5, None)]
    + [("cranelift_opt_level", v) for v in ("none", "speed", "speed_and_size", "fast")]
    + [("profiler", v) for v in ("none", "jitdump", "vtune", "perfmap", "perf")]
    + [("cache", v) for v in (True, False, 3, "/nonexistent/cache.toml")]
    + [("target", v) for v in ("x86_64-unknown-linux-gnu", "foo-bar", 3)]
)


def set_outcome(lib: Any, name: str, value: Any) -> tuple:
    config = lib.Config()
    try:
        setattr(config, name, value)
    except Exception as err:  # noqa: BLE001 - the comparison is the point
        return ("raised", isinstance(err, TypeError), str(err))
    return ("ok", None)


@pytest.mark.parametrize(("name", "value"), SETTINGS)
def test_config_settings_match_wasmtime(name: str, value: Any) -> None:
    """wasmtime-py's Config settings: the same values accepted, the same refused with the same
    exception kind (TypeError or not) and message; wasmjit also lets them be read back."""
    expected = set_outcome(wasmtime, name, value)
    assert set_outcome(wasmjit, name, value) == expected
    config = wasmjit.Config()
    if expected[0] == "ok":
        setattr(config, name, value)
        assert getattr(config, name) == value
    else:
        with pytest.raises(WasmjitError):
            setattr(config, name, value)


def test_config_cache_file(tmp_path: Any) -> None:
    good, unknown, broken = tmp_path / "good.toml", tmp_path / "unknown.toml", tmp_path / "broken.toml"
    good.write_text(f'[cache]\ndirectory = "{tmp_path}"\n')
    unknown.write_text("[cache]\nenabled = true\n")
    broken.write_text("[cache\n")
    for lib in (wasmtime, wasmjit):
        lib.Config().cache = str(good)
        for path, cause in ((unknown, "unknown field `enabled`, expected one of `directory`"), (broken, "")):
            with pytest.raises(Exception) as info:  # noqa: PT011 - WasmtimeError or WasmjitError
                lib.Config().cache = str(path)
            assert str(info.value).startswith(f"failed to parse config file: {path}\n\nCaused by:\n")
            assert cause in str(info.value)
    config = wasmjit.Config()
    config.cache = str(good)
    assert config.cache == str(good)


def test_config_cranelift_flags_and_defaults() -> None:
    config = wasmjit.Config()
    assert (config.wasm_multi_value, config.wasm_simd, config.strategy, config.cranelift_flags) == (
        True, False, "auto", {})
    config.cranelift_flag_enable("has_sse41")
    config.cranelift_flag_set("opt_level", "speed")
    assert config.cranelift_flags == {"has_sse41": "true", "opt_level": "speed"}
    for lib in (wasmtime, wasmjit):
        with pytest.raises(TypeError, match="expected a str for value"):
            lib.Config().cranelift_flag_set("x", 1)
        with pytest.raises(TypeError, match="expected a str"):
            lib.Config().cranelift_flag_enable(3)
        lib.Config().some_future_setting = 1  # an unknown name is a plain attribute in both
    with pytest.raises(UnsupportedError, match="x86-64 code only"):
        wasmjit.Config().target = "aarch64-unknown-linux-gnu"


FEATURE_MODULES = {
    "multi_value_type": "(module (type (func (result i32 i32))))",
    "multi_value_block": "(module (func (param i32) (result i32) local.get 0\n"
                         "  (block (param i32) (result i32))))",
    "bulk_passive_data": '(module (memory 1) (data "x"))',
    "bulk_passive_elem": "(module (table 1 funcref) (func $f) (elem func $f))",
    "bulk_instruction": "(module (memory 1) (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))",
    "plain": "(module (memory 1) (func (result i32) (block (result i32) (i32.const 1))))",
}


@pytest.mark.parametrize("feature", ["wasm_multi_value", "wasm_bulk_memory"])
@pytest.mark.parametrize("module", list(FEATURE_MODULES))
def test_disabled_proposals_match_wasmtime(feature: str, module: str) -> None:
    """Switched off, a proposal's modules are invalid with wasmtime's message (wasmtime-py wraps
    it in "failed to parse/compile ..." text), and other modules still load."""
    wat = FEATURE_MODULES[module]
    ref_config = wasmtime.Config()
    setattr(ref_config, feature, False)
    expected = outcome(lambda: wasmtime.Module(wasmtime.Engine(ref_config), wat) and "loaded")
    config = wasmjit.Config()
    setattr(config, feature, False)
    engine = wasmjit.Engine(config)
    got = outcome(lambda: wasmjit.Module(engine, wat) and "loaded")
    assert got[0] == expected[0]
    if got[0] == "raised":
        with pytest.raises(ValidationError) as info:
            wasmjit.Module.validate(engine, wasmjit.wat2wasm(wat))
        assert info.value.reason in expected[1]
    assert wasmjit.Module(wasmjit.Engine(), wat)  # on by default


@pytest.mark.parametrize(("wat", "message"), [
    ("(module (func (param externref)))", "reference types support is not enabled"),
    ("(module (table 1 externref))", "reference types support is not enabled"),
    ("(module (table 1 funcref) (table 1 funcref))", "multiple tables"),
    ("(module (table 1 funcref) (func (drop (table.size 0))))", "reference types support is not enabled"),
    ("(module (func (drop (ref.null func))))", "reference types support is not enabled"),
    ("(module (func (result i32) (select (result i32) (i32.const 1) (i32.const 2) (i32.const 0))))",
     "reference types support is not enabled"),
    ("(module (table 1 funcref) (elem (i32.const 0) funcref (ref.null func)))",
     "reference types support is not enabled"),
])
def test_reference_types_can_be_switched_off(wat: str, message: str) -> None:
    """wasmtime 50 cannot switch reference types off (its component model needs them: the
    engine aborts); wasmjit can, with wasmparser's messages."""
    config = wasmjit.Config()
    config.wasm_reference_types = False
    with pytest.raises(ValidationError, match=message):
        wasmjit.Module(wasmjit.Engine(config), wat)
    wasmjit.Module(wasmjit.Engine(), wat)


def test_mvp_module_runs_with_proposals_off(tier: str) -> None:
    config = wasmjit.Config()
    config.tier = tier
    config.wasm_multi_value = config.wasm_bulk_memory = config.wasm_reference_types = False
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    exports = exports_of(wasmjit, store, """(module (memory 1) (table 1 funcref) (elem (i32.const 0) $sq)
      (type $t (func (param i32) (result i32)))
      (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
      (func (export "run") (param i32) (result i32)
        (block (result i32) (call_indirect (type $t) (local.get 0) (i32.const 0)))))""")
    assert exports["run"](store, 7) == 49


# --- Trap text: demangled function names -------------------------------------------------------


def rust_symbol(*parts: str) -> str:
    return "_ZN" + "".join(f"{len(p)}{p}" for p in parts) + "E"


MANGLED = ["f", "i", "fib", "main", "Pi", "_Z3fooi", "_ZNK3foo3barEv", "_ZN3foo3BarI3bazE3quxE",
           "_ZNSt6vectorIiSaIiEE9push_backERKi",
           rust_symbol("core", "panicking", "panic", "h0123456789abcdef"),
           rust_symbol("_$LT$core..fmt..Arguments$u20$as$u20$core..fmt..Display$GT$", "fmt",
                       "h0123456789abcdef"),
           rust_symbol("std", "rt", "lang_start", "_$u7b$$u7b$closure$u7d$$u7d$", "h0123456789abcdef"),
           rust_symbol("foo", "bar", "h0123456789abcdef") + ".llvm.1234ABCD", rust_symbol("a$XX$b"), "_ZN3fo"]


def test_trap_text_demangles_names_as_wasmtime(engine: wasmjit.Engine, store: wasmjit.Store) -> None:
    """wasmtime demangles Rust and C++ names in the text (not in ``Frame.func_name``); so does
    wasmjit, down to one-letter names read as C++ types ("f" is "float")."""
    wat = "(module $m " + " ".join(
        f'(func ${name} (export "{i}") (call ${MANGLED[i + 1]}))' for i, name in enumerate(MANGLED[:-1])
    ) + f' (func ${MANGLED[-1]} (export "last") unreachable))'

    def snippet(lib: Any, engine: Any, st: Any) -> Any:
        exports = exports_of(lib, st, wat)
        try:
            exports["0"](st)
        except (Trap, wasmtime.Trap) as trap:
            return str(trap), [f.func_name for f in trap.frames]

    _, (text, names) = same_as_wasmtime(snippet, engine, store)
    assert names == MANGLED[::-1]
    assert [line.split("m!", 1)[1] for line in text.splitlines()[1:len(MANGLED) + 1]] == [
        "_ZN3fo", "a$XX$b", "foo::bar::h0123456789abcdef",
        "std::rt::lang_start::{{closure}}::h0123456789abcdef",
        "<core::fmt::Arguments as core::fmt::Display>::fmt::h0123456789abcdef",
        "core::panicking::panic::h0123456789abcdef",
        "std::vector<int, std::allocator<int> >::push_back(int const&)",
        "foo::Bar<baz>::qux", "foo::bar() const", "foo(int)", "int*", "main", "fib", "int", "float"]
