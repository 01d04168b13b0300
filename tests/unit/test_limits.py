"""Store limits (Store.set_limits, run --max-memory-size) and Config.max_wasm_stack on every tier;
limits are compared with wasmtime-py step by step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import wasmtime

import wasmjit
from wasmjit import api, cli

TIERS = list(api.AVAILABLE_TIERS)
PAGE = 65536


def _new(w: Any, tier: str | None, **limits: int) -> tuple[Any, Any]:
    config = w.Config()
    if tier is not None:
        config.tier = tier
    engine = w.Engine(config)
    store = w.Store(engine)
    store.set_limits(**limits)
    return engine, store


def _outcome(run: Callable[[], Any]) -> str:
    try:
        result = run()
    except Exception as err:  # noqa: BLE001 - the exception's message is the outcome compared
        return f"error: {str(err).splitlines()[0]}"
    return f"returned {result}" if isinstance(result, int) else "ok"


def _steps(w: Any, tier: str | None) -> list[str]:
    """Growth and instantiation under each kind of limit."""
    out = []
    engine, store = _new(w, tier, memory_size=2 * PAGE)
    grow = w.Instance(store, w.Module(engine, """(module (memory 1)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"""),
                      []).exports(store)["grow"]
    out += [_outcome(lambda: grow(store, 1)), _outcome(lambda: grow(store, 1)),
            _outcome(lambda: grow(store, 0))]
    out.append(_outcome(lambda: w.Instance(store, w.Module(engine, "(module (memory 3))"), [])))
    engine, store = _new(w, tier, memory_size=4 * PAGE)  # per memory, not in total
    out.append(_outcome(lambda: [w.Instance(store, w.Module(engine, "(module (memory 3))"), [])
                                 for _ in range(2)]))
    engine, store = _new(w, tier, memories=1)
    for _ in range(2):
        out.append(_outcome(lambda: w.Instance(store, w.Module(engine, "(module (memory 1))"), [])))
    engine, store = _new(w, tier, instances=2)
    for _ in range(3):
        out.append(_outcome(lambda: w.Instance(store, w.Module(engine, "(module)"), [])))
    engine, store = _new(w, tier, tables=1, table_elements=10)
    for _ in range(2):
        out.append(_outcome(lambda: w.Instance(store, w.Module(engine, "(module (table 5 funcref))"), [])))
    engine, store = _new(w, tier, table_elements=10)
    tgrow = w.Instance(store, w.Module(engine, """(module (table 5 funcref)
        (func (export "grow") (param i32) (result i32) (table.grow (ref.null func) (local.get 0))))"""),
                       []).exports(store)["grow"]
    out += [_outcome(lambda: tgrow(store, 5)), _outcome(lambda: tgrow(store, 1))]
    out.append(_outcome(lambda: w.Instance(store, w.Module(engine, "(module (table 11 funcref))"), [])))
    return out


@pytest.fixture(scope="module")
def reference() -> list[str]:
    return _steps(wasmtime, None)


def test_reference_hits_every_limit(reference: list[str]) -> None:
    assert reference == [
        "returned 1", "returned -1", "returned 2",
        "error: memory minimum size of 3 pages exceeds memory limits",
        "ok",
        "ok", "error: resource limit exceeded: memory count too high at 2",
        "ok", "ok", "error: resource limit exceeded: instance count too high at 3",
        "ok", "error: resource limit exceeded: table count too high at 2",
        "returned 5", "returned -1",
        "error: table minimum size of 11 elements exceeds table limits",
    ]


@pytest.mark.parametrize("tier", TIERS)
def test_limits_match_wasmtime(tier: str, reference: list[str]) -> None:
    assert _steps(wasmjit, tier) == reference


def test_limits_must_be_integers() -> None:
    store = wasmjit.Store()
    with pytest.raises(wasmjit.WasmjitTypeError, match="memory_size must be an integer"):
        store.set_limits(memory_size=1.5)


@pytest.mark.parametrize("tier", TIERS)
def test_cli_max_memory_size(tier: str, tmp_path, capsys) -> None:
    module = tmp_path / "grow.wat"
    module.write_text('(module (memory 1) (func (export "grow") (param i32) (result i32) '
                      '(memory.grow (local.get 0))))')
    for pages, result in ((2, "1"), (3, "-1")):
        assert cli.main(["run", "--tier", tier, "--max-memory-size", str(3 * PAGE), "--invoke", "grow",
                         str(module), str(pages)]) == 0
        assert capsys.readouterr().out == f"{result}\n"
    assert cli.main(["run", "--tier", tier, "--max-memory-size", "1000", "--invoke", "grow", str(module),
                     "0"]) == 1
    assert capsys.readouterr().err == "error: memory minimum size of 1 pages exceeds memory limits\n"


# --- max_wasm_stack -------------------------------------------------------------------------------

DEPTH = """(module (global $depth (export "depth") (mut i32) (i32.const 0))
  (func $down (export "down") (param i64 i64 i64 i64)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (call $down (local.get 0) (local.get 1) (local.get 2) (local.get 3))))"""


def _depth_reached(max_wasm_stack: int | None) -> int:
    config = wasmjit.Config()
    config.tier = "jit"
    if max_wasm_stack is not None:
        config.max_wasm_stack = max_wasm_stack
    engine = wasmjit.Engine(config)
    store = wasmjit.Store(engine)
    exports = wasmjit.Instance(store, wasmjit.Module(engine, DEPTH), []).exports(store)
    with pytest.raises(wasmjit.Trap) as info:
        exports["down"](store, 1, 2, 3, 4)
    assert info.value.trap_code is wasmjit.TrapCode.STACK_OVERFLOW
    return exports["depth"].value(store)


def test_max_wasm_stack_bounds_native_recursion() -> None:
    """Tier jit only: max_wasm_stack is the native stack budget (the interpreter counts calls)."""
    small, default = _depth_reached(64 << 10), _depth_reached(None)
    assert 100 < small < default  # 64 KiB of frames, then 512 KiB (or the call-depth limit)
    assert _depth_reached(32 << 10) < small


@pytest.mark.parametrize("value", [0, 100, 1 << 30, 1.5, "1MiB"])
def test_max_wasm_stack_is_checked(value: Any) -> None:
    config = wasmjit.Config()
    config.max_wasm_stack = value
    with pytest.raises(wasmjit.WasmjitError, match="max_wasm_stack must be between 4096 and 4194304 bytes"):
        wasmjit.Engine(config)


def test_a_closed_store_refuses_fuel_epoch_and_limit_calls() -> None:
    config = wasmjit.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    store = wasmjit.Store(wasmjit.Engine(config))
    store.close()
    calls = (lambda: store.set_fuel(1), store.get_fuel, lambda: store.set_epoch_deadline(1),
             lambda: store.set_limits(memory_size=1))
    for call in calls:
        with pytest.raises(ValueError, match="^already closed$"):
            call()


def _host_steps(w: Any) -> list[str]:
    store = w.Store(w.Engine())
    store.set_limits(memory_size=2 * PAGE, table_elements=5)
    memory = w.Memory(store, w.MemoryType(w.Limits(1, None)))
    table = w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(4, None)), None)
    return [
        _outcome(lambda: w.Memory(store, w.MemoryType(w.Limits(3, None))) and None),
        _outcome(lambda: memory.grow(store, 1)), _outcome(lambda: memory.grow(store, 1)),
        _outcome(lambda: w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(6, None)), None) and None),
        _outcome(lambda: table.grow(store, 1, None)), _outcome(lambda: table.grow(store, 1, None)),
    ]


def test_limits_apply_to_the_hosts_memories_and_tables_as_in_wasmtime() -> None:
    expected = _host_steps(wasmtime)
    assert expected == [
        "error: memory minimum size of 3 pages exceeds memory limits", "returned 1",
        "error: failed to grow memory by `1`",
        "error: table minimum size of 6 elements exceeds table limits", "returned 4",
        "error: failed to grow table by `1`",
    ]
    assert _host_steps(wasmjit) == expected
